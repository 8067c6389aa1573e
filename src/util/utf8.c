/* utf8: strict UTF-8 validation, RFC 3629 (utf8.h). */
#include "util/utf8.h"

size_t utf8_sequence(const unsigned char *s, size_t len) {
    if (len == 0) return 0;
    unsigned char c = s[0];
    if (c < 0x80) return 1;
    /* The second byte's range encodes the exclusions: E0 A0.. (no overlong),
     * ED ..9F (no surrogates), F0 90.. (no overlong), F4 ..8F (<= U+10FFFF). */
    unsigned char lo = 0x80, hi = 0xBF;
    size_t n;
    if (c >= 0xC2 && c <= 0xDF) {
        n = 2;
    } else if (c >= 0xE0 && c <= 0xEF) {
        n = 3;
        if (c == 0xE0) lo = 0xA0;
        if (c == 0xED) hi = 0x9F;
    } else if (c >= 0xF0 && c <= 0xF4) {
        n = 4;
        if (c == 0xF0) lo = 0x90;
        if (c == 0xF4) hi = 0x8F;
    } else {
        return 0; /* continuation byte, C0/C1 (overlong), F5.. */
    }
    if (len < n || s[1] < lo || s[1] > hi) return 0;
    for (size_t i = 2; i < n; i++)
        if ((s[i] & 0xC0) != 0x80) return 0;
    return n;
}

bool utf8_valid(const char *s, size_t len) {
    const unsigned char *p = (const unsigned char *)s;
    size_t i = 0;
    while (i < len) {
        /* ASCII runs are the common case. */
        if (p[i] < 0x80) {
            i++;
            continue;
        }
        size_t n = utf8_sequence(p + i, len - i);
        if (n == 0) return false;
        i += n;
    }
    return true;
}
