/* base64: strict decoding of the standard alphabet, padding required (base64.h). */
#include "util/base64.h"

static int base64_value(unsigned char c) {
    if (c >= 'A' && c <= 'Z') return c - 'A';
    if (c >= 'a' && c <= 'z') return c - 'a' + 26;
    if (c >= '0' && c <= '9') return c - '0' + 52;
    if (c == '+') return 62;
    if (c == '/') return 63;
    return -1;
}

long base64_decode(const char *in, size_t len, unsigned char *out) {
    if (len % 4 != 0) return -1;
    long n = 0;
    for (size_t i = 0; i < len; i += 4) {
        const unsigned char *q = (const unsigned char *)in + i;
        int pad = (q[3] == '=') + (q[2] == '=' && q[3] == '=');
        /* Padding only in the last quantum. */
        if (pad && i + 4 != len) return -1;
        int v[4];
        for (int k = 0; k < 4 - pad; k++)
            if ((v[k] = base64_value(q[k])) < 0) return -1;
        for (int k = 4 - pad; k < 4; k++)
            v[k] = 0;
        unsigned long bits = (unsigned long)v[0] << 18 | (unsigned long)v[1] << 12 |
                             (unsigned long)v[2] << 6 | (unsigned long)v[3];
        out[n++] = (unsigned char)(bits >> 16);
        if (pad < 2) out[n++] = (unsigned char)(bits >> 8);
        if (pad < 1) out[n++] = (unsigned char)bits;
    }
    return n;
}
