/* job: the unit of work on the queue and its wire encoding in Redis.
 *
 * A job carries one datum from POST /multivac/data to MongoDB. Its id is made
 * when the POST is accepted and becomes the document _id, so storing a job twice
 * (after a crash, say) finds the first copy instead of duplicating it.
 *
 * Encoding, versioned so a later format can coexist in the same list:
 *   "1:" <id, 32 hex chars> ":" <received_at, ms since epoch, decimal> ":" <data bytes>
 * The data is last and its length implied, so it may hold any bytes. */
#ifndef MULTIVAC_JOB_H
#define MULTIVAC_JOB_H

#include <stddef.h>
#include <stdint.h>

#include "util/strbuf.h"

#define JOB_ID_LEN 32

typedef struct job_id_gen job_id_gen_t;

typedef struct job {
    char id[JOB_ID_LEN + 1];
    int64_t received_at_ms;
    const char *data; /* points into the encoded buffer it was decoded from */
    size_t data_len;
} job_t;

/* Ids are 48 bits of milliseconds, 64 random bits drawn once per generator and a
 * 16-bit sequence, in hex: unique across processes, roughly time-ordered. */
/* NULL when the system gives no randomness (the ids could then collide). */
job_id_gen_t *job_id_gen_new(void);
void job_id_gen_free(job_id_gen_t *gen);
void job_id_next(job_id_gen_t *gen, int64_t now_ms, char out[JOB_ID_LEN + 1]);

/* The id of a job whose client named it with an Idempotency-Key: 128 bits of
 * SHA-256 over the writer's scope (empty without authentication) and the key,
 * so every retry of one request gets the same id, and the same document. */
void job_id_derive(const char *scope, size_t scope_len, const char *key, size_t key_len,
                   char out[JOB_ID_LEN + 1]);
/* 128 bits of SHA-256 of the data, in hex: tells a retry from a reused key. */
void job_fingerprint(const char *data, size_t len, char out[JOB_ID_LEN + 1]);

/* Appends everything of the encoded job but its data, which the caller then
 * appends itself (decoding it straight into place). Returns 0, or -1 for an
 * invalid id or time. */
int job_encode_prefix(const char *id, int64_t received_at_ms, strbuf_t *out);
/* Appends the encoded job to `out`. Returns 0, or -1 for an invalid id or time. */
int job_encode(const char *id, int64_t received_at_ms, const char *data, size_t data_len,
               strbuf_t *out);
/* Decodes `buf` into `job` (which then points into `buf`). Returns 0, or -1 when
 * the bytes are not a job of a known version. */
int job_decode(const char *buf, size_t len, job_t *job);

#endif
