/* metrics: renders a metrics_t by walking the table of metrics.h. */
#include "obs/metrics.h"

#include <inttypes.h>

#define METRICS_TYPE_COUNTER "counter"
#define METRICS_TYPE_GAUGE "gauge"

static void metrics_header(strbuf_t *out, const char *name, const char *type, const char *help) {
    strbuf_printf(out, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

static void metrics_values_ONE(strbuf_t *out, const char *name, uint64_t value) {
    strbuf_printf(out, "%s %" PRIu64 "\n", name, value);
}

static void metrics_values_BY_CLASS(strbuf_t *out, const char *name, const uint64_t *by_class) {
    for (int c = 1; c < METRICS_CLASSES; c++)
        strbuf_printf(out, "%s{class=\"%dxx\"} %" PRIu64 "\n", name, c, by_class[c]);
}

/* A misspelt type or shape in the table names no macro or function here, so it
 * fails to compile rather than rendering something else. */
#define METRICS_RENDER(field, shape, type, name, help)                                             \
    metrics_header(out, name, METRICS_TYPE_##type, help);                                          \
    metrics_values_##shape(out, name, m->field);

void metrics_render(const metrics_t *m, strbuf_t *out) {
    METRICS_TABLE(METRICS_RENDER)
    strbuf_printf(out,
                  "# HELP multivac_build_info The running version.\n"
                  "# TYPE multivac_build_info gauge\n"
                  "multivac_build_info{version=\"%s\"} 1\n",
                  MULTIVAC_VERSION);
}
