/* strbuf: a growable byte buffer whose appends always succeed (running out of
 * memory, or asking for more than the address space, aborts: util/mem.h). */
#include "util/strbuf.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util/mem.h"
#include "util/utf8.h"

void strbuf_init(strbuf_t *sb) {
    sb->data = NULL;
    sb->len = 0;
    sb->cap = 0;
}

void strbuf_free(strbuf_t *sb) {
    free(sb->data);
    strbuf_init(sb);
}

void strbuf_shrink(strbuf_t *sb, size_t keep) {
    if (sb->cap > keep) strbuf_free(sb);
}

void strbuf_reserve(strbuf_t *sb, size_t extra) {
    /* No allocation past half the address space can succeed, and doubling the
     * capacity up to it would overflow. */
    if (extra > ((size_t)-1) / 2 - sb->len) mem_oom(extra);
    size_t need = sb->len + extra;
    if (need <= sb->cap) return;
    size_t cap = sb->cap ? sb->cap : 64;
    while (cap < need)
        cap *= 2;
    sb->data = mem_realloc(sb->data, cap);
    sb->cap = cap;
}

void strbuf_append(strbuf_t *sb, const void *data, size_t len) {
    if (len == 0) return;
    strbuf_reserve(sb, len);
    memcpy(sb->data + sb->len, data, len);
    sb->len += len;
}

void strbuf_append_str(strbuf_t *sb, const char *s) { strbuf_append(sb, s, strlen(s)); }

void strbuf_append_char(strbuf_t *sb, char c) {
    strbuf_reserve(sb, 1);
    sb->data[sb->len++] = c;
}

void strbuf_append_u64(strbuf_t *sb, unsigned long long v) {
    char tmp[20];
    size_t n = 0;
    do {
        tmp[sizeof(tmp) - ++n] = (char)('0' + v % 10);
        v /= 10;
    } while (v);
    strbuf_append(sb, tmp + sizeof(tmp) - n, n);
}

void strbuf_vprintf(strbuf_t *sb, const char *fmt, va_list ap) {
    va_list copy;
    va_copy(copy, ap);
    int n = vsnprintf(NULL, 0, fmt, copy);
    va_end(copy);
    if (n < 0) return;
    strbuf_reserve(sb, (size_t)n + 1);
    vsnprintf(sb->data + sb->len, (size_t)n + 1, fmt, ap);
    sb->len += (size_t)n;
}

void strbuf_printf(strbuf_t *sb, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    strbuf_vprintf(sb, fmt, ap);
    va_end(ap);
}

void strbuf_append_json(strbuf_t *sb, const char *s, size_t len) {
    static const char hex[] = "0123456789abcdef";
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)s[i];
        const char *esc = NULL;
        switch (c) {
        case '"': esc = "\\\""; break;
        case '\\': esc = "\\\\"; break;
        case '\n': esc = "\\n"; break;
        case '\r': esc = "\\r"; break;
        case '\t': esc = "\\t"; break;
        default: break;
        }
        /* Valid UTF-8 passes; any other byte at or past 0x80 is shown as its
         * code point, so the output is valid JSON whatever a client sent. */
        size_t n = c >= 0x80 ? utf8_sequence((const unsigned char *)s + i, len - i) : 1;
        if (esc) {
            strbuf_append(sb, esc, 2);
        } else if (c < 0x20 || c == 0x7f || n == 0) {
            char u[6] = {'\\', 'u', '0', '0', hex[c >> 4], hex[c & 15]};
            strbuf_append(sb, u, sizeof(u));
        } else {
            strbuf_append(sb, s + i, n);
            i += n - 1;
        }
    }
}

void strbuf_consume(strbuf_t *sb, size_t n) {
    if (n >= sb->len) {
        sb->len = 0;
        return;
    }
    memmove(sb->data, sb->data + n, sb->len - n);
    sb->len -= n;
}
