/* histogram: observing is a bucket search and two additions, no allocation;
 * counts are kept per bucket and made cumulative only when rendered. */
#include "obs/histogram.h"

#include <inttypes.h>

static const double histogram_bounds[HISTOGRAM_BUCKETS] = {
    0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30};

void histogram_observe(histogram_t *h, double seconds) {
    int i = 0;
    while (i < HISTOGRAM_BUCKETS && seconds > histogram_bounds[i])
        i++;
    h->counts[i]++;
    h->count++;
    h->sum += seconds;
}

void histogram_merge(histogram_t *into, const histogram_t *from) {
    for (int i = 0; i <= HISTOGRAM_BUCKETS; i++)
        into->counts[i] += from->counts[i];
    into->count += from->count;
    into->sum += from->sum;
}

void histogram_render_header(strbuf_t *out, const char *name, const char *help) {
    strbuf_printf(out, "# HELP %s %s\n# TYPE %s histogram\n", name, help, name);
}

void histogram_render(strbuf_t *out, const char *name, const char *labels, const histogram_t *h) {
    const char *sep = labels[0] ? "," : "";
    uint64_t cumulative = 0;
    for (int i = 0; i < HISTOGRAM_BUCKETS; i++) {
        cumulative += h->counts[i];
        strbuf_printf(out, "%s_bucket{%s%sle=\"%g\"} %" PRIu64 "\n", name, labels, sep,
                      histogram_bounds[i], cumulative);
    }
    strbuf_printf(out, "%s_bucket{%s%sle=\"+Inf\"} %" PRIu64 "\n", name, labels, sep, h->count);
    /* No empty braces for a series without labels. */
    const char *open = labels[0] ? "{" : "", *close = labels[0] ? "}" : "";
    strbuf_printf(out, "%s_sum%s%s%s %.6f\n%s_count%s%s%s %" PRIu64 "\n", name, open, labels, close,
                  h->sum, name, open, labels, close, h->count);
}
