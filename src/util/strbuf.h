/* strbuf: a growable byte buffer with one owner, to which appending never
 * fails (running out of memory aborts, util/mem.h).
 *
 * Used for request bodies, response output and job encoding. A strbuf keeps its
 * capacity across strbuf_reset() so a connection that reuses one allocates only
 * while it grows, not per request. */
#ifndef MULTIVAC_STRBUF_H
#define MULTIVAC_STRBUF_H

#include <stdarg.h>
#include <stddef.h>

typedef struct strbuf {
    char *data;
    size_t len;
    size_t cap;
} strbuf_t;

#define STRBUF_INIT                                                                                \
    { NULL, 0, 0 }

void strbuf_init(strbuf_t *sb);
void strbuf_free(strbuf_t *sb);
static inline void strbuf_reset(strbuf_t *sb) { sb->len = 0; }

/* Frees the buffer, contents and all, when its capacity is over `keep`: for
 * buffers reused between requests, after one grew for a large request. */
void strbuf_shrink(strbuf_t *sb, size_t keep);

/* Makes room for at least `extra` more bytes. Appending cannot fail: running
 * out of memory aborts (util/mem.h), and so does an `extra` past half the
 * address space. */
void strbuf_reserve(strbuf_t *sb, size_t extra);
void strbuf_append(strbuf_t *sb, const void *data, size_t len);
void strbuf_append_str(strbuf_t *sb, const char *s);
void strbuf_append_char(strbuf_t *sb, char c);
void strbuf_append_u64(strbuf_t *sb, unsigned long long v);
/* Append nothing when vsnprintf fails on `fmt` (an encoding error). */
void strbuf_printf(strbuf_t *sb, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void strbuf_vprintf(strbuf_t *sb, const char *fmt, va_list ap)
    __attribute__((format(printf, 2, 0)));
/* Appends `s` escaped for use inside a JSON string (no surrounding quotes). */
void strbuf_append_json(strbuf_t *sb, const char *s, size_t len);
/* Drops the first `n` bytes, keeping the rest. */
void strbuf_consume(strbuf_t *sb, size_t n);

#endif
