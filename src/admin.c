/* admin: one-shot commands against the queue (dead letters: list, requeue),
 * run on a loop of their own and exiting with a status. */
#include "admin.h"

#include <stdbool.h>
#include <stdio.h>
#include <uv.h>

#include "obs/log.h"
#include "queue/queue.h"

#define ADMIN_CONNECT_TIMEOUT_MS 5000

typedef struct admin {
    const config_t *cfg;
    queue_t *queue;
    uv_timer_t timer; /* the connect timeout */
    bool started;     /* the command was sent, or the timeout gave up */
    int status;
} admin_t;

static void admin_on_queue_closed(void *arg) {
    admin_t *a = arg;
    uv_close((uv_handle_t *)&a->timer, NULL);
}

static void admin_finish(admin_t *a, int status) {
    a->status = status;
    queue_close(a->queue, admin_on_queue_closed, a);
}

static void admin_on_list(void *arg, int status, const queue_item_t *items, size_t n) {
    admin_t *a = arg;
    if (status != QUEUE_OK) {
        fprintf(stderr, "multivac: could not read dead letters from Redis\n");
        admin_finish(a, 1);
        return;
    }
    for (size_t i = 0; i < n; i++)
        printf("%.*s\n", (int)items[i].len, items[i].ptr);
    admin_finish(a, 0);
}

static void admin_on_requeued(void *arg, long long count) {
    admin_t *a = arg;
    if (count < 0) {
        fprintf(stderr, "multivac: could not requeue dead letters\n");
        admin_finish(a, 1);
        return;
    }
    printf("requeued %lld\n", count);
    admin_finish(a, 0);
}

/* The queue is up: run the command once. */
static void admin_on_ready(void *arg) {
    admin_t *a = arg;
    if (a->started) return;
    a->started = true;
    uv_timer_stop(&a->timer);
    if (a->cfg->dead_letters == DEAD_LETTERS_REQUEUE) {
        queue_dead_requeue(a->queue, admin_on_requeued, a);
    } else {
        queue_dead_list(a->queue, admin_on_list, a);
    }
}

static void admin_on_timeout(uv_timer_t *t) {
    admin_t *a = t->data;
    if (a->started) return;
    a->started = true;
    fprintf(stderr, "multivac: Redis at %s unreachable\n", a->cfg->redis_url);
    admin_finish(a, 1);
}

int admin_dead_letters(const config_t *cfg) {
    uv_loop_t loop;
    uv_loop_init(&loop);
    admin_t a = {.cfg = cfg, .status = 1};
    queue_options_t qo = {
        .redis = {cfg->redis_host, cfg->redis_port, cfg->redis_password, cfg->redis_db},
        .redis_tls = cfg->redis_tls,
        .redis_ca_file = cfg->redis_ca_file,
        .prefix = cfg->prefix,
        .lease_ms = (uint64_t)cfg->lease_ms,
        .depth_max = cfg->queue_max,
        .in_flight_max = 1,
    };
    queue_events_t qe = {.on_ready = admin_on_ready, .arg = &a};
    a.queue = queue_new(&loop, &qo, &qe);
    if (!a.queue) {
        uv_loop_close(&loop);
        return 1;
    }
    uv_timer_init(&loop, &a.timer);
    a.timer.data = &a;
    queue_start(a.queue);
    uv_timer_start(&a.timer, admin_on_timeout, ADMIN_CONNECT_TIMEOUT_MS, 0);
    uv_run(&loop, UV_RUN_DEFAULT);
    queue_free(a.queue);
    uv_loop_close(&loop);
    return a.status;
}
