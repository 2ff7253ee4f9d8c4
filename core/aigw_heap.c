/*  aigw_heap: intrusive binary min-heap. CZMQ has no heap, and the broker's
    timers need O(log n) removal by handle, hence this class. */
#include "aigw_heap.h"

#include <assert.h>
#include <stdio.h>
#include <stdlib.h>

#define S_INITIAL 256  //  first capacity of the slot array

struct _aigw_heap_t {
    aigw_heap_node_t **slots;  //  nodes in heap order
    size_t size;               //  nodes in the heap
    size_t cap;                //  capacity of slots
};

aigw_heap_t *
aigw_heap_new (void)
{
    return (aigw_heap_t *) calloc (1, sizeof (aigw_heap_t));
}

void
aigw_heap_destroy (aigw_heap_t **self_p)
{
    assert (self_p);
    aigw_heap_t *self = *self_p;
    if (!self)
        return;
    free (self->slots);
    free (self);
    *self_p = NULL;
}

void
aigw_heap_node_init (aigw_heap_node_t *node, int64_t key)
{
    node->key = key;
    node->index = AIGW_HEAP_NONE;
}

//  Put NODE at slot I.
static void
s_place (aigw_heap_t *self, size_t i, aigw_heap_node_t *node)
{
    self->slots[i] = node;
    node->index = i;
}

//  Restore heap order around slot I after its key changed.
static void
s_fix (aigw_heap_t *self, size_t i)
{
    aigw_heap_node_t *node = self->slots[i];
    while (i > 0) {
        size_t parent = (i - 1) / 2;
        if (self->slots[parent]->key <= node->key)
            break;
        s_place (self, i, self->slots[parent]);
        i = parent;
    }
    while (true) {
        size_t child = 2 * i + 1;
        if (child >= self->size)
            break;
        if (child + 1 < self->size && self->slots[child + 1]->key < self->slots[child]->key)
            child++;
        if (self->slots[child]->key >= node->key)
            break;
        s_place (self, i, self->slots[child]);
        i = child;
    }
    s_place (self, i, node);
}

int
aigw_heap_push (aigw_heap_t *self, aigw_heap_node_t *node)
{
    assert (self && node && node->index == AIGW_HEAP_NONE);
    if (self->size == self->cap) {
        size_t cap = self->cap ? self->cap * 2 : S_INITIAL;
        aigw_heap_node_t **slots = (aigw_heap_node_t **) realloc (self->slots, cap * sizeof *slots);
        if (!slots)
            return -1;
        self->slots = slots;
        self->cap = cap;
    }
    s_place (self, self->size++, node);
    s_fix (self, node->index);
    return 0;
}

void
aigw_heap_remove (aigw_heap_t *self, aigw_heap_node_t *node)
{
    assert (self && node);
    size_t i = node->index;
    if (i == AIGW_HEAP_NONE)
        return;
    assert (i < self->size && self->slots[i] == node);
    size_t last = --self->size;
    if (i != last) {
        s_place (self, i, self->slots[last]);
        s_fix (self, i);
    }
    node->index = AIGW_HEAP_NONE;
}

void
aigw_heap_update (aigw_heap_t *self, aigw_heap_node_t *node, int64_t key)
{
    assert (self && node && node->index < self->size);
    node->key = key;
    s_fix (self, node->index);
}

aigw_heap_node_t *
aigw_heap_top (aigw_heap_t *self)
{
    assert (self);
    return self->size ? self->slots[0] : NULL;
}

size_t
aigw_heap_size (aigw_heap_t *self)
{
    assert (self);
    return self->size;
}

//  --------------------------------------------------------------------------
//  Selftest

#define S_TEST_NODES     2000   //  past S_INITIAL, so the array grows thrice
#define S_TEST_ROUNDS    20000  //  random pushes, removals and re-keys
#define S_TEST_KEY_RANGE 500    //  few distinct keys: many ties

//  Check the heap property and every node's slot.
static void
s_test_check (aigw_heap_t *self)
{
    for (size_t i = 0; i < self->size; i++) {
        assert (self->slots[i]->index == i);
        if (i > 0)
            assert (self->slots[(i - 1) / 2]->key <= self->slots[i]->key);
    }
}

void
aigw_heap_test (bool verbose)
{
    aigw_heap_t *heap = aigw_heap_new ();
    assert (heap);
    //  Empty: no top, removing a node that is out is a no-op.
    assert (aigw_heap_size (heap) == 0 && aigw_heap_top (heap) == NULL);
    aigw_heap_node_t lone;
    aigw_heap_node_init (&lone, 7);
    aigw_heap_remove (heap, &lone);
    assert (lone.index == AIGW_HEAP_NONE);
    //  One node in and out.
    assert (aigw_heap_push (heap, &lone) == 0);
    assert (aigw_heap_top (heap) == &lone && aigw_heap_size (heap) == 1);
    aigw_heap_update (heap, &lone, -3);
    assert (aigw_heap_top (heap)->key == -3);
    aigw_heap_remove (heap, &lone);
    assert (aigw_heap_size (heap) == 0 && lone.index == AIGW_HEAP_NONE);

    //  Random pushes, removals from anywhere and re-keys keep the order.
    static aigw_heap_node_t nodes[S_TEST_NODES];
    srand (42);
    for (size_t i = 0; i < S_TEST_NODES; i++)
        aigw_heap_node_init (&nodes[i], rand () % S_TEST_KEY_RANGE);
    size_t in = 0;
    for (size_t round = 0; round < S_TEST_ROUNDS; round++) {
        aigw_heap_node_t *node = &nodes[(size_t) rand () % S_TEST_NODES];
        int action = rand () % 3;
        if (node->index == AIGW_HEAP_NONE) {
            assert (aigw_heap_push (heap, node) == 0);
            in++;
        }
        else if (action == 0) {
            aigw_heap_remove (heap, node);
            in--;
        }
        else
            aigw_heap_update (heap, node, rand () % S_TEST_KEY_RANGE - S_TEST_KEY_RANGE / 2);
        assert (aigw_heap_size (heap) == in);
        if (round % 97 == 0)
            s_test_check (heap);
    }
    s_test_check (heap);
    //  Push all, then pop in order: keys never go down, ties included.
    for (size_t i = 0; i < S_TEST_NODES; i++)
        if (nodes[i].index == AIGW_HEAP_NONE)
            assert (aigw_heap_push (heap, &nodes[i]) == 0);
    assert (aigw_heap_size (heap) == S_TEST_NODES);
    int64_t previous = INT64_MIN;
    size_t popped = 0;
    aigw_heap_node_t *top;
    while ((top = aigw_heap_top (heap))) {
        assert (top->key >= previous);
        previous = top->key;
        aigw_heap_remove (heap, top);
        assert (top->index == AIGW_HEAP_NONE);
        popped++;
    }
    assert (popped == S_TEST_NODES);
    aigw_heap_destroy (&heap);
    assert (heap == NULL);
    aigw_heap_destroy (&heap);
    if (verbose)
        printf ("heap: ok\n");
}
