/* One HTTP connection: read, parse, hand requests to the handler one at a
 * time, write responses, close. See http.h for the exchange rules. */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "http/internal.h"
#include "obs/log.h"

typedef enum {
    TIMER_IDLE,     /* waiting for the next request */
    TIMER_EXCHANGE, /* handler-requested timeout of a pending exchange */
    TIMER_RESUME,   /* zero-delay: parse pipelined input after an async answer */
} conn_timer_purpose_t;

typedef enum { HEADER_OTHER, HEADER_CONTENT_TYPE, HEADER_EXPECT } conn_header_t;

struct http_conn {
    uv_tcp_t tcp;
    uv_timer_t timer;
    uv_write_t write_req;
    uv_shutdown_t shutdown_req;
    http_server_t *server;
    http_conn_t *prev, *next;
    llhttp_t parser;
    http_exchange_t ex;

    int open_handles;
    conn_timer_purpose_t timer_purpose;
    bool reading;
    bool processing;       /* inside conn_process: answers must not re-enter it */
    bool peer_eof;         /* the peer will send nothing more */
    bool no_more_requests; /* a response said Connection: close */
    bool closing;          /* handles are closing or closed */
    bool writing;
    bool used; /* has dispatched a request */

    /* The request being parsed. */
    strbuf_t target;
    strbuf_t content_type;
    strbuf_t body;
    size_t header_bytes;
    char field[16];
    size_t field_len;
    conn_header_t header;
    char expect[16];
    size_t expect_len;
    bool has_expect;
    int reject_status; /* set by a parser callback that refuses the request */

    strbuf_t out;         /* responses not yet handed to the kernel */
    strbuf_t out_writing; /* the write in flight; swapped with `out` */

    size_t rlen; /* unparsed bytes at the start of rbuf */
    char rbuf[HTTP_READ_BUFFER_SIZE];
    _Alignas(16) unsigned char user[];
};

#define conn_of_exchange(e) ((http_conn_t *)((char *)(e)-offsetof(http_conn_t, ex)))

static void conn_process(http_conn_t *c);
static void conn_close(http_conn_t *c);

/* ---- lifecycle ----------------------------------------------------------- */

static void conn_maybe_free(http_conn_t *c) {
    if (c->open_handles > 0 || c->ex.pending) return;
    http_server_t *s = c->server;
    if (s->handler.on_conn_close) s->handler.on_conn_close(s->handler.arg, c->user);
    strbuf_free(&c->target);
    strbuf_free(&c->content_type);
    strbuf_free(&c->body);
    strbuf_free(&c->out);
    strbuf_free(&c->out_writing);
    http_server_conn_closed(s, c);
    free(c);
}

static void conn_on_handle_closed(uv_handle_t *h) {
    http_conn_t *c = h->data;
    c->open_handles--;
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
    uv_close((uv_handle_t *)&c->tcp, conn_on_handle_closed);
    uv_close((uv_handle_t *)&c->timer, conn_on_handle_closed);
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

static void conn_timer_start(http_conn_t *c, conn_timer_purpose_t purpose, uint64_t ms);

static void conn_on_timer(uv_timer_t *t) {
    http_conn_t *c = t->data;
    switch (c->timer_purpose) {
    case TIMER_IDLE: conn_close(c); break;
    case TIMER_EXCHANGE:
        if (c->ex.pending && c->ex.on_timeout) {
            http_exchange_cb cb = c->ex.on_timeout;
            c->ex.on_timeout = NULL;
            cb(&c->ex);
        }
        break;
    case TIMER_RESUME: conn_process(c); break;
    }
}

static void conn_timer_start(http_conn_t *c, conn_timer_purpose_t purpose, uint64_t ms) {
    c->timer_purpose = purpose;
    uv_timer_start(&c->timer, conn_on_timer, ms, 0);
}

/* Waiting for the next request: normally the idle timeout; once the server has
 * stopped accepting, only a grace period. */
static void conn_wait_for_request(http_conn_t *c) {
    const http_server_t *s = c->server;
    uint64_t ms = s->limits.idle_timeout_ms;
    if (s->drained) {
        uint64_t grace = c->used ? HTTP_SHUTDOWN_GRACE_MS : HTTP_SHUTDOWN_FIRST_REQUEST_MS;
        if (grace < ms) ms = grace;
    }
    conn_timer_start(c, TIMER_IDLE, ms);
}

/* ---- output -------------------------------------------------------------- */

static void conn_flush(http_conn_t *c);

static void conn_on_write(uv_write_t *req, int status) {
    http_conn_t *c = req->data;
    c->writing = false;
    strbuf_reset(&c->out_writing);
    if (c->closing) return;
    if (status < 0) {
        conn_close(c);
        return;
    }
    if (c->out.len > 0) {
        conn_flush(c);
    } else if (c->no_more_requests && !c->ex.pending) {
        conn_close_after_output(c);
    } else if (c->rlen > 0 && !c->ex.pending) {
        conn_process(c); /* parsing paused at the output high-water mark */
    }
}

static void conn_flush(http_conn_t *c) {
    if (c->writing || c->closing || c->out.len == 0) return;
    strbuf_t tmp = c->out_writing;
    c->out_writing = c->out;
    c->out = tmp;
    uv_buf_t buf = uv_buf_init(c->out_writing.data, (unsigned)c->out_writing.len);
    c->write_req.data = c;
    if (uv_write(&c->write_req, (uv_stream_t *)&c->tcp, &buf, 1, conn_on_write) != 0) {
        conn_close(c);
        return;
    }
    c->writing = true;
}

static http_conn_mode_t conn_mode(http_conn_t *c) {
    if (!c->ex.keep_alive || c->peer_eof || c->server->shutting_down) return HTTP_CONN_CLOSE;
    return c->parser.http_minor == 0 ? HTTP_CONN_KEEP_1_0 : HTTP_CONN_KEEP;
}

static void conn_append_response(http_conn_t *c, const http_response_t *r) {
    http_conn_mode_t mode = conn_mode(c);
    if (mode == HTTP_CONN_CLOSE) c->no_more_requests = true;
    if (http_response_append(&c->out, c->server, r, mode, c->ex.method == HTTP_METHOD_HEAD) != 0) {
        log_error("out of memory writing a response");
        conn_close(c);
    }
}

static void conn_reject(http_conn_t *c, int status, const char *why) {
    char body[160];
    int n = snprintf(body, sizeof(body), "{\"error\": \"%s\"}", why);
    http_response_t r = {status, "application/json", NULL, body, (size_t)n};
    c->ex.keep_alive = false;
    conn_append_response(c, &r);
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
    conn_append_response(c, r);
    if (c->processing) return; /* conn_process flushes and continues */
    conn_flush(c);
    if (c->closing) return;
    if (c->rlen > 0 && !c->no_more_requests) {
        /* Parse pipelined requests on the next loop turn, not inside the
         * handler's callback that is answering now. */
        conn_timer_start(c, TIMER_RESUME, 0);
    } else {
        conn_process(c);
    }
}

http_method_t http_exchange_method(const http_exchange_t *ex) { return ex->method; }

const char *http_exchange_target(const http_exchange_t *ex, size_t *len) {
    const http_conn_t *c = conn_of_exchange(ex);
    *len = c->target.len;
    return c->target.data ? c->target.data : "";
}

const char *http_exchange_content_type(const http_exchange_t *ex, size_t *len) {
    const http_conn_t *c = conn_of_exchange(ex);
    *len = c->content_type.len;
    return c->content_type.len ? c->content_type.data : NULL;
}

char *http_exchange_body(http_exchange_t *ex, size_t *len) {
    http_conn_t *c = conn_of_exchange(ex);
    *len = c->body.len;
    return c->body.data;
}

void *http_exchange_user(http_exchange_t *ex) { return conn_of_exchange(ex)->user; }

uint64_t http_exchange_started(const http_exchange_t *ex) { return ex->started_ms; }

void http_exchange_set_timeout(http_exchange_t *ex, uint64_t timeout_ms, http_exchange_cb cb) {
    http_conn_t *c = conn_of_exchange(ex);
    if (c->closing) return;
    ex->on_timeout = cb;
    conn_timer_start(c, TIMER_EXCHANGE, timeout_ms);
}

void http_exchange_on_abort(http_exchange_t *ex, http_exchange_cb cb) { ex->on_abort = cb; }

/* ---- parsing ------------------------------------------------------------- */

static int conn_refuse(http_conn_t *c, int status) {
    c->reject_status = status;
    return HPE_USER;
}

static int conn_count_header_bytes(http_conn_t *c, size_t len) {
    c->header_bytes += len;
    return c->header_bytes > c->server->limits.max_header_size;
}

static int conn_on_message_begin(llhttp_t *p) {
    http_conn_t *c = p->data;
    strbuf_reset(&c->target);
    strbuf_reset(&c->content_type);
    strbuf_reset(&c->body);
    c->header_bytes = 0;
    c->field_len = 0;
    c->header = HEADER_OTHER;
    c->has_expect = false;
    c->expect_len = 0;
    c->reject_status = 0;
    return HPE_OK;
}

static int conn_on_url(llhttp_t *p, const char *at, size_t len) {
    http_conn_t *c = p->data;
    if (conn_count_header_bytes(c, len)) return conn_refuse(c, 414);
    return strbuf_append(&c->target, at, len) == 0 ? HPE_OK : conn_refuse(c, 500);
}

static int conn_on_header_field(llhttp_t *p, const char *at, size_t len) {
    http_conn_t *c = p->data;
    if (conn_count_header_bytes(c, len)) return conn_refuse(c, 431);
    /* Only short names interest us; a longer one just never matches. */
    size_t room = sizeof(c->field) - c->field_len;
    size_t n = len < room ? len : room;
    memcpy(c->field + c->field_len, at, n);
    c->field_len += len;
    return HPE_OK;
}

static bool conn_field_is(const http_conn_t *c, const char *name) {
    size_t n = strlen(name);
    return c->field_len == n && strncasecmp(c->field, name, n) == 0;
}

static int conn_on_header_field_complete(llhttp_t *p) {
    http_conn_t *c = p->data;
    if (conn_field_is(c, "content-type")) {
        c->header = HEADER_CONTENT_TYPE;
        strbuf_reset(&c->content_type); /* the last one wins */
    } else if (conn_field_is(c, "expect")) {
        c->header = HEADER_EXPECT;
        c->has_expect = true;
        c->expect_len = 0;
    } else {
        c->header = HEADER_OTHER;
    }
    c->field_len = 0;
    return HPE_OK;
}

static int conn_on_header_value(llhttp_t *p, const char *at, size_t len) {
    http_conn_t *c = p->data;
    if (conn_count_header_bytes(c, len)) return conn_refuse(c, 431);
    if (c->header == HEADER_CONTENT_TYPE) {
        if (strbuf_append(&c->content_type, at, len) != 0) return conn_refuse(c, 500);
    } else if (c->header == HEADER_EXPECT) {
        size_t room = sizeof(c->expect) - c->expect_len;
        size_t n = len < room ? len : room;
        memcpy(c->expect + c->expect_len, at, n);
        c->expect_len += len;
    }
    return HPE_OK;
}

static http_method_t conn_method(uint8_t m) {
    switch (m) {
    case HTTP_GET: return HTTP_METHOD_GET;
    case HTTP_HEAD: return HTTP_METHOD_HEAD;
    case HTTP_POST: return HTTP_METHOD_POST;
    case HTTP_OPTIONS: return HTTP_METHOD_OPTIONS;
    default: return HTTP_METHOD_OTHER;
    }
}

static int conn_on_headers_complete(llhttp_t *p) {
    http_conn_t *c = p->data;
    c->ex.method = conn_method(p->method);
    /* HTTP/0.9 ("GET /path" with no version) is not served. */
    if (p->http_major == 0) return conn_refuse(c, 400);
    if (p->http_major > 1) return conn_refuse(c, 505);
    if ((p->flags & F_CONTENT_LENGTH) && p->content_length > c->server->limits.max_body)
        return conn_refuse(c, 413);
    if (c->has_expect) {
        if (c->expect_len != 12 || strncasecmp(c->expect, "100-continue", 12) != 0)
            return conn_refuse(c, 417);
        /* curl waits a second for this before sending a body it announced. */
        bool has_body = (p->flags & F_CHUNKED) || p->content_length > 0;
        if (p->http_major == 1 && p->http_minor == 1 && has_body &&
            strbuf_append_str(&c->out, "HTTP/1.1 100 Continue\r\n\r\n") == 0)
            conn_flush(c);
    }
    return HPE_OK;
}

static int conn_on_body(llhttp_t *p, const char *at, size_t len) {
    http_conn_t *c = p->data;
    if (c->body.len + len > c->server->limits.max_body) return conn_refuse(c, 413);
    return strbuf_append(&c->body, at, len) == 0 ? HPE_OK : conn_refuse(c, 500);
}

static int conn_on_message_complete(llhttp_t *p) {
    http_conn_t *c = p->data;
    c->ex.keep_alive = llhttp_should_keep_alive(p);
    /* Stop here so the request is dispatched outside the parser, one at a time. */
    return HPE_PAUSED;
}

void http_conn_settings_init(llhttp_settings_t *s) {
    llhttp_settings_init(s);
    s->on_message_begin = conn_on_message_begin;
    s->on_url = conn_on_url;
    s->on_header_field = conn_on_header_field;
    s->on_header_field_complete = conn_on_header_field_complete;
    s->on_header_value = conn_on_header_value;
    s->on_headers_complete = conn_on_headers_complete;
    s->on_body = conn_on_body;
    s->on_message_complete = conn_on_message_complete;
}

/* A well-formed but unknown method ("BREW / HTTP/1.1") deserves 501; a broken
 * request line ("GET", binary noise) is just malformed. */
static bool conn_starts_with_method(const char *p, size_t len) {
    static const char tchar[] = "!#$%&'*+-.^_`|~";
    size_t i = 0;
    while (i < len && (isalnum((unsigned char)p[i]) || (p[i] && strchr(tchar, p[i]))))
        i++;
    return i > 0 && i < len && p[i] == ' ';
}

static void conn_reject_parse_error(http_conn_t *c, llhttp_errno_t err, const char *start,
                                    size_t len) {
    switch (c->reject_status) {
    case 413: conn_reject(c, 413, "request body too large"); return;
    case 414: conn_reject(c, 414, "request target too long"); return;
    case 417: conn_reject(c, 417, "unsupported Expect header"); return;
    case 431: conn_reject(c, 431, "request headers too large"); return;
    case 500: conn_reject(c, 500, "out of memory"); return;
    case 400: conn_reject(c, 400, "malformed HTTP request"); return;
    case 505: conn_reject(c, 505, "HTTP version not supported"); return;
    default: break;
    }
    if (err == HPE_INVALID_METHOD && conn_starts_with_method(start, len)) {
        conn_reject(c, 501, "method not implemented");
    } else if (err == HPE_INVALID_VERSION && c->parser.http_major >= 2 &&
               c->parser.http_major <= 9) {
        conn_reject(c, 505, "HTTP version not supported");
    } else {
        conn_reject(c, 400, "malformed HTTP request");
    }
}

static void conn_dispatch(http_conn_t *c) {
    http_server_t *s = c->server;
    c->used = true;
    c->ex.pending = true;
    c->ex.on_timeout = NULL;
    c->ex.on_abort = NULL;
    c->ex.started_ms = uv_now(s->loop);
    uv_timer_stop(&c->timer);
    s->handler.on_request(s->handler.arg, &c->ex);
}

static void conn_read_start(http_conn_t *c);
static void conn_on_read(uv_stream_t *stream, ssize_t nread, const uv_buf_t *buf);

/* Parses buffered input and dispatches complete requests until one goes
 * asynchronous, the input runs out, or output backs up. */
static void conn_process(http_conn_t *c) {
    if (c->processing || c->closing) return;
    c->processing = true;
    size_t pos = 0;
    while (pos < c->rlen && !c->ex.pending && !c->closing && !c->no_more_requests &&
           c->out.len < HTTP_OUTPUT_HIGH_WATER) {
        llhttp_errno_t err = llhttp_execute(&c->parser, c->rbuf + pos, c->rlen - pos);
        if (err == HPE_OK) {
            pos = c->rlen;
        } else if (err == HPE_PAUSED) {
            pos = (size_t)(llhttp_get_error_pos(&c->parser) - c->rbuf);
            llhttp_resume(&c->parser);
            conn_dispatch(c);
        } else {
            conn_reject_parse_error(c, err, c->rbuf + pos, c->rlen - pos);
            pos = c->rlen;
        }
    }
    if (c->closing) {
        c->processing = false;
        return;
    }
    if (c->no_more_requests) pos = c->rlen; /* nothing after a close is read */
    memmove(c->rbuf, c->rbuf + pos, c->rlen - pos);
    c->rlen -= pos;
    c->processing = false;

    conn_flush(c);
    if (c->closing || c->ex.pending) return;
    if (c->no_more_requests || c->peer_eof) {
        if (!c->writing && c->out.len == 0) conn_close_after_output(c);
        c->no_more_requests = true;
        return;
    }
    conn_read_start(c);
    conn_wait_for_request(c);
}

/* ---- input --------------------------------------------------------------- */

static void conn_on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf) {
    (void)suggested;
    http_conn_t *c = h->data;
    *buf = uv_buf_init(c->rbuf + c->rlen, (unsigned)(sizeof(c->rbuf) - c->rlen));
}

static void conn_read_stop(http_conn_t *c) {
    if (!c->reading) return;
    uv_read_stop((uv_stream_t *)&c->tcp);
    c->reading = false;
}

static void conn_read_start(http_conn_t *c) {
    if (c->reading || c->closing || c->peer_eof || c->rlen == sizeof(c->rbuf)) return;
    if (uv_read_start((uv_stream_t *)&c->tcp, conn_on_alloc, conn_on_read) == 0) c->reading = true;
}

static void conn_on_read(uv_stream_t *stream, ssize_t nread, const uv_buf_t *buf) {
    (void)buf;
    http_conn_t *c = stream->data;
    if (nread == 0) return;
    if (nread == UV_ENOBUFS) {
        conn_read_stop(c);
        return;
    }
    if (nread < 0) {
        if (nread != UV_EOF || c->ex.pending) {
            /* A reset, or a client that gave up on its pending request. */
            conn_close(c);
            return;
        }
        c->peer_eof = true;
        conn_read_stop(c);
        conn_process(c);
        return;
    }
    c->rlen += (size_t)nread;
    if (c->ex.pending) {
        /* Keep the bytes for later; stop only when the buffer is full. */
        if (c->rlen == sizeof(c->rbuf)) conn_read_stop(c);
        return;
    }
    conn_process(c);
}

static http_conn_t *conn_new(http_server_t *s) {
    http_conn_t *c = calloc(1, sizeof(*c) + s->handler.user_size);
    if (!c) {
        log_error("out of memory accepting a connection");
        return NULL;
    }
    c->server = s;
    uv_tcp_init(s->loop, &c->tcp);
    uv_timer_init(s->loop, &c->timer);
    c->tcp.data = c;
    c->timer.data = c;
    c->open_handles = 2;
    http_server_conn_opened(s, c);
    return c;
}

static void conn_start(http_conn_t *c) {
    http_server_t *s = c->server;
    uv_tcp_nodelay(&c->tcp, 1);
    llhttp_init(&c->parser, HTTP_REQUEST, &s->parser_settings);
    c->parser.data = c;
    conn_read_start(c);
    conn_wait_for_request(c);
}

void http_conn_accept(http_server_t *s) {
    http_conn_t *c = conn_new(s);
    if (!c) return;
    if (uv_accept((uv_stream_t *)&s->listener, (uv_stream_t *)&c->tcp) != 0) {
        conn_close(c);
        return;
    }
    conn_start(c);
}

void http_conn_adopt(http_server_t *s, uv_os_sock_t fd) {
    http_conn_t *c = conn_new(s);
    if (!c) {
        close(fd);
        return;
    }
    if (uv_tcp_open(&c->tcp, fd) != 0) {
        close(fd);
        conn_close(c);
        return;
    }
    conn_start(c);
}

void http_conn_shutdown(http_conn_t *c) {
    if (c->closing) return;
    if (!c->ex.pending && !c->writing && c->out.len == 0) {
        conn_wait_for_request(c);
        return;
    }
    /* The current exchange is answered with Connection: close, then we go. */
    c->no_more_requests = true;
}

http_conn_t *http_conn_next(const http_conn_t *c) { return c->next; }

void http_conn_link(http_conn_t **head, http_conn_t *c) {
    c->prev = NULL;
    c->next = *head;
    if (*head) (*head)->prev = c;
    *head = c;
}

void http_conn_unlink(http_conn_t **head, http_conn_t *c) {
    if (c->prev) {
        c->prev->next = c->next;
    } else {
        *head = c->next;
    }
    if (c->next) c->next->prev = c->prev;
}
