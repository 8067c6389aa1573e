/* redis_uv: drives a hiredis asynchronous context from a libuv loop (redis_uv.h),
 * writing each iteration's commands in one write() and touching epoll only when
 * a write cannot complete. Every socket error reaches hiredis, which then
 * disconnects; the adapter frees itself when hiredis lets go of it. Running out
 * of memory aborts (util/mem.h). */
#include "queue/redis_uv.h"

#include <stdbool.h>
#include <stdlib.h>

#include <hiredis/hiredis.h>

#include "util/mem.h"

typedef struct redis_uv {
    redisAsyncContext *ac; /* NULL once hiredis has let go of us */
    uv_poll_t poll;
    /* Writes hiredis's output buffer before the loop sleeps, as Redis's own
     * beforeSleep does with client replies: the commands of one iteration
     * leave in one write(), and a write that completes never needs POLLOUT,
     * so epoll_ctl is not called on every round trip. */
    uv_prepare_t flush;
    int events;         /* registered with the poll handle */
    bool want_write;    /* hiredis's output buffer holds bytes */
    bool write_polled;  /* a write was short: wait for POLLOUT */
    bool write_blocked; /* POLLOUT was armed after a short write */
    uint64_t progress;  /* counts the events in which bytes moved */
    int open_handles;
} redis_uv_t;

static void redis_uv_on_poll(uv_poll_t *handle, int status, int events);

static void redis_uv_set_events(redis_uv_t *p, int events) {
    if (events == p->events) return;
    p->events = events;
    if (events) {
        uv_poll_start(&p->poll, events, redis_uv_on_poll);
    } else {
        uv_poll_stop(&p->poll);
    }
}

static void redis_uv_on_poll(uv_poll_t *handle, int status, int events) {
    redis_uv_t *p = handle->data;
    /* An error arrives as a status with no events; replay the events hiredis
     * waits for so its own read or write meets the error. */
    int ready = status < 0 ? p->events : events;
    if (p->ac && (ready & UV_READABLE)) {
        if (status == 0) p->progress++;
        redisAsyncHandleRead(p->ac);
    }
    /* The read may have disconnected and detached us. */
    if (p->ac && (ready & UV_WRITABLE)) {
        /* Room again after a short write means the peer consumed bytes; room
         * in an idle socket proves nothing (a frozen peer's buffers take some). */
        if (status == 0 && p->write_blocked) p->progress++;
        redisAsyncHandleWrite(p->ac);
    }
}

static void redis_uv_on_flush(uv_prepare_t *handle) {
    redis_uv_t *p = handle->data;
    uv_prepare_stop(handle);
    if (!p->ac || !p->want_write || p->write_polled) return;
    /* hiredis learns that a connect completed from the first POLLOUT; before
     * that, a write would go to a socket still connecting. */
    if (p->ac->c.flags & REDIS_CONNECTED) {
        redisAsyncHandleWrite(p->ac);
        /* Done (hiredis called del_write) or detached by an error. */
        if (!p->ac || !p->want_write) return;
    }
    p->write_polled = true;
    p->write_blocked = (p->ac->c.flags & REDIS_CONNECTED) != 0;
    redis_uv_set_events(p, p->events | UV_WRITABLE);
}

static void redis_uv_add_read(void *data) {
    redis_uv_t *p = data;
    redis_uv_set_events(p, p->events | UV_READABLE);
}

static void redis_uv_del_read(void *data) {
    redis_uv_t *p = data;
    redis_uv_set_events(p, p->events & ~UV_READABLE);
}

static void redis_uv_add_write(void *data) {
    redis_uv_t *p = data;
    p->want_write = true;
    /* Already waiting for POLLOUT: the poll callback writes. */
    if (!p->write_polled) uv_prepare_start(&p->flush, redis_uv_on_flush);
}

static void redis_uv_del_write(void *data) {
    redis_uv_t *p = data;
    p->want_write = false;
    if (!p->write_polled) return;
    p->write_polled = false;
    p->write_blocked = false;
    redis_uv_set_events(p, p->events & ~UV_WRITABLE);
}

static void redis_uv_on_closed(uv_handle_t *handle) {
    redis_uv_t *p = handle->data;
    if (--p->open_handles == 0) free(p);
}

static void redis_uv_cleanup(void *data) {
    redis_uv_t *p = data;
    p->ac = NULL;
    uv_close((uv_handle_t *)&p->poll, redis_uv_on_closed);
    uv_close((uv_handle_t *)&p->flush, redis_uv_on_closed);
}

int redis_uv_attach(redisAsyncContext *ac, uv_loop_t *loop) {
    if (ac->ev.data) return REDIS_ERR;
    redis_uv_t *p = mem_calloc(1, sizeof(*p));
    if (uv_poll_init_socket(loop, &p->poll, ac->c.fd) != 0) {
        free(p);
        return REDIS_ERR;
    }
    uv_prepare_init(loop, &p->flush);
    p->open_handles = 2;
    p->ac = ac;
    p->poll.data = p->flush.data = p;
    ac->ev.data = p;
    ac->ev.addRead = redis_uv_add_read;
    ac->ev.delRead = redis_uv_del_read;
    ac->ev.addWrite = redis_uv_add_write;
    ac->ev.delWrite = redis_uv_del_write;
    ac->ev.cleanup = redis_uv_cleanup;
    return REDIS_OK;
}

uint64_t redis_uv_progress(const redisAsyncContext *ac) {
    const redis_uv_t *p = ac->ev.data;
    return p ? p->progress : 0;
}
