/* reaper: returns the jobs of workers that died to the queue.
 *
 * A worker that stops cleanly gives its claimed jobs back itself; one killed
 * with -9, or cut off from Redis for longer than its lease, cannot. Every
 * process that runs workers also runs a reaper: every half lease it asks Redis
 * (one atomic script) to requeue the processing lists of workers whose lease
 * has expired. Requeued jobs may already be in MongoDB; storing them again finds
 * them there, so they are stored once. */
#ifndef MULTIVAC_REAPER_H
#define MULTIVAC_REAPER_H

#include <stdint.h>
#include <uv.h>

#include "queue/queue.h"

typedef struct reaper reaper_t;
typedef void (*reaper_closed_cb)(void *arg);

/* Never NULL: running out of memory aborts (util/mem.h). */
reaper_t *reaper_new(uv_loop_t *loop, queue_t *queue, uint64_t lease_ms);
void reaper_start(reaper_t *r);
/* Jobs requeued so far. */
uint64_t reaper_requeued(const reaper_t *r);
void reaper_close(reaper_t *r, reaper_closed_cb cb, void *arg);
/* After `cb`, and only once the queue has closed (a reap may be in flight). */
void reaper_free(reaper_t *r);

#endif
