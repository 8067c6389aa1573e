#include "config.h"

#include <mongoc/mongoc.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"

#ifndef MULTIVAC_VERSION
#define MULTIVAC_VERSION "dev"
#endif

#define COUNT(a) ((int)(sizeof(a) / sizeof((a)[0])))
/* argv arrays end with NULL like the real one; argc excludes it. */
#define ARGC(a) (COUNT(a) - 1)

static char err[512];

static config_status_t load(config_t *cfg, int argc, char **argv, char *const *env) {
    err[0] = 'X';
    err[1] = '\0';
    return config_load(cfg, argc, argv, env, stdout, err, sizeof(err));
}

static int has(const char *s, const char *sub) {
    if (!s || !strstr(s, sub)) {
        fprintf(stderr, "  \"%s\" does not contain \"%s\"\n", s ? s : "(null)", sub);
        return 0;
    }
    return 1;
}

static void test_defaults(void) {
    config_t cfg;
    char *argv[] = {"multivac", NULL};
    char *const env[] = {"UNRELATED=1", "MULTIVAC_WORKERS=", NULL};
    CHECK_INT(load(&cfg, ARGC(argv), argv, env), CONFIG_OK);
    CHECK_INT(err[0], '\0');
    CHECK_INT(cfg.mode, MODE_SERVE);
    CHECK(strcmp(cfg.listen_host, "0.0.0.0") == 0);
    CHECK_INT(cfg.listen_port, 5000);
    CHECK(strcmp(cfg.redis_url, "redis://127.0.0.1:6379/0") == 0);
    CHECK(strcmp(cfg.redis_host, "127.0.0.1") == 0);
    CHECK_INT(cfg.redis_port, 6379);
    CHECK(cfg.redis_password == NULL);
    CHECK_INT(cfg.redis_db, 0);
    CHECK(strcmp(cfg.mongo_url, "mongodb://127.0.0.1:27017") == 0);
    CHECK(strcmp(cfg.mongo_db, "multivac") == 0);
    CHECK(strcmp(cfg.prefix, "multivac:") == 0);
    CHECK_INT(cfg.workers, 2);
    CHECK_INT(cfg.batch, 1000);
    CHECK_INT(cfg.max_body, 1048576);
    CHECK_INT(cfg.answer_refresh_ms, 5000);
    CHECK_INT(cfg.idle_timeout_ms, 60000);
    CHECK_INT(cfg.log_level, LOG_INFO);
    config_free(&cfg);
    CHECK(cfg.listen_host == NULL && cfg.prefix == NULL && cfg.mongo_url == NULL);
    config_free(&cfg); /* twice is harmless */

    /* argc 0 is like no arguments. */
    char *const none[] = {NULL};
    CHECK_INT(load(&cfg, 0, NULL, none), CONFIG_OK);
    CHECK_INT(cfg.workers, 2);
    config_free(&cfg);

    config_t zero;
    memset(&zero, 0, sizeof(zero));
    config_free(&zero);
}

static void test_env_and_flags(void) {
    config_t cfg;
    char *const env[] = {
        "MULTIVAC_LISTEN=127.0.0.1:8080",
        "REDIS_URL=redis://:s3cret@redis.local:6380/2",
        "MONGO_URL=mongodb://db.local:27018/?appname=x",
        "MONGO_DB_NAME=other",
        "MULTIVAC_PREFIX=mv{1}:",
        "MULTIVAC_WORKERS=8",
        "MULTIVAC_BATCH=1000",
        "MULTIVAC_MAX_BODY=67108864",
        "MULTIVAC_ANSWER_REFRESH_MS=100",
        "MULTIVAC_IDLE_TIMEOUT_MS=3600000",
        "MULTIVAC_LOG_LEVEL=WARN",
        NULL,
    };
    char *argv[] = {"multivac", "worker", NULL};
    CHECK_INT(load(&cfg, ARGC(argv), argv, env), CONFIG_OK);
    CHECK_INT(cfg.mode, MODE_WORKER);
    CHECK(strcmp(cfg.listen_host, "127.0.0.1") == 0);
    CHECK_INT(cfg.listen_port, 8080);
    CHECK(strcmp(cfg.redis_host, "redis.local") == 0);
    CHECK_INT(cfg.redis_port, 6380);
    CHECK(cfg.redis_password && strcmp(cfg.redis_password, "s3cret") == 0);
    CHECK_INT(cfg.redis_db, 2);
    /* The password never appears in the URL kept for logs. */
    CHECK(strcmp(cfg.redis_url, "redis://:***@redis.local:6380/2") == 0);
    CHECK(strcmp(cfg.mongo_url, "mongodb://db.local:27018/?appname=x") == 0);
    CHECK(strcmp(cfg.mongo_db, "other") == 0);
    CHECK(strcmp(cfg.prefix, "mv{1}:") == 0);
    CHECK_INT(cfg.workers, 8);
    CHECK_INT(cfg.batch, 1000);
    CHECK_INT(cfg.max_body, 67108864);
    CHECK_INT(cfg.answer_refresh_ms, 100);
    CHECK_INT(cfg.idle_timeout_ms, 3600000);
    CHECK_INT(cfg.log_level, LOG_WARN);
    config_free(&cfg);

    /* Flags beat the environment, in both spellings. */
    char *flags[] = {"multivac",
                     "runserver",
                     "--listen",
                     ":9000",
                     "--redis-url=redis://r:1/3",
                     "--mongo-url",
                     "mongodb://m1,m2/?replicaSet=rs",
                     "--mongo-db=flagdb",
                     "--prefix",
                     "p:",
                     "--workers=64",
                     "--batch",
                     "1",
                     "--max-body=1",
                     "--log-level",
                     "debug",
                     "--workers",
                     "3",
                     NULL};
    CHECK_INT(load(&cfg, ARGC(flags), flags, env), CONFIG_OK);
    CHECK_INT(cfg.mode, MODE_RUNSERVER);
    CHECK(strcmp(cfg.listen_host, "0.0.0.0") == 0);
    CHECK_INT(cfg.listen_port, 9000);
    CHECK(strcmp(cfg.redis_host, "r") == 0);
    CHECK_INT(cfg.redis_port, 1);
    CHECK_INT(cfg.redis_db, 3);
    CHECK(cfg.redis_password == NULL);
    CHECK(strcmp(cfg.mongo_url, "mongodb://m1,m2/?replicaSet=rs") == 0);
    CHECK(strcmp(cfg.mongo_db, "flagdb") == 0);
    CHECK(strcmp(cfg.prefix, "p:") == 0);
    CHECK_INT(cfg.workers, 3); /* the last occurrence wins */
    CHECK_INT(cfg.batch, 1);
    CHECK_INT(cfg.max_body, 1);
    CHECK_INT(cfg.log_level, LOG_DEBUG);
    /* Settings without a flag still come from the environment. */
    CHECK_INT(cfg.answer_refresh_ms, 100);
    config_free(&cfg);

    char *serve[] = {"multivac", "serve", "--workers", "5", NULL};
    CHECK_INT(load(&cfg, ARGC(serve), serve, env), CONFIG_OK);
    CHECK_INT(cfg.mode, MODE_SERVE);
    CHECK_INT(cfg.workers, 5);
    config_free(&cfg);

    /* A flag value may itself start with "--" when given with '='. */
    char *eqdash[] = {"multivac", "--prefix=--x", NULL};
    CHECK_INT(load(&cfg, ARGC(eqdash), eqdash, env), CONFIG_OK);
    CHECK(strcmp(cfg.prefix, "--x") == 0);
    config_free(&cfg);

    /* env == NULL reads the process environment. */
    setenv("MULTIVAC_BATCH", "77", 1);
    setenv("MULTIVAC_WORKERS", "", 1);
    char *plain[] = {"multivac", NULL};
    CHECK_INT(load(&cfg, ARGC(plain), plain, NULL), CONFIG_OK);
    CHECK_INT(cfg.batch, 77);
    CHECK_INT(cfg.workers, 2);
    config_free(&cfg);
    unsetenv("MULTIVAC_BATCH");
    unsetenv("MULTIVAC_WORKERS");
}

static void test_mongo_server(void) {
    config_t cfg;
    char *argv[] = {"multivac", NULL};

    char *const host_only[] = {"MONGO_SERVER=mongo", NULL};
    CHECK_INT(load(&cfg, ARGC(argv), argv, host_only), CONFIG_OK);
    CHECK(strcmp(cfg.mongo_url, "mongodb://mongo") == 0);
    config_free(&cfg);

    char *const with_auth[] = {"MONGO_SERVER=mongo:27018", "MONGO_USERNAME=root",
                               "MONGO_PASSWORD=example", NULL};
    CHECK_INT(load(&cfg, ARGC(argv), argv, with_auth), CONFIG_OK);
    CHECK(strcmp(cfg.mongo_url, "mongodb://root:example@mongo:27018") == 0);
    config_free(&cfg);

    char *const special[] = {"MONGO_SERVER=db", "MONGO_USERNAME=us@r:x",
                             "MONGO_PASSWORD=p@ss:w/o%rd #?+~", NULL};
    CHECK_INT(load(&cfg, ARGC(argv), argv, special), CONFIG_OK);
    CHECK(strcmp(cfg.mongo_url, "mongodb://us%40r%3Ax:p%40ss%3Aw%2Fo%25rd%20%23%3F%2B~@db") == 0);
    config_free(&cfg);

    /* The original's rule: an empty or unset password means no authentication. */
    char *const empty_pw[] = {"MONGO_SERVER=mongo", "MONGO_USERNAME=root", "MONGO_PASSWORD=", NULL};
    CHECK_INT(load(&cfg, ARGC(argv), argv, empty_pw), CONFIG_OK);
    CHECK(strcmp(cfg.mongo_url, "mongodb://mongo") == 0);
    config_free(&cfg);
    char *const no_pw[] = {"MONGO_SERVER=mongo", "MONGO_USERNAME=root", NULL};
    CHECK_INT(load(&cfg, ARGC(argv), argv, no_pw), CONFIG_OK);
    CHECK(strcmp(cfg.mongo_url, "mongodb://mongo") == 0);
    config_free(&cfg);

    /* A whole URI is used as it is. */
    char *const uri[] = {"MONGO_SERVER=mongodb://a:b@h1,h2/?replicaSet=x", "MONGO_PASSWORD=zz",
                         "MONGO_USERNAME=u", NULL};
    CHECK_INT(load(&cfg, ARGC(argv), argv, uri), CONFIG_OK);
    CHECK(strcmp(cfg.mongo_url, "mongodb://a:b@h1,h2/?replicaSet=x") == 0);
    config_free(&cfg);

    /* MONGO_URL, then --mongo-url, take precedence over MONGO_SERVER. */
    char *const both[] = {"MONGO_SERVER=server", "MONGO_URL=mongodb://url", NULL};
    CHECK_INT(load(&cfg, ARGC(argv), argv, both), CONFIG_OK);
    CHECK(strcmp(cfg.mongo_url, "mongodb://url") == 0);
    config_free(&cfg);
    char *flag[] = {"multivac", "--mongo-url", "mongodb://flag", NULL};
    CHECK_INT(load(&cfg, ARGC(flag), flag, both), CONFIG_OK);
    CHECK(strcmp(cfg.mongo_url, "mongodb://flag") == 0);
    config_free(&cfg);

    /* A password without a user cannot be used. */
    char *const pw_only[] = {"MONGO_SERVER=mongo", "MONGO_PASSWORD=secret", NULL};
    CHECK_INT(load(&cfg, ARGC(argv), argv, pw_only), CONFIG_INVALID);
    CHECK(has(err, "MONGO_USERNAME"));
    CHECK(!strstr(err, "secret"));
    config_free(&cfg);

    /* A bad server is reported under its own name, without the password. */
    char *const bad_server[] = {"MONGO_SERVER=mongo:99999", "MONGO_USERNAME=u",
                                "MONGO_PASSWORD=topsecret", NULL};
    CHECK_INT(load(&cfg, ARGC(argv), argv, bad_server), CONFIG_INVALID);
    CHECK(has(err, "invalid MONGO_SERVER \"mongo:99999\": "));
    CHECK(!strstr(err, "topsecret"));
    config_free(&cfg);
}

/* Expects CONFIG_INVALID with a message containing each of `subs`. */
static void check_invalid(char **argv, int argc, char *const *env, const char *sub1,
                          const char *sub2, int line) {
    config_t cfg;
    config_status_t st = load(&cfg, argc, argv, env);
    if (st != CONFIG_INVALID) fprintf(stderr, "line %d: status %d\n", line, (int)st);
    CHECK_INT(st, CONFIG_INVALID);
    CHECK(has(err, sub1));
    if (sub2) CHECK(has(err, sub2));
    CHECK(strchr(err, '\n') == NULL);
    config_free(&cfg);
}

static void check_bad_env(const char *kv, const char *sub1, const char *sub2, int line) {
    char *argv[] = {"multivac", NULL};
    char *const env[] = {(char *)kv, NULL};
    check_invalid(argv, ARGC(argv), env, sub1, sub2, line);
}
#define BAD_ENV(kv, s1, s2) check_bad_env(kv, s1, s2, __LINE__)

static void test_invalid(void) {
    BAD_ENV("MULTIVAC_WORKERS=0",
            "invalid MULTIVAC_WORKERS \"0\": expected an integer from 1 to 64", NULL);
    BAD_ENV("MULTIVAC_WORKERS=65", "MULTIVAC_WORKERS", "1 to 64");
    BAD_ENV("MULTIVAC_WORKERS=-1", "MULTIVAC_WORKERS", NULL);
    BAD_ENV("MULTIVAC_WORKERS=+2", "MULTIVAC_WORKERS", NULL);
    BAD_ENV("MULTIVAC_WORKERS= 2", "MULTIVAC_WORKERS", NULL);
    BAD_ENV("MULTIVAC_WORKERS=2x", "MULTIVAC_WORKERS", NULL);
    BAD_ENV("MULTIVAC_WORKERS=99999999999999999999999", "MULTIVAC_WORKERS", NULL);
    BAD_ENV("MULTIVAC_BATCH=0", "MULTIVAC_BATCH", "1 to 1000");
    BAD_ENV("MULTIVAC_BATCH=10001", "MULTIVAC_BATCH", NULL);
    BAD_ENV("MULTIVAC_MAX_BODY=0", "MULTIVAC_MAX_BODY", "1 to 67108864");
    BAD_ENV("MULTIVAC_MAX_BODY=67108865", "MULTIVAC_MAX_BODY", NULL);
    BAD_ENV("MULTIVAC_MAX_BODY=1e6", "MULTIVAC_MAX_BODY", NULL);
    BAD_ENV("MULTIVAC_ANSWER_REFRESH_MS=99", "MULTIVAC_ANSWER_REFRESH_MS", "100 to 3600000");
    BAD_ENV("MULTIVAC_ANSWER_REFRESH_MS=3600001", "MULTIVAC_ANSWER_REFRESH_MS", NULL);
    BAD_ENV("MULTIVAC_IDLE_TIMEOUT_MS=5", "MULTIVAC_IDLE_TIMEOUT_MS", NULL);
    BAD_ENV("MULTIVAC_LOG_LEVEL=verbose", "MULTIVAC_LOG_LEVEL", "debug, info, warn or error");
    BAD_ENV("MULTIVAC_LOG_LEVEL=warning", "MULTIVAC_LOG_LEVEL", NULL);
    BAD_ENV("MULTIVAC_PREFIX=a b", "MULTIVAC_PREFIX", NULL);
    BAD_ENV("MULTIVAC_PREFIX=a\tb", "invalid MULTIVAC_PREFIX \"a\\x09b\"", NULL);
    BAD_ENV("MULTIVAC_LISTEN=localhost", "MULTIVAC_LISTEN", "expected host:port");
    BAD_ENV("MULTIVAC_LISTEN=:65536", "MULTIVAC_LISTEN", NULL);
    BAD_ENV("MULTIVAC_LISTEN=::1:80", "MULTIVAC_LISTEN", NULL);
    BAD_ENV("MULTIVAC_LISTEN=h:", "MULTIVAC_LISTEN", NULL);
    BAD_ENV("REDIS_URL=foo",
            "invalid REDIS_URL \"foo\": expected redis://[:password@]host[:port][/db]", NULL);
    BAD_ENV("MONGO_URL=foo", "invalid MONGO_URL \"foo\": ", "mongodb://");
    BAD_ENV("MONGO_URL=mongodb://u:p%@h", "MONGO_URL", NULL);
    BAD_ENV("MONGO_DB_NAME=a.b", "MONGO_DB_NAME", NULL);
    BAD_ENV("MONGO_DB_NAME=a/b", "MONGO_DB_NAME", NULL);
    BAD_ENV("MONGO_DB_NAME=0123456789012345678901234567890123456789012345678901234567890123",
            "MONGO_DB_NAME", NULL);

    /* Secrets stay out of error messages. */
    BAD_ENV("REDIS_URL=redis://:hunter2@h:0", "REDIS_URL \"redis://:***@h:0\"", "1 to 65535");
    BAD_ENV("MONGO_URL=mongodb://u:hunter2@h:99999", "MONGO_URL \"mongodb://u:***@h:99999\"", NULL);

    /* A newline in a value cannot split the message. */
    BAD_ENV("MULTIVAC_WORKERS=1\n2", "\"1\\x0a2\"", NULL);

    char *const env[] = {NULL};
    char *a1[] = {"multivac", "--workers", "0", NULL};
    check_invalid(a1, ARGC(a1), env, "invalid --workers \"0\": expected an integer from 1 to 64",
                  NULL, __LINE__);
    char *a2[] = {"multivac", "--workers=", NULL};
    check_invalid(a2, ARGC(a2), env, "--workers", NULL, __LINE__);
    char *a3[] = {"multivac", "--workers", NULL};
    check_invalid(a3, ARGC(a3), env, "missing value for --workers", NULL, __LINE__);
    char *a4[] = {"multivac", "--bogus=1", NULL};
    check_invalid(a4, ARGC(a4), env, "unknown flag \"--bogus\"", NULL, __LINE__);
    char *a5[] = {"multivac", "serverun", NULL};
    check_invalid(a5, ARGC(a5), env, "unknown mode \"serverun\"", NULL, __LINE__);
    char *a6[] = {"multivac", "--workers", "3", "worker", NULL};
    check_invalid(a6, ARGC(a6), env, "unexpected argument \"worker\"", NULL, __LINE__);
    char *a7[] = {"multivac", "worker", "serve", NULL};
    check_invalid(a7, ARGC(a7), env, "unexpected argument \"serve\"", NULL, __LINE__);
    char *a8[] = {"multivac", "-x", NULL};
    check_invalid(a8, ARGC(a8), env, "-x", NULL, __LINE__);
    char *a9[] = {"multivac", "--redis-url", "redis://", NULL};
    check_invalid(a9, ARGC(a9), env, "invalid --redis-url \"redis://\"", NULL, __LINE__);
    char *a10[] = {"multivac", "--listen=[::1]", NULL};
    check_invalid(a10, ARGC(a10), env, "invalid --listen", NULL, __LINE__);
    char *a11[] = {"multivac", "--mongo-url", "http://x", NULL};
    check_invalid(a11, ARGC(a11), env, "invalid --mongo-url", NULL, __LINE__);
    char *a12[] = {"multivac", "--log-level", "loud", NULL};
    check_invalid(a12, ARGC(a12), env, "invalid --log-level \"loud\"", NULL, __LINE__);
    char *a13[] = {"multivac", "--prefix=", NULL};
    check_invalid(a13, ARGC(a13), env, "invalid --prefix \"\"", NULL, __LINE__);
    char *a14[] = {"multivac", "--help=1", NULL};
    check_invalid(a14, ARGC(a14), env, "--help takes no value", NULL, __LINE__);
    char *a15[] = {"multivac", "--answer-refresh-ms", "100", NULL};
    check_invalid(a15, ARGC(a15), env, "unknown flag", NULL, __LINE__);

    /* A bad flag wins over a good variable, and vice versa it is the flag that is named. */
    char *const good_env[] = {"MULTIVAC_BATCH=10", NULL};
    char *a16[] = {"multivac", "--batch", "0", NULL};
    check_invalid(a16, ARGC(a16), good_env, "invalid --batch \"0\"", NULL, __LINE__);
    config_t cfg;
    char *const bad_env[] = {"MULTIVAC_BATCH=0", NULL};
    char *a17[] = {"multivac", "--batch", "10", NULL};
    CHECK_INT(load(&cfg, ARGC(a17), a17, bad_env), CONFIG_OK);
    CHECK_INT(cfg.batch, 10);
    config_free(&cfg);

    /* A NULL or empty err buffer is allowed. */
    CHECK_INT(config_load(&cfg, ARGC(a1), a1, env, stdout, NULL, 0), CONFIG_INVALID);
    config_free(&cfg);
    /* A short buffer truncates, still terminated. */
    char tiny[8];
    CHECK_INT(config_load(&cfg, ARGC(a1), a1, env, stdout, tiny, sizeof(tiny)), CONFIG_INVALID);
    CHECK(strcmp(tiny, "invalid") == 0);
    config_free(&cfg);
}

static void test_help_version(void) {
    char *const env[] = {NULL};
    config_t cfg;
    char *buf = NULL;
    size_t len = 0;
    FILE *out = open_memstream(&buf, &len);
    char *help[] = {"multivac", "--help", NULL};
    CHECK_INT(config_load(&cfg, ARGC(help), help, env, out, err, sizeof(err)), CONFIG_EXIT);
    fclose(out);
    CHECK(has(buf, "Usage: multivac [serve|runserver|worker]"));
    const char *want[] = {"runserver",
                          "--listen ADDR",
                          "MULTIVAC_LISTEN",
                          "0.0.0.0:5000",
                          "--redis-url URL",
                          "redis://127.0.0.1:6379/0",
                          "--mongo-url URL",
                          "MONGO_URL",
                          "--mongo-db NAME",
                          "MONGO_DB_NAME",
                          "--prefix P",
                          "multivac:",
                          "--workers N",
                          "1 to 64",
                          "--batch N",
                          "--max-body BYTES",
                          "1048576",
                          "--log-level LEVEL",
                          "MULTIVAC_ANSWER_REFRESH_MS",
                          "MULTIVAC_IDLE_TIMEOUT_MS",
                          "MONGO_SERVER",
                          "MONGO_PASSWORD",
                          "--version"};
    for (int i = 0; i < COUNT(want); i++)
        CHECK(has(buf, want[i]));
    free(buf);
    config_free(&cfg);

    /* Help comes before later errors, and after a mode. */
    buf = NULL;
    out = open_memstream(&buf, &len);
    char *help2[] = {"multivac", "worker", "-h", "--bogus", NULL};
    CHECK_INT(config_load(&cfg, ARGC(help2), help2, env, out, err, sizeof(err)), CONFIG_EXIT);
    fclose(out);
    CHECK(has(buf, "Usage:"));
    free(buf);
    config_free(&cfg);

    buf = NULL;
    out = open_memstream(&buf, &len);
    char *version[] = {"multivac", "--version", NULL};
    CHECK_INT(config_load(&cfg, ARGC(version), version, env, out, err, sizeof(err)), CONFIG_EXIT);
    fclose(out);
    char expect[64];
    snprintf(expect, sizeof(expect), "multivac %s\n", MULTIVAC_VERSION);
    CHECK(buf && strcmp(buf, expect) == 0);
    free(buf);
    config_free(&cfg);

    buf = NULL;
    out = open_memstream(&buf, &len);
    char *v2[] = {"multivac", "-V", NULL};
    CHECK_INT(config_load(&cfg, ARGC(v2), v2, env, out, err, sizeof(err)), CONFIG_EXIT);
    fclose(out);
    CHECK(buf && strncmp(buf, "multivac ", 9) == 0);
    free(buf);
    config_free(&cfg);
}

static void test_redis_url(void) {
    config_t cfg;
    memset(&cfg, 0, sizeof(cfg));
    char e[256];

    CHECK_INT(config_parse_redis_url(&cfg, "redis://localhost", e, sizeof(e)), 0);
    CHECK(strcmp(cfg.redis_host, "localhost") == 0);
    CHECK_INT(cfg.redis_port, 6379);
    CHECK_INT(cfg.redis_db, 0);
    CHECK(cfg.redis_password == NULL);
    CHECK(strcmp(cfg.redis_url, "redis://localhost") == 0);

    CHECK_INT(config_parse_redis_url(&cfg, "redis://h:7000/15", e, sizeof(e)), 0);
    CHECK(strcmp(cfg.redis_host, "h") == 0);
    CHECK_INT(cfg.redis_port, 7000);
    CHECK_INT(cfg.redis_db, 15);

    CHECK_INT(config_parse_redis_url(&cfg, "redis://[::1]:6390/1", e, sizeof(e)), 0);
    CHECK(strcmp(cfg.redis_host, "::1") == 0);
    CHECK_INT(cfg.redis_port, 6390);
    CHECK_INT(cfg.redis_db, 1);

    CHECK_INT(config_parse_redis_url(&cfg, "redis://[fe80::1]", e, sizeof(e)), 0);
    CHECK(strcmp(cfg.redis_host, "fe80::1") == 0);
    CHECK_INT(cfg.redis_port, 6379);

    CHECK_INT(config_parse_redis_url(&cfg, "redis://user:p%40ss%3a@h/", e, sizeof(e)), 0);
    CHECK(cfg.redis_password && strcmp(cfg.redis_password, "p@ss:") == 0);
    CHECK_INT(cfg.redis_db, 0);
    CHECK(strcmp(cfg.redis_url, "redis://user:***@h/") == 0);

    /* An unescaped '@' in the password: the last '@' ends the userinfo. */
    CHECK_INT(config_parse_redis_url(&cfg, "redis://:a@b@h:1", e, sizeof(e)), 0);
    CHECK(cfg.redis_password && strcmp(cfg.redis_password, "a@b") == 0);
    CHECK(strcmp(cfg.redis_host, "h") == 0);

    /* An empty password, or a user alone, means none. */
    CHECK_INT(config_parse_redis_url(&cfg, "redis://:@h", e, sizeof(e)), 0);
    CHECK(cfg.redis_password == NULL);
    CHECK_INT(config_parse_redis_url(&cfg, "redis://user@h", e, sizeof(e)), 0);
    CHECK(cfg.redis_password == NULL);

    CHECK_INT(config_parse_redis_url(&cfg, "redis://h/1000000", e, sizeof(e)), 0);
    CHECK_INT(cfg.redis_db, 1000000);
    CHECK_INT(config_parse_redis_url(&cfg, "redis://h:65535", e, sizeof(e)), 0);
    CHECK_INT(cfg.redis_port, 65535);

    /* Failures leave the previous values in place. */
    const char *bad[] = {"",
                         "redis:/h",
                         "http://h",
                         "REDIS://h",
                         "redis://",
                         "redis://:pw@",
                         "redis://:6379",
                         "redis://h:",
                         "redis://h:0",
                         "redis://h:65536",
                         "redis://h:-1",
                         "redis://h:12ab",
                         "redis://h/-1",
                         "redis://h/1000001",
                         "redis://h/0/",
                         "redis://h/db",
                         "redis://h?db=1",
                         "redis://::1",
                         "redis://[::1",
                         "redis://[::1]x",
                         "redis://[host]",
                         "redis://h h",
                         "redis://:p%zz@h",
                         "redis://:p%4@h",
                         "redis://:p%00@h",
                         "rediss://h"};
    for (int i = 0; i < COUNT(bad); i++) {
        e[0] = '\0';
        int rc = config_parse_redis_url(&cfg, bad[i], e, sizeof(e));
        if (rc != -1) fprintf(stderr, "accepted \"%s\"\n", bad[i]);
        CHECK_INT(rc, -1);
        CHECK(has(e, "invalid REDIS_URL \""));
    }
    CHECK(strcmp(cfg.redis_host, "h") == 0);
    CHECK_INT(cfg.redis_port, 65535);
    config_free(&cfg);
}

static void test_listen(void) {
    config_t cfg;
    memset(&cfg, 0, sizeof(cfg));
    char e[256];
    CHECK_INT(config_parse_listen(&cfg, "127.0.0.1:80", e, sizeof(e)), 0);
    CHECK(strcmp(cfg.listen_host, "127.0.0.1") == 0);
    CHECK_INT(cfg.listen_port, 80);
    CHECK_INT(config_parse_listen(&cfg, "[::]:5001", e, sizeof(e)), 0);
    CHECK(strcmp(cfg.listen_host, "::") == 0);
    CHECK_INT(cfg.listen_port, 5001);
    CHECK_INT(config_parse_listen(&cfg, "[::1]:0", e, sizeof(e)), 0);
    CHECK(strcmp(cfg.listen_host, "::1") == 0);
    CHECK_INT(cfg.listen_port, 0);
    CHECK_INT(config_parse_listen(&cfg, ":65535", e, sizeof(e)), 0);
    CHECK(strcmp(cfg.listen_host, "0.0.0.0") == 0);
    CHECK_INT(cfg.listen_port, 65535);
    CHECK_INT(config_parse_listen(&cfg, "8080", e, sizeof(e)), 0);
    CHECK(strcmp(cfg.listen_host, "0.0.0.0") == 0);
    CHECK_INT(cfg.listen_port, 8080);
    CHECK_INT(config_parse_listen(&cfg, "localhost:1", e, sizeof(e)), 0);
    CHECK(strcmp(cfg.listen_host, "localhost") == 0);
    CHECK_INT(cfg.listen_port, 1);

    const char *bad[] = {"",
                         "host",
                         "host:",
                         ":",
                         "65536",
                         "-1",
                         "h:-1",
                         "h:1x",
                         "::1",
                         "::1:80",
                         "[::1]",
                         "[::1]80",
                         "[::1:80",
                         "[]:80",
                         "h h:80",
                         "h:80:90",
                         "[h]:80",
                         "h/x:80",
                         "h:99999999999999999999"};
    for (int i = 0; i < COUNT(bad); i++) {
        e[0] = '\0';
        int rc = config_parse_listen(&cfg, bad[i], e, sizeof(e));
        if (rc != -1) fprintf(stderr, "accepted \"%s\"\n", bad[i]);
        CHECK_INT(rc, -1);
        CHECK(has(e, "invalid MULTIVAC_LISTEN \""));
    }
    CHECK(strcmp(cfg.listen_host, "localhost") == 0);
    CHECK_INT(cfg.listen_port, 1);
    config_free(&cfg);
}

static void test_durability_settings(void) {
    config_t cfg;
    char *const defaults[] = {NULL};
    char *plain[] = {"multivac", NULL};
    CHECK_INT(load(&cfg, ARGC(plain), plain, defaults), CONFIG_OK);
    CHECK_INT(cfg.queue_max, 1000000);
    CHECK_INT(cfg.lease_ms, 15000);
    CHECK_INT(cfg.max_attempts, 5);
    CHECK_INT(cfg.shutdown_timeout_ms, 10000);
    CHECK_INT(cfg.shutdown_drain_ms, 500);
    config_free(&cfg);

    char *const env[] = {"MULTIVAC_QUEUE_MAX=10",        "MULTIVAC_LEASE_MS=2000",
                         "MULTIVAC_MAX_ATTEMPTS=3",      "MULTIVAC_SHUTDOWN_TIMEOUT=30",
                         "MULTIVAC_SHUTDOWN_DRAIN_MS=0", NULL};
    char *flags[] = {"multivac", "--queue-max=20", NULL};
    CHECK_INT(load(&cfg, ARGC(flags), flags, env), CONFIG_OK);
    CHECK_INT(cfg.queue_max, 20);
    CHECK_INT(cfg.lease_ms, 2000);
    CHECK_INT(cfg.max_attempts, 3);
    CHECK_INT(cfg.shutdown_timeout_ms, 30000);
    CHECK_INT(cfg.shutdown_drain_ms, 0);
    config_free(&cfg);

    char *const bad_lease[] = {"MULTIVAC_LEASE_MS=999", NULL};
    CHECK_INT(load(&cfg, ARGC(plain), plain, bad_lease), CONFIG_INVALID);
    config_free(&cfg);
    char *const bad_timeout[] = {"MULTIVAC_SHUTDOWN_TIMEOUT=0", NULL};
    CHECK_INT(load(&cfg, ARGC(plain), plain, bad_timeout), CONFIG_INVALID);
    config_free(&cfg);
}

static void test_dead_letters_mode(void) {
    config_t cfg;
    char *const env[] = {NULL};
    char *list[] = {"multivac", "dead-letters", NULL};
    CHECK_INT(load(&cfg, ARGC(list), list, env), CONFIG_OK);
    CHECK_INT(cfg.mode, MODE_DEAD_LETTERS);
    CHECK_INT(cfg.dead_letters, DEAD_LETTERS_LIST);
    config_free(&cfg);

    char *requeue[] = {"multivac", "dead-letters", "requeue", "--prefix", "x:", NULL};
    CHECK_INT(load(&cfg, ARGC(requeue), requeue, env), CONFIG_OK);
    CHECK_INT(cfg.dead_letters, DEAD_LETTERS_REQUEUE);
    CHECK(strcmp(cfg.prefix, "x:") == 0);
    config_free(&cfg);

    char *bad[] = {"multivac", "dead-letters", "purge", NULL};
    CHECK_INT(load(&cfg, ARGC(bad), bad, env), CONFIG_INVALID);
    config_free(&cfg);
}

/* rediss:// has redis://'s parts; a build without hiredis_ssl refuses it. */
static void test_rediss(void) {
    char *argv[] = {"multivac", NULL};
    config_t cfg;
    BAD_ENV("REDIS_URL=rediss://h:99999", "invalid REDIS_URL \"rediss://h:99999\"",
            "port must be an integer from 1 to 65535");
    BAD_ENV("REDIS_URL=rediss://", "expected rediss://[:password@]host[:port][/db]", NULL);
    char *const plain_ca[] = {"REDIS_URL=redis://h", "MULTIVAC_REDIS_CA_FILE=/ca.pem", NULL};
    check_invalid(argv, ARGC(argv), plain_ca, "invalid MULTIVAC_REDIS_CA_FILE",
                  "rediss:// only, and REDIS_URL is not rediss://", __LINE__);
#ifdef MULTIVAC_HAVE_REDIS_TLS
    char *const env[] = {"REDIS_URL=rediss://:p%40ss@redis.example:6380/2", NULL};
    CHECK_INT(load(&cfg, ARGC(argv), argv, env), CONFIG_OK);
    CHECK(cfg.redis_tls);
    CHECK(strcmp(cfg.redis_host, "redis.example") == 0);
    CHECK_INT(cfg.redis_port, 6380);
    CHECK(cfg.redis_password && strcmp(cfg.redis_password, "p@ss") == 0);
    CHECK_INT(cfg.redis_db, 2);
    CHECK(strcmp(cfg.redis_url, "rediss://:***@redis.example:6380/2") == 0);
    CHECK(cfg.redis_ca_file == NULL);
    config_free(&cfg);

    /* The CA file must be readable at start, not at the first connect. */
    char *const ca[] = {"REDIS_URL=rediss://h", "MULTIVAC_REDIS_CA_FILE=" __FILE__, NULL};
    CHECK_INT(load(&cfg, ARGC(argv), argv, ca), CONFIG_OK);
    CHECK(cfg.redis_ca_file && strcmp(cfg.redis_ca_file, __FILE__) == 0);
    CHECK(cfg.redis_tls);
    config_free(&cfg);
    char *const no_ca[] = {"REDIS_URL=rediss://h", "MULTIVAC_REDIS_CA_FILE=/nonexistent/ca.pem",
                           NULL};
    check_invalid(argv, ARGC(argv), no_ca, "invalid MULTIVAC_REDIS_CA_FILE \"/nonexistent/ca.pem\"",
                  "No such file", __LINE__);

    memset(&cfg, 0, sizeof(cfg));
    char e[256];
    CHECK_INT(config_parse_redis_url(&cfg, "rediss://h", e, sizeof(e)), 0);
    CHECK(cfg.redis_tls);
    CHECK_INT(config_parse_redis_url(&cfg, "redis://h", e, sizeof(e)), 0);
    CHECK(!cfg.redis_tls);
    config_free(&cfg);
#else
    /* Refused at start, saying why, the password masked as in every message. */
    BAD_ENV("REDIS_URL=rediss://:hunter2@h:6380/1",
            "invalid REDIS_URL \"rediss://:***@h:6380/1\": "
            "rediss:// needs a build with hiredis_ssl (hiredis >= 1.0)",
            NULL);
    char *flag[] = {"multivac", "--redis-url", "rediss://h", NULL};
    char *const none[] = {NULL};
    check_invalid(flag, ARGC(flag), none, "invalid --redis-url \"rediss://h\"",
                  "needs a build with hiredis_ssl", __LINE__);
    (void)cfg;
#endif
}

static void test_strerror(void) {
    CHECK(strcmp(config_strerror(CONFIG_OK), "ok") == 0);
    CHECK(strcmp(config_strerror(CONFIG_EXIT), "help or version printed") == 0);
    CHECK(strcmp(config_strerror(CONFIG_INVALID), "invalid configuration") == 0);
    CHECK(strcmp(config_strerror((config_status_t)9), "unknown config status") == 0);
    /* main turns these into exit codes: 0, 0 and 2. */
    CHECK_INT(CONFIG_OK, 0);
    CHECK_INT(CONFIG_EXIT, 1);
    CHECK_INT(CONFIG_INVALID, 2);
}

int main(void) {
    test_strerror();
    /* libmongoc logs its own view of a bad URI to stderr; the tests check ours. */
    mongoc_log_set_handler(NULL, NULL);
    test_defaults();
    test_env_and_flags();
    test_durability_settings();
    test_dead_letters_mode();
    test_mongo_server();
    test_invalid();
    test_help_version();
    test_redis_url();
    test_rediss();
    test_listen();
    return CHECK_SUMMARY();
}
