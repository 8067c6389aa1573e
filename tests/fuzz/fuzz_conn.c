/* fuzz_conn: the real connection code (http/conn.c, server.c, request.c,
 * response.c) on a libuv loop, fed by a client over a socketpair in
 * fuzzer-chosen segments, one loop turn sequence per segment so the server
 * sees them as separate reads.
 *
 * Input: see fuzz_segments.h. Options (high bits of byte 0):
 *   bit 0  the handler answers early from on_head (400 malformed target, 404
 *          unknown path, 405 wrong method), as the API does
 *   bit 1  POST is answered asynchronously, from a zero-delay uv timer (the
 *          deferred path: pipelined input resumes on a later loop turn); an
 *          odd body length also arms a zero-delay exchange timeout (504) that
 *          races it
 *   bit 2  the client reads responses after every segment (else only at the
 *          end: a slow reader, so output backs up)
 *   bit 3  GET answers carry a 96 KiB body (output high-water mark)
 *
 * Each input gets its own loop, server and socketpair; after the payload the
 * client half-closes, the connection must close within a bounded number of
 * loop turns, and the server shuts down with no handle left (uv_loop_close
 * must succeed), so a connection or timer left behind aborts. */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "api/route.h"
#include "fuzz_segments.h"
#include "http/internal.h"
#include "obs/log.h"

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define TURNS_PER_SEGMENT 3
#define WRITE_TRIES 64
#define CLOSE_TURNS 4096
#define BIG_BODY (96 * 1024)

static void fail(const char *what) {
    fprintf(stderr, "fuzz_conn: %s\n", what);
    abort();
}

typedef struct pending {
    uv_timer_t timer;
    http_exchange_t *ex;
} pending_t;

static unsigned opts;
static uv_loop_t *loop;
static long pending_open; /* pending_t not yet freed */
static char big_body[BIG_BODY];

static pending_t **user_of(http_exchange_t *ex) { return http_exchange_user(ex); }

static void pending_freed(uv_handle_t *h) {
    free(h->data);
    pending_open--;
}

/* Drops the handler's reference before answering: answering may free the
 * connection, user area included. */
static http_exchange_t *pending_detach(http_exchange_t *ex) {
    pending_t *p = *user_of(ex);
    if (!p) fail("exchange callback without a pending answer");
    *user_of(ex) = NULL;
    p->ex = NULL;
    uv_close((uv_handle_t *)&p->timer, pending_freed);
    return ex;
}

static void respond(http_exchange_t *ex, int status, const char *body, size_t len) {
    http_response_t r = {status, "text/plain", NULL, body, len};
    http_respond(ex, &r);
}

static void on_pending_timer(uv_timer_t *t) {
    pending_t *p = t->data;
    http_exchange_t *ex = p->ex;
    if (!ex) fail("pending timer after its exchange was answered");
    pending_detach(ex);
    size_t len;
    char *body = http_exchange_body(ex, &len);
    respond(ex, 200, body, len);
}

static void on_exchange_timeout(http_exchange_t *ex) {
    pending_detach(ex);
    respond(ex, 504, "timeout", 7);
}

static void on_exchange_abort(http_exchange_t *ex) {
    pending_detach(ex);
    respond(ex, 503, "gone", 4); /* discarded: the peer is gone */
}

static void on_head(void *arg, http_exchange_t *ex) {
    (void)arg;
    size_t len;
    const char *target = http_exchange_target(ex, &len);
    route_match_t m;
    if (route_match(target, len, &m) != 0) {
        respond(ex, 400, "bad target", 10);
        return;
    }
    if (m.id == ROUTE_NOT_FOUND) {
        respond(ex, 404, "not found", 9);
        return;
    }
    http_method_t method = http_exchange_method(ex);
    unsigned allowed = route_allowed(m.id);
    bool ok = method == HTTP_METHOD_POST ? (allowed & ROUTE_ALLOW_POST) != 0
                                         : (allowed & ROUTE_ALLOW_GET) != 0;
    if (!ok) {
        http_response_t r = {405, "text/plain", "Allow: GET, HEAD, POST\r\n", "no", 2};
        http_respond(ex, &r);
    }
}

static void on_request(void *arg, http_exchange_t *ex) {
    (void)arg;
    size_t len;
    char *body = http_exchange_body(ex, &len);
    if (len > 0) body[0] ^= 1; /* the body is the handler's to modify */
    if (http_exchange_method(ex) != HTTP_METHOD_POST) {
        if (opts & 8)
            respond(ex, 200, big_body, sizeof(big_body));
        else
            respond(ex, 200, "hello", 5);
        return;
    }
    if (!(opts & 2)) {
        respond(ex, 201, body, len);
        return;
    }
    pending_t *p = calloc(1, sizeof(*p));
    if (!p) abort();
    pending_open++;
    p->ex = ex;
    p->timer.data = p;
    uv_timer_init(loop, &p->timer);
    uv_timer_start(&p->timer, on_pending_timer, 0, 0);
    *user_of(ex) = p;
    http_exchange_on_abort(ex, on_exchange_abort);
    if (len % 2 == 1) http_exchange_set_timeout(ex, 0, on_exchange_timeout);
}

static void on_conn_close(void *arg, void *user) {
    (void)arg;
    if (*(pending_t **)user) fail("connection freed with an exchange still pending");
}

static void on_server_closed(void *arg) { *(bool *)arg = true; }

static void turns(int n) {
    for (int i = 0; i < n; i++)
        uv_run(loop, UV_RUN_NOWAIT);
}

/* Reads and discards whatever the server has written. */
static void drain_client(int fd) {
    char buf[16384];
    while (recv(fd, buf, sizeof(buf), MSG_DONTWAIT) > 0) {
    }
}

int LLVMFuzzerInitialize(int *argc, char ***argv) {
    (void)argc;
    (void)argv;
    signal(SIGPIPE, SIG_IGN);
    log_set_level(LOG_ERROR);
    memset(big_body, 'b', sizeof(big_body));
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    fuzz_segs_t segs;
    fuzz_segs_init(&segs, data, size);
    opts = segs.opts;

    uv_loop_t the_loop;
    if (uv_loop_init(&the_loop) != 0) fail("uv_loop_init");
    loop = &the_loop;

    /* src/main.c's limits; timeouts that never fire within an input. */
    http_limits_t limits = {
        .max_body = 65536,
        .max_head = 16384,
        .max_header_lines = 100,
        .max_connections = 16,
        .idle_timeout_ms = 600000,
        .header_timeout_ms = 600000,
        .body_timeout_ms = 600000,
    };
    http_handler_t handler = {
        .on_head = (opts & 1) ? on_head : NULL,
        .on_request = on_request,
        .on_conn_close = on_conn_close,
        .arg = NULL,
        .user_size = sizeof(pending_t *),
    };
    http_server_t *s = http_server_new(loop, &handler, &limits);

    int sv[2];
    if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, sv) != 0)
        fail("socketpair");
    http_conn_adopt(s, sv[1]);
    turns(1);

    const uint8_t *p;
    size_t len;
    bool writable = true;
    while (writable && fuzz_segs_next(&segs, &p, &len)) {
        size_t off = 0;
        int tries = 0;
        while (off < len) {
            ssize_t n = send(sv[0], p + off, len - off, MSG_NOSIGNAL);
            if (n > 0) {
                off += (size_t)n;
                continue;
            }
            if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK) && ++tries < WRITE_TRIES) {
                /* The server stopped reading (input held, output backed up). */
                turns(1);
                if (opts & 4) drain_client(sv[0]);
                continue;
            }
            writable = false; /* closed by the server, or it will not read more */
            break;
        }
        turns(TURNS_PER_SEGMENT);
        if (opts & 4) drain_client(sv[0]);
    }

    /* The client is done: the connection must close, whatever state it is in. */
    shutdown(sv[0], SHUT_WR);
    for (int i = 0; i < CLOSE_TURNS && http_server_connections(s) > 0; i++) {
        uv_run(loop, UV_RUN_NOWAIT);
        drain_client(sv[0]);
    }
    if (http_server_connections(s) > 0) fail("connection still open after the client's EOF");
    drain_client(sv[0]);
    close(sv[0]);

    bool closed = false;
    http_server_shutdown(s, 0, on_server_closed, &closed);
    for (int i = 0; i < CLOSE_TURNS && !closed; i++)
        uv_run(loop, UV_RUN_NOWAIT);
    if (!closed) fail("server did not finish its shutdown");
    http_server_free(s);
    uv_run(loop, UV_RUN_NOWAIT);
    if (pending_open != 0) fail("handler timers left behind");
    if (uv_loop_close(loop) != 0) fail("handles left on the loop (uv_loop_close: EBUSY)");
    loop = NULL;
    return 0;
}
