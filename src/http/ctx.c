/* ctx: a server's state shared with its connections; response accounting and
 * request ids (ctx.h). */
#include "http/ctx.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>

#include "util/mem.h"

void http_ctx_init(http_ctx_t *ctx, uv_loop_t *loop, const http_handler_t *handler,
                   const http_limits_t *limits, const http_conn_hooks_t *hooks) {
    ctx->loop = loop;
    ctx->handler = *handler;
    ctx->limits = *limits;
    ctx->hooks = *hooks;
    ctx->request_limits = (http_request_limits_t){limits->max_head, limits->max_header_lines,
                                                  limits->max_body, HTTP_CHUNK_EXT_MAX};
    ctx->read_buffer = mem_malloc(HTTP_READ_BUFFER_SIZE);
    unsigned routes = handler->route_count ? handler->route_count : 1;
    ctx->durations = mem_calloc((size_t)routes * 6, sizeof(*ctx->durations));
    /* Ids unique across processes without coordination: a random prefix. */
    if (uv_random(NULL, NULL, &ctx->request_id_prefix, sizeof(ctx->request_id_prefix), 0, NULL) !=
        0)
        ctx->request_id_prefix = (uint32_t)uv_hrtime() ^ (uint32_t)uv_os_getpid();
}

void http_ctx_free(http_ctx_t *ctx) {
    while (ctx->spare_request_count > 0)
        http_request_free(ctx->spare_requests[--ctx->spare_request_count]);
    while (ctx->spare_output_count > 0)
        strbuf_free(&ctx->spare_outputs[--ctx->spare_output_count]);
    free(ctx->read_buffer);
    free(ctx->durations);
    strbuf_free(&ctx->scratch);
}

http_request_t *http_ctx_take_request(http_ctx_t *ctx) {
    if (ctx->spare_request_count > 0) return ctx->spare_requests[--ctx->spare_request_count];
    return http_request_new(&ctx->request_limits);
}

void http_ctx_give_request(http_ctx_t *ctx, http_request_t *r) {
    if (ctx->spare_request_count == HTTP_SPARES_MAX) {
        http_request_free(r);
        return;
    }
    http_request_trim(r, HTTP_SPARE_KEEP);
    ctx->spare_requests[ctx->spare_request_count++] = r;
}

void http_ctx_take_output(http_ctx_t *ctx, strbuf_t *out) {
    if (ctx->spare_output_count > 0) *out = ctx->spare_outputs[--ctx->spare_output_count];
}

void http_ctx_give_output(http_ctx_t *ctx, strbuf_t *out) {
    if (out->cap > HTTP_SPARE_KEEP || ctx->spare_output_count == HTTP_SPARES_MAX) {
        strbuf_free(out);
        return;
    }
    if (!out->data) return;
    strbuf_reset(out);
    ctx->spare_outputs[ctx->spare_output_count++] = *out;
    *out = (strbuf_t)STRBUF_INIT;
}

void http_ctx_observe(http_ctx_t *ctx, unsigned route, int status, double seconds) {
    if (status < 100 || status >= 600) return;
    ctx->responses[status / 100]++;
    if (route >= ctx->handler.route_count) route = 0;
    histogram_observe(&ctx->durations[route * 6 + (unsigned)status / 100], seconds);
}

void http_ctx_new_request_id(http_ctx_t *ctx, char out[HTTP_REQUEST_ID_MAX + 1]) {
    snprintf(out, HTTP_REQUEST_ID_MAX + 1, "%08" PRIx32 "%08" PRIx32, ctx->request_id_prefix,
             ctx->request_id_seq++);
}
