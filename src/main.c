/* multivac: configuration, wiring and lifecycle.
 *
 * One process, one libuv loop. Depending on the mode it runs the HTTP server
 * (runserver), the workers (worker), or both (serve). Everything the process
 * owns hangs off one explicit context, `server_t`. */
#include <mongoc/mongoc.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <uv.h>

#include "admin.h"
#include "api/answer.h"
#include "api/api.h"
#include "config.h"
#include "http/http.h"
#include "obs/log.h"
#include "obs/metrics.h"
#include "queue/job.h"
#include "queue/queue.h"
#include "store/store.h"
#include "util/mem.h"
#include "worker/reaper.h"
#include "worker/worker.h"

#define WORKER_POLL_MS 1000
/* Request line + header section on the wire, and header fields per request. */
#define HTTP_MAX_HEAD (16 * 1024)
#define HTTP_MAX_HEADER_LINES 100
/* Pushes waiting on Redis at once; each holds at most one request body. */
#define QUEUE_IN_FLIGHT_MAX 65536

typedef struct server {
    config_t cfg;
    uv_loop_t loop;
    uv_signal_t sigint, sigterm;
    uv_timer_t shutdown_timer;

    store_t *store;
    queue_t *queue;
    job_id_gen_t *ids;
    answer_t *answer; /* HTTP modes */
    auth_t *auth;     /* HTTP modes with MULTIVAC_WRITE_TOKENS_FILE */
    api_t *api;
    http_server_t *http;
    api_t *admin_api; /* MULTIVAC_ADMIN_LISTEN: /healthz, /readyz, /metrics */
    http_server_t *admin;
    worker_t **workers; /* worker modes */
    int worker_count;
    reaper_t *reaper;

    bool stopping;
    int phase_pending; /* parts of the current shutdown phase still closing */
    int exit_code;
} server_t;

static bool server_has_http(const server_t *srv) { return srv->cfg.mode != MODE_WORKER; }
static bool server_has_workers(const server_t *srv) { return srv->cfg.mode != MODE_RUNSERVER; }

/* ---- events -------------------------------------------------------------- */

static void server_on_wake(void *arg) {
    server_t *srv = arg;
    for (int i = 0; i < srv->worker_count; i++)
        worker_wake(srv->workers[i]);
}

static void server_on_stored(void *arg) {
    server_t *srv = arg;
    if (srv->answer) answer_refresh(srv->answer);
}

static void server_on_subscribed(void *arg) {
    server_t *srv = arg;
    /* Announcements may have been missed while unsubscribed. */
    if (srv->answer) answer_reload(srv->answer);
    server_on_wake(srv);
}

static void server_collect(void *arg, metrics_t *m) {
    server_t *srv = arg;
    const char *data;
    size_t len;
    m->http_connections = srv->http ? http_server_connections(srv->http) : 0;
    m->http_refused = srv->http ? http_server_refused(srv->http) : 0;
    for (int c = 1; c <= 5; c++)
        m->http_responses[c] = srv->http ? http_server_responses(srv->http, c) : 0;
    m->answer_known = srv->answer && answer_get(srv->answer, &data, &len);
    m->redis_ready = queue_ready(srv->queue);
    m->mongo_ready = srv->answer && answer_store_ok(srv->answer);
    m->queue_depth = queue_depth(srv->queue);
    m->dead_letters = queue_dead_count(srv->queue);
    m->jobs_requeued = srv->reaper ? reaper_requeued(srv->reaper) : 0;
    /* Both listeners' apis count POSTs they answer (the admin one serves none). */
    const api_t *apis[] = {srv->api, srv->admin_api};
    for (size_t i = 0; i < sizeof(apis) / sizeof(apis[0]); i++) {
        if (!apis[i]) continue;
        const api_stats_t *as = api_stats(apis[i]);
        m->data_accepted += as->accepted;
        m->data_rejected += as->rejected;
        m->data_unavailable += as->unavailable;
        m->data_throttled += as->throttled;
        m->data_unauthorized += as->unauthorized;
    }
    /* Workers see MongoDB refuse writes (a full disk) that reads and pings
     * miss; a worker-only process has only their view. */
    if (!srv->answer) m->mongo_ready = 1;
    for (int i = 0; i < srv->worker_count; i++) {
        const worker_stats_t *st = worker_stats(srv->workers[i]);
        m->store_unavailable += st->store_unavailable;
        if (!worker_store_ready(srv->workers[i])) m->mongo_ready = 0;
        m->jobs_stored += st->stored;
        m->worker_failures += st->failures;
        m->jobs_invalid += st->invalid;
        m->jobs_dead += st->dead;
    }
}

static void server_render_more(void *arg, strbuf_t *out) {
    server_t *srv = arg;
    if (srv->http) http_server_render_metrics(srv->http, out);
    /* A series per kind this process has sent (a web process claims nothing). */
    const queue_stats_t *qs = queue_stats(srv->queue);
    histogram_render_header(out, "multivac_redis_command_seconds",
                            "A Redis command of the queue, from its send to its reply, by kind.");
    for (int k = 0; k < QUEUE_CMD_COUNT; k++) {
        if (qs->command[k].count == 0) continue;
        char labels[48];
        snprintf(labels, sizeof(labels), "command=\"%s\"", queue_command_name((queue_command_t)k));
        histogram_render(out, "multivac_redis_command_seconds", labels, &qs->command[k]);
    }
    if (srv->worker_count == 0) return;
    histogram_t age = {0}, insert = {0};
    for (int i = 0; i < srv->worker_count; i++) {
        histogram_merge(&age, &worker_stats(srv->workers[i])->job_age);
        histogram_merge(&insert, &worker_stats(srv->workers[i])->insert_time);
    }
    histogram_render_header(out, "multivac_job_age_seconds",
                            "From a datum's acceptance to its acknowledged storage.");
    histogram_render(out, "multivac_job_age_seconds", "", &age);
    histogram_render_header(out, "multivac_store_insert_seconds",
                            "One batch insert into MongoDB, answered or failed.");
    histogram_render(out, "multivac_store_insert_seconds", "", &insert);
}

/* ---- shutdown, in phases ------------------------------------------------- *
 * 1. HTTP stops accepting and finishes its exchanges; workers finish or return
 *    their batch; long-polls are answered.
 * 2. The queue closes (replies in flight arrive first).
 * 3. The store closes (operations in flight finish first).
 * 4. The remaining handles close and uv_run returns. */

static void server_phase_done(void *arg);

static void server_phase4(server_t *srv) {
    uv_close((uv_handle_t *)&srv->sigint, NULL);
    uv_close((uv_handle_t *)&srv->sigterm, NULL);
    uv_close((uv_handle_t *)&srv->shutdown_timer, NULL);
}

static void server_on_store_closed(void *arg) { server_phase4(arg); }

static void server_on_queue_closed(void *arg) {
    server_t *srv = arg;
    store_close(srv->store, server_on_store_closed, srv);
}

static void server_phase_done(void *arg) {
    server_t *srv = arg;
    if (--srv->phase_pending > 0) return;
    queue_close(srv->queue, server_on_queue_closed, srv);
}

static void server_on_shutdown_timeout(uv_timer_t *t) {
    (void)t;
    log_error("shutdown timed out, exiting now");
    exit(1);
}

static void server_stop(server_t *srv) {
    srv->stopping = true;
    log_info("shutting down");
    uv_timer_start(&srv->shutdown_timer, server_on_shutdown_timeout,
                   (uint64_t)srv->cfg.shutdown_timeout_ms, 0);
    srv->phase_pending = 1; /* held until every part below is asked to stop */
    if (srv->http) {
        srv->phase_pending += 2;
        answer_close(srv->answer, server_phase_done, srv);
        if (srv->auth) {
            srv->phase_pending++;
            auth_close(srv->auth, server_phase_done, srv);
        }
        http_server_shutdown(srv->http, (uint64_t)srv->cfg.shutdown_drain_ms, server_phase_done,
                             srv);
    }
    if (srv->admin) {
        srv->phase_pending++;
        http_server_shutdown(srv->admin, (uint64_t)srv->cfg.shutdown_drain_ms, server_phase_done,
                             srv);
    }
    if (srv->reaper) {
        srv->phase_pending++;
        reaper_close(srv->reaper, server_phase_done, srv);
    }
    for (int i = 0; i < srv->worker_count; i++) {
        srv->phase_pending++;
        worker_stop(srv->workers[i], server_phase_done, srv);
    }
    server_phase_done(srv);
}

static void server_on_signal(uv_signal_t *sig, int signum) {
    server_t *srv = sig->data;
    if (srv->stopping) {
        log_warn("second signal, exiting now");
        exit(1);
    }
    (void)signum;
    server_stop(srv);
}

/* ---- start-up ------------------------------------------------------------ */

static void server_mongoc_log(mongoc_log_level_t level, const char *domain, const char *message,
                              void *arg) {
    (void)arg;
    /* FerretDB lacks endSessions; mongoc warns about it on every pool teardown. */
    if (level >= MONGOC_LOG_LEVEL_INFO || strstr(message, "endSessions")) {
        log_debug("mongoc", "domain", domain, "message", message);
    } else if (level == MONGOC_LOG_LEVEL_WARNING) {
        log_warn("mongoc", "domain", domain, "message", message);
    } else {
        log_error("mongoc", "domain", domain, "message", message);
    }
}

/* Passwords never reach a log line, whichever library's message carries them. */
static void server_redact_secrets(const config_t *cfg) {
    log_redact(cfg->redis_password);
    mongoc_uri_t *uri = mongoc_uri_new_with_error(cfg->mongo_url, NULL);
    if (uri) {
        log_redact(mongoc_uri_get_password(uri));
        mongoc_uri_destroy(uri);
    }
}

static void server_start_workers(server_t *srv) {
    char host[256];
    size_t host_len = sizeof(host);
    if (uv_os_gethostname(host, &host_len) != 0) snprintf(host, sizeof(host), "unknown");
    srv->workers = mem_calloc((size_t)srv->cfg.workers, sizeof(*srv->workers));
    /* Characters 12..23 of a job id are the generator's random bits: together
     * with host and pid they tell this process apart from any other. */
    char token[JOB_ID_LEN + 1];
    job_id_next(srv->ids, 0, token);
    for (int i = 0; i < srv->cfg.workers; i++) {
        char id[400];
        /* A stable identity lets a restarted process claim its own processing
         * list back at once (the claim returns a held list first) instead of
         * waiting up to 1.5 leases for the reaper. */
        if (srv->cfg.worker_id) {
            snprintf(id, sizeof(id), "%s:%d", srv->cfg.worker_id, i);
        } else {
            snprintf(id, sizeof(id), "%s:%d:%.12s:%d", host, (int)getpid(), token + 12, i);
        }
        worker_options_t wo = {id, (size_t)srv->cfg.batch, WORKER_POLL_MS,
                               (uint64_t)srv->cfg.lease_ms, srv->cfg.max_attempts};
        srv->workers[i] = worker_new(&srv->loop, srv->queue, srv->store, &wo);
        srv->worker_count++;
    }
    srv->reaper = reaper_new(&srv->loop, srv->queue, (uint64_t)srv->cfg.lease_ms);
}

/* Every worker of this process can store now (none is in a store outage). */
static bool server_workers_ready(void *arg) {
    server_t *srv = arg;
    for (int i = 0; i < srv->worker_count; i++)
        if (!worker_store_ready(srv->workers[i])) return false;
    return true;
}

static api_deps_t server_api_deps(server_t *srv, api_role_t role) {
    return (api_deps_t){
        .queue = srv->queue,
        .store = srv->store,
        .answer = srv->answer,
        .ids = srv->ids,
        .collect = server_collect,
        .render_more = server_render_more,
        .collect_arg = srv,
        .stopping = &srv->stopping,
        .auth = srv->auth,
        .role = role,
        .workers_ready = server_has_workers(srv) ? server_workers_ready : NULL,
        .max_waiters = srv->cfg.max_waiters,
    };
}

/* An HTTP server for `api`, listening on host:port. */
static int server_listen(server_t *srv, api_t *api, const char *host, int port,
                         http_server_t **out) {
    const config_t *cfg = &srv->cfg;
    http_handler_t handler = api_http_handler(api);
    http_limits_t limits = {
        .max_body = cfg->max_body,
        .max_head = HTTP_MAX_HEAD,
        .max_header_lines = HTTP_MAX_HEADER_LINES,
        .max_connections = cfg->max_connections,
        .idle_timeout_ms = (uint64_t)cfg->idle_timeout_ms,
        .header_timeout_ms = (uint64_t)cfg->header_timeout_ms,
        .body_timeout_ms = (uint64_t)cfg->body_timeout_ms,
        .reuseport = cfg->reuseport,
        .access_log = cfg->access_log,
    };
    *out = http_server_new(&srv->loop, &handler, &limits);
    int rc = http_server_listen(*out, host, port);
    if (rc != 0) {
        char addr[300];
        snprintf(addr, sizeof(addr), "%s:%d", host, port);
        log_error("cannot listen", "addr", addr, "error", uv_strerror(rc));
        return -1;
    }
    return 0;
}

static int server_init(server_t *srv) {
    config_t *cfg = &srv->cfg;
    char err[512];

    srv->store = store_new(&srv->loop, cfg->mongo_url, cfg->mongo_db, err, sizeof(err));
    if (!srv->store) {
        log_error("invalid MongoDB configuration", "error", err);
        return 2;
    }
    queue_options_t qo = {
        .redis = {.host = cfg->redis_host,
                  .port = cfg->redis_port,
                  .password = cfg->redis_password,
                  .db = cfg->redis_db},
        .redis_tls = cfg->redis_tls,
        .redis_ca_file = cfg->redis_ca_file,
        .prefix = cfg->prefix,
        .lease_ms = (uint64_t)cfg->lease_ms,
        .depth_max = cfg->queue_max,
        .in_flight_max = QUEUE_IN_FLIGHT_MAX,
        .in_flight_bytes_max = cfg->inflight_bytes,
        .subscribe_wake = server_has_workers(srv),
        .subscribe_stored = server_has_http(srv),
        .wait_local = cfg->durability >= DURABILITY_LOCAL,
        .wait_replicas = cfg->durability >= DURABILITY_REPLICA,
        .wait_timeout_ms = (uint64_t)cfg->durability_timeout_ms,
    };
    queue_events_t qe = {.on_wake = server_on_wake,
                         .on_stored = server_on_stored,
                         .on_subscribed = server_on_subscribed,
                         .arg = srv};
    srv->queue = queue_new(&srv->loop, &qo, &qe);
    srv->ids = job_id_gen_new();
    if (!srv->queue || !srv->ids) return 1;

    if (server_has_http(srv)) {
        if (cfg->write_tokens_file) {
            srv->auth = auth_new(&srv->loop, cfg->write_tokens_file, err, sizeof(err));
            if (!srv->auth) {
                log_error("invalid MULTIVAC_WRITE_TOKENS_FILE", "error", err);
                return 2;
            }
        }
        srv->answer = answer_new(&srv->loop, srv->store, (uint64_t)cfg->answer_refresh_ms);
        api_deps_t deps =
            server_api_deps(srv, cfg->admin_host ? API_PUBLIC_WITH_ADMIN : API_PUBLIC);
        srv->api = api_new(&deps);
        if (server_listen(srv, srv->api, cfg->listen_host, cfg->listen_port, &srv->http) != 0)
            return 1;
    }
    if (cfg->admin_host) {
        api_deps_t deps = server_api_deps(srv, API_ADMIN);
        srv->admin_api = api_new(&deps);
        if (server_listen(srv, srv->admin_api, cfg->admin_host, cfg->admin_port, &srv->admin) != 0)
            return 1;
    }
    if (server_has_workers(srv)) server_start_workers(srv);

    uv_signal_init(&srv->loop, &srv->sigint);
    uv_signal_init(&srv->loop, &srv->sigterm);
    srv->sigint.data = srv->sigterm.data = srv;
    uv_signal_start(&srv->sigint, server_on_signal, SIGINT);
    uv_signal_start(&srv->sigterm, server_on_signal, SIGTERM);
    uv_timer_init(&srv->loop, &srv->shutdown_timer);
    return 0;
}

static void server_log_start(const server_t *srv) {
    static const char *const modes[] = {"serve", "runserver", "worker", "dead-letters"};
    char port[16] = "", admin_port[16] = "", workers[16];
    if (srv->http) snprintf(port, sizeof(port), "%d", http_server_port(srv->http));
    if (srv->admin) snprintf(admin_port, sizeof(admin_port), "%d", http_server_port(srv->admin));
    snprintf(workers, sizeof(workers), "%d", srv->worker_count);
    log_info("multivac started", "version", MULTIVAC_VERSION, "mode", modes[srv->cfg.mode],
             "listen_host", srv->http ? srv->cfg.listen_host : "", "listen_port", port,
             "admin_port", admin_port, "workers", workers, "redis", srv->cfg.redis_url, "mongo_db",
             srv->cfg.mongo_db, "prefix", srv->cfg.prefix);
}

static void server_close_any(uv_handle_t *h, void *arg) {
    (void)arg;
    if (!uv_is_closing(h)) uv_close(h, NULL);
}

static void server_free(server_t *srv) {
    for (int i = 0; i < srv->worker_count; i++)
        worker_free(srv->workers[i]);
    free(srv->workers);
    reaper_free(srv->reaper);
    http_server_free(srv->http);
    http_server_free(srv->admin);
    api_free(srv->admin_api);
    api_free(srv->api);
    auth_free(srv->auth);
    answer_free(srv->answer);
    job_id_gen_free(srv->ids);
    queue_free(srv->queue);
    store_free(srv->store);
}

int main(int argc, char **argv) {
    server_t srv;
    memset(&srv, 0, sizeof(srv));
    char err[512];
    /* Before config_load (it parses MONGO_URL with mongoc, which logs) and
     * before mongoc_init. Debian's mongoc also initialises itself when loaded,
     * before main: what it says then only the environment can prevent
     * (MONGOC_DISABLE_SHM in the Containerfile). */
    mongoc_log_set_handler(server_mongoc_log, NULL);
    mongoc_init();
    config_status_t st = config_load(&srv.cfg, argc, argv, NULL, stdout, err, sizeof(err));
    if (st != CONFIG_OK) {
        if (st == CONFIG_INVALID) fprintf(stderr, "multivac: %s\n", err);
        config_free(&srv.cfg);
        mongoc_cleanup();
        return st == CONFIG_EXIT ? 0 : 2;
    }
    log_set_level(srv.cfg.log_level);
    server_redact_secrets(&srv.cfg);
    mem_init();
    /* MongoDB calls block pool threads for up to the server selection timeout
     * while the store is away; size the pool so they never starve the rest
     * (DNS lookups for Redis use it too). An explicit setting wins. */
    if (!getenv("UV_THREADPOOL_SIZE")) {
        char size[16];
        snprintf(size, sizeof(size), "%d", srv.cfg.workers + 4);
        setenv("UV_THREADPOOL_SIZE", size, 0);
    }
    if (srv.cfg.mode == MODE_DEAD_LETTERS) {
        int status = admin_dead_letters(&srv.cfg);
        config_free(&srv.cfg);
        mongoc_cleanup();
        return status;
    }
    /* Writes to a peer that has gone must fail with EPIPE, not kill us. */
    signal(SIGPIPE, SIG_IGN);

    uv_loop_init(&srv.loop);
    int rc = server_init(&srv);
    if (rc == 0) {
        server_log_start(&srv);
        queue_start(srv.queue);
        if (srv.answer) answer_start(srv.answer);
        if (srv.auth) auth_start(srv.auth);
        for (int i = 0; i < srv.worker_count; i++)
            worker_start(srv.workers[i]);
        if (srv.reaper) reaper_start(srv.reaper);
        uv_run(&srv.loop, UV_RUN_DEFAULT);
        log_info("multivac stopped");
    } else {
        /* Nothing ran yet: close whatever handles were opened, then let their
         * close callbacks run before freeing. */
        uv_walk(&srv.loop, server_close_any, NULL);
        uv_run(&srv.loop, UV_RUN_DEFAULT);
    }
    if (uv_loop_close(&srv.loop) != 0) log_warn("event loop closed with handles open");
    server_free(&srv);
    mongoc_cleanup();
    config_free(&srv.cfg);
    return rc;
}
