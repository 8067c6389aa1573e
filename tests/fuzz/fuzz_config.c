/* fuzz_config: config_parse_redis_url and config_parse_listen on the input as
 * a string, and config_load with an environment and argv built from it.
 *
 * Input: the whole input (up to its first NUL) is the URL / address. Then it
 * is cut into lines; each line's first byte picks what the rest becomes:
 * "NAME=rest" for one of the variables below, an argv word, or the raw line
 * as an environment entry (maybe without '='). At most 24 lines.
 *
 * Invariants, abort() on violation: a parse either fails with a one-line
 * message or fills the fields it owns; config_load's error is one non-empty
 * line; on success every string setting is set and numbers are in range. */
#include <mongoc/mongoc.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define MAX_LINES 24

static const char *const vars[] = {
    "MULTIVAC_LISTEN",           "REDIS_URL",
    "MONGO_URL",                 "MONGO_SERVER",
    "MONGO_USERNAME",            "MONGO_PASSWORD",
    "MONGO_DB_NAME",             "MULTIVAC_PREFIX",
    "MULTIVAC_WORKERS",          "MULTIVAC_BATCH",
    "MULTIVAC_MAX_BODY",         "MULTIVAC_ANSWER_REFRESH_MS",
    "MULTIVAC_IDLE_TIMEOUT_MS",  "MULTIVAC_HEADER_TIMEOUT_MS",
    "MULTIVAC_BODY_TIMEOUT_MS",  "MULTIVAC_MAX_CONNECTIONS",
    "MULTIVAC_MAX_WAITERS",      "MULTIVAC_INFLIGHT_BYTES",
    "MULTIVAC_WRITE_TOKENS_FILE", "MULTIVAC_QUEUE_MAX",
    "MULTIVAC_LEASE_MS",         "MULTIVAC_MAX_ATTEMPTS",
    "MULTIVAC_SHUTDOWN_TIMEOUT", "MULTIVAC_SHUTDOWN_DRAIN_MS",
    "MULTIVAC_LOG_LEVEL",
};
#define NVARS (sizeof(vars) / sizeof(vars[0]))
/* Selectors past the variables: an argv word, or a raw environment entry. */
#define SEL_ARGV NVARS
#define SEL_RAW (NVARS + 1)
#define NSEL (NVARS + 2)

static FILE *sink;

static void fail(const char *what, const char *err) {
    fprintf(stderr, "fuzz_config: invariant violated: %s (err: %s)\n", what, err ? err : "");
    abort();
}

static void quiet_mongoc(mongoc_log_level_t level, const char *domain, const char *message,
                         void *arg) {
    (void)level;
    (void)domain;
    (void)message;
    (void)arg;
}

int LLVMFuzzerInitialize(int *argc, char ***argv) {
    (void)argc;
    (void)argv;
    mongoc_init();
    mongoc_log_set_handler(quiet_mongoc, NULL);
    sink = fopen("/dev/null", "w");
    if (!sink) abort();
    return 0;
}

static void check_err(int rc, const char *err) {
    if (rc != 0 && (err[0] == '\0' || strchr(err, '\n'))) fail("error is not one line", err);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    char *s = malloc(size + 1);
    if (!s) abort();
    memcpy(s, data, size);
    s[size] = '\0';

    char err[256];
    config_t cfg;

    memset(&cfg, 0, sizeof(cfg));
    err[0] = '\0';
    int rc = config_parse_redis_url(&cfg, s, err, sizeof(err));
    check_err(rc, err);
    if (rc == 0 && (!cfg.redis_host || !cfg.redis_url || cfg.redis_port < 1 ||
                    cfg.redis_port > 65535 || cfg.redis_db < 0))
        fail("redis url accepted with bad fields", s);
    config_free(&cfg);

    memset(&cfg, 0, sizeof(cfg));
    err[0] = '\0';
    rc = config_parse_listen(&cfg, s, err, sizeof(err));
    check_err(rc, err);
    if (rc == 0 && (!cfg.listen_host || cfg.listen_port < 0 || cfg.listen_port > 65535))
        fail("listen address accepted with bad fields", s);
    config_free(&cfg);

    /* Environment and argv from the lines. */
    char *env[MAX_LINES + 1];
    char *argv[MAX_LINES + 2];
    int nenv = 0, argc = 0;
    argv[argc++] = "multivac";
    size_t pos = 0;
    for (int line = 0; line < MAX_LINES && pos < size; line++) {
        const char *start = (const char *)data + pos;
        const char *nl = memchr(start, '\n', size - pos);
        size_t len = nl ? (size_t)(nl - start) : size - pos;
        pos += len + (nl ? 1 : 0);
        if (len == 0) continue;
        size_t sel = (unsigned char)start[0] % NSEL;
        const char *val = start + 1;
        size_t vlen = len - 1;
        char *item;
        if (sel < NVARS) {
            size_t klen = strlen(vars[sel]);
            item = malloc(klen + 1 + vlen + 1);
            if (!item) abort();
            memcpy(item, vars[sel], klen);
            item[klen] = '=';
            memcpy(item + klen + 1, val, vlen);
            item[klen + 1 + vlen] = '\0';
        } else {
            item = malloc(vlen + 1);
            if (!item) abort();
            memcpy(item, val, vlen);
            item[vlen] = '\0';
        }
        if (sel == SEL_ARGV)
            argv[argc++] = item;
        else
            env[nenv++] = item;
    }
    env[nenv] = NULL;
    argv[argc] = NULL;

    err[0] = '\0';
    config_status_t st = config_load(&cfg, argc, argv, env, sink, err, sizeof(err));
    if (st == CONFIG_INVALID) {
        check_err(1, err);
    } else if (st == CONFIG_OK) {
        if (!cfg.listen_host || !cfg.redis_host || !cfg.redis_url || !cfg.mongo_url ||
            !cfg.mongo_db || !cfg.prefix)
            fail("config_load OK with a string setting unset", err);
        if (cfg.listen_port < 0 || cfg.listen_port > 65535 || cfg.redis_port < 1 ||
            cfg.redis_port > 65535 || cfg.workers < 1 || cfg.workers > 64 || cfg.batch < 1 ||
            cfg.max_body < 1 || cfg.max_connections < 1 || cfg.inflight_bytes < 65536)
            fail("config_load OK with a number out of range", err);
    } else if (st != CONFIG_EXIT) {
        fail("config_load: undocumented status", err);
    }
    config_free(&cfg);

    for (int i = 0; i < nenv; i++)
        free(env[i]);
    for (int i = 1; i < argc; i++)
        free(argv[i]);
    free(s);
    return 0;
}
