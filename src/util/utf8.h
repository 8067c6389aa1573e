/* utf8: strict UTF-8 (RFC 3629): no overlong forms, no surrogates, nothing past
 * U+10FFFF. NUL is a valid character. */
#ifndef MULTIVAC_UTF8_H
#define MULTIVAC_UTF8_H

#include <stdbool.h>
#include <stddef.h>

/* Length of the valid sequence starting at s[0] (1 to 4), or 0 when invalid. */
size_t utf8_sequence(const unsigned char *s, size_t len);
bool utf8_valid(const char *s, size_t len);

#endif
