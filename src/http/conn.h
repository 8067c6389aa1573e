/* conn: one HTTP connection (reads, parses, hands each request to the handler,
 * writes, enforces the client's deadlines, closes). Its owner creates it,
 * keeps it on lists of its own (http_conn_links) and hears of its end through
 * the ctx hooks: a connection never calls its owner otherwise. */
#ifndef MULTIVAC_HTTP_CONN_H
#define MULTIVAC_HTTP_CONN_H

#include <uv.h>

#include "http/ctx.h"
#include "util/list.h"

/* Where a connection sits on its owner's lists; conn.c never touches them. */
typedef struct http_conn_links {
    list_node_t all;      /* every open connection */
    list_node_t deferred; /* connections to resume on a later loop turn */
} http_conn_links_t;

http_conn_t *http_conn_new(http_ctx_t *ctx);
/* Start serving a connection taken from `listener`, or a socket accepted by
 * hand (now owned by the connection). On failure the connection closes and
 * hooks.closed follows; a libuv error code is returned. */
int http_conn_accept(http_conn_t *c, uv_stream_t *listener);
int http_conn_open(http_conn_t *c, uv_os_sock_t fd);
/* Closes the connection now if idle, or after its current exchange. */
void http_conn_shutdown(http_conn_t *c);
/* Runs a connection deferred through hooks.defer. */
void http_conn_resume(http_conn_t *c);

http_conn_links_t *http_conn_links(http_conn_t *c);
http_conn_t *http_conn_of_links(http_conn_links_t *links);

#endif
