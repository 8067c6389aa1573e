/* base64: decoding of the standard alphabet (RFC 4648 section 4), for HTTP
 * Basic credentials. Padding is required; anything else is an error. */
#ifndef MULTIVAC_BASE64_H
#define MULTIVAC_BASE64_H

#include <stddef.h>

/* Decodes into `out` (room for len / 4 * 3 bytes). Returns the decoded length,
 * or -1 when `in` is not canonical base64. */
long base64_decode(const char *in, size_t len, unsigned char *out);

#endif
