#include "obs/metrics.h"

#include <inttypes.h>

static int metrics_line(strbuf_t *out, const char *name, const char *type, const char *help,
                        uint64_t value) {
    return strbuf_printf(out, "# HELP %s %s\n# TYPE %s %s\n%s %" PRIu64 "\n", name, help, name,
                         type, name, value);
}

int metrics_render(const metrics_t *m, strbuf_t *out) {
    int rc =
        strbuf_append_str(out, "# HELP multivac_http_responses_total HTTP responses sent, by "
                               "status class.\n# TYPE multivac_http_responses_total counter\n");
    for (int c = 1; c <= 5; c++)
        rc |= strbuf_printf(out, "multivac_http_responses_total{class=\"%dxx\"} %" PRIu64 "\n", c,
                            m->http_responses[c]);
    rc |= metrics_line(out, "multivac_data_accepted_total", "counter",
                       "POST /multivac/data acknowledged by Redis.", m->data_accepted);
    rc |= metrics_line(out, "multivac_data_rejected_total", "counter",
                       "POST /multivac/data refused for bad input.", m->data_rejected);
    rc |= metrics_line(out, "multivac_data_unavailable_total", "counter",
                       "POST /multivac/data answered 503, Redis unavailable.", m->data_unavailable);
    rc |= metrics_line(out, "multivac_data_throttled_total", "counter",
                       "POST /multivac/data answered 503, queue full.", m->data_throttled);
    rc |= metrics_line(out, "multivac_data_unauthorized_total", "counter",
                       "POST /multivac/data answered 401, no valid write token.",
                       m->data_unauthorized);
    rc |= metrics_line(out, "multivac_http_connections_refused_total", "counter",
                       "Connections closed at once: MULTIVAC_MAX_CONNECTIONS or no descriptors.",
                       m->http_refused);
    rc |= metrics_line(out, "multivac_jobs_requeued_total", "counter",
                       "Jobs of expired workers requeued by this process.", m->jobs_requeued);
    rc |= metrics_line(out, "multivac_jobs_stored_total", "counter",
                       "Jobs stored in MongoDB and acknowledged by this process.", m->jobs_stored);
    rc |= metrics_line(out, "multivac_worker_failures_total", "counter",
                       "Failed claim, store or acknowledge attempts.", m->worker_failures);
    rc |= metrics_line(out, "multivac_jobs_invalid_total", "counter",
                       "Queue entries that did not decode as jobs.", m->jobs_invalid);
    rc |= metrics_line(out, "multivac_jobs_dead_lettered_total", "counter",
                       "Jobs and entries moved to the dead-letter list by this process.",
                       m->jobs_dead);
    rc |= metrics_line(out, "multivac_store_unavailable_total", "counter",
                       "Inserts MongoDB refused as a whole (down, full, no rights): jobs kept.",
                       m->store_unavailable);
    rc |= metrics_line(out, "multivac_http_connections", "gauge", "Open HTTP connections.",
                       m->http_connections);
    rc |= metrics_line(out, "multivac_answer_known", "gauge", "1 once an answer is known.",
                       m->answer_known);
    rc |= metrics_line(out, "multivac_redis_ready", "gauge", "1 while Redis is connected.",
                       m->redis_ready);
    rc |=
        metrics_line(out, "multivac_mongo_ready", "gauge",
                     "1 while MongoDB answers (the last read or store succeeded).", m->mongo_ready);
    rc |= metrics_line(out, "multivac_queue_depth", "gauge", "Jobs pending in Redis, as last seen.",
                       m->queue_depth);
    rc |= metrics_line(out, "multivac_dead_letters", "gauge",
                       "Entries of the dead-letter list, as last seen.", m->dead_letters);
    rc |= strbuf_printf(out,
                        "# HELP multivac_build_info The running version.\n"
                        "# TYPE multivac_build_info gauge\n"
                        "multivac_build_info{version=\"%s\"} 1\n",
                        MULTIVAC_VERSION);
    return rc ? -1 : 0;
}
