/* queue: MultiVAC's job queue on Redis. A push is acknowledged only once Redis
 * holds the job; a claimed job stays in Redis until its worker acknowledges it.
 *
 * Keys and channels, all under the configured prefix P (default "multivac:"):
 *   P jobs                list    pending jobs; producers LPUSH, workers take from the tail
 *   P processing:<worker> list    jobs a worker has claimed and not yet acknowledged
 *   P lease:<worker>      string  the holder's token while the worker is alive
 *   P workers             set     worker ids that may hold processing lists
 *   P idem:<job id>       string  fingerprint of an idempotent push's data (24 h)
 *   P wake                channel "new jobs": wakes idle workers
 *   P stored              channel "new documents": servers refresh their answer
 *   P dead                list    dead letters: jobs that cannot be stored, as JSON
 *
 * Pushes are group-committed: the pushes made during one loop iteration go to
 * Redis together (LPUSHes of at most 1024 jobs and 1 MiB each), and each
 * caller hears back when Redis has acknowledged it; a push that finds the list
 * empty publishes a wake. At most 8 MiB of job bytes are handed to hiredis
 * unacknowledged; further pushes wait their turn in the queue's own list.
 * Claims, acknowledgements and leases are Lua scripts, loaded once per
 * connection and called by EVALSHA. Redis (hiredis) stays inside this module. */
#ifndef MULTIVAC_QUEUE_H
#define MULTIVAC_QUEUE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include "obs/histogram.h"

typedef struct queue queue_t;
typedef struct queue_worker queue_worker_t;

typedef enum queue_status {
    QUEUE_OK = 0,
    QUEUE_UNAVAILABLE = -1, /* Redis not connected: the command was not sent */
    QUEUE_ERROR = -2,       /* Redis answered with an error */
    QUEUE_FULL = -3,        /* backpressure: too many jobs queued or in flight */
    QUEUE_LOST = -4,        /* sent, but the connection died before the reply: unknown */
    QUEUE_CONFLICT = -5,    /* the idempotency key was used for other data */
    QUEUE_FENCED = -6,      /* another live process holds this worker id */
} queue_status_t;

const char *queue_strerror(int status);

/* The kinds of command the queue times on its command connection, from the
 * send to the reply (error replies included; a connection lost first is not
 * timed). Not timed: SCRIPT LOAD and the WAITAOF probe (once per connection),
 * the wake PUBLISH (its reply is not awaited), the dead-letters command's
 * LRANGE and requeue (a mode without /metrics). */
typedef enum queue_command {
    QUEUE_CMD_PUSH,      /* a group commit's LPUSH, or an idempotent push's script */
    QUEUE_CMD_WAIT,      /* WAIT and WAITAOF behind a push (MULTIVAC_DURABILITY) */
    QUEUE_CMD_CLAIM,     /* the claim script, with the acknowledgement it carries */
    QUEUE_CMD_ACK,       /* an acknowledgement sent alone, adding dead letters */
    QUEUE_CMD_HEARTBEAT, /* a lease refresh */
    QUEUE_CMD_RELEASE,   /* a stopping worker's batch back to the pending list */
    QUEUE_CMD_REAP,      /* expired leases' batches back to the pending list */
    QUEUE_CMD_DEPTH,     /* LLEN of the pending list, polled every 500 ms */
    QUEUE_CMD_PING,      /* queue_ping (/readyz) */
    QUEUE_CMD_COUNT
} queue_command_t;

/* "push", "wait", "claim", ...: the metric's label value. */
const char *queue_command_name(queue_command_t kind);

typedef struct queue_stats {
    histogram_t command[QUEUE_CMD_COUNT]; /* seconds from send to reply, per kind */
} queue_stats_t;

/* How long an idempotency key is remembered: a client's retries of one
 * request arrive within this. After it, a retry is queued again, and still
 * stored once, since its job id (the _id) is the same. */
#define QUEUE_IDEM_TTL_MS 86400000
/* A claim takes jobs up to this many bytes (at least one job). */
#define QUEUE_CLAIM_BYTES_MAX (8u << 20)

typedef struct queue_server {
    const char *host;
    int port;
    const char *password; /* NULL: no AUTH */
    int db;
} queue_server_t;

typedef struct queue_options {
    queue_server_t redis;
    /* TLS to Redis (rediss://): the server's certificate verified against the
     * CAs of redis_ca_file (NULL: the system's) and for redis.host. Needs a
     * build with MULTIVAC_HAVE_REDIS_TLS; without, it never becomes ready. */
    bool redis_tls;
    const char *redis_ca_file;
    const char *prefix;
    uint64_t lease_ms;    /* a worker silent this long has its jobs requeued */
    uint64_t depth_max;   /* queued jobs above which pushes are refused */
    size_t in_flight_max; /* pushes waiting on Redis above which they are refused */
    /* Job bytes waiting on Redis beyond which a push is refused (0: no bound). */
    size_t in_flight_bytes_max;
    bool subscribe_wake;   /* workers run in this process */
    bool subscribe_stored; /* an HTTP server runs in this process */
    /* A push succeeds only once Redis reports it fsynced to its own AOF
     * (wait_local) and to wait_replicas replicas' AOFs (WAITAOF, Redis >= 7.2),
     * within wait_timeout_ms; otherwise it gets QUEUE_LOST (queued, durability
     * unknown). While Redis cannot do it (too old, AOF off), the queue is not
     * ready. 0 and 0: a push succeeds once Redis applied it. */
    int wait_local;
    int wait_replicas;
    uint64_t wait_timeout_ms;
} queue_options_t;

/* Every event is optional (NULL). */
typedef struct queue_events {
    void (*on_ready)(void *arg);  /* queue_ready() became true */
    void (*on_lost)(void *arg);   /* queue_ready() became false */
    void (*on_wake)(void *arg);   /* jobs were pushed (by any process), or Redis is back */
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

typedef void (*queue_list_cb)(void *arg, int status, const queue_item_t *items, size_t n);
typedef void (*queue_done_cb)(void *arg, int status);
typedef void (*queue_count_cb)(void *arg, long long count);
typedef void (*queue_closed_cb)(void *arg);

queue_t *queue_new(uv_loop_t *loop, const queue_options_t *opts, const queue_events_t *events);
void queue_start(queue_t *q);
/* Both connections (commands, and the subscription if any) are up. */
bool queue_ready(const queue_t *q);

/* QUEUE_OK when a push of `job_len` bytes would be taken now;
 * QUEUE_UNAVAILABLE when Redis is not connected; QUEUE_FULL when the queue is
 * deeper than depth_max (as last seen: every push and claim reply and a 500 ms
 * poll update it), or in_flight_max pushes already wait on Redis, or their
 * bytes plus `job_len` would pass in_flight_bytes_max, which bounds the memory
 * they hold when Redis is slow. With nothing waiting, a job of any size passes. */
int queue_admit(const queue_t *q, size_t job_len);
/* Jobs pending in Redis, as last seen. */
uint64_t queue_depth(const queue_t *q);
/* Entries of the dead-letter list, as last seen (polled with the depth). */
uint64_t queue_dead_count(const queue_t *q);
const queue_stats_t *queue_stats(const queue_t *q);

void queue_push(queue_t *q, queue_push_t *req);

/* Dead letters, newest first: `cb` gets them during the callback. */
void queue_dead_list(queue_t *q, queue_list_cb cb, void *arg);
/* Moves every dead letter's job back to the pending list; `cb` gets the count. */
void queue_dead_requeue(queue_t *q, queue_count_cb cb, void *arg);
/* Returns the claimed jobs of every worker whose lease expired to the pending
 * list, oldest first; `cb` gets the number of jobs returned (or < 0). */
void queue_reap(queue_t *q, queue_count_cb cb, void *arg);
/* Round trip to Redis on the command connection. */
void queue_ping(queue_t *q, queue_done_cb cb, void *arg);

/* Fails pushes not yet sent, lets replies arrive, disconnects, then `cb`. */
void queue_close(queue_t *q, queue_closed_cb cb, void *arg);
/* After queue_close's callback, and after every queue_worker_free. */
void queue_free(queue_t *q);

/* ---- a worker's side ----------------------------------------------------- *
 * A worker id owns one processing list and one lease. The lease holds a token
 * "<instance>:<batch>": the instance part fences a second live process started
 * with the same id (the one that started last wins; the other gets
 * QUEUE_FENCED until the winner's lease ends), the batch part makes an
 * acknowledgement apply to the batch it was meant for, even when retried after
 * a lost reply. */

typedef struct queue_batch {
    const queue_item_t *items; /* oldest first; valid during the callback */
    size_t n;
    /* The acknowledgement asked for was applied in this step (false when an
     * earlier attempt already applied it, or the lease had expired). */
    bool acked;
    /* The items were claimed before (a lost acknowledgement, a restarted
     * process with the same id): they may be stored already. */
    bool held;
    uint64_t remaining; /* jobs left pending after this claim */
} queue_batch_t;

typedef void (*queue_claim_cb)(void *arg, int status, const queue_batch_t *batch);

queue_worker_t *queue_worker_new(queue_t *q, const char *worker_id);
/* Claims up to `max` jobs (and QUEUE_CLAIM_BYTES_MAX bytes); with `ack`, first
 * acknowledges the batch in hand (deletes the processing list and announces new
 * documents), all in one step. Jobs still held in the processing list are
 * returned again instead of new ones, so nothing claimed is ever skipped.
 * Refreshes the lease. With max 0 it only acknowledges. */
void queue_worker_claim(queue_worker_t *qw, size_t max, bool ack, queue_claim_cb cb, void *arg);
/* Acknowledges the batch in hand like claim's `ack`, in the same atomic step
 * adding `records` (JSON, one per job that cannot be stored) to the dead
 * letters. Applied once, however often it is retried. */
void queue_worker_ack_dead(queue_worker_t *qw, const queue_item_t *records, size_t n,
                           queue_done_cb cb, void *arg);
/* Refreshes the lease; `cb` (optional) gets QUEUE_FENCED if another instance
 * holds the id. Does nothing before the first claim. */
void queue_worker_heartbeat(queue_worker_t *qw, queue_done_cb cb, void *arg);
/* Returns the claimed jobs to the tail of the pending list, oldest first, and
 * drops the lease: for a worker that stops without storing them. */
void queue_worker_release(queue_worker_t *qw, queue_done_cb cb, void *arg);
/* The handle goes once its last reply has arrived. */
void queue_worker_free(queue_worker_t *qw);

#endif
