/* fake: call records, scripted outcomes and deferred answers shared by the
 * fake queue and the fake store (fake.h). */
#include "fake.h"

#include <stdlib.h>
#include <string.h>

#include "util/mem.h"

#define FAKE_SCRIPT_MAX 64

static uv_loop_t *loop;
static uv_timer_t timer;
static fake_op_t *ops; /* outstanding, oldest first */

static struct {
    fake_call_t *calls;
    size_t n, cap;
    fake_outcome_t script[FAKE_SCRIPT_MAX];
    size_t script_head, script_n;
} kinds[FAKE_KINDS];

uv_loop_t *fake_loop(void) { return loop; }

void fake_init(uv_loop_t *l) {
    loop = l;
    uv_timer_init(loop, &timer);
}

void fake_close(void) { uv_close((uv_handle_t *)&timer, NULL); }

void fake_reset(void) {
    if (ops) abort();
    fake_queue_reset();
    fake_store_reset();
    for (int k = 0; k < FAKE_KINDS; k++) {
        for (size_t i = 0; i < kinds[k].n; i++)
            free(kinds[k].calls[i].text);
        free(kinds[k].calls);
        memset(&kinds[k], 0, sizeof(kinds[k]));
    }
}

void fake_script(fake_kind_t kind, fake_outcome_t outcome) {
    if (kinds[kind].script_n == FAKE_SCRIPT_MAX) abort();
    kinds[kind].script[(kinds[kind].script_head + kinds[kind].script_n++) % FAKE_SCRIPT_MAX] =
        outcome;
}

void fake_fail(fake_kind_t kind, int status) {
    fake_script(kind, (fake_outcome_t){.status = status});
}

void fake_hold(fake_kind_t kind) { fake_script(kind, (fake_outcome_t){.hold = true}); }

size_t fake_record(fake_kind_t kind, fake_outcome_t *out) {
    if (kinds[kind].script_n > 0) {
        *out = kinds[kind].script[kinds[kind].script_head];
        kinds[kind].script_head = (kinds[kind].script_head + 1) % FAKE_SCRIPT_MAX;
        kinds[kind].script_n--;
    } else {
        *out = (fake_outcome_t){0};
    }
    if (kinds[kind].n == kinds[kind].cap) {
        kinds[kind].cap = kinds[kind].cap ? 2 * kinds[kind].cap : 16;
        kinds[kind].calls = mem_realloc(kinds[kind].calls, kinds[kind].cap * sizeof(fake_call_t));
    }
    kinds[kind].calls[kinds[kind].n] = (fake_call_t){.at_ms = uv_now(loop)};
    return kinds[kind].n++;
}

size_t fake_calls(fake_kind_t kind) { return kinds[kind].n; }

fake_call_t *fake_call_mut(fake_kind_t kind, size_t i) {
    if (i >= kinds[kind].n) abort();
    return &kinds[kind].calls[i];
}

const fake_call_t *fake_call(fake_kind_t kind, size_t i) { return fake_call_mut(kind, i); }

size_t fake_outstanding(void) {
    size_t n = 0;
    for (const fake_op_t *op = ops; op; op = op->next)
        n++;
    return n;
}

void fake_answered(fake_op_t *op, int status) {
    fake_call_t *c = fake_call_mut(op->kind, op->call);
    c->done = true;
    c->done_ms = uv_now(loop);
    c->status = status;
}

/* Answers every op that may go, in the order they were made. Ops made while
 * answering wait for the next turn of the loop, as replies would. */
static void fake_on_timer(uv_timer_t *t) {
    (void)t;
    fake_op_t *ready = NULL, **ready_tail = &ready;
    for (fake_op_t **p = &ops; *p;) {
        fake_op_t *op = *p;
        if (op->out.hold) {
            p = &op->next;
            continue;
        }
        *p = op->next;
        op->next = NULL;
        *ready_tail = op;
        ready_tail = &op->next;
    }
    while (ready) {
        fake_op_t *op = ready;
        ready = op->next;
        op->answer(op);
    }
}

static void fake_arm(void) { uv_timer_start(&timer, fake_on_timer, 0, 0); }

void fake_defer(fake_op_t *op) {
    if (op->out.sync) {
        op->answer(op);
        return;
    }
    op->next = NULL;
    fake_op_t **p = &ops;
    while (*p)
        p = &(*p)->next;
    *p = op;
    if (!op->out.hold) fake_arm();
}

bool fake_let_go(fake_kind_t kind) {
    for (fake_op_t *op = ops; op; op = op->next) {
        if (op->kind == kind && op->out.hold) {
            op->out.hold = false;
            fake_arm();
            return true;
        }
    }
    return false;
}
