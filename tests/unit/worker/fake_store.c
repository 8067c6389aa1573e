/* fake_store: store_insert over a set of stored ids (fake.h). */
#include <stdlib.h>
#include <string.h>

#include "fake.h"
#include "util/mem.h"
#include "util/strbuf.h"

struct store {
    int unused;
};

static struct store the_store;
static char **ids;
static size_t ids_n, ids_cap, again;

void fake_store_reset(void) {
    for (size_t i = 0; i < ids_n; i++)
        free(ids[i]);
    free(ids);
    ids = NULL;
    ids_n = ids_cap = again = 0;
}

store_t *fake_store(void) { return &the_store; }

int fake_store_has(const char *id) {
    int n = 0;
    for (size_t i = 0; i < ids_n; i++)
        if (strcmp(ids[i], id) == 0) n++;
    return n;
}

size_t fake_store_count(void) { return ids_n; }
size_t fake_store_again(void) { return again; }

static void store_put(const char *id) {
    if (fake_store_has(id)) {
        again++; /* a duplicate _id counts as stored */
        return;
    }
    if (ids_n == ids_cap) {
        ids_cap = ids_cap ? 2 * ids_cap : 16;
        ids = mem_realloc(ids, ids_cap * sizeof(*ids));
    }
    ids[ids_n++] = mem_strdup(id);
}

typedef struct sop {
    fake_op_t op;
    const store_doc_t *docs;
    size_t n;
    store_insert_cb cb;
    void *arg;
} sop_t;

static void ids_of(const store_doc_t *docs, size_t n, strbuf_t *out) {
    for (size_t i = 0; i < n; i++) {
        strbuf_append_str(out, docs[i].id);
        strbuf_append_char(out, ',');
    }
}

static void insert_answer(fake_op_t *op) {
    sop_t *o = (sop_t *)op;
    int status = op->out.status;
    fake_answered(op, status);
    fake_call_t *c = fake_call_mut(FAKE_INSERT, op->call);
    /* The documents must stay valid and unchanged until the answer. */
    strbuf_t now = STRBUF_INIT;
    ids_of(o->docs, o->n, &now);
    c->docs_changed = now.len != strlen(c->text) || (now.len && memcmp(now.data, c->text, now.len));
    strbuf_free(&now);
    if (status == STORE_OK || status == STORE_REJECTED) {
        for (size_t i = 0; i < o->n; i++)
            if (status == STORE_OK || !op->out.rejected[i]) store_put(o->docs[i].id);
    }
    const char *err = status == STORE_OK ? NULL : op->out.err ? op->out.err : "fake: store error";
    o->cb(o->arg, status, err, status == STORE_REJECTED ? op->out.rejected : NULL);
    free(o);
}

void store_insert(store_t *s, const store_doc_t *docs, size_t n, store_insert_cb cb, void *arg) {
    (void)s;
    sop_t *o = mem_calloc(1, sizeof(*o));
    o->op.kind = FAKE_INSERT;
    o->op.call = fake_record(FAKE_INSERT, &o->op.out);
    o->op.answer = insert_answer;
    o->docs = docs;
    o->n = n;
    o->cb = cb;
    o->arg = arg;
    strbuf_t text = STRBUF_INIT;
    ids_of(docs, n, &text);
    fake_call_t *c = fake_call_mut(FAKE_INSERT, o->op.call);
    c->n = n;
    c->text = mem_strndup(text.data ? text.data : "", text.len);
    strbuf_free(&text);
    fake_defer(&o->op);
}
