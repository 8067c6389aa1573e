/* The listening socket and the set of open connections. */
#include <fcntl.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <string.h>

#include "http/internal.h"
#include "obs/log.h"

#define HTTP_LISTEN_BACKLOG 1024

http_server_t *http_server_new(uv_loop_t *loop, const http_handler_t *handler,
                               const http_limits_t *limits) {
    http_server_t *s = calloc(1, sizeof(*s));
    if (!s) return NULL;
    s->loop = loop;
    s->handler = *handler;
    s->limits = *limits;
    http_conn_settings_init(&s->parser_settings);
    uv_timer_init(loop, &s->drain_timer);
    s->drain_timer.data = s;
    return s;
}

static void server_on_connection(uv_stream_t *listener, int status) {
    http_server_t *s = listener->data;
    if (status < 0) {
        log_warn("accept failed", "error", uv_strerror(status));
        return;
    }
    http_conn_accept(s);
}

int http_server_listen(http_server_t *s, const char *host, int port) {
    struct sockaddr_storage addr;
    int rc = strchr(host, ':') ? uv_ip6_addr(host, port, (struct sockaddr_in6 *)&addr)
                               : uv_ip4_addr(host, port, (struct sockaddr_in *)&addr);
    if (rc != 0) return rc;
    if ((rc = uv_tcp_init(s->loop, &s->listener)) != 0) return rc;
    s->listener.data = s;
    s->listening = true;
    if ((rc = uv_tcp_bind(&s->listener, (struct sockaddr *)&addr, 0)) != 0) return rc;
    return uv_listen((uv_stream_t *)&s->listener, HTTP_LISTEN_BACKLOG, server_on_connection);
}

int http_server_port(const http_server_t *s) {
    struct sockaddr_storage addr;
    int len = sizeof(addr);
    if (!s->listening || uv_tcp_getsockname(&s->listener, (struct sockaddr *)&addr, &len) != 0)
        return -1;
    if (addr.ss_family == AF_INET6) return ntohs(((struct sockaddr_in6 *)&addr)->sin6_port);
    return ntohs(((struct sockaddr_in *)&addr)->sin_port);
}

size_t http_server_connections(const http_server_t *s) { return s->conn_count; }

static void server_maybe_closed(http_server_t *s) {
    if (!s->shutting_down || s->listening || s->conn_count > 0 || !s->drain_timer_closed ||
        !s->closed_cb)
        return;
    http_closed_cb cb = s->closed_cb;
    s->closed_cb = NULL;
    cb(s->closed_arg);
}

void http_server_conn_opened(http_server_t *s, http_conn_t *c) {
    http_conn_link(&s->conns, c);
    s->conn_count++;
}

void http_server_conn_closed(http_server_t *s, http_conn_t *c) {
    http_conn_unlink(&s->conns, c);
    s->conn_count--;
    server_maybe_closed(s);
}

static void server_on_listener_closed(uv_handle_t *h) {
    http_server_t *s = h->data;
    s->listening = false;
    server_maybe_closed(s);
}

static void server_on_drain_timer_closed(uv_handle_t *h) {
    http_server_t *s = h->data;
    s->drain_timer_closed = true;
    server_maybe_closed(s);
}

/* Connections the kernel completed but we have not accepted yet would be reset
 * by closing the listener, requests and all: take them in first. */
static void server_accept_backlog(http_server_t *s) {
    uv_os_fd_t lfd;
    if (uv_fileno((uv_handle_t *)&s->listener, &lfd) != 0) return;
    for (;;) {
        int fd = accept(lfd, NULL, NULL);
        if (fd < 0) return;
        fcntl(fd, F_SETFD, FD_CLOEXEC);
        http_conn_adopt(s, fd);
    }
}

static void server_on_drained(uv_timer_t *t) {
    http_server_t *s = t->data;
    s->drained = true;
    uv_close((uv_handle_t *)&s->drain_timer, server_on_drain_timer_closed);
    if (s->listening && !uv_is_closing((uv_handle_t *)&s->listener)) {
        server_accept_backlog(s);
        uv_close((uv_handle_t *)&s->listener, server_on_listener_closed);
    }
    /* Closing may unlink the current element, so step first. */
    for (http_conn_t *c = s->conns, *next; c; c = next) {
        next = http_conn_next(c);
        http_conn_shutdown(c);
    }
}

void http_server_shutdown(http_server_t *s, uint64_t drain_ms, http_closed_cb cb, void *arg) {
    s->shutting_down = true;
    s->closed_cb = cb;
    s->closed_arg = arg;
    uv_timer_start(&s->drain_timer, server_on_drained, drain_ms, 0);
}

void http_server_free(http_server_t *s) { free(s); }
