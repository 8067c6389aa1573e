/* Unit tests of util/percent: every byte value against an independent
 * reference, and the edges of an escape (short input, bad digits, case). */
#include "util/percent.h"

#include <string.h>

#include "check.h"

/* Every byte as the second digit of "%0?": its hex value, or not an escape. */
static void test_hex_digits(void) {
    static const char lower[] = "0123456789abcdef", upper[] = "0123456789ABCDEF";
    for (int c = 0; c < 256; c++) {
        const char *l = c ? memchr(lower, c, 16) : NULL;
        const char *u = c ? memchr(upper, c, 16) : NULL;
        int want = l ? (int)(l - lower) : u ? (int)(u - upper) : -1;
        char esc[3] = {'%', '0', (char)c};
        CHECK_INT(percent_decode(esc, 3), want);
        char first[3] = {'%', (char)c, '1'};
        CHECK_INT(percent_decode(first, 3), want < 0 ? -1 : want << 4 | 1);
    }
}

static void test_decode(void) {
    CHECK_INT(percent_decode("%41", 3), 0x41);
    CHECK_INT(percent_decode("%4a", 3), 0x4a);
    CHECK_INT(percent_decode("%4A", 3), 0x4a);
    CHECK_INT(percent_decode("%ff", 3), 0xff);
    CHECK_INT(percent_decode("%00", 3), 0);
    CHECK_INT(percent_decode("%e2%82", 6), 0xe2); /* reads one escape only */
    CHECK_INT(percent_decode("%41rest", 7), 0x41);
    /* Short: the length bounds the read even where the bytes are there. */
    CHECK_INT(percent_decode("%41", 2), -1);
    CHECK_INT(percent_decode("%4", 2), -1);
    CHECK_INT(percent_decode("%", 1), -1);
    CHECK_INT(percent_decode("", 0), -1);
    CHECK_INT(percent_decode("%g1", 3), -1);
    CHECK_INT(percent_decode("%1g", 3), -1);
    CHECK_INT(percent_decode("% 1", 3), -1);
    CHECK_INT(percent_decode("%+1", 3), -1); /* strtol would take a sign */
    CHECK_INT(percent_decode("%-1", 3), -1);
    CHECK_INT(percent_decode("A41", 3), -1);
    /* Every pair of digits, both cases. */
    static const char digits[] = "0123456789abcdefABCDEF";
    int ok = 0;
    for (int h = 0; h < 22; h++) {
        for (int l = 0; l < 22; l++) {
            char esc[3] = {'%', digits[h], digits[l]};
            int hv = h < 16 ? h : h - 6, lv = l < 16 ? l : l - 6;
            ok += percent_decode(esc, 3) == (hv << 4 | lv);
        }
    }
    CHECK_INT(ok, 22 * 22);
}

static void test_unreserved(void) {
    static const char set[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~";
    int agree = 0;
    for (int c = 0; c < 256; c++) {
        bool want = c != 0 && memchr(set, c, sizeof(set) - 1) != NULL;
        agree += percent_unreserved((unsigned char)c) == want;
    }
    CHECK_INT(agree, 256);
    CHECK(!percent_unreserved('/'));
    CHECK(!percent_unreserved('%'));
    CHECK(percent_unreserved('~'));
}

int main(void) {
    test_hex_digits();
    test_decode();
    test_unreserved();
    return CHECK_SUMMARY();
}
