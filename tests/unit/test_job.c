#include "queue/job.h"

#include <stdlib.h>
#include <string.h>

#include "check.h"

#define ID "0123456789abcdef0123456789abcdef"

static int is_lower_hex(const char *s, size_t n) {
    for (size_t i = 0; i < n; i++)
        if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f'))) return 0;
    return 1;
}

static int cmp_ids(const void *a, const void *b) { return memcmp(a, b, JOB_ID_LEN); }

static void test_encode_decode(void) {
    strbuf_t sb = STRBUF_INIT;
    job_t job;

    CHECK_INT(job_encode(ID, 1700000000123, "hello", 5, &sb), 0);
    CHECK_MEM(sb.data, sb.len, "1:" ID ":1700000000123:hello");
    CHECK_INT(job_decode(sb.data, sb.len, &job), 0);
    CHECK(strcmp(job.id, ID) == 0);
    CHECK_INT(job.received_at_ms, 1700000000123);
    CHECK_MEM(job.data, job.data_len, "hello");
    CHECK(job.data == sb.data + sb.len - 5);

    /* Data holding the separator and NUL bytes round-trips untouched. */
    const char bin[] = "a:b\0c:\0\xff";
    strbuf_reset(&sb);
    CHECK_INT(job_encode(ID, 0, bin, sizeof(bin) - 1, &sb), 0);
    CHECK_INT(job_decode(sb.data, sb.len, &job), 0);
    CHECK_INT(job.received_at_ms, 0);
    CHECK_INT(job.data_len, sizeof(bin) - 1);
    CHECK(memcmp(job.data, bin, sizeof(bin) - 1) == 0);

    /* Empty data. */
    strbuf_reset(&sb);
    CHECK_INT(job_encode(ID, 42, "", 0, &sb), 0);
    CHECK_MEM(sb.data, sb.len, "1:" ID ":42:");
    CHECK_INT(job_decode(sb.data, sb.len, &job), 0);
    CHECK_INT(job.data_len, 0);
    CHECK_INT(job.received_at_ms, 42);

    /* Appends after what the buffer already holds. */
    strbuf_reset(&sb);
    strbuf_append_str(&sb, "X");
    CHECK_INT(job_encode(ID, 7, "d", 1, &sb), 0);
    CHECK_MEM(sb.data, sb.len, "X1:" ID ":7:d");

    /* Largest timestamp. */
    strbuf_reset(&sb);
    CHECK_INT(job_encode(ID, INT64_MAX, "z", 1, &sb), 0);
    CHECK_MEM(sb.data, sb.len, "1:" ID ":9223372036854775807:z");
    CHECK_INT(job_decode(sb.data, sb.len, &job), 0);
    CHECK(job.received_at_ms == INT64_MAX);

    /* Arguments job_decode would reject are refused, leaving `out` alone. */
    strbuf_reset(&sb);
    strbuf_append_str(&sb, "keep");
    CHECK_INT(job_encode(ID, -1, "d", 1, &sb), -1);
    CHECK_INT(job_encode("abc", 1, "d", 1, &sb), -1);
    CHECK_INT(job_encode("0123456789ABCDEF0123456789abcdef", 1, "d", 1, &sb), -1);
    CHECK_INT(job_encode(ID "0", 1, "d", 1, &sb), -1);
    CHECK_MEM(sb.data, sb.len, "keep");

    strbuf_free(&sb);
}

static void test_decode_rejects(void) {
    const char *bad[] = {
        "",
        "1",
        "1:",
        "2:" ID ":1:d",
        "1;" ID ":1:d",
        "11:" ID ":1:d",
        "1:" ID,
        "1:" ID ":",
        "1:" ID ":1",
        "1:" ID "::d",
        "1:" ID ":-1:d",
        "1:" ID ":+1:d",
        "1:" ID ": 1:d",
        "1:" ID ":1x:d",
        "1:" ID ":12345678901234567890:d",
        "1:" ID ":9223372036854775808:d",
        "1:0123456789abcdef0123456789abcde:1:d",
        "1:0123456789abcdef0123456789abcdef0:1:d",
        "1:0123456789ABCDEF0123456789abcdef:1:d",
        "1:0123456789abcdeg0123456789abcdef:1:d",
        "1:0123456789abcdef0123456789abcdef;1:d",
    };
    job_t job;
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        int rc = job_decode(bad[i], strlen(bad[i]), &job);
        if (rc != -1) fprintf(stderr, "accepted: \"%s\"\n", bad[i]);
        CHECK_INT(rc, -1);
    }

    /* 19 digits with leading zeros are fine; length bounds the input. */
    const char *ok = "1:" ID ":0000000000000000005:tail";
    CHECK_INT(job_decode(ok, strlen(ok), &job), 0);
    CHECK_INT(job.received_at_ms, 5);
    CHECK_MEM(job.data, job.data_len, "tail");
    CHECK_INT(job_decode(ok, strlen(ok) - 2, &job), 0);
    CHECK_MEM(job.data, job.data_len, "ta");
    CHECK_INT(job_decode(ok, 2 + 32 + 1 + 19, &job), -1);
}

static void test_ids(void) {
    job_id_gen_t *gen = job_id_gen_new();
    CHECK(gen != NULL);
    if (!gen) return;

    char id[JOB_ID_LEN + 1];
    job_id_next(gen, 0x0123456789ab, id);
    CHECK_INT(strlen(id), JOB_ID_LEN);
    CHECK(is_lower_hex(id, JOB_ID_LEN));
    CHECK(memcmp(id, "0123456789ab", 12) == 0);
    CHECK(memcmp(id + 28, "0000", 4) == 0);
    char random_part[17];
    memcpy(random_part, id + 12, 16);
    random_part[16] = '\0';

    /* 200000 ids in one millisecond: the 16-bit sequence wraps three times and
     * borrows later milliseconds, yet ids stay unique and increasing. */
    enum { N = 200000 };
    char(*ids)[JOB_ID_LEN + 1] = malloc(sizeof(*ids) * N);
    CHECK(ids != NULL);
    if (!ids) return;
    job_id_gen_t *g2 = job_id_gen_new();
    int increasing = 1, same_random = 1;
    for (int i = 0; i < N; i++) {
        job_id_next(g2, 1000, ids[i]);
        if (i > 0 && strcmp(ids[i - 1], ids[i]) >= 0) increasing = 0;
        if (memcmp(ids[i] + 12, ids[0] + 12, 16) != 0) same_random = 0;
    }
    CHECK(increasing);
    CHECK(same_random);
    CHECK(memcmp(ids[0], "0000000003e8", 12) == 0);
    CHECK(memcmp(ids[65535], "0000000003e8", 12) == 0);
    CHECK(memcmp(ids[65535] + 28, "ffff", 4) == 0);
    CHECK(memcmp(ids[65536], "0000000003e9", 12) == 0);
    CHECK(memcmp(ids[65536] + 28, "0000", 4) == 0);
    qsort(ids, N, sizeof(*ids), cmp_ids);
    int unique = 1;
    for (int i = 1; i < N; i++)
        if (memcmp(ids[i - 1], ids[i], JOB_ID_LEN) == 0) unique = 0;
    CHECK(unique);

    /* The borrowed milliseconds are not handed out again when the clock gets there. */
    char next[JOB_ID_LEN + 1], last[JOB_ID_LEN + 1];
    memcpy(last, ids[N - 1], sizeof(last));
    job_id_next(g2, 1001, next);
    CHECK(strcmp(next, last) > 0);
    /* 200000 = 3 * 65536 + 3392: the last id was 1003 ms, sequence 3391. */
    CHECK(memcmp(last, "0000000003eb", 12) == 0);
    CHECK(memcmp(last + 28, "0d3f", 4) == 0);
    job_id_next(g2, 1003, next);
    CHECK(memcmp(next, "0000000003eb", 12) == 0);
    CHECK(memcmp(next + 28, "0d41", 4) == 0);

    /* A clock going backwards does not move ids back. */
    memcpy(last, next, sizeof(last));
    job_id_next(g2, 5, next);
    CHECK(strcmp(next, last) > 0);
    CHECK(memcmp(next, "0000000003eb", 12) == 0);
    CHECK(memcmp(next + 28, "0d42", 4) == 0);

    /* Two generators draw different random bits. */
    job_id_next(g2, 2000, next);
    CHECK(memcmp(next + 12, random_part, 16) != 0);

    /* Generated ids are valid job ids. */
    strbuf_t sb = STRBUF_INIT;
    job_t job;
    CHECK_INT(job_encode(next, 2000, "x", 1, &sb), 0);
    CHECK_INT(job_decode(sb.data, sb.len, &job), 0);
    CHECK(strcmp(job.id, next) == 0);
    strbuf_free(&sb);

    free(ids);
    job_id_gen_free(g2);
    job_id_gen_free(gen);
    job_id_gen_free(NULL);
}

int main(void) {
    test_encode_decode();
    test_decode_rejects();
    test_ids();
    return CHECK_SUMMARY();
}
