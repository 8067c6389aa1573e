/* pairs: walks "name=value&..." text in place, without copying or decoding (pairs.h). */
#include "util/pairs.h"

#include <string.h>

bool pairs_next(const char *text, size_t len, size_t *pos, pair_t *out) {
    while (*pos < len) {
        const char *pair = text + *pos;
        const char *amp = memchr(pair, '&', len - *pos);
        size_t plen = amp ? (size_t)(amp - pair) : len - *pos;
        *pos += plen + 1;
        if (plen == 0) continue;
        const char *eq = memchr(pair, '=', plen);
        out->name = pair;
        out->name_len = eq ? (size_t)(eq - pair) : plen;
        out->value = eq ? eq + 1 : pair + plen;
        out->value_len = plen - (size_t)(out->value - pair);
        return true;
    }
    return false;
}
