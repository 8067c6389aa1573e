/* redis: one Redis connection that keeps itself connected (redis.h). A command
 * is taken only while the connection is ready (connected, authenticated, its
 * database selected), and every command taken gets exactly one callback: its
 * reply, or NULL when the connection goes first. A hung server is dropped by
 * the watchdog, a lost one reconnected with capped backoff, and closing waits
 * for the replies in flight before it calls back. Running out of memory aborts
 * (util/mem.h). */
#include "queue/redis.h"

#include <arpa/inet.h>
#include <netdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#ifdef MULTIVAC_HAVE_REDIS_TLS
#include <hiredis/hiredis_ssl.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>
#endif

#include "obs/log.h"
#include "queue/redis_uv.h"
#include "util/closer.h"
#include "util/mem.h"

#define REDIS_BACKOFF_MIN_MS 50
/* Low, so a restarted Redis is used again within about half a second. */
#define REDIS_BACKOFF_MAX_MS 500
#define REDIS_CONNECT_TIMEOUT_MS 2000
#define REDIS_WATCHDOG_INTERVAL_MS 500
/* Ticks (2 × 500 ms) a ping may wait, and bytes stand still, before the connection
 * counts as hung. Counted in ticks, not loop time: when our own loop stalls (a
 * burst of large bodies to decode), Redis is not charged for the time we did
 * not look at its socket. */
#define REDIS_WATCHDOG_TICKS 2

typedef enum {
    REDIS_IDLE,
    REDIS_RESOLVING,
    REDIS_CONNECTING, /* TCP connect and the AUTH/SELECT handshake */
    REDIS_READY,
    REDIS_BACKOFF,
    REDIS_CLOSING,
} redis_state_t;

struct redis_conn {
    uv_loop_t *loop;
    char *name;
    char *host;
    char port_str[8];
    int port;
    char *password;
    int db;
    bool watchdog;
    bool tls;
    char tls_error[200]; /* why TLS cannot be set up; "" when it can */
#ifdef MULTIVAC_HAVE_REDIS_TLS
    SSL_CTX *ssl_ctx; /* made once, for every connection of this object */
    SSL *ssl;         /* the current context's; hiredis owns and frees it */
#endif
    redis_conn_events_t events;
    bool ping_outstanding;
    unsigned ping_ticks;        /* watchdog ticks the outstanding ping has waited */
    unsigned still_ticks;       /* watchdog ticks without bytes moving */
    uint64_t progress;          /* redis_uv_progress at the last tick */
    const char *pending_reason; /* why we dropped the connection ourselves */

    redis_state_t state;
    redisAsyncContext *ac;
    char ip[INET6_ADDRSTRLEN];
    uv_getaddrinfo_t resolve_req;
    bool resolving;
    uv_timer_t timer; /* backoff, and the connect/handshake deadline */
    uint64_t backoff_ms;
    bool logged_down; /* log a failure once per outage, not per attempt */

    /* Once closing: the hiredis context, the name resolution and the timer. */
    closer_t closer;
};

static void redis_conn_connect(redis_conn_t *rc);

/* ---- TLS ------------------------------------------------------------------ *
 * An OpenSSL context made once per connection object, and per connection an SSL
 * handed to hiredis_ssl (redisInitiateSSL) right after the connect starts. Not
 * hiredis's own redisSSLContext: hiredis 1.2's checks the chain only (its
 * server_name is SNI, not a check), so with the system's CAs any certificate a
 * public CA issued, for any name, would pass. Here the certificate must also
 * name the configured host (SSL_set1_host, or the address for an IP literal). */

#ifdef MULTIVAC_HAVE_REDIS_TLS
/* The last OpenSSL error of this thread, or `fallback`. */
static const char *redis_conn_ssl_reason(const char *fallback) {
    unsigned long e = ERR_peek_last_error();
    const char *r = e ? ERR_reason_error_string(e) : NULL;
    return r ? r : fallback;
}

static void redis_conn_tls_setup(redis_conn_t *rc, const char *ca_file) {
    SSL_CTX *ctx = SSL_CTX_new(TLS_client_method());
    if (!ctx) {
        snprintf(rc->tls_error, sizeof(rc->tls_error), "TLS: no OpenSSL context: %s",
                 redis_conn_ssl_reason("unknown error"));
        ERR_clear_error();
        return;
    }
    SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
    SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, NULL);
    int ok = ca_file ? SSL_CTX_load_verify_locations(ctx, ca_file, NULL)
                     : SSL_CTX_set_default_verify_paths(ctx);
    if (!ok) {
        snprintf(rc->tls_error, sizeof(rc->tls_error),
                 "TLS: cannot load the CA certificates%s%s: %s",
                 ca_file ? " of " : " of the system", ca_file ? ca_file : "",
                 redis_conn_ssl_reason("unknown error"));
        ERR_clear_error();
        SSL_CTX_free(ctx);
        return;
    }
    rc->ssl_ctx = ctx;
}

/* Why a connection with `ssl` failed, when TLS says more than hiredis (which
 * reports a failed handshake as a bare I/O error); NULL otherwise. */
static const char *redis_conn_ssl_why(SSL *ssl, char *buf, size_t len) {
    long verify = SSL_get_verify_result(ssl);
    if (verify != X509_V_OK) {
        snprintf(buf, len, "TLS: server certificate refused: %s",
                 X509_verify_cert_error_string(verify));
    } else if (ERR_peek_last_error()) {
        snprintf(buf, len, "TLS: %s", redis_conn_ssl_reason("handshake failed"));
    } else {
        return NULL;
    }
    ERR_clear_error();
    return buf;
}

/* Starts TLS on a context whose connect has begun (on loopback the handshake
 * may even finish, or fail, right here). Returns 0, or -1 with `why`. */
static int redis_conn_tls_start(redis_conn_t *rc, redisAsyncContext *ac, char *why,
                                size_t why_len) {
    ERR_clear_error();
    SSL *ssl = SSL_new(rc->ssl_ctx);
    if (!ssl) {
        snprintf(why, why_len, "TLS: %s", redis_conn_ssl_reason("cannot create a session"));
        return -1;
    }
    unsigned char probe[sizeof(struct in6_addr)];
    bool literal =
        inet_pton(AF_INET, rc->host, probe) == 1 || inet_pton(AF_INET6, rc->host, probe) == 1;
    /* SNI carries host names only (RFC 6066); an address is checked as one. */
    int ok = literal ? X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(ssl), rc->host)
                     : SSL_set_tlsext_host_name(ssl, rc->host) && SSL_set1_host(ssl, rc->host);
    if (!ok) {
        snprintf(why, why_len, "TLS: cannot check the server's name: %s",
                 redis_conn_ssl_reason("unknown error"));
        SSL_free(ssl);
        return -1;
    }
    if (redisInitiateSSL(&ac->c, ssl) != REDIS_OK) {
        if (!redis_conn_ssl_why(ssl, why, why_len))
            snprintf(why, why_len, "TLS: %s", ac->c.errstr[0] ? ac->c.errstr : "cannot start");
        SSL_free(ssl);
        return -1;
    }
    rc->ssl = ssl;
    return 0;
}

/* The current connection's redis_conn_ssl_why. */
static const char *redis_conn_tls_why(redis_conn_t *rc, char *buf, size_t len) {
    return rc->ssl ? redis_conn_ssl_why(rc->ssl, buf, len) : NULL;
}
#else
static void redis_conn_tls_setup(redis_conn_t *rc, const char *ca_file) {
    (void)ca_file;
    snprintf(rc->tls_error, sizeof(rc->tls_error),
             "rediss:// needs a build with hiredis_ssl (hiredis >= 1.0)");
}

static const char *redis_conn_tls_why(redis_conn_t *rc, char *buf, size_t len) {
    (void)rc;
    (void)buf;
    (void)len;
    return NULL;
}
#endif

redis_conn_t *redis_conn_new(uv_loop_t *loop, const redis_conn_options_t *opts,
                             const redis_conn_events_t *events) {
    redis_conn_t *rc = mem_calloc(1, sizeof(*rc));
    rc->loop = loop;
    rc->name = mem_strdup(opts->name);
    rc->host = mem_strdup(opts->host);
    rc->password = opts->password ? mem_strdup(opts->password) : NULL;
    rc->port = opts->port;
    snprintf(rc->port_str, sizeof(rc->port_str), "%d", opts->port);
    rc->db = opts->db;
    rc->watchdog = opts->watchdog;
    rc->tls = opts->tls;
    if (rc->tls) {
        redis_conn_tls_setup(rc, opts->tls_ca_file);
        if (rc->tls_error[0])
            log_error("redis TLS cannot be set up", "conn", rc->name, "error", rc->tls_error);
    }
    rc->events = *events;
    rc->backoff_ms = REDIS_BACKOFF_MIN_MS;
    uv_timer_init(loop, &rc->timer);
    rc->timer.data = rc;
    return rc;
}

bool redis_conn_ready(const redis_conn_t *rc) { return rc->state == REDIS_READY; }

/* hiredis let go of the context (or we freed it). While closing, that is one
 * part of the close, counted once however many callbacks report it. */
static void redis_conn_context_gone(redis_conn_t *rc) {
    if (!rc->ac) return;
    rc->ac = NULL;
#ifdef MULTIVAC_HAVE_REDIS_TLS
    rc->ssl = NULL; /* freed with the context */
#endif
    if (rc->state == REDIS_CLOSING) closer_done(&rc->closer);
}

static void redis_conn_on_timer(uv_timer_t *t);

static void redis_conn_fail(redis_conn_t *rc, const char *why) {
    if (!rc->logged_down) {
        char port[8];
        snprintf(port, sizeof(port), "%d", rc->port);
        log_warn("redis unavailable, reconnecting", "conn", rc->name, "host", rc->host, "port",
                 port, "error", why);
        rc->logged_down = true;
    }
    if (rc->state == REDIS_CLOSING) return;
    rc->state = REDIS_BACKOFF;
    uv_timer_start(&rc->timer, redis_conn_on_timer, rc->backoff_ms, 0);
    rc->backoff_ms *= 2;
    if (rc->backoff_ms > REDIS_BACKOFF_MAX_MS) rc->backoff_ms = REDIS_BACKOFF_MAX_MS;
}

static void redis_conn_on_watchdog_pong(redisAsyncContext *ac, void *reply, void *privdata) {
    (void)reply;
    (void)privdata;
    redis_conn_t *rc = ac->data;
    rc->ping_outstanding = false;
}

static void redis_conn_watchdog(redis_conn_t *rc) {
    uint64_t progress = redis_uv_progress(rc->ac);
    rc->still_ticks = progress == rc->progress ? rc->still_ticks + 1 : 0;
    rc->progress = progress;
    if (!rc->ping_outstanding) {
        const char *ping[] = {"PING"};
        if (redisAsyncCommandArgv(rc->ac, redis_conn_on_watchdog_pong, NULL, 1, ping, NULL) ==
            REDIS_OK) {
            rc->ping_outstanding = true;
            rc->ping_ticks = 0;
        }
        return;
    }
    /* A ping queued behind megabytes of LPUSH waits for them: as long as bytes
     * keep moving, Redis is slow, not gone. */
    if (++rc->ping_ticks < REDIS_WATCHDOG_TICKS || rc->still_ticks < REDIS_WATCHDOG_TICKS) return;
    /* From a timer, not a hiredis callback, so freeing is safe: pending
     * callbacks get NULL, then the disconnect callback schedules a reconnect. */
    rc->logged_down = false;
    redisAsyncContext *ac = rc->ac;
    rc->pending_reason = "no reply and no progress within 1 s";
    redisAsyncFree(ac);
}

static void redis_conn_on_timer(uv_timer_t *t) {
    redis_conn_t *rc = t->data;
    if (rc->state == REDIS_READY && rc->ac) {
        redis_conn_watchdog(rc);
    } else if (rc->state == REDIS_BACKOFF) {
        redis_conn_start(rc);
    } else if (rc->state == REDIS_CONNECTING && rc->ac) {
        /* Outside any hiredis callback, so freeing the context here is safe
         * (hiredis 0.14 crashes when a context is dropped inside its connect
         * callback). */
        redisAsyncContext *ac = rc->ac;
        bool connected = ac->c.flags & REDIS_CONNECTED;
        redis_conn_context_gone(rc);
        /* A connected context reports through the disconnect callback. */
        if (connected) rc->pending_reason = "connect or handshake timed out";
        redisAsyncFree(ac);
        if (!connected) redis_conn_fail(rc, "connect timed out");
    }
}

static void redis_conn_on_handshake(redisAsyncContext *ac, void *reply, void *privdata) {
    redis_conn_t *rc = ac->data;
    redisReply *r = reply;
    bool last = privdata != NULL;
    if (!r || rc->state != REDIS_CONNECTING) return; /* lost: the disconnect callback handles it */
    if (r->type == REDIS_REPLY_ERROR) {
        if (!rc->logged_down)
            log_error("redis handshake failed", "conn", rc->name, "error", r->str);
        rc->logged_down = true;
        /* Disconnecting from a reply callback is safe in hiredis; the disconnect
         * callback then schedules the retry. */
        rc->state = REDIS_BACKOFF;
        redisAsyncDisconnect(ac);
        return;
    }
    if (!last) return;
    uv_timer_stop(&rc->timer);
    rc->state = REDIS_READY;
    rc->ping_outstanding = false;
    rc->still_ticks = 0;
    rc->progress = redis_uv_progress(ac);
    if (rc->watchdog)
        uv_timer_start(&rc->timer, redis_conn_on_timer, REDIS_WATCHDOG_INTERVAL_MS,
                       REDIS_WATCHDOG_INTERVAL_MS);
    rc->backoff_ms = REDIS_BACKOFF_MIN_MS;
    if (rc->logged_down) log_info("redis reconnected", "conn", rc->name);
    rc->logged_down = false;
    if (rc->events.on_ready) rc->events.on_ready(rc->events.arg);
}

static void redis_conn_on_connect(const redisAsyncContext *ac, int status) {
    redis_conn_t *rc = ac->data;
    if (status != REDIS_OK) {
        /* hiredis frees the context after this callback. */
        redis_conn_context_gone(rc);
        uv_timer_stop(&rc->timer);
        redis_conn_fail(rc, ac->errstr);
        return;
    }
    /* TCP keepalive (15 s): notices a peer gone without a FIN, e.g. a partition. */
    redisEnableKeepAlive(&rc->ac->c);
    /* Handshake, pipelined: AUTH and SELECT if configured, then PING, whose
     * reply marks the connection ready. */
    char db[16];
    snprintf(db, sizeof(db), "%d", rc->db);
    if (rc->password) {
        const char *argv[] = {"AUTH", rc->password};
        redisAsyncCommandArgv(rc->ac, redis_conn_on_handshake, NULL, 2, argv, NULL);
    }
    if (rc->db != 0) {
        const char *argv[] = {"SELECT", db};
        redisAsyncCommandArgv(rc->ac, redis_conn_on_handshake, NULL, 2, argv, NULL);
    }
    const char *ping[] = {"PING"};
    redisAsyncCommandArgv(rc->ac, redis_conn_on_handshake, rc, 1, ping, NULL);
}

static void redis_conn_on_disconnect(const redisAsyncContext *ac, int status) {
    (void)status;
    redis_conn_t *rc = ac->data;
    bool was_ready = rc->state == REDIS_READY;
    char tls_buf[200];
    const char *tls_why = redis_conn_tls_why(rc, tls_buf, sizeof(tls_buf));
    redis_conn_context_gone(rc);
    if (rc->state == REDIS_CLOSING) return;
    uv_timer_stop(&rc->timer);
    const char *why = rc->pending_reason ? rc->pending_reason
                      : tls_why          ? tls_why
                      : ac->errstr[0]    ? ac->errstr
                                         : "connection closed";
    rc->pending_reason = NULL;
    redis_conn_fail(rc, why);
    if (was_ready && rc->events.on_lost) rc->events.on_lost(rc->events.arg);
}

static void redis_conn_connect(redis_conn_t *rc) {
    rc->state = REDIS_CONNECTING;
    if (rc->tls_error[0]) {
        redis_conn_fail(rc, rc->tls_error);
        return;
    }
    redisAsyncContext *ac = redisAsyncConnect(rc->ip, rc->port);
    if (!ac) {
        redis_conn_fail(rc, "out of memory");
        return;
    }
    if (ac->err) {
        char why[128];
        snprintf(why, sizeof(why), "%s", ac->errstr);
        redisAsyncFree(ac);
        redis_conn_fail(rc, why);
        return;
    }
#ifdef MULTIVAC_HAVE_REDIS_TLS
    if (rc->tls) {
        char why[200];
        if (redis_conn_tls_start(rc, ac, why, sizeof(why)) != 0) {
            redisAsyncFree(ac);
            redis_conn_fail(rc, why);
            return;
        }
    }
#endif
    if (redis_uv_attach(ac, rc->loop) != REDIS_OK) {
        redisAsyncFree(ac);
        redis_conn_fail(rc, "cannot watch the socket");
        return;
    }
    ac->data = rc;
    rc->ac = ac;
    redisAsyncSetConnectCallback(ac, redis_conn_on_connect);
    redisAsyncSetDisconnectCallback(ac, redis_conn_on_disconnect);
    uv_timer_start(&rc->timer, redis_conn_on_timer, REDIS_CONNECT_TIMEOUT_MS, 0);
}

static void redis_conn_on_resolved(uv_getaddrinfo_t *req, int status, struct addrinfo *res) {
    redis_conn_t *rc = req->data;
    rc->resolving = false;
    if (rc->state == REDIS_CLOSING) {
        uv_freeaddrinfo(res);
        closer_done(&rc->closer);
        return;
    }
    if (status != 0 || !res) {
        uv_freeaddrinfo(res);
        redis_conn_fail(rc, status ? uv_strerror(status) : "no address");
        return;
    }
    const void *addr = res->ai_family == AF_INET6
                           ? (const void *)&((struct sockaddr_in6 *)res->ai_addr)->sin6_addr
                           : (const void *)&((struct sockaddr_in *)res->ai_addr)->sin_addr;
    inet_ntop(res->ai_family, addr, rc->ip, sizeof(rc->ip));
    uv_freeaddrinfo(res);
    redis_conn_connect(rc);
}

void redis_conn_start(redis_conn_t *rc) {
    if (rc->state == REDIS_CLOSING) return;
    unsigned char probe[sizeof(struct in6_addr)];
    if (inet_pton(AF_INET, rc->host, probe) == 1 || inet_pton(AF_INET6, rc->host, probe) == 1) {
        snprintf(rc->ip, sizeof(rc->ip), "%s", rc->host);
        redis_conn_connect(rc);
        return;
    }
    rc->state = REDIS_RESOLVING;
    rc->resolve_req.data = rc;
    struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM};
    int err = uv_getaddrinfo(rc->loop, &rc->resolve_req, redis_conn_on_resolved, rc->host,
                             rc->port_str, &hints);
    if (err != 0) {
        redis_conn_fail(rc, uv_strerror(err));
        return;
    }
    rc->resolving = true;
}

int redis_conn_command(redis_conn_t *rc, redisCallbackFn *fn, void *privdata, int argc,
                       const char **argv, const size_t *argvlen) {
    if (rc->state != REDIS_READY) return -1;
    return redisAsyncCommandArgv(rc->ac, fn, privdata, argc, argv, argvlen) == REDIS_OK ? 0 : -1;
}

void redis_conn_close(redis_conn_t *rc, redis_conn_closed_cb cb, void *arg) {
    redis_state_t was = rc->state;
    rc->state = REDIS_CLOSING;
    closer_init(&rc->closer, 3, cb, arg);
    /* The timer goes first: its close callback comes from the loop, so `cb`
     * never runs inside this call. Nothing restarts it while closing. */
    closer_handle(&rc->closer, (uv_handle_t *)&rc->timer);
    if (rc->resolving) {
        /* Cancelled or not, the resolution's callback counts it down. */
        uv_cancel((uv_req_t *)&rc->resolve_req);
    } else {
        closer_done(&rc->closer);
    }
    if (rc->ac && was == REDIS_CONNECTING && !(rc->ac->c.flags & REDIS_CONNECTED)) {
        /* Never connected: no disconnect callback will come. */
        redisAsyncContext *ac = rc->ac;
        redis_conn_context_gone(rc);
        redisAsyncFree(ac);
    } else if (rc->ac) {
        /* Replies still pending are delivered first; then on_disconnect. */
        redisAsyncDisconnect(rc->ac);
    } else {
        closer_done(&rc->closer);
    }
}

void redis_conn_free(redis_conn_t *rc) {
    if (!rc) return;
    free(rc->name);
    free(rc->host);
    free(rc->password);
#ifdef MULTIVAC_HAVE_REDIS_TLS
    SSL_CTX_free(rc->ssl_ctx);
#endif
    free(rc);
}
