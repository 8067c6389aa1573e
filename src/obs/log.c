#include "obs/log.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "util/strbuf.h"

static log_level_t log_min_level = LOG_INFO;
static const char *const log_level_names[] = {"debug", "info", "warn", "error"};

void log_set_level(log_level_t min) { log_min_level = min; }

int log_level_parse(const char *s, log_level_t *out) {
    for (int i = LOG_DEBUG; i <= LOG_ERROR; i++) {
        if (strcmp(s, log_level_names[i]) == 0) {
            *out = (log_level_t)i;
            return 0;
        }
    }
    return -1;
}

void log_kv(log_level_t level, const char *msg, ...) {
    if (level < log_min_level) return;

    struct timespec now;
    clock_gettime(CLOCK_REALTIME, &now);
    struct tm tm;
    gmtime_r(&now.tv_sec, &tm);
    char ts[40];
    size_t n = strftime(ts, sizeof(ts), "%Y-%m-%dT%H:%M:%S", &tm);
    snprintf(ts + n, sizeof(ts) - n, ".%03ldZ", now.tv_nsec / 1000000);

    /* Logging is off the request hot path, so a heap buffer is fine; one write(2)
     * per line keeps lines whole when several processes share stderr. */
    strbuf_t sb = STRBUF_INIT;
    strbuf_printf(&sb, "{\"ts\":\"%s\",\"level\":\"%s\",\"msg\":\"", ts, log_level_names[level]);
    strbuf_append_json(&sb, msg, strlen(msg));
    strbuf_append_char(&sb, '"');

    va_list ap;
    va_start(ap, msg);
    for (const char *key; (key = va_arg(ap, const char *)) != NULL;) {
        const char *val = va_arg(ap, const char *);
        if (!val) val = "";
        strbuf_append_str(&sb, ",\"");
        strbuf_append_json(&sb, key, strlen(key));
        strbuf_append_str(&sb, "\":\"");
        strbuf_append_json(&sb, val, strlen(val));
        strbuf_append_char(&sb, '"');
    }
    va_end(ap);
    strbuf_append_str(&sb, "}\n");

    if (sb.data) {
        ssize_t rc = write(STDERR_FILENO, sb.data, sb.len);
        (void)rc;
    }
    strbuf_free(&sb);
}
