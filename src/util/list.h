/* list: an intrusive, circular, doubly linked list. A list is a list_t head;
 * an element embeds a list_node_t and is found back with list_entry. O(1)
 * insertion and removal, no allocation.
 *
 * A zeroed node is unlinked, and list_remove leaves it so: removing a node
 * twice, or one never inserted, does nothing (list_linked tells). */
#ifndef MULTIVAC_LIST_H
#define MULTIVAC_LIST_H

#include <stdbool.h>
#include <stddef.h>

typedef struct list_node {
    struct list_node *prev, *next; /* NULL while unlinked */
} list_node_t;

/* The head is a node of its own that points at itself when the list is empty. */
typedef struct list {
    list_node_t head;
} list_t;

#define list_entry(node, type, member) ((type *)(void *)((char *)(node)-offsetof(type, member)))

static inline void list_init(list_t *l) { l->head.prev = l->head.next = &l->head; }

static inline bool list_empty(const list_t *l) { return l->head.next == &l->head; }

static inline bool list_linked(const list_node_t *n) { return n->next != NULL; }

static inline void list_insert_between(list_node_t *n, list_node_t *prev, list_node_t *next) {
    n->prev = prev;
    n->next = next;
    prev->next = n;
    next->prev = n;
}

static inline void list_push_front(list_t *l, list_node_t *n) {
    list_insert_between(n, &l->head, l->head.next);
}

static inline void list_push_back(list_t *l, list_node_t *n) {
    list_insert_between(n, l->head.prev, &l->head);
}

static inline void list_remove(list_node_t *n) {
    if (!n->next) return;
    n->prev->next = n->next;
    n->next->prev = n->prev;
    n->prev = n->next = NULL;
}

/* The first node, or NULL when the list is empty. */
static inline list_node_t *list_first(const list_t *l) {
    return list_empty(l) ? NULL : l->head.next;
}

/* The node after `n`, or NULL at the end of `l`. */
static inline list_node_t *list_next(const list_t *l, const list_node_t *n) {
    return n->next == &l->head ? NULL : n->next;
}

/* Moves every node of `from` to the end of `to`, leaving `from` empty. */
static inline void list_splice(list_t *to, list_t *from) {
    if (list_empty(from)) return;
    list_node_t *first = from->head.next, *last = from->head.prev;
    first->prev = to->head.prev;
    to->head.prev->next = first;
    last->next = &to->head;
    to->head.prev = last;
    list_init(from);
}

/* Walks `l`; the loop body may remove the current node (only that one). */
#define list_for_each_safe(l, n, tmp)                                                              \
    for (list_node_t *n = (l)->head.next, *tmp = n->next; n != &(l)->head; n = tmp, tmp = n->next)

#endif
