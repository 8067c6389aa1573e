#include "queue/queue.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "obs/log.h"
#include "util/mem.h"
#include "util/strbuf.h"

/* One LPUSH carries at most this many jobs, and this many bytes of them (a
 * larger job goes alone): a huge command would hold the connection, and every
 * caller behind it, for as long as it takes to transfer. */
#define QUEUE_PUSH_BATCH_MAX 1024
#define QUEUE_PUSH_BATCH_BYTES (1u << 20)
/* Job bytes handed to hiredis and not yet acknowledged. Beyond this, pushes
 * wait in our list: hiredis's output buffer stays small (it moves its unsent
 * tail after every partial write) and a slow Redis cannot make it grow. */
#define QUEUE_SENT_BYTES_MAX (8u << 20)
#define QUEUE_DEPTH_POLL_MS 500

/* Returns the worker's unacknowledged jobs if any (a lost ack must not skip
 * them), else moves up to ARGV[1] jobs from the pending list's tail. Refreshes
 * the worker's lease and registers it, so a reaper can find its list. */
/* KEYS: idempotency key, jobs; ARGV: fingerprint, TTL ms, job. Returns
 * {1, depth} when queued, {0, depth} for a retry already queued, {-1, 0} for
 * the key used with other data. */
static const char queue_idem_push_script[] = "local prev = redis.call('GET', KEYS[1])\n"
                                             "if prev then\n"
                                             "  if prev ~= ARGV[1] then return {-1, 0} end\n"
                                             "  return {0, redis.call('LLEN', KEYS[2])}\n"
                                             "end\n"
                                             "redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])\n"
                                             "return {1, redis.call('LPUSH', KEYS[2], ARGV[3])}\n";

static const char queue_claim_script[] = "local held = redis.call('LRANGE', KEYS[2], 0, -1)\n"
                                         "redis.call('SET', KEYS[3], '1', 'PX', ARGV[2])\n"
                                         "redis.call('SADD', KEYS[4], ARGV[3])\n"
                                         "if #held > 0 then return held end\n"
                                         "local out = {}\n"
                                         "for i = 1, tonumber(ARGV[1]) do\n"
                                         "  local job = redis.call('RPOPLPUSH', KEYS[1], KEYS[2])\n"
                                         "  if not job then break end\n"
                                         "  out[i] = job\n"
                                         "end\n"
                                         "return out\n";

typedef struct queue_keys {
    char *jobs;
    char *workers;
    char *chan_wake;
    char *chan_stored;
    char *dead;
} queue_keys_t;

struct queue {
    uv_loop_t *loop;
    char *prefix;
    queue_keys_t keys;
    queue_events_t events;
    bool subscribe_wake;
    bool subscribe_stored;
    bool subscribed;
    char lease_ms[24];
    uint64_t depth_max;
    size_t in_flight_max;
    size_t in_flight_bytes_max; /* 0: no bound */
    uint64_t depth;             /* pending jobs, as last seen */
    bool depth_known;           /* read since the connection (re)started */
    uint64_t dead_count;        /* dead letters, as last seen */
    size_t pushes_waiting;      /* queued for the group commit or sent, not answered */
    size_t bytes_waiting;       /* their job bytes */
    size_t bytes_sent;          /* job bytes in LPUSH commands given to hiredis, not answered */
    uv_timer_t depth_timer;
    bool depth_polling;

    redis_conn_t *cmd;
    redis_conn_t *sub; /* NULL when this process subscribes to nothing */

    /* Pushes not sent yet: this iteration's group commit, and those held back
     * by QUEUE_SENT_BYTES_MAX. */
    queue_push_t *push_head, **push_tail;
    uv_check_t flush_check;
    bool flush_armed;
    bool closing;
    const char **argv;
    size_t *argvlen;
    size_t argv_cap;

    int closing_parts;
    queue_closed_cb closed_cb;
    void *closed_arg;
};

/* A command's reply handler context, freed when the reply (or NULL) arrives. */
typedef struct queue_request {
    queue_t *q;
    queue_push_t *pushes; /* for LPUSH */
    size_t push_bytes;
    queue_claim_cb claim_cb;
    queue_done_cb done_cb;
    queue_count_cb count_cb;
    void *arg;
} queue_request_t;

static char *queue_key(const char *prefix, const char *suffix) {
    size_t a = strlen(prefix), b = strlen(suffix);
    char *k = malloc(a + b + 1);
    if (!k) return NULL;
    memcpy(k, prefix, a);
    memcpy(k + a, suffix, b + 1);
    return k;
}

static void queue_poll_depth(queue_t *q);

static void queue_on_cmd_ready(void *arg) {
    queue_t *q = arg;
    /* The backlog may have changed while we were away: read it before the
     * first push is admitted, not at the next poll. */
    queue_poll_depth(q);
    /* Jobs may have been pushed while we were away; idle workers look now. */
    if (q->events.on_wake) q->events.on_wake(q->events.arg);
}

static void queue_on_cmd_lost(void *arg) {
    queue_t *q = arg;
    q->depth_known = false;
}

static void queue_on_message(redisAsyncContext *ac, void *reply, void *privdata) {
    (void)ac;
    queue_t *q = privdata;
    redisReply *r = reply;
    if (!r || r->type != REDIS_REPLY_ARRAY || r->elements != 3) return;
    redisReply *kind = r->element[0], *chan = r->element[1];
    if (kind->type != REDIS_REPLY_STRING || chan->type != REDIS_REPLY_STRING) return;
    if (strcmp(kind->str, "subscribe") == 0) {
        if (!q->subscribed) {
            q->subscribed = true;
            if (q->events.on_subscribed) q->events.on_subscribed(q->events.arg);
        }
        return;
    }
    if (strcmp(kind->str, "message") != 0) return;
    if (strcmp(chan->str, q->keys.chan_wake) == 0) {
        if (q->events.on_wake) q->events.on_wake(q->events.arg);
    } else if (strcmp(chan->str, q->keys.chan_stored) == 0) {
        if (q->events.on_stored) q->events.on_stored(q->events.arg);
    }
}

static void queue_on_sub_ready(void *arg) {
    queue_t *q = arg;
    const char *argv[3] = {"SUBSCRIBE"};
    int argc = 1;
    if (q->subscribe_wake) argv[argc++] = q->keys.chan_wake;
    if (q->subscribe_stored) argv[argc++] = q->keys.chan_stored;
    redis_conn_command(q->sub, queue_on_message, q, argc, argv, NULL);
}

static void queue_on_sub_lost(void *arg) {
    queue_t *q = arg;
    q->subscribed = false;
}

queue_t *queue_new(uv_loop_t *loop, const queue_options_t *opts, const queue_events_t *events) {
    queue_t *q = calloc(1, sizeof(*q));
    if (!q) return NULL;
    q->loop = loop;
    q->events = *events;
    q->push_tail = &q->push_head;
    q->subscribe_wake = opts->subscribe_wake;
    q->subscribe_stored = opts->subscribe_stored;
    q->prefix = strdup(opts->prefix);
    q->keys.jobs = queue_key(opts->prefix, "jobs");
    q->keys.workers = queue_key(opts->prefix, "workers");
    q->keys.chan_wake = queue_key(opts->prefix, "wake");
    q->keys.chan_stored = queue_key(opts->prefix, "stored");
    q->keys.dead = queue_key(opts->prefix, "dead");

    redis_conn_options_t ro = opts->redis;
    ro.name = "commands";
    ro.watchdog = true;
    redis_conn_events_t cmd_events = {queue_on_cmd_ready, queue_on_cmd_lost, q};
    q->cmd = redis_conn_new(loop, &ro, &cmd_events);
    if (q->subscribe_wake || q->subscribe_stored) {
        ro.name = "subscriber";
        ro.watchdog = false;
        redis_conn_events_t sub_events = {queue_on_sub_ready, queue_on_sub_lost, q};
        q->sub = redis_conn_new(loop, &ro, &sub_events);
    }
    if (!q->prefix || !q->keys.jobs || !q->keys.workers || !q->keys.chan_wake ||
        !q->keys.chan_stored || !q->keys.dead || !q->cmd ||
        ((q->subscribe_wake || q->subscribe_stored) && !q->sub)) {
        queue_free(q);
        return NULL;
    }
    snprintf(q->lease_ms, sizeof(q->lease_ms), "%llu", (unsigned long long)opts->lease_ms);
    q->depth_max = opts->depth_max;
    q->in_flight_max = opts->in_flight_max;
    q->in_flight_bytes_max = opts->in_flight_bytes_max;
    uv_check_init(loop, &q->flush_check);
    q->flush_check.data = q;
    uv_timer_init(loop, &q->depth_timer);
    q->depth_timer.data = q;
    return q;
}

static void queue_on_depth(redisAsyncContext *ac, void *reply, void *privdata) {
    (void)ac;
    queue_t *q = privdata;
    redisReply *r = reply;
    q->depth_polling = false;
    if (r && r->type == REDIS_REPLY_INTEGER && r->integer >= 0) {
        q->depth = (uint64_t)r->integer;
        q->depth_known = true;
    }
}

static void queue_on_dead_count(redisAsyncContext *ac, void *reply, void *privdata) {
    (void)ac;
    queue_t *q = privdata;
    redisReply *r = reply;
    if (r && r->type == REDIS_REPLY_INTEGER && r->integer >= 0)
        q->dead_count = (uint64_t)r->integer;
}

static void queue_poll_depth(queue_t *q) {
    if (q->depth_polling) return;
    const char *argv[] = {"LLEN", q->keys.jobs};
    if (redis_conn_command(q->cmd, queue_on_depth, q, 2, argv, NULL) != 0) return;
    q->depth_polling = true;
    /* Pipelined behind it, for the dead-letter gauge. */
    const char *dead[] = {"LLEN", q->keys.dead};
    redis_conn_command(q->cmd, queue_on_dead_count, q, 2, dead, NULL);
}

static void queue_on_depth_timer(uv_timer_t *t) { queue_poll_depth(t->data); }

int queue_admit(const queue_t *q, size_t job_len) {
    /* Until the depth is read (a round trip after connecting), a full queue
     * would pass: refuse as unavailable for that moment. */
    if (!redis_conn_ready(q->cmd) || !q->depth_known) return QUEUE_UNAVAILABLE;
    if (q->depth >= q->depth_max || q->pushes_waiting >= q->in_flight_max) return QUEUE_FULL;
    /* With nothing waiting, any job passes: one larger than the bound is not
     * refused forever. */
    size_t max = q->in_flight_bytes_max;
    if (max && q->bytes_waiting > 0 &&
        (q->bytes_waiting >= max || job_len > max - q->bytes_waiting))
        return QUEUE_FULL;
    return QUEUE_OK;
}

uint64_t queue_depth(const queue_t *q) { return q->depth; }

uint64_t queue_dead_count(const queue_t *q) { return q->dead_count; }

void queue_start(queue_t *q) {
    uv_timer_start(&q->depth_timer, queue_on_depth_timer, 0, QUEUE_DEPTH_POLL_MS);
    redis_conn_start(q->cmd);
    if (q->sub) redis_conn_start(q->sub);
}

bool queue_ready(const queue_t *q) {
    return redis_conn_ready(q->cmd) && (!q->sub || q->subscribed);
}

static queue_request_t *queue_request_new(queue_t *q, void *arg) {
    queue_request_t *req = mem_calloc(1, sizeof(*req));
    req->q = q;
    req->arg = arg;
    return req;
}

static void queue_maybe_closed(queue_t *q);
static void queue_on_count(redisAsyncContext *ac, void *reply, void *privdata);
static void queue_on_done(redisAsyncContext *ac, void *reply, void *privdata);

static void queue_request_done(queue_request_t *req) { free(req); }

static int queue_reply_status(const redisReply *r) {
    if (!r) return QUEUE_UNAVAILABLE;
    return r->type == REDIS_REPLY_ERROR ? QUEUE_ERROR : QUEUE_OK;
}

/* ---- push (group commit) ------------------------------------------------- */

static void queue_on_flush_check(uv_check_t *check);

static void queue_arm_flush(queue_t *q) {
    if (q->flush_armed || q->closing) return;
    /* The check phase runs once per loop iteration, after I/O callbacks: all
     * pushes of this iteration leave together. */
    uv_check_start(&q->flush_check, queue_on_flush_check);
    q->flush_armed = true;
}

static void queue_complete_pushes(queue_t *q, queue_push_t *list, int status) {
    while (list) {
        /* The callback may reuse the request: read it first. */
        queue_push_t *next = list->next;
        q->pushes_waiting--;
        q->bytes_waiting -= list->job_len;
        list->next = NULL;
        list->cb(list, status);
        list = next;
    }
}

static void queue_on_pushed(redisAsyncContext *ac, void *reply, void *privdata) {
    (void)ac;
    queue_request_t *req = privdata;
    queue_t *q = req->q;
    redisReply *r = reply;
    /* No reply: Redis may or may not have applied the LPUSH. */
    int status = r ? queue_reply_status(r) : QUEUE_LOST;
    if (status == QUEUE_ERROR) log_error("redis refused LPUSH", "error", r->str);
    if (status == QUEUE_OK && r->type == REDIS_REPLY_INTEGER) {
        q->depth = (uint64_t)r->integer;
        q->depth_known = true;
    } else if (status == QUEUE_OK && r->type == REDIS_REPLY_ARRAY) {
        /* The idempotent push script: {status, depth}. */
        if (r->elements != 2 || r->element[0]->type != REDIS_REPLY_INTEGER ||
            r->element[1]->type != REDIS_REPLY_INTEGER) {
            status = QUEUE_ERROR;
        } else if (r->element[0]->integer < 0) {
            status = QUEUE_CONFLICT;
        } else {
            q->depth = (uint64_t)r->element[1]->integer;
            q->depth_known = true;
        }
    }
    q->bytes_sent -= req->push_bytes;
    queue_complete_pushes(q, req->pushes, status);
    queue_request_done(req);
    /* Pushes held back by the output bound may go now (or fail, if this was
     * the connection going away). */
    if (q->push_head) queue_arm_flush(q);
}

static void queue_argv_reserve(queue_t *q, size_t n) {
    if (n <= q->argv_cap) return;
    q->argv = mem_realloc(q->argv, n * sizeof(*q->argv));
    q->argvlen = mem_realloc(q->argvlen, n * sizeof(*q->argvlen));
    q->argv_cap = n;
}

/* Sends the next queued pushes, up to QUEUE_PUSH_BATCH_MAX jobs and
 * QUEUE_PUSH_BATCH_BYTES, as one LPUSH. Returns false, sending nothing, when
 * they must wait for earlier LPUSHes to be acknowledged. */
static bool queue_flush_one(queue_t *q) {
    queue_push_t **tail = &q->push_head;
    size_t n = 0, bytes = 0;
    bool idem = q->push_head->idem_id != NULL;
    /* A push with an idempotency key goes alone, as a script. */
    while (*tail && n < QUEUE_PUSH_BATCH_MAX && !(n > 0 && (idem || (*tail)->idem_id)) &&
           (n == 0 || (*tail)->job_len <= QUEUE_PUSH_BATCH_BYTES - bytes)) {
        bytes += (*tail)->job_len;
        tail = &(*tail)->next;
        n++;
    }
    /* Something always goes when nothing is out, or a job over the bound
     * would wait forever; so bytes_sent may pass the bound, once. */
    if (q->bytes_sent > 0 &&
        (q->bytes_sent >= QUEUE_SENT_BYTES_MAX || bytes > QUEUE_SENT_BYTES_MAX - q->bytes_sent))
        return false;
    queue_push_t *batch = q->push_head;
    q->push_head = *tail;
    *tail = NULL;
    if (!q->push_head) q->push_tail = &q->push_head;

    strbuf_t key = STRBUF_INIT;
    char ttl[24];
    size_t i;
    if (idem) {
        strbuf_printf(&key, "%sidem:%s", q->prefix, batch->idem_id);
        snprintf(ttl, sizeof(ttl), "%d", QUEUE_IDEM_TTL_MS);
        const char *argv[] = {"EVAL",       queue_idem_push_script, "2", key.data,
                              q->keys.jobs, batch->fingerprint,     ttl};
        queue_argv_reserve(q, 8);
        for (i = 0; i < 7; i++) {
            q->argv[i] = argv[i];
            q->argvlen[i] = strlen(argv[i]);
        }
        q->argv[i] = batch->job;
        q->argvlen[i++] = batch->job_len;
    } else {
        queue_argv_reserve(q, n + 2);
        q->argv[0] = "LPUSH";
        q->argvlen[0] = 5;
        q->argv[1] = q->keys.jobs;
        q->argvlen[1] = strlen(q->keys.jobs);
        i = 2;
        for (queue_push_t *p = batch; p; p = p->next, i++) {
            q->argv[i] = p->job;
            q->argvlen[i] = p->job_len;
        }
    }
    queue_request_t *req = queue_request_new(q, NULL);
    req->pushes = batch;
    req->push_bytes = bytes;
    /* hiredis formats the command straight from the callers' job bytes into its
     * output buffer; nothing is copied before. */
    int rc = redis_conn_command(q->cmd, queue_on_pushed, req, (int)i, q->argv, q->argvlen);
    strbuf_free(&key); /* hiredis has formatted the command */
    if (rc != 0) {
        queue_request_done(req);
        queue_complete_pushes(q, batch, QUEUE_UNAVAILABLE);
        return true;
    }
    q->bytes_sent += bytes;
    return true;
}

static void queue_on_flush_check(uv_check_t *check) {
    queue_t *q = check->data;
    uv_check_stop(check);
    q->flush_armed = false;
    if (!redis_conn_ready(q->cmd)) {
        /* Never sent, so certainly not in Redis. */
        queue_push_t *list = q->push_head;
        q->push_head = NULL;
        q->push_tail = &q->push_head;
        queue_complete_pushes(q, list, QUEUE_UNAVAILABLE);
        return;
    }
    bool sent = false;
    while (q->push_head && queue_flush_one(q))
        sent = true;
    if (sent) {
        const char *pub[] = {"PUBLISH", q->keys.chan_wake, "1"};
        redis_conn_command(q->cmd, NULL, NULL, 3, pub, NULL);
    }
}

void queue_push(queue_t *q, queue_push_t *req) {
    q->pushes_waiting++;
    q->bytes_waiting += req->job_len;
    req->next = NULL;
    *q->push_tail = req;
    q->push_tail = &req->next;
    queue_arm_flush(q);
}

/* ---- claim / ack --------------------------------------------------------- */

static void queue_on_claimed(redisAsyncContext *ac, void *reply, void *privdata) {
    (void)ac;
    queue_request_t *req = privdata;
    redisReply *r = reply;
    int status = queue_reply_status(r);
    if (status == QUEUE_OK && r->type != REDIS_REPLY_ARRAY) status = QUEUE_ERROR;
    if (status != QUEUE_OK) {
        if (status == QUEUE_ERROR && r->type == REDIS_REPLY_ERROR)
            log_error("redis refused the claim script", "error", r->str);
        req->claim_cb(req->arg, status, NULL, 0);
        queue_request_done(req);
        return;
    }
    queue_item_t items_small[64] = {{0}};
    queue_item_t *items = r->elements <= 64 ? items_small : calloc(r->elements, sizeof(*items));
    if (!items) {
        req->claim_cb(req->arg, QUEUE_ERROR, NULL, 0);
        queue_request_done(req);
        return;
    }
    size_t n = 0;
    for (size_t i = 0; i < r->elements; i++) {
        if (r->element[i]->type != REDIS_REPLY_STRING) continue;
        items[n].ptr = r->element[i]->str;
        items[n].len = r->element[i]->len;
        n++;
    }
    req->claim_cb(req->arg, QUEUE_OK, items, n);
    if (items != items_small) free(items);
    queue_request_done(req);
}

void queue_claim(queue_t *q, const char *worker_id, size_t max, queue_claim_cb cb, void *arg) {
    strbuf_t processing = STRBUF_INIT, lease = STRBUF_INIT;
    strbuf_printf(&processing, "%sprocessing:%s", q->prefix, worker_id);
    strbuf_printf(&lease, "%slease:%s", q->prefix, worker_id);
    char max_str[24];
    snprintf(max_str, sizeof(max_str), "%zu", max);

    queue_request_t *req = queue_request_new(q, arg);
    int rc = -1;
    if (req && processing.data && lease.data) {
        req->claim_cb = cb;
        const char *argv[] = {
            "EVAL",     queue_claim_script, "4",     q->keys.jobs, processing.data,
            lease.data, q->keys.workers,    max_str, q->lease_ms,  worker_id};
        rc = redis_conn_command(q->cmd, queue_on_claimed, req, 10, argv, NULL);
    }
    strbuf_free(&processing);
    strbuf_free(&lease);
    if (rc != 0) {
        if (req) queue_request_done(req);
        cb(arg, QUEUE_UNAVAILABLE, NULL, 0);
    }
}

static void queue_on_done(redisAsyncContext *ac, void *reply, void *privdata) {
    (void)ac;
    queue_request_t *req = privdata;
    redisReply *r = reply;
    int status = queue_reply_status(r);
    if (status == QUEUE_ERROR) log_error("redis refused a command", "error", r->str);
    req->done_cb(req->arg, status);
    queue_request_done(req);
}

/* Sends a command whose reply only says whether it worked. Returns 0 when
 * sent; otherwise `cb` has already been told QUEUE_UNAVAILABLE. */
static int queue_send_done(queue_t *q, int argc, const char **argv, const size_t *argvlen,
                           queue_done_cb cb, void *arg) {
    queue_request_t *req = queue_request_new(q, arg);
    if (req) {
        req->done_cb = cb;
        if (redis_conn_command(q->cmd, queue_on_done, req, argc, argv, argvlen) == 0) return 0;
        queue_request_done(req);
    }
    cb(arg, QUEUE_UNAVAILABLE);
    return -1;
}

/* The same for a command (a script) whose reply is a count; < 0 on failure. */
static void queue_send_count(queue_t *q, int argc, const char **argv, queue_count_cb cb,
                             void *arg) {
    queue_request_t *req = queue_request_new(q, arg);
    if (req) {
        req->count_cb = cb;
        if (redis_conn_command(q->cmd, queue_on_count, req, argc, argv, NULL) == 0) return;
        queue_request_done(req);
    }
    cb(arg, -1);
}

void queue_ack(queue_t *q, const char *worker_id, queue_done_cb cb, void *arg) {
    strbuf_t processing = STRBUF_INIT;
    if (strbuf_printf(&processing, "%sprocessing:%s", q->prefix, worker_id) != 0) {
        cb(arg, QUEUE_UNAVAILABLE);
        return;
    }
    const char *del[] = {"DEL", processing.data};
    queue_send_done(q, 2, del, NULL, cb, arg);
    strbuf_free(&processing);
    const char *pub[] = {"PUBLISH", q->keys.chan_stored, "1"};
    redis_conn_command(q->cmd, NULL, NULL, 3, pub, NULL);
}

/* Only while the processing list exists: an acknowledgement retried after a
 * lost reply must not add its dead letters twice. */
static const char queue_ack_dead_script[] =
    "if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end\n"
    "for i = 1, #ARGV do redis.call('LPUSH', KEYS[2], ARGV[i]) end\n"
    "redis.call('DEL', KEYS[1])\n"
    "return #ARGV\n";

void queue_ack_dead(queue_t *q, const char *worker_id, const queue_item_t *records, size_t n,
                    queue_done_cb cb, void *arg) {
    strbuf_t processing = STRBUF_INIT;
    if (strbuf_printf(&processing, "%sprocessing:%s", q->prefix, worker_id) != 0) {
        strbuf_free(&processing);
        cb(arg, QUEUE_UNAVAILABLE);
        return;
    }
    queue_argv_reserve(q, n + 5);
    q->argv[0] = "EVAL";
    q->argv[1] = queue_ack_dead_script;
    q->argv[2] = "2";
    q->argv[3] = processing.data;
    q->argv[4] = q->keys.dead;
    for (size_t i = 0; i < 5; i++)
        q->argvlen[i] = strlen(q->argv[i]);
    for (size_t i = 0; i < n; i++) {
        q->argv[5 + i] = records[i].ptr;
        q->argvlen[5 + i] = records[i].len;
    }
    if (queue_send_done(q, (int)(n + 5), q->argv, q->argvlen, cb, arg) == 0) {
        const char *pub[] = {"PUBLISH", q->keys.chan_stored, "1"};
        redis_conn_command(q->cmd, NULL, NULL, 3, pub, NULL);
    }
    strbuf_free(&processing);
}

void queue_dead_list(queue_t *q, queue_claim_cb cb, void *arg) {
    queue_request_t *req = queue_request_new(q, arg);
    if (!req) {
        cb(arg, QUEUE_UNAVAILABLE, NULL, 0);
        return;
    }
    req->claim_cb = cb;
    const char *argv[] = {"LRANGE", q->keys.dead, "0", "-1"};
    if (redis_conn_command(q->cmd, queue_on_claimed, req, 4, argv, NULL) != 0) {
        queue_request_done(req);
        cb(arg, QUEUE_UNAVAILABLE, NULL, 0);
    }
}

/* Oldest dead letter first, each job to the pending list's head as if new; a
 * record that does not parse stays where it is. */
static const char queue_dead_requeue_script[] =
    "local n = 0\n"
    "local keep = {}\n"
    "while true do\n"
    "  local rec = redis.call('RPOP', KEYS[1])\n"
    "  if not rec then break end\n"
    "  local ok, obj = pcall(cjson.decode, rec)\n"
    "  if ok and type(obj) == 'table' and type(obj.job) == 'string' then\n"
    "    redis.call('LPUSH', KEYS[2], obj.job)\n"
    "    n = n + 1\n"
    "  else\n"
    "    keep[#keep + 1] = rec\n"
    "  end\n"
    "end\n"
    "for i = 1, #keep do redis.call('LPUSH', KEYS[1], keep[i]) end\n"
    "if n > 0 then redis.call('PUBLISH', KEYS[3], '1') end\n"
    "return n\n";

void queue_dead_requeue(queue_t *q, queue_count_cb cb, void *arg) {
    const char *argv[] = {"EVAL",       queue_dead_requeue_script, "3", q->keys.dead,
                          q->keys.jobs, q->keys.chan_wake};
    queue_send_count(q, 6, argv, cb, arg);
}

void queue_heartbeat(queue_t *q, const char *worker_id) {
    strbuf_t lease = STRBUF_INIT;
    if (strbuf_printf(&lease, "%slease:%s", q->prefix, worker_id) != 0) return;
    const char *set[] = {"SET", lease.data, "1", "PX", q->lease_ms};
    const char *sadd[] = {"SADD", q->keys.workers, worker_id};
    redis_conn_command(q->cmd, NULL, NULL, 5, set, NULL);
    redis_conn_command(q->cmd, NULL, NULL, 3, sadd, NULL);
    strbuf_free(&lease);
}

/* For every registered worker without a live lease: its processing list goes
 * back to the pending list's tail, oldest at the very end, as in release. The
 * key names are built from ARGV[1] (the prefix), so this is for a single Redis,
 * not Redis Cluster. */
static const char queue_reap_script[] =
    "local moved = 0\n"
    "for _, w in ipairs(redis.call('SMEMBERS', KEYS[2])) do\n"
    "  if redis.call('EXISTS', ARGV[1] .. 'lease:' .. w) == 0 then\n"
    "    local list = ARGV[1] .. 'processing:' .. w\n"
    "    local held = redis.call('LRANGE', list, 0, -1)\n"
    "    for i = 1, #held do redis.call('RPUSH', KEYS[1], held[i]) end\n"
    "    moved = moved + #held\n"
    "    redis.call('DEL', list)\n"
    "    redis.call('SREM', KEYS[2], w)\n"
    "  end\n"
    "end\n"
    "return moved\n";

static void queue_on_count(redisAsyncContext *ac, void *reply, void *privdata) {
    (void)ac;
    queue_request_t *req = privdata;
    redisReply *r = reply;
    long long count = -1;
    if (r && r->type == REDIS_REPLY_INTEGER) {
        count = r->integer;
    } else if (r && r->type == REDIS_REPLY_ERROR) {
        log_error("redis refused a script", "error", r->str);
    }
    req->count_cb(req->arg, count);
    queue_request_done(req);
}

void queue_reap(queue_t *q, queue_count_cb cb, void *arg) {
    const char *argv[] = {"EVAL", queue_reap_script, "2", q->keys.jobs, q->keys.workers, q->prefix};
    queue_send_count(q, 6, argv, cb, arg);
}

/* Claimed jobs sit newest-first in the processing list; pushing them onto the
 * pending list's tail in that order leaves the oldest at the very tail, to be
 * claimed first again. */
static const char queue_release_script[] =
    "local held = redis.call('LRANGE', KEYS[2], 0, -1)\n"
    "for i = 1, #held do redis.call('RPUSH', KEYS[1], held[i]) end\n"
    "redis.call('DEL', KEYS[2], KEYS[3])\n"
    "redis.call('SREM', KEYS[4], ARGV[1])\n"
    "return #held\n";

void queue_release(queue_t *q, const char *worker_id, queue_done_cb cb, void *arg) {
    strbuf_t processing = STRBUF_INIT, lease = STRBUF_INIT;
    if (strbuf_printf(&processing, "%sprocessing:%s", q->prefix, worker_id) != 0 ||
        strbuf_printf(&lease, "%slease:%s", q->prefix, worker_id) != 0) {
        strbuf_free(&processing);
        cb(arg, QUEUE_UNAVAILABLE);
        return;
    }
    const char *argv[] = {"EVAL",     queue_release_script, "4",      q->keys.jobs, processing.data,
                          lease.data, q->keys.workers,      worker_id};
    queue_send_done(q, 8, argv, NULL, cb, arg);
    strbuf_free(&processing);
    strbuf_free(&lease);
}

void queue_ping(queue_t *q, queue_done_cb cb, void *arg) {
    const char *ping[] = {"PING"};
    queue_send_done(q, 1, ping, NULL, cb, arg);
}

/* ---- shutdown ------------------------------------------------------------ */

static void queue_on_part_closed(void *arg) {
    queue_t *q = arg;
    q->closing_parts--;
    queue_maybe_closed(q);
}

static void queue_on_check_closed(uv_handle_t *h) { queue_on_part_closed(h->data); }

static void queue_maybe_closed(queue_t *q) {
    if (q->closing_parts > 0 || !q->closed_cb) return;
    queue_closed_cb cb = q->closed_cb;
    q->closed_cb = NULL;
    cb(q->closed_arg);
}

void queue_close(queue_t *q, queue_closed_cb cb, void *arg) {
    q->closed_cb = cb;
    q->closed_arg = arg;
    q->closing = true;
    /* Pushes that never left get an answer now; those in flight get theirs from
     * Redis before the connection closes. */
    if (q->push_head) {
        queue_push_t *list = q->push_head;
        q->push_head = NULL;
        q->push_tail = &q->push_head;
        queue_complete_pushes(q, list, QUEUE_UNAVAILABLE);
    }
    q->closing_parts = q->sub ? 4 : 3;
    uv_close((uv_handle_t *)&q->flush_check, queue_on_check_closed);
    uv_close((uv_handle_t *)&q->depth_timer, queue_on_check_closed);
    redis_conn_close(q->cmd, queue_on_part_closed, q);
    if (q->sub) redis_conn_close(q->sub, queue_on_part_closed, q);
}

void queue_free(queue_t *q) {
    if (!q) return;
    redis_conn_free(q->cmd);
    redis_conn_free(q->sub);
    free(q->prefix);
    free(q->keys.jobs);
    free(q->keys.workers);
    free(q->keys.chan_wake);
    free(q->keys.chan_stored);
    free(q->keys.dead);
    free(q->argv);
    free(q->argvlen);
    free(q);
}
