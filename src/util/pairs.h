/* pairs: walks "name=value&name=value" text — query strings and urlencoded
 * form bodies — in place, without copying or decoding. */
#ifndef MULTIVAC_PAIRS_H
#define MULTIVAC_PAIRS_H

#include <stdbool.h>
#include <stddef.h>

typedef struct pair {
    const char *name, *value; /* still encoded; a pair without '=' has an empty value */
    size_t name_len, value_len;
} pair_t;

/* Returns true with the next non-empty pair of text[*pos..len) and advances
 * *pos past it; false at the end. Start with *pos = 0. */
bool pairs_next(const char *text, size_t len, size_t *pos, pair_t *out);

#endif
