/* config: every setting of MultiVAC, read once at start from the environment
 * with command-line flags on top, into a validated config_t, or refused with one
 * line saying what is wrong.
 *
 * The variables and flags are how operators run the service: keep them stable.
 * The README's configuration table lists them all. */
#ifndef MULTIVAC_CONFIG_H
#define MULTIVAC_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "obs/log.h"

typedef enum {
    MODE_SERVE,        /* HTTP server and workers in one process */
    MODE_RUNSERVER,    /* HTTP server only */
    MODE_WORKER,       /* workers only */
    MODE_DEAD_LETTERS, /* list or requeue dead-lettered jobs, then exit */
} config_mode_t;

typedef enum { DEAD_LETTERS_LIST, DEAD_LETTERS_REQUEUE } config_dead_letters_t;

/* What a 200 to POST waits for (README, "Durability"). */
typedef enum {
    DURABILITY_REDIS,   /* Redis applied the push */
    DURABILITY_LOCAL,   /* and fsynced it to its AOF (WAITAOF 1 0) */
    DURABILITY_REPLICA, /* and a replica fsynced it too (WAITAOF 1 1) */
} config_durability_t;

typedef struct config {
    config_mode_t mode;
    config_dead_letters_t dead_letters; /* MODE_DEAD_LETTERS: what to do */

    char *listen_host; /* MULTIVAC_LISTEN, host part ("0.0.0.0", "::1") */
    int listen_port;

    char *admin_host; /* MULTIVAC_ADMIN_LISTEN, host part; NULL when unset */
    int admin_port;

    char *redis_url; /* REDIS_URL as given, for logs (password masked) */
    char *redis_host;
    int redis_port;
    char *redis_password; /* NULL when none */
    int redis_db;
    bool redis_tls;      /* rediss://: TLS, the server's certificate verified for redis_host */
    char *redis_ca_file; /* MULTIVAC_REDIS_CA_FILE: CAs for rediss://; NULL: the system's */

    char *mongo_url; /* MONGO_URL, or built from MONGO_SERVER/USERNAME/PASSWORD */
    char *mongo_db;  /* MONGO_DB_NAME */

    char *prefix; /* MULTIVAC_PREFIX: Redis keys and channels start with it */

    int workers;           /* MULTIVAC_WORKERS: worker tasks per process */
    int batch;             /* MULTIVAC_BATCH: jobs claimed per batch */
    size_t max_body;       /* MULTIVAC_MAX_BODY: largest POST body accepted, bytes */
    int answer_refresh_ms; /* MULTIVAC_ANSWER_REFRESH_MS: re-read the answer this often */
    int idle_timeout_ms; /* MULTIVAC_IDLE_TIMEOUT_MS: keep-alive connections idle this long close */
    int header_timeout_ms;   /* MULTIVAC_HEADER_TIMEOUT_MS: request head must arrive within */
    int body_timeout_ms;     /* MULTIVAC_BODY_TIMEOUT_MS: a body must progress this often */
    size_t max_connections;  /* MULTIVAC_MAX_CONNECTIONS: open HTTP connections at most */
    bool reuseport;          /* MULTIVAC_REUSEPORT: SO_REUSEPORT, N processes share a port */
    size_t max_waiters;      /* MULTIVAC_MAX_WAITERS: long-polls held at once */
    size_t inflight_bytes;   /* MULTIVAC_INFLIGHT_BYTES: data sent to Redis, not acknowledged */
    char *write_tokens_file; /* MULTIVAC_WRITE_TOKENS_FILE: NULL when writes are open */
    bool access_log;         /* MULTIVAC_ACCESS_LOG */
    config_durability_t durability; /* MULTIVAC_DURABILITY */
    int durability_timeout_ms;      /* MULTIVAC_DURABILITY_TIMEOUT_MS */
    uint64_t queue_max;             /* MULTIVAC_QUEUE_MAX: backpressure threshold, queued jobs */
    int lease_ms;                   /* MULTIVAC_LEASE_MS: worker lease; expired leases are reaped */
    char *worker_id;                /* MULTIVAC_WORKER_ID: stable worker identity, or NULL */
    int max_attempts;        /* MULTIVAC_MAX_ATTEMPTS: before dead-lettering a rejected job */
    int shutdown_timeout_ms; /* MULTIVAC_SHUTDOWN_TIMEOUT (seconds in the environment) */
    int shutdown_drain_ms;   /* MULTIVAC_SHUTDOWN_DRAIN_MS */
    log_level_t log_level;   /* MULTIVAC_LOG_LEVEL */
} config_t;

typedef enum {
    CONFIG_OK = 0,
    CONFIG_EXIT = 1,    /* --help or --version was printed: exit 0 */
    CONFIG_INVALID = 2, /* message in err: exit 2 */
} config_status_t;

/* A short static description of `status`; `err` says what is invalid. */
const char *config_strerror(config_status_t status);

/* Fills `cfg` from `envp`-style variables (getenv when `env` is NULL) and argv.
 * On CONFIG_INVALID `err` holds one line saying what is wrong. On any status the
 * config must be released with config_free. --help/--version text goes to `out`. */
config_status_t config_load(config_t *cfg, int argc, char **argv, char *const *env, FILE *out,
                            char *err, size_t err_len);
void config_free(config_t *cfg);

/* Parses "redis://[[user]:password@]host[:port][/db]" (or rediss://, TLS,
 * refused by a build without hiredis_ssl) into cfg's redis fields. */
int config_parse_redis_url(config_t *cfg, const char *url, char *err, size_t err_len);
/* Parses "host:port", "[v6]:port", ":port" or "port" into cfg's listen fields. */
int config_parse_listen(config_t *cfg, const char *addr, char *err, size_t err_len);

#endif
