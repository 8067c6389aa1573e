/* redis: one asynchronous Redis connection that keeps itself connected.
 *
 * hiredis does the protocol, its libuv adapter the I/O. On top this adds what a
 * service needs: host names resolved off the loop (uv_getaddrinfo; hiredis would
 * block in getaddrinfo), TLS if asked (hiredis_ssl; the server's certificate
 * verified, its name included), AUTH and SELECT before the connection counts as
 * ready, a bound on connect and handshake time, and reconnection with capped
 * exponential backoff whenever the connection is lost. */
#ifndef MULTIVAC_REDIS_H
#define MULTIVAC_REDIS_H

#include <stdbool.h>
#include <stddef.h>
#include <hiredis/async.h>
#include <hiredis/hiredis.h>
#include <uv.h>

typedef struct redis_conn redis_conn_t;

typedef struct redis_conn_options {
    const char *name; /* for logs: "commands", "subscriber" */
    const char *host;
    int port;
    const char *password; /* NULL: no AUTH */
    int db;
    /* TLS: the server's certificate must chain to a CA of tls_ca_file (PEM;
     * NULL: the system's store) and name `host` (SNI is sent for a host name).
     * In a build without MULTIVAC_HAVE_REDIS_TLS every attempt fails, logged. */
    bool tls;
    const char *tls_ca_file;
    /* Ping every 500 ms and drop the connection when a ping has waited over
     * a second and no byte has moved for a second: a hung or partitioned
     * Redis then fails callers quickly instead of leaving them waiting on TCP,
     * while a slow transfer of large commands goes on. Not for subscriber
     * connections. */
    bool watchdog;
} redis_conn_options_t;

typedef struct redis_conn_events {
    void (*on_ready)(void *arg); /* connected, authenticated, database selected */
    void (*on_lost)(void *arg);  /* a ready connection went away; pending replies got NULL */
    void *arg;
} redis_conn_events_t;

typedef void (*redis_conn_closed_cb)(void *arg);

/* Copies what it needs from `opts`. Connecting starts with redis_conn_start. */
redis_conn_t *redis_conn_new(uv_loop_t *loop, const redis_conn_options_t *opts,
                             const redis_conn_events_t *events);
void redis_conn_start(redis_conn_t *rc);
bool redis_conn_ready(const redis_conn_t *rc);

/* Sends a command; `fn` gets the reply, or NULL if the connection is lost first.
 * Returns 0, or -1 (and `fn` is not called) when the connection is not ready. */
int redis_conn_command(redis_conn_t *rc, redisCallbackFn *fn, void *privdata, int argc,
                       const char **argv, const size_t *argvlen);

/* Stops reconnecting, lets pending replies arrive, disconnects, closes its
 * handles, then calls `cb`; after it, redis_conn_free. */
void redis_conn_close(redis_conn_t *rc, redis_conn_closed_cb cb, void *arg);
void redis_conn_free(redis_conn_t *rc);

#endif
