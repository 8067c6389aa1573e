/* response: writes a response (status line, the headers every answer carries,
 * body) into a connection's output, and names status codes. */
#include <string.h>
#include <time.h>

#include "http/ctx.h"

const char *http_status_reason(int status) {
    switch (status) {
    case 100: return "Continue";
    case 200: return "OK";
    case 204: return "No Content";
    case 400: return "Bad Request";
    case 404: return "Not Found";
    case 405: return "Method Not Allowed";
    case 401: return "Unauthorized";
    case 408: return "Request Timeout";
    case 413: return "Content Too Large";
    case 414: return "URI Too Long";
    case 415: return "Unsupported Media Type";
    case 417: return "Expectation Failed";
    case 422: return "Unprocessable Content";
    case 431: return "Request Header Fields Too Large";
    case 500: return "Internal Server Error";
    case 501: return "Not Implemented";
    case 503: return "Service Unavailable";
    case 505: return "HTTP Version Not Supported";
    default: return "Unknown";
    }
}

static void http_date_refresh(http_ctx_t *ctx) {
    uint64_t second = uv_now(ctx->loop) / 1000;
    if (ctx->date_len && second == ctx->date_second) return;
    time_t now = time(NULL);
    struct tm tm;
    gmtime_r(&now, &tm);
    ctx->date_len =
        strftime(ctx->date, sizeof(ctx->date), "Date: %a, %d %b %Y %H:%M:%S GMT\r\n", &tm);
    ctx->date_second = second;
}

void http_response_append(strbuf_t *out, http_ctx_t *ctx, const http_response_t *r,
                          http_conn_mode_t mode, bool head, const char *request_id) {
    static const char server_headers[] = "Server: multivac\r\nX-Content-Type-Options: nosniff\r\n";
    const char *reason = http_status_reason(r->status);

    http_date_refresh(ctx);
    /* Reserve once for the usual case so the appends below do not reallocate. */
    strbuf_reserve(out, 256 + r->body_len);
    strbuf_append(out, "HTTP/1.1 ", 9);
    strbuf_append_u64(out, (unsigned)r->status);
    strbuf_append_char(out, ' ');
    strbuf_append_str(out, reason);
    strbuf_append(out, "\r\n", 2);
    strbuf_append(out, server_headers, sizeof(server_headers) - 1);
    strbuf_append(out, ctx->date, ctx->date_len);
    if (r->content_type) {
        strbuf_append(out, "Content-Type: ", 14);
        strbuf_append_str(out, r->content_type);
        strbuf_append(out, "\r\n", 2);
    }
    strbuf_append(out, "Content-Length: ", 16);
    strbuf_append_u64(out, r->body_len);
    strbuf_append(out, "\r\n", 2);
    if (mode == HTTP_CONN_CLOSE) {
        strbuf_append(out, "Connection: close\r\n", 19);
    } else if (mode == HTTP_CONN_KEEP_1_0) {
        strbuf_append(out, "Connection: keep-alive\r\n", 24);
    }
    if (request_id[0]) {
        strbuf_append(out, "X-Request-Id: ", 14);
        strbuf_append_str(out, request_id);
        strbuf_append(out, "\r\n", 2);
    }
    if (r->extra_headers) strbuf_append_str(out, r->extra_headers);
    strbuf_append(out, "\r\n", 2);
    if (!head) strbuf_append(out, r->body, r->body_len);
}
