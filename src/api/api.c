/* api: the endpoints of api.h. Per-connection state lives in the http user
 * area; POST outcomes are counted in api_stats for the scrape to pull. */
#include "api/api.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api/form.h"
#include "api/route.h"
#include "obs/log.h"
#include "util/clock.h"
#include "util/mem.h"
#include "util/strbuf.h"
#include "util/utf8.h"

#define API_WAIT_MAX_MS 30000
/* Per-connection buffers that grew past this for one request are released. */
#define API_BUFFER_KEEP (16 * 1024)

static const char api_insufficient[] = "INSUFFICIENT DATA FOR MEANINGFUL ANSWER.";
static const char api_welcome[] = "Welcome to MultiVAC!";
static const char api_light[] = "LET THERE BE LIGHT!!!";
static const char api_text[] = "text/plain; charset=utf-8";
static const char api_json[] = "application/json";

/* Labels of the request-duration histogram, by route_id_t, and one more for
 * long-polls, whose time is the client's wait rather than ours. */
#define API_ROUTE_LONG_POLL ROUTE_COUNT
static const char *const api_route_names[ROUTE_COUNT + 1] = {
    [API_ROUTE_LONG_POLL] = "/multivac?wait",
    [ROUTE_NOT_FOUND] = "other",
    [ROUTE_ROOT] = "/",
    [ROUTE_MULTIVAC] = "/multivac",
    [ROUTE_MULTIVAC_DATA] = "/multivac/data",
    [ROUTE_ZZZ] = "/zzz",
    [ROUTE_HEALTHZ] = "/healthz",
    [ROUTE_READYZ] = "/readyz",
    [ROUTE_METRICS] = "/metrics",
};

struct api {
    api_deps_t deps;
    size_t waiting; /* long-polls parked on the answer */
    api_stats_t stats;
};

/* Per-connection state, in the http connection's user area. */
typedef struct api_conn {
    api_t *api;
    http_exchange_t *ex;
    route_match_t route; /* matched from the head */
    strbuf_t job;        /* the encoded job being pushed, data decoded into place */
    strbuf_t reply;      /* response bodies built per request */
    char job_id[JOB_ID_LEN + 1];
    char fingerprint[JOB_ID_LEN + 1]; /* of the data, with an Idempotency-Key */
    queue_push_t push;
    answer_waiter_t waiter;
    int checks_pending; /* /readyz */
    bool redis_ok, mongo_ok;
} api_conn_t;

api_t *api_new(const api_deps_t *deps) {
    api_t *api = mem_calloc(1, sizeof(*api));
    api->deps = *deps;
    return api;
}

const api_stats_t *api_stats(const api_t *api) { return &api->stats; }

void api_free(api_t *api) { free(api); }

static void api_respond(api_conn_t *ac, int status, const char *type, const char *headers,
                        const char *body, size_t len) {
    http_response_t r = {status, type, headers, body, len};
    http_respond(ac->ex, &r);
    /* The response is copied out: one large request must not pin its buffers. */
    strbuf_shrink(&ac->job, API_BUFFER_KEEP);
    strbuf_shrink(&ac->reply, API_BUFFER_KEEP);
}

static void api_text_reply(api_conn_t *ac, int status, const char *body, size_t len) {
    api_respond(ac, status, api_text, NULL, body, len);
}

/* {"error": "<why>"} */
static void api_error(api_conn_t *ac, int status, const char *headers, const char *why) {
    strbuf_reset(&ac->reply);
    strbuf_append_str(&ac->reply, "{\"error\": \"");
    strbuf_append_json(&ac->reply, why, strlen(why));
    strbuf_append_str(&ac->reply, "\"}");
    api_respond(ac, status, api_json, headers, ac->reply.data, ac->reply.len);
}

/* 401: counted, with the challenge. */
static void api_unauthorized(api_conn_t *ac) {
    ac->api->stats.unauthorized++;
    api_error(ac, 401, auth_challenge(), "writing needs a token: Authorization: Bearer <token>");
}

/* 503: Redis could not take the datum; nothing was queued. */
static void api_unavailable(api_conn_t *ac) {
    ac->api->stats.unavailable++;
    api_error(ac, 503, "Retry-After: 1\r\n", "queue unavailable, datum not accepted: retry");
}

/* ---- GET /multivac ------------------------------------------------------- */

static void api_send_answer(api_conn_t *ac) {
    const char *data;
    size_t len;
    static const char headers[] = "Cache-Control: no-cache\r\n";
    if (answer_get(ac->api->deps.answer, &data, &len)) {
        api_respond(ac, 200, api_text, headers, data, len);
    } else {
        api_respond(ac, 200, api_text, headers, api_insufficient, sizeof(api_insufficient) - 1);
    }
}

static void api_on_answer(answer_waiter_t *w) {
    api_conn_t *ac = w->data;
    ac->api->waiting--;
    api_send_answer(ac);
}

static void api_on_wait_over(http_exchange_t *ex) {
    api_conn_t *ac = http_exchange_user(ex);
    ac->api->waiting--;
    answer_cancel(ac->api->deps.answer, &ac->waiter);
    api_send_answer(ac);
}

/* Parses `wait`: seconds, decimal, 0 to 30. Returns ms, or -1 when invalid. */
static long api_parse_wait(const char *s, size_t len) {
    char buf[16];
    if (len == 0 || len >= sizeof(buf)) return -1;
    bool dot = false;
    for (size_t i = 0; i < len; i++) {
        if (s[i] == '.' && !dot) {
            dot = true;
        } else if (s[i] < '0' || s[i] > '9') {
            return -1;
        }
    }
    memcpy(buf, s, len);
    buf[len] = '\0';
    double seconds = strtod(buf, NULL);
    if (seconds < 0 || seconds * 1000 > API_WAIT_MAX_MS) return -1;
    return (long)(seconds * 1000);
}

static void api_get_multivac(api_conn_t *ac, const route_match_t *m) {
    size_t wait_len;
    const char *wait = route_query_param(m->query, m->query_len, "wait", &wait_len);
    long wait_ms = 0;
    if (wait && (wait_ms = api_parse_wait(wait, wait_len)) < 0) {
        api_error(ac, 400, NULL, "wait must be a number of seconds from 0 to 30");
        return;
    }
    const char *data;
    size_t len;
    /* Past the cap, a long-poll is answered with what is known now. */
    if (wait_ms == 0 || answer_get(ac->api->deps.answer, &data, &len) ||
        ac->api->waiting >= ac->api->deps.max_waiters) {
        api_send_answer(ac);
        return;
    }
    ac->waiter.cb = api_on_answer;
    ac->waiter.data = ac;
    if (!answer_wait(ac->api->deps.answer, &ac->waiter)) {
        api_send_answer(ac); /* shutting down: no one will wake it */
        return;
    }
    ac->api->waiting++;
    http_exchange_set_route(ac->ex, API_ROUTE_LONG_POLL);
    http_exchange_set_timeout(ac->ex, (uint64_t)wait_ms, api_on_wait_over);
    http_exchange_on_abort(ac->ex, api_on_wait_over);
}

/* ---- POST /multivac/data ------------------------------------------------- */

static void api_on_pushed(queue_push_t *push, int status) {
    api_conn_t *ac = push->data;
    api_stats_t *st = &ac->api->stats;
    if (status == QUEUE_LOST) {
        /* Honest about it: the client decides whether a possible duplicate
         * is worse than a possible loss. */
        st->unavailable++;
        api_error(ac, 503, "Retry-After: 1\r\n",
                  "connection to the queue lost before it acknowledged: the datum may or may "
                  "not be queued");
        return;
    }
    if (status == QUEUE_CONFLICT) {
        st->rejected++;
        api_error(ac, 422, NULL, "Idempotency-Key already used with other data");
        return;
    }
    if (status != QUEUE_OK) {
        api_unavailable(ac);
        return;
    }
    st->accepted++;
    strbuf_reset(&ac->reply);
    strbuf_append_str(&ac->reply, "{\"response\": \"MultiVAC updated!\", \"id\": \"");
    strbuf_append_str(&ac->reply, ac->job_id);
    strbuf_append_str(&ac->reply, "\"}");
    http_exchange_log_field(ac->ex, "job_id", ac->job_id);
    api_respond(ac, 200, api_json, NULL, ac->reply.data, ac->reply.len);
}

/* An Idempotency-Key: 1 to 255 visible ASCII characters. */
static bool api_idem_key_valid(const char *key, size_t len) {
    if (len == 0 || len > 255) return false;
    for (size_t i = 0; i < len; i++)
        if (key[i] < 0x21 || key[i] > 0x7e) return false;
    return true;
}

/* With an Idempotency-Key, the job id is derived from the key, scoped by the
 * writer's token, so every retry names the same document. Returns false after
 * answering when the key cannot be used. */
static bool api_idem_id(api_conn_t *ac, const char *key, size_t key_len) {
    api_t *api = ac->api;
    if (!api_idem_key_valid(key, key_len)) {
        api->stats.rejected++;
        api_error(ac, 400, NULL, "Idempotency-Key must be 1 to 255 visible ASCII characters");
        return false;
    }
    const char *scope = "";
    size_t scope_len = 0;
    if (api->deps.auth) {
        size_t len;
        const char *cred = http_exchange_header(ac->ex, HTTP_HEADER_AUTHORIZATION, &len);
        /* Allowed from the head, but the tokens may have been re-read since. */
        if (!auth_token(api->deps.auth, cred, len, &scope, &scope_len)) {
            api_unauthorized(ac);
            return false;
        }
    }
    job_id_derive(scope, scope_len, key, key_len, ac->job_id);
    return true;
}

static void api_post_data(api_conn_t *ac) {
    api_t *api = ac->api;
    size_t ctype_len, body_len, key_len;
    const char *ctype = http_exchange_header(ac->ex, HTTP_HEADER_CONTENT_TYPE, &ctype_len);
    const char *body = http_exchange_body(ac->ex, &body_len);
    const char *key = http_exchange_header(ac->ex, HTTP_HEADER_IDEMPOTENCY_KEY, &key_len);
    const char *why = NULL;

    int64_t now_ms = clock_wall_ms();
    if (key) {
        if (!api_idem_id(ac, key, key_len)) return;
    } else {
        job_id_next(api->deps.ids, now_ms, ac->job_id);
    }
    /* The field is decoded straight into the job: one copy from body to queue. */
    strbuf_reset(&ac->job);
    job_encode_prefix(ac->job_id, now_ms, &ac->job);
    size_t prefix = ac->job.len;
    form_status_t st = form_get_field(ctype, ctype_len, body, body_len, "data", &ac->job, &why);
    if (st != FORM_OK) {
        api->stats.rejected++;
        api_error(ac, 400, NULL, why); /* form names the field when it is missing */
        return;
    }
    /* MongoDB stores strings as UTF-8; refuse what it would refuse, now. */
    if (!utf8_valid(ac->job.data + prefix, ac->job.len - prefix)) {
        api->stats.rejected++;
        api_error(ac, 400, NULL, "form field 'data' is not valid UTF-8");
        return;
    }
    int admit = queue_admit(api->deps.queue, ac->job.len);
    if (admit != QUEUE_OK) {
        if (admit == QUEUE_FULL) {
            api->stats.throttled++;
            api_error(ac, 503, "Retry-After: 1\r\n", "queue full, datum not accepted: retry later");
        } else {
            api_unavailable(ac);
        }
        return;
    }
    ac->push.job = ac->job.data;
    ac->push.job_len = ac->job.len;
    ac->push.cb = api_on_pushed;
    ac->push.data = ac;
    ac->push.idem_id = NULL;
    ac->push.fingerprint = NULL;
    if (key) {
        job_fingerprint(ac->job.data + prefix, ac->job.len - prefix, ac->fingerprint);
        ac->push.idem_id = ac->job_id;
        ac->push.fingerprint = ac->fingerprint;
    }
    queue_push(api->deps.queue, &ac->push);
}

/* ---- GET /readyz --------------------------------------------------------- */

/* Ready means this process can do its job now: accept, and queue what it
 * accepts in Redis. MongoDB is reported but does not gate: GET /multivac is
 * served from memory and POSTs are queued through a MongoDB outage, so taking
 * the pod out of its Service would only turn answers into errors. */
static void api_readyz_done(api_conn_t *ac) {
    if (--ac->checks_pending > 0) return;
    api_deps_t *d = &ac->api->deps;
    /* Workers in this process must also be able to store (not in a store-wide
     * outage): a worker pod that cannot work should not count as available. */
    bool ready = ac->redis_ok && (!d->workers_ready || d->workers_ready(d->collect_arg));
    strbuf_reset(&ac->reply);
    strbuf_printf(&ac->reply, "{\"status\": \"%s\", \"redis\": \"%s\", \"mongo\": \"%s\"}",
                  ready ? "ready" : "not ready", ac->redis_ok ? "ok" : "unavailable",
                  ac->mongo_ok ? "ok" : "unavailable");
    api_respond(ac, ready ? 200 : 503, api_json, "Cache-Control: no-store\r\n", ac->reply.data,
                ac->reply.len);
}

static void api_on_redis_ping(void *arg, int status) {
    api_conn_t *ac = arg;
    ac->redis_ok = status == QUEUE_OK && queue_ready(ac->api->deps.queue);
    api_readyz_done(ac);
}

static void api_on_mongo_ping(void *arg, int status, const char *err) {
    (void)err;
    api_conn_t *ac = arg;
    ac->mongo_ok = status == STORE_OK;
    api_readyz_done(ac);
}

static void api_get_readyz(api_conn_t *ac) {
    if (*ac->api->deps.stopping) {
        static const char body[] = "{\"status\": \"stopping\"}";
        api_respond(ac, 503, api_json, "Cache-Control: no-store\r\n", body, sizeof(body) - 1);
        return;
    }
    ac->checks_pending = 2;
    ac->redis_ok = ac->mongo_ok = false;
    queue_ping(ac->api->deps.queue, api_on_redis_ping, ac);
    store_ping(ac->api->deps.store, api_on_mongo_ping, ac);
}

/* ---- dispatch ------------------------------------------------------------ */

static void api_get_metrics(api_conn_t *ac) {
    api_deps_t *d = &ac->api->deps;
    metrics_t m = {0};
    if (d->collect) d->collect(d->collect_arg, &m);
    strbuf_reset(&ac->reply);
    metrics_render(&m, &ac->reply);
    if (d->render_more) d->render_more(d->collect_arg, &ac->reply);
    api_respond(ac, 200, "text/plain; version=0.0.4; charset=utf-8", NULL, ac->reply.data,
                ac->reply.len);
}

/* Everything that can be decided from the head is, so a client is not made to
 * send a body that will be refused. */
static void api_on_head(void *arg, http_exchange_t *ex) {
    api_conn_t *ac = http_exchange_user(ex);
    api_t *api = arg;
    ac->api = api;
    ac->ex = ex;

    size_t target_len;
    const char *target = http_exchange_target(ex, &target_len);
    if (route_match(target, target_len, &ac->route) != 0) {
        api_error(ac, 400, NULL, "malformed request target");
        return;
    }
    route_id_t id = ac->route.id;
    http_exchange_set_route(ex, (unsigned)id);
    /* The admin listener serves the operational routes only; the public port
     * then keeps /healthz and /readyz for probes but not /metrics. */
    bool ops = id == ROUTE_HEALTHZ || id == ROUTE_READYZ || id == ROUTE_METRICS;
    if ((api->deps.role == API_ADMIN && !ops) ||
        (api->deps.role == API_PUBLIC_WITH_ADMIN && id == ROUTE_METRICS))
        id = ROUTE_NOT_FOUND;
    if (id == ROUTE_NOT_FOUND) {
        api_error(ac, 404, NULL, "not found");
        return;
    }
    http_method_t method = http_exchange_method(ex);
    unsigned allowed = route_allowed(id);
    bool ok = ((method == HTTP_METHOD_GET || method == HTTP_METHOD_HEAD) &&
               (allowed & ROUTE_ALLOW_GET)) ||
              (method == HTTP_METHOD_POST && (allowed & ROUTE_ALLOW_POST));
    if (!ok) {
        char allow[64];
        snprintf(allow, sizeof(allow), "Allow: %s\r\n", route_allow_header(id));
        if (method == HTTP_METHOD_OPTIONS) {
            api_respond(ac, 204, NULL, allow, NULL, 0);
        } else {
            api_error(ac, 405, allow, "method not allowed");
        }
        return;
    }
    if (method == HTTP_METHOD_POST && api->deps.auth) {
        size_t len;
        const char *cred = http_exchange_header(ex, HTTP_HEADER_AUTHORIZATION, &len);
        if (!auth_allows(api->deps.auth, cred, len)) {
            api_unauthorized(ac);
            return;
        }
    }
}

static void api_on_request(void *arg, http_exchange_t *ex) {
    (void)arg;
    api_conn_t *ac = http_exchange_user(ex);
    switch (ac->route.id) {
    case ROUTE_ROOT: api_text_reply(ac, 200, api_welcome, sizeof(api_welcome) - 1); break;
    case ROUTE_ZZZ: api_text_reply(ac, 200, api_light, sizeof(api_light) - 1); break;
    case ROUTE_HEALTHZ: api_text_reply(ac, 200, "ok", 2); break;
    case ROUTE_MULTIVAC: api_get_multivac(ac, &ac->route); break;
    case ROUTE_MULTIVAC_DATA: api_post_data(ac); break;
    case ROUTE_READYZ: api_get_readyz(ac); break;
    case ROUTE_METRICS: api_get_metrics(ac); break;
    default: api_error(ac, 404, NULL, "not found"); break;
    }
}

static void api_on_conn_close(void *arg, void *user) {
    (void)arg;
    api_conn_t *ac = user;
    strbuf_free(&ac->job);
    strbuf_free(&ac->reply);
}

http_handler_t api_http_handler(api_t *api) {
    return (http_handler_t){api_on_head,        api_on_request,  api_on_conn_close, api,
                            sizeof(api_conn_t), api_route_names, ROUTE_COUNT + 1};
}
