/* server: the listener, the connection cap, and the lists of open and deferred
 * connections; it creates every connection and hears of its end through the
 * ctx hooks (conn.h), never the other way round. */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <string.h>
#include <unistd.h>

#include "http/conn.h"
#include "http/ctx.h"
#include "http/internal.h"
#include "obs/log.h"
#include "util/closer.h"
#include "util/list.h"
#include "util/mem.h"

#define HTTP_LISTEN_BACKLOG 1024

/* Linux's value; glibc hides the name under _POSIX_C_SOURCE alone. */
#ifndef SO_REUSEPORT
#define SO_REUSEPORT 15
#endif

struct http_server {
    http_ctx_t ctx; /* shared with the connections */
    uv_tcp_t listener;
    bool listening;

    list_t conns; /* every open connection (http_conn_links_t.all) */
    size_t conn_count;
    uint64_t refused; /* connections closed at once (cap, EMFILE) */
    uint64_t refusal_logged_ms;
    size_t closed_since_trim;

    /* Connections whose pipelined input waits for the next loop turn. */
    uv_idle_t resume_idle;
    list_t deferred; /* http_conn_links_t.deferred */

    uv_timer_t drain_timer;
    closer_t closer; /* drain timer, listener, resume idle: then the shutdown's cb */
};

#define server_of_ctx(c) ((http_server_t *)(void *)((char *)(c)-offsetof(http_server_t, ctx)))

static void server_on_conn_closed(http_ctx_t *ctx, http_conn_t *c);
static void server_defer(http_ctx_t *ctx, http_conn_t *c);
static http_conn_t *server_conn_new(http_server_t *s);

http_server_t *http_server_new(uv_loop_t *loop, const http_handler_t *handler,
                               const http_limits_t *limits) {
    http_server_t *s = mem_calloc(1, sizeof(*s));
    http_conn_hooks_t hooks = {server_on_conn_closed, server_defer};
    http_ctx_init(&s->ctx, loop, handler, limits, &hooks);
    list_init(&s->conns);
    list_init(&s->deferred);
    uv_timer_init(loop, &s->drain_timer);
    uv_idle_init(loop, &s->resume_idle);
    s->drain_timer.data = s->resume_idle.data = s;
    return s;
}

void http_server_render_metrics(const http_server_t *s, strbuf_t *out) {
    const http_ctx_t *ctx = &s->ctx;
    static const char name[] = "multivac_http_request_duration_seconds";
    histogram_render_header(out, name,
                            "Time from a complete request head to its response, by route and "
                            "status class.");
    unsigned routes = ctx->handler.route_count ? ctx->handler.route_count : 1;
    for (unsigned r = 0; r < routes; r++) {
        for (int c = 1; c <= 5; c++) {
            const histogram_t *h = &ctx->durations[r * 6 + (unsigned)c];
            if (h->count == 0) continue;
            char labels[96];
            snprintf(labels, sizeof(labels), "route=\"%s\",class=\"%dxx\"",
                     ctx->handler.route_names ? ctx->handler.route_names[r] : "all", c);
            histogram_render(out, name, labels, h);
        }
    }
}

uint64_t http_server_responses(const http_server_t *s, int status_class) {
    return status_class >= 1 && status_class <= 5 ? s->ctx.responses[status_class] : 0;
}

uint64_t http_server_refused(const http_server_t *s) { return s->refused; }

static void server_on_refused_closed(uv_handle_t *h) { free(h); }

/* Says once a second, not once a connection, that connections are refused. */
static void server_log_refusal(http_server_t *s, const char *why, const char *error) {
    s->refused++;
    uint64_t now = uv_now(s->ctx.loop);
    if (s->refusal_logged_ms && now - s->refusal_logged_ms < HTTP_REFUSAL_LOG_MS) return;
    s->refusal_logged_ms = now;
    char count[24];
    snprintf(count, sizeof(count), "%llu", (unsigned long long)s->refused);
    log_warn(why, "error", error, "refused_total", count);
}

static void server_on_connection(uv_stream_t *listener, int status) {
    http_server_t *s = listener->data;
    if (status < 0) {
        /* libuv already closed the connection that could not get a descriptor
         * (its EMFILE reserve), so the listener does not spin. */
        server_log_refusal(s, "accept failed", uv_strerror(status));
        return;
    }
    if (s->conn_count >= s->ctx.limits.max_connections) {
        /* Accept to take it off the backlog, then close it at once. */
        uv_tcp_t *t = mem_malloc(sizeof(*t));
        uv_tcp_init(s->ctx.loop, t);
        uv_accept(listener, (uv_stream_t *)t);
        uv_close((uv_handle_t *)t, server_on_refused_closed);
        server_log_refusal(s, "connection refused: MULTIVAC_MAX_CONNECTIONS reached", "cap");
        return;
    }
    http_conn_accept(server_conn_new(s), listener);
}

static void server_on_resume(uv_idle_t *idle) {
    http_server_t *s = idle->data;
    /* Take the list first: resuming may defer a connection again. */
    list_t batch;
    list_init(&batch);
    list_splice(&batch, &s->deferred);
    uv_idle_stop(&s->resume_idle);
    list_node_t *n;
    while ((n = list_first(&batch))) {
        list_remove(n);
        http_conn_resume(http_conn_of_links(list_entry(n, http_conn_links_t, deferred)));
    }
}

static void server_defer(http_ctx_t *ctx, http_conn_t *c) {
    http_server_t *s = server_of_ctx(ctx);
    list_node_t *n = &http_conn_links(c)->deferred;
    if (list_linked(n)) return; /* already waiting for this turn */
    if (list_empty(&s->deferred)) uv_idle_start(&s->resume_idle, server_on_resume);
    list_push_back(&s->deferred, n);
}

int http_server_listen(http_server_t *s, const char *host, int port) {
    struct sockaddr_storage addr;
    int rc = strchr(host, ':') ? uv_ip6_addr(host, port, (struct sockaddr_in6 *)&addr)
                               : uv_ip4_addr(host, port, (struct sockaddr_in *)&addr);
    if (rc != 0) return rc;
    if ((rc = uv_tcp_init(s->ctx.loop, &s->listener)) != 0) return rc;
    s->listener.data = s;
    s->listening = true;
    if (s->ctx.limits.reuseport) {
        /* The kernel spreads new connections over every socket bound with
         * SO_REUSEPORT to the port: N processes, one loop each, share it. */
        int fd = socket(addr.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0), one = 1;
        if (fd < 0) return uv_translate_sys_error(errno);
        if (setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof(one)) != 0 ||
            (rc = uv_tcp_open(&s->listener, fd)) != 0) {
            rc = rc ? rc : uv_translate_sys_error(errno);
            close(fd);
            return rc;
        }
    }
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

/* Once drained and without connections, nothing can defer a connection
 * any more: the resume handle, the shutdown's last part, can go. */
static void server_maybe_closed(http_server_t *s) {
    if (!s->ctx.drained || s->conn_count > 0 || uv_is_closing((uv_handle_t *)&s->resume_idle))
        return;
    closer_handle(&s->closer, (uv_handle_t *)&s->resume_idle);
}

/* The server links every connection it creates; the connection's closed hook
 * unlinks it. */
static http_conn_t *server_conn_new(http_server_t *s) {
    http_conn_t *c = http_conn_new(&s->ctx);
    list_push_front(&s->conns, &http_conn_links(c)->all);
    s->conn_count++;
    return c;
}

void http_conn_adopt(http_server_t *s, uv_os_sock_t fd) { http_conn_open(server_conn_new(s), fd); }

static void server_on_conn_closed(http_ctx_t *ctx, http_conn_t *c) {
    http_server_t *s = server_of_ctx(ctx);
    http_conn_links_t *links = http_conn_links(c);
    list_remove(&links->all);
    list_remove(&links->deferred); /* a connection that closed while deferred */
    s->conn_count--;
    /* Thousands of closed connections leave their small blocks scattered in the
     * heap, where free() alone cannot give them back: trim once many are gone. */
    if (++s->closed_since_trim >= HTTP_TRIM_AFTER_CLOSES && s->conn_count < s->closed_since_trim) {
        s->closed_since_trim = 0;
        mem_release_free();
    }
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
        http_conn_open(server_conn_new(s), fd);
    }
}

static void server_on_drained(uv_timer_t *t) {
    http_server_t *s = t->data;
    s->ctx.drained = true;
    closer_handle(&s->closer, (uv_handle_t *)&s->drain_timer);
    if (s->listening) {
        server_accept_backlog(s);
        s->listening = false;
        closer_handle(&s->closer, (uv_handle_t *)&s->listener);
    } else {
        closer_done(&s->closer); /* never listened */
    }
    /* Closing may unlink the current element, so step first. */
    list_for_each_safe(&s->conns, n, next) {
        http_conn_shutdown(http_conn_of_links(list_entry(n, http_conn_links_t, all)));
    }
    server_maybe_closed(s); /* when no connection was open */
}

void http_server_shutdown(http_server_t *s, uint64_t drain_ms, http_closed_cb cb, void *arg) {
    s->ctx.shutting_down = true;
    /* The resume idle handle closes last, once no connection can defer. */
    closer_init(&s->closer, 3, cb, arg);
    uv_timer_start(&s->drain_timer, server_on_drained, drain_ms, 0);
}

void http_server_free(http_server_t *s) {
    if (!s) return;
    http_ctx_free(&s->ctx);
    free(s);
}
