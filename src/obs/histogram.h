/* histogram: a Prometheus histogram with fixed latency buckets, in seconds.
 *
 * Observing is a few comparisons and two additions, cheap enough for every
 * request; rendering writes the cumulative `_bucket` lines, `_sum` and
 * `_count` of one series. */
#ifndef MULTIVAC_HISTOGRAM_H
#define MULTIVAC_HISTOGRAM_H

#include <stdint.h>

#include "util/strbuf.h"

/* 0.25 ms to 30 s: a GET answered from memory to a long-poll's whole wait. */
#define HISTOGRAM_BUCKETS 16

typedef struct histogram {
    uint64_t counts[HISTOGRAM_BUCKETS + 1]; /* the last one is +Inf */
    uint64_t count;
    double sum;
} histogram_t;

void histogram_observe(histogram_t *h, double seconds);
/* Adds `from`'s observations to `into` (several workers, one series). */
void histogram_merge(histogram_t *into, const histogram_t *from);
/* Writes "# HELP" and "# TYPE" for a family. */
void histogram_render_header(strbuf_t *out, const char *name, const char *help);
/* Writes one series; `labels` is "a=\"x\",b=\"y\"" or "". */
void histogram_render(strbuf_t *out, const char *name, const char *labels, const histogram_t *h);

#endif
