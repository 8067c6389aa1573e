/* route: maps a request target to one of MultiVAC's endpoints.
 *
 * Normalisation, applied before lookup, so clients that differ only in spelling
 * reach the same endpoint:
 *   - absolute-form targets ("http://host/path") use their path;
 *   - the query string ("?...") is split off and returned separately;
 *   - %XX escapes of unreserved characters (A-Z a-z 0-9 - . _ ~) are decoded;
 *     other escapes are kept as they are; a malformed escape is an error;
 *   - repeated slashes are merged, "." segments dropped, ".." segments resolved
 *     (".." above the root is an error);
 *   - a trailing slash is ignored, so "/zzz/" is "/zzz" (the challenge's bug). */
#ifndef MULTIVAC_ROUTE_H
#define MULTIVAC_ROUTE_H

#include <stddef.h>

typedef enum {
    ROUTE_NOT_FOUND = 0,
    ROUTE_ROOT,          /* /              GET HEAD */
    ROUTE_MULTIVAC,      /* /multivac      GET HEAD */
    ROUTE_MULTIVAC_DATA, /* /multivac/data POST */
    ROUTE_ZZZ,           /* /zzz           GET HEAD */
    ROUTE_HEALTHZ,       /* /healthz       GET HEAD */
    ROUTE_READYZ,        /* /readyz        GET HEAD */
    ROUTE_METRICS,       /* /metrics       GET HEAD */
    ROUTE_COUNT
} route_id_t;

typedef enum {
    ROUTE_ALLOW_GET = 1 << 0, /* GET and HEAD */
    ROUTE_ALLOW_POST = 1 << 1,
} route_allow_t;

#define ROUTE_PATH_MAX 2048

typedef struct route_match {
    route_id_t id;
    const char *query; /* points into the target, after '?'; NULL when absent */
    size_t query_len;
} route_match_t;

/* Returns 0 with `m` filled (id may be ROUTE_NOT_FOUND), or -1 when the target is
 * malformed (400). Allocates nothing. */
int route_match(const char *target, size_t len, route_match_t *m);

/* Writes the normalised path of `target` into `out` (NUL-terminated).
 * Returns its length, or -1 when malformed or longer than `cap` - 1. */
int route_normalise(const char *target, size_t len, char *out, size_t cap);

/* The methods an endpoint accepts, and the matching Allow header value. */
unsigned route_allowed(route_id_t id);
const char *route_allow_header(route_id_t id);

/* Finds `name` in a query string; returns its raw (still encoded) value and
 * length, or NULL when absent. */
const char *route_query_param(const char *query, size_t query_len, const char *name, size_t *len);

#endif
