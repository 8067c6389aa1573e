/* fuzz_request: http/request (llhttp strict + MultiVAC's framing rules) fed in
 * fuzzer-chosen segments, the way a connection feeds it, with every head's
 * target normalised and routed (api/route).
 *
 * Input: see fuzz_segments.h. Options (high bits of byte 0):
 *   bit 0  small limits (head 200 bytes, 6 header lines, body 300, chunk
 *          extensions 20), so every limit is reachable within -max_len;
 *          otherwise src/main.c's (16384, 100, 65536, 4096)
 *   bit 1  http_request_trim(0) after each request in the segmented run
 *
 * Invariants, abort() on violation:
 *   - split consistency: the payload fed whole and fed in the planned segments
 *     gives the same events (with the same method, target, headers, body and
 *     error status) and the same final state;
 *   - MORE consumes every byte given; HEAD leaves the request IN_BODY and
 *     COMPLETE leaves it DONE; INVALID has one of the documented statuses;
 *   - route: route_match fails exactly when the path is malformed; a
 *     normalised path normalises to itself and routes where the target does. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api/route.h"
#include "fuzz_segments.h"
#include "http/request.h"
#include "util/strbuf.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void fail(const char *what) {
    fprintf(stderr, "fuzz_request: invariant violated: %s\n", what);
    abort();
}

static void trace_u64(strbuf_t *t, uint64_t v) { strbuf_append(t, &v, sizeof(v)); }

static void trace_bytes(strbuf_t *t, const char *p, size_t n) {
    trace_u64(t, n);
    if (n > 0) strbuf_append(t, p, n);
}

static void check_route(const char *target, size_t len, strbuf_t *t) {
    route_match_t m;
    int rc = route_match(target, len, &m);
    char path[ROUTE_PATH_MAX], again[ROUTE_PATH_MAX];
    int n = route_normalise(target, len, path, sizeof(path));
    trace_u64(t, (uint64_t)(int64_t)rc);
    trace_u64(t, (uint64_t)m.id);
    trace_u64(t, (uint64_t)(int64_t)n);
    if (rc < 0 && n >= 0) fail("route_match refused a target route_normalise accepted");
    if (rc == 0 && m.query) {
        const char *q = memchr(target, '?', len);
        if (!q || m.query != q + 1 || m.query_len != len - (size_t)(q + 1 - target))
            fail("route_match query is not what follows the first '?'");
        size_t vlen = 0;
        const char *v = route_query_param(m.query, m.query_len, "wait", &vlen);
        if (v && (v < m.query || v + vlen > m.query + m.query_len))
            fail("route_query_param value outside the query");
    }
    if (n < 0) return;
    if ((size_t)n != strlen(path) || path[0] != '/') fail("normalised path shape");
    if (memchr(path, '?', (size_t)n)) fail("normalised path holds '?'");
    if (n > 1 && path[n - 1] == '/') fail("normalised path ends with '/'");
    if (strstr(path, "//") || strstr(path, "/./") || strstr(path, "/../")) fail("dot segments");
    int n2 = route_normalise(path, (size_t)n, again, sizeof(again));
    if (n2 != n || memcmp(path, again, (size_t)n) != 0) fail("route_normalise not idempotent");
    route_match_t m2;
    if (route_match(path, (size_t)n, &m2) != 0 || m2.id != m.id)
        fail("normalised path routes elsewhere");
}

static void trace_request(http_request_t *r, strbuf_t *t) {
    size_t len;
    const char *target = http_request_target(r, &len);
    trace_u64(t, (uint64_t)http_request_method(r));
    trace_bytes(t, target, len);
    for (int h = 0; h < HTTP_HEADER_CAPTURED_COUNT; h++) {
        size_t vlen;
        const char *v = http_request_header(r, (http_header_t)h, &vlen);
        trace_u64(t, v != NULL);
        if (v) trace_bytes(t, v, vlen);
    }
}

/* Feeds one piece like conn_process does; false once the request is refused. */
/* What the traces say, for the report when they differ. */
static strbuf_t *text;

static bool feed(http_request_t *r, const char *p, size_t len, strbuf_t *t, bool trim) {
    size_t pos = 0;
    for (;;) {
        size_t used = 0;
        http_request_event_t ev = http_request_parse(r, p + pos, len - pos, &used);
        if (used > len - pos) fail("parse used more bytes than given");
        pos += used;
        switch (ev) {
        case HTTP_REQUEST_MORE:
            if (pos != len) fail("MORE without consuming every byte");
            return true;
        case HTTP_REQUEST_HEAD: {
            if (http_request_state(r) != HTTP_REQUEST_IN_BODY) fail("HEAD but not IN_BODY");
            strbuf_append_char(t, 'H');
            trace_request(r, t);
            trace_u64(t, (uint64_t)http_request_minor(r));
            trace_u64(t, http_request_keep_alive(r));
            trace_u64(t, http_request_upgrade(r));
            trace_u64(t, http_request_has_body(r));
            trace_u64(t, http_request_expects_continue(r));
            size_t tlen;
            const char *target = http_request_target(r, &tlen);
            check_route(target, tlen, t);
            strbuf_printf(text, "  HEAD method=%d target=%zu bytes\n", (int)http_request_method(r),
                          tlen);
            break;
        }
        case HTTP_REQUEST_COMPLETE: {
            if (http_request_state(r) != HTTP_REQUEST_DONE) fail("COMPLETE but not DONE");
            strbuf_append_char(t, 'C');
            trace_request(r, t);
            size_t blen;
            char *body = http_request_body(r, &blen);
            trace_bytes(t, body, blen);
            strbuf_printf(text, "  COMPLETE body=%zu bytes\n", blen);
            if (blen > 0) memset(body, 'x', blen); /* writable, says request.h */
            if (trim) http_request_trim(r, 0);
            if (pos == len) return true;
            break;
        }
        case HTTP_REQUEST_INVALID: {
            const char *why = NULL;
            int status = http_request_error(r, &why);
            if (!why) fail("no reason for INVALID");
            switch (status) {
            case 400:
            case 413:
            case 414:
            case 417:
            case 431:
            case 501:
            case 505: break;
            default: fail("INVALID with an undocumented status");
            }
            strbuf_append_char(t, 'I');
            trace_u64(t, (uint64_t)status);
            trace_bytes(t, why, strlen(why));
            strbuf_printf(text, "  INVALID %d (%s) after %zu bytes of this piece\n", status, why,
                          pos);
            return false;
        }
        default: fail("unknown event");
        }
    }
}

static void finish(http_request_t *r, strbuf_t *t) {
    strbuf_printf(text, "  end: state %d, error %d\n", (int)http_request_state(r),
                  http_request_error(r, NULL));
    strbuf_append_char(t, 'E');
    trace_u64(t, (uint64_t)http_request_state(r));
    trace_u64(t, (uint64_t)http_request_error(r, NULL));
}

static size_t first_difference(const strbuf_t *a, const strbuf_t *b) {
    size_t n = a->len < b->len ? a->len : b->len;
    size_t i = 0;
    while (i < n && a->data[i] == b->data[i])
        i++;
    return i;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    fuzz_segs_t segs;
    fuzz_segs_init(&segs, data, size);
    http_request_limits_t limits = {16384, 100, 65536, 4096};
    if (segs.opts & 1) limits = (http_request_limits_t){200, 6, 300, 20};
    bool trim = (segs.opts & 2) != 0;

    /* Whole. */
    strbuf_t whole = STRBUF_INIT, split = STRBUF_INIT;
    strbuf_t whole_text = STRBUF_INIT, split_text = STRBUF_INIT;
    text = &whole_text;
    http_request_t *r = http_request_new(&limits);
    feed(r, (const char *)segs.data, segs.len, &whole, false);
    finish(r, &whole);
    http_request_free(r);

    /* In segments, each in a buffer of its own so ASan sees any read past it. */
    text = &split_text;
    r = http_request_new(&limits);
    const uint8_t *p;
    size_t len;
    while (fuzz_segs_next(&segs, &p, &len)) {
        char *copy = malloc(len);
        if (!copy) abort();
        memcpy(copy, p, len);
        bool go_on = feed(r, copy, len, &split, trim);
        free(copy);
        if (!go_on) break;
    }
    finish(r, &split);
    http_request_free(r);

    if (whole.len != split.len || memcmp(whole.data, split.data, whole.len) != 0) {
        fprintf(stderr,
                "fuzz_request: split inconsistency: whole trace %zu bytes, split %zu, first "
                "difference at %zu\n",
                whole.len, split.len, first_difference(&whole, &split));
        fprintf(stderr, "fed whole:\n%.*s", (int)whole_text.len, whole_text.data);
        fprintf(stderr, "fed in segments:\n%.*s", (int)split_text.len, split_text.data);
        abort();
    }
    strbuf_free(&whole);
    strbuf_free(&split);
    strbuf_free(&whole_text);
    strbuf_free(&split_text);
    text = NULL;
    return 0;
}
