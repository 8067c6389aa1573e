/* ctx: what an http server shares with each of its connections (settings, the
 * read buffer, response accounting, request ids, the Date line) and the hooks
 * through which a connection reports to the server. It knows neither conn.c nor
 * server.c: the dependency runs server -> conn -> ctx, one way. */
#ifndef MULTIVAC_HTTP_CTX_H
#define MULTIVAC_HTTP_CTX_H

#include <stdbool.h>
#include <stdint.h>
#include <uv.h>

#include "http/http.h"
#include "http/request.h"
#include "obs/histogram.h"
#include "util/strbuf.h"

/* One per server: every connection reads into it and parses from it, keeping
 * only unparsed leftovers of its own. */
#define HTTP_READ_BUFFER_SIZE (64 * 1024)
/* Input a connection holds while its exchange is pending; past it, reading
 * pauses until the exchange is answered. */
#define HTTP_INPUT_MAX (64 * 1024)
/* Request buffers that grew past this for one large request are released
 * after it. */
#define HTTP_INPUT_KEEP (16 * 1024)
/* Pipelined responses queue up to this many bytes while the client does not
 * read; past it, parsing and reading pause until it does. */
#define HTTP_OUTPUT_HIGH_WATER (256 * 1024)
/* Chunk-extension bytes per request (they are parsed and ignored). */
#define HTTP_CHUNK_EXT_MAX 4096
/* After the drain, an idle connection gets this long for a request that may
 * already be on its way, instead of being reset with it; one that has not sent
 * its first request yet (a client surely means to) gets longer. */
#define HTTP_SHUTDOWN_GRACE_MS 250
#define HTTP_SHUTDOWN_FIRST_REQUEST_MS 2000
/* After this many connections closed, free heap memory is returned. */
#define HTTP_TRIM_AFTER_CLOSES 1024
/* An idle connection holds neither a parser nor an output buffer: it takes
 * them from the server's spares when bytes arrive and gives them back between
 * requests, so idle clients cost their connection struct alone. At most this
 * many spares of each kind are kept, each trimmed to HTTP_SPARE_KEEP bytes of
 * buffers; more are freed. */
#define HTTP_SPARES_MAX 64
#define HTTP_SPARE_KEEP 4096
/* Refused connections (cap, EMFILE) are logged at most this often. */
#define HTTP_REFUSAL_LOG_MS 1000

/* A client's X-Request-Id longer than this is replaced by one of ours. */
#define HTTP_REQUEST_ID_MAX 64
#define HTTP_LOG_FIELD_MAX 64

typedef struct http_conn http_conn_t;
typedef struct http_ctx http_ctx_t;

/* Set by the server; a connection calls nothing else of it. */
typedef struct http_conn_hooks {
    /* `c` is gone (handles closed, handler released): the last call before it
     * is freed, so the server unlinks it from whatever lists it keeps. */
    void (*closed)(http_ctx_t *ctx, http_conn_t *c);
    /* Resume `c` (http_conn_resume) on a later loop turn, once. */
    void (*defer)(http_ctx_t *ctx, http_conn_t *c);
} http_conn_hooks_t;

struct http_ctx {
    uv_loop_t *loop;
    http_handler_t handler;
    http_limits_t limits;
    http_request_limits_t request_limits;
    http_conn_hooks_t hooks;
    char *read_buffer; /* HTTP_READ_BUFFER_SIZE */

    bool shutting_down; /* responses say Connection: close */
    bool drained;       /* no longer accepting; idle connections get the grace */

    uint64_t responses[6];      /* by status class: [2] counts 2xx */
    histogram_t *durations;     /* request durations, [route][status class] */
    uint32_t request_id_prefix; /* random per process */
    uint32_t request_id_seq;
    strbuf_t scratch; /* for access-log lines */

    http_request_t *spare_requests[HTTP_SPARES_MAX];
    unsigned spare_request_count;
    strbuf_t spare_outputs[HTTP_SPARES_MAX];
    unsigned spare_output_count;

    /* The Date header changes once a second; format it once a second. */
    char date[64];
    size_t date_len;
    uint64_t date_second;
};

void http_ctx_init(http_ctx_t *ctx, uv_loop_t *loop, const http_handler_t *handler,
                   const http_limits_t *limits, const http_conn_hooks_t *hooks);
void http_ctx_free(http_ctx_t *ctx);
/* Counts the response and its duration under the exchange's route. */
void http_ctx_observe(http_ctx_t *ctx, unsigned route, int status, double seconds);
/* A parser for a connection whose first byte of a request arrived. */
http_request_t *http_ctx_take_request(http_ctx_t *ctx);
/* Takes back a parser between requests (http_request_at_boundary). */
void http_ctx_give_request(http_ctx_t *ctx, http_request_t *r);
/* Gives an output buffer with no memory of its own one to append to. */
void http_ctx_take_output(http_ctx_t *ctx, strbuf_t *out);
/* Takes back the memory of an emptied output buffer, leaving it with none. */
void http_ctx_give_output(http_ctx_t *ctx, strbuf_t *out);
/* Writes a fresh request id (16 hex digits) into `out`. */
void http_ctx_new_request_id(http_ctx_t *ctx, char out[HTTP_REQUEST_ID_MAX + 1]);

/* response.c */
typedef enum {
    HTTP_CONN_KEEP,     /* HTTP/1.1 persistent: no Connection header needed */
    HTTP_CONN_KEEP_1_0, /* HTTP/1.0 keep-alive: must say so */
    HTTP_CONN_CLOSE,
} http_conn_mode_t;

void http_response_append(strbuf_t *out, http_ctx_t *ctx, const http_response_t *r,
                          http_conn_mode_t mode, bool head, const char *request_id);

#endif
