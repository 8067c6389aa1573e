/* closer: a close countdown for an object made of several parts that close
 * asynchronously (libuv handles, a request in flight): `cb` runs exactly once,
 * when the last part is done, and may free the object that embeds the closer.
 *
 * Usage: closer_init(&o->closer, 3, on_closed, o) with the number of parts,
 * then for each part either closer_handle(&o->closer, (uv_handle_t *)&o->timer)
 * (uv_close and count down in its close callback) or closer_done(&o->closer)
 * (a part that is not a handle, e.g. a reply that has arrived, or a handle that
 * was never initialized). A closer counts down exactly `count` parts: one more
 * is a bug and aborts. */
#ifndef MULTIVAC_CLOSER_H
#define MULTIVAC_CLOSER_H

#include <uv.h>

typedef void (*closer_cb)(void *arg);

typedef struct closer {
    unsigned pending; /* parts not closed yet */
    closer_cb cb;
    void *arg;
} closer_t;

void closer_init(closer_t *c, unsigned count, closer_cb cb, void *arg);
/* uv_close()s `h` and counts it down once closed. Takes over h->data: libuv
 * calls nothing of the handle's but its close callback after uv_close
 * (requests on it, such as writes, keep their own req->data). `h` must be
 * initialized and not closing yet. */
void closer_handle(closer_t *c, uv_handle_t *h);
/* Counts down one part that is not a handle (or is already closed). */
void closer_done(closer_t *c);

#endif
