/* The HTTP connection state machine over real sockets: a server on a real uv
 * loop bound to 127.0.0.1:0 with a tiny handler, and plain non-blocking client
 * sockets. Pipelining, partial reads, a close while a response is pending,
 * header/body/idle deadlines, keep-alive and Connection: close; at the end the
 * server shuts down and the loop must close with no handle left. */
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "check.h"
#include "http/http.h"
#include "util/strbuf.h"

#define HEADER_TIMEOUT_MS 300
#define BODY_TIMEOUT_MS 300
#define IDLE_TIMEOUT_MS 400
/* Longest any single expectation may take before the test gives up. */
#define WAIT_MS 3000

static uv_loop_t loop;
static http_server_t *server;

/* ---- the handler ---------------------------------------------------------
 * /early (head): answered 404 from the head, before any body
 * GET /hold    : kept pending until the test answers it (held_answer)
 * GET /slow    : pending; its exchange timeout answers 503
 * POST /echo   : answers the body
 * anything else: answers the target */

static http_exchange_t *held;
static int aborts, conn_closes, conns_opened;

static void respond_text(http_exchange_t *ex, int status, const char *body, size_t len) {
    http_response_t r = {status, "text/plain", NULL, body, len};
    http_respond(ex, &r);
}

static void on_held_abort(http_exchange_t *ex) {
    aborts++;
    held = NULL;
    respond_text(ex, 200, "gone", 4); /* into the void, as http.h allows */
}

static bool target_is(http_exchange_t *ex, const char *t) {
    size_t len;
    const char *target = http_exchange_target(ex, &len);
    return len == strlen(t) && memcmp(target, t, len) == 0;
}

static void on_head(void *arg, http_exchange_t *ex) {
    (void)arg;
    if (target_is(ex, "/early")) respond_text(ex, 404, "early", 5);
}

static void on_slow_timeout(http_exchange_t *ex) { respond_text(ex, 503, "too slow", 8); }

static void on_request(void *arg, http_exchange_t *ex) {
    (void)arg;
    size_t len;
    const char *target = http_exchange_target(ex, &len);
    if (target_is(ex, "/slow")) {
        http_exchange_set_timeout(ex, 50, on_slow_timeout);
        return;
    }
    if (len == 5 && memcmp(target, "/hold", 5) == 0) {
        held = ex;
        http_exchange_on_abort(ex, on_held_abort);
        return;
    }
    if (http_exchange_method(ex) == HTTP_METHOD_POST) {
        char *body = http_exchange_body(ex, &len);
        respond_text(ex, 200, body, len);
        return;
    }
    respond_text(ex, 200, target, len);
}

static void on_conn_close(void *arg, void *user) {
    (void)arg;
    (void)user;
    conn_closes++;
}

static void held_answer(const char *body) {
    http_exchange_t *ex = held;
    held = NULL;
    respond_text(ex, 200, body, strlen(body));
}

/* ---- the client ---------------------------------------------------------- */

typedef struct client {
    int fd;
    strbuf_t in; /* everything received */
    bool eof;    /* the server closed (or reset) */
} client_t;

static void client_connect(client_t *c) {
    struct sockaddr_in addr = {.sin_family = AF_INET};
    addr.sin_port = htons((uint16_t)http_server_port(server));
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    c->fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
    strbuf_init(&c->in);
    c->eof = false;
    conns_opened++;
    /* Loopback connects complete in the kernel's backlog, loop or not. */
    int rc = connect(c->fd, (struct sockaddr *)&addr, sizeof(addr));
    CHECK(rc == 0 || errno == EINPROGRESS);
}

static void client_close(client_t *c) {
    close(c->fd);
    strbuf_free(&c->in);
}

static void client_drain(client_t *c) {
    char buf[4096];
    for (;;) {
        ssize_t n = recv(c->fd, buf, sizeof(buf), 0);
        if (n > 0) {
            strbuf_append(&c->in, buf, (size_t)n);
        } else {
            if (n == 0 || (errno != EAGAIN && errno != EWOULDBLOCK)) c->eof = true;
            return;
        }
    }
}

/* One turn of the server's loop and of the client's socket. */
static void turn(client_t *c) {
    uv_run(&loop, UV_RUN_NOWAIT);
    if (c && !c->eof) {
        struct pollfd p = {c->fd, POLLIN, 0};
        poll(&p, 1, 1);
        client_drain(c);
    } else {
        struct timespec ts = {0, 1000000};
        nanosleep(&ts, NULL);
    }
}

static uint64_t now_ms(void) { return uv_hrtime() / 1000000; }

static void run_for(client_t *c, uint64_t ms) {
    for (uint64_t end = now_ms() + ms; now_ms() < end;)
        turn(c);
}

static void client_send(client_t *c, const char *data, size_t len) {
    size_t off = 0;
    while (off < len) {
        ssize_t n = send(c->fd, data + off, len - off, MSG_NOSIGNAL);
        if (n > 0) {
            off += (size_t)n;
        } else if (n < 0 && (errno == EAGAIN || errno == EINTR)) {
            turn(c);
        } else {
            return; /* closed by the server: what it answered is in c->in */
        }
    }
    turn(c);
}

static void client_send_str(client_t *c, const char *s) { client_send(c, s, strlen(s)); }

static size_t count_of(const strbuf_t *sb, const char *needle) {
    size_t n = 0, nl = strlen(needle);
    for (size_t i = 0; i + nl <= sb->len; i++)
        if (memcmp(sb->data + i, needle, nl) == 0) n++;
    return n;
}

static bool has(const client_t *c, const char *needle) { return count_of(&c->in, needle) > 0; }

/* Runs until `n` responses are complete (each ends with its body, whose last
 * bytes the caller names in `last`) or the server closes, or WAIT_MS. */
static bool wait_responses(client_t *c, size_t n, const char *last) {
    for (uint64_t end = now_ms() + WAIT_MS; now_ms() < end;) {
        if (count_of(&c->in, "HTTP/1.1 ") >= n && (!last || has(c, last))) return true;
        if (c->eof) return false;
        turn(c);
    }
    return false;
}

static bool wait_eof(client_t *c, uint64_t ms) {
    for (uint64_t end = now_ms() + ms; now_ms() < end && !c->eof;)
        turn(c);
    return c->eof;
}

static bool wait_connections(size_t n) {
    for (uint64_t end = now_ms() + WAIT_MS; now_ms() < end;) {
        if (http_server_connections(server) == n) return true;
        turn(NULL);
    }
    return false;
}

/* Where `needle` first appears in what the client received, or -1. */
static long offset_of(const client_t *c, const char *needle) {
    size_t nl = strlen(needle);
    for (size_t i = 0; i + nl <= c->in.len; i++)
        if (memcmp(c->in.data + i, needle, nl) == 0) return (long)i;
    return -1;
}

/* ---- cases --------------------------------------------------------------- */

static void test_keep_alive(void) {
    client_t c;
    client_connect(&c);
    client_send_str(&c, "GET /one HTTP/1.1\r\nHost: x\r\n\r\n");
    CHECK(wait_responses(&c, 1, "/one"));
    client_send_str(&c, "GET /two HTTP/1.1\r\nHost: x\r\n\r\n");
    CHECK(wait_responses(&c, 2, "/two"));
    CHECK(has(&c, "HTTP/1.1 200 OK\r\n"));
    CHECK(!has(&c, "Connection: close"));
    run_for(&c, 50);
    CHECK(!c.eof); /* persistent */
    CHECK_INT(http_server_connections(server), 1);
    client_close(&c);
    CHECK(wait_connections(0));
}

static void test_connection_close(void) {
    client_t c;
    client_connect(&c);
    /* Anything after a Connection: close request is not read. */
    client_send_str(&c, "GET /bye HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
                        "GET /after HTTP/1.1\r\nHost: x\r\n\r\n");
    CHECK(wait_eof(&c, WAIT_MS));
    CHECK_INT(count_of(&c.in, "HTTP/1.1 "), 1);
    CHECK(has(&c, "Connection: close\r\n"));
    CHECK(has(&c, "/bye"));
    CHECK(!has(&c, "/after"));
    client_close(&c);

    /* HTTP/1.0: closes unless asked to keep alive, and then says so. */
    client_connect(&c);
    client_send_str(&c, "GET /old HTTP/1.0\r\n\r\n");
    CHECK(wait_eof(&c, WAIT_MS));
    CHECK(has(&c, "/old"));
    CHECK(has(&c, "Connection: close\r\n"));
    client_close(&c);

    client_connect(&c);
    client_send_str(&c, "GET /old-ka HTTP/1.0\r\nConnection: keep-alive\r\n\r\n");
    CHECK(wait_responses(&c, 1, "/old-ka"));
    CHECK(has(&c, "Connection: keep-alive\r\n"));
    run_for(&c, 50);
    CHECK(!c.eof);
    client_close(&c);
    CHECK(wait_connections(0));
}

static void test_pipelining(void) {
    client_t c;
    client_connect(&c);
    /* Three requests in one write, the middle one held by the handler: the
     * third must wait for it, so responses leave in request order. */
    client_send_str(&c, "GET /first HTTP/1.1\r\nHost: x\r\n\r\n"
                        "GET /hold HTTP/1.1\r\nHost: x\r\n\r\n"
                        "GET /third HTTP/1.1\r\nHost: x\r\n\r\n");
    CHECK(wait_responses(&c, 1, "/first"));
    run_for(&c, 50);
    CHECK(held != NULL);
    CHECK_INT(count_of(&c.in, "HTTP/1.1 "), 1);
    CHECK(!has(&c, "/third"));
    if (held) held_answer("held-answer");
    CHECK(wait_responses(&c, 3, "/third"));
    long a = offset_of(&c, "/first"), b = offset_of(&c, "held-answer"), d = offset_of(&c, "/third");
    CHECK(a >= 0 && b > a && d > b);
    client_close(&c);

    /* Many small requests in one write, all answered, in order. */
    client_connect(&c);
    strbuf_t many = STRBUF_INIT;
    for (int i = 0; i < 50; i++)
        strbuf_printf(&many, "GET /p%02d HTTP/1.1\r\nHost: x\r\n\r\n", i);
    client_send(&c, many.data, many.len);
    CHECK(wait_responses(&c, 50, "/p49"));
    long prev = -1;
    bool ordered = true;
    for (int i = 0; i < 50; i++) {
        char t[8];
        snprintf(t, sizeof(t), "/p%02d", i);
        long at = offset_of(&c, t);
        if (at <= prev) ordered = false;
        prev = at;
    }
    CHECK(ordered);
    strbuf_free(&many);
    client_close(&c);
    CHECK(wait_connections(0));
}

static unsigned rng = 4242;
static unsigned rand_next(void) {
    rng = rng * 1103515245u + 12345u;
    return (rng >> 16) & 0x7fff;
}

/* Sends `req` in pieces of 1 byte (max_piece 1) or of 1..max_piece bytes,
 * giving the server a turn after each. */
static void send_pieces(client_t *c, const char *req, size_t max_piece) {
    size_t len = strlen(req);
    for (size_t off = 0; off < len;) {
        size_t n = max_piece == 1 ? 1 : 1 + rand_next() % max_piece;
        if (n > len - off) n = len - off;
        client_send(c, req + off, n);
        off += n;
    }
}

static void test_partial_reads(void) {
    static const char req[] = "POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 11\r\n\r\n"
                              "hello world"
                              "POST /echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
                              "3\r\nabc\r\n4\r\ndefg\r\n0\r\n\r\n"
                              "GET /tail HTTP/1.1\r\nHost: x\r\n\r\n";
    size_t pieces[] = {1, 7, 64};
    for (size_t i = 0; i < sizeof(pieces) / sizeof(pieces[0]); i++) {
        client_t c;
        client_connect(&c);
        send_pieces(&c, req, pieces[i]);
        CHECK(wait_responses(&c, 3, "/tail"));
        CHECK(has(&c, "Content-Length: 11\r\n"));
        CHECK(has(&c, "hello world"));
        CHECK(has(&c, "abcdefg"));
        long a = offset_of(&c, "hello world"), b = offset_of(&c, "abcdefg"),
             d = offset_of(&c, "/tail");
        CHECK(a >= 0 && b > a && d > b);
        CHECK(!c.eof);
        client_close(&c);
    }
    CHECK(wait_connections(0));
}

static void test_close_while_pending(void) {
    int aborts_before = aborts, closes_before = conn_closes;
    client_t c;
    client_connect(&c);
    client_send_str(&c, "GET /hold HTTP/1.1\r\nHost: x\r\n\r\n");
    for (uint64_t end = now_ms() + WAIT_MS; !held && now_ms() < end;)
        turn(&c);
    CHECK(held != NULL);
    CHECK_INT(http_server_connections(server), 1);
    /* The client gives up: the handler hears of it at once (on_abort), and the
     * connection goes without waiting for the answer. */
    close(c.fd);
    strbuf_free(&c.in);
    CHECK(wait_connections(0));
    CHECK_INT(aborts, aborts_before + 1);
    CHECK(held == NULL);
    CHECK_INT(conn_closes, closes_before + 1);

    /* A half-close after complete requests still gets their answers. */
    client_connect(&c);
    client_send_str(&c, "GET /h1 HTTP/1.1\r\nHost: x\r\n\r\nGET /h2 HTTP/1.1\r\nHost: x\r\n\r\n");
    shutdown(c.fd, SHUT_WR);
    CHECK(wait_eof(&c, WAIT_MS));
    CHECK_INT(count_of(&c.in, "HTTP/1.1 200 "), 2);
    CHECK(has(&c, "/h2"));
    client_close(&c);
    CHECK(wait_connections(0));
}

static void test_timeouts(void) {
    client_t c;
    /* A head that stops coming: 408 after the header timeout, then close. */
    client_connect(&c);
    uint64_t start = now_ms();
    client_send_str(&c, "GET /slow HTTP/1.1\r\nHos");
    CHECK(wait_eof(&c, WAIT_MS));
    uint64_t took = now_ms() - start;
    CHECK(has(&c, "HTTP/1.1 408 Request Timeout\r\n"));
    CHECK(has(&c, "request head not received in time"));
    CHECK(took >= HEADER_TIMEOUT_MS - 20 && took < HEADER_TIMEOUT_MS + 1000);
    client_close(&c);

    /* The head's deadline runs from its first byte: dripping does not extend it. */
    client_connect(&c);
    start = now_ms();
    static const char drip[] = "GET /drip HTTP/1.1\r\nHost: x\r\nX-A: 1234567890\r\n";
    for (size_t i = 0; i < sizeof(drip) - 1 && !c.eof; i++) {
        client_send(&c, drip + i, 1);
        run_for(&c, 15);
    }
    CHECK(wait_eof(&c, WAIT_MS));
    CHECK(has(&c, "HTTP/1.1 408 "));
    CHECK(now_ms() - start < HEADER_TIMEOUT_MS + 1000);
    client_close(&c);

    /* A body that stalls: 408 after the body timeout. */
    client_connect(&c);
    client_send_str(&c, "POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 10\r\n\r\nabc");
    CHECK(wait_eof(&c, WAIT_MS));
    CHECK(has(&c, "HTTP/1.1 408 "));
    CHECK(has(&c, "request body stalled"));
    client_close(&c);

    /* A body that keeps coming, slower than the whole timeout but never
     * pausing that long, is fine. */
    client_connect(&c);
    client_send_str(&c, "POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 6\r\n\r\n");
    for (int i = 0; i < 6; i++) {
        run_for(&c, BODY_TIMEOUT_MS / 3);
        client_send(&c, "abcdef" + i, 1);
    }
    CHECK(wait_responses(&c, 1, "abcdef"));
    CHECK(has(&c, "HTTP/1.1 200 "));
    client_close(&c);

    /* Idle between requests: closed quietly after the idle timeout. */
    client_connect(&c);
    client_send_str(&c, "GET /idle HTTP/1.1\r\nHost: x\r\n\r\n");
    CHECK(wait_responses(&c, 1, "/idle"));
    size_t before = c.in.len;
    start = now_ms();
    CHECK(wait_eof(&c, WAIT_MS));
    took = now_ms() - start;
    CHECK_INT(c.in.len, before); /* nothing more was said */
    CHECK(took >= IDLE_TIMEOUT_MS - 50 && took < IDLE_TIMEOUT_MS + 1000);
    client_close(&c);

    /* A connection that never sends anything is idle too. */
    client_connect(&c);
    CHECK(wait_eof(&c, WAIT_MS));
    CHECK_INT(c.in.len, 0);
    client_close(&c);
    CHECK(wait_connections(0));
}

static void test_early_answer_and_handler_timeout(void) {
    client_t c;
    /* Answered from the head: the announced body is not read, so the
     * connection closes after the answer and nothing after it is parsed. */
    client_connect(&c);
    client_send_str(&c, "POST /early HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\n");
    CHECK(wait_eof(&c, WAIT_MS));
    CHECK(has(&c, "HTTP/1.1 404 "));
    CHECK_INT(count_of(&c.in, "HTTP/1.1 "), 1);
    client_close(&c);

    /* 100 Continue once the head passed, then the answer on the same connection. */
    client_connect(&c);
    client_send_str(&c, "POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 4\r\n"
                        "Expect: 100-continue\r\n\r\n");
    CHECK(wait_responses(&c, 1, "100 Continue\r\n\r\n"));
    client_send_str(&c, "ping");
    CHECK(wait_responses(&c, 2, "ping"));
    CHECK(offset_of(&c, "HTTP/1.1 100 Continue") == 0);
    client_close(&c);

    /* The handler's timeout answers a pending exchange; the connection stays. */
    client_connect(&c);
    client_send_str(&c,
                    "GET /slow HTTP/1.1\r\nHost: x\r\n\r\nGET /next HTTP/1.1\r\nHost: x\r\n\r\n");
    CHECK(wait_responses(&c, 2, "/next"));
    CHECK(has(&c, "HTTP/1.1 503 "));
    CHECK(offset_of(&c, "too slow") < offset_of(&c, "/next"));
    CHECK(!c.eof);
    client_close(&c);
    CHECK(wait_connections(0));
}

static void on_server_closed(void *arg) { *(bool *)arg = true; }

/* A graceful stop with a request pending: the idle connection goes, the busy
 * one gets its answer with Connection: close, then the server reports closed. */
static void test_shutdown(void) {
    client_t idle, busy;
    client_connect(&idle);
    client_connect(&busy);
    client_send_str(&busy, "GET /hold HTTP/1.1\r\nHost: x\r\n\r\n");
    for (uint64_t end = now_ms() + WAIT_MS; !held && now_ms() < end;)
        turn(&busy);
    CHECK(held != NULL);
    CHECK(wait_connections(2));

    bool closed = false;
    http_server_shutdown(server, 0, on_server_closed, &closed);
    CHECK(wait_eof(&idle, WAIT_MS));
    CHECK_INT(idle.in.len, 0);
    run_for(&busy, 50);
    CHECK(!closed); /* the busy connection holds it */
    CHECK(!busy.eof);
    if (held) held_answer("last");
    CHECK(wait_eof(&busy, WAIT_MS));
    CHECK(has(&busy, "last"));
    CHECK(has(&busy, "Connection: close\r\n"));
    for (uint64_t end = now_ms() + WAIT_MS; !closed && now_ms() < end;)
        turn(NULL);
    CHECK(closed);
    CHECK_INT(http_server_connections(server), 0);
    CHECK_INT(http_server_port(server), -1); /* no longer listening */
    client_close(&idle);
    client_close(&busy);
}

int main(void) {
    signal(SIGPIPE, SIG_IGN);
    CHECK_INT(uv_loop_init(&loop), 0);
    http_limits_t limits = {
        .max_body = 4096,
        .max_head = 16384,
        .max_header_lines = 100,
        .max_connections = 64,
        .idle_timeout_ms = IDLE_TIMEOUT_MS,
        .header_timeout_ms = HEADER_TIMEOUT_MS,
        .body_timeout_ms = BODY_TIMEOUT_MS,
    };
    http_handler_t handler = {
        .on_head = on_head,
        .on_request = on_request,
        .on_conn_close = on_conn_close,
    };
    server = http_server_new(&loop, &handler, &limits);
    CHECK_INT(http_server_listen(server, "127.0.0.1", 0), 0);
    CHECK(http_server_port(server) > 0);

    test_keep_alive();
    test_connection_close();
    test_pipelining();
    test_partial_reads();
    test_close_while_pending();
    test_timeouts();
    test_early_answer_and_handler_timeout();
    test_shutdown();

    /* Every connection is gone and counted once. */
    CHECK_INT(conn_closes, conns_opened);
    http_server_free(server);
    CHECK_INT(uv_loop_close(&loop), 0); /* every uv_*_init had its uv_close */
    return CHECK_SUMMARY();
}
