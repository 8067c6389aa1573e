/* fake_queue: the queue_* functions the worker calls, over a model of the
 * Redis lists (fake.h). */
#include <stdlib.h>
#include <string.h>

#include "fake.h"
#include "queue/job.h"
#include "util/mem.h"
#include "util/strbuf.h"

struct queue {
    int unused;
};

struct queue_worker {
    char *id;
    int pending; /* calls not yet answered */
    bool freed;
};

typedef struct list {
    char **items;
    size_t n, cap;
} list_t;

static struct queue the_queue;
static bool ready = true;
static list_t pending, processing, dead;
static uint64_t acked, taken;
static char *worker_id;
static int handles;

static void list_push(list_t *l, char *s) {
    if (l->n == l->cap) {
        l->cap = l->cap ? 2 * l->cap : 16;
        l->items = mem_realloc(l->items, l->cap * sizeof(*l->items));
    }
    l->items[l->n++] = s;
}

static void list_clear(list_t *l) {
    for (size_t i = 0; i < l->n; i++)
        free(l->items[i]);
    l->n = 0;
}

static void list_free(list_t *l) {
    list_clear(l);
    free(l->items);
    *l = (list_t){0};
}

void fake_queue_reset(void) {
    list_free(&pending);
    list_free(&processing);
    list_free(&dead);
    acked = taken = 0;
    ready = true;
    free(worker_id);
    worker_id = NULL;
}

queue_t *fake_queue(void) { return &the_queue; }
void fake_queue_set_ready(bool r) { ready = r; }
void fake_queue_push(const char *entry) { list_push(&pending, mem_strdup(entry)); }
void fake_queue_hold(const char *entry) { list_push(&processing, mem_strdup(entry)); }

void fake_queue_push_job(const char *id, int64_t received_at_ms, const char *data) {
    strbuf_t sb = STRBUF_INIT;
    if (job_encode(id, received_at_ms, data, strlen(data), &sb) != 0) abort();
    list_push(&pending, mem_strndup(sb.data, sb.len));
    strbuf_free(&sb);
}

size_t fake_queue_pending(void) { return pending.n; }
size_t fake_queue_processing(void) { return processing.n; }
size_t fake_queue_dead(void) { return dead.n; }
const char *fake_queue_dead_record(size_t i) { return i < dead.n ? dead.items[i] : ""; }
uint64_t fake_queue_acked(void) { return acked; }
uint64_t fake_queue_taken(void) { return taken; }
const char *fake_queue_worker_id(void) { return worker_id ? worker_id : ""; }
int fake_queue_handles(void) { return handles; }

/* ---- queue.h ---- */

const char *queue_strerror(int status) {
    switch (status) {
    case QUEUE_OK: return "ok";
    case QUEUE_UNAVAILABLE: return "fake: redis unavailable";
    case QUEUE_ERROR: return "fake: redis error";
    case QUEUE_LOST: return "fake: reply lost";
    case QUEUE_FENCED: return "fake: fenced";
    default: return "fake: other";
    }
}

bool queue_ready(const queue_t *q) {
    (void)q;
    return ready;
}

queue_worker_t *queue_worker_new(queue_t *q, const char *id) {
    (void)q;
    queue_worker_t *qw = mem_calloc(1, sizeof(*qw));
    qw->id = mem_strdup(id);
    free(worker_id);
    worker_id = mem_strdup(id);
    handles++;
    return qw;
}

static void qw_unref(queue_worker_t *qw) {
    if (--qw->pending > 0 || !qw->freed) return;
    free(qw->id);
    free(qw);
    handles--;
}

void queue_worker_free(queue_worker_t *qw) {
    if (!qw) return;
    qw->freed = true;
    qw->pending++;
    qw_unref(qw);
}

/* An acknowledgement: the batch in hand is gone from processing. */
static void model_ack(void) {
    acked += processing.n;
    list_clear(&processing);
}

typedef struct qop {
    fake_op_t op;
    queue_worker_t *qw;
    size_t max;
    bool ack;
    queue_claim_cb claim_cb;
    queue_done_cb done_cb;
    void *arg;
    char **records; /* ack_dead: copies */
    size_t nrecords;
} qop_t;

static qop_t *qop_new(queue_worker_t *qw, fake_kind_t kind, void (*answer)(fake_op_t *),
                      void *arg) {
    qop_t *o = mem_calloc(1, sizeof(*o));
    o->op.kind = kind;
    o->op.call = fake_record(kind, &o->op.out);
    o->op.answer = answer;
    o->qw = qw;
    o->arg = arg;
    qw->pending++;
    return o;
}

static void qop_free(qop_t *o) {
    for (size_t i = 0; i < o->nrecords; i++)
        free(o->records[i]);
    free(o->records);
    qw_unref(o->qw);
    free(o);
}

static void claim_answer(fake_op_t *op) {
    qop_t *o = (qop_t *)op;
    int status = op->out.status;
    fake_answered(op, status);
    if (status == QUEUE_FENCED) {
        /* The other process holds the id, and so the processing list. */
        taken += processing.n;
        list_clear(&processing);
    }
    if (status != QUEUE_OK && !op->out.applied) {
        o->claim_cb(o->arg, status, NULL);
        qop_free(o);
        return;
    }
    if (o->ack) model_ack();
    bool held = processing.n > 0;
    if (!held && o->max > 0 && !op->out.empty) {
        size_t take = o->max < pending.n ? o->max : pending.n;
        for (size_t i = 0; i < take; i++)
            list_push(&processing, pending.items[i]);
        if (take > 0)
            memmove(pending.items, pending.items + take, (pending.n - take) * sizeof(char *));
        pending.n -= take;
    }
    size_t n = o->max > 0 && !op->out.empty ? processing.n : 0;
    if (status != QUEUE_OK) { /* applied, but the reply was lost */
        o->claim_cb(o->arg, status, NULL);
        qop_free(o);
        return;
    }
    /* Items live only during the callback: copies, wiped afterwards. */
    queue_item_t *items = mem_calloc(n, sizeof(*items));
    for (size_t i = 0; i < n; i++)
        items[i] = (queue_item_t){mem_strdup(processing.items[i]), strlen(processing.items[i])};
    queue_batch_t batch = {items, n, o->ack, held, pending.n};
    fake_call_mut(FAKE_CLAIM, op->call)->n = n;
    o->claim_cb(o->arg, QUEUE_OK, &batch);
    for (size_t i = 0; i < n; i++) {
        memset((char *)items[i].ptr, '#', items[i].len);
        free((char *)items[i].ptr);
    }
    free(items);
    qop_free(o);
}

void queue_worker_claim(queue_worker_t *qw, size_t max, bool ack, queue_claim_cb cb, void *arg) {
    qop_t *o = qop_new(qw, FAKE_CLAIM, claim_answer, arg);
    o->max = max;
    o->ack = ack;
    o->claim_cb = cb;
    fake_call_t *c = fake_call_mut(FAKE_CLAIM, o->op.call);
    c->max = max;
    c->ack = ack;
    fake_defer(&o->op);
}

static void ack_dead_answer(fake_op_t *op) {
    qop_t *o = (qop_t *)op;
    int status = op->out.status;
    fake_answered(op, status);
    if (status == QUEUE_OK || op->out.applied) {
        /* Applied once, however often it is retried: an empty processing list
         * means an earlier attempt applied it. */
        if (processing.n > 0) {
            for (size_t i = 0; i < o->nrecords; i++) {
                list_push(&dead, o->records[i]);
                o->records[i] = NULL;
            }
        }
        model_ack();
    }
    o->done_cb(o->arg, status);
    qop_free(o);
}

void queue_worker_ack_dead(queue_worker_t *qw, const queue_item_t *records, size_t n,
                           queue_done_cb cb, void *arg) {
    qop_t *o = qop_new(qw, FAKE_ACK_DEAD, ack_dead_answer, arg);
    o->done_cb = cb;
    o->records = mem_calloc(n, sizeof(char *));
    o->nrecords = n;
    strbuf_t text = STRBUF_INIT;
    for (size_t i = 0; i < n; i++) {
        o->records[i] = mem_strndup(records[i].ptr, records[i].len);
        strbuf_append(&text, records[i].ptr, records[i].len);
        strbuf_append_char(&text, '\n');
    }
    fake_call_t *c = fake_call_mut(FAKE_ACK_DEAD, o->op.call);
    c->n = n;
    c->text = mem_strndup(text.data ? text.data : "", text.len);
    strbuf_free(&text);
    fake_defer(&o->op);
}

static void done_answer(fake_op_t *op) {
    qop_t *o = (qop_t *)op;
    fake_answered(op, op->out.status);
    if (op->kind == FAKE_RELEASE && (op->out.status == QUEUE_OK || op->out.applied)) {
        /* Back to the end the next claim takes from, oldest first. */
        for (size_t i = 0; i < pending.n; i++)
            list_push(&processing, pending.items[i]);
        pending.n = 0;
        list_t tmp = pending;
        pending = processing;
        processing = tmp;
    }
    if (o->done_cb) o->done_cb(o->arg, op->out.status);
    qop_free(o);
}

void queue_worker_heartbeat(queue_worker_t *qw, queue_done_cb cb, void *arg) {
    qop_t *o = qop_new(qw, FAKE_HEARTBEAT, done_answer, arg);
    o->done_cb = cb;
    fake_defer(&o->op);
}

void queue_worker_release(queue_worker_t *qw, queue_done_cb cb, void *arg) {
    qop_t *o = qop_new(qw, FAKE_RELEASE, done_answer, arg);
    o->done_cb = cb;
    fake_defer(&o->op);
}
