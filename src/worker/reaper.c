/* reaper: a job claimed by a worker that is gone goes back to the queue. Every
 * half lease, while Redis is connected, the reaper asks the queue to requeue
 * the processing lists of workers whose lease expired, never with two requests
 * in flight; it counts what came back and logs it. It stores and drops
 * nothing itself. Closing stops the timer and calls back once it is closed; a
 * request in flight still gets its reply, so the reaper is freed only after
 * the queue has closed. Memory runs out only by aborting (util/mem.h). */
#include "worker/reaper.h"

#include <stdio.h>
#include <stdlib.h>

#include "obs/log.h"
#include "util/mem.h"

struct reaper {
    queue_t *queue;
    uv_timer_t timer;
    uint64_t interval_ms;
    bool running; /* a reap is in flight: never two at once */
    uint64_t requeued;
    reaper_closed_cb closed_cb;
    void *closed_arg;
};

reaper_t *reaper_new(uv_loop_t *loop, queue_t *queue, uint64_t lease_ms) {
    reaper_t *r = mem_calloc(1, sizeof(*r));
    r->queue = queue;
    r->interval_ms = lease_ms / 2 ? lease_ms / 2 : 1;
    uv_timer_init(loop, &r->timer);
    r->timer.data = r;
    return r;
}

static void reaper_on_reaped(void *arg, long long count) {
    reaper_t *r = arg;
    r->running = false;
    if (count > 0) {
        char n[24];
        snprintf(n, sizeof(n), "%lld", count);
        log_warn("requeued jobs of workers whose lease expired", "jobs", n);
        r->requeued += (uint64_t)count;
    }
}

static void reaper_on_timer(uv_timer_t *t) {
    reaper_t *r = t->data;
    if (r->running || !queue_ready(r->queue)) return;
    r->running = true;
    queue_reap(r->queue, reaper_on_reaped, r);
}

void reaper_start(reaper_t *r) {
    uv_timer_start(&r->timer, reaper_on_timer, r->interval_ms, r->interval_ms);
}

uint64_t reaper_requeued(const reaper_t *r) { return r->requeued; }

static void reaper_on_closed(uv_handle_t *h) {
    reaper_t *r = h->data;
    if (r->closed_cb) r->closed_cb(r->closed_arg);
}

void reaper_close(reaper_t *r, reaper_closed_cb cb, void *arg) {
    r->closed_cb = cb;
    r->closed_arg = arg;
    uv_close((uv_handle_t *)&r->timer, reaper_on_closed);
}

void reaper_free(reaper_t *r) { free(r); }
