/* metrics: counters and gauges, rendered in the Prometheus text format.
 *
 * A plain struct of numbers: the modules that own an event increment its field
 * on the loop thread (no atomics needed, one thread), and GET /metrics renders it
 * after the collect hook has refreshed the gauges. */
#ifndef MULTIVAC_METRICS_H
#define MULTIVAC_METRICS_H

#include <stdint.h>

#include "util/strbuf.h"

typedef struct metrics {
    /* counters */
    uint64_t http_responses[6]; /* by status class: [2] = 2xx ... [5] = 5xx */
    uint64_t data_accepted;     /* POSTs acknowledged by Redis */
    uint64_t data_rejected;     /* POSTs refused: bad input */
    uint64_t data_unavailable;  /* POSTs answered 503: Redis unavailable */
    uint64_t data_throttled;    /* POSTs answered 503: queue full (backpressure) */
    uint64_t data_unauthorized; /* POSTs answered 401: no valid write token */
    uint64_t http_refused;      /* connections closed at once: cap or no descriptors */
    uint64_t jobs_requeued;     /* jobs of expired workers returned by this process's reaper */
    uint64_t jobs_stored;       /* by this process's workers */
    uint64_t worker_failures;
    uint64_t jobs_invalid;
    uint64_t jobs_dead;         /* dead-lettered by this process's workers */
    uint64_t store_unavailable; /* inserts the store refused as a whole (an outage) */
    /* gauges, refreshed by the collect hook */
    uint64_t http_connections;
    uint64_t answer_known;
    uint64_t redis_ready;
    uint64_t mongo_ready;
    uint64_t queue_depth;
    uint64_t dead_letters;
} metrics_t;

int metrics_render(const metrics_t *m, strbuf_t *out);

#endif
