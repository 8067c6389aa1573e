/* route: normalises into a stack buffer and looks the path up by length;
 * allocates nothing. */
#include "api/route.h"

#include <string.h>

#include "util/pairs.h"
#include "util/percent.h"

/* Internal results of route_norm: route_match treats an overlong path as not
 * found, while a malformed one is the client's error. */
#define ROUTE_E_MALFORMED (-1)
#define ROUTE_E_TOO_LONG (-2)

static int route_is_alpha(unsigned char c) { return (c | 0x20) >= 'a' && (c | 0x20) <= 'z'; }
static int route_is_digit(unsigned char c) { return c >= '0' && c <= '9'; }

/* Returns the offset where the path of an absolute-form target starts
 * ("http://host:1/p" -> 13), `len` when it has no path, or -1 when `t` is not
 * scheme "://" authority. `t` is already cut before any '?'. */
static long route_skip_absolute(const char *t, size_t len) {
    size_t i = 0;
    if (len == 0 || !route_is_alpha((unsigned char)t[0])) return -1;
    while (i < len && (route_is_alpha((unsigned char)t[i]) || route_is_digit((unsigned char)t[i]) ||
                       t[i] == '+' || t[i] == '-' || t[i] == '.'))
        i++;
    if (len - i < 3 || memcmp(t + i, "://", 3) != 0) return -1;
    for (i += 3; i < len && t[i] != '/'; i++) {
    }
    return (long)i;
}

/* Normalises the path part of `t` (up to '?') into `out`. */
static int route_norm(const char *t, size_t len, char *out, size_t cap) {
    const char *q = memchr(t, '?', len);
    size_t end = q ? (size_t)(q - t) : len;
    size_t i = 0;

    if (end == 0) return ROUTE_E_MALFORMED;
    if (t[0] != '/') {
        long at = route_skip_absolute(t, end);
        if (at < 0) return ROUTE_E_MALFORMED;
        i = (size_t)at;
    }

    size_t olen = 0;
    while (i < end) {
        /* Here t[i] is '/' or, right after an authority, the end. */
        i++;
        if (olen + 1 >= cap) return ROUTE_E_TOO_LONG;
        out[olen++] = '/';
        size_t seg = olen;

        for (; i < end && t[i] != '/'; i++) {
            unsigned char c = (unsigned char)t[i];
            size_t in_n = 1, out_n = 1;
            if (c == '%') {
                int d = percent_decode(t + i, end - i);
                if (d < 0) return ROUTE_E_MALFORMED;
                in_n = 3;
                /* Decoding a reserved character would change what the path
                 * means ("%2F" is not a separator), so only these are. */
                if (percent_unreserved((unsigned char)d))
                    c = (unsigned char)d;
                else
                    out_n = 3;
            }
            if (olen + out_n >= cap) return ROUTE_E_TOO_LONG;
            if (out_n == 1)
                out[olen] = (char)c;
            else
                memcpy(out + olen, t + i, out_n);
            olen += out_n;
            i += in_n - 1;
        }

        size_t slen = olen - seg;
        if (slen == 0 || (slen == 1 && out[seg] == '.')) {
            olen = seg - 1;
        } else if (slen == 2 && out[seg] == '.' && out[seg + 1] == '.') {
            olen = seg - 1;
            if (olen == 0) return ROUTE_E_MALFORMED;
            while (out[olen - 1] != '/')
                olen--;
            olen--;
        }
    }

    if (olen == 0) {
        if (cap < 2) return ROUTE_E_TOO_LONG;
        out[olen++] = '/';
    }
    out[olen] = '\0';
    return (int)olen;
}

int route_normalise(const char *target, size_t len, char *out, size_t cap) {
    if (!target || cap == 0) return -1;
    int n = route_norm(target, len, out, cap);
    return n < 0 ? -1 : n;
}

static route_id_t route_lookup(const char *p, size_t len) {
    switch (len) {
    case 1: return ROUTE_ROOT; /* the normalised path is never empty */
    case 4: return memcmp(p, "/zzz", 4) == 0 ? ROUTE_ZZZ : ROUTE_NOT_FOUND;
    case 7: return memcmp(p, "/readyz", 7) == 0 ? ROUTE_READYZ : ROUTE_NOT_FOUND;
    case 8:
        if (memcmp(p, "/healthz", 8) == 0) return ROUTE_HEALTHZ;
        if (memcmp(p, "/metrics", 8) == 0) return ROUTE_METRICS;
        return ROUTE_NOT_FOUND;
    case 9: return memcmp(p, "/multivac", 9) == 0 ? ROUTE_MULTIVAC : ROUTE_NOT_FOUND;
    case 14: return memcmp(p, "/multivac/data", 14) == 0 ? ROUTE_MULTIVAC_DATA : ROUTE_NOT_FOUND;
    default: return ROUTE_NOT_FOUND;
    }
}

int route_match(const char *target, size_t len, route_match_t *m) {
    m->id = ROUTE_NOT_FOUND;
    m->query = NULL;
    m->query_len = 0;
    if (!target) return -1;

    char path[ROUTE_PATH_MAX];
    int n = route_norm(target, len, path, sizeof(path));
    if (n == ROUTE_E_MALFORMED) return -1;

    const char *q = memchr(target, '?', len);
    if (q) {
        m->query = q + 1;
        m->query_len = len - (size_t)(q + 1 - target);
    }
    if (n >= 0) m->id = route_lookup(path, (size_t)n);
    return 0;
}

unsigned route_allowed(route_id_t id) {
    switch (id) {
    case ROUTE_ROOT:
    case ROUTE_MULTIVAC:
    case ROUTE_ZZZ:
    case ROUTE_HEALTHZ:
    case ROUTE_READYZ:
    case ROUTE_METRICS: return ROUTE_ALLOW_GET;
    case ROUTE_MULTIVAC_DATA: return ROUTE_ALLOW_POST;
    default: return 0;
    }
}

const char *route_allow_header(route_id_t id) {
    switch (route_allowed(id)) {
    case ROUTE_ALLOW_GET: return "GET, HEAD";
    case ROUTE_ALLOW_POST: return "POST";
    default: return NULL;
    }
}

const char *route_query_param(const char *query, size_t query_len, const char *name, size_t *len) {
    if (!query) return NULL;
    size_t nlen = strlen(name);
    size_t pos = 0;
    pair_t pair;
    while (pairs_next(query, query_len, &pos, &pair)) {
        if (pair.name_len != nlen || memcmp(pair.name, name, nlen) != 0) continue;
        if (len) *len = pair.value_len;
        return pair.value;
    }
    return NULL;
}
