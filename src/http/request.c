/* request: llhttp (strict) plus the framing rules it leaves to the application.
 * Every byte reaches us through llhttp's span callbacks, in pieces that follow
 * the reads, so every accumulation below is bounded on its own. */
#include "http/request.h"

#include <ctype.h>
#include <llhttp.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "util/mem.h"
#include "util/strbuf.h"

/* Long enough for every header name we look at; longer names never match. */
#define REQUEST_NAME_MAX 24
/* Longer than any method token worth a 501. */
#define REQUEST_LINE_PREFIX 32

typedef enum {
    FIELD_OTHER,
    FIELD_HOST,
    FIELD_TRANSFER_ENCODING,
    FIELD_EXPECT,
    FIELD_CAPTURED, /* + http_header_t */
} request_field_t;

struct http_request {
    llhttp_t parser;
    llhttp_settings_t settings;
    http_request_limits_t limits;
    http_request_state_t state;

    size_t head_bytes; /* wire bytes of the current head so far */
    bool url_complete; /* past the request target: an oversized head is 431, not 414 */
    size_t header_lines;
    size_t chunk_ext_bytes;
    int error_status; /* set by a callback that refuses the request */
    /* The first bytes of the request line, to tell an unknown method (501) from
     * noise (400) however the line was split; METHOD_SCAN waits for enough. */
    char line[REQUEST_LINE_PREFIX];
    size_t line_len;
    bool method_scan;
    bool upgraded; /* past an Upgrade/CONNECT request: nothing more is parsed */
    const char *error_reason;

    http_method_t method;
    strbuf_t target;
    strbuf_t body;

    char name[REQUEST_NAME_MAX];
    size_t name_len; /* REQUEST_NAME_MAX + 1: too long to be one of ours */
    request_field_t field;

    unsigned host_count;
    unsigned te_count;
    strbuf_t te;
    unsigned expect_count;
    strbuf_t expect;
    unsigned captured_count[HTTP_HEADER_CAPTURED_COUNT];
    strbuf_t captured[HTTP_HEADER_CAPTURED_COUNT];
    bool has_body;
    bool expects_continue;
};

static const char *const request_captured_names[HTTP_HEADER_CAPTURED_COUNT] = {
    [HTTP_HEADER_CONTENT_TYPE] = "content-type",
    [HTTP_HEADER_AUTHORIZATION] = "authorization",
    [HTTP_HEADER_IDEMPOTENCY_KEY] = "idempotency-key",
    [HTTP_HEADER_REQUEST_ID] = "x-request-id",
};

static http_request_t *request_of(llhttp_t *p) { return p->data; }

static int request_refuse(http_request_t *r, int status, const char *reason) {
    r->error_status = status;
    r->error_reason = reason;
    return HPE_USER;
}

/* ---- llhttp callbacks ------------------------------------------------------ */

static int request_on_message_begin(llhttp_t *p) {
    http_request_t *r = request_of(p);
    r->state = HTTP_REQUEST_IN_HEAD;
    r->method = HTTP_METHOD_OTHER;
    r->url_complete = false;
    r->header_lines = 0;
    r->chunk_ext_bytes = 0;
    r->name_len = 0;
    r->field = FIELD_OTHER;
    r->host_count = r->te_count = r->expect_count = 0;
    r->has_body = r->expects_continue = false;
    strbuf_reset(&r->target);
    strbuf_reset(&r->body);
    strbuf_reset(&r->te);
    strbuf_reset(&r->expect);
    for (int i = 0; i < HTTP_HEADER_CAPTURED_COUNT; i++) {
        r->captured_count[i] = 0;
        strbuf_reset(&r->captured[i]);
    }
    return HPE_OK;
}

static int request_on_url(llhttp_t *p, const char *at, size_t len) {
    strbuf_append(&request_of(p)->target, at, len);
    return HPE_OK;
}

static int request_on_url_complete(llhttp_t *p) {
    request_of(p)->url_complete = true;
    return HPE_OK;
}

static int request_on_header_field(llhttp_t *p, const char *at, size_t len) {
    http_request_t *r = request_of(p);
    /* Copy only while the whole name still fits; past that it stays one longer
     * than the buffer, so it can never compare equal to one of ours. */
    if (r->name_len + len <= REQUEST_NAME_MAX) {
        memcpy(r->name + r->name_len, at, len);
        r->name_len += len;
    } else {
        r->name_len = REQUEST_NAME_MAX + 1;
    }
    return HPE_OK;
}

static bool request_name_is(const http_request_t *r, const char *name) {
    size_t n = strlen(name);
    return r->name_len == n && strncasecmp(r->name, name, n) == 0;
}

static int request_on_header_field_complete(llhttp_t *p) {
    http_request_t *r = request_of(p);
    if (++r->header_lines > r->limits.max_header_lines)
        return request_refuse(r, 431, "too many header fields");
    r->field = FIELD_OTHER;
    if (request_name_is(r, "host")) {
        r->field = FIELD_HOST;
        r->host_count++;
    } else if (request_name_is(r, "transfer-encoding")) {
        r->field = FIELD_TRANSFER_ENCODING;
        r->te_count++;
        strbuf_reset(&r->te);
    } else if (request_name_is(r, "expect")) {
        r->field = FIELD_EXPECT;
        r->expect_count++;
        strbuf_reset(&r->expect);
    } else {
        for (int i = 0; i < HTTP_HEADER_CAPTURED_COUNT; i++) {
            if (!request_name_is(r, request_captured_names[i])) continue;
            r->field = (request_field_t)(FIELD_CAPTURED + i);
            r->captured_count[i]++;
            strbuf_reset(&r->captured[i]);
            break;
        }
    }
    r->name_len = 0;
    return HPE_OK;
}

/* Values are bounded by the head limit, which parse() enforces on the wire. */
static int request_on_header_value(llhttp_t *p, const char *at, size_t len) {
    http_request_t *r = request_of(p);
    switch (r->field) {
    case FIELD_OTHER:
    case FIELD_HOST: break;
    case FIELD_TRANSFER_ENCODING: strbuf_append(&r->te, at, len); break;
    case FIELD_EXPECT: strbuf_append(&r->expect, at, len); break;
    default: strbuf_append(&r->captured[r->field - FIELD_CAPTURED], at, len); break;
    }
    return HPE_OK;
}

/* Surrounding optional whitespace is not part of a field value (RFC 9110 5.5). */
static const char *request_trim(const strbuf_t *sb, size_t *len) {
    const char *s = sb->data ? sb->data : "";
    size_t n = sb->len;
    while (n > 0 && (*s == ' ' || *s == '\t')) {
        s++;
        n--;
    }
    while (n > 0 && (s[n - 1] == ' ' || s[n - 1] == '\t'))
        n--;
    *len = n;
    return s;
}

static bool request_value_is(const strbuf_t *sb, const char *want) {
    size_t len;
    const char *v = request_trim(sb, &len);
    return len == strlen(want) && strncasecmp(v, want, len) == 0;
}

static http_method_t request_method(uint8_t m) {
    switch (m) {
    case HTTP_GET: return HTTP_METHOD_GET;
    case HTTP_HEAD: return HTTP_METHOD_HEAD;
    case HTTP_POST: return HTTP_METHOD_POST;
    case HTTP_OPTIONS: return HTTP_METHOD_OPTIONS;
    default: return HTTP_METHOD_OTHER;
    }
}

/* The rules llhttp leaves to us, in the order a client most needs to hear. */
static int request_check_head(http_request_t *r) {
    llhttp_t *p = &r->parser;
    if (p->http_major == 0) return request_refuse(r, 400, "malformed HTTP request");
    if (p->http_major > 1) return request_refuse(r, 505, "HTTP version not supported");
    if (p->method == HTTP_CONNECT) return request_refuse(r, 501, "CONNECT is not supported");
    if (p->http_minor == 1 && r->host_count == 0)
        return request_refuse(r, 400, "an HTTP/1.1 request needs a Host header");
    if (r->host_count > 1) return request_refuse(r, 400, "more than one Host header");
    for (int i = 0; i < HTTP_HEADER_CAPTURED_COUNT; i++)
        if (r->captured_count[i] > 1) return request_refuse(r, 400, "repeated header field");
    if (r->te_count > 0) {
        /* Two framings for one body is how requests are smuggled. HTTP/1.0 has
         * no chunked coding, so its framing would be ambiguous too. */
        if (p->flags & F_CONTENT_LENGTH)
            return request_refuse(r, 400, "Transfer-Encoding together with Content-Length");
        if (p->http_minor == 0)
            return request_refuse(r, 400, "Transfer-Encoding in an HTTP/1.0 request");
        if (r->te_count > 1 || !request_value_is(&r->te, "chunked"))
            return request_refuse(r, 501, "only Transfer-Encoding: chunked is supported");
    }
    if ((p->flags & F_CONTENT_LENGTH) && p->content_length > r->limits.max_body)
        return request_refuse(r, 413, "request body too large");
    if (r->expect_count > 1 ||
        (r->expect_count == 1 && !request_value_is(&r->expect, "100-continue")))
        return request_refuse(r, 417, "unsupported Expect header");
    return HPE_OK;
}

static int request_on_headers_complete(llhttp_t *p) {
    http_request_t *r = request_of(p);
    r->method = request_method(p->method);
    int rc = request_check_head(r);
    if (rc != HPE_OK) return rc;
    r->has_body =
        (p->flags & F_CHUNKED) || ((p->flags & F_CONTENT_LENGTH) && p->content_length > 0);
    r->expects_continue = r->expect_count == 1 && r->has_body;
    r->state = HTTP_REQUEST_IN_BODY;
    /* Stop so the connection can answer from the head alone. */
    return HPE_PAUSED;
}

static int request_on_chunk_extension(llhttp_t *p, const char *at, size_t len) {
    http_request_t *r = request_of(p);
    (void)at;
    r->chunk_ext_bytes += len;
    if (r->chunk_ext_bytes > r->limits.max_chunk_ext)
        return request_refuse(r, 400, "chunk extensions too long");
    return HPE_OK;
}

static int request_on_body(llhttp_t *p, const char *at, size_t len) {
    http_request_t *r = request_of(p);
    if (len > r->limits.max_body - r->body.len)
        return request_refuse(r, 413, "request body too large");
    strbuf_append(&r->body, at, len);
    return HPE_OK;
}

static int request_on_message_complete(llhttp_t *p) {
    request_of(p)->state = HTTP_REQUEST_DONE;
    /* Stop so one request is handled at a time, outside the parser. */
    return HPE_PAUSED;
}

/* ---- lifecycle ------------------------------------------------------------- */

http_request_t *http_request_new(const http_request_limits_t *limits) {
    http_request_t *r = mem_calloc(1, sizeof(*r));
    r->limits = *limits;
    llhttp_settings_t *s = &r->settings;
    llhttp_settings_init(s);
    s->on_message_begin = request_on_message_begin;
    s->on_url = request_on_url;
    s->on_url_complete = request_on_url_complete;
    s->on_header_field = request_on_header_field;
    s->on_header_field_complete = request_on_header_field_complete;
    s->on_header_value = request_on_header_value;
    s->on_headers_complete = request_on_headers_complete;
    s->on_chunk_extension_name = request_on_chunk_extension;
    s->on_chunk_extension_value = request_on_chunk_extension;
    s->on_body = request_on_body;
    s->on_message_complete = request_on_message_complete;
    llhttp_init(&r->parser, HTTP_REQUEST, s);
    r->parser.data = r;
    r->state = HTTP_REQUEST_IDLE;
    return r;
}

void http_request_free(http_request_t *r) {
    if (!r) return;
    strbuf_free(&r->target);
    strbuf_free(&r->body);
    strbuf_free(&r->te);
    strbuf_free(&r->expect);
    for (int i = 0; i < HTTP_HEADER_CAPTURED_COUNT; i++)
        strbuf_free(&r->captured[i]);
    free(r);
}

/* ---- parsing --------------------------------------------------------------- */

static bool request_tchar(unsigned char c) {
    return isalnum(c) || (c && strchr("!#$%&'*+-.^_`|~", c));
}

/* A well-formed but unknown method ("BREW / HTTP/1.1") deserves 501; a broken
 * request line ("GET", binary noise) is just malformed. 0: not known yet. */
static int request_method_verdict(const http_request_t *r) {
    size_t i = 0, start = 0;
    while (i < r->line_len && request_tchar((unsigned char)r->line[i]))
        i++;
    if (i == r->line_len) return r->line_len == sizeof(r->line) ? 400 : 0;
    return i > start && r->line[i] == ' ' ? 501 : 400;
}

/* Empty lines before a request line are skipped (RFC 9112 2.2), and are not
 * kept: however many there are, and however split, the prefix is the same. */
static void request_keep_line(http_request_t *r, const char *data, size_t len) {
    if (r->line_len == 0)
        while (len > 0 && (*data == '\r' || *data == '\n')) {
            data++;
            len--;
        }
    size_t n = sizeof(r->line) - r->line_len;
    if (n > len) n = len;
    memcpy(r->line + r->line_len, data, n);
    r->line_len += n;
}

static http_request_event_t request_fail(http_request_t *r, int status, const char *reason) {
    r->state = HTTP_REQUEST_DONE;
    r->method_scan = false;
    r->error_status = status;
    r->error_reason = reason;
    return HTTP_REQUEST_INVALID;
}

static http_request_event_t request_method_event(http_request_t *r) {
    int verdict = request_method_verdict(r);
    if (verdict == 0) {
        r->method_scan = true;
        return HTTP_REQUEST_MORE;
    }
    return verdict == 501 ? request_fail(r, 501, "method not implemented")
                          : request_fail(r, 400, "malformed HTTP request");
}

static http_request_event_t request_invalid(http_request_t *r, llhttp_errno_t err) {
    if (r->error_status) { /* one of our callbacks refused */
        r->state = HTTP_REQUEST_DONE;
        return HTTP_REQUEST_INVALID;
    }
    if (err == HPE_INVALID_METHOD) return request_method_event(r);
    if (err == HPE_INVALID_VERSION && r->parser.http_major >= 2 && r->parser.http_major <= 9)
        return request_fail(r, 505, "HTTP version not supported");
    /* llhttp refuses a Transfer-Encoding after a Content-Length with this code. */
    if (err == HPE_INVALID_TRANSFER_ENCODING && !(r->parser.flags & F_CONTENT_LENGTH))
        return request_fail(r, 501, "only Transfer-Encoding: chunked is supported");
    return request_fail(r, 400, "malformed HTTP request");
}

http_request_event_t http_request_parse(http_request_t *r, const char *data, size_t len,
                                        size_t *used) {
    *used = 0;
    if (r->method_scan) {
        *used = len;
        request_keep_line(r, data, len);
        return request_method_event(r);
    }
    if (r->error_status) return HTTP_REQUEST_INVALID;
    if (r->upgraded) { /* the connection closes after its answer */
        *used = len;
        return HTTP_REQUEST_MORE;
    }
    if (r->state == HTTP_REQUEST_DONE) {
        r->state = HTTP_REQUEST_IDLE;
        r->head_bytes = 0;
        r->line_len = 0;
    }
    bool in_head = r->state != HTTP_REQUEST_IN_BODY;
    /* The head is counted on the wire (empty lines before it, whitespace and
     * line ends included): feed no byte past the limit. */
    size_t feed = len;
    if (in_head && feed > r->limits.max_head - r->head_bytes)
        feed = r->limits.max_head - r->head_bytes;
    if (in_head) request_keep_line(r, data, feed);

    llhttp_errno_t err = llhttp_execute(&r->parser, data, feed);
    size_t n = feed;
    if (err == HPE_PAUSED) {
        n = (size_t)(llhttp_get_error_pos(&r->parser) - data);
        llhttp_resume(&r->parser);
    } else if (err == HPE_PAUSED_UPGRADE) {
        r->upgraded = true;
        *used = len;
        return HTTP_REQUEST_MORE;
    } else if (err != HPE_OK) {
        /* All of the piece is taken: what was held back from llhttp still
         * belongs to the line an unknown-method verdict looks at. */
        if (in_head && feed < len) request_keep_line(r, data + feed, len - feed);
        *used = len;
        return request_invalid(r, err);
    }
    *used = n;
    /* A head that completed here ended within the limit; one still under way
     * with bytes left over would pass it. */
    if (in_head && (r->state == HTTP_REQUEST_IN_HEAD || r->state == HTTP_REQUEST_IDLE)) {
        r->head_bytes += n;
        if (feed < len) {
            *used = len;
            if (r->state == HTTP_REQUEST_IDLE)
                return request_fail(r, 400, "malformed HTTP request");
            return r->url_complete ? request_fail(r, 431, "request header section too large")
                                   : request_fail(r, 414, "request target too long");
        }
    }
    if (err != HPE_PAUSED) return HTTP_REQUEST_MORE;
    return r->state == HTTP_REQUEST_DONE ? HTTP_REQUEST_COMPLETE : HTTP_REQUEST_HEAD;
}

http_request_state_t http_request_state(const http_request_t *r) { return r->state; }

bool http_request_at_boundary(const http_request_t *r) {
    if (r->error_status || r->upgraded || r->method_scan) return false;
    /* After a request without keep-alive, llhttp takes nothing more. */
    if (r->state == HTTP_REQUEST_DONE) return http_request_keep_alive(r);
    return r->state == HTTP_REQUEST_IDLE && r->head_bytes == 0;
}

int http_request_error(const http_request_t *r, const char **reason) {
    if (reason) *reason = r->error_reason ? r->error_reason : "malformed HTTP request";
    return r->error_status;
}

/* ---- accessors ------------------------------------------------------------- */

http_method_t http_request_method(const http_request_t *r) { return r->method; }

const char *http_request_target(const http_request_t *r, size_t *len) {
    *len = r->target.len;
    return r->target.data ? r->target.data : "";
}

int http_request_minor(const http_request_t *r) { return r->parser.http_minor; }

const char *http_request_method_name(const http_request_t *r) {
    return llhttp_method_name((llhttp_method_t)r->parser.method);
}

bool http_request_keep_alive(const http_request_t *r) {
    return llhttp_should_keep_alive(&r->parser) && !http_request_upgrade(r);
}

bool http_request_upgrade(const http_request_t *r) {
    return r->parser.upgrade || r->parser.method == HTTP_CONNECT;
}

bool http_request_has_body(const http_request_t *r) { return r->has_body; }

bool http_request_expects_continue(const http_request_t *r) { return r->expects_continue; }

const char *http_request_header(const http_request_t *r, http_header_t h, size_t *len) {
    if (r->captured_count[h] == 0) {
        *len = 0;
        return NULL;
    }
    return request_trim(&r->captured[h], len);
}

char *http_request_body(http_request_t *r, size_t *len) {
    *len = r->body.len;
    return r->body.data;
}

void http_request_trim(http_request_t *r, size_t keep) {
    strbuf_shrink(&r->body, keep);
    strbuf_shrink(&r->target, keep);
    for (int i = 0; i < HTTP_HEADER_CAPTURED_COUNT; i++)
        strbuf_shrink(&r->captured[i], keep);
}
