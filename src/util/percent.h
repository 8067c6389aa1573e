/* percent: hex digits and %XX escapes (RFC 3986), one definition for form
 * bodies, request paths and URLs in the configuration. Pure functions. */
#ifndef MULTIVAC_PERCENT_H
#define MULTIVAC_PERCENT_H

#include <stdbool.h>
#include <stddef.h>

/* Decodes the escape that `s` starts with ("%41" -> 0x41), reading at most
 * `len` bytes. Returns the byte (0 to 255), or -1 when `s` does not start with
 * '%' followed by two hex digits (either case). */
int percent_decode(const char *s, size_t len);

/* RFC 3986's unreserved characters (A-Z a-z 0-9 - . _ ~): the ones an escape
 * never needs to hide. */
bool percent_unreserved(unsigned char c);

#endif
