/*  aigw_list: intrusive doubly linked FIFO. zlistx would allocate a node
    per item and cannot tell which list an item is on; the broker moves each
    request among queues without allocating, hence this class. */
#include "aigw_list.h"

#include <assert.h>
#include <stdio.h>

void
aigw_list_append (aigw_list_t *self, aigw_list_node_t *node)
{
    assert (self && node && !node->list);
    node->list = self;
    node->next = NULL;
    node->prev = self->tail;
    if (self->tail)
        self->tail->next = node;
    else
        self->head = node;
    self->tail = node;
    self->size++;
}

void
aigw_list_unlink (aigw_list_node_t *node)
{
    assert (node);
    aigw_list_t *list = node->list;
    if (!list)
        return;
    if (node->prev)
        node->prev->next = node->next;
    else
        list->head = node->next;
    if (node->next)
        node->next->prev = node->prev;
    else
        list->tail = node->prev;
    node->prev = node->next = NULL;
    node->list = NULL;
    list->size--;
}

aigw_list_t *
aigw_list_of (aigw_list_node_t *node)
{
    assert (node);
    return node->list;
}

aigw_list_node_t *
aigw_list_first (aigw_list_t *self)
{
    assert (self);
    return self->head;
}

aigw_list_node_t *
aigw_list_next (aigw_list_node_t *node)
{
    assert (node);
    return node->next;
}

size_t
aigw_list_size (aigw_list_t *self)
{
    assert (self);
    return self->size;
}

//  --------------------------------------------------------------------------
//  Selftest

#define S_TEST_NODES 100

//  Check SELF's links both ways and its size.
static void
s_test_check (aigw_list_t *self)
{
    size_t count = 0;
    aigw_list_node_t *prev = NULL;
    for (aigw_list_node_t *node = self->head; node; node = node->next) {
        assert (node->list == self && node->prev == prev);
        prev = node;
        count++;
    }
    assert (self->tail == prev && count == self->size);
}

void
aigw_list_test (bool verbose)
{
    //  Empty: zeroed is empty, unlinking a free node is a no-op.
    aigw_list_t list = {0}, other = {0};
    aigw_list_node_t nodes[S_TEST_NODES] = {{0}};
    assert (aigw_list_size (&list) == 0 && aigw_list_first (&list) == NULL);
    aigw_list_unlink (&nodes[0]);
    assert (aigw_list_of (&nodes[0]) == NULL);

    //  FIFO order; one node, then many.
    aigw_list_append (&list, &nodes[0]);
    assert (list.head == &nodes[0] && list.tail == &nodes[0]);
    aigw_list_unlink (&nodes[0]);
    assert (list.head == NULL && list.tail == NULL && list.size == 0);
    for (size_t i = 0; i < S_TEST_NODES; i++)
        aigw_list_append (&list, &nodes[i]);
    s_test_check (&list);
    size_t i = 0;
    for (aigw_list_node_t *node = aigw_list_first (&list); node; node = aigw_list_next (node))
        assert (node == &nodes[i++]);
    assert (i == S_TEST_NODES);

    //  Remove during a walk: every third node moves to the other list.
    i = 0;
    aigw_list_node_t *node = aigw_list_first (&list);
    while (node) {
        aigw_list_node_t *next = aigw_list_next (node);
        if (i++ % 3 == 0) {
            aigw_list_unlink (node);
            aigw_list_append (&other, node);
        }
        node = next;
    }
    s_test_check (&list);
    s_test_check (&other);
    assert (list.size + other.size == S_TEST_NODES);
    assert (aigw_list_of (&nodes[0]) == &other && aigw_list_of (&nodes[1]) == &list);
    //  Head, tail and middle removals.
    aigw_list_unlink (list.head);
    aigw_list_unlink (list.tail);
    aigw_list_unlink (&nodes[50]);
    s_test_check (&list);
    //  Drain from the head, as a queue.
    while (aigw_list_first (&list))
        aigw_list_unlink (aigw_list_first (&list));
    while (aigw_list_first (&other))
        aigw_list_unlink (aigw_list_first (&other));
    assert (list.size == 0 && other.size == 0 && !list.head && !other.tail);
    for (i = 0; i < S_TEST_NODES; i++)
        assert (!nodes[i].list && !nodes[i].prev && !nodes[i].next);
    if (verbose)
        printf ("list: ok\n");
}
