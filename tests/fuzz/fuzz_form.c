/* fuzz_form: api/form (urlencoded and multipart field extraction) and
 * util/utf8, checked against an independent UTF-8 decoder.
 *
 * Input:
 *   byte 0   bits 0-1: the Content-Type
 *              0 application/x-www-form-urlencoded
 *              1 multipart/form-data; boundary=<from the input>
 *              2 raw: the input up to the first '\n'
 *              3 none (NULL)
 *            bit 2: the field name comes from the input (else "data")
 *            bit 3: multipart boundary in double quotes
 *   then, with bit 2, one length byte (% 16) and the field name;
 *   then, for multipart, one length byte (% 80) and the boundary;
 *   for raw, the content type and its '\n'; the rest is the body.
 * Every piece is copied into a buffer of its exact size (no NUL), so ASan
 * sees any read past one.
 *
 * Invariants, abort() on violation: utf8_valid and utf8_sequence agree with
 * the RFC 3629 decoder below on the body, the decoded field and the
 * urldecoded body; a failed form_get_field leaves `out` as it was and says
 * why; a field is never longer than the body it came from. */
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api/form.h"
#include "util/strbuf.h"
#include "util/utf8.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void fail(const char *what) {
    fprintf(stderr, "fuzz_form: invariant violated: %s\n", what);
    abort();
}

/* Length of the code point's encoding at s[0], or 0 when it is not a valid
 * RFC 3629 scalar value: decoded and then range-checked, unlike utf8.c's
 * second-byte table. */
static size_t ref_sequence(const unsigned char *s, size_t len) {
    if (len == 0) return 0;
    uint32_t cp = s[0];
    size_t n;
    uint32_t min;
    if (cp < 0x80) return 1;
    if ((cp & 0xE0) == 0xC0) {
        n = 2;
        cp &= 0x1F;
        min = 0x80;
    } else if ((cp & 0xF0) == 0xE0) {
        n = 3;
        cp &= 0x0F;
        min = 0x800;
    } else if ((cp & 0xF8) == 0xF0) {
        n = 4;
        cp &= 0x07;
        min = 0x10000;
    } else {
        return 0;
    }
    if (len < n) return 0;
    for (size_t i = 1; i < n; i++) {
        if ((s[i] & 0xC0) != 0x80) return 0;
        cp = cp << 6 | (s[i] & 0x3Fu);
    }
    if (cp < min || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) return 0;
    return n;
}

static bool ref_valid(const unsigned char *s, size_t len) {
    size_t i = 0;
    while (i < len) {
        size_t n = ref_sequence(s + i, len - i);
        if (n == 0) return false;
        i += n;
    }
    return true;
}

static void check_utf8(const char *s, size_t len) {
    if (utf8_valid(s, len) != ref_valid((const unsigned char *)s, len))
        fail("utf8_valid disagrees with the reference decoder");
    /* Every position, not only sequence starts: utf8_sequence is public. */
    for (size_t i = 0; i < len && i < 64; i++)
        if (utf8_sequence((const unsigned char *)s + i, len - i) !=
            ref_sequence((const unsigned char *)s + i, len - i))
            fail("utf8_sequence disagrees with the reference decoder");
}

static char *dup_exact(const void *p, size_t len) {
    char *d = malloc(len ? len : 1);
    if (!d) abort();
    if (len) memcpy(d, p, len);
    return d;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size == 0) return 0;
    unsigned mode = data[0];
    const uint8_t *p = data + 1, *end = data + size;

    char name[17] = "data";
    if ((mode & 4) && p < end) {
        size_t n = *p++ % 16;
        if (n > (size_t)(end - p)) n = (size_t)(end - p);
        memcpy(name, p, n);
        name[n] = '\0'; /* an embedded NUL just shortens it */
        p += n;
    }

    strbuf_t ct = STRBUF_INIT;
    bool has_ct = true;
    switch (mode & 3) {
    case 0: strbuf_append_str(&ct, "application/x-www-form-urlencoded"); break;
    case 1: {
        size_t n = p < end ? *p++ % 80 : 0;
        if (n > (size_t)(end - p)) n = (size_t)(end - p);
        strbuf_append_str(&ct, "multipart/form-data; boundary=");
        if (mode & 8) strbuf_append_char(&ct, '"');
        strbuf_append(&ct, p, n);
        if (mode & 8) strbuf_append_char(&ct, '"');
        p += n;
        break;
    }
    case 2: {
        const uint8_t *nl = memchr(p, '\n', (size_t)(end - p));
        size_t n = nl ? (size_t)(nl - p) : (size_t)(end - p);
        strbuf_append(&ct, p, n);
        p += nl ? n + 1 : n;
        break;
    }
    default: has_ct = false; break;
    }

    size_t body_len = (size_t)(end - p);
    char *body = dup_exact(p, body_len);
    char *ctype = has_ct ? dup_exact(ct.data ? ct.data : "", ct.len) : NULL;

    strbuf_t out = STRBUF_INIT;
    strbuf_append_str(&out, "pre");
    const char *why = NULL;
    form_status_t st = form_get_field(ctype, has_ct ? ct.len : 0, body, body_len, name, &out, &why);
    if (out.len < 3 || memcmp(out.data, "pre", 3) != 0) fail("form_get_field clobbered out");
    if (st == FORM_OK) {
        if (out.len - 3 > body_len) fail("field longer than the body");
        check_utf8(out.data + 3, out.len - 3);
    } else {
        if (st != FORM_MISSING && st != FORM_MALFORMED && st != FORM_UNSUPPORTED)
            fail("undocumented form status");
        if (out.len != 3) fail("failed form_get_field changed out's length");
        if (st != FORM_MISSING && !why) fail("failure without a reason");
    }

    check_utf8(body, body_len);

    strbuf_t dec = STRBUF_INIT;
    form_status_t ds = form_urldecode(body, body_len, &dec);
    if (ds == FORM_OK) {
        if (dec.len > body_len) fail("urldecoded longer than its input");
        check_utf8(dec.data ? dec.data : "", dec.len);
    } else if (ds != FORM_MALFORMED) {
        fail("form_urldecode: undocumented status");
    }

    strbuf_free(&dec);
    strbuf_free(&out);
    strbuf_free(&ct);
    free(ctype);
    free(body);
    return 0;
}
