/* metrics: the process's counters and gauges, rendered in the Prometheus text
 * format; one table below defines each, so the struct and the text cannot drift.
 *
 * A metrics_t is a snapshot: at scrape time the owner's collect hook pulls every
 * module's own stats into it, then metrics_render writes it out. */
#ifndef MULTIVAC_METRICS_H
#define MULTIVAC_METRICS_H

#include <stdint.h>

#include "util/strbuf.h"

/* X(field, shape, type, name, help), in the order GET /metrics shows them.
 * shape: ONE value, or BY_CLASS (one series per HTTP status class, label
 * class="1xx".."5xx", field indexed by the class digit). type: COUNTER or GAUGE.
 * The names are an interface (dashboards, alerts, tests): keep them. */
#define METRICS_TABLE(X)                                                                           \
    X(http_responses, BY_CLASS, COUNTER, "multivac_http_responses_total",                          \
      "HTTP responses sent, by status class.")                                                     \
    X(data_accepted, ONE, COUNTER, "multivac_data_accepted_total",                                 \
      "POST /multivac/data acknowledged by Redis.")                                                \
    X(data_rejected, ONE, COUNTER, "multivac_data_rejected_total",                                 \
      "POST /multivac/data refused for bad input.")                                                \
    X(data_unavailable, ONE, COUNTER, "multivac_data_unavailable_total",                           \
      "POST /multivac/data answered 503, Redis unavailable.")                                      \
    X(data_throttled, ONE, COUNTER, "multivac_data_throttled_total",                               \
      "POST /multivac/data answered 503, queue full.")                                             \
    X(data_unauthorized, ONE, COUNTER, "multivac_data_unauthorized_total",                         \
      "POST /multivac/data answered 401, no valid write token.")                                   \
    X(http_refused, ONE, COUNTER, "multivac_http_connections_refused_total",                       \
      "Connections closed at once: MULTIVAC_MAX_CONNECTIONS or no descriptors.")                   \
    X(jobs_requeued, ONE, COUNTER, "multivac_jobs_requeued_total",                                 \
      "Jobs of expired workers requeued by this process.")                                         \
    X(jobs_stored, ONE, COUNTER, "multivac_jobs_stored_total",                                     \
      "Jobs stored in MongoDB and acknowledged by this process.")                                  \
    X(worker_failures, ONE, COUNTER, "multivac_worker_failures_total",                             \
      "Failed claim, store or acknowledge attempts.")                                              \
    X(jobs_invalid, ONE, COUNTER, "multivac_jobs_invalid_total",                                   \
      "Queue entries that did not decode as jobs.")                                                \
    X(jobs_dead, ONE, COUNTER, "multivac_jobs_dead_lettered_total",                                \
      "Jobs and entries moved to the dead-letter list by this process.")                           \
    X(store_unavailable, ONE, COUNTER, "multivac_store_unavailable_total",                         \
      "Inserts MongoDB refused as a whole (down, full, no rights): jobs kept.")                    \
    X(http_connections, ONE, GAUGE, "multivac_http_connections", "Open HTTP connections.")         \
    X(answer_known, ONE, GAUGE, "multivac_answer_known", "1 once an answer is known.")             \
    X(redis_ready, ONE, GAUGE, "multivac_redis_ready", "1 while Redis is connected.")              \
    X(mongo_ready, ONE, GAUGE, "multivac_mongo_ready",                                             \
      "1 while MongoDB answers (the last read or store succeeded).")                               \
    X(queue_depth, ONE, GAUGE, "multivac_queue_depth", "Jobs pending in Redis, as last seen.")     \
    X(dead_letters, ONE, GAUGE, "multivac_dead_letters",                                           \
      "Entries of the dead-letter list, as last seen.")

/* HTTP status classes 1xx..5xx; index 0 is unused so the digit indexes. */
#define METRICS_CLASSES 6
#define METRICS_FIELD_ONE(field) uint64_t field;
#define METRICS_FIELD_BY_CLASS(field) uint64_t field[METRICS_CLASSES];
#define METRICS_FIELD(field, shape, type, name, help) METRICS_FIELD_##shape(field)

typedef struct metrics {
    METRICS_TABLE(METRICS_FIELD)
} metrics_t;

/* Appends every family of the table, then multivac_build_info. */
void metrics_render(const metrics_t *m, strbuf_t *out);

#endif
