/* closer: counts parts down to zero and calls back once (closer.h). */
#include "util/closer.h"

#include <stdio.h>
#include <stdlib.h>

void closer_init(closer_t *c, unsigned count, closer_cb cb, void *arg) {
    c->pending = count;
    c->cb = cb;
    c->arg = arg;
}

static void closer_on_close(uv_handle_t *h) { closer_done(h->data); }

void closer_handle(closer_t *c, uv_handle_t *h) {
    h->data = c;
    uv_close(h, closer_on_close);
}

void closer_done(closer_t *c) {
    if (c->pending == 0) {
        /* A part counted twice: the object may already be gone. */
        fprintf(stderr, "multivac: closer counted down past zero\n");
        abort();
    }
    if (--c->pending == 0) c->cb(c->arg);
}
