/* log: each line is built whole and written with one write(2), so lines of
 * processes sharing stderr never interleave; registered secrets are masked. */
#include "obs/log.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "util/mem.h"
#include "util/strbuf.h"

#define LOG_SECRETS_MAX 8

static log_level_t log_min_level = LOG_INFO;
static char *log_secrets[LOG_SECRETS_MAX];
static size_t log_secret_count;
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

void log_redact(const char *secret) {
    /* Shorter strings would blank out ordinary words. */
    if (!secret || strlen(secret) < 3 || log_secret_count == LOG_SECRETS_MAX) return;
    log_secrets[log_secret_count++] = mem_strdup(secret);
}

/* Appends `s` as JSON string content, every registered secret in it as ***. */
static void log_append(strbuf_t *sb, const char *s) {
    size_t len = strlen(s), done = 0;
    for (size_t i = 0; i < len && log_secret_count > 0; i++) {
        for (size_t k = 0; k < log_secret_count; k++) {
            size_t n = strlen(log_secrets[k]);
            if (n > len - i || memcmp(s + i, log_secrets[k], n) != 0) continue;
            strbuf_append_json(sb, s + done, i - done);
            strbuf_append_str(sb, "***");
            i += n - 1;
            done = i + 1;
            break;
        }
    }
    strbuf_append_json(sb, s + done, len - done);
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
    log_append(&sb, msg);
    strbuf_append_char(&sb, '"');

    va_list ap;
    va_start(ap, msg);
    for (const char *key; (key = va_arg(ap, const char *)) != NULL;) {
        const char *val = va_arg(ap, const char *);
        if (!val) val = "";
        strbuf_append_str(&sb, ",\"");
        strbuf_append_json(&sb, key, strlen(key));
        strbuf_append_str(&sb, "\":\"");
        log_append(&sb, val);
        strbuf_append_char(&sb, '"');
    }
    va_end(ap);
    strbuf_append_str(&sb, "}\n");

    ssize_t rc = write(STDERR_FILENO, sb.data, sb.len);
    (void)rc;
    strbuf_free(&sb);
}
