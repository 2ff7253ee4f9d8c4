/*  aigw_list: an intrusive doubly linked FIFO. Each item embeds an
    aigw_list_node_t and is on at most one list at a time; the node knows
    its list, so an item leaves whatever list holds it in O(1). A list is a
    plain struct, empty when zeroed, and owns nothing. */
#ifndef AIGW_LIST_H_INCLUDED
#define AIGW_LIST_H_INCLUDED

#include <stdbool.h>
#include <stddef.h>

typedef struct _aigw_list_t aigw_list_t;
typedef struct _aigw_list_node_t aigw_list_node_t;

//  Embedded in each item; zeroed means on no list.
struct _aigw_list_node_t {
    aigw_list_node_t *prev;  //  previous node on the same list
    aigw_list_node_t *next;  //  next node on the same list
    aigw_list_t *list;       //  list holding it, NULL if none
};

struct _aigw_list_t {
    aigw_list_node_t *head;  //  oldest node
    aigw_list_node_t *tail;  //  newest node
    size_t size;             //  nodes on the list
};

//  Append NODE, which is on no list, to SELF.
void aigw_list_append (aigw_list_t *self, aigw_list_node_t *node);

//  Take NODE off its list, if any.
void aigw_list_unlink (aigw_list_node_t *node);

//  The list holding NODE, or NULL.
aigw_list_t *aigw_list_of (aigw_list_node_t *node);

//  Oldest node, or NULL if empty; the next one after NODE, or NULL. Take
//  the next before unlinking NODE when removing during a walk.
aigw_list_node_t *aigw_list_first (aigw_list_t *self);
aigw_list_node_t *aigw_list_next (aigw_list_node_t *node);

size_t aigw_list_size (aigw_list_t *self);

void aigw_list_test (bool verbose);

#endif
