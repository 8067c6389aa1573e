/* queue: pushes, claims, acknowledgements and leases of MultiVAC's jobs on
 * Redis (queue.h), over one command connection and one subscriber connection.
 * Every push and every request gets exactly one callback (a heartbeat before
 * the first claim is no request): after Redis's reply, or with an error status
 * when it could not be sent or its connection died first. A job stays in Redis
 * from its push's success until the acknowledgement of the batch that stored
 * it. Running out of memory aborts (util/mem.h). */
#include "queue/queue.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "obs/log.h"
#include "queue/redis.h"
#include "util/closer.h"
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
/* Lua's C stack takes about 8,000 values: unpack() goes in slices. */
#define QUEUE_LUA_UNPACK "1000"

/* ---- scripts ------------------------------------------------------------- *
 * A lease token is "<instance>:<batch>"; `inst` extracts the instance. */

typedef enum {
    SCRIPT_IDEM_PUSH,
    SCRIPT_CLAIM,
    SCRIPT_ACK_DEAD,
    SCRIPT_HEARTBEAT,
    SCRIPT_RELEASE,
    SCRIPT_REAP,
    SCRIPT_DEAD_REQUEUE,
    SCRIPT_COUNT
} queue_script_t;

static const char *const queue_script_names[SCRIPT_COUNT] = {
    "idem_push", "claim", "ack_dead", "heartbeat", "release", "reap", "dead_requeue"};

/* What each script's latency counts as; -1: not timed. */
static const int queue_script_kinds[SCRIPT_COUNT] = {QUEUE_CMD_PUSH,
                                                     QUEUE_CMD_CLAIM,
                                                     QUEUE_CMD_ACK,
                                                     QUEUE_CMD_HEARTBEAT,
                                                     QUEUE_CMD_RELEASE,
                                                     QUEUE_CMD_REAP,
                                                     -1};

static const char *const queue_command_names[QUEUE_CMD_COUNT] = {
    [QUEUE_CMD_PUSH] = "push", [QUEUE_CMD_WAIT] = "wait",           [QUEUE_CMD_CLAIM] = "claim",
    [QUEUE_CMD_ACK] = "ack",   [QUEUE_CMD_HEARTBEAT] = "heartbeat", [QUEUE_CMD_RELEASE] = "release",
    [QUEUE_CMD_REAP] = "reap", [QUEUE_CMD_DEPTH] = "depth",         [QUEUE_CMD_PING] = "ping",
};

static const char *const queue_scripts[SCRIPT_COUNT] = {
    /* KEYS: idempotency key, jobs; ARGV: fingerprint, TTL ms, job. Returns
     * {1, depth} when queued, {0, depth} for a retry already queued, {-1, 0}
     * for the key used with other data. */
    [SCRIPT_IDEM_PUSH] = "local prev = redis.call('GET', KEYS[1])\n"
                         "if prev then\n"
                         "  if prev ~= ARGV[1] then return {-1, 0} end\n"
                         "  return {0, redis.call('LLEN', KEYS[2])}\n"
                         "end\n"
                         "redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])\n"
                         "return {1, redis.call('LPUSH', KEYS[2], ARGV[3])}\n",

    /* KEYS: jobs, processing, lease, workers, stored channel.
     * ARGV: max jobs, max bytes, lease ms, worker id, token to acknowledge
     * ('' for none), new token, '1' to take the id over from another instance.
     * Returns {-1} when fenced, else {acked, held, remaining, job...}, jobs
     * oldest first. The pending list's tail is its oldest end; claimed jobs sit
     * in the processing list in the pending list's order (newest first). */
    [SCRIPT_CLAIM] =
        "local function inst(t) return string.match(t, '^[^:]*') end\n"
        "local cur = redis.call('GET', KEYS[3])\n"
        "if cur and inst(cur) ~= inst(ARGV[6]) and ARGV[7] ~= '1' then return {-1} end\n"
        "local acked = 0\n"
        "if ARGV[5] ~= '' and cur == ARGV[5] then\n"
        "  redis.call('DEL', KEYS[2])\n"
        "  redis.call('PUBLISH', KEYS[5], '1')\n"
        "  acked = 1\n"
        "end\n"
        "redis.call('SET', KEYS[3], ARGV[6], 'PX', ARGV[3])\n"
        "redis.call('SADD', KEYS[4], ARGV[4])\n"
        "local out = {acked, 1, 0}\n"
        "local held = redis.call('LRANGE', KEYS[2], 0, -1)\n"
        "if #held > 0 then\n"
        "  for i = #held, 1, -1 do out[#out + 1] = held[i] end\n"
        "  out[3] = redis.call('LLEN', KEYS[1])\n"
        "  return out\n"
        "end\n"
        "out[2] = 0\n"
        "local max = tonumber(ARGV[1])\n"
        "if max < 1 then out[3] = redis.call('LLEN', KEYS[1]) return out end\n"
        "local items = redis.call('LRANGE', KEYS[1], -max, -1)\n"
        "local budget, bytes, k = tonumber(ARGV[2]), 0, 0\n"
        "for i = #items, 1, -1 do\n"
        "  bytes = bytes + #items[i]\n"
        "  if k > 0 and bytes > budget then break end\n"
        "  k = k + 1\n"
        "end\n"
        "if k > 0 then\n"
        "  local first = #items - k + 1\n"
        "  redis.call('LTRIM', KEYS[1], 0, -(k + 1))\n"
        "  for i = first, #items, " QUEUE_LUA_UNPACK " do\n"
        "    redis.call('RPUSH', KEYS[2], unpack(items, i, math.min(i + " QUEUE_LUA_UNPACK
        " - 1, #items)))\n"
        "  end\n"
        "  for i = #items, first, -1 do out[#out + 1] = items[i] end\n"
        "end\n"
        "out[3] = redis.call('LLEN', KEYS[1])\n"
        "return out\n",

    /* KEYS: processing, dead, lease, stored channel; ARGV: token, record...
     * Applied only while the token holds the lease and the batch is unacknowledged,
     * so a retry after a lost reply adds no record twice. */
    [SCRIPT_ACK_DEAD] = "if redis.call('GET', KEYS[3]) ~= ARGV[1] then return 0 end\n"
                        "if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end\n"
                        "for i = 2, #ARGV do redis.call('LPUSH', KEYS[2], ARGV[i]) end\n"
                        "redis.call('DEL', KEYS[1])\n"
                        "redis.call('PUBLISH', KEYS[4], '1')\n"
                        "return 1\n",

    /* KEYS: lease, workers; ARGV: token, lease ms, worker id. Returns 0 when
     * another instance holds the lease, else 1 (the current token is kept). */
    [SCRIPT_HEARTBEAT] = "local function inst(t) return string.match(t, '^[^:]*') end\n"
                         "local cur = redis.call('GET', KEYS[1])\n"
                         "if cur and inst(cur) ~= inst(ARGV[1]) then return 0 end\n"
                         "redis.call('SET', KEYS[1], cur or ARGV[1], 'PX', ARGV[2])\n"
                         "redis.call('SADD', KEYS[2], ARGV[3])\n"
                         "return 1\n",

    /* KEYS: jobs, processing, lease, workers; ARGV: token, worker id. Claimed
     * jobs sit newest-first in the processing list; pushing them onto the
     * pending list's tail in that order leaves the oldest at the very tail, to
     * be claimed first again. Returns -1, touching nothing, when fenced. */
    [SCRIPT_RELEASE] = "local function inst(t) return string.match(t, '^[^:]*') end\n"
                       "local cur = redis.call('GET', KEYS[3])\n"
                       "if cur and inst(cur) ~= inst(ARGV[1]) then return -1 end\n"
                       "local held = redis.call('LRANGE', KEYS[2], 0, -1)\n"
                       "for i = 1, #held do redis.call('RPUSH', KEYS[1], held[i]) end\n"
                       "redis.call('DEL', KEYS[2], KEYS[3])\n"
                       "redis.call('SREM', KEYS[4], ARGV[2])\n"
                       "return #held\n",

    /* KEYS: jobs, workers; ARGV: prefix. For every registered worker without a
     * live lease, its processing list goes back to the pending list's tail as in
     * release. Key names are built from the prefix: a single Redis, not Redis
     * Cluster. */
    [SCRIPT_REAP] = "local moved = 0\n"
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
                    "return moved\n",

    /* KEYS: dead, jobs, wake channel. Oldest dead letter first, each job to the
     * pending list's head as if new; a record that does not parse stays. */
    [SCRIPT_DEAD_REQUEUE] = "local n = 0\n"
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
                            "return n\n",
};

typedef struct queue_keys {
    char *jobs;
    char *workers;
    char *chan_wake;
    char *chan_stored;
    char *dead;
} queue_keys_t;

struct queue {
    char *prefix;
    queue_keys_t keys;
    queue_events_t events;
    bool subscribe_wake;
    bool subscribe_stored;
    bool subscribed;
    bool ready; /* queue_ready() as last announced */
    int wait_local, wait_replicas;
    /* The same, as WAIT/WAITAOF arguments. */
    char wait_local_arg[12], wait_replicas_arg[12], wait_timeout_ms[24];
    bool wait_broken; /* Redis refused WAITAOF as configured: pushes cannot succeed */
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
    uint64_t depth_sent_ns; /* uv_hrtime() when the polling LLEN was sent */
    queue_stats_t stats;
    /* SHA1 of each script as Redis reported it on SCRIPT LOAD; "" until then
     * (the script then goes whole, by EVAL). */
    char sha[SCRIPT_COUNT][41];

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

    /* Once closing: both handles, the command connection, the subscriber if any. */
    closer_t closer;
};

struct queue_worker {
    queue_t *q;
    char *id;
    char *processing;
    char *lease;
    /* Tokens are "<instance>:<n>"; the instance is random per handle. */
    char instance[17];
    uint64_t next_batch;
    char lease_token[48]; /* last token this handle wrote to the lease; "" before */
    char held_token[48];  /* token of the batch in hand; "" when none */
    bool took_over;       /* the first claim (a takeover) was answered */
    size_t pending;       /* requests in flight that point into this handle */
    bool freed;
};

/* A command's reply handler context, freed when the reply (or NULL) arrives.
 * Script calls keep their arguments (pointers into memory that outlives the
 * reply) to go again as EVAL when Redis lost the script (NOSCRIPT). */
typedef struct queue_request {
    queue_t *q;
    queue_worker_t *qw;
    queue_push_t *pushes; /* for LPUSH */
    size_t push_count, push_bytes;
    queue_claim_cb claim_cb;
    queue_list_cb list_cb;
    queue_done_cb done_cb;
    queue_count_cb count_cb;
    void *arg;
    int script;                     /* queue_script_t, or -1 */
    int kind;                       /* queue_command_t its reply is timed as, or -1 */
    uint64_t sent_ns, wait_sent_ns; /* uv_hrtime() at the last send (of WAIT/WAITAOF) */
    redisCallbackFn *fn;
    int argc; /* after EVAL(SHA) and the script */
    const char **argv;
    size_t *argvlen;
    char nums[3][24];   /* numeric arguments */
    char tokens[2][48]; /* tokens sent: [0] to acknowledge, [1] new */
    char *owned;        /* an argument built for this request */
    /* A push waiting for WAITAOF: its own reply's status, once it came. */
    int waits; /* WAITAOF replies outstanding */
    bool push_replied;
    int push_status;
} queue_request_t;

const char *queue_command_name(queue_command_t kind) {
    return (unsigned)kind < QUEUE_CMD_COUNT ? queue_command_names[kind] : "other";
}

/* Counts a reply that arrived for a command of `kind` sent at `sent_ns`. */
static void queue_observe(queue_t *q, int kind, uint64_t sent_ns, const redisReply *r) {
    if (!r || kind < 0) return;
    histogram_observe(&q->stats.command[kind], (double)(uv_hrtime() - sent_ns) / 1e9);
}

const char *queue_strerror(int status) {
    switch ((queue_status_t)status) {
    case QUEUE_OK: return "ok";
    case QUEUE_UNAVAILABLE: return "redis unavailable";
    case QUEUE_ERROR: return "redis error";
    case QUEUE_FULL: return "queue full";
    case QUEUE_LOST: return "redis connection lost before the reply";
    case QUEUE_CONFLICT: return "idempotency key used for other data";
    case QUEUE_FENCED: return "worker id held by another process";
    }
    return "unknown queue status";
}

static char *queue_key(const char *prefix, const char *suffix) {
    size_t a = strlen(prefix), b = strlen(suffix);
    char *k = mem_malloc(a + b + 1);
    memcpy(k, prefix, a);
    memcpy(k + a, suffix, b + 1);
    return k;
}

/* <prefix><kind>:<id>, the key of one worker's list or lease, or of one
 * idempotency key. */
static char *queue_key_of(const queue_t *q, const char *kind, const char *id) {
    strbuf_t key = STRBUF_INIT;
    strbuf_printf(&key, "%s%s:%s", q->prefix, kind, id);
    return key.data;
}

static void queue_poll_depth(queue_t *q);
static void queue_load_scripts(queue_t *q);
static void queue_update_ready(queue_t *q);

static bool queue_waits(const queue_t *q) { return q->wait_local > 0 || q->wait_replicas > 0; }

static void queue_on_wait_probe(redisAsyncContext *ac, void *reply, void *privdata) {
    (void)ac;
    queue_t *q = privdata;
    redisReply *r = reply;
    if (!r) return; /* the connection went: probed again on the next one */
    bool broken = r->type == REDIS_REPLY_ERROR;
    if (broken && !q->wait_broken)
        log_error("Redis cannot confirm fsyncs (MULTIVAC_DURABILITY needs Redis >= 7.2 with "
                  "appendonly yes): refusing POSTs",
                  "error", r->str);
    if (!broken && q->wait_broken) log_info("Redis confirms fsyncs again");
    q->wait_broken = broken;
    queue_update_ready(q);
}

/* Asks Redis, without waiting, whether it can do what pushes will ask of it. */
static void queue_probe_wait(queue_t *q) {
    if (!queue_waits(q)) return;
    const char *argv[] = {"WAITAOF", q->wait_local_arg, "0", "1"};
    redis_conn_command(q->cmd, queue_on_wait_probe, q, 4, argv, NULL);
}

/* Announces a change of queue_ready(). */
static void queue_update_ready(queue_t *q) {
    bool ready = queue_ready(q);
    if (ready == q->ready) return;
    q->ready = ready;
    if (ready && q->events.on_ready) q->events.on_ready(q->events.arg);
    if (!ready && q->events.on_lost) q->events.on_lost(q->events.arg);
}

static void queue_on_cmd_ready(void *arg) {
    queue_t *q = arg;
    /* A new connection may be to a new Redis: scripts load before anything
     * else on it, so every later command finds them. */
    queue_load_scripts(q);
    queue_probe_wait(q);
    /* The backlog may have changed while we were away: read it before the
     * first push is admitted, not at the next poll. */
    queue_poll_depth(q);
    queue_update_ready(q);
    /* Jobs may have been pushed while we were away; idle workers look now. */
    if (q->events.on_wake) q->events.on_wake(q->events.arg);
}

static void queue_on_cmd_lost(void *arg) {
    queue_t *q = arg;
    q->depth_known = false;
    queue_update_ready(q);
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
            queue_update_ready(q);
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
    queue_update_ready(q);
}

queue_t *queue_new(uv_loop_t *loop, const queue_options_t *opts, const queue_events_t *events) {
    queue_t *q = mem_calloc(1, sizeof(*q));
    q->events = *events;
    q->push_tail = &q->push_head;
    q->subscribe_wake = opts->subscribe_wake;
    q->subscribe_stored = opts->subscribe_stored;
    q->prefix = mem_strdup(opts->prefix);
    q->keys.jobs = queue_key(opts->prefix, "jobs");
    q->keys.workers = queue_key(opts->prefix, "workers");
    q->keys.chan_wake = queue_key(opts->prefix, "wake");
    q->keys.chan_stored = queue_key(opts->prefix, "stored");
    q->keys.dead = queue_key(opts->prefix, "dead");

    redis_conn_options_t ro = {
        .name = "commands",
        .host = opts->redis.host,
        .port = opts->redis.port,
        .password = opts->redis.password,
        .db = opts->redis.db,
        .tls = opts->redis_tls,
        .tls_ca_file = opts->redis_ca_file,
        .watchdog = true,
    };
    redis_conn_events_t cmd_events = {queue_on_cmd_ready, queue_on_cmd_lost, q};
    q->cmd = redis_conn_new(loop, &ro, &cmd_events);
    if (q->subscribe_wake || q->subscribe_stored) {
        ro.name = "subscriber";
        ro.watchdog = false;
        redis_conn_events_t sub_events = {queue_on_sub_ready, queue_on_sub_lost, q};
        q->sub = redis_conn_new(loop, &ro, &sub_events);
    }
    snprintf(q->lease_ms, sizeof(q->lease_ms), "%llu", (unsigned long long)opts->lease_ms);
    q->depth_max = opts->depth_max;
    q->in_flight_max = opts->in_flight_max;
    q->in_flight_bytes_max = opts->in_flight_bytes_max;
    q->wait_local = opts->wait_local;
    q->wait_replicas = opts->wait_replicas;
    snprintf(q->wait_local_arg, sizeof(q->wait_local_arg), "%d", q->wait_local);
    snprintf(q->wait_replicas_arg, sizeof(q->wait_replicas_arg), "%d", q->wait_replicas);
    snprintf(q->wait_timeout_ms, sizeof(q->wait_timeout_ms), "%llu",
             (unsigned long long)opts->wait_timeout_ms);
    uv_check_init(loop, &q->flush_check);
    q->flush_check.data = q;
    uv_timer_init(loop, &q->depth_timer);
    q->depth_timer.data = q;
    return q;
}

/* ---- requests and scripts ------------------------------------------------ */

static queue_request_t *queue_request_new(queue_t *q, void *arg) {
    queue_request_t *req = mem_calloc(1, sizeof(*req));
    req->q = q;
    req->arg = arg;
    req->script = -1;
    req->kind = -1;
    return req;
}

static void queue_worker_release_ref(queue_worker_t *qw);

static void queue_request_done(queue_request_t *req) {
    if (req->qw) queue_worker_release_ref(req->qw);
    free(req->owned);
    free(req->argv);
    free(req->argvlen);
    free(req);
}

static int queue_reply_status(const redisReply *r) {
    if (!r) return QUEUE_UNAVAILABLE;
    return r->type == REDIS_REPLY_ERROR ? QUEUE_ERROR : QUEUE_OK;
}

/* Sends a command whose reply is timed as `kind`; redis_conn_command's result. */
static int queue_send(queue_request_t *req, int kind, redisCallbackFn *fn, int argc,
                      const char **argv, const size_t *argvlen) {
    req->kind = kind;
    req->sent_ns = uv_hrtime();
    return redis_conn_command(req->q->cmd, fn, req, argc, argv, argvlen);
}

static void queue_on_script_loaded(redisAsyncContext *ac, void *reply, void *privdata) {
    (void)ac;
    queue_request_t *req = privdata;
    redisReply *r = reply;
    if (r && r->type == REDIS_REPLY_STRING && r->len == 40) {
        memcpy(req->q->sha[req->script], r->str, 41);
    } else if (r && r->type == REDIS_REPLY_ERROR) {
        log_error("redis refused a script", "script", queue_script_names[req->script], "error",
                  r->str);
    }
    queue_request_done(req);
}

static void queue_load_scripts(queue_t *q) {
    for (int s = 0; s < SCRIPT_COUNT; s++) {
        q->sha[s][0] = '\0';
        queue_request_t *req = queue_request_new(q, NULL);
        req->script = s;
        const char *argv[] = {"SCRIPT", "LOAD", queue_scripts[s]};
        if (redis_conn_command(q->cmd, queue_on_script_loaded, req, 3, argv, NULL) != 0)
            queue_request_done(req);
    }
}

static int queue_eval_send(queue_request_t *req) {
    queue_t *q = req->q;
    size_t n = (size_t)req->argc + 2;
    const char *head[2];
    bool by_sha = q->sha[req->script][0] != '\0';
    head[0] = by_sha ? "EVALSHA" : "EVAL";
    head[1] = by_sha ? q->sha[req->script] : queue_scripts[req->script];
    if (n > q->argv_cap) {
        q->argv = mem_realloc(q->argv, n * sizeof(*q->argv));
        q->argvlen = mem_realloc(q->argvlen, n * sizeof(*q->argvlen));
        q->argv_cap = n;
    }
    for (int i = 0; i < 2; i++) {
        q->argv[i] = head[i];
        q->argvlen[i] = strlen(head[i]);
    }
    memcpy(q->argv + 2, req->argv, (size_t)req->argc * sizeof(*q->argv));
    memcpy(q->argvlen + 2, req->argvlen, (size_t)req->argc * sizeof(*q->argvlen));
    return queue_send(req, queue_script_kinds[req->script], req->fn, (int)n, q->argv, q->argvlen);
}

/* Sends `script` with `argc` arguments (the key count first); `argvlen` NULL
 * for C strings. The arguments must stay valid until the reply. Returns 0 when
 * sent; otherwise the request is left to the caller. */
static int queue_eval(queue_request_t *req, queue_script_t script, redisCallbackFn *fn, int argc,
                      const char **argv, const size_t *argvlen) {
    req->script = script;
    req->fn = fn;
    req->argc = argc;
    req->argv = mem_malloc((size_t)argc * sizeof(*req->argv));
    req->argvlen = mem_malloc((size_t)argc * sizeof(*req->argvlen));
    for (int i = 0; i < argc; i++) {
        req->argv[i] = argv[i];
        req->argvlen[i] = argvlen ? argvlen[i] : strlen(argv[i]);
    }
    return queue_eval_send(req);
}

/* A NOSCRIPT reply (SCRIPT FLUSH, a failover to a Redis that never loaded
 * it): nothing ran, so the call goes again as EVAL, and the scripts are
 * loaded again for the calls after it. Returns true when resent. */
static bool queue_retry_noscript(queue_request_t *req, const redisReply *r) {
    if (!r || r->type != REDIS_REPLY_ERROR || req->script < 0 ||
        strncmp(r->str, "NOSCRIPT", 8) != 0 || req->q->sha[req->script][0] == '\0')
        return false;
    log_warn("redis lost the scripts: loading them again", "script",
             queue_script_names[req->script]);
    queue_load_scripts(req->q);
    return queue_eval_send(req) == 0;
}

/* The common start of every request's reply callback: time the command, and say
 * false when the reply was NOSCRIPT and the request has been sent again, so the
 * callback waits for that reply instead. */
static bool queue_reply_arrived(queue_request_t *req, const redisReply *r) {
    queue_observe(req->q, req->kind, req->sent_ns, r);
    return !queue_retry_noscript(req, r);
}

/* ---- depth --------------------------------------------------------------- */

static void queue_on_depth(redisAsyncContext *ac, void *reply, void *privdata) {
    (void)ac;
    queue_t *q = privdata;
    redisReply *r = reply;
    queue_observe(q, QUEUE_CMD_DEPTH, q->depth_sent_ns, r);
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
    q->depth_sent_ns = uv_hrtime();
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
    if (!redis_conn_ready(q->cmd) || !q->depth_known || q->wait_broken) return QUEUE_UNAVAILABLE;
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

const queue_stats_t *queue_stats(const queue_t *q) { return &q->stats; }

void queue_start(queue_t *q) {
    uv_timer_start(&q->depth_timer, queue_on_depth_timer, 0, QUEUE_DEPTH_POLL_MS);
    redis_conn_start(q->cmd);
    if (q->sub) redis_conn_start(q->sub);
}

bool queue_ready(const queue_t *q) {
    return redis_conn_ready(q->cmd) && (!q->sub || q->subscribed) && !q->wait_broken;
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

/* Idle workers sleep until told; a list that was not empty already has
 * workers busy on it (a worker goes idle only after a claim left it empty),
 * so only a push into an empty list needs to wake them. */
static void queue_wake_if_was_empty(queue_t *q, long long depth_after, size_t pushed) {
    if (pushed == 0 || depth_after < 0 || (uint64_t)depth_after != pushed) return;
    const char *pub[] = {"PUBLISH", q->keys.chan_wake, "1"};
    redis_conn_command(q->cmd, NULL, NULL, 3, pub, NULL);
}

static void queue_send_wait(queue_request_t *req);

/* The push's reply and, when pushes wait for fsyncs, WAITAOF's are both in. */
static void queue_finish_push(queue_request_t *req, int status) {
    queue_t *q = req->q;
    q->bytes_sent -= req->push_bytes;
    queue_complete_pushes(q, req->pushes, status);
    queue_request_done(req);
    /* Pushes held back by the output bound may go now (or fail, if this was
     * the connection going away). */
    if (q->push_head) queue_arm_flush(q);
}

static void queue_on_waited(redisAsyncContext *ac, void *reply, void *privdata) {
    (void)ac;
    queue_request_t *req = privdata;
    queue_t *q = req->q;
    redisReply *r = reply;
    queue_observe(q, QUEUE_CMD_WAIT, req->wait_sent_ns, r);
    req->waits--;
    /* WAIT's answer, or one to a WAITAOF sent before a NOSCRIPT retry: the
     * WAITAOF that decides comes last. */
    if (!req->push_replied || req->waits > 0) return;
    int status = req->push_status;
    if (status == QUEUE_OK) {
        bool durable = r && r->type == REDIS_REPLY_ARRAY && r->elements == 2 &&
                       r->element[0]->type == REDIS_REPLY_INTEGER &&
                       r->element[1]->type == REDIS_REPLY_INTEGER &&
                       r->element[0]->integer >= q->wait_local &&
                       r->element[1]->integer >= q->wait_replicas;
        if (!durable) {
            /* Queued, but not (yet) where the promise says: the client hears
             * "unknown", and a retry with its Idempotency-Key is safe. */
            if (r && r->type == REDIS_REPLY_ERROR)
                log_error("redis refused WAITAOF", "error", r->str);
            status = QUEUE_LOST;
        }
    }
    queue_finish_push(req, status);
}

/* WAITAOF pipelined right behind the write it waits for costs a second
 * (Redis 8.0: the replica answers the GETACK before its own fsync and reports
 * that fsync only with its once-a-second ACK); a WAIT first gives it that
 * round trip, and the pair then takes well under a millisecond. */
static void queue_send_wait(queue_request_t *req) {
    queue_t *q = req->q;
    req->wait_sent_ns = uv_hrtime();
    if (q->wait_replicas > 0) {
        const char *wait[] = {"WAIT", q->wait_replicas_arg, q->wait_timeout_ms};
        if (redis_conn_command(q->cmd, queue_on_waited, req, 3, wait, NULL) == 0) req->waits++;
    }
    const char *argv[] = {"WAITAOF", q->wait_local_arg, q->wait_replicas_arg, q->wait_timeout_ms};
    if (redis_conn_command(q->cmd, queue_on_waited, req, 4, argv, NULL) == 0) req->waits++;
}

static void queue_on_pushed(redisAsyncContext *ac, void *reply, void *privdata) {
    (void)ac;
    queue_request_t *req = privdata;
    queue_t *q = req->q;
    redisReply *r = reply;
    if (!queue_reply_arrived(req, r)) {
        if (req->waits > 0) queue_send_wait(req);
        return;
    }
    /* No reply: Redis may or may not have applied the LPUSH. */
    int status = r ? queue_reply_status(r) : QUEUE_LOST;
    if (status == QUEUE_ERROR) log_error("redis refused LPUSH", "error", r->str);
    if (status == QUEUE_OK && r->type == REDIS_REPLY_INTEGER) {
        q->depth = (uint64_t)r->integer;
        q->depth_known = true;
        queue_wake_if_was_empty(q, r->integer, req->push_count);
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
            if (r->element[0]->integer == 1) queue_wake_if_was_empty(q, r->element[1]->integer, 1);
        }
    }
    if (req->waits > 0) {
        req->push_replied = true;
        req->push_status = status;
        return;
    }
    queue_finish_push(req, status);
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

    queue_request_t *req = queue_request_new(q, NULL);
    req->pushes = batch;
    req->push_count = n;
    req->push_bytes = bytes;
    int rc;
    if (idem) {
        /* The key's name lives in the request: a NOSCRIPT retry needs it. */
        req->owned = queue_key_of(q, "idem", batch->idem_id);
        snprintf(req->nums[0], sizeof(req->nums[0]), "%d", QUEUE_IDEM_TTL_MS);
        const char *argv[] = {"2",          req->owned, q->keys.jobs, batch->fingerprint,
                              req->nums[0], batch->job};
        size_t argvlen[] = {1,
                            strlen(req->owned),
                            strlen(q->keys.jobs),
                            strlen(batch->fingerprint),
                            strlen(req->nums[0]),
                            batch->job_len};
        rc = queue_eval(req, SCRIPT_IDEM_PUSH, queue_on_pushed, 6, argv, argvlen);
    } else {
        if (n + 2 > q->argv_cap) {
            q->argv = mem_realloc(q->argv, (n + 2) * sizeof(*q->argv));
            q->argvlen = mem_realloc(q->argvlen, (n + 2) * sizeof(*q->argvlen));
            q->argv_cap = n + 2;
        }
        q->argv[0] = "LPUSH";
        q->argvlen[0] = 5;
        q->argv[1] = q->keys.jobs;
        q->argvlen[1] = strlen(q->keys.jobs);
        size_t i = 2;
        for (queue_push_t *p = batch; p; p = p->next, i++) {
            q->argv[i] = p->job;
            q->argvlen[i] = p->job_len;
        }
        /* hiredis formats the command straight from the callers' job bytes
         * into its output buffer; nothing is copied before. */
        rc = queue_send(req, QUEUE_CMD_PUSH, queue_on_pushed, (int)i, q->argv, q->argvlen);
    }
    if (rc != 0) {
        queue_request_done(req);
        queue_complete_pushes(q, batch, QUEUE_UNAVAILABLE);
        return true;
    }
    q->bytes_sent += bytes;
    /* Pipelined behind the push: one fsync wait for the whole group commit. */
    if (queue_waits(q)) queue_send_wait(req);
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
    while (q->push_head && queue_flush_one(q)) {
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

/* ---- commands with simple replies ---------------------------------------- */

static void queue_on_done(redisAsyncContext *ac, void *reply, void *privdata) {
    (void)ac;
    queue_request_t *req = privdata;
    redisReply *r = reply;
    if (!queue_reply_arrived(req, r)) return;
    int status = queue_reply_status(r);
    if (status == QUEUE_ERROR) log_error("redis refused a command", "error", r->str);
    if (req->done_cb) req->done_cb(req->arg, status);
    queue_request_done(req);
}

static void queue_on_count(redisAsyncContext *ac, void *reply, void *privdata) {
    (void)ac;
    queue_request_t *req = privdata;
    redisReply *r = reply;
    if (!queue_reply_arrived(req, r)) return;
    long long count = -1;
    if (r && r->type == REDIS_REPLY_INTEGER) {
        count = r->integer;
    } else if (r && r->type == REDIS_REPLY_ERROR) {
        log_error("redis refused a script", "script", queue_script_names[req->script], "error",
                  r->str);
    }
    req->count_cb(req->arg, count);
    queue_request_done(req);
}

static void queue_on_list(redisAsyncContext *ac, void *reply, void *privdata) {
    (void)ac;
    queue_request_t *req = privdata;
    redisReply *r = reply;
    int status = queue_reply_status(r);
    if (status == QUEUE_OK && r->type != REDIS_REPLY_ARRAY) status = QUEUE_ERROR;
    if (status != QUEUE_OK) {
        req->list_cb(req->arg, status, NULL, 0);
        queue_request_done(req);
        return;
    }
    queue_item_t *items = mem_calloc(r->elements ? r->elements : 1, sizeof(*items));
    size_t n = 0;
    for (size_t i = 0; i < r->elements; i++) {
        if (r->element[i]->type != REDIS_REPLY_STRING) continue;
        items[n++] = (queue_item_t){r->element[i]->str, r->element[i]->len};
    }
    req->list_cb(req->arg, QUEUE_OK, items, n);
    free(items);
    queue_request_done(req);
}

void queue_dead_list(queue_t *q, queue_list_cb cb, void *arg) {
    queue_request_t *req = queue_request_new(q, arg);
    req->list_cb = cb;
    const char *argv[] = {"LRANGE", q->keys.dead, "0", "-1"};
    if (redis_conn_command(q->cmd, queue_on_list, req, 4, argv, NULL) != 0) {
        queue_request_done(req);
        cb(arg, QUEUE_UNAVAILABLE, NULL, 0);
    }
}

static void queue_count_script(queue_t *q, queue_script_t script, int argc, const char **argv,
                               queue_count_cb cb, void *arg) {
    queue_request_t *req = queue_request_new(q, arg);
    req->count_cb = cb;
    if (queue_eval(req, script, queue_on_count, argc, argv, NULL) == 0) return;
    queue_request_done(req);
    cb(arg, -1);
}

void queue_dead_requeue(queue_t *q, queue_count_cb cb, void *arg) {
    const char *argv[] = {"3", q->keys.dead, q->keys.jobs, q->keys.chan_wake};
    queue_count_script(q, SCRIPT_DEAD_REQUEUE, 4, argv, cb, arg);
}

void queue_reap(queue_t *q, queue_count_cb cb, void *arg) {
    const char *argv[] = {"2", q->keys.jobs, q->keys.workers, q->prefix};
    queue_count_script(q, SCRIPT_REAP, 4, argv, cb, arg);
}

void queue_ping(queue_t *q, queue_done_cb cb, void *arg) {
    queue_request_t *req = queue_request_new(q, arg);
    req->done_cb = cb;
    const char *ping[] = {"PING"};
    if (queue_send(req, QUEUE_CMD_PING, queue_on_done, 1, ping, NULL) == 0) return;
    queue_request_done(req);
    cb(arg, QUEUE_UNAVAILABLE);
}

/* ---- a worker's side ----------------------------------------------------- */

queue_worker_t *queue_worker_new(queue_t *q, const char *worker_id) {
    queue_worker_t *qw = mem_calloc(1, sizeof(*qw));
    qw->q = q;
    qw->id = mem_strdup(worker_id);
    qw->processing = queue_key_of(q, "processing", worker_id);
    qw->lease = queue_key_of(q, "lease", worker_id);
    /* Unique per process start: what fences two processes given one id. */
    unsigned char rnd[8];
    if (uv_random(NULL, NULL, rnd, sizeof(rnd), 0, NULL) != 0) {
        uint64_t t = uv_hrtime() ^ ((uint64_t)uv_os_getpid() << 32);
        memcpy(rnd, &t, sizeof(rnd));
    }
    for (size_t i = 0; i < sizeof(rnd); i++)
        snprintf(qw->instance + 2 * i, 3, "%02x", rnd[i]);
    return qw;
}

static void queue_worker_release_ref(queue_worker_t *qw) {
    if (--qw->pending > 0 || !qw->freed) return;
    free(qw->id);
    free(qw->processing);
    free(qw->lease);
    free(qw);
}

void queue_worker_free(queue_worker_t *qw) {
    if (!qw) return;
    qw->freed = true;
    qw->pending++;
    queue_worker_release_ref(qw);
}

static queue_request_t *queue_worker_request(queue_worker_t *qw, void *arg) {
    queue_request_t *req = queue_request_new(qw->q, arg);
    req->qw = qw;
    qw->pending++;
    return req;
}

static void queue_on_claimed(redisAsyncContext *ac, void *reply, void *privdata) {
    (void)ac;
    queue_request_t *req = privdata;
    queue_worker_t *qw = req->qw;
    redisReply *r = reply;
    if (!queue_reply_arrived(req, r)) return;
    int status = r ? queue_reply_status(r) : QUEUE_LOST;
    if (status == QUEUE_OK && (r->type != REDIS_REPLY_ARRAY || r->elements < 1 ||
                               r->element[0]->type != REDIS_REPLY_INTEGER ||
                               (r->element[0]->integer >= 0 &&
                                (r->elements < 3 || r->element[1]->type != REDIS_REPLY_INTEGER ||
                                 r->element[2]->type != REDIS_REPLY_INTEGER))))
        status = QUEUE_ERROR;
    else if (status == QUEUE_OK && r->element[0]->integer < 0)
        status = QUEUE_FENCED;
    if (status == QUEUE_ERROR && r && r->type == REDIS_REPLY_ERROR)
        log_error("redis refused the claim script", "error", r->str);
    if (status != QUEUE_OK) {
        /* Fenced: this process no longer owns the id, nor any batch under it. */
        if (status == QUEUE_FENCED) qw->held_token[0] = '\0';
        req->claim_cb(req->arg, status, NULL);
        queue_request_done(req);
        return;
    }
    qw->took_over = true;
    memcpy(qw->lease_token, req->tokens[1], sizeof(qw->lease_token));
    size_t n = r->elements - 3;
    queue_item_t *items = mem_calloc(n ? n : 1, sizeof(*items));
    size_t k = 0;
    for (size_t i = 3; i < r->elements; i++) {
        if (r->element[i]->type != REDIS_REPLY_STRING) continue;
        items[k++] = (queue_item_t){r->element[i]->str, r->element[i]->len};
    }
    if (k > 0) {
        memcpy(qw->held_token, req->tokens[1], sizeof(qw->held_token));
    } else {
        qw->held_token[0] = '\0';
    }
    long long remaining = r->element[2]->integer;
    if (remaining >= 0) {
        req->q->depth = (uint64_t)remaining;
        req->q->depth_known = true;
    }
    queue_batch_t batch = {
        .items = items,
        .n = k,
        .acked = r->element[0]->integer == 1,
        .held = r->element[1]->integer == 1,
        .remaining = remaining > 0 ? (uint64_t)remaining : 0,
    };
    req->claim_cb(req->arg, QUEUE_OK, &batch);
    free(items);
    queue_request_done(req);
}

void queue_worker_claim(queue_worker_t *qw, size_t max, bool ack, queue_claim_cb cb, void *arg) {
    queue_t *q = qw->q;
    queue_request_t *req = queue_worker_request(qw, arg);
    req->claim_cb = cb;
    snprintf(req->nums[0], sizeof(req->nums[0]), "%zu", max);
    snprintf(req->nums[1], sizeof(req->nums[1]), "%u", QUEUE_CLAIM_BYTES_MAX);
    snprintf(req->tokens[0], sizeof(req->tokens[0]), "%s", ack ? qw->held_token : "");
    snprintf(req->tokens[1], sizeof(req->tokens[1]), "%s:%llu", qw->instance,
             (unsigned long long)++qw->next_batch);
    const char *argv[] = {"5",
                          q->keys.jobs,
                          qw->processing,
                          qw->lease,
                          q->keys.workers,
                          q->keys.chan_stored,
                          req->nums[0],
                          req->nums[1],
                          q->lease_ms,
                          qw->id,
                          req->tokens[0],
                          req->tokens[1],
                          qw->took_over ? "0" : "1"};
    if (queue_eval(req, SCRIPT_CLAIM, queue_on_claimed, 13, argv, NULL) == 0) return;
    queue_request_done(req);
    cb(arg, QUEUE_UNAVAILABLE, NULL);
}

static void queue_on_acked_dead(redisAsyncContext *ac, void *reply, void *privdata) {
    (void)ac;
    queue_request_t *req = privdata;
    redisReply *r = reply;
    if (!queue_reply_arrived(req, r)) return;
    int status = r ? queue_reply_status(r) : QUEUE_LOST;
    if (status == QUEUE_ERROR) log_error("redis refused the dead-letter script", "error", r->str);
    /* Applied now or by an earlier attempt: either way the batch is done. */
    if (status == QUEUE_OK) req->qw->held_token[0] = '\0';
    req->done_cb(req->arg, status);
    queue_request_done(req);
}

void queue_worker_ack_dead(queue_worker_t *qw, const queue_item_t *records, size_t n,
                           queue_done_cb cb, void *arg) {
    queue_t *q = qw->q;
    queue_request_t *req = queue_worker_request(qw, arg);
    req->done_cb = cb;
    snprintf(req->tokens[0], sizeof(req->tokens[0]), "%s", qw->held_token);
    size_t argc = n + 6;
    const char **argv = mem_malloc(argc * sizeof(*argv));
    size_t *argvlen = mem_malloc(argc * sizeof(*argvlen));
    const char *head[] = {"4",       qw->processing,      q->keys.dead,
                          qw->lease, q->keys.chan_stored, req->tokens[0]};
    for (size_t i = 0; i < 6; i++) {
        argv[i] = head[i];
        argvlen[i] = strlen(head[i]);
    }
    for (size_t i = 0; i < n; i++) {
        argv[6 + i] = records[i].ptr;
        argvlen[6 + i] = records[i].len;
    }
    int rc = queue_eval(req, SCRIPT_ACK_DEAD, queue_on_acked_dead, (int)argc, argv, argvlen);
    free(argv);
    free(argvlen);
    if (rc == 0) return;
    queue_request_done(req);
    cb(arg, QUEUE_UNAVAILABLE);
}

static void queue_on_heartbeat(redisAsyncContext *ac, void *reply, void *privdata) {
    (void)ac;
    queue_request_t *req = privdata;
    redisReply *r = reply;
    if (!queue_reply_arrived(req, r)) return;
    int status = r ? queue_reply_status(r) : QUEUE_LOST;
    if (status == QUEUE_OK && r->type == REDIS_REPLY_INTEGER && r->integer == 0)
        status = QUEUE_FENCED;
    if (req->done_cb) req->done_cb(req->arg, status);
    queue_request_done(req);
}

void queue_worker_heartbeat(queue_worker_t *qw, queue_done_cb cb, void *arg) {
    if (qw->lease_token[0] == '\0') return;
    queue_t *q = qw->q;
    queue_request_t *req = queue_worker_request(qw, arg);
    req->done_cb = cb;
    snprintf(req->tokens[0], sizeof(req->tokens[0]), "%s", qw->lease_token);
    const char *argv[] = {"2", qw->lease, q->keys.workers, req->tokens[0], q->lease_ms, qw->id};
    if (queue_eval(req, SCRIPT_HEARTBEAT, queue_on_heartbeat, 6, argv, NULL) == 0) return;
    queue_request_done(req);
    if (cb) cb(arg, QUEUE_UNAVAILABLE);
}

void queue_worker_release(queue_worker_t *qw, queue_done_cb cb, void *arg) {
    queue_t *q = qw->q;
    queue_request_t *req = queue_worker_request(qw, arg);
    req->done_cb = cb;
    /* Before any claim, the instance alone identifies us. */
    snprintf(req->tokens[0], sizeof(req->tokens[0]), "%s",
             qw->lease_token[0] ? qw->lease_token : qw->instance);
    const char *argv[] = {
        "4", q->keys.jobs, qw->processing, qw->lease, q->keys.workers, req->tokens[0], qw->id};
    if (queue_eval(req, SCRIPT_RELEASE, queue_on_done, 7, argv, NULL) == 0) return;
    queue_request_done(req);
    cb(arg, QUEUE_UNAVAILABLE);
}

/* ---- shutdown ------------------------------------------------------------ */

static void queue_on_conn_closed(void *arg) {
    queue_t *q = arg;
    closer_done(&q->closer);
}

void queue_close(queue_t *q, queue_closed_cb cb, void *arg) {
    q->closing = true;
    /* Pushes that never left get an answer now; those in flight get theirs from
     * Redis before the connection closes. */
    if (q->push_head) {
        queue_push_t *list = q->push_head;
        q->push_head = NULL;
        q->push_tail = &q->push_head;
        queue_complete_pushes(q, list, QUEUE_UNAVAILABLE);
    }
    closer_init(&q->closer, q->sub ? 4 : 3, cb, arg);
    closer_handle(&q->closer, (uv_handle_t *)&q->flush_check);
    closer_handle(&q->closer, (uv_handle_t *)&q->depth_timer);
    redis_conn_close(q->cmd, queue_on_conn_closed, q);
    if (q->sub) redis_conn_close(q->sub, queue_on_conn_closed, q);
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
