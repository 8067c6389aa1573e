/* job: ids, the wire encoding, and SHA-256 for idempotency keys (job.h). An
 * id generator never repeats an id, even when the clock steps back, and is not
 * made at all without real randomness; what job_encode writes job_decode reads
 * back exactly, and anything else is refused rather than guessed at. Running
 * out of memory aborts (util/mem.h). */
#include "queue/job.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

#include "util/mem.h"

#define JOB_VERSION "1"
#define JOB_MS_MASK ((UINT64_C(1) << 48) - 1)
/* INT64_MAX has 19 digits; more cannot be a timestamp. */
#define JOB_TIME_DIGITS_MAX 19

struct job_id_gen {
    uint64_t random;
    int64_t last_ms; /* millisecond of the last id issued, -1 before the first */
    uint16_t seq;    /* its sequence number */
};

static const char job_hex[] = "0123456789abcdef";

job_id_gen_t *job_id_gen_new(void) {
    job_id_gen_t *gen = mem_malloc(sizeof(*gen));
    unsigned char buf[8];
    size_t got = 0;
    while (got < sizeof(buf)) {
        ssize_t n = getrandom(buf + got, sizeof(buf) - got, 0);
        if (n < 0 && errno == EINTR) continue;
        /* Without real randomness two processes could issue the same ids and a
         * job would overwrite another's document, so refuse to start. */
        if (n <= 0) {
            free(gen);
            return NULL;
        }
        got += (size_t)n;
    }
    gen->random = 0;
    for (size_t i = 0; i < sizeof(buf); i++)
        gen->random = gen->random << 8 | buf[i];
    gen->last_ms = -1;
    gen->seq = 0;
    return gen;
}

void job_id_gen_free(job_id_gen_t *gen) { free(gen); }

static void job_put_hex(char *out, uint64_t v, int digits) {
    for (int i = digits - 1; i >= 0; i--) {
        out[i] = job_hex[v & 15];
        v >>= 4;
    }
}

void job_id_next(job_id_gen_t *gen, int64_t now_ms, char out[JOB_ID_LEN + 1]) {
    if (now_ms < 0) now_ms = 0;
    /* A clock stepping back must not reorder or repeat ids, so time only moves
     * forward here; when a millisecond's 65536 sequence numbers run out, the
     * next millisecond is borrowed early. */
    if (now_ms > gen->last_ms) {
        gen->last_ms = now_ms;
        gen->seq = 0;
    } else if (++gen->seq == 0) {
        gen->last_ms++;
    }
    job_put_hex(out, (uint64_t)gen->last_ms & JOB_MS_MASK, 12);
    job_put_hex(out + 12, gen->random, 16);
    job_put_hex(out + 28, gen->seq, 4);
    out[JOB_ID_LEN] = '\0';
}

static int job_is_id(const char *id, size_t len) {
    if (len != JOB_ID_LEN) return 0;
    /* Ids are made lower-case; accepting upper case would let one job appear
     * under two _ids. */
    for (size_t i = 0; i < len; i++)
        if (!((id[i] >= '0' && id[i] <= '9') || (id[i] >= 'a' && id[i] <= 'f'))) return 0;
    return 1;
}

int job_encode_prefix(const char *id, int64_t received_at_ms, strbuf_t *out) {
    /* Refusing what job_decode would reject keeps undecodable jobs off the queue. */
    if (!id || !job_is_id(id, strlen(id)) || received_at_ms < 0) return -1;
    strbuf_append(out, JOB_VERSION ":", 2);
    strbuf_append(out, id, JOB_ID_LEN);
    strbuf_append_char(out, ':');
    strbuf_append_u64(out, (unsigned long long)received_at_ms);
    strbuf_append_char(out, ':');
    return 0;
}

int job_encode(const char *id, int64_t received_at_ms, const char *data, size_t data_len,
               strbuf_t *out) {
    strbuf_reserve(out, 2 + JOB_ID_LEN + 1 + JOB_TIME_DIGITS_MAX + 1 + data_len);
    if (job_encode_prefix(id, received_at_ms, out) != 0) return -1;
    strbuf_append(out, data, data_len);
    return 0;
}

int job_decode(const char *buf, size_t len, job_t *job) {
    if (len < 2 || memcmp(buf, JOB_VERSION ":", 2) != 0) return -1;
    size_t i = 2;
    if (len - i < JOB_ID_LEN + 1 || !job_is_id(buf + i, JOB_ID_LEN) || buf[i + JOB_ID_LEN] != ':')
        return -1;
    const char *id = buf + i;
    i += JOB_ID_LEN + 1;

    size_t start = i;
    uint64_t ms = 0;
    for (; i < len && buf[i] >= '0' && buf[i] <= '9'; i++) {
        if (i - start == JOB_TIME_DIGITS_MAX) return -1;
        ms = ms * 10 + (uint64_t)(buf[i] - '0');
    }
    if (i == start || i == len || buf[i] != ':' || ms > (uint64_t)INT64_MAX) return -1;
    i++;

    memcpy(job->id, id, JOB_ID_LEN);
    job->id[JOB_ID_LEN] = '\0';
    job->received_at_ms = (int64_t)ms;
    job->data = buf + i;
    job->data_len = len - i;
    return 0;
}

/* ---- ids derived from a client's key --------------------------------------- */

/* SHA-256 (FIPS 180-4), small and local: ids derived from a client's key must
 * not collide for different keys, which a weaker hash cannot promise. */
typedef struct job_sha256 {
    uint32_t h[8];
    unsigned char block[64];
    size_t fill;
    uint64_t bytes;
} job_sha256_t;

static const uint32_t job_sha256_k[64] = {
    0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1, 0x923f82a4, 0xab1c5ed5,
    0xd807aa98, 0x12835b01, 0x243185be, 0x550c7dc3, 0x72be5d74, 0x80deb1fe, 0x9bdc06a7, 0xc19bf174,
    0xe49b69c1, 0xefbe4786, 0x0fc19dc6, 0x240ca1cc, 0x2de92c6f, 0x4a7484aa, 0x5cb0a9dc, 0x76f988da,
    0x983e5152, 0xa831c66d, 0xb00327c8, 0xbf597fc7, 0xc6e00bf3, 0xd5a79147, 0x06ca6351, 0x14292967,
    0x27b70a85, 0x2e1b2138, 0x4d2c6dfc, 0x53380d13, 0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85,
    0xa2bfe8a1, 0xa81a664b, 0xc24b8b70, 0xc76c51a3, 0xd192e819, 0xd6990624, 0xf40e3585, 0x106aa070,
    0x19a4c116, 0x1e376c08, 0x2748774c, 0x34b0bcb5, 0x391c0cb3, 0x4ed8aa4a, 0x5b9cca4f, 0x682e6ff3,
    0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208, 0x90befffa, 0xa4506ceb, 0xbef9a3f7, 0xc67178f2};

#define JOB_ROR(x, n) (((x) >> (n)) | ((x) << (32 - (n))))

static void job_sha256_init(job_sha256_t *c) {
    static const uint32_t h0[8] = {0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a,
                                   0x510e527f, 0x9b05688c, 0x1f83d9ab, 0x5be0cd19};
    memcpy(c->h, h0, sizeof(h0));
    c->fill = 0;
    c->bytes = 0;
}

static void job_sha256_block(job_sha256_t *c, const unsigned char *p) {
    uint32_t w[64], v[8];
    for (int i = 0; i < 16; i++)
        w[i] = (uint32_t)p[4 * i] << 24 | (uint32_t)p[4 * i + 1] << 16 |
               (uint32_t)p[4 * i + 2] << 8 | p[4 * i + 3];
    for (int i = 16; i < 64; i++) {
        uint32_t s0 = JOB_ROR(w[i - 15], 7) ^ JOB_ROR(w[i - 15], 18) ^ (w[i - 15] >> 3);
        uint32_t s1 = JOB_ROR(w[i - 2], 17) ^ JOB_ROR(w[i - 2], 19) ^ (w[i - 2] >> 10);
        w[i] = w[i - 16] + s0 + w[i - 7] + s1;
    }
    memcpy(v, c->h, sizeof(v));
    for (int i = 0; i < 64; i++) {
        uint32_t s1 = JOB_ROR(v[4], 6) ^ JOB_ROR(v[4], 11) ^ JOB_ROR(v[4], 25);
        uint32_t ch = (v[4] & v[5]) ^ (~v[4] & v[6]);
        uint32_t t1 = v[7] + s1 + ch + job_sha256_k[i] + w[i];
        uint32_t s0 = JOB_ROR(v[0], 2) ^ JOB_ROR(v[0], 13) ^ JOB_ROR(v[0], 22);
        uint32_t maj = (v[0] & v[1]) ^ (v[0] & v[2]) ^ (v[1] & v[2]);
        memmove(v + 1, v, 7 * sizeof(*v));
        v[4] += t1;
        v[0] = t1 + s0 + maj;
    }
    for (int i = 0; i < 8; i++)
        c->h[i] += v[i];
}

static void job_sha256_update(job_sha256_t *c, const void *data, size_t len) {
    const unsigned char *p = data;
    c->bytes += len;
    while (len > 0) {
        size_t n = 64 - c->fill < len ? 64 - c->fill : len;
        memcpy(c->block + c->fill, p, n);
        c->fill += n;
        p += n;
        len -= n;
        if (c->fill == 64) {
            job_sha256_block(c, c->block);
            c->fill = 0;
        }
    }
}

static void job_sha256_final(job_sha256_t *c, unsigned char out[32]) {
    uint64_t bits = c->bytes * 8;
    unsigned char pad = 0x80;
    job_sha256_update(c, &pad, 1);
    pad = 0;
    while (c->fill != 56)
        job_sha256_update(c, &pad, 1);
    unsigned char len[8];
    for (int i = 0; i < 8; i++)
        len[i] = (unsigned char)(bits >> (56 - 8 * i));
    job_sha256_update(c, len, 8);
    for (int i = 0; i < 8; i++) {
        out[4 * i] = (unsigned char)(c->h[i] >> 24);
        out[4 * i + 1] = (unsigned char)(c->h[i] >> 16);
        out[4 * i + 2] = (unsigned char)(c->h[i] >> 8);
        out[4 * i + 3] = (unsigned char)c->h[i];
    }
}

/* The first 128 bits of the digest, as 32 lowercase hex characters. */
static void job_sha256_id(job_sha256_t *c, char out[JOB_ID_LEN + 1]) {
    unsigned char digest[32];
    job_sha256_final(c, digest);
    for (int i = 0; i < JOB_ID_LEN / 2; i++) {
        out[2 * i] = job_hex[digest[i] >> 4];
        out[2 * i + 1] = job_hex[digest[i] & 15];
    }
    out[JOB_ID_LEN] = '\0';
}

void job_id_derive(const char *scope, size_t scope_len, const char *key, size_t key_len,
                   char out[JOB_ID_LEN + 1]) {
    job_sha256_t c;
    job_sha256_init(&c);
    /* Length-prefixed parts and a domain tag: ("ab", "c") and ("a", "bc")
     * differ, and no other use of the hash can produce the same input. */
    unsigned char len[8];
    job_sha256_update(&c, "multivac idempotency-key v1", 27);
    for (int i = 0; i < 8; i++)
        len[i] = (unsigned char)((uint64_t)scope_len >> (56 - 8 * i));
    job_sha256_update(&c, len, 8);
    job_sha256_update(&c, scope, scope_len);
    job_sha256_update(&c, key, key_len);
    job_sha256_id(&c, out);
}

void job_fingerprint(const char *data, size_t len, char out[JOB_ID_LEN + 1]) {
    job_sha256_t c;
    job_sha256_init(&c);
    job_sha256_update(&c, data, len);
    job_sha256_id(&c, out);
}
