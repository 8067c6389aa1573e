/* Shared between the http module's files only; not part of its contract. */
#ifndef MULTIVAC_HTTP_INTERNAL_H
#define MULTIVAC_HTTP_INTERNAL_H

#include <llhttp.h>

#include "http/http.h"
#include "util/strbuf.h"

#define HTTP_READ_BUFFER_SIZE (16 * 1024)
/* Pipelined responses queue up to this many bytes while a write is in flight;
 * past it, parsing pauses until the peer reads. */
#define HTTP_OUTPUT_HIGH_WATER (256 * 1024)
/* After the drain, an idle connection gets this long for a request that may
 * already be on its way, instead of being reset with it; one that has not sent
 * its first request yet (a client surely means to) gets longer. */
#define HTTP_SHUTDOWN_GRACE_MS 250
#define HTTP_SHUTDOWN_FIRST_REQUEST_MS 2000

typedef struct http_conn http_conn_t;

struct http_exchange {
    http_method_t method;
    bool keep_alive;
    bool pending; /* handed to the handler, not answered yet */
    uint64_t started_ms;
    http_exchange_cb on_timeout;
    http_exchange_cb on_abort;
};

struct http_server {
    uv_loop_t *loop;
    uv_tcp_t listener;
    bool listening;
    http_handler_t handler;
    http_limits_t limits;
    llhttp_settings_t parser_settings;

    http_conn_t *conns; /* doubly linked, every open connection */
    size_t conn_count;

    bool shutting_down; /* responses say Connection: close */
    bool drained;       /* no longer accepting; idle connections get the grace */
    uv_timer_t drain_timer;
    bool drain_timer_closed;
    http_closed_cb closed_cb;
    void *closed_arg;

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
void http_conn_settings_init(llhttp_settings_t *settings);
/* The server's list of open connections. */
void http_conn_link(http_conn_t **head, http_conn_t *c);
void http_conn_unlink(http_conn_t **head, http_conn_t *c);
http_conn_t *http_conn_next(const http_conn_t *c);

/* server.c */
void http_server_conn_closed(http_server_t *s, http_conn_t *c);
void http_server_conn_opened(http_server_t *s, http_conn_t *c);

/* response.c */
typedef enum {
    HTTP_CONN_KEEP,     /* HTTP/1.1 persistent: no Connection header needed */
    HTTP_CONN_KEEP_1_0, /* HTTP/1.0 keep-alive: must say so */
    HTTP_CONN_CLOSE,
} http_conn_mode_t;

int http_response_append(strbuf_t *out, http_server_t *s, const http_response_t *r,
                         http_conn_mode_t mode, bool head);

#endif
