/* Unit tests of obs/metrics: the exposition text, byte for byte. Dashboards,
 * alerts and the integration tests read these names, so a change to one must
 * be deliberate: it shows up here. */
#include "obs/metrics.h"

#include <stdlib.h>
#include <string.h>

#include "check.h"

static const char expected[] =
    "# HELP multivac_http_responses_total HTTP responses sent, by status class.\n"
    "# TYPE multivac_http_responses_total counter\n"
    "multivac_http_responses_total{class=\"1xx\"} 101\n"
    "multivac_http_responses_total{class=\"2xx\"} 102\n"
    "multivac_http_responses_total{class=\"3xx\"} 103\n"
    "multivac_http_responses_total{class=\"4xx\"} 104\n"
    "multivac_http_responses_total{class=\"5xx\"} 105\n"
    "# HELP multivac_data_accepted_total POST /multivac/data acknowledged by Redis.\n"
    "# TYPE multivac_data_accepted_total counter\n"
    "multivac_data_accepted_total 106\n"
    "# HELP multivac_data_rejected_total POST /multivac/data refused for bad input.\n"
    "# TYPE multivac_data_rejected_total counter\n"
    "multivac_data_rejected_total 107\n"
    "# HELP multivac_data_unavailable_total POST /multivac/data answered 503, Redis unavailable.\n"
    "# TYPE multivac_data_unavailable_total counter\n"
    "multivac_data_unavailable_total 108\n"
    "# HELP multivac_data_throttled_total POST /multivac/data answered 503, queue full.\n"
    "# TYPE multivac_data_throttled_total counter\n"
    "multivac_data_throttled_total 109\n"
    "# HELP multivac_data_unauthorized_total POST /multivac/data answered 401, no valid write "
    "token.\n"
    "# TYPE multivac_data_unauthorized_total counter\n"
    "multivac_data_unauthorized_total 110\n"
    "# HELP multivac_http_connections_refused_total Connections closed at once: "
    "MULTIVAC_MAX_CONNECTIONS or no descriptors.\n"
    "# TYPE multivac_http_connections_refused_total counter\n"
    "multivac_http_connections_refused_total 111\n"
    "# HELP multivac_jobs_requeued_total Jobs of expired workers requeued by this process.\n"
    "# TYPE multivac_jobs_requeued_total counter\n"
    "multivac_jobs_requeued_total 112\n"
    "# HELP multivac_jobs_stored_total Jobs stored in MongoDB and acknowledged by this process.\n"
    "# TYPE multivac_jobs_stored_total counter\n"
    "multivac_jobs_stored_total 113\n"
    "# HELP multivac_worker_failures_total Failed claim, store or acknowledge attempts.\n"
    "# TYPE multivac_worker_failures_total counter\n"
    "multivac_worker_failures_total 114\n"
    "# HELP multivac_jobs_invalid_total Queue entries that did not decode as jobs.\n"
    "# TYPE multivac_jobs_invalid_total counter\n"
    "multivac_jobs_invalid_total 115\n"
    "# HELP multivac_jobs_dead_lettered_total Jobs and entries moved to the dead-letter list by "
    "this process.\n"
    "# TYPE multivac_jobs_dead_lettered_total counter\n"
    "multivac_jobs_dead_lettered_total 116\n"
    "# HELP multivac_store_unavailable_total Inserts MongoDB refused as a whole (down, full, no "
    "rights): jobs kept.\n"
    "# TYPE multivac_store_unavailable_total counter\n"
    "multivac_store_unavailable_total 117\n"
    "# HELP multivac_http_connections Open HTTP connections.\n"
    "# TYPE multivac_http_connections gauge\n"
    "multivac_http_connections 118\n"
    "# HELP multivac_answer_known 1 once an answer is known.\n"
    "# TYPE multivac_answer_known gauge\n"
    "multivac_answer_known 119\n"
    "# HELP multivac_redis_ready 1 while Redis is connected.\n"
    "# TYPE multivac_redis_ready gauge\n"
    "multivac_redis_ready 120\n"
    "# HELP multivac_mongo_ready 1 while MongoDB answers (the last read or store succeeded).\n"
    "# TYPE multivac_mongo_ready gauge\n"
    "multivac_mongo_ready 121\n"
    "# HELP multivac_queue_depth Jobs pending in Redis, as last seen.\n"
    "# TYPE multivac_queue_depth gauge\n"
    "multivac_queue_depth 122\n"
    "# HELP multivac_dead_letters Entries of the dead-letter list, as last seen.\n"
    "# TYPE multivac_dead_letters gauge\n"
    "multivac_dead_letters 123\n"
    "# HELP multivac_build_info The running version.\n"
    "# TYPE multivac_build_info gauge\n"
    "multivac_build_info{version=\"" MULTIVAC_VERSION "\"} 1\n";

static void test_render(void) {
    metrics_t m;
    memset(&m, 0, sizeof(m));
    /* Distinct values, so a field rendered under another's name shows. */
    m.http_responses[0] = 100; /* no 0xx class: never rendered */
    m.http_responses[1] = 101;
    m.http_responses[2] = 102;
    m.http_responses[3] = 103;
    m.http_responses[4] = 104;
    m.http_responses[5] = 105;
    m.data_accepted = 106;
    m.data_rejected = 107;
    m.data_unavailable = 108;
    m.data_throttled = 109;
    m.data_unauthorized = 110;
    m.http_refused = 111;
    m.jobs_requeued = 112;
    m.jobs_stored = 113;
    m.worker_failures = 114;
    m.jobs_invalid = 115;
    m.jobs_dead = 116;
    m.store_unavailable = 117;
    m.http_connections = 118;
    m.answer_known = 119;
    m.redis_ready = 120;
    m.mongo_ready = 121;
    m.queue_depth = 122;
    m.dead_letters = 123;
    strbuf_t out = STRBUF_INIT;
    metrics_render(&m, &out);
    CHECK_MEM(out.data, out.len, expected);
    strbuf_free(&out);
}

/* Rendering appends: what the caller wrote before stays. */
static void test_appends(void) {
    metrics_t m;
    memset(&m, 0, sizeof(m));
    strbuf_t out = STRBUF_INIT;
    strbuf_append_str(&out, "pre\n");
    metrics_render(&m, &out);
    strbuf_append_char(&out, '\0'); /* for strstr */
    CHECK(out.len > 11 && memcmp(out.data, "pre\n# HELP ", 11) == 0);
    CHECK(strstr(out.data, "\nmultivac_data_accepted_total 0\n") != NULL);
    strbuf_free(&out);
}

int main(void) {
    test_render();
    test_appends();
    return CHECK_SUMMARY();
}
