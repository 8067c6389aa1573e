/* answer: the answer in memory and its waiters (answer.h); at most one read in
 * flight, and what is asked during it is folded into one more read after it. */
#include "api/answer.h"

#include <stdlib.h>
#include <string.h>

#include "obs/log.h"
#include "util/closer.h"
#include "util/mem.h"

struct answer {
    store_t *store;
    uint64_t refresh_ms;
    uv_timer_t timer;

    bool known;
    char *data;
    size_t len;

    bool reading;
    /* Requests that arrived while a read was in flight: a refresh (or the
     * timer) matters only while no answer is known; a reload always does, as
     * the read in flight may predate what it is about. */
    bool read_again;
    bool reload_again;
    bool logged_failure;
    bool store_ok; /* the last read succeeded */
    list_t waiters;

    bool closing;
    closer_t closer; /* the timer and a read in flight */
};

static void answer_read(answer_t *a, bool reload);

answer_t *answer_new(uv_loop_t *loop, store_t *store, uint64_t refresh_ms) {
    answer_t *a = mem_calloc(1, sizeof(*a));
    a->store = store;
    a->refresh_ms = refresh_ms;
    list_init(&a->waiters);
    uv_timer_init(loop, &a->timer);
    a->timer.data = a;
    return a;
}

static void answer_on_timer(uv_timer_t *t) { answer_read(t->data, false); }

void answer_start(answer_t *a) {
    uv_timer_start(&a->timer, answer_on_timer, a->refresh_ms, a->refresh_ms);
    answer_read(a, false);
}

bool answer_store_ok(const answer_t *a) { return a->store_ok; }

bool answer_get(const answer_t *a, const char **data, size_t *len) {
    if (!a->known) return false;
    *data = a->data;
    *len = a->len;
    return true;
}

static void answer_wake_all(answer_t *a) {
    /* Each callback may cancel or free other waiters' owners; pop one at a time. */
    list_node_t *n;
    while ((n = list_first(&a->waiters))) {
        list_remove(n);
        answer_waiter_t *w = list_entry(n, answer_waiter_t, node);
        w->cb(w);
    }
}

static void answer_on_read(void *arg, int status, const char *err, bool found, const char *data,
                           size_t len) {
    answer_t *a = arg;
    a->reading = false;
    if (a->closing) {
        closer_done(&a->closer);
        return;
    }
    a->store_ok = status == 0;
    if (status != 0) {
        if (!a->logged_failure) log_warn("could not read the answer", "error", err);
        a->logged_failure = true;
    } else {
        if (a->logged_failure) log_info("answer readable again");
        a->logged_failure = false;
        if (!found) {
            a->known = false;
        } else if (!a->known || len != a->len || memcmp(data, a->data, len) != 0) {
            free(a->data);
            a->data = mem_strndup(data, len);
            a->len = len;
            a->known = true;
        }
        if (a->known) answer_wake_all(a);
    }
    bool again = a->reload_again || (a->read_again && !a->known);
    a->read_again = a->reload_again = false;
    if (again) answer_read(a, false);
}

static void answer_read(answer_t *a, bool reload) {
    if (a->closing) return;
    if (a->reading) {
        if (reload) {
            a->reload_again = true;
        } else {
            a->read_again = true;
        }
        return;
    }
    a->reading = true;
    a->read_again = a->reload_again = false;
    store_find_oldest(a->store, answer_on_read, a);
}

void answer_refresh(answer_t *a) {
    if (!a->known) answer_read(a, false);
}

void answer_reload(answer_t *a) { answer_read(a, true); }

bool answer_wait(answer_t *a, answer_waiter_t *w) {
    if (a->closing) return false;
    list_push_front(&a->waiters, &w->node);
    return true;
}

void answer_cancel(answer_t *a, answer_waiter_t *w) {
    (void)a;
    list_remove(&w->node);
}

void answer_close(answer_t *a, answer_closed_cb cb, void *arg) {
    a->closing = true;
    closer_init(&a->closer, 2, cb, arg);
    answer_wake_all(a);
    closer_handle(&a->closer, (uv_handle_t *)&a->timer);
    if (!a->reading) closer_done(&a->closer); /* else when the read returns */
}

void answer_free(answer_t *a) {
    if (!a) return;
    free(a->data);
    free(a);
}
