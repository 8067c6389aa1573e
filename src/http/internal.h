/* Shared between the http module's files only; not part of its contract. */
#ifndef MULTIVAC_HTTP_INTERNAL_H
#define MULTIVAC_HTTP_INTERNAL_H

#include "http/http.h"
#include "http/request.h"
#include "obs/histogram.h"
#include "util/closer.h"
#include "util/list.h"
#include "util/strbuf.h"

/* One per server: every connection reads into it and parses from it, keeping
 * only unparsed leftovers of its own. */
#define HTTP_READ_BUFFER_SIZE (64 * 1024)
/* Input a connection holds while its exchange is pending; past it, reading
 * pauses until the exchange is answered. */
#define HTTP_INPUT_MAX (64 * 1024)
/* Buffers that grew past these for one large request are released after it. */
#define HTTP_INPUT_KEEP (16 * 1024)
#define HTTP_OUTPUT_KEEP (64 * 1024)
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
/* Refused connections (cap, EMFILE) are logged at most this often. */
#define HTTP_REFUSAL_LOG_MS 1000

/* A client's X-Request-Id longer than this is replaced by one of ours. */
#define HTTP_REQUEST_ID_MAX 64
#define HTTP_LOG_FIELD_MAX 64

typedef struct http_conn http_conn_t;

/* Where a connection sits on the server's lists. */
typedef struct http_conn_links {
    list_node_t all;      /* every open connection */
    list_node_t deferred; /* connections to resume on the next loop turn */
} http_conn_links_t;

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

struct http_server {
    uv_loop_t *loop;
    uv_tcp_t listener;
    bool listening;
    http_handler_t handler;
    http_limits_t limits;
    http_request_limits_t request_limits;
    char *read_buffer; /* HTTP_READ_BUFFER_SIZE */

    list_t conns; /* every open connection (http_conn_links_t.all) */
    size_t conn_count;
    uint64_t responses[6]; /* by status class: [2] counts 2xx */
    uint64_t refused;      /* connections closed at once (cap, EMFILE) */
    uint64_t refusal_logged_ms;
    size_t closed_since_trim;

    /* Connections whose pipelined input waits for the next loop turn. */
    uv_idle_t resume_idle;
    list_t deferred; /* http_conn_links_t.deferred */

    bool shutting_down; /* responses say Connection: close */
    bool drained;       /* no longer accepting; idle connections get the grace */
    uv_timer_t drain_timer;
    closer_t closer; /* drain timer, listener, resume idle: then the shutdown's cb */

    /* Request durations, [route][status class]. */
    histogram_t *durations;
    uint32_t request_id_prefix; /* random per process */
    uint32_t request_id_seq;
    strbuf_t scratch; /* for access-log lines */

    /* The Date header changes once a second; format it once a second. */
    char date[64];
    size_t date_len;
    uint64_t date_second;
};

/* conn.c */
void http_conn_accept(http_server_t *s);
/* Takes over a socket accepted by hand (the final accepts of a shutdown). */
void http_conn_adopt(http_server_t *s, uv_os_sock_t fd);
/* Closes the connection now if idle, or after its current exchange. */
void http_conn_shutdown(http_conn_t *c);
/* Runs a deferred connection (see http_server_defer). */
void http_conn_resume(http_conn_t *c);
void http_conn_read_start(http_conn_t *c);
void http_conn_read_stop(http_conn_t *c);
/* The connection's place on the server's lists, and back. */
http_conn_links_t *http_conn_links(http_conn_t *c);
http_conn_t *http_conn_of_links(http_conn_links_t *links);

/* server.c */
void http_server_conn_closed(http_server_t *s, http_conn_t *c);
void http_server_conn_opened(http_server_t *s, http_conn_t *c);
/* Resumes `c` on the next loop turn (once; the connection stays allocated until). */
void http_server_defer(http_server_t *s, http_conn_t *c);
uv_buf_t http_server_read_buffer(http_server_t *s);
/* Counts the response and its duration under the exchange's route. */
void http_server_observe(http_server_t *s, unsigned route, int status, double seconds);
/* Writes a fresh request id (16 hex digits) into `out`. */
void http_server_new_request_id(http_server_t *s, char out[HTTP_REQUEST_ID_MAX + 1]);

/* response.c */
typedef enum {
    HTTP_CONN_KEEP,     /* HTTP/1.1 persistent: no Connection header needed */
    HTTP_CONN_KEEP_1_0, /* HTTP/1.0 keep-alive: must say so */
    HTTP_CONN_CLOSE,
} http_conn_mode_t;

void http_response_append(strbuf_t *out, http_server_t *s, const http_response_t *r,
                          http_conn_mode_t mode, bool head, const char *request_id);

#endif
