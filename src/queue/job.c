#include "queue/job.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

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
    job_id_gen_t *gen = malloc(sizeof(*gen));
    if (!gen) return NULL;
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
