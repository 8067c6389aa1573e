/* check: the few assertions the unit tests need, counting instead of aborting so
 * one run reports every failure. Each test program ends with CHECK_SUMMARY(). */
#ifndef MULTIVAC_CHECK_H
#define MULTIVAC_CHECK_H

#include <stdio.h>
#include <string.h>

static int check_passed, check_failed;

#define CHECK(cond)                                                                        \
    do {                                                                                   \
        if (cond) {                                                                        \
            check_passed++;                                                                \
        } else {                                                                           \
            check_failed++;                                                                \
            fprintf(stderr, "%s:%d: CHECK failed: %s\n", __FILE__, __LINE__, #cond);       \
        }                                                                                  \
    } while (0)

#define CHECK_INT(a, b)                                                                    \
    do {                                                                                   \
        long long check_a_ = (long long)(a), check_b_ = (long long)(b);                    \
        if (check_a_ == check_b_) {                                                        \
            check_passed++;                                                                \
        } else {                                                                           \
            check_failed++;                                                                \
            fprintf(stderr, "%s:%d: %s == %lld, expected %lld\n", __FILE__, __LINE__, #a,  \
                    check_a_, check_b_);                                                   \
        }                                                                                  \
    } while (0)

/* Compares a (pointer, length) pair with a C string. */
#define CHECK_MEM(ptr, len, str)                                                           \
    do {                                                                                   \
        const char *check_p_ = (const char *)(ptr);                                        \
        size_t check_l_ = (size_t)(len);                                                   \
        if (check_l_ == strlen(str) && (check_l_ == 0 || memcmp(check_p_, str, check_l_) == 0)) { \
            check_passed++;                                                                \
        } else {                                                                           \
            check_failed++;                                                                \
            fprintf(stderr, "%s:%d: %s is \"%.*s\", expected \"%s\"\n", __FILE__, __LINE__, \
                    #ptr, (int)check_l_, check_p_ ? check_p_ : "", str);                   \
        }                                                                                  \
    } while (0)

#define CHECK_SUMMARY()                                                                    \
    (printf("%d passed, %d failed\n", check_passed, check_failed), check_failed ? 1 : 0)

#endif
