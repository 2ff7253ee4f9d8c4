/*  aigw_table: an intrusive chained hash table keyed by byte strings. Each
    item embeds an aigw_table_node_t holding its key (bytes the item owns)
    and the key's hash (the caller's, computed once); a lookup allocates
    nothing and an insert only when the buckets double. The table owns its
    bucket array only, never the items. */
#ifndef AIGW_TABLE_H_INCLUDED
#define AIGW_TABLE_H_INCLUDED

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct _aigw_table_node_t aigw_table_node_t;

//  Embedded in each item; set hash, key and key_size before the insert.
struct _aigw_table_node_t {
    aigw_table_node_t *next;   //  next node in the same bucket
    uint64_t hash;             //  full hash of the key
    const unsigned char *key;  //  key bytes, owned by the item
    size_t key_size;           //  key length in bytes
};

typedef struct _aigw_table_t aigw_table_t;

//  An empty table, or NULL if out of memory.
aigw_table_t *aigw_table_new (void);
void aigw_table_destroy (aigw_table_t **self_p);

//  The node with KEY (KEY_SIZE bytes, hash HASH), or NULL.
aigw_table_node_t *aigw_table_lookup (aigw_table_t *self, const void *key, size_t key_size,
                                      uint64_t hash);

//  Insert NODE; the caller checked that its key is new. If the buckets
//  cannot double, chains just get longer.
void aigw_table_insert (aigw_table_t *self, aigw_table_node_t *node);

//  Remove NODE if it is in the table.
void aigw_table_remove (aigw_table_t *self, aigw_table_node_t *node);

//  Walk in no order: the first node, or NULL if empty; the node after NODE,
//  or NULL. Take the next before removing NODE during a walk.
aigw_table_node_t *aigw_table_first (aigw_table_t *self);
aigw_table_node_t *aigw_table_next (aigw_table_t *self, aigw_table_node_t *node);

size_t aigw_table_size (aigw_table_t *self);

void aigw_table_test (bool verbose);

#endif
