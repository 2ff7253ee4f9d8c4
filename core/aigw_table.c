/*  aigw_table: intrusive chained hash table. zhashx would allocate an item
    per insert and rehash the key on every lookup; the broker keys requests
    by (client, request id) on each message and already has the hash, hence
    this class. */
#include "aigw_table.h"

#include <assert.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define S_INITIAL 64  //  first bucket count, a power of two

struct _aigw_table_t {
    aigw_table_node_t **buckets;  //  bucket heads, a power of two of them
    size_t mask;                  //  bucket count minus one
    size_t size;                  //  nodes in the table
};

aigw_table_t *
aigw_table_new (void)
{
    aigw_table_t *self = (aigw_table_t *) calloc (1, sizeof *self);
    if (self)
        self->buckets = (aigw_table_node_t **) calloc (S_INITIAL, sizeof (aigw_table_node_t *));
    if (!self || !self->buckets) {
        free (self);
        return NULL;
    }
    self->mask = S_INITIAL - 1;
    return self;
}

void
aigw_table_destroy (aigw_table_t **self_p)
{
    assert (self_p);
    aigw_table_t *self = *self_p;
    if (!self)
        return;
    free (self->buckets);
    free (self);
    *self_p = NULL;
}

aigw_table_node_t *
aigw_table_lookup (aigw_table_t *self, const void *key, size_t key_size, uint64_t hash)
{
    assert (self);
    for (aigw_table_node_t *node = self->buckets[hash & self->mask]; node; node = node->next)
        if (node->hash == hash && node->key_size == key_size
            && memcmp (node->key, key, key_size) == 0)
            return node;
    return NULL;
}

//  Double the bucket count; on allocation failure keep the old one.
static void
s_grow (aigw_table_t *self)
{
    size_t count = (self->mask + 1) * 2;
    aigw_table_node_t **buckets
        = (aigw_table_node_t **) calloc (count, sizeof (aigw_table_node_t *));
    if (!buckets)
        return;
    for (size_t i = 0; i <= self->mask; i++) {
        aigw_table_node_t *node = self->buckets[i];
        while (node) {
            aigw_table_node_t *next = node->next;
            aigw_table_node_t **head = &buckets[node->hash & (count - 1)];
            node->next = *head;
            *head = node;
            node = next;
        }
    }
    free (self->buckets);
    self->buckets = buckets;
    self->mask = count - 1;
}

void
aigw_table_insert (aigw_table_t *self, aigw_table_node_t *node)
{
    assert (self && node);
    if (self->size > self->mask)
        s_grow (self);
    aigw_table_node_t **head = &self->buckets[node->hash & self->mask];
    node->next = *head;
    *head = node;
    self->size++;
}

void
aigw_table_remove (aigw_table_t *self, aigw_table_node_t *node)
{
    assert (self && node);
    aigw_table_node_t **link = &self->buckets[node->hash & self->mask];
    while (*link && *link != node)
        link = &(*link)->next;
    if (*link) {
        *link = node->next;
        self->size--;
    }
    node->next = NULL;
}

//  The first node in bucket FROM or after it, or NULL.
static aigw_table_node_t *
s_scan (aigw_table_t *self, size_t from)
{
    for (size_t i = from; i <= self->mask; i++)
        if (self->buckets[i])
            return self->buckets[i];
    return NULL;
}

aigw_table_node_t *
aigw_table_first (aigw_table_t *self)
{
    assert (self);
    return self->size ? s_scan (self, 0) : NULL;
}

aigw_table_node_t *
aigw_table_next (aigw_table_t *self, aigw_table_node_t *node)
{
    assert (self && node);
    return node->next ? node->next : s_scan (self, (node->hash & self->mask) + 1);
}

size_t
aigw_table_size (aigw_table_t *self)
{
    assert (self);
    return self->size;
}

//  --------------------------------------------------------------------------
//  Selftest

#define S_TEST_ITEMS    1000  //  grows the buckets from 64 to 1024
#define S_TEST_KEY_SIZE 16

typedef struct {
    aigw_table_node_t node;
    char key[S_TEST_KEY_SIZE];
    bool seen;
} s_test_item_t;

//  FNV-1a, enough to spread test keys.
static uint64_t
s_test_hash (const char *key)
{
    uint64_t hash = 0xcbf29ce484222325ULL;
    for (; *key; key++)
        hash = (hash ^ (unsigned char) *key) * 0x100000001b3ULL;
    return hash;
}

//  Count the nodes a walk visits, marking each item seen.
static size_t
s_test_walk (aigw_table_t *self)
{
    size_t count = 0;
    for (aigw_table_node_t *node = aigw_table_first (self); node;
         node = aigw_table_next (self, node)) {
        ((s_test_item_t *) node)->seen = true;
        count++;
    }
    return count;
}

void
aigw_table_test (bool verbose)
{
    aigw_table_t *table = aigw_table_new ();
    assert (table);
    //  Empty: no node, lookups miss, a walk visits nothing.
    assert (aigw_table_size (table) == 0 && aigw_table_first (table) == NULL);
    assert (aigw_table_lookup (table, "x", 1, s_test_hash ("x")) == NULL);
    assert (s_test_walk (table) == 0);

    //  Grow: every key stays found across the doublings.
    static s_test_item_t items[S_TEST_ITEMS];
    for (size_t i = 0; i < S_TEST_ITEMS; i++) {
        s_test_item_t *item = &items[i];
        snprintf (item->key, sizeof item->key, "key-%zu", i);
        item->node.key = (const unsigned char *) item->key;
        item->node.key_size = strlen (item->key);
        item->node.hash = s_test_hash (item->key);
        aigw_table_insert (table, &item->node);
    }
    assert (aigw_table_size (table) == S_TEST_ITEMS);
    for (size_t i = 0; i < S_TEST_ITEMS; i++)
        assert (aigw_table_lookup (table, items[i].key, strlen (items[i].key), items[i].node.hash)
                == &items[i].node);
    //  Same hash, other key: a miss (keys are compared, not only hashes).
    assert (!aigw_table_lookup (table, "key-1x", 6, items[1].node.hash));
    assert (!aigw_table_lookup (table, "key-1", 4, items[1].node.hash));
    //  A walk sees each node once.
    assert (s_test_walk (table) == S_TEST_ITEMS);
    for (size_t i = 0; i < S_TEST_ITEMS; i++)
        assert (items[i].seen);

    //  Remove during a walk: every other node goes, the rest stay found.
    size_t removed = 0;
    aigw_table_node_t *node = aigw_table_first (table);
    while (node) {
        aigw_table_node_t *next = aigw_table_next (table, node);
        s_test_item_t *item = (s_test_item_t *) node;
        if ((item - items) % 2 == 0) {
            aigw_table_remove (table, node);
            removed++;
        }
        node = next;
    }
    assert (removed == S_TEST_ITEMS / 2);
    assert (aigw_table_size (table) == S_TEST_ITEMS - removed);
    assert (s_test_walk (table) == S_TEST_ITEMS - removed);
    for (size_t i = 0; i < S_TEST_ITEMS; i++) {
        aigw_table_node_t *found
            = aigw_table_lookup (table, items[i].key, strlen (items[i].key), items[i].node.hash);
        assert (found == (i % 2 ? &items[i].node : NULL));
    }
    //  Removing a node that is out is a no-op.
    aigw_table_remove (table, &items[0].node);
    assert (aigw_table_size (table) == S_TEST_ITEMS - removed);
    //  Empty it by walking, then it is empty again.
    node = aigw_table_first (table);
    while (node) {
        aigw_table_node_t *next = aigw_table_next (table, node);
        aigw_table_remove (table, node);
        node = next;
    }
    assert (aigw_table_size (table) == 0 && aigw_table_first (table) == NULL);
    aigw_table_destroy (&table);
    assert (table == NULL);
    if (verbose)
        printf ("table: ok\n");
}
