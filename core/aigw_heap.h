/*  aigw_heap: an intrusive binary min-heap of timers. Each item embeds an
    aigw_heap_node_t, which remembers its slot, so removing or re-keying any
    item costs O(log n) and the earliest is always at the top. The heap owns
    its slot array only, never the items. */
#ifndef AIGW_HEAP_H_INCLUDED
#define AIGW_HEAP_H_INCLUDED

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

//  Embedded in each item; KEY is read only by the heap's callers.
typedef struct {
    int64_t key;   //  sort key (a time), smallest on top
    size_t index;  //  slot in the heap, AIGW_HEAP_NONE if out
} aigw_heap_node_t;

#define AIGW_HEAP_NONE SIZE_MAX

typedef struct _aigw_heap_t aigw_heap_t;

//  An empty heap, or NULL if out of memory.
aigw_heap_t *aigw_heap_new (void);
void aigw_heap_destroy (aigw_heap_t **self_p);

//  Set NODE out of any heap; call before its first push.
void aigw_heap_node_init (aigw_heap_node_t *node, int64_t key);

//  Add NODE (out of the heap) with its key. Returns 0, or -1 if out of memory.
int aigw_heap_push (aigw_heap_t *self, aigw_heap_node_t *node);

//  Remove NODE if it is in the heap.
void aigw_heap_remove (aigw_heap_t *self, aigw_heap_node_t *node);

//  Change NODE's key (NODE is in the heap) and restore heap order.
void aigw_heap_update (aigw_heap_t *self, aigw_heap_node_t *node, int64_t key);

//  The node with the smallest key, or NULL if the heap is empty.
aigw_heap_node_t *aigw_heap_top (aigw_heap_t *self);

size_t aigw_heap_size (aigw_heap_t *self);

void aigw_heap_test (bool verbose);

#endif
