/* conn: one HTTP connection (conn.h). Reads, feeds http/request, hands requests
 * to the handler one at a time, writes responses in request order, enforces the
 * client's deadlines, closes, and tells its owner only through the ctx hooks.
 * See http.h for the exchange rules. */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "http/conn.h"
#include "http/ctx.h"
#include "http/request.h"
#include "obs/log.h"
#include "util/closer.h"
#include "util/mem.h"

/* Per request; reset once its response is written. */
struct http_exchange {
    http_method_t method;    /* the current request's; OTHER once it is answered */
    const char *method_name; /* as sent, for the access log; NULL before the head */
    int minor;               /* HTTP/1.<minor> */
    bool keep_alive;
    bool pending; /* handed to the handler, not answered yet */
    http_exchange_cb on_timeout;
    http_exchange_cb on_abort;
    uint64_t started_ns; /* uv_hrtime() when the head was complete */
    unsigned route;
    char request_id[HTTP_REQUEST_ID_MAX + 1];
    const char *log_key; /* static */
    char log_value[HTTP_LOG_FIELD_MAX + 1];
};

/* What the read timer is waiting for from the client. */
typedef enum {
    WAIT_NONE,
    WAIT_IDLE,  /* the next request: close quietly when it does not come */
    WAIT_HEAD,  /* the rest of a head, from its first byte: 408 */
    WAIT_BODY,  /* more of a body: 408 */
    WAIT_DRAIN, /* the client to read what we wrote: close */
} conn_wait_t;

struct http_conn {
    uv_tcp_t tcp;
    uv_timer_t read_timer;     /* the client's deadline, see conn_wait_t */
    uv_timer_t exchange_timer; /* the handler's timeout for a pending exchange */
    uv_write_t write_req;
    uv_shutdown_t shutdown_req;
    http_ctx_t *ctx;
    http_conn_links_t links; /* the owner's lists */
    http_request_t *req;     /* from the ctx's spares while a request is under way */
    http_exchange_t ex;

    closer_t closer; /* tcp and both timers, once closing */
    bool closed;     /* they are: only the handler's pending exchange may hold it */
    conn_wait_t wait;
    bool reading;
    bool processing;       /* inside conn_process: answers must not re-enter it */
    bool peer_eof;         /* the peer will send nothing more */
    bool no_more_requests; /* a response said Connection: close */
    bool closing;          /* handles are closing or closed */
    bool writing;
    bool used;           /* has dispatched a request */
    bool answered_early; /* on_head answered: the request's end is not dispatched */

    strbuf_t in;          /* input kept while an exchange is pending */
    strbuf_t out;         /* responses not yet handed to the kernel; spare memory */
    strbuf_t out_writing; /* the write in flight */

    _Alignas(16) unsigned char user[];
};

#define conn_of_exchange(e) ((http_conn_t *)((char *)(e)-offsetof(http_conn_t, ex)))

static void conn_continue(http_conn_t *c);
static void conn_read_start(http_conn_t *c);
static void conn_read_stop(http_conn_t *c);

/* ---- lifecycle ----------------------------------------------------------- */

static void conn_maybe_free(http_conn_t *c) {
    if (!c->closed || c->ex.pending) return;
    http_ctx_t *ctx = c->ctx;
    if (ctx->handler.on_conn_close) ctx->handler.on_conn_close(ctx->handler.arg, c->user);
    http_request_free(c->req);
    strbuf_free(&c->in);
    strbuf_free(&c->out);
    strbuf_free(&c->out_writing);
    ctx->hooks.closed(ctx, c);
    free(c);
}

static void conn_on_closed(void *arg) {
    http_conn_t *c = arg;
    c->closed = true;
    conn_maybe_free(c);
}

static void conn_close(http_conn_t *c) {
    if (c->closing) return;
    c->closing = true;
    /* Let the handler answer (into the void) and drop its references now rather
     * than when its own timer or reply arrives. */
    if (c->ex.pending && c->ex.on_abort) {
        http_exchange_cb cb = c->ex.on_abort;
        c->ex.on_abort = NULL;
        cb(&c->ex);
    }
    closer_init(&c->closer, 3, conn_on_closed, c);
    closer_handle(&c->closer, (uv_handle_t *)&c->tcp);
    closer_handle(&c->closer, (uv_handle_t *)&c->read_timer);
    closer_handle(&c->closer, (uv_handle_t *)&c->exchange_timer);
}

static void conn_on_shutdown(uv_shutdown_t *req, int status) {
    (void)status;
    conn_close(req->data);
}

/* Half-closes first so the last response is not cut by a reset. */
static void conn_close_after_output(http_conn_t *c) {
    if (c->closing) return;
    c->shutdown_req.data = c;
    if (uv_shutdown(&c->shutdown_req, (uv_stream_t *)&c->tcp, conn_on_shutdown) != 0) conn_close(c);
}

/* ---- output -------------------------------------------------------------- */

static void conn_on_write(uv_write_t *req, int status) {
    http_conn_t *c = req->data;
    c->writing = false;
    http_ctx_give_output(c->ctx, &c->out_writing);
    if (c->closing) return;
    if (status < 0) {
        conn_close(c);
        return;
    }
    conn_continue(c);
}

/* Tries the write right away (most responses fit the socket buffer: one
 * syscall, no poll registration); only a remainder waits for uv_write. */
static void conn_flush(http_conn_t *c) {
    if (c->writing || c->closing || c->out.len == 0) return;
    uv_buf_t buf = uv_buf_init(c->out.data, (unsigned)c->out.len);
    int n = uv_try_write((uv_stream_t *)&c->tcp, &buf, 1);
    if (n < 0 && n != UV_EAGAIN) {
        conn_close(c);
        return;
    }
    if (n > 0) strbuf_consume(&c->out, (size_t)n);
    if (c->out.len == 0) {
        http_ctx_give_output(c->ctx, &c->out);
        return;
    }
    strbuf_t tmp = c->out_writing;
    c->out_writing = c->out;
    c->out = tmp;
    buf = uv_buf_init(c->out_writing.data, (unsigned)c->out_writing.len);
    c->write_req.data = c;
    if (uv_write(&c->write_req, (uv_stream_t *)&c->tcp, &buf, 1, conn_on_write) != 0) {
        conn_close(c);
        return;
    }
    c->writing = true;
}

static bool conn_output_backed_up(const http_conn_t *c) {
    return c->out.len + c->out_writing.len >= HTTP_OUTPUT_HIGH_WATER;
}

static http_conn_mode_t conn_mode(const http_conn_t *c) {
    if (!c->ex.keep_alive || c->peer_eof || c->ctx->shutting_down) return HTTP_CONN_CLOSE;
    return c->ex.minor == 0 ? HTTP_CONN_KEEP_1_0 : HTTP_CONN_KEEP;
}

/* {"msg":"request","method":...,"path":...,"status":...}: one line per response. */
static void conn_log_access(http_conn_t *c, int status, size_t bytes, double seconds) {
    http_ctx_t *ctx = c->ctx;
    size_t len = 1;
    /* Every response answers a request under way, whose parser is held. */
    const char *target = c->req ? http_request_target(c->req, &len) : "-";
    strbuf_reset(&ctx->scratch);
    strbuf_append(&ctx->scratch, target, len);
    strbuf_append_char(&ctx->scratch, '\0');
    char st[8], size[24], ms[32];
    snprintf(st, sizeof(st), "%d", status);
    snprintf(size, sizeof(size), "%zu", bytes);
    snprintf(ms, sizeof(ms), "%.3f", seconds * 1000);
    log_info("request", "method", c->ex.method_name ? c->ex.method_name : "-", "path",
             ctx->scratch.data, "status", st, "bytes", size, "duration_ms", ms, "request_id",
             c->ex.request_id, c->ex.log_key, c->ex.log_value);
}

static void conn_append_response(http_conn_t *c, const http_response_t *r) {
    http_ctx_t *ctx = c->ctx;
    http_conn_mode_t mode = conn_mode(c);
    if (mode == HTTP_CONN_CLOSE) c->no_more_requests = true;
    if (!c->ex.request_id[0]) http_ctx_new_request_id(ctx, c->ex.request_id);
    if (!c->out.data) http_ctx_take_output(ctx, &c->out);
    http_response_append(&c->out, ctx, r, mode, c->ex.method == HTTP_METHOD_HEAD, c->ex.request_id);

    uint64_t now = uv_hrtime();
    double seconds = c->ex.started_ns ? (double)(now - c->ex.started_ns) / 1e9 : 0;
    http_ctx_observe(ctx, c->ex.route, r->status, seconds);
    if (ctx->limits.access_log) conn_log_access(c, r->status, r->body_len, seconds);
    /* Until the next head is parsed, an answer (an error, a timeout) is to no
     * HEAD request, and so carries its body. */
    c->ex.method = HTTP_METHOD_OTHER;
    c->ex.method_name = NULL;
    c->ex.started_ns = 0;
    c->ex.route = 0;
    c->ex.request_id[0] = '\0';
    c->ex.log_key = NULL;
}

/* Answers, from the http layer itself, a request that never reaches the
 * handler; the connection closes after it. */
static void conn_reject(http_conn_t *c, int status, const char *why) {
    char body[160];
    int n = snprintf(body, sizeof(body), "{\"error\": \"%s\"}", why);
    http_response_t r = {status, "application/json", NULL, body, (size_t)n};
    c->ex.keep_alive = false;
    conn_append_response(c, &r);
}

/* ---- deadlines ----------------------------------------------------------- */

static void conn_on_read_timer(uv_timer_t *t) {
    http_conn_t *c = t->data;
    conn_wait_t wait = c->wait;
    c->wait = WAIT_NONE;
    switch (wait) {
    case WAIT_HEAD:
    case WAIT_BODY:
        /* A request was under way: say why it ends, then close. */
        conn_reject(c, 408,
                    wait == WAIT_HEAD ? "request head not received in time"
                                      : "request body stalled");
        conn_read_stop(c);
        conn_continue(c);
        break;
    case WAIT_IDLE:
    case WAIT_DRAIN:
    case WAIT_NONE: conn_close(c); break;
    }
}

static void conn_wait(http_conn_t *c, conn_wait_t wait, uint64_t ms) {
    c->wait = wait;
    uv_timer_start(&c->read_timer, conn_on_read_timer, ms, 0);
}

/* Sets the read deadline for what the connection waits for now. A head's
 * deadline runs from its first byte and is not extended by later ones. */
static void conn_arm(http_conn_t *c) {
    const http_ctx_t *ctx = c->ctx;
    if (c->closing) return;
    if (c->ex.pending) {
        c->wait = WAIT_NONE;
        uv_timer_stop(&c->read_timer);
        return;
    }
    if (c->writing && (c->no_more_requests || conn_output_backed_up(c))) {
        if (c->wait != WAIT_DRAIN) conn_wait(c, WAIT_DRAIN, ctx->limits.idle_timeout_ms);
        return;
    }
    switch (c->req ? http_request_state(c->req) : HTTP_REQUEST_IDLE) {
    case HTTP_REQUEST_IN_HEAD:
        if (c->wait != WAIT_HEAD) conn_wait(c, WAIT_HEAD, ctx->limits.header_timeout_ms);
        break;
    case HTTP_REQUEST_IN_BODY: conn_wait(c, WAIT_BODY, ctx->limits.body_timeout_ms); break;
    case HTTP_REQUEST_IDLE:
    case HTTP_REQUEST_DONE: {
        if (c->wait == WAIT_IDLE) break;
        uint64_t ms = ctx->limits.idle_timeout_ms;
        /* Once the server stopped accepting, only a grace for a request that
         * may already be on its way. */
        if (ctx->drained) {
            uint64_t grace = c->used ? HTTP_SHUTDOWN_GRACE_MS : HTTP_SHUTDOWN_FIRST_REQUEST_MS;
            if (grace < ms) ms = grace;
        }
        conn_wait(c, WAIT_IDLE, ms);
        break;
    }
    }
}

static void conn_on_exchange_timer(uv_timer_t *t) {
    http_conn_t *c = t->data;
    if (c->ex.pending && c->ex.on_timeout) {
        http_exchange_cb cb = c->ex.on_timeout;
        c->ex.on_timeout = NULL;
        cb(&c->ex);
    }
}

/* ---- exchange API -------------------------------------------------------- */

void http_respond(http_exchange_t *ex, const http_response_t *r) {
    http_conn_t *c = conn_of_exchange(ex);
    ex->pending = false;
    ex->on_abort = NULL;
    ex->on_timeout = NULL;
    if (c->closing) {
        conn_maybe_free(c);
        return;
    }
    uv_timer_stop(&c->exchange_timer);
    conn_append_response(c, r);
    /* The handler is done with the request: a large body need not wait for
     * the next one to be released. */
    http_request_trim(c->req, HTTP_INPUT_KEEP);
    if (c->processing) return; /* conn_process flushes and continues */
    conn_flush(c);
    if (c->closing) return;
    /* Parse pipelined input on a later loop turn, not inside the callback
     * that is answering now (a Redis reply, say). */
    if (c->in.len > 0 && !c->no_more_requests) {
        c->ctx->hooks.defer(c->ctx, c);
        return;
    }
    conn_continue(c);
}

/* A connection that closed meanwhile is off the owner's list by the time it
 * is freed (hooks.closed), so this sees only live ones; conn_continue skips a
 * closing one. */
void http_conn_resume(http_conn_t *c) { conn_continue(c); }

http_conn_links_t *http_conn_links(http_conn_t *c) { return &c->links; }

http_conn_t *http_conn_of_links(http_conn_links_t *links) {
    return list_entry(links, http_conn_t, links);
}

http_method_t http_exchange_method(const http_exchange_t *ex) { return ex->method; }

const char *http_exchange_target(const http_exchange_t *ex, size_t *len) {
    return http_request_target(conn_of_exchange(ex)->req, len);
}

const char *http_exchange_header(const http_exchange_t *ex, http_header_t h, size_t *len) {
    return http_request_header(conn_of_exchange(ex)->req, h, len);
}

char *http_exchange_body(http_exchange_t *ex, size_t *len) {
    return http_request_body(conn_of_exchange(ex)->req, len);
}

void *http_exchange_user(http_exchange_t *ex) { return conn_of_exchange(ex)->user; }

void http_exchange_set_route(http_exchange_t *ex, unsigned route) { ex->route = route; }

void http_exchange_log_field(http_exchange_t *ex, const char *key, const char *value) {
    size_t n = strlen(value);
    if (n > HTTP_LOG_FIELD_MAX) n = HTTP_LOG_FIELD_MAX;
    memcpy(ex->log_value, value, n);
    ex->log_value[n] = '\0';
    ex->log_key = key;
}

void http_exchange_set_timeout(http_exchange_t *ex, uint64_t timeout_ms, http_exchange_cb cb) {
    http_conn_t *c = conn_of_exchange(ex);
    if (c->closing) return;
    ex->on_timeout = cb;
    uv_timer_start(&c->exchange_timer, conn_on_exchange_timer, timeout_ms, 0);
}

void http_exchange_on_abort(http_exchange_t *ex, http_exchange_cb cb) { ex->on_abort = cb; }

/* ---- requests ------------------------------------------------------------ */

/* A client's id is kept only when it is a short token that cannot break a
 * header or a log line. */
static bool conn_request_id_ok(const char *id, size_t len) {
    if (len == 0 || len > HTTP_REQUEST_ID_MAX) return false;
    for (size_t i = 0; i < len; i++) {
        unsigned char ch = (unsigned char)id[i];
        if (!isalnum(ch) && !strchr("._~:/+=-", ch)) return false;
    }
    return true;
}

static void conn_exchange_begin(http_conn_t *c) {
    size_t len;
    const char *id = http_request_header(c->req, HTTP_HEADER_REQUEST_ID, &len);
    if (id && conn_request_id_ok(id, len)) {
        memcpy(c->ex.request_id, id, len);
        c->ex.request_id[len] = '\0';
    } else {
        http_ctx_new_request_id(c->ctx, c->ex.request_id);
    }
    c->ex.started_ns = uv_hrtime();
    c->ex.method_name = http_request_method_name(c->req);
    c->ex.method = http_request_method(c->req);
    c->ex.minor = http_request_minor(c->req);
    c->ex.keep_alive = http_request_keep_alive(c->req);
    c->ex.on_timeout = NULL;
    c->ex.on_abort = NULL;
}

/* The head is in: the handler may answer from it alone. */
static void conn_on_head(http_conn_t *c) {
    http_ctx_t *ctx = c->ctx;
    conn_exchange_begin(c);
    c->answered_early = false;
    if (ctx->handler.on_head) {
        c->ex.pending = true;
        ctx->handler.on_head(ctx->handler.arg, &c->ex);
        if (!c->ex.pending) {
            c->answered_early = true;
            /* The announced body will not be read, so nothing after it can be. */
            if (http_request_has_body(c->req)) c->no_more_requests = true;
            return;
        }
        c->ex.pending = false;
    }
    /* curl waits a second for this before sending a body it announced. */
    if (http_request_expects_continue(c->req) && c->ex.minor == 1) {
        if (!c->out.data) http_ctx_take_output(ctx, &c->out);
        strbuf_append_str(&c->out, "HTTP/1.1 100 Continue\r\n\r\n");
    }
}

static void conn_dispatch(http_conn_t *c) {
    http_ctx_t *ctx = c->ctx;
    c->used = true;
    if (c->answered_early) {
        c->answered_early = false;
        return;
    }
    c->ex.keep_alive = http_request_keep_alive(c->req);
    c->ex.pending = true;
    c->wait = WAIT_NONE;
    uv_timer_stop(&c->read_timer);
    ctx->handler.on_request(ctx->handler.arg, &c->ex);
}

/* Parses `data` and dispatches complete requests until one goes asynchronous,
 * the input runs out, the connection is done, or output backs up. Returns the
 * bytes consumed. */
static size_t conn_process(http_conn_t *c, const char *data, size_t len) {
    size_t pos = 0;
    c->processing = true;
    while (!c->ex.pending && !c->closing && !c->no_more_requests && !conn_output_backed_up(c)) {
        size_t used;
        if (!c->req) c->req = http_ctx_take_request(c->ctx);
        http_request_event_t ev = http_request_parse(c->req, data + pos, len - pos, &used);
        pos += used;
        if (ev == HTTP_REQUEST_MORE) break;
        if (ev == HTTP_REQUEST_HEAD) {
            conn_on_head(c);
        } else if (ev == HTTP_REQUEST_COMPLETE) {
            conn_dispatch(c);
            if (pos == len) break;
        } else {
            const char *why;
            int status = http_request_error(c->req, &why);
            conn_reject(c, status, why);
            break;
        }
    }
    c->processing = false;
    if (c->no_more_requests) pos = len; /* nothing after a close is read */
    return pos;
}

/* Between requests a connection holds no parser (see HTTP_SPARES_MAX). */
static void conn_release_request(http_conn_t *c) {
    if (c->req && !c->ex.pending && !c->no_more_requests && c->in.len == 0 &&
        http_request_at_boundary(c->req)) {
        http_ctx_give_request(c->ctx, c->req);
        c->req = NULL;
    }
}

/* The one place that decides what a connection does next. */
static void conn_continue(http_conn_t *c) {
    if (c->closing) return;
    if (c->in.len > 0 && !c->ex.pending && !conn_output_backed_up(c)) {
        size_t used = conn_process(c, c->in.data, c->in.len);
        strbuf_consume(&c->in, used);
        if (c->in.len == 0) strbuf_free(&c->in);
    }
    conn_flush(c);
    if (c->closing) return;
    conn_release_request(c);
    if (c->peer_eof && !c->ex.pending) c->no_more_requests = true;
    if (c->no_more_requests && !c->ex.pending) {
        conn_read_stop(c);
        if (!c->writing && c->out.len == 0) {
            conn_close_after_output(c);
            return;
        }
    } else if (conn_output_backed_up(c) || c->in.len >= HTTP_INPUT_MAX) {
        conn_read_stop(c); /* resumed by conn_on_write or the answer */
    } else {
        conn_read_start(c);
    }
    conn_arm(c);
}

/* ---- input --------------------------------------------------------------- */

static void conn_on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf) {
    (void)suggested;
    http_conn_t *c = h->data;
    *buf = uv_buf_init(c->ctx->read_buffer, HTTP_READ_BUFFER_SIZE);
}

static void conn_read_stop(http_conn_t *c) {
    if (!c->reading) return;
    uv_read_stop((uv_stream_t *)&c->tcp);
    c->reading = false;
}

static void conn_on_read(uv_stream_t *stream, ssize_t nread, const uv_buf_t *buf);

static void conn_read_start(http_conn_t *c) {
    if (c->reading || c->closing || c->peer_eof) return;
    if (uv_read_start((uv_stream_t *)&c->tcp, conn_on_alloc, conn_on_read) == 0) c->reading = true;
}

static void conn_on_read(uv_stream_t *stream, ssize_t nread, const uv_buf_t *buf) {
    http_conn_t *c = stream->data;
    if (nread == 0 || c->closing) return;
    if (nread < 0) {
        if (nread != UV_EOF || c->ex.pending) {
            /* A reset, or a client that gave up on its pending request. */
            conn_close(c);
            return;
        }
        c->peer_eof = true;
        conn_read_stop(c);
        conn_continue(c);
        return;
    }
    size_t len = (size_t)nread;
    if (c->in.len == 0 && !c->ex.pending && !conn_output_backed_up(c)) {
        /* The common case: parse straight from the shared buffer and keep
         * only what is left when an exchange goes asynchronous. */
        size_t used = conn_process(c, buf->base, len);
        if (used < len) strbuf_append(&c->in, buf->base + used, len - used);
    } else {
        strbuf_append(&c->in, buf->base, len);
    }
    conn_continue(c);
}

/* ---- accepting ----------------------------------------------------------- */

http_conn_t *http_conn_new(http_ctx_t *ctx) {
    http_conn_t *c = mem_calloc(1, sizeof(*c) + ctx->handler.user_size);
    c->ctx = ctx;
    uv_tcp_init(ctx->loop, &c->tcp);
    uv_timer_init(ctx->loop, &c->read_timer);
    uv_timer_init(ctx->loop, &c->exchange_timer);
    c->tcp.data = c->read_timer.data = c->exchange_timer.data = c;
    return c;
}

static void conn_start(http_conn_t *c) {
    uv_tcp_nodelay(&c->tcp, 1);
    conn_continue(c);
}

int http_conn_accept(http_conn_t *c, uv_stream_t *listener) {
    int rc = uv_accept(listener, (uv_stream_t *)&c->tcp);
    if (rc != 0) {
        conn_close(c);
        return rc;
    }
    conn_start(c);
    return 0;
}

int http_conn_open(http_conn_t *c, uv_os_sock_t fd) {
    int rc = uv_tcp_open(&c->tcp, fd);
    if (rc != 0) {
        close(fd);
        conn_close(c);
        return rc;
    }
    conn_start(c);
    return 0;
}

void http_conn_shutdown(http_conn_t *c) {
    if (c->closing) return;
    if (!c->ex.pending && !c->writing && c->out.len == 0 &&
        (!c->req || http_request_state(c->req) != HTTP_REQUEST_IN_BODY)) {
        c->wait = WAIT_NONE; /* re-armed with the shutdown grace */
        conn_arm(c);
        return;
    }
    /* The current exchange is answered with Connection: close, then we go. */
    c->no_more_requests = true;
}
