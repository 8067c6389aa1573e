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
 * Memory. Each connection owns a fixed read buffer, a body buffer and output
 * buffers that keep their capacity across requests, plus `user_size` bytes for
 * the handler; serving a request allocates nothing once those have grown. */
#ifndef MULTIVAC_HTTP_H
#define MULTIVAC_HTTP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <uv.h>

typedef struct http_server http_server_t;
typedef struct http_exchange http_exchange_t;

typedef enum {
    HTTP_METHOD_OTHER = 0,
    HTTP_METHOD_GET,
    HTTP_METHOD_HEAD,
    HTTP_METHOD_POST,
    HTTP_METHOD_OPTIONS,
} http_method_t;

typedef struct http_handler {
    /* A complete request (headers and body) is ready. */
    void (*on_request)(void *arg, http_exchange_t *ex);
    /* The connection is gone for good: release what `user` holds. */
    void (*on_conn_close)(void *arg, void *user);
    void *arg;
    size_t user_size; /* bytes of zeroed per-connection state for the handler */
} http_handler_t;

typedef struct http_limits {
    size_t max_body;        /* larger bodies get 413 */
    size_t max_header_size; /* request line + headers; larger get 431 (or 414 for the URL) */
    uint64_t idle_timeout_ms;
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
/* Connections currently open (for metrics). */
size_t http_server_connections(const http_server_t *s);

/* Request accessors; valid until the exchange is answered. */
http_method_t http_exchange_method(const http_exchange_t *ex);
const char *http_exchange_target(const http_exchange_t *ex, size_t *len);
/* Content-Type header value (NULL when absent). */
const char *http_exchange_content_type(const http_exchange_t *ex, size_t *len);
/* The decoded body (chunked transfer coding removed); the handler may modify it. */
char *http_exchange_body(http_exchange_t *ex, size_t *len);
void *http_exchange_user(http_exchange_t *ex);
/* Milliseconds of the loop clock when the request was complete. */
uint64_t http_exchange_started(const http_exchange_t *ex);

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
