/* config: each setting is described once in config_opts (flag, variable,
 * default, range). config_load gives back a complete, validated config_t, or
 * one line naming the setting that is wrong: its source (flag or variable) and
 * its value quoted, secrets masked. Running out of memory aborts (util/mem.h). */
#include "config.h"

#include <mongoc/mongoc.h>
#include <errno.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "util/mem.h"
#include "util/percent.h"
#include "util/strbuf.h"

#ifndef MULTIVAC_VERSION
#define MULTIVAC_VERSION "dev"
#endif

#define REDIS_EXPECTED "expected redis://[:password@]host[:port][/db]"
#define REDISS_EXPECTED "expected rediss://[:password@]host[:port][/db]"
#define LISTEN_EXPECTED "expected host:port, [ipv6]:port, :port or port, with port from 0 to 65535"

/* Every setting that has a flag or a variable, in the order they are checked. */
typedef enum {
    OPT_LISTEN,
    OPT_REDIS_URL,
    OPT_REDIS_CA_FILE,
    OPT_MONGO_URL,
    OPT_MONGO_DB,
    OPT_PREFIX,
    OPT_WORKERS,
    OPT_BATCH,
    OPT_MAX_BODY,
    OPT_ANSWER_REFRESH,
    OPT_IDLE_TIMEOUT,
    OPT_HEADER_TIMEOUT,
    OPT_BODY_TIMEOUT,
    OPT_MAX_CONNECTIONS,
    OPT_REUSEPORT,
    OPT_MAX_WAITERS,
    OPT_INFLIGHT_BYTES,
    OPT_WRITE_TOKENS_FILE,
    OPT_ACCESS_LOG,
    OPT_ADMIN_LISTEN,
    OPT_QUEUE_MAX,
    OPT_LEASE,
    OPT_WORKER_ID,
    OPT_MAX_ATTEMPTS,
    OPT_SHUTDOWN_TIMEOUT,
    OPT_SHUTDOWN_DRAIN,
    OPT_LOG_LEVEL,
    OPT_DURABILITY,
    OPT_DURABILITY_TIMEOUT,
    OPT_COUNT
} config_opt_id_t;

typedef struct config_opt {
    const char *flag; /* NULL when only the environment sets it */
    const char *env;
    const char *metavar;
    const char *def;
    const char *help;
    unsigned long long min, max; /* integer settings only: max > 0 */
} config_opt_t;

static const config_opt_t config_opts[OPT_COUNT] = {
    [OPT_LISTEN] = {"--listen", "MULTIVAC_LISTEN", "ADDR", "0.0.0.0:5000",
                    "HTTP address: host:port, [ipv6]:port, :port or port", 0, 0},
    [OPT_REDIS_URL] = {"--redis-url", "REDIS_URL", "URL", "redis://127.0.0.1:6379/0",
                       "Redis queue: redis://[[user]:password@]host[:port][/db], or rediss:// "
                       "for TLS",
                       0, 0},
    [OPT_REDIS_CA_FILE] = {NULL, "MULTIVAC_REDIS_CA_FILE", NULL, "",
                           "rediss://: PEM file of the CAs the server's certificate must chain to "
                           "(unset: the system's)",
                           0, 0},
    [OPT_MONGO_URL] = {"--mongo-url", "MONGO_URL", "URL", "mongodb://127.0.0.1:27017",
                       "MongoDB connection string (see MONGO_SERVER below)", 0, 0},
    [OPT_MONGO_DB] = {"--mongo-db", "MONGO_DB_NAME", "NAME", "multivac",
                      "database holding the entropy collection", 0, 0},
    [OPT_PREFIX] = {"--prefix", "MULTIVAC_PREFIX", "P",
                    "multivac:", "start of every Redis key and channel", 0, 0},
    [OPT_WORKERS] = {"--workers", "MULTIVAC_WORKERS", "N", "2", "worker tasks per process", 1, 64},
    [OPT_BATCH] = {"--batch", "MULTIVAC_BATCH", "N", "1000", "jobs a worker claims at once", 1,
                   10000},
    [OPT_MAX_BODY] = {"--max-body", "MULTIVAC_MAX_BODY", "BYTES", "1048576",
                      "largest request body accepted", 1, 67108864},
    [OPT_ANSWER_REFRESH] = {NULL, "MULTIVAC_ANSWER_REFRESH_MS", NULL, "5000",
                            "re-read the answer from MongoDB this often", 100, 3600000},
    [OPT_IDLE_TIMEOUT] = {NULL, "MULTIVAC_IDLE_TIMEOUT_MS", NULL, "60000",
                          "close keep-alive connections idle this long", 100, 3600000},
    [OPT_HEADER_TIMEOUT] = {NULL, "MULTIVAC_HEADER_TIMEOUT_MS", NULL, "10000",
                            "request line and headers must arrive within this of their first byte",
                            100, 3600000},
    [OPT_BODY_TIMEOUT] = {NULL, "MULTIVAC_BODY_TIMEOUT_MS", NULL, "10000",
                          "a request body must make progress at least this often", 100, 3600000},
    [OPT_MAX_CONNECTIONS] = {NULL, "MULTIVAC_MAX_CONNECTIONS", NULL, "10000",
                             "open HTTP connections; further ones are closed at once", 1, 10000000},
    [OPT_REUSEPORT] = {NULL, "MULTIVAC_REUSEPORT", NULL, "0",
                       "1: listen with SO_REUSEPORT, so several processes share the port", 0, 1},
    [OPT_MAX_WAITERS] = {NULL, "MULTIVAC_MAX_WAITERS", NULL, "10000",
                         "long-polls held at once; further ones are answered at once", 0, 10000000},
    [OPT_INFLIGHT_BYTES] = {NULL, "MULTIVAC_INFLIGHT_BYTES", NULL, "67108864",
                            "bytes of data accepted but not yet acknowledged by Redis", 65536,
                            68719476736ULL},
    [OPT_WRITE_TOKENS_FILE] =
        {NULL, "MULTIVAC_WRITE_TOKENS_FILE", NULL, "",
         "file of write tokens, one per line: POST needs one (off when unset)", 0, 0},
    [OPT_ACCESS_LOG] = {NULL, "MULTIVAC_ACCESS_LOG", NULL, "1",
                        "1: one JSON line per HTTP response on stderr; 0: none", 0, 1},
    [OPT_ADMIN_LISTEN] = {NULL, "MULTIVAC_ADMIN_LISTEN", NULL, "",
                          "address of /healthz, /readyz and /metrics off the public port "
                          "(worker mode's only port); unset: none",
                          0, 0},
    [OPT_QUEUE_MAX] = {"--queue-max", "MULTIVAC_QUEUE_MAX", "N", "1000000",
                       "queued jobs above which POST answers 503", 1, 1000000000},
    [OPT_LEASE] = {NULL, "MULTIVAC_LEASE_MS", NULL, "15000",
                   "a silent worker's jobs are requeued after this long", 1000, 3600000},
    [OPT_WORKER_ID] = {NULL, "MULTIVAC_WORKER_ID", NULL, "",
                       "stable worker identity (unique among live processes): a restarted "
                       "process takes its own unacknowledged jobs back at once",
                       0, 0},
    [OPT_MAX_ATTEMPTS] = {NULL, "MULTIVAC_MAX_ATTEMPTS", NULL, "5",
                          "store attempts before a rejected job is dead-lettered", 1, 1000},
    [OPT_SHUTDOWN_TIMEOUT] = {NULL, "MULTIVAC_SHUTDOWN_TIMEOUT", NULL, "10",
                              "seconds a graceful stop may take before exiting anyway", 1, 3600},
    [OPT_SHUTDOWN_DRAIN] = {NULL, "MULTIVAC_SHUTDOWN_DRAIN_MS", NULL, "500",
                            "on stop, keep serving (with Connection: close) this long", 0, 60000},
    [OPT_DURABILITY] = {NULL, "MULTIVAC_DURABILITY", NULL, "redis",
                        "when POST answers 200: redis (Redis has the job), local (and its AOF "
                        "is fsynced), replica (and a replica's AOF too; Redis >= 7.2, WAITAOF)",
                        0, 0},
    [OPT_DURABILITY_TIMEOUT] = {NULL, "MULTIVAC_DURABILITY_TIMEOUT_MS", NULL, "1000",
                                "local/replica: longest wait for the fsyncs before POST answers "
                                "503 (queued, durability unknown)",
                                1, 60000},
    [OPT_LOG_LEVEL] = {"--log-level", "MULTIVAC_LOG_LEVEL", "LEVEL", "info",
                       "least severe log level written: debug, info, warn or error", 0, 0},
};

const char *config_strerror(config_status_t status) {
    switch (status) {
    case CONFIG_OK: return "ok";
    case CONFIG_EXIT: return "help or version printed";
    case CONFIG_INVALID: return "invalid configuration";
    }
    return "unknown config status";
}

static void config_errf(char *err, size_t err_len, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void config_errf(char *err, size_t err_len, const char *fmt, ...) {
    if (!err || err_len == 0) return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, err_len, fmt, ap);
    va_end(ap);
}

/* Copies `v` for display inside double quotes, so a value with a newline or
 * a quote cannot break the one-line message. */
static void config_quote(const char *v, char *buf, size_t cap) {
    static const char hex[] = "0123456789abcdef";
    size_t n = 0;
    for (; *v; v++) {
        unsigned char c = (unsigned char)*v;
        size_t need = (c < 0x20 || c == 0x7f) ? 4 : (c == '"' || c == '\\') ? 2 : 1;
        if (n + need + 4 > cap) {
            memcpy(buf + n, "...", 3);
            n += 3;
            break;
        }
        if (need == 4) {
            buf[n++] = '\\';
            buf[n++] = 'x';
            buf[n++] = hex[c >> 4];
            buf[n++] = hex[c & 15];
        } else {
            if (need == 2) buf[n++] = '\\';
            buf[n++] = (char)c;
        }
    }
    buf[n] = '\0';
}

static int config_bad(char *err, size_t err_len, const char *src, const char *value,
                      const char *why) {
    char q[200];
    config_quote(value, q, sizeof(q));
    config_errf(err, err_len, "invalid %s \"%s\": %s", src, q, why);
    return -1;
}

/* Strict decimal: digits only, no sign or spaces, at most `max`. */
static int config_uint(const char *s, size_t len, unsigned long long max, unsigned long long *out) {
    if (len == 0) return -1;
    unsigned long long v = 0;
    for (size_t i = 0; i < len; i++) {
        if (s[i] < '0' || s[i] > '9') return -1;
        v = v * 10 + (unsigned long long)(s[i] - '0');
        if (v > max) return -1;
    }
    *out = v;
    return 0;
}

/* Host names and addresses: no spaces, control bytes or URL delimiters. */
static int config_host_ok(const char *h, size_t len) {
    if (len == 0) return 0;
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)h[i];
        if (c <= 0x20 || c == 0x7f || strchr("/?#@[]", c)) return 0;
    }
    return 1;
}

/* Hands the buffer's bytes over as a C string. Appends fail only for sizes
 * past half the address space, which no setting comes near; running out of
 * memory aborts (util/mem.h). */
static char *config_strbuf_cstr(strbuf_t *sb) {
    strbuf_append_char(sb, '\0');
    char *s = sb->data;
    strbuf_init(sb);
    return s;
}

/* "scheme://user:secret@host" -> "scheme://user:***@host", for logs and errors. */
static char *config_mask_url(const char *url) {
    strbuf_t sb = STRBUF_INIT;
    const char *auth = strstr(url, "://");
    const char *at = auth ? strrchr(auth + 3, '@') : NULL;
    const char *colon = at ? memchr(auth + 3, ':', (size_t)(at - (auth + 3))) : NULL;
    if (!colon || colon + 1 == at) return mem_strdup(url);
    strbuf_append(&sb, url, (size_t)(colon + 1 - url));
    strbuf_append_str(&sb, "***");
    strbuf_append_str(&sb, at);
    return config_strbuf_cstr(&sb);
}

/* Splits "host", "host:port", "[v6]" or "[v6]:port". `host` excludes the
 * brackets and `port` is NULL when absent; validating either is the caller's. */
static int config_split_hostport(const char *s, size_t len, const char **host, size_t *host_len,
                                 const char **port, size_t *port_len) {
    const char *rest;
    if (len > 0 && s[0] == '[') {
        const char *close = memchr(s, ']', len);
        if (!close) return -1;
        *host = s + 1;
        *host_len = (size_t)(close - s - 1);
        rest = close + 1;
        /* Brackets exist to hold colons; an address without one is a typo. */
        if (!memchr(*host, ':', *host_len)) return -1;
    } else {
        const char *colon = memchr(s, ':', len);
        *host = s;
        *host_len = colon ? (size_t)(colon - s) : len;
        rest = s + *host_len;
    }
    size_t rest_len = len - (size_t)(rest - s);
    if (rest_len == 0) {
        *port = NULL;
        *port_len = 0;
        return 0;
    }
    if (rest[0] != ':') return -1;
    *port = rest + 1;
    *port_len = rest_len - 1;
    return 0;
}

static int config_redis(config_t *cfg, const char *url, const char *src, char *err,
                        size_t err_len) {
    char *masked = config_mask_url(url);
    const char *why = REDIS_EXPECTED;
    char *password = NULL, *host = NULL;
    unsigned long long port = 6379, db = 0;

    /* rediss:// is redis:// over TLS, with the same parts. */
    bool tls = strncmp(url, "rediss://", 9) == 0;
    if (tls) why = REDISS_EXPECTED;
    if (!tls && strncmp(url, "redis://", 8) != 0) goto bad;

    const char *p = url + (tls ? 9 : 8);
    /* The last '@' ends the userinfo, so a password may hold an unescaped '@'. */
    const char *at = strrchr(p, '@');
    if (at) {
        const char *colon = memchr(p, ':', (size_t)(at - p));
        if (colon && colon + 1 < at) {
            strbuf_t sb = STRBUF_INIT;
            for (const char *c = colon + 1; c < at; c++) {
                int ch = (unsigned char)*c;
                if (ch == '%') {
                    /* %00 would cut the password short where C strings carry it. */
                    ch = percent_decode(c, (size_t)(at - c));
                    if (ch <= 0) {
                        strbuf_free(&sb);
                        why = "malformed percent-escape in the password";
                        goto bad;
                    }
                    c += 2;
                }
                strbuf_append_char(&sb, (char)ch);
            }
            password = config_strbuf_cstr(&sb);
        }
        p = at + 1;
    }

    const char *slash = strchr(p, '/');
    size_t hp_len = slash ? (size_t)(slash - p) : strlen(p);
    const char *h, *port_s;
    size_t h_len, port_len;
    if (config_split_hostport(p, hp_len, &h, &h_len, &port_s, &port_len) != 0 ||
        !config_host_ok(h, h_len))
        goto bad;
    if (port_s && (config_uint(port_s, port_len, 65535, &port) != 0 || port == 0)) {
        why = "port must be an integer from 1 to 65535";
        goto bad;
    }
    if (slash && slash[1] != '\0' && config_uint(slash + 1, strlen(slash + 1), 1000000, &db) != 0) {
        why = "db must be an integer from 0 to 1000000";
        goto bad;
    }
#ifndef MULTIVAC_HAVE_REDIS_TLS
    if (tls) {
        why = "rediss:// needs a build with hiredis_ssl (hiredis >= 1.0)";
        goto bad;
    }
#endif
    host = mem_strndup(h, h_len);

    free(cfg->redis_url);
    free(cfg->redis_host);
    free(cfg->redis_password);
    cfg->redis_url = masked;
    cfg->redis_host = host;
    cfg->redis_port = (int)port;
    cfg->redis_password = password;
    cfg->redis_db = (int)db;
    cfg->redis_tls = tls;
    return 0;

bad:
    config_bad(err, err_len, src, masked, why);
    free(masked);
    free(password);
    return -1;
}

int config_parse_redis_url(config_t *cfg, const char *url, char *err, size_t err_len) {
    return config_redis(cfg, url, "REDIS_URL", err, err_len);
}

static int config_listen(char **host_out, int *port_out, const char *addr, const char *src,
                         char *err, size_t err_len) {
    size_t len = strlen(addr);
    const char *h = "0.0.0.0";
    size_t h_len = 7;
    unsigned long long port;

    /* A bare number is a port; anything else must name one after a colon. */
    if (config_uint(addr, len, 65535, &port) != 0) {
        const char *sh, *sp;
        size_t shl, spl;
        if (config_split_hostport(addr, len, &sh, &shl, &sp, &spl) != 0 || !sp ||
            (shl > 0 && !config_host_ok(sh, shl)) || config_uint(sp, spl, 65535, &port) != 0)
            return config_bad(err, err_len, src, addr, LISTEN_EXPECTED);
        if (shl > 0) {
            h = sh;
            h_len = shl;
        }
    }

    free(*host_out);
    *host_out = mem_strndup(h, h_len);
    *port_out = (int)port;
    return 0;
}

int config_parse_listen(config_t *cfg, const char *addr, char *err, size_t err_len) {
    return config_listen(&cfg->listen_host, &cfg->listen_port, addr, "MULTIVAC_LISTEN", err,
                         err_len);
}

/* Looks a variable up in `env` ("KEY=VALUE" strings) or the process environment.
 * An empty value counts as unset: "${VAR}" in a compose file or .env template
 * yields an empty string when the operator set nothing. */
static const char *config_getenv(char *const *env, const char *key) {
    const char *v = NULL;
    if (!env) {
        v = getenv(key);
    } else {
        size_t klen = strlen(key);
        for (; *env; env++) {
            if (strncmp(*env, key, klen) == 0 && (*env)[klen] == '=') {
                v = *env + klen + 1;
                break;
            }
        }
    }
    return v && *v ? v : NULL;
}

static void config_append_pct(strbuf_t *sb, const char *s) {
    static const char hex[] = "0123456789ABCDEF";
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        char esc[3] = {'%', hex[c >> 4], hex[c & 15]};
        if (percent_unreserved(c)) {
            strbuf_append_char(sb, (char)c);
        } else {
            strbuf_append(sb, esc, 3);
        }
    }
}

/* The original's settings: MONGO_SERVER is a host, host:port or a whole URI;
 * an empty MONGO_PASSWORD means no authentication at all. */
static int config_mongo_from_server(char **url, const char *server, char *const *env, char *err,
                                    size_t err_len) {
    if (strncmp(server, "mongodb://", 10) == 0 || strncmp(server, "mongodb+srv://", 14) == 0) {
        *url = mem_strdup(server);
        return 0;
    }
    const char *user = config_getenv(env, "MONGO_USERNAME");
    const char *pass = config_getenv(env, "MONGO_PASSWORD");
    if (pass && !user) {
        config_errf(err, err_len, "invalid MONGO_USERNAME: it must be set when MONGO_PASSWORD is");
        return -1;
    }
    strbuf_t sb = STRBUF_INIT;
    strbuf_append_str(&sb, "mongodb://");
    if (pass) {
        config_append_pct(&sb, user);
        strbuf_append_char(&sb, ':');
        config_append_pct(&sb, pass);
        strbuf_append_char(&sb, '@');
    }
    strbuf_append_str(&sb, server);
    *url = config_strbuf_cstr(&sb);
    return 0;
}

/* An '@' in a password must be written %40: unescaped, the URL splits at the
 * wrong '@' and a piece of the password becomes a host name that the driver
 * then logs. */
static bool config_userinfo_ambiguous(const char *url) {
    const char *auth = strstr(url, "://");
    if (!auth) return false;
    auth += 3;
    size_t end = strcspn(auth, "/?#");
    const char *at = memchr(auth, '@', end);
    return at && memchr(at + 1, '@', end - (size_t)(at + 1 - auth)) != NULL;
}

static int config_mongo_check(const char *url, const char *src, const char *shown, char *err,
                              size_t err_len) {
    if (config_userinfo_ambiguous(url)) {
        config_errf(err, err_len,
                    "invalid %s: its user name or password holds an unescaped '@' "
                    "(write it as %%40)",
                    src);
        return -1;
    }
    bson_error_t e;
    mongoc_uri_t *uri = mongoc_uri_new_with_error(url, &e);
    if (uri) {
        mongoc_uri_destroy(uri);
        return 0;
    }
    char *masked = config_mask_url(shown);
    config_bad(err, err_len, src, masked, e.message);
    free(masked);
    return -1;
}

static int config_mongo_db_ok(const char *s) {
    size_t len = strlen(s);
    if (len == 0 || len > 63) return 0;
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        if (c < 0x20 || c == 0x7f || strchr("/\\. \"$*<>:|?", c)) return 0;
    }
    return 1;
}

static int config_prefix_ok(const char *s) {
    if (!*s) return 0;
    for (; *s; s++)
        if ((unsigned char)*s <= 0x20 || *s == 0x7f) return 0;
    return 1;
}

static int config_log_level(const char *s, log_level_t *out) {
    char lower[8];
    size_t n = strlen(s);
    if (n >= sizeof(lower)) return -1;
    /* Operators often write INFO; the level names are otherwise exact. */
    for (size_t i = 0; i <= n; i++)
        lower[i] = (char)(s[i] >= 'A' && s[i] <= 'Z' ? s[i] + ('a' - 'A') : s[i]);
    return log_level_parse(lower, out);
}

static void config_usage(FILE *out) {
    fprintf(out, "Usage: multivac [serve|runserver|worker] [flags]\n"
                 "       multivac dead-letters [list|requeue] [flags]\n"
                 "\n"
                 "Modes:\n"
                 "  serve       HTTP server and queue workers in one process (the default)\n"
                 "  runserver   HTTP server only\n"
                 "  worker      queue workers only\n"
                 "  dead-letters list     print the jobs that failed to store, one JSON per line\n"
                 "  dead-letters requeue  put them back on the queue\n"
                 "\n"
                 "Settings: a flag (--flag VALUE or --flag=VALUE) overrides its environment\n"
                 "variable; an empty variable counts as unset.\n"
                 "\n");
    for (int i = 0; i < OPT_COUNT; i++) {
        const config_opt_t *o = &config_opts[i];
        char flag[40] = "";
        if (o->flag) snprintf(flag, sizeof(flag), "%s %s", o->flag, o->metavar);
        fprintf(out, "  %-20s %s (default %s)\n", flag, o->env, *o->def ? o->def : "unset");
        if (o->max)
            fprintf(out, "  %-20s   %s, %llu to %llu\n", "", o->help, o->min, o->max);
        else
            fprintf(out, "  %-20s   %s\n", "", o->help);
    }
    fprintf(out,
            "  %-20s %s\n"
            "  %-20s   used when MONGO_URL is unset: host, host:port or a mongodb:// URI;\n"
            "  %-20s   an empty MONGO_PASSWORD means no authentication\n"
            "  -h, --help           print this help and exit\n"
            "  -V, --version        print the version and exit\n",
            "", "MONGO_SERVER, MONGO_USERNAME, MONGO_PASSWORD", "", "");
}

static int config_flag_index(const char *name, size_t len) {
    for (int i = 0; i < OPT_COUNT; i++) {
        const char *f = config_opts[i].flag;
        if (f && strlen(f) == len && memcmp(f, name, len) == 0) return i;
    }
    return -1;
}

/* Reads argv into `flags` (values point into argv). */
static config_status_t config_args(config_t *cfg, int argc, char **argv, const char **flags,
                                   FILE *out, char *err, size_t err_len) {
    int i = 1;
    if (argc > 1 && argv[1][0] != '-') {
        if (strcmp(argv[1], "serve") == 0) {
            cfg->mode = MODE_SERVE;
        } else if (strcmp(argv[1], "runserver") == 0) {
            cfg->mode = MODE_RUNSERVER;
        } else if (strcmp(argv[1], "worker") == 0) {
            cfg->mode = MODE_WORKER;
        } else if (strcmp(argv[1], "dead-letters") == 0) {
            cfg->mode = MODE_DEAD_LETTERS;
            cfg->dead_letters = DEAD_LETTERS_LIST;
            if (argc > 2 && argv[2][0] != '-') {
                if (strcmp(argv[2], "requeue") == 0) {
                    cfg->dead_letters = DEAD_LETTERS_REQUEUE;
                } else if (strcmp(argv[2], "list") != 0) {
                    char q[80];
                    config_quote(argv[2], q, sizeof(q));
                    config_errf(err, err_len,
                                "unknown dead-letters action \"%s\": expected list or requeue", q);
                    return CONFIG_INVALID;
                }
                i = 3;
            }
        } else {
            char q[80];
            config_quote(argv[1], q, sizeof(q));
            config_errf(err, err_len,
                        "unknown mode \"%s\": expected serve, runserver, worker or dead-letters",
                        q);
            return CONFIG_INVALID;
        }
        if (i == 1) i = 2;
    }

    for (; i < argc; i++) {
        const char *a = argv[i];
        char q[80];
        if (strcmp(a, "-h") == 0 || strcmp(a, "--help") == 0) {
            config_usage(out);
            return CONFIG_EXIT;
        }
        if (strcmp(a, "-V") == 0 || strcmp(a, "--version") == 0) {
            fprintf(out, "multivac %s\n", MULTIVAC_VERSION);
            return CONFIG_EXIT;
        }
        if (strncmp(a, "--", 2) != 0) {
            config_quote(a, q, sizeof(q));
            config_errf(err, err_len, "unexpected argument \"%s\": the mode comes first", q);
            return CONFIG_INVALID;
        }
        const char *eq = strchr(a, '=');
        size_t nlen = eq ? (size_t)(eq - a) : strlen(a);
        if (eq && ((nlen == 6 && memcmp(a, "--help", 6) == 0) ||
                   (nlen == 9 && memcmp(a, "--version", 9) == 0))) {
            config_errf(err, err_len, "%.*s takes no value", (int)nlen, a);
            return CONFIG_INVALID;
        }
        int opt = config_flag_index(a, nlen);
        if (opt < 0) {
            char name[64];
            snprintf(name, sizeof(name), "%.*s", (int)(nlen < 63 ? nlen : 63), a);
            config_quote(name, q, sizeof(q));
            config_errf(err, err_len, "unknown flag \"%s\" (see multivac --help)", q);
            return CONFIG_INVALID;
        }
        if (!eq && i + 1 >= argc) {
            config_errf(err, err_len, "missing value for %s", config_opts[opt].flag);
            return CONFIG_INVALID;
        }
        flags[opt] = eq ? eq + 1 : argv[++i];
    }
    return CONFIG_OK;
}

static int config_mongo(config_t *cfg, const char *flag, char *const *env, char *err,
                        size_t err_len) {
    const char *url = flag, *src = "--mongo-url", *server = NULL;
    if (!url) {
        url = config_getenv(env, "MONGO_URL");
        src = "MONGO_URL";
    }
    if (!url && (server = config_getenv(env, "MONGO_SERVER"))) {
        char *built = NULL;
        if (config_mongo_from_server(&built, server, env, err, err_len) != 0) return -1;
        free(cfg->mongo_url);
        cfg->mongo_url = built;
        /* Naming MONGO_SERVER rather than the built URL keeps the password out. */
        return config_mongo_check(built, "MONGO_SERVER", server, err, err_len);
    }
    if (!url) url = config_opts[OPT_MONGO_URL].def;
    if (config_mongo_check(url, src, url, err, err_len) != 0) return -1;
    free(cfg->mongo_url);
    cfg->mongo_url = mem_strdup(url);
    return 0;
}

config_status_t config_load(config_t *cfg, int argc, char **argv, char *const *env, FILE *out,
                            char *err, size_t err_len) {
    memset(cfg, 0, sizeof(*cfg));
    cfg->mode = MODE_SERVE;
    if (err && err_len) err[0] = '\0';
    if (!out) out = stdout;

    const char *flags[OPT_COUNT] = {0};
    config_status_t st = config_args(cfg, argc, argv, flags, out, err, err_len);
    if (st != CONFIG_OK) return st;

    const char *val[OPT_COUNT], *src[OPT_COUNT];
    for (int i = 0; i < OPT_COUNT; i++) {
        const char *e = config_getenv(env, config_opts[i].env);
        val[i] = flags[i] ? flags[i] : e ? e : config_opts[i].def;
        src[i] = flags[i] ? config_opts[i].flag : config_opts[i].env;
    }

    if (config_listen(&cfg->listen_host, &cfg->listen_port, val[OPT_LISTEN], src[OPT_LISTEN], err,
                      err_len) != 0 ||
        (*val[OPT_ADMIN_LISTEN] &&
         config_listen(&cfg->admin_host, &cfg->admin_port, val[OPT_ADMIN_LISTEN],
                       src[OPT_ADMIN_LISTEN], err, err_len) != 0) ||
        config_redis(cfg, val[OPT_REDIS_URL], src[OPT_REDIS_URL], err, err_len) != 0 ||
        config_mongo(cfg, flags[OPT_MONGO_URL], env, err, err_len) != 0)
        return CONFIG_INVALID;

    if (*val[OPT_REDIS_CA_FILE]) {
        /* Set for TLS that is not on would leave the operator believing it is. */
        if (!cfg->redis_tls) {
            config_errf(err, err_len,
                        "invalid %s: it applies to rediss:// only, and %s is not rediss://",
                        src[OPT_REDIS_CA_FILE], src[OPT_REDIS_URL]);
            return CONFIG_INVALID;
        }
        FILE *f = fopen(val[OPT_REDIS_CA_FILE], "r");
        if (!f) {
            config_bad(err, err_len, src[OPT_REDIS_CA_FILE], val[OPT_REDIS_CA_FILE],
                       strerror(errno));
            return CONFIG_INVALID;
        }
        fclose(f);
        cfg->redis_ca_file = mem_strdup(val[OPT_REDIS_CA_FILE]);
    }

    if (!config_mongo_db_ok(val[OPT_MONGO_DB])) {
        config_bad(err, err_len, src[OPT_MONGO_DB], val[OPT_MONGO_DB],
                   "expected a database name of 1 to 63 characters without /\\. \"$*<>:|?");
        return CONFIG_INVALID;
    }
    if (!config_prefix_ok(val[OPT_PREFIX])) {
        config_bad(err, err_len, src[OPT_PREFIX], val[OPT_PREFIX],
                   "expected a non-empty prefix without spaces or control characters");
        return CONFIG_INVALID;
    }
    cfg->mongo_db = mem_strdup(val[OPT_MONGO_DB]);
    cfg->prefix = mem_strdup(val[OPT_PREFIX]);
    if (*val[OPT_WRITE_TOKENS_FILE])
        cfg->write_tokens_file = mem_strdup(val[OPT_WRITE_TOKENS_FILE]);

    if (*val[OPT_WORKER_ID]) {
        if (!config_prefix_ok(val[OPT_WORKER_ID])) {
            config_bad(err, err_len, src[OPT_WORKER_ID], val[OPT_WORKER_ID],
                       "expected an identity without spaces or control characters");
            return CONFIG_INVALID;
        }
        cfg->worker_id = mem_strdup(val[OPT_WORKER_ID]);
    }

    unsigned long long num[OPT_COUNT] = {0};
    for (int i = 0; i < OPT_COUNT; i++) {
        const config_opt_t *o = &config_opts[i];
        if (!o->max) continue;
        if (config_uint(val[i], strlen(val[i]), o->max, &num[i]) != 0 || num[i] < o->min) {
            char why[80];
            snprintf(why, sizeof(why), "expected an integer from %llu to %llu", o->min, o->max);
            config_bad(err, err_len, src[i], val[i], why);
            return CONFIG_INVALID;
        }
    }
    cfg->workers = (int)num[OPT_WORKERS];
    cfg->batch = (int)num[OPT_BATCH];
    cfg->max_body = (size_t)num[OPT_MAX_BODY];
    cfg->answer_refresh_ms = (int)num[OPT_ANSWER_REFRESH];
    cfg->idle_timeout_ms = (int)num[OPT_IDLE_TIMEOUT];
    cfg->header_timeout_ms = (int)num[OPT_HEADER_TIMEOUT];
    cfg->body_timeout_ms = (int)num[OPT_BODY_TIMEOUT];
    cfg->max_connections = (size_t)num[OPT_MAX_CONNECTIONS];
    cfg->reuseport = num[OPT_REUSEPORT] != 0;
    cfg->max_waiters = (size_t)num[OPT_MAX_WAITERS];
    cfg->inflight_bytes = (size_t)num[OPT_INFLIGHT_BYTES];
    cfg->access_log = num[OPT_ACCESS_LOG] == 1;
    cfg->queue_max = (uint64_t)num[OPT_QUEUE_MAX];
    cfg->lease_ms = (int)num[OPT_LEASE];
    cfg->max_attempts = (int)num[OPT_MAX_ATTEMPTS];
    cfg->shutdown_timeout_ms = (int)num[OPT_SHUTDOWN_TIMEOUT] * 1000;
    cfg->shutdown_drain_ms = (int)num[OPT_SHUTDOWN_DRAIN];

    cfg->durability_timeout_ms = (int)num[OPT_DURABILITY_TIMEOUT];
    static const char *const durability_names[] = {"redis", "local", "replica"};
    cfg->durability = (config_durability_t)-1;
    for (int d = 0; d < 3; d++)
        if (strcasecmp(val[OPT_DURABILITY], durability_names[d]) == 0)
            cfg->durability = (config_durability_t)d;
    if ((int)cfg->durability < 0) {
        config_bad(err, err_len, src[OPT_DURABILITY], val[OPT_DURABILITY],
                   "expected redis, local or replica");
        return CONFIG_INVALID;
    }

    if (config_log_level(val[OPT_LOG_LEVEL], &cfg->log_level) != 0) {
        config_bad(err, err_len, src[OPT_LOG_LEVEL], val[OPT_LOG_LEVEL],
                   "expected debug, info, warn or error");
        return CONFIG_INVALID;
    }
    return CONFIG_OK;
}

void config_free(config_t *cfg) {
    char **strs[] = {&cfg->listen_host,    &cfg->redis_url,     &cfg->redis_host,
                     &cfg->redis_password, &cfg->redis_ca_file, &cfg->mongo_url,
                     &cfg->mongo_db,       &cfg->prefix,        &cfg->write_tokens_file,
                     &cfg->worker_id,      &cfg->admin_host};
    for (size_t i = 0; i < sizeof(strs) / sizeof(strs[0]); i++) {
        free(*strs[i]);
        *strs[i] = NULL;
    }
}
