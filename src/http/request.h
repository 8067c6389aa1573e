/* request: parses HTTP/1.1 requests from bytes that arrive in any pieces, and
 * enforces MultiVAC's framing rules on top of llhttp's strict mode
 * (docs/http.md): one Host, one unambiguous body length, `chunked` as the only
 * transfer coding, bounded head, header count, chunk extensions and body.
 *
 * No I/O: the connection feeds bytes, gets events, and reads the request
 * through the accessors. Whatever the fragmentation, the same bytes give the
 * same events, and nothing a client sends is copied past a bound. */
#ifndef MULTIVAC_HTTP_REQUEST_H
#define MULTIVAC_HTTP_REQUEST_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "http/http.h"

typedef struct http_request http_request_t;

typedef struct http_request_limits {
    size_t max_head;         /* request line + header section, bytes on the wire (431, 414) */
    size_t max_header_lines; /* header fields per request (431) */
    size_t max_body;         /* decoded body bytes (413) */
    size_t max_chunk_ext;    /* chunk-extension bytes per request (400) */
} http_request_limits_t;

typedef enum {
    HTTP_REQUEST_MORE,     /* every byte given was consumed; more are needed */
    HTTP_REQUEST_HEAD,     /* the head is complete and valid; its body follows */
    HTTP_REQUEST_COMPLETE, /* the whole request is in, body included */
    HTTP_REQUEST_INVALID,  /* refused for good: see http_request_error */
} http_request_event_t;

typedef enum {
    HTTP_REQUEST_IDLE, /* between requests: no byte of the next one seen yet */
    HTTP_REQUEST_IN_HEAD,
    HTTP_REQUEST_IN_BODY,
    HTTP_REQUEST_DONE, /* complete or refused; parse() moves on to the next one */
} http_request_state_t;

http_request_t *http_request_new(const http_request_limits_t *limits);
void http_request_free(http_request_t *r);

/* Parses from `data`, stopping after the first event other than MORE.
 * `*used` is the number of bytes consumed; the caller passes the rest again.
 * After INVALID, the connection must answer with the status and close. */
http_request_event_t http_request_parse(http_request_t *r, const char *data, size_t len,
                                        size_t *used);
http_request_state_t http_request_state(const http_request_t *r);
/* Nothing of a next request has been fed (not even empty lines), and the last
 * one was kept alive, not refused or upgraded: a parser here reads what
 * follows exactly as a new one would, so any connection may reuse it. */
bool http_request_at_boundary(const http_request_t *r);

/* After INVALID: the status to answer (400, 413, 414, 417, 431, 501, 505) and
 * a short reason for the client. */
int http_request_error(const http_request_t *r, const char **reason);

/* Accessors: valid from the HEAD event until the next request begins. */
http_method_t http_request_method(const http_request_t *r);
const char *http_request_target(const http_request_t *r, size_t *len);
/* The method as sent ("GET", "PROPFIND"). */
const char *http_request_method_name(const http_request_t *r);
/* 0 for HTTP/1.0, 1 for HTTP/1.1. */
int http_request_minor(const http_request_t *r);
/* The client allows another request on this connection after this one. */
bool http_request_keep_alive(const http_request_t *r);
/* An Upgrade or CONNECT request: what follows it is not HTTP/1.1 we serve. */
bool http_request_upgrade(const http_request_t *r);
/* A body follows the head (Content-Length > 0, or chunked). */
bool http_request_has_body(const http_request_t *r);
/* Expect: 100-continue was sent. */
bool http_request_expects_continue(const http_request_t *r);

/* The value of a captured header (NULL when absent), exactly as sent minus
 * surrounding whitespace. */
const char *http_request_header(const http_request_t *r, http_header_t h, size_t *len);
/* The decoded body (chunked coding removed), valid after COMPLETE; writable. */
char *http_request_body(http_request_t *r, size_t *len);

/* Drops buffers that grew past `keep` bytes, so one large request does not pin
 * its memory for the connection's lifetime. Call between requests. */
void http_request_trim(http_request_t *r, size_t keep);

#endif
