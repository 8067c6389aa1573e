/* api: MultiVAC's endpoints, as an http handler.
 *
 *   GET  /                 welcome text
 *   GET  /multivac         the answer, or INSUFFICIENT DATA...; ?wait=N long-polls
 *   POST /multivac/data    queue a datum (form field `data`)
 *   GET  /zzz, /zzz/       LET THERE BE LIGHT!!!
 *   GET  /healthz          alive;  GET /readyz  Redis and MongoDB reachable now
 *   GET  /metrics          Prometheus text
 * HEAD for every GET, 405 with Allow for other methods on these paths, 404 else.
 * Routing, methods and write authentication (401) are decided from the request
 * head, before a body is read. */
#ifndef MULTIVAC_API_H
#define MULTIVAC_API_H

#include <stdint.h>

#include "api/answer.h"
#include "api/auth.h"
#include "http/http.h"
#include "obs/metrics.h"
#include "queue/job.h"
#include "queue/queue.h"
#include "store/store.h"

typedef struct api api_t;

/* What the api counted, pulled at scrape time (POST /multivac/data outcomes). */
typedef struct api_stats {
    uint64_t accepted;     /* acknowledged by Redis */
    uint64_t rejected;     /* bad input: 400, 422 */
    uint64_t unavailable;  /* 503: Redis unavailable */
    uint64_t throttled;    /* 503: queue full (backpressure) */
    uint64_t unauthorized; /* 401: no valid write token */
} api_stats_t;

typedef enum {
    API_PUBLIC,            /* every route */
    API_PUBLIC_WITH_ADMIN, /* every route but /metrics, served by the admin listener */
    API_ADMIN,             /* /healthz, /readyz, /metrics only */
} api_role_t;

typedef struct api_deps {
    queue_t *queue;
    store_t *store;
    answer_t *answer;
    job_id_gen_t *ids;
    /* Fills a zeroed snapshot from every module's stats (api_stats among them)
     * just before GET /metrics renders it. */
    void (*collect)(void *arg, metrics_t *m);
    /* Appends families that live elsewhere (histograms) after the rest. */
    void (*render_more)(void *arg, strbuf_t *out);
    void *collect_arg;
    bool *stopping; /* set by the owner on shutdown: /readyz turns 503 */
    auth_t *auth;   /* NULL: anyone may POST */
    api_role_t role;
    /* Workers of this process can work now (NULL: no workers); gates /readyz. */
    bool (*workers_ready)(void *arg);
    size_t max_waiters; /* long-polls held at once; more are answered at once */
} api_deps_t;

/* `deps` are borrowed and must outlive the api. */
api_t *api_new(const api_deps_t *deps);
/* The handler to give http_server_new. */
http_handler_t api_http_handler(api_t *api);
/* The counts so far; valid as long as the api. */
const api_stats_t *api_stats(const api_t *api);
void api_free(api_t *api);

#endif
