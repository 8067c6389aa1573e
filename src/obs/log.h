/* log: structured JSON log lines on stderr, one object per line.
 *
 *   {"ts":"2026-11-22T04:41:44.123Z","level":"info","msg":"listening","addr":"0.0.0.0:5000"}
 *
 * Fields after the message are key/value string pairs terminated by NULL, so a
 * caller never formats JSON by hand. An error is logged once, where it is handled. */
#ifndef MULTIVAC_LOG_H
#define MULTIVAC_LOG_H

typedef enum { LOG_DEBUG, LOG_INFO, LOG_WARN, LOG_ERROR } log_level_t;

/* Messages below `min` are dropped. Set once at start-up from MULTIVAC_LOG_LEVEL. */
void log_set_level(log_level_t min);
/* Parses "debug", "info", "warn" or "error"; returns -1 for anything else. */
int log_level_parse(const char *s, log_level_t *out);

/* A secret (a password) that must never reach a log line, whatever message
 * carries it (a library's warning quoting a URL, say): it is written as ***.
 * For start-up, before the loop runs; at most 8 are kept. */
void log_redact(const char *secret);

/* log_kv(LOG_INFO, "listening", "addr", addr, NULL) */
void log_kv(log_level_t level, const char *msg, ...) __attribute__((sentinel));

#define log_info(...) log_kv(LOG_INFO, __VA_ARGS__, (const char *)NULL)
#define log_warn(...) log_kv(LOG_WARN, __VA_ARGS__, (const char *)NULL)
#define log_error(...) log_kv(LOG_ERROR, __VA_ARGS__, (const char *)NULL)
#define log_debug(...) log_kv(LOG_DEBUG, __VA_ARGS__, (const char *)NULL)

#endif
