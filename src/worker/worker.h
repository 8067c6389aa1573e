/* worker: a task on the event loop that moves jobs from Redis into MongoDB.
 *
 * Cycle: claim a batch (atomically into this worker's processing list) ->
 * insert it (idempotent by job id) -> acknowledge it and claim the next batch
 * in one Redis step, until a claim comes back empty. An idle worker is woken by the queue's
 * pub/sub notification and, because pub/sub drops messages while disconnected,
 * by a periodic timer. Failures back off exponentially; the batch is kept and
 * retried, never dropped. A job MongoDB refuses for good (max_attempts times),
 * or an entry that is not a job, goes to the dead-letter list with the reason,
 * acknowledged in the same atomic step. */
#ifndef MULTIVAC_WORKER_H
#define MULTIVAC_WORKER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include "obs/histogram.h"
#include "queue/queue.h"
#include "store/store.h"

typedef struct worker worker_t;

typedef struct worker_options {
    /* Unique among all workers sharing the Redis; a second live process
     * started with the same id takes it over (queue.h). */
    const char *id;
    size_t batch; /* jobs claimed at a time */
    uint64_t poll_ms;
    uint64_t lease_ms; /* the lease is refreshed every third of this */
    int max_attempts;  /* a document refused this many times is dead-lettered */
} worker_options_t;

typedef struct worker_stats {
    uint64_t stored;   /* jobs stored (or found already stored) and acknowledged */
    uint64_t failures; /* failed claim, store or ack attempts */
    uint64_t invalid;  /* entries that did not decode as jobs */
    uint64_t dead;     /* jobs and entries dead-lettered */
    /* Inserts the store refused as a whole (down, full, no rights, ...). */
    uint64_t store_unavailable;
    histogram_t job_age;     /* received_at to acknowledged storage, per job */
    histogram_t insert_time; /* one batch insert into MongoDB, answered or not */
} worker_stats_t;

typedef void (*worker_stopped_cb)(void *arg);

/* Never NULL: running out of memory aborts (util/mem.h). */
worker_t *worker_new(uv_loop_t *loop, queue_t *queue, store_t *store, const worker_options_t *opts);
/* Starts polling; claims begin when the queue connects (worker_wake). */
void worker_start(worker_t *w);
/* New jobs may be waiting: claim now if idle. */
void worker_wake(worker_t *w);
const worker_stats_t *worker_stats(const worker_t *w);
/* False while the store refuses this worker's inserts as a whole (an outage:
 * the jobs wait in the queue); true again once an insert gets an answer. */
bool worker_store_ready(const worker_t *w);
/* Finishes the batch in hand (or returns it to the queue if it cannot be
 * stored now), claims nothing more, closes its timer, then calls `cb`. */
void worker_stop(worker_t *w, worker_stopped_cb cb, void *arg);
/* After `cb`, and only once the queue has closed: a reply still in flight
 * then (the return of the batch, a lease refresh) still names the worker. */
void worker_free(worker_t *w);

#endif
