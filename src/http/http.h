/* http: the HTTP/1.1 server side — listener, connections, request parsing
 * (llhttp) and response output. It knows nothing about MultiVAC's endpoints:
 * each parsed request is handed to a handler as an exchange.
 *
 * Exchanges. A connection runs one exchange at a time; pipelined requests wait
 * in the read buffer until the current one is answered, so responses leave in
 * request order. The handler answers an exchange exactly once, either inside
 * on_request or later (after a Redis reply, say); the exchange stays valid until
 * then even if the peer has gone, and the answer to a dead peer is discarded.
 *
 * Early answers. The handler sees each request twice: on_head when its head is
 * complete and valid, on_request when its body is in too. on_head may answer
 * at once (auth, routing, content type), so a client is not made to send a
 * body that will be refused; the connection then closes if a body was
 * announced, since it will not be read.
 *
 * Memory and time. Reads go into one buffer per server; a connection keeps
 * input only while an exchange is pending, and its buffers shrink back after a
 * large request. Every wait on the client has a deadline (http_limits_t), and
 * every byte count a bound: docs/http.md lists them. */
#ifndef MULTIVAC_HTTP_H
#define MULTIVAC_HTTP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include "util/strbuf.h"

typedef struct http_server http_server_t;
typedef struct http_exchange http_exchange_t;

typedef enum {
    HTTP_METHOD_OTHER = 0,
    HTTP_METHOD_GET,
    HTTP_METHOD_HEAD,
    HTTP_METHOD_POST,
    HTTP_METHOD_OPTIONS,
} http_method_t;

/* Request headers the handler can read; others are parsed and dropped. */
typedef enum {
    HTTP_HEADER_CONTENT_TYPE,
    HTTP_HEADER_AUTHORIZATION,
    HTTP_HEADER_IDEMPOTENCY_KEY,
    HTTP_HEADER_REQUEST_ID,
    HTTP_HEADER_CAPTURED_COUNT
} http_header_t;

typedef struct http_handler {
    /* The head is in (method, target, headers); the body, if any, is not. May
     * answer now, synchronously; otherwise on_request follows. NULL: skip. */
    void (*on_head)(void *arg, http_exchange_t *ex);
    /* A complete request (headers and body) is ready. */
    void (*on_request)(void *arg, http_exchange_t *ex);
    /* The connection is gone for good: release what `user` holds. */
    void (*on_conn_close)(void *arg, void *user);
    void *arg;
    size_t user_size; /* bytes of zeroed per-connection state for the handler */
    /* Labels of the request-duration histogram: the handler tags each exchange
     * with an index into these (http_exchange_set_route); 0 until it does. */
    const char *const *route_names;
    unsigned route_count;
} http_handler_t;

typedef struct http_limits {
    size_t max_body;            /* larger bodies get 413 */
    size_t max_head;            /* request line + header section on the wire: 431 (414) */
    size_t max_header_lines;    /* header fields per request: 431 */
    size_t max_connections;     /* further connections are closed at once */
    uint64_t idle_timeout_ms;   /* between requests, and for a client to read our output */
    uint64_t header_timeout_ms; /* first byte to end of head: 408 */
    uint64_t body_timeout_ms;   /* longest pause inside a body: 408 */
    bool reuseport;             /* listen with SO_REUSEPORT: processes share the port */
    bool access_log;            /* one JSON line per response on stderr */
} http_limits_t;

typedef struct http_response {
    int status;
    const char *content_type;  /* NULL: no Content-Type */
    const char *extra_headers; /* complete "Name: value\r\n" lines, or NULL */
    const char *body;
    size_t body_len;
} http_response_t;

typedef void (*http_closed_cb)(void *arg);
typedef void (*http_exchange_cb)(http_exchange_t *ex);

/* Server lifecycle: new -> listen -> shutdown (async) -> free. */
http_server_t *http_server_new(uv_loop_t *loop, const http_handler_t *handler,
                               const http_limits_t *limits);
/* Binds and listens. Returns 0 or a libuv error code. */
int http_server_listen(http_server_t *s, const char *host, int port);
/* The bound port (useful with port 0). */
int http_server_port(const http_server_t *s);
/* Graceful stop. For `drain_ms` it keeps serving, but every response says
 * Connection: close, so clients move away without a request lost in a race
 * with a closing socket. Then it stops accepting, closes idle connections, lets
 * each busy one finish its current exchange and closes it; calls `cb` when
 * every handle is closed. */
void http_server_shutdown(http_server_t *s, uint64_t drain_ms, http_closed_cb cb, void *arg);
void http_server_free(http_server_t *s);
/* For metrics: connections open now; responses sent by status class (2 for
 * 2xx; the http layer's own refusals included); connections closed at once
 * because of MULTIVAC_MAX_CONNECTIONS or a lack of file descriptors. */
size_t http_server_connections(const http_server_t *s);
uint64_t http_server_responses(const http_server_t *s, int status_class);
uint64_t http_server_refused(const http_server_t *s);
/* Appends the request-duration histogram (Prometheus text) to `out`. */
void http_server_render_metrics(const http_server_t *s, strbuf_t *out);

/* Request accessors; valid until the exchange is answered. */
http_method_t http_exchange_method(const http_exchange_t *ex);
const char *http_exchange_target(const http_exchange_t *ex, size_t *len);
/* A captured header's value without surrounding whitespace (NULL when absent). */
const char *http_exchange_header(const http_exchange_t *ex, http_header_t h, size_t *len);
/* The decoded body (chunked transfer coding removed); the handler may modify it.
 * Empty in on_head. */
char *http_exchange_body(http_exchange_t *ex, size_t *len);
void *http_exchange_user(http_exchange_t *ex);
/* Tags the exchange for the duration histogram (see http_handler_t). */
void http_exchange_set_route(http_exchange_t *ex, unsigned route);
/* Adds one field to the exchange's access-log line (a job id, say); copied,
 * at most 64 bytes. */
void http_exchange_log_field(http_exchange_t *ex, const char *key, const char *value);

/* Answers the exchange; HEAD requests get the headers only. The body is copied. */
void http_respond(http_exchange_t *ex, const http_response_t *r);

/* For a pending exchange: `cb` runs once after `timeout_ms` unless answered first. */
void http_exchange_set_timeout(http_exchange_t *ex, uint64_t timeout_ms, http_exchange_cb cb);
/* For a pending exchange: `cb` runs if the peer goes away first, so the handler
 * can answer early (the answer is discarded) and drop its own references. */
void http_exchange_on_abort(http_exchange_t *ex, http_exchange_cb cb);

/* The reason phrase of a status code. */
const char *http_status_reason(int status);

#endif
