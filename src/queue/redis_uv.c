#include "queue/redis_uv.h"

#include <stdbool.h>
#include <stdlib.h>

#include <hiredis/hiredis.h>

#include "util/mem.h"

typedef struct redis_uv {
    redisAsyncContext *ac; /* NULL once hiredis has let go of us */
    uv_poll_t poll;
    int events;         /* what hiredis currently waits for */
    bool write_blocked; /* the last write left bytes in hiredis's buffer */
    uint64_t progress;  /* counts the events in which bytes moved */
} redis_uv_t;

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
        /* Room again after a partial write means the peer consumed bytes; room
         * in an idle socket proves nothing (a frozen peer's buffers take some). */
        if (status == 0 && p->write_blocked) p->progress++;
        redisAsyncHandleWrite(p->ac);
        /* hiredis keeps write interest only while its buffer is not empty. */
        if (p->ac) p->write_blocked = (p->events & UV_WRITABLE) != 0;
    }
}

static void redis_uv_update(redis_uv_t *p, int events) {
    p->events = events;
    if (events) {
        uv_poll_start(&p->poll, events, redis_uv_on_poll);
    } else {
        uv_poll_stop(&p->poll);
    }
}

static void redis_uv_add_read(void *data) {
    redis_uv_t *p = data;
    redis_uv_update(p, p->events | UV_READABLE);
}

static void redis_uv_del_read(void *data) {
    redis_uv_t *p = data;
    redis_uv_update(p, p->events & ~UV_READABLE);
}

static void redis_uv_add_write(void *data) {
    redis_uv_t *p = data;
    redis_uv_update(p, p->events | UV_WRITABLE);
}

static void redis_uv_del_write(void *data) {
    redis_uv_t *p = data;
    redis_uv_update(p, p->events & ~UV_WRITABLE);
}

static void redis_uv_on_closed(uv_handle_t *handle) { free(handle->data); }

static void redis_uv_cleanup(void *data) {
    redis_uv_t *p = data;
    p->ac = NULL;
    uv_close((uv_handle_t *)&p->poll, redis_uv_on_closed);
}

int redis_uv_attach(redisAsyncContext *ac, uv_loop_t *loop) {
    if (ac->ev.data) return REDIS_ERR;
    redis_uv_t *p = mem_calloc(1, sizeof(*p));
    if (uv_poll_init_socket(loop, &p->poll, ac->c.fd) != 0) {
        free(p);
        return REDIS_ERR;
    }
    p->ac = ac;
    p->poll.data = p;
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
