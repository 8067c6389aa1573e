/* internal: the http module's one entry point for its own test and fuzz
 * programs, not for other modules: serve a socket of their own. */
#ifndef MULTIVAC_HTTP_INTERNAL_H
#define MULTIVAC_HTTP_INTERNAL_H

#include <uv.h>

#include "http/http.h"

/* Serves `fd` (a socketpair end, say) as a connection of `s`, as if accepted.
 * Implemented by server.c. */
void http_conn_adopt(http_server_t *s, uv_os_sock_t fd);

#endif
