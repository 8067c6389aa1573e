/* queue: MultiVAC's job queue and notifications, on Redis.
 *
 * Keys and channels, all under the configured prefix P (default "multivac:"):
 *   P jobs                list    pending jobs; producers LPUSH, workers take from the tail
 *   P processing:<worker> list    jobs a worker has claimed and not yet acknowledged
 *   P lease:<worker>      string  exists while the worker is alive (expires after 30 s)
 *   P workers             set     worker ids that may hold processing lists
 *   P wake                channel "new jobs": wakes idle workers
 *   P stored              channel "new documents": servers refresh their answer
 *   P dead                list    dead letters: jobs that cannot be stored, as JSON
 *
 * Pushes are group-committed: the pushes made during one loop iteration go to
 * Redis together (LPUSHes of at most 1024 jobs and 1 MiB each, then one
 * PUBLISH), and each caller hears back when Redis has acknowledged it. At most
 * 8 MiB of job bytes are handed to hiredis unacknowledged; further pushes wait
 * their turn in the queue's own list. A job is claimed by moving it atomically (a Lua script)
 * into the worker's processing list, and acknowledged by deleting that list once
 * the batch is stored, so a job is never only in a worker's memory. */
#ifndef MULTIVAC_QUEUE_H
#define MULTIVAC_QUEUE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include "queue/redis.h"

typedef struct queue queue_t;

#define QUEUE_OK 0
#define QUEUE_UNAVAILABLE (-1) /* Redis not connected: the command was not sent */
#define QUEUE_ERROR (-2)       /* Redis answered with an error */
#define QUEUE_FULL (-3)        /* backpressure: too many jobs queued or in flight */
#define QUEUE_LOST (-4)        /* sent, but the connection died before the reply: unknown */
#define QUEUE_CONFLICT (-5)    /* the idempotency key was used for other data */

/* How long an idempotency key is remembered: a client's retries of one
 * request arrive within this. After it, a retry is queued again, and still
 * stored once, since its job id (the _id) is the same. */
#define QUEUE_IDEM_TTL_MS 86400000

typedef struct queue_options {
    redis_conn_options_t redis; /* `name` is ignored */
    const char *prefix;
    uint64_t lease_ms;    /* a worker silent this long has its jobs requeued */
    uint64_t depth_max;   /* queued jobs above which pushes are refused */
    size_t in_flight_max; /* pushes waiting on Redis above which they are refused */
    /* Job bytes waiting on Redis beyond which a push is refused (0: no bound). */
    size_t in_flight_bytes_max;
    bool subscribe_wake;   /* workers run in this process */
    bool subscribe_stored; /* an HTTP server runs in this process */
} queue_options_t;

typedef struct queue_events {
    void (*on_wake)(void *arg);   /* jobs were pushed (by any process) */
    void (*on_stored)(void *arg); /* documents were stored (by any process) */
    /* The subscription (re)started: messages may have been missed meanwhile. */
    void (*on_subscribed)(void *arg);
    void *arg;
} queue_events_t;

/* A push request; the caller owns it and the job bytes until `cb` runs. */
typedef struct queue_push queue_push_t;
typedef void (*queue_push_cb)(queue_push_t *req, int status);
struct queue_push {
    const char *job;
    size_t job_len;
    queue_push_cb cb;
    void *data;
    /* With an idempotency key (NULL: none): the job's id, which names the key
     * in Redis, and the fingerprint of its data. The first push of a key
     * records the fingerprint and queues the job in one atomic step; a push
     * with the same key and fingerprint queues nothing and succeeds, one with
     * another fingerprint gets QUEUE_CONFLICT. Such pushes go one by one. */
    const char *idem_id;
    const char *fingerprint;
    queue_push_t *next; /* private */
};

typedef struct queue_item {
    const char *ptr;
    size_t len;
} queue_item_t;

typedef void (*queue_claim_cb)(void *arg, int status, const queue_item_t *items, size_t n);
typedef void (*queue_done_cb)(void *arg, int status);
typedef void (*queue_count_cb)(void *arg, long long count);
typedef void (*queue_closed_cb)(void *arg);

queue_t *queue_new(uv_loop_t *loop, const queue_options_t *opts, const queue_events_t *events);
void queue_start(queue_t *q);
/* Both connections (commands, and the subscription if any) are up. */
bool queue_ready(const queue_t *q);

/* QUEUE_OK when a push of `job_len` bytes would be taken now;
 * QUEUE_UNAVAILABLE when Redis is not connected; QUEUE_FULL when the queue is
 * deeper than depth_max (as last seen: every push reply and a 500 ms poll
 * update it), or in_flight_max pushes already wait on Redis, or their bytes
 * plus `job_len` would pass in_flight_bytes_max, which bounds the memory they
 * hold when Redis is slow. With nothing waiting, a job of any size passes. */
int queue_admit(const queue_t *q, size_t job_len);
/* Jobs pending in Redis, as last seen. */
uint64_t queue_depth(const queue_t *q);
/* Entries of the dead-letter list, as last seen (polled with the depth). */
uint64_t queue_dead_count(const queue_t *q);

void queue_push(queue_t *q, queue_push_t *req);

/* Claims up to `max` jobs for `worker_id`. If that worker's processing list still
 * holds jobs (an acknowledgement that never arrived), those are returned again
 * instead, so nothing claimed is ever skipped. Items are valid during `cb`. */
void queue_claim(queue_t *q, const char *worker_id, size_t max, queue_claim_cb cb, void *arg);
/* Acknowledges the worker's claimed jobs and announces new documents. */
void queue_ack(queue_t *q, const char *worker_id, queue_done_cb cb, void *arg);
/* Acknowledges the worker's claimed jobs like queue_ack, in the same atomic
 * step adding `records` (JSON, one per job that cannot be stored) to the
 * dead-letter list. */
void queue_ack_dead(queue_t *q, const char *worker_id, const queue_item_t *records, size_t n,
                    queue_done_cb cb, void *arg);
/* Dead letters, newest first: `cb` gets them during the callback. */
void queue_dead_list(queue_t *q, queue_claim_cb cb, void *arg);
/* Moves every dead letter's job back to the pending list; `cb` gets the count. */
void queue_dead_requeue(queue_t *q, queue_count_cb cb, void *arg);

/* Refreshes the worker's lease (claims refresh it too). */
void queue_heartbeat(queue_t *q, const char *worker_id);
/* Returns the claimed jobs of every worker whose lease expired to the pending
 * list, oldest first; `cb` gets the number of jobs returned (or < 0). */
void queue_reap(queue_t *q, queue_count_cb cb, void *arg);

/* Returns the worker's claimed jobs to the tail of the pending list, oldest
 * first, and forgets the worker: for a worker that stops without storing them. */
void queue_release(queue_t *q, const char *worker_id, queue_done_cb cb, void *arg);
/* Round trip to Redis on the command connection. */
void queue_ping(queue_t *q, queue_done_cb cb, void *arg);

/* Fails pushes not yet sent, lets replies arrive, disconnects, then `cb`. */
void queue_close(queue_t *q, queue_closed_cb cb, void *arg);
void queue_free(queue_t *q);

#endif
