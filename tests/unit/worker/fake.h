/* fake: the queue and the store the worker test links in place of
 * src/queue/queue.c and src/store/store.c (link-time substitution).
 *
 * Every queue_worker_* and store_insert call the worker makes is recorded and
 * answered later on the loop, from a zero timer the fakes own, so the worker's
 * asynchronous paths run as in production; a scripted outcome can instead
 * answer within the call (as queue.c does when Redis is not connected) or be
 * held until the test lets it go (a step still outstanding).
 *
 * The queue is a small model of the Redis side: a pending list, the worker's
 * processing list, the dead letters. A claim takes jobs from pending into
 * processing (or returns what processing still holds), an acknowledgement
 * empties processing, a release returns it to the front of pending, a fence
 * takes it away (it belongs to the other process). The store remembers which
 * ids it holds. Outcomes default to success. */
#ifndef MULTIVAC_TEST_FAKE_H
#define MULTIVAC_TEST_FAKE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include "queue/queue.h"
#include "store/store.h"

typedef enum {
    FAKE_CLAIM,     /* queue_worker_claim */
    FAKE_ACK_DEAD,  /* queue_worker_ack_dead */
    FAKE_HEARTBEAT, /* queue_worker_heartbeat */
    FAKE_RELEASE,   /* queue_worker_release */
    FAKE_INSERT,    /* store_insert */
    FAKE_KINDS
} fake_kind_t;

/* The outcome of one call. */
typedef struct fake_outcome {
    int status;      /* a queue_status_t, or a store_status_t for inserts */
    bool applied;    /* a failed claim, ack or release that Redis applied (a lost reply) */
    bool hold;       /* answered only once fake_let_go() lets it */
    bool sync;       /* answered within the call */
    bool empty;      /* a claim that returns no items though jobs are pending */
    const char *err; /* an insert's message */
    const unsigned char *rejected; /* STORE_REJECTED: one flag per document */
} fake_outcome_t;

/* One recorded call. */
typedef struct fake_call {
    uint64_t at_ms;   /* uv_now() when called */
    uint64_t done_ms; /* uv_now() when answered */
    bool done;
    int status; /* answered with */
    size_t max; /* claim */
    bool ack;   /* claim */
    /* claim: items returned; insert: documents; ack_dead: records */
    size_t n;
    /* insert: the ids, each followed by ','; ack_dead: the records, each
     * followed by '\n' */
    char *text;
    /* insert: the documents read again when answered differed from the call's */
    bool docs_changed;
} fake_call_t;

void fake_init(uv_loop_t *loop);
/* Forgets every record, script and model entry; nothing may be outstanding. */
void fake_reset(void);
/* Closes the fakes' timer (run the loop afterwards). */
void fake_close(void);

/* Outcomes are used in the order scripted, per kind; unscripted calls succeed. */
void fake_script(fake_kind_t kind, fake_outcome_t outcome);
/* Shorthands: the next call of `kind` answers `status`; or is held. */
void fake_fail(fake_kind_t kind, int status);
void fake_hold(fake_kind_t kind);
/* Lets the oldest held call of `kind` be answered on the loop; false if none. */
bool fake_let_go(fake_kind_t kind);

size_t fake_calls(fake_kind_t kind);
const fake_call_t *fake_call(fake_kind_t kind, size_t i);
/* Calls made and not yet answered, of every kind. */
size_t fake_outstanding(void);

/* ---- the queue model ---- */
queue_t *fake_queue(void);
void fake_queue_set_ready(bool ready); /* queue_ready(); true after fake_reset */
/* Appends an entry to the pending list as is; or a job, encoded. */
void fake_queue_push(const char *entry);
void fake_queue_push_job(const char *id, int64_t received_at_ms, const char *data);
/* Appends an entry to the processing list: a batch an earlier process left. */
void fake_queue_hold(const char *entry);
size_t fake_queue_pending(void);
size_t fake_queue_processing(void);
size_t fake_queue_dead(void);
const char *fake_queue_dead_record(size_t i);
uint64_t fake_queue_acked(void); /* entries acknowledged, in total */
uint64_t fake_queue_taken(void); /* entries a fence gave to the other process */
const char *fake_queue_worker_id(void);
int fake_queue_handles(void); /* queue_worker_t handles not yet gone */

/* ---- the store model ---- */
store_t *fake_store(void);
/* How many documents with `id` the store holds (0 or 1: inserts are idempotent). */
int fake_store_has(const char *id);
size_t fake_store_count(void);
/* Inserted again while already stored (harmless, but the worker's test counts it). */
size_t fake_store_again(void);

/* ---- for the fakes themselves ---- */
typedef struct fake_op fake_op_t;
struct fake_op {
    fake_op_t *next;
    fake_kind_t kind;
    size_t call; /* index of its record */
    fake_outcome_t out;
    void (*answer)(fake_op_t *op); /* answers and frees the op */
};
/* Records a call of `kind` and takes its outcome. */
size_t fake_record(fake_kind_t kind, fake_outcome_t *out);
fake_call_t *fake_call_mut(fake_kind_t kind, size_t i);
/* Answers `op` now (sync), later on the loop, or once let go (hold). */
void fake_defer(fake_op_t *op);
/* Marks the call answered with `status` (call first thing in `answer`). */
void fake_answered(fake_op_t *op, int status);
uv_loop_t *fake_loop(void);
void fake_queue_reset(void);
void fake_store_reset(void);

#endif
