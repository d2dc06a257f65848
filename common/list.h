/* SPDX-License-Identifier: GPL-2.0-or-later */
#pragma once

/*
 * The one list of the project: intrusive and doubly linked, reached from a head pointer.
 *
 * An element that can be in a list named `name` carries LIST_FIELDS(Type, name), that is
 * two pointers `name_next` and `name_prev`; it can be in as many lists as it has such
 * pairs. The head is a plain `Type *`, NULL when the list is empty.
 *
 * Shape: forward links end in NULL; the head's `prev` points at the last element (at
 * itself when it is alone), so appending, removing and finding the tail take constant
 * time and the head needs no second pointer. Every other element's `prev` is its real
 * predecessor. An element in no list has both pointers NULL (LIST_LINKED() is false),
 * which LIST_REMOVE() leaves behind, so removing twice is harmless.
 *
 * Iterating with LIST_FOREACH_SAFE() allows the current element to be removed (and
 * freed); any other change of the list during an iteration is the caller's problem.
 */

#include <assert.h>
#include <stdbool.h>
#include <stddef.h>

#define LIST_FIELDS(type, name) type *name##_next, *name##_prev

/* Whether the element is in a list through the pair `name`. */
#define LIST_LINKED(name, item) ((item)->name##_prev != NULL)

#define LIST_IS_EMPTY(head) ((head) == NULL)

/* The last element, or NULL. */
#define LIST_TAIL(name, head) ((head) ? (head)->name##_prev : NULL)

#define LIST_PREPEND(name, head, item)                                                                                 \
        do {                                                                                                           \
                __typeof__(*(head)) **_lh = &(head), *_li = (item);                                                    \
                assert(!LIST_LINKED(name, _li));                                                                       \
                _li->name##_next = *_lh;                                                                               \
                if (*_lh) {                                                                                            \
                        _li->name##_prev = (*_lh)->name##_prev;                                                        \
                        (*_lh)->name##_prev = _li;                                                                     \
                } else                                                                                                 \
                        _li->name##_prev = _li;                                                                        \
                *_lh = _li;                                                                                            \
        } while (0)

#define LIST_APPEND(name, head, item)                                                                                  \
        do {                                                                                                           \
                __typeof__(*(head)) **_lh = &(head), *_li = (item);                                                    \
                assert(!LIST_LINKED(name, _li));                                                                       \
                _li->name##_next = NULL;                                                                               \
                if (*_lh) {                                                                                            \
                        __typeof__(*(head)) *_lt = (*_lh)->name##_prev;                                                \
                        _lt->name##_next = _li;                                                                        \
                        _li->name##_prev = _lt;                                                                        \
                        (*_lh)->name##_prev = _li;                                                                     \
                } else {                                                                                               \
                        _li->name##_prev = _li;                                                                        \
                        *_lh = _li;                                                                                    \
                }                                                                                                      \
        } while (0)

/* Removes item from the list at head; an element in no list is left alone. */
#define LIST_REMOVE(name, head, item)                                                                                  \
        do {                                                                                                           \
                __typeof__(*(head)) **_lh = &(head), *_li = (item);                                                    \
                if (!LIST_LINKED(name, _li))                                                                           \
                        break;                                                                                         \
                if (_li == *_lh) {                                                                                     \
                        *_lh = _li->name##_next;                                                                       \
                        if (*_lh)                                                                                      \
                                (*_lh)->name##_prev = _li->name##_prev;                                                \
                } else {                                                                                               \
                        _li->name##_prev->name##_next = _li->name##_next;                                              \
                        if (_li->name##_next)                                                                          \
                                _li->name##_next->name##_prev = _li->name##_prev;                                      \
                        else                                                                                           \
                                (*_lh)->name##_prev = _li->name##_prev;                                                \
                }                                                                                                      \
                _li->name##_next = _li->name##_prev = NULL;                                                            \
        } while (0)

/* Removes and returns the first element, or NULL. */
#define LIST_POP(name, head)                                                                                           \
        ({                                                                                                             \
                __typeof__(*(head)) *_lf = (head);                                                                     \
                if (_lf)                                                                                               \
                        LIST_REMOVE(name, head, _lf);                                                                  \
                _lf;                                                                                                   \
        })

/* Moves every element of `from` to the end of `to`; `from` is empty afterwards. */
#define LIST_JOIN(name, to, from)                                                                                      \
        do {                                                                                                           \
                __typeof__(*(to)) **_lt = &(to), **_lf = &(from);                                                      \
                if (!*_lf)                                                                                             \
                        break;                                                                                         \
                if (*_lt) {                                                                                            \
                        __typeof__(*(to)) *_tail = (*_lt)->name##_prev, *_ftail = (*_lf)->name##_prev;                 \
                        _tail->name##_next = *_lf;                                                                     \
                        (*_lf)->name##_prev = _tail;                                                                   \
                        (*_lt)->name##_prev = _ftail;                                                                  \
                } else                                                                                                 \
                        *_lt = *_lf;                                                                                   \
                *_lf = NULL;                                                                                           \
        } while (0)

#define LIST_FOREACH(name, i, head) for ((i) = (head); (i); (i) = (i)->name##_next)

/* The current element may be removed and freed in the body. */
#define LIST_FOREACH_SAFE(name, i, n, head) for ((i) = (head); (i) && (((n) = (i)->name##_next), 1); (i) = (n))
