/* The request parser, fed every case whole, split in two at every offset, in
 * 1-byte pieces and in random pieces: each way must give the same transcript of
 * events, and that transcript must be the expected one. */
#include "http/request.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "util/strbuf.h"

static const http_request_limits_t limits = {
    .max_head = 16384, .max_header_lines = 100, .max_body = 1000, .max_chunk_ext = 4096};

typedef struct feeder {
    http_request_t *r;
    strbuf_t out; /* transcript */
    bool stopped; /* after INVALID */
} feeder_t;

static void feeder_event(feeder_t *f, http_request_event_t ev) {
    http_request_t *r = f->r;
    size_t len;
    const char *s;
    switch (ev) {
    case HTTP_REQUEST_MORE: break;
    case HTTP_REQUEST_HEAD:
        s = http_request_target(r, &len);
        strbuf_printf(&f->out, "H%d %.*s%s%s;", (int)http_request_method(r), (int)len, s,
                      http_request_expects_continue(r) ? " X" : "",
                      http_request_upgrade(r) ? " U" : "");
        break;
    case HTTP_REQUEST_COMPLETE: {
        char *body = http_request_body(r, &len);
        strbuf_printf(&f->out, "C%zu:%.*s", len, (int)len, body ? body : "");
        s = http_request_header(r, HTTP_HEADER_CONTENT_TYPE, &len);
        if (s) strbuf_printf(&f->out, " ct=%.*s", (int)len, s);
        s = http_request_header(r, HTTP_HEADER_AUTHORIZATION, &len);
        if (s) strbuf_printf(&f->out, " auth=%.*s", (int)len, s);
        strbuf_append_str(&f->out, http_request_keep_alive(r) ? ";" : " close;");
        break;
    }
    case HTTP_REQUEST_INVALID:
        strbuf_printf(&f->out, "E%d;", http_request_error(r, NULL));
        f->stopped = true;
        break;
    }
}

static void feeder_feed(feeder_t *f, const char *data, size_t len) {
    while (!f->stopped) {
        size_t used;
        http_request_event_t ev = http_request_parse(f->r, data, len, &used);
        feeder_event(f, ev);
        data += used;
        len -= used;
        if (ev == HTTP_REQUEST_MORE || (len == 0 && ev == HTTP_REQUEST_COMPLETE)) break;
    }
}

/* Feeds `in` cut at the offsets in `cuts` (ascending, ending with len). */
static char *transcript(const char *in, const size_t *cuts, size_t ncuts) {
    feeder_t f = {http_request_new(&limits), STRBUF_INIT, false};
    size_t pos = 0;
    for (size_t i = 0; i < ncuts; i++) {
        /* Each piece in its own allocation, so ASan sees any read past it. */
        size_t n = cuts[i] - pos;
        char *piece = malloc(n ? n : 1);
        memcpy(piece, in + pos, n);
        feeder_feed(&f, piece, n);
        free(piece);
        pos = cuts[i];
    }
    http_request_free(f.r);
    strbuf_append_char(&f.out, '\0');
    return f.out.data;
}

static unsigned rng_state = 12345;
static unsigned rng(void) {
    rng_state = rng_state * 1103515245u + 12345u;
    return (rng_state >> 16) & 0x7fff;
}

static int cases_run;

static void check_case(const char *in, size_t len, const char *want, int line) {
    cases_run++;
    size_t whole[1] = {len};
    char *ref = transcript(in, whole, 1);
    if (strcmp(ref, want) != 0)
        fprintf(stderr, "line %d: whole input gave \"%s\", expected \"%s\"\n", line, ref, want);
    CHECK(strcmp(ref, want) == 0);

    size_t *cuts = malloc((len + 1) * sizeof(*cuts));
    int mismatches = 0;
    /* Two pieces, split at every offset (smaller inputs: every one). */
    size_t step = len > 4000 ? len / 997 + 1 : 1;
    for (size_t at = 0; at <= len && mismatches < 3; at += step) {
        size_t two[2] = {at, len};
        char *t = transcript(in, two, 2);
        if (strcmp(t, ref) != 0) {
            fprintf(stderr, "line %d: split at %zu gave \"%s\", whole \"%s\"\n", line, at, t, ref);
            mismatches++;
        }
        free(t);
    }
    /* One byte at a time. */
    for (size_t i = 0; i < len; i++)
        cuts[i] = i + 1;
    char *t = transcript(in, cuts, len);
    if (strcmp(t, ref) != 0) {
        fprintf(stderr, "line %d: 1-byte pieces gave \"%s\", whole \"%s\"\n", line, t, ref);
        mismatches++;
    }
    free(t);
    /* Random pieces. */
    for (int seed = 0; seed < 8; seed++) {
        size_t n = 0, pos = 0;
        while (pos < len) {
            pos += 1 + rng() % 23;
            if (pos > len) pos = len;
            cuts[n++] = pos;
        }
        t = transcript(in, cuts, n);
        if (strcmp(t, ref) != 0) {
            fprintf(stderr, "line %d: random pieces gave \"%s\", whole \"%s\"\n", line, t, ref);
            mismatches++;
        }
        free(t);
    }
    CHECK_INT(mismatches, 0);
    free(cuts);
    free(ref);
}

#define CASE(in, want) check_case(in, sizeof(in) - 1, want, __LINE__)

static void test_valid(void) {
    CASE("GET / HTTP/1.1\r\nHost: x\r\n\r\n", "H1 /;C0:;");
    CASE("GET /a HTTP/1.1\r\nHost: x\r\n\r\nHEAD /b HTTP/1.1\r\nHost: x\r\n\r\n",
         "H1 /a;C0:;H2 /b;C0:;");
    CASE("GET / HTTP/1.0\r\n\r\n", "H1 /;C0: close;");
    CASE("GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n", "H1 /;C0:;");
    CASE("GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n", "H1 /;C0: close;");
    CASE("POST /p HTTP/1.1\r\nHost: x\r\nContent-Type:  a/b \r\nContent-Length: 5\r\n\r\nhello",
         "H3 /p;C5:hello ct=a/b;");
    CASE("POST /p HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
         "5\r\nhello\r\n3;ext=1\r\nabc\r\n0\r\n\r\n",
         "H3 /p;C8:helloabc;");
    CASE("POST /p HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: Chunked\r\n\r\n0\r\n\r\n",
         "H3 /p;C0:;");
    CASE("POST /p HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer t\r\nContent-Length: 0\r\n\r\n",
         "H3 /p;C0: auth=Bearer t;");
    CASE("POST /p HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\nContent-Length: 2\r\n\r\nab",
         "H3 /p X;C2:ab;");
    CASE("OPTIONS * HTTP/1.1\r\nHost: x\r\n\r\n", "H4 *;C0:;");
    CASE("DELETE / HTTP/1.1\r\nHost: x\r\n\r\n", "H0 /;C0:;");
    CASE("\r\nGET / HTTP/1.1\r\nHost: x\r\n\r\n", "H1 /;C0:;");
    CASE("GET / HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n",
         "H1 / U;C0: close;");
    /* The original crash: a long, unknown header name arriving in pieces. */
    CASE("GET /zzz HTTP/1.1\r\nHost: x\r\n"
         "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAABBBBBBBB: v\r\n\r\n",
         "H1 /zzz;C0:;");
    CASE("GET / HTTP/1.1\r\nHost: x\r\nContent-Typeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeee: v\r\n\r\n",
         "H1 /;C0:;");
}

static void test_invalid(void) {
    CASE("GET / HTTP/1.1\r\n\r\n", "E400;");
    CASE("GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n", "E400;");
    CASE("GET / HTTP/1.1\r\nHost: x\r\nX: a\rb\r\n\r\n", "E400;");
    CASE("GET /\r HTTP/1.1\r\nHost: x\r\n\r\n", "E400;");
    CASE("GET / HTTP/1.1\rHost: x\r\n\r\n", "E400;");
    CASE("GET / HTTP/1.1\r\nHost: x\r\nX: a\r\n b\r\n\r\n", "E400;");
    CASE("GET / HTTP/1.1\r\nHost: x\r\nX: a\r\n\tb\r\n\r\n", "E400;");
    CASE("GET / HTTP/1.1\r\nHost : x\r\n\r\n", "E400;");
    CASE("GET / HTTP/1.1\r\nHost: x\r\nFoo Bar: x\r\n\r\n", "E400;");
    CASE("GET / HTTP/1.1\r\nHost: x\r\n: x\r\n\r\n", "E400;");
    CASE("GET / HTTP/1.1\r\nHost: x\r\n\rX", "E400;");
    CASE("GET / HTTP/1.1\nHost: x\n\n", "E400;");
    CASE("POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nContent-Length: 5\r\n\r\nhello",
         "E400;");
    CASE("POST / HTTP/1.1\r\nHost: x\r\nContent-Length: +5\r\n\r\nhello", "E400;");
    CASE("POST / HTTP/1.1\r\nHost: x\r\nContent-Length: -1\r\n\r\n", "E400;");
    CASE("POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 5 0\r\n\r\n", "E400;");
    CASE("POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 5, 5\r\n\r\nhello", "E400;");
    CASE("POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 0x5\r\n\r\nhello", "E400;");
    CASE("POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 99999999999999999999999\r\n\r\n", "E400;");
    CASE("POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n",
         "E400;");
    CASE("POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nContent-Length: 5\r\n\r\n",
         "E400;");
    CASE("POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: gzip, chunked\r\n\r\n", "E501;");
    CASE("POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: identity, chunked\r\n\r\n", "E501;");
    CASE("POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked, chunked\r\n\r\n", "E501;");
    CASE("POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: gzip\r\n\r\n", "E501;");
    CASE("POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n"
         "Transfer-Encoding: chunked\r\n\r\n",
         "E501;");
    CASE("POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", "E400;");
    CASE("POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
         "FFFFFFFFFFFFFFFFFF\r\n",
         "H3 /;E400;");
    CASE("POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n5;\x01=x\r\nhello\r\n"
         "0\r\n\r\n",
         "H3 /;E400;");
    CASE("POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhelloXX0\r\n\r\n",
         "H3 /;E400;");
    CASE("POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\n\n0\r\n\r\n",
         "H3 /;E400;");
    CASE("POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 1001\r\n\r\n", "E413;");
    CASE("GET / HTTP/1.1\r\nHost: x\r\nContent-Type: a\r\nContent-Type: b\r\n\r\n", "E400;");
    CASE("GET / HTTP/1.1\r\nHost: x\r\nExpect: nothing\r\n\r\n", "E417;");
    CASE("CONNECT x:443 HTTP/1.1\r\nHost: x:443\r\n\r\n", "E501;");
    CASE("BREW / HTTP/1.1\r\nHost: x\r\n\r\n", "E501;");
    CASE("GET / HTTP/2.0\r\nHost: x\r\n\r\n", "E505;");
    CASE("GET /\r\n\r\n", "E400;");
    /* Fuzzer findings (tests/fuzz/crashes): the method verdict must not depend
     * on how many empty lines precede the request, nor on where llhttp ends
     * the method. */
    CASE("\r\n\r\n\r\n\r\n\r\n\r\n\r\n\r\n\r\n\r\n\r\n\r\n\r\n\r\n\r\n\r\n\r\n\r\n\r\n\r\n"
         "BREW / HTTP/1.1\r\nHost: x\r\n\r\n",
         "E501;");
    CASE("POST/x / HTTP/1.1\r\nHost: x\r\n\r\n", "E400;");
    CASE("\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03", "E400;");
    /* NUL anywhere. */
    static const char nul_line[] = "GET /\0 HTTP/1.1\r\nHost: x\r\n\r\n";
    check_case(nul_line, sizeof(nul_line) - 1, "E400;", __LINE__);
    static const char nul_name[] = "GET / HTTP/1.1\r\nHost: x\r\nX\0: y\r\n\r\n";
    check_case(nul_name, sizeof(nul_name) - 1, "E400;", __LINE__);
    static const char nul_value[] = "GET / HTTP/1.1\r\nHost: x\r\nX: a\0b\r\n\r\n";
    check_case(nul_value, sizeof(nul_value) - 1, "E400;", __LINE__);
}

static void test_limits(void) {
    strbuf_t sb = STRBUF_INIT;
    /* More than 100 header lines. */
    strbuf_append_str(&sb, "GET / HTTP/1.1\r\nHost: x\r\n");
    for (int i = 0; i < 100; i++)
        strbuf_append_str(&sb, "a: b\r\n");
    strbuf_append_str(&sb, "\r\n");
    check_case(sb.data, sb.len, "E431;", __LINE__);
    /* One value past the head limit. */
    strbuf_reset(&sb);
    strbuf_append_str(&sb, "GET / HTTP/1.1\r\nHost: x\r\nX: ");
    for (int i = 0; i < 17000; i++)
        strbuf_append_char(&sb, 'v');
    strbuf_append_str(&sb, "\r\n\r\n");
    check_case(sb.data, sb.len, "E431;", __LINE__);
    /* The limit counts the wire: whitespace padding counts too. */
    strbuf_reset(&sb);
    strbuf_append_str(&sb, "GET / HTTP/1.1\r\nHost: x\r\nX:");
    for (int i = 0; i < 16400; i++)
        strbuf_append_char(&sb, ' ');
    strbuf_append_str(&sb, "v\r\n\r\n");
    check_case(sb.data, sb.len, "E431;", __LINE__);
    /* A head exactly at the limit passes. */
    strbuf_reset(&sb);
    strbuf_append_str(&sb, "GET / HTTP/1.1\r\nHost: x\r\nX: ");
    while (sb.len < 16384 - 4)
        strbuf_append_char(&sb, 'v');
    strbuf_append_str(&sb, "\r\n\r\n");
    check_case(sb.data, sb.len, "H1 /;C0:;", __LINE__);
    /* A target past the limit. */
    strbuf_reset(&sb);
    strbuf_append_str(&sb, "GET /");
    for (int i = 0; i < 17000; i++)
        strbuf_append_char(&sb, 'a');
    strbuf_append_str(&sb, " HTTP/1.1\r\nHost: x\r\n\r\n");
    check_case(sb.data, sb.len, "E414;", __LINE__);
    /* Lines of ':' only: empty names. */
    strbuf_reset(&sb);
    strbuf_append_str(&sb, "GET / HTTP/1.1\r\nHost: x\r\n");
    for (int i = 0; i < 5000; i++)
        strbuf_append_str(&sb, ":\r\n");
    check_case(sb.data, sb.len, "E400;", __LINE__);
    /* Empty lines before a request count towards its head (a fuzzer finding). */
    strbuf_reset(&sb);
    for (int i = 0; i < 8300; i++)
        strbuf_append_str(&sb, "\r\n");
    strbuf_append_str(&sb, "GET / HTTP/1.1\r\nHost: x\r\n\r\n");
    check_case(sb.data, sb.len, "E400;", __LINE__);
    /* A method llhttp refuses right at the head limit: the bytes held back from
     * llhttp still count for the 501/400 verdict (a fuzzer finding). */
    strbuf_reset(&sb);
    for (int i = 0; i < 16377; i++)
        strbuf_append_char(&sb, '\n');
    strbuf_append_str(&sb, "chunqed\n\n\r");
    check_case(sb.data, sb.len, "E400;", __LINE__);
    /* Chunk extensions past 4096 bytes in one request. */
    strbuf_reset(&sb);
    strbuf_append_str(&sb, "POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n");
    for (int i = 0; i < 5; i++) {
        strbuf_append_str(&sb, "1;e=");
        for (int j = 0; j < 1000; j++)
            strbuf_append_char(&sb, 'x');
        strbuf_append_str(&sb, "\r\na\r\n");
    }
    strbuf_append_str(&sb, "0\r\n\r\n");
    check_case(sb.data, sb.len, "H3 /;E400;", __LINE__);
    /* A chunked body past max_body. */
    strbuf_reset(&sb);
    strbuf_append_str(&sb, "POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n");
    for (int i = 0; i < 3; i++) {
        strbuf_append_str(&sb, "190\r\n");
        for (int j = 0; j < 400; j++)
            strbuf_append_char(&sb, 'x');
        strbuf_append_str(&sb, "\r\n");
    }
    strbuf_append_str(&sb, "0\r\n\r\n");
    check_case(sb.data, sb.len, "H3 /;E413;", __LINE__);
    strbuf_free(&sb);
}

/* Feeds `s` whole and returns whether the parser is then at a boundary. */
static bool boundary_after(const char *s) {
    http_request_t *r = http_request_new(&limits);
    size_t pos = 0, len = strlen(s), used;
    /* As the connection does: parse on after a head until more input is needed. */
    for (;;) {
        http_request_event_t ev = http_request_parse(r, s + pos, len - pos, &used);
        pos += used;
        if (ev == HTTP_REQUEST_MORE || ev == HTTP_REQUEST_INVALID) break;
        if (ev == HTTP_REQUEST_COMPLETE && pos == len) break;
    }
    bool at = http_request_at_boundary(r);
    http_request_free(r);
    return at;
}

/* A parser at a boundary is handed to other connections (http/ctx.h spares):
 * only where it reads what follows exactly as a new one would. */
static void test_boundary(void) {
    CHECK(boundary_after(""));
    CHECK(boundary_after("GET / HTTP/1.1\r\nHost: x\r\n\r\n"));
    CHECK(boundary_after("GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n"));
    CHECK(!boundary_after("\r\n"));                 /* empty lines count toward the head */
    CHECK(!boundary_after("GET / HTTP/1.1\r\nHo")); /* a head under way */
    CHECK(!boundary_after("POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n\r\na"));
    CHECK(!boundary_after("GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"));
    CHECK(!boundary_after("GET / HTTP/1.0\r\n\r\n"));
    CHECK(
        !boundary_after("GET / HTTP/1.1\r\nHost: x\r\nUpgrade: ws\r\nConnection: upgrade\r\n\r\n"));
    CHECK(!boundary_after("BREW / HTTP/1.1\r\n\r\n")); /* refused */
    CHECK(!boundary_after("GE"));                      /* a method under way */
}

int main(void) {
    test_boundary();
    test_valid();
    test_invalid();
    test_limits();
    printf("%d cases, each whole, split at every offset, in 1-byte and random pieces\n", cases_run);
    return CHECK_SUMMARY();
}
