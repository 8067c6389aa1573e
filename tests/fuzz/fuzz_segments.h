/* fuzz_segments: splits a fuzzer input into an options byte, a segmentation
 * plan and a payload, so the fuzzer chooses how the payload is cut.
 *
 *   byte 0            low 4 bits: k, the plan's length in bytes (0..15);
 *                     high 4 bits: options for the target (fuzz_opts)
 *   bytes 1..k        the plan: one byte per segment length, used cyclically
 *                        0x00..0x7f -> 1..128 bytes
 *                        0x80..0xff -> (b - 0x7f) * 128 bytes (128..16384)
 *   the rest          the payload
 *
 * An empty plan means the payload in one piece; the plan "00" means one byte
 * at a time. tests/fuzz/gen_corpus.py writes seeds in this layout. */
#ifndef MULTIVAC_FUZZ_SEGMENTS_H
#define MULTIVAC_FUZZ_SEGMENTS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct fuzz_segs {
    unsigned opts; /* the high 4 bits of byte 0, as 0..15 */
    const uint8_t *plan;
    size_t plan_len, plan_pos;
    const uint8_t *data; /* the payload */
    size_t len, pos;
} fuzz_segs_t;

static inline void fuzz_segs_init(fuzz_segs_t *s, const uint8_t *in, size_t n) {
    s->opts = 0;
    s->plan = in;
    s->plan_len = s->plan_pos = 0;
    s->data = in;
    s->len = n;
    s->pos = 0;
    if (n == 0) return;
    size_t k = in[0] & 15u;
    s->opts = in[0] >> 4;
    in++;
    n--;
    if (k > n) k = n;
    s->plan = in;
    s->plan_len = k;
    s->data = in + k;
    s->len = n - k;
}

static inline size_t fuzz_segs_len_of(uint8_t b) {
    return b < 0x80 ? (size_t)b + 1 : (size_t)(b - 0x7f) * 128;
}

/* The next segment, or false when the payload is used up. */
static inline bool fuzz_segs_next(fuzz_segs_t *s, const uint8_t **p, size_t *len) {
    if (s->pos >= s->len) return false;
    size_t left = s->len - s->pos;
    size_t want = left;
    if (s->plan_len > 0) {
        want = fuzz_segs_len_of(s->plan[s->plan_pos]);
        s->plan_pos = (s->plan_pos + 1) % s->plan_len;
        if (want > left) want = left;
    }
    *p = s->data + s->pos;
    *len = want;
    s->pos += want;
    return true;
}

static inline void fuzz_segs_rewind(fuzz_segs_t *s) {
    s->plan_pos = 0;
    s->pos = 0;
}

#endif
