/* worker: a job leaves the queue only once the store has it. Each worker claims
 * a batch into its own processing list, inserts it (idempotent by job id), and
 * only then acknowledges it, with the next claim or, when the batch has dead
 * letters, with them in one atomic step; a failed step is retried after a
 * backoff, and an acknowledgement that failed is retried alone, never the
 * insert. The store refusing as a whole dead-letters nothing; a document it
 * refuses max_attempts times is dead-lettered with its reason. A worker fenced
 * by another process with its id forgets its batch and claims nothing until the
 * id is free. Stopping finishes or returns the batch in hand and closes every
 * handle; memory runs out only by aborting (util/mem.h). */
#include "worker/worker.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "obs/log.h"
#include "queue/job.h"
#include "util/clock.h"
#include "util/mem.h"
#include "util/strbuf.h"

/* The unit test builds this file with shorter backoffs (-D); the binary never does. */
#ifndef WORKER_BACKOFF_MIN_MS
#define WORKER_BACKOFF_MIN_MS 100
#endif
/* Redis failures back off to 5 s: a reconnect or a wake cuts the wait short,
 * so a long wait costs nothing when Redis returns. */
#ifndef WORKER_BACKOFF_MAX_MS
#define WORKER_BACKOFF_MAX_MS 5000
#endif
/* Nothing tells us when the store answers again, so retrying is how we find
 * out: every 500 ms at most, so the first job is stored within about that of
 * its return, for a few cheap refused or pending attempts a second. */
#ifndef WORKER_STORE_BACKOFF_MAX_MS
#define WORKER_STORE_BACKOFF_MAX_MS 500
#endif

typedef enum {
    WORKER_IDLE,
    WORKER_CLAIMING, /* with the acknowledgement of a stored batch, if any */
    WORKER_STORING,
    WORKER_ACKING,  /* a batch with dead letters: acknowledged with them */
    WORKER_BACKOFF, /* timer pending; then retry the step that failed */
    WORKER_STOPPED,
} worker_state_t;

/* The step a backoff retries. */
typedef enum { WORKER_STEP_CLAIM, WORKER_STEP_STORE, WORKER_STEP_ACK } worker_step_t;

static const char *const worker_step_names[] = {"claim", "store", "ack"};

struct worker {
    queue_t *queue;
    queue_worker_t *qw;
    store_t *store;
    char *id;
    size_t batch_max;
    uint64_t poll_ms;

    worker_state_t state;
    worker_step_t retry; /* in BACKOFF: the step that failed */
    bool store_ready;    /* the last insert was not refused by the store as a whole */
    bool wake_pending;   /* woken while busy: claim again when done */
    bool ack_pending;    /* the batch in hand is stored: the next claim acknowledges it */
    bool fenced;         /* another process holds our id: we claim nothing */
    bool stopping;
    bool logged_failure;
    uint64_t backoff_ms;
    uv_timer_t timer; /* periodic poll when idle, retry delay in backoff */
    /* Keeps the lease alive even while a batch waits on a slow MongoDB, so the
     * reaper only ever requeues the jobs of a worker that is really gone. */
    uv_timer_t heartbeat;
    uint64_t lease_ms;
    int open_handles;

    /* The batch in hand: raw job bytes and the documents pointing into them. */
    strbuf_t raw;
    size_t *offsets;
    store_doc_t *docs;
    job_t *jobs;
    size_t n;
    size_t claimed;  /* entries claimed, including undecodable ones */
    size_t capacity; /* of the arrays above and below */
    int max_attempts;
    int attempts;  /* times MongoDB refused documents of this batch */
    strbuf_t dead; /* dead-letter records (JSON) of this batch */
    size_t *dead_offsets;
    queue_item_t *dead_items;
    size_t dead_n;

    worker_stats_t stats;
    uint64_t store_started_ns;
    worker_stopped_cb stopped_cb;
    void *stopped_arg;
};

static void worker_claim(worker_t *w, bool ack);
static void worker_store(worker_t *w);
static void worker_ack(worker_t *w);
static void worker_finish_stop(worker_t *w);

worker_t *worker_new(uv_loop_t *loop, queue_t *queue, store_t *store,
                     const worker_options_t *opts) {
    worker_t *w = mem_calloc(1, sizeof(*w));
    w->queue = queue;
    w->store = store;
    w->batch_max = opts->batch;
    w->poll_ms = opts->poll_ms;
    w->lease_ms = opts->lease_ms;
    w->max_attempts = opts->max_attempts;
    w->backoff_ms = WORKER_BACKOFF_MIN_MS;
    w->store_ready = true;
    w->id = mem_strdup(opts->id);
    w->qw = queue_worker_new(queue, opts->id);
    w->offsets = mem_calloc(opts->batch, sizeof(*w->offsets));
    w->docs = mem_calloc(opts->batch, sizeof(*w->docs));
    w->jobs = mem_calloc(opts->batch, sizeof(*w->jobs));
    w->dead_offsets = mem_calloc(opts->batch, sizeof(*w->dead_offsets));
    w->dead_items = mem_calloc(opts->batch, sizeof(*w->dead_items));
    w->capacity = opts->batch;
    uv_timer_init(loop, &w->timer);
    uv_timer_init(loop, &w->heartbeat);
    w->timer.data = w->heartbeat.data = w;
    w->open_handles = 2;
    return w;
}

/* A held batch can exceed batch_max if an earlier process with a larger batch
 * size left it; it must be stored whole, since acknowledging drops all of it. */
static void worker_grow(worker_t *w, size_t n) {
    w->offsets = mem_realloc(w->offsets, n * sizeof(*w->offsets));
    w->docs = mem_realloc(w->docs, n * sizeof(*w->docs));
    w->jobs = mem_realloc(w->jobs, n * sizeof(*w->jobs));
    w->dead_offsets = mem_realloc(w->dead_offsets, n * sizeof(*w->dead_offsets));
    w->dead_items = mem_realloc(w->dead_items, n * sizeof(*w->dead_items));
    w->capacity = n;
}

const worker_stats_t *worker_stats(const worker_t *w) { return &w->stats; }

bool worker_store_ready(const worker_t *w) { return w->store_ready; }

/* Retries the step that failed: an acknowledgement that failed is retried
 * alone, the batch is already stored. */
static void worker_retry(worker_t *w) {
    switch (w->retry) {
    case WORKER_STEP_CLAIM: worker_claim(w, w->ack_pending); break;
    case WORKER_STEP_STORE: worker_store(w); break;
    case WORKER_STEP_ACK: worker_ack(w); break;
    }
}

static void worker_on_timer(uv_timer_t *t) {
    worker_t *w = t->data;
    if (w->state == WORKER_IDLE) {
        worker_claim(w, false);
    } else if (w->state == WORKER_BACKOFF) {
        worker_retry(w);
    }
}

static void worker_idle(worker_t *w) {
    w->state = WORKER_IDLE;
    if (w->stopping) {
        worker_finish_stop(w);
        return;
    }
    uv_timer_start(&w->timer, worker_on_timer, w->poll_ms, w->poll_ms);
}

static void worker_fail(worker_t *w, worker_step_t step, const char *err) {
    w->stats.failures++;
    if (!w->logged_failure) {
        log_warn("worker step failed, backing off", "worker", w->id, "step",
                 worker_step_names[step], "error", err);
        w->logged_failure = true;
    }
    if (w->stopping) {
        worker_idle(w); /* stopping returns what is claimed to the queue */
        return;
    }
    w->state = WORKER_BACKOFF;
    w->retry = step;
    uint64_t max = step == WORKER_STEP_STORE ? WORKER_STORE_BACKOFF_MAX_MS : WORKER_BACKOFF_MAX_MS;
    if (w->backoff_ms > max) w->backoff_ms = max;
    uv_timer_start(&w->timer, worker_on_timer, w->backoff_ms, 0);
    w->backoff_ms *= 2;
    if (w->backoff_ms > max) w->backoff_ms = max;
}

static void worker_recovered(worker_t *w) {
    if (w->logged_failure) log_info("worker recovered", "worker", w->id);
    w->logged_failure = false;
    w->backoff_ms = WORKER_BACKOFF_MIN_MS;
}

/* Appends one dead-letter record:
 * {"id":..., "attempts":N, "error":..., "failed_at":ms, "worker":..., "job":<entry>}
 * `job` is the queue entry as it was, so requeueing restores it exactly.
 * strbuf refuses only sizes past half the address space: none here. */
static void worker_dead_record(worker_t *w, const char *id, const char *error, const char *entry,
                               size_t entry_len) {
    long long now_ms = (long long)clock_wall_ms();
    w->dead_offsets[w->dead_n] = w->dead.len;
    strbuf_append_str(&w->dead, "{\"id\": \"");
    strbuf_append_json(&w->dead, id, strlen(id));
    strbuf_printf(&w->dead, "\", \"attempts\": %d, \"error\": \"", w->attempts);
    strbuf_append_json(&w->dead, error, strlen(error));
    strbuf_printf(&w->dead, "\", \"failed_at\": %lld, \"worker\": \"", now_ms);
    strbuf_append_json(&w->dead, w->id, strlen(w->id));
    strbuf_append_str(&w->dead, "\", \"job\": \"");
    strbuf_append_json(&w->dead, entry, entry_len);
    strbuf_append_str(&w->dead, "\"}");
    w->dead_n++;
}

/* Offsets become pointers only once the buffer has stopped growing. */
static void worker_dead_items(worker_t *w) {
    for (size_t i = 0; i < w->dead_n; i++) {
        size_t end = i + 1 < w->dead_n ? w->dead_offsets[i + 1] : w->dead.len;
        w->dead_items[i] =
            (queue_item_t){w->dead.data + w->dead_offsets[i], end - w->dead_offsets[i]};
    }
}

/* Nothing in hand any more: acknowledged, or taken over by another process. */
static void worker_forget_batch(worker_t *w) {
    w->n = 0;
    w->dead_n = 0;
    w->claimed = 0;
    w->ack_pending = false;
}

/* How often the lease is refreshed, and a fenced worker tries again. */
static uint64_t worker_lease_pace(const worker_t *w) {
    return w->lease_ms / 3 ? w->lease_ms / 3 : 1;
}

/* The batch in hand is acknowledged: count it. */
static void worker_batch_done(worker_t *w) {
    int64_t now_ms = clock_wall_ms();
    for (size_t i = 0; i < w->n; i++) {
        int64_t age_ms = now_ms - w->docs[i].received_at_ms;
        histogram_observe(&w->stats.job_age, age_ms > 0 ? (double)age_ms / 1000 : 0);
    }
    w->stats.stored += w->n;
    w->stats.dead += w->dead_n;
    worker_forget_batch(w);
}

/* Another process was started with our id and took it over (the one started
 * last wins): what we hold is its now, and we claim nothing until its lease
 * ends. Retried at the lease's pace. */
static void worker_fenced(worker_t *w) {
    w->stats.failures++;
    if (!w->fenced)
        log_error("another process holds this worker id: claiming nothing until it stops "
                  "(is MULTIVAC_WORKER_ID shared?)",
                  "worker", w->id);
    w->fenced = true;
    worker_forget_batch(w);
    if (w->stopping) {
        worker_idle(w);
        return;
    }
    w->state = WORKER_BACKOFF;
    w->retry = WORKER_STEP_CLAIM;
    uv_timer_start(&w->timer, worker_on_timer, worker_lease_pace(w), 0);
}

static void worker_on_claimed(void *arg, int status, const queue_batch_t *batch) {
    worker_t *w = arg;
    if (status == QUEUE_FENCED) {
        worker_fenced(w);
        return;
    }
    if (status != QUEUE_OK) {
        worker_fail(w, WORKER_STEP_CLAIM, queue_strerror(status));
        return;
    }
    if (w->fenced) log_info("worker id free again: claiming", "worker", w->id);
    w->fenced = false;
    /* Acknowledged now, or by an attempt whose reply was lost, or reaped
     * after the lease expired (then stored twice, once by _id): done. */
    if (w->ack_pending) worker_batch_done(w);
    worker_recovered(w);
    if (w->stopping) {
        /* Anything returned goes back to the queue on stop. */
        w->claimed = batch->n;
        worker_idle(w);
        return;
    }
    if (batch->n == 0) {
        bool again = w->wake_pending || batch->remaining > 0;
        w->wake_pending = false;
        if (again) {
            worker_claim(w, false);
        } else {
            worker_idle(w);
        }
        return;
    }
    size_t n = batch->n;
    const queue_item_t *items = batch->items;
    /* Items live only during this callback: copy the batch, then decode. */
    strbuf_reset(&w->raw);
    strbuf_reset(&w->dead);
    w->n = 0;
    w->dead_n = 0;
    w->attempts = 0;
    w->claimed = n;
    if (n > w->capacity) worker_grow(w, n);
    for (size_t i = 0; i < n; i++) {
        w->offsets[i] = w->raw.len;
        strbuf_append(&w->raw, items[i].ptr, items[i].len);
    }
    for (size_t i = 0; i < n; i++) {
        size_t end = i + 1 < n ? w->offsets[i + 1] : w->raw.len;
        job_t *job = &w->jobs[w->n];
        if (job_decode(w->raw.data + w->offsets[i], end - w->offsets[i], job) != 0) {
            /* Not ours (a foreign writer, a future format): storing it is
             * impossible and retrying it forever would stall the queue. */
            w->stats.invalid++;
            log_error("dead-lettering undecodable queue entry", "worker", w->id);
            worker_dead_record(w, "", "undecodable queue entry", w->raw.data + w->offsets[i],
                               end - w->offsets[i]);
            continue;
        }
        w->docs[w->n] = (store_doc_t){job->id, job->data, job->data_len, job->received_at_ms};
        w->n++;
    }
    worker_store(w);
}

/* With `ack`, the stored batch in hand is acknowledged in the same step: one
 * round trip per batch. Stopping, it only acknowledges. */
static void worker_claim(worker_t *w, bool ack) {
    uv_timer_stop(&w->timer);
    w->state = WORKER_CLAIMING;
    w->wake_pending = false;
    queue_worker_claim(w->qw, w->stopping ? 0 : w->batch_max, ack, worker_on_claimed, w);
}

/* MongoDB refused documents for good `max_attempts` times: dead-letter them,
 * keeping the rest of the batch (stored) to be acknowledged with them. */
static void worker_dead_letter_rejected(worker_t *w, const char *err,
                                        const unsigned char *rejected) {
    size_t kept = 0;
    for (size_t i = 0; i < w->n; i++) {
        if (!rejected[i]) {
            w->docs[kept++] = w->docs[i];
            continue;
        }
        char line[64];
        snprintf(line, sizeof(line), "%d", w->attempts);
        log_error("dead-lettering a job MongoDB refuses", "worker", w->id, "job", w->docs[i].id,
                  "attempts", line, "error", err);
        /* Re-encode: the decoded job points into `raw`, which holds it whole.
         * What decoded encodes again: this cannot fail. */
        strbuf_t entry = STRBUF_INIT;
        job_encode(w->docs[i].id, w->docs[i].received_at_ms, w->docs[i].data, w->docs[i].data_len,
                   &entry);
        worker_dead_record(w, w->docs[i].id, err, entry.data, entry.len);
        strbuf_free(&entry);
    }
    w->n = kept;
}

static void worker_on_stored(void *arg, int status, const char *err,
                             const unsigned char *rejected) {
    worker_t *w = arg;
    histogram_observe(&w->stats.insert_time, (double)(uv_hrtime() - w->store_started_ns) / 1e9);
    /* Refused as a whole: the store is out, whatever the documents. Attempts
     * count only refusals of particular documents, so an outage never
     * dead-letters anything. */
    if (status == STORE_UNAVAILABLE) {
        if (w->store_ready && !w->stopping)
            log_error("store refuses writes: holding jobs in the queue", "worker", w->id, "error",
                      err);
        w->store_ready = false;
        w->stats.store_unavailable++;
    } else if (status == STORE_OK || status == STORE_REJECTED) {
        if (!w->store_ready) log_info("store takes writes again", "worker", w->id);
        w->store_ready = true;
    }
    if (status == STORE_REJECTED && !w->stopping && ++w->attempts >= w->max_attempts) {
        worker_dead_letter_rejected(w, err, rejected);
        status = STORE_OK;
    }
    if (status != STORE_OK) {
        if (w->stopping) {
            worker_idle(w); /* stopping returns the batch to the queue */
            return;
        }
        worker_fail(w, WORKER_STEP_STORE, err);
        return;
    }
    worker_ack(w);
}

static void worker_store(worker_t *w) {
    w->state = WORKER_STORING;
    w->store_started_ns = uv_hrtime();
    store_insert(w->store, w->docs, w->n, worker_on_stored, w);
}

static void worker_on_acked_dead(void *arg, int status) {
    worker_t *w = arg;
    if (status != QUEUE_OK) {
        /* The batch is stored and stays in the processing list: only the
         * acknowledgement is retried (it applies once). */
        worker_fail(w, WORKER_STEP_ACK, queue_strerror(status));
        return;
    }
    worker_recovered(w);
    worker_batch_done(w);
    if (w->stopping) {
        worker_idle(w);
    } else {
        worker_claim(w, false);
    }
}

/* The batch is stored: acknowledge it. Dead letters go with their own
 * acknowledgement; otherwise the next claim carries it. */
static void worker_ack(worker_t *w) {
    if (w->dead_n > 0) {
        w->state = WORKER_ACKING;
        worker_dead_items(w);
        queue_worker_ack_dead(w->qw, w->dead_items, w->dead_n, worker_on_acked_dead, w);
        return;
    }
    w->ack_pending = true;
    worker_claim(w, true);
}

static void worker_on_heartbeat_reply(void *arg, int status) {
    worker_t *w = arg;
    if (status == QUEUE_FENCED && !w->fenced)
        log_error("another process took this worker id over; the batch in hand is its now",
                  "worker", w->id);
}

static void worker_on_heartbeat(uv_timer_t *t) {
    worker_t *w = t->data;
    queue_worker_heartbeat(w->qw, worker_on_heartbeat_reply, w);
}

/* The first claim waits for the queue's wake-up on connecting, or the poll. */
void worker_start(worker_t *w) {
    uv_timer_start(&w->heartbeat, worker_on_heartbeat, worker_lease_pace(w), worker_lease_pace(w));
    worker_idle(w);
}

void worker_wake(worker_t *w) {
    if (w->stopping) return;
    if (w->state == WORKER_IDLE) {
        worker_claim(w, false);
        return;
    }
    w->wake_pending = true;
    /* A wake comes from Redis (a reconnect, a message): a Redis step waiting
     * out its backoff can go now. A store step cannot, the store is not
     * back because Redis is; the backoff doubling goes on either way. */
    if (w->state == WORKER_BACKOFF && w->retry != WORKER_STEP_STORE && !w->fenced &&
        queue_ready(w->queue)) {
        uv_timer_stop(&w->timer);
        worker_retry(w);
    }
}

static void worker_on_timer_closed(uv_handle_t *h) {
    worker_t *w = h->data;
    if (--w->open_handles > 0) return;
    w->state = WORKER_STOPPED;
    if (w->stopped_cb) w->stopped_cb(w->stopped_arg);
}

static void worker_on_released(void *arg, int status) {
    worker_t *w = arg;
    /* The jobs then stay in this worker's processing list: nothing is lost,
     * the reaper returns them once the lease expires. */
    if (status != QUEUE_OK && (w->n > 0 || w->claimed > 0))
        log_warn("could not return the unstored batch on stop", "worker", w->id);
}

static void worker_finish_stop(worker_t *w) {
    if (uv_is_closing((uv_handle_t *)&w->timer)) return;
    /* Leaving: whatever is still claimed (a batch MongoDB did not take, or an
     * acknowledgement that failed) goes back to the queue, and the lease goes. */
    queue_worker_release(w->qw, worker_on_released, w);
    uv_close((uv_handle_t *)&w->timer, worker_on_timer_closed);
    uv_close((uv_handle_t *)&w->heartbeat, worker_on_timer_closed);
}

void worker_stop(worker_t *w, worker_stopped_cb cb, void *arg) {
    w->stopping = true;
    w->stopped_cb = cb;
    w->stopped_arg = arg;
    switch (w->state) {
    case WORKER_IDLE: worker_finish_stop(w); break;
    case WORKER_BACKOFF:
        uv_timer_stop(&w->timer);
        w->state = WORKER_IDLE;
        worker_finish_stop(w);
        break;
    default: break; /* the step in flight finishes, then stops */
    }
}

void worker_free(worker_t *w) {
    if (!w) return;
    queue_worker_free(w->qw);
    strbuf_free(&w->raw);
    strbuf_free(&w->dead);
    free(w->dead_offsets);
    free(w->dead_items);
    free(w->offsets);
    free(w->docs);
    free(w->jobs);
    free(w->id);
    free(w);
}
