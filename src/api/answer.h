/* answer: MultiVAC's answer, held in memory and kept current.
 *
 * The answer is the `data` of the oldest document in the entropy collection, or
 * nothing yet. GET /multivac reads it from here, so serving it costs no database
 * round trip. It is re-read from MongoDB when a worker (in any process) announces
 * stored documents, when the subscription restarts (announcements may have been
 * missed), and every `refresh_ms` as a safety net (which also notices a
 * collection emptied by hand). Long-polling requests wait here to be woken. */
#ifndef MULTIVAC_ANSWER_H
#define MULTIVAC_ANSWER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include "store/store.h"
#include "util/list.h"

typedef struct answer answer_t;

/* A waiter, owned by the caller; linked here until woken or cancelled. */
typedef struct answer_waiter answer_waiter_t;
struct answer_waiter {
    void (*cb)(answer_waiter_t *w); /* the answer is known, or the server stops */
    void *data;
    list_node_t node; /* private; zeroed: not waiting */
};

typedef void (*answer_closed_cb)(void *arg);

answer_t *answer_new(uv_loop_t *loop, store_t *store, uint64_t refresh_ms);
void answer_start(answer_t *a);
/* Documents may have been stored: re-read if no answer is known yet. */
void answer_refresh(answer_t *a);
/* Re-read whatever is known (after a missed-notification window). */
void answer_reload(answer_t *a);
/* Returns true with the answer, or false when there is none yet. */
bool answer_get(const answer_t *a, const char **data, size_t *len);

/* The last read from MongoDB succeeded (at most `refresh_ms` old): the
 * multivac_mongo_ready gauge of an HTTP process. */
bool answer_store_ok(const answer_t *a);

/* Parks `w` until the answer is known. Returns false (and parks nothing) once
 * answer_close has run: the caller answers with what it has. */
bool answer_wait(answer_t *a, answer_waiter_t *w);
void answer_cancel(answer_t *a, answer_waiter_t *w);

/* Wakes every waiter, stops refreshing, waits for a read in flight, then `cb`. */
void answer_close(answer_t *a, answer_closed_cb cb, void *arg);
void answer_free(answer_t *a);

#endif
