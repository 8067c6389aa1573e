/* auth: the tokens in force live in memory; a change of the file swaps them
 * only when the new file reads whole, and lookups compare in constant time. */
#include "api/auth.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "obs/log.h"
#include "util/base64.h"
#include "util/mem.h"
#include "util/strbuf.h"

#define AUTH_POLL_MS 2000
#define AUTH_FILE_MAX (1024 * 1024)
#define AUTH_TOKEN_MAX 4096

typedef struct auth_tokens {
    char **tokens;
    size_t *lens;
    size_t count;
} auth_tokens_t;

struct auth {
    char *path;
    auth_tokens_t current;
    uv_fs_poll_t poll;
    void (*closed_cb)(void *arg);
    void *closed_arg;
};

static void auth_tokens_free(auth_tokens_t *t) {
    for (size_t i = 0; i < t->count; i++)
        free(t->tokens[i]);
    free(t->tokens);
    free(t->lens);
    *t = (auth_tokens_t){0};
}

/* Reads the file into `out`. Returns 0, or -1 with `err` set. */
static int auth_read(const char *path, auth_tokens_t *out, char *err, size_t err_len) {
    FILE *f = fopen(path, "r");
    if (!f) {
        snprintf(err, err_len, "cannot read write tokens file: %s", strerror(errno));
        return -1;
    }
    strbuf_t text = STRBUF_INIT;
    char chunk[4096];
    size_t n;
    while ((n = fread(chunk, 1, sizeof(chunk), f)) > 0 && text.len <= AUTH_FILE_MAX)
        strbuf_append(&text, chunk, n);
    bool failed = ferror(f);
    fclose(f);
    if (failed || text.len > AUTH_FILE_MAX) {
        snprintf(err, err_len, "cannot read write tokens file: %s",
                 failed ? "read error" : "larger than 1 MiB");
        strbuf_free(&text);
        return -1;
    }
    auth_tokens_t t = {0};
    size_t cap = 0;
    for (size_t pos = 0; pos < text.len;) {
        const char *line = text.data + pos;
        const char *nl = memchr(line, '\n', text.len - pos);
        size_t len = nl ? (size_t)(nl - line) : text.len - pos;
        pos += len + 1;
        while (len > 0 && (line[len - 1] == '\r' || line[len - 1] == ' ' || line[len - 1] == '\t'))
            len--;
        while (len > 0 && (*line == ' ' || *line == '\t')) {
            line++;
            len--;
        }
        if (len == 0 || *line == '#') continue;
        if (len > AUTH_TOKEN_MAX) continue;
        if (t.count == cap) {
            cap = cap ? cap * 2 : 8;
            t.tokens = mem_realloc(t.tokens, cap * sizeof(*t.tokens));
            t.lens = mem_realloc(t.lens, cap * sizeof(*t.lens));
        }
        t.tokens[t.count] = mem_strndup(line, len);
        t.lens[t.count++] = len;
    }
    strbuf_free(&text);
    if (t.count == 0) {
        snprintf(err, err_len, "write tokens file holds no token");
        return -1;
    }
    *out = t;
    return 0;
}

auth_t *auth_new(uv_loop_t *loop, const char *path, char *err, size_t err_len) {
    auth_t *a = mem_calloc(1, sizeof(*a));
    if (auth_read(path, &a->current, err, err_len) != 0) {
        free(a);
        return NULL;
    }
    a->path = mem_strdup(path);
    uv_fs_poll_init(loop, &a->poll);
    a->poll.data = a;
    return a;
}

static void auth_on_change(uv_fs_poll_t *h, int status, const uv_stat_t *prev,
                           const uv_stat_t *curr) {
    (void)prev;
    (void)curr;
    auth_t *a = h->data;
    char err[256];
    auth_tokens_t fresh;
    if (status < 0 || auth_read(a->path, &fresh, err, sizeof(err)) != 0) {
        /* A Secret being swapped can vanish for an instant: keep what works. */
        log_warn("write tokens not reloaded, keeping the previous ones", "error",
                 status < 0 ? uv_strerror(status) : err);
        return;
    }
    auth_tokens_free(&a->current);
    a->current = fresh;
    char count[24];
    snprintf(count, sizeof(count), "%zu", fresh.count);
    log_info("write tokens reloaded", "tokens", count);
}

void auth_start(auth_t *a) {
    /* Should the watch not start, the tokens read at start stay in force. */
    uv_fs_poll_start(&a->poll, auth_on_change, a->path, AUTH_POLL_MS);
}

/* Equal lengths and contents, in time that depends on the lengths only. */
static bool auth_equal(const char *given, size_t given_len, const char *token, size_t len) {
    unsigned char diff = given_len != len;
    for (size_t i = 0; i < given_len; i++)
        diff |= (unsigned char)given[i] ^ (unsigned char)token[i % len];
    return diff == 0;
}

/* The index of the token `given` is, or -1. */
static long auth_find(const auth_t *a, const char *given, size_t len) {
    long found = -1;
    /* Every token is compared, matched or not. */
    for (size_t i = 0; i < a->current.count; i++)
        if (auth_equal(given, len, a->current.tokens[i], a->current.lens[i])) found = (long)i;
    return found;
}

/* Matches "<scheme> <credentials>" case-insensitively on the scheme. */
static const char *auth_scheme(const char *v, size_t len, const char *scheme, size_t *rest) {
    size_t n = strlen(scheme);
    if (len <= n || strncasecmp(v, scheme, n) != 0 || v[n] != ' ') return NULL;
    size_t i = n;
    while (i < len && v[i] == ' ')
        i++;
    *rest = len - i;
    return v + i;
}

/* The index of the token an Authorization header value carries (Bearer, or
 * Basic with the token as password), or -1. */
static long auth_lookup(const auth_t *a, const char *authorization, size_t len) {
    if (!authorization) return -1;
    size_t n;
    const char *cred = auth_scheme(authorization, len, "Bearer", &n);
    if (cred) return n > 0 ? auth_find(a, cred, n) : -1;
    cred = auth_scheme(authorization, len, "Basic", &n);
    if (!cred || n == 0 || n > AUTH_TOKEN_MAX * 2) return -1;
    unsigned char decoded[AUTH_TOKEN_MAX * 2];
    long d = base64_decode(cred, n, decoded);
    const unsigned char *colon = d < 0 ? NULL : memchr(decoded, ':', (size_t)d);
    if (!colon) return -1;
    size_t user_len = (size_t)(colon - decoded);
    return auth_find(a, (const char *)colon + 1, (size_t)d - user_len - 1);
}

bool auth_allows(const auth_t *a, const char *authorization, size_t len) {
    return auth_lookup(a, authorization, len) >= 0;
}

bool auth_token(const auth_t *a, const char *authorization, size_t len, const char **token,
                size_t *token_len) {
    long i = auth_lookup(a, authorization, len);
    if (i < 0) return false;
    *token = a->current.tokens[i];
    *token_len = a->current.lens[i];
    return true;
}

const char *auth_challenge(void) {
    return "WWW-Authenticate: Bearer realm=\"multivac\"\r\n"
           "WWW-Authenticate: Basic realm=\"multivac\", charset=\"UTF-8\"\r\n";
}

static void auth_on_closed(uv_handle_t *h) {
    auth_t *a = h->data;
    if (a->closed_cb) a->closed_cb(a->closed_arg);
}

void auth_close(auth_t *a, void (*cb)(void *arg), void *arg) {
    a->closed_cb = cb;
    a->closed_arg = arg;
    uv_close((uv_handle_t *)&a->poll, auth_on_closed);
}

void auth_free(auth_t *a) {
    if (!a) return;
    auth_tokens_free(&a->current);
    free(a->path);
    free(a);
}
