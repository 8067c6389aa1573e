/* percent: hex digits and %XX escapes, without allocation or locale. */
#include "util/percent.h"

static int percent_hexval(unsigned char c) {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

int percent_decode(const char *s, size_t len) {
    if (len < 3 || s[0] != '%') return -1;
    int hi = percent_hexval((unsigned char)s[1]);
    int lo = percent_hexval((unsigned char)s[2]);
    return hi < 0 || lo < 0 ? -1 : hi << 4 | lo;
}

bool percent_unreserved(unsigned char c) {
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' ||
           c == '.' || c == '_' || c == '~';
}
