/* form: decodes straight into the caller's buffer; on any failure the buffer
 * keeps its previous length and `why` points to a static reason. */
#include "api/form.h"

#include <stdbool.h>
#include <string.h>
#include <strings.h>

#include "util/pairs.h"
#include "util/percent.h"

#define FORM_BOUNDARY_MAX 70

#define WHY_BAD_ESCAPE "malformed percent-escape in form body"
#define WHY_NO_BOUNDARY_PARAM "multipart Content-Type has no valid boundary parameter"
#define WHY_NO_DELIMITER "multipart body has no boundary delimiter"
#define WHY_BAD_DELIMITER "malformed boundary line in multipart body"
#define WHY_NO_HEADERS_END "multipart part has no blank line after its headers"
#define WHY_NO_CLOSE "multipart body has no closing boundary"

const char *form_strerror(form_status_t status) {
    switch (status) {
    case FORM_OK: return "ok";
    case FORM_MISSING: return "missing form field";
    case FORM_MALFORMED: return "malformed form body";
    case FORM_UNSUPPORTED:
        return "Content-Type must be application/x-www-form-urlencoded or multipart/form-data";
    }
    return "unknown form status";
}

static bool form_ieq(const char *a, size_t alen, const char *b) {
    return alen == strlen(b) && strncasecmp(a, b, alen) == 0;
}

static bool form_is_ows(char c) { return c == ' ' || c == '\t'; }

/* Past the white space that starts s[i..len). */
static size_t form_skip_ows(const char *s, size_t len, size_t i) {
    while (i < len && form_is_ows(s[i]))
        i++;
    return i;
}

/* Past the token or unquoted value that starts s[i..len): up to ';' or white space. */
static size_t form_token_end(const char *s, size_t len, size_t i) {
    while (i < len && s[i] != ';' && !form_is_ows(s[i]))
        i++;
    return i;
}

/* memmem is a GNU extension; this is enough for delimiters of a few dozen bytes. */
static const char *form_find(const char *hay, size_t hlen, const char *needle, size_t nlen) {
    if (nlen == 0 || hlen < nlen) return NULL;
    const char *end = hay + hlen - nlen + 1;
    for (const char *p = hay; p < end; p++) {
        p = memchr(p, needle[0], (size_t)(end - p));
        if (!p) return NULL;
        if (memcmp(p, needle, nlen) == 0) return p;
    }
    return NULL;
}

/* Decodes one urlencoded byte at in[*i], advancing *i. Returns the byte or -1. */
static int form_decode_at(const char *in, size_t len, size_t *i) {
    unsigned char c = (unsigned char)in[*i];
    if (c == '+') {
        (*i)++;
        return ' ';
    }
    if (c != '%') {
        (*i)++;
        return c;
    }
    int d = percent_decode(in + *i, len - *i);
    if (d >= 0) *i += 3;
    return d;
}

form_status_t form_urldecode(const char *in, size_t len, strbuf_t *out) {
    size_t saved = out->len;
    /* Decoding never grows the text, so one reservation covers it. */
    strbuf_reserve(out, len);
    for (size_t i = 0; i < len;) {
        int c = form_decode_at(in, len, &i);
        if (c < 0) {
            out->len = saved;
            return FORM_MALFORMED;
        }
        out->data[out->len++] = (char)c;
    }
    return FORM_OK;
}

/* Compares an encoded key with a plain name without decoding into a buffer.
 * The body was validated beforehand, so escapes here are well formed. */
static int form_key_equals(const char *key, size_t klen, const char *name) {
    size_t i = 0, n = 0;
    while (i < klen) {
        int c = form_decode_at(key, klen, &i);
        if (c < 0 || name[n] == '\0' || (unsigned char)name[n] != c) return 0;
        n++;
    }
    return name[n] == '\0';
}

static form_status_t form_urlencoded(const char *body, size_t len, const char *name, strbuf_t *out,
                                     const char **why) {
    /* A bad escape anywhere makes the whole body malformed, not just the field
     * asked for, so the answer does not depend on field order. */
    for (const char *p = body, *end = body + len; (p = memchr(p, '%', (size_t)(end - p)));) {
        if (percent_decode(p, (size_t)(end - p)) < 0) {
            *why = WHY_BAD_ESCAPE;
            return FORM_MALFORMED;
        }
        p += 3;
    }

    size_t pos = 0;
    pair_t pair;
    while (pairs_next(body, len, &pos, &pair)) {
        /* The escapes were checked above, so decoding succeeds. */
        if (form_key_equals(pair.name, pair.name_len, name))
            return form_urldecode(pair.value, pair.value_len, out);
    }
    return FORM_MISSING;
}

/* One `; name=value` parameter of a header value such as Content-Type. */
typedef struct form_param {
    const char *name, *value;
    size_t name_len, value_len;
    int quoted; /* value is the inside of a quoted-string, may hold \-escapes */
} form_param_t;

/* Parses the next parameter from s[*pos..len). Returns 1 with `p` filled, 0 at
 * the end, -1 when the text is not a parameter list. */
static int form_next_param(const char *s, size_t len, size_t *pos, form_param_t *p) {
    size_t i = *pos;
    while (i < len && (form_is_ows(s[i]) || s[i] == ';'))
        i++;
    if (i == len) return 0;

    p->name = s + i;
    while (i < len && s[i] != '=' && s[i] != ';' && !form_is_ows(s[i]))
        i++;
    p->name_len = (size_t)(s + i - p->name);
    i = form_skip_ows(s, len, i);
    if (i == len || s[i] != '=' || p->name_len == 0) return -1;
    i = form_skip_ows(s, len, i + 1);

    if (i < len && s[i] == '"') {
        p->quoted = 1;
        p->value = s + ++i;
        while (i < len && s[i] != '"')
            i += s[i] == '\\' && i + 1 < len ? 2 : 1;
        if (i >= len) return -1;
        p->value_len = (size_t)(s + i - p->value);
        i++;
    } else {
        p->quoted = 0;
        p->value = s + i;
        i = form_token_end(s, len, i);
        p->value_len = (size_t)(s + i - p->value);
    }
    i = form_skip_ows(s, len, i);
    if (i < len && s[i] != ';') return -1;
    *pos = i;
    return 1;
}

/* Copies a parameter value, undoing quoted-pair escapes. Returns its length,
 * or -1 when it does not fit `cap`. */
static int form_param_copy(const form_param_t *p, char *dst, size_t cap) {
    size_t n = 0;
    for (size_t i = 0; i < p->value_len; i++) {
        if (p->quoted && p->value[i] == '\\') i++;
        if (n == cap) return -1;
        dst[n++] = p->value[i];
    }
    return (int)n;
}

static int form_param_equals(const form_param_t *p, const char *s) {
    size_t n = 0;
    for (size_t i = 0; i < p->value_len; i++) {
        if (p->quoted && p->value[i] == '\\') i++;
        if (s[n] == '\0' || s[n] != p->value[i]) return 0;
        n++;
    }
    return s[n] == '\0';
}

/* Splits a header value into its leading token (media type, disposition type)
 * and the offset where its parameters start. */
static size_t form_leading_token(const char *s, size_t len, const char **tok, size_t *tok_len) {
    size_t i = form_skip_ows(s, len, 0);
    *tok = s + i;
    i = form_token_end(s, len, i);
    *tok_len = (size_t)(s + i - *tok);
    return i;
}

/* Whether a part's headers name it as form field `name` (and not a file). */
static int form_part_is_field(const char *h, size_t hlen, const char *name) {
    size_t pos = 0;
    while (pos < hlen) {
        const char *line = h + pos;
        const char *crlf = form_find(line, hlen - pos, "\r\n", 2);
        size_t llen = crlf ? (size_t)(crlf - line) : hlen - pos;
        pos += llen + 2;

        const char *colon = memchr(line, ':', llen);
        if (!colon || !form_ieq(line, (size_t)(colon - line), "content-disposition")) continue;

        const char *v = colon + 1;
        size_t vlen = llen - (size_t)(v - line);
        const char *type;
        size_t type_len;
        size_t ppos = form_leading_token(v, vlen, &type, &type_len);
        if (!form_ieq(type, type_len, "form-data")) return 0;

        form_param_t p;
        int found = 0, rc;
        while ((rc = form_next_param(v, vlen, &ppos, &p)) == 1) {
            /* filename* is RFC 5987's form of filename: a file either way. */
            if (form_ieq(p.name, p.name_len, "filename") ||
                form_ieq(p.name, p.name_len, "filename*"))
                return 0;
            if (form_ieq(p.name, p.name_len, "name")) found = found || form_param_equals(&p, name);
        }
        return rc == 0 && found;
    }
    return 0;
}

static form_status_t form_multipart(const char *ct, size_t ct_len, size_t params_at,
                                    const char *body, size_t len, const char *name, strbuf_t *out,
                                    const char **why) {
    /* "\r\n--" + boundary: the CRLF before a delimiter belongs to the delimiter,
     * not to the preceding part's content. */
    char delim[4 + FORM_BOUNDARY_MAX];
    memcpy(delim, "\r\n--", 4);
    int blen = -1;
    form_param_t p;
    int rc;
    while ((rc = form_next_param(ct, ct_len, &params_at, &p)) == 1) {
        if (form_ieq(p.name, p.name_len, "boundary")) {
            blen = form_param_copy(&p, delim + 4, FORM_BOUNDARY_MAX);
            break;
        }
    }
    if (blen < 1) {
        *why = WHY_NO_BOUNDARY_PARAM;
        return FORM_MALFORMED;
    }
    size_t dlen = 4 + (size_t)blen;

    /* The first delimiter may open the body or follow a preamble. */
    size_t pos;
    if (len >= dlen - 2 && memcmp(body, delim + 2, dlen - 2) == 0) {
        pos = dlen - 2;
    } else {
        const char *d = form_find(body, len, delim, dlen);
        if (!d) {
            *why = WHY_NO_DELIMITER;
            return FORM_MALFORMED;
        }
        pos = (size_t)(d - body) + dlen;
    }

    size_t saved = out->len;
    int found = 0;
    for (;;) {
        /* pos is just past a delimiter: "--" closes, else padding and CRLF. */
        if (len - pos >= 2 && body[pos] == '-' && body[pos + 1] == '-') break;
        pos = form_skip_ows(body, len, pos);
        if (len - pos < 2 || body[pos] != '\r' || body[pos + 1] != '\n') {
            *why = len - pos < 2 ? WHY_NO_CLOSE : WHY_BAD_DELIMITER;
            goto fail;
        }
        /* Starting the searches at the CRLF that ends the delimiter line makes a
         * part without headers ("\r\n\r\n" right away) a normal case. */
        size_t line_end = pos;
        const char *next = form_find(body + line_end, len - line_end, delim, dlen);
        if (!next) {
            *why = WHY_NO_CLOSE;
            goto fail;
        }
        size_t next_at = (size_t)(next - body);
        /* Headers end before the next delimiter; content may be empty. */
        const char *hend = form_find(body + line_end, next_at - line_end, "\r\n\r\n", 4);
        if (!hend) {
            *why = WHY_NO_HEADERS_END;
            goto fail;
        }
        size_t hdr_at = line_end + 2, hdr_end = (size_t)(hend - body);
        size_t content_at = hdr_end + 4;

        if (!found && hdr_end > hdr_at &&
            form_part_is_field(body + hdr_at, hdr_end - hdr_at, name)) {
            strbuf_append(out, body + content_at, next_at - content_at);
            found = 1;
        }
        pos = next_at + dlen;
    }
    return found ? FORM_OK : FORM_MISSING;

fail:
    out->len = saved;
    return FORM_MALFORMED;
}

form_status_t form_get_field(const char *content_type, size_t content_type_len, const char *body,
                             size_t body_len, const char *name, strbuf_t *out, const char **why) {
    const char *dummy;
    if (!why) why = &dummy;
    if (!body) body_len = 0;
    if (!body) body = "";

    form_status_t st = FORM_UNSUPPORTED;
    if (content_type) {
        const char *type;
        size_t type_len;
        size_t params = form_leading_token(content_type, content_type_len, &type, &type_len);
        if (form_ieq(type, type_len, "application/x-www-form-urlencoded"))
            st = form_urlencoded(body, body_len, name, out, why);
        else if (form_ieq(type, type_len, "multipart/form-data"))
            st = form_multipart(content_type, content_type_len, params, body, body_len, name, out,
                                why);
    }
    if (st == FORM_UNSUPPORTED) *why = form_strerror(st);
    /* The API asks only for "data"; naming it makes a better static message. */
    if (st == FORM_MISSING)
        *why = strcmp(name, "data") == 0 ? "missing form field 'data'" : form_strerror(st);
    return st;
}
