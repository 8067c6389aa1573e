/* The worker's state machine (claim -> store -> ack) on a real uv loop, against
 * the fake queue and store of fake.h, linked in place of the real ones. Every
 * step is made to fail in turn: a claim, a store refusing as a whole, a store
 * refusing one document until it is dead-lettered, an acknowledgement (only it
 * is retried, the batch is never inserted again), a fence by another process;
 * backoff delays are measured on the loop's clock (built with 50 ms doubling to
 * 400 ms, 200 ms for the store); the wake and poll paths; and a stop with each
 * step still outstanding, which must end with every handle closed and, under
 * ASan, nothing leaked. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "check.h"
#include "fake.h"
#include "obs/log.h"
#include "queue/job.h"
#include "util/strbuf.h"
#include "worker/worker.h"

/* As built (tests/CMakeLists.txt). */
#define BACKOFF_MIN_MS 50
#define BACKOFF_MAX_MS 400
#define STORE_BACKOFF_MAX_MS 200
/* Longest any single expectation may take before the test gives up. */
#define WAIT_MS 5000
#define NEVER_MS 600000 /* a poll or lease too long to matter */

static uv_loop_t loop;
static worker_t *w;
static int stopped;
static char ids[16][JOB_ID_LEN + 1];

static uint64_t now_ms(void) { return uv_hrtime() / 1000000; }

static void turn(void) {
    uv_run(&loop, UV_RUN_NOWAIT);
    struct timespec ts = {0, 500000};
    nanosleep(&ts, NULL);
}

static void run_for(uint64_t ms) {
    for (uint64_t end = now_ms() + ms; now_ms() < end;)
        turn();
}

#define WAIT_UNTIL(cond)                                                                           \
    do {                                                                                           \
        for (uint64_t end_ = now_ms() + WAIT_MS; !(cond) && now_ms() < end_;)                      \
            turn();                                                                                \
        CHECK(cond);                                                                               \
    } while (0)

/* The call has been made and answered. */
static bool answered(fake_kind_t kind, size_t i) {
    return fake_calls(kind) > i && fake_call(kind, i)->done;
}

/* Call `i` of `kind` was made `ms` (a backoff) after call `prev` of `pkind`
 * was answered: never sooner, and not as late as the next doubling. */
#define CHECK_GAP(kind, i, pkind, prev, ms) check_gap(__LINE__, kind, i, pkind, prev, ms)
static void check_gap(int line, fake_kind_t kind, size_t i, fake_kind_t pkind, size_t prev,
                      uint64_t ms) {
    if (fake_calls(kind) <= i || !answered(pkind, prev)) {
        fprintf(stderr, "line %d: no call %zu to measure\n", line, i);
        check_failed++;
        return;
    }
    uint64_t gap = fake_call(kind, i)->at_ms - fake_call(pkind, prev)->done_ms;
    uint64_t slack = ms / 2 > 40 ? ms / 2 : 40;
    if (gap < ms || gap > ms + slack) {
        fprintf(stderr, "line %d: gap %llu ms, expected %llu ms\n", line, (unsigned long long)gap,
                (unsigned long long)ms);
        check_failed++;
    } else {
        check_passed++;
    }
}

static bool has_text(const char *hay, const char *needle) { return strstr(hay, needle) != NULL; }

/* ---- a worker's life ---- */

static void on_stopped(void *arg) {
    (void)arg;
    stopped++;
}

static void worker_begin(size_t batch, int max_attempts, uint64_t poll_ms, uint64_t lease_ms) {
    worker_options_t o = {"w-test", batch, poll_ms, lease_ms, max_attempts};
    w = worker_new(&loop, fake_queue(), fake_store(), &o);
    stopped = 0;
    worker_start(w);
}

/* Once stopped and every reply has arrived (the queue has closed, as main
 * frees it), the worker is freed; nothing may be left on the loop. */
static void worker_end_stopped(void) {
    WAIT_UNTIL(stopped == 1 && fake_outstanding() == 0);
    worker_free(w);
    w = NULL;
    turn();
    CHECK_INT(stopped, 1);
    CHECK_INT(fake_queue_handles(), 0);
    CHECK(!uv_loop_alive(&loop));
    fake_reset();
}

static void worker_end(void) {
    worker_stop(w, on_stopped, NULL);
    worker_end_stopped();
}

static const worker_stats_t *st(void) { return worker_stats(w); }

static void push_jobs(size_t from, size_t to) {
    for (size_t i = from; i < to; i++) {
        char data[24]; /* "d" + any size_t */
        snprintf(data, sizeof(data), "d%zu", i);
        fake_queue_push_job(ids[i], 1000 + (int64_t)i, data);
    }
}

/* "<id>,<id>," for ids[from..to) */
static const char *ids_text(size_t from, size_t to) {
    static char text[16 * (JOB_ID_LEN + 1) + 1];
    text[0] = '\0';
    for (size_t i = from; i < to; i++) {
        strcat(text, ids[i]);
        strcat(text, ",");
    }
    return text;
}

/* ---- the cycle ---- */

static void test_cycle(void) {
    worker_begin(2, 3, NEVER_MS, NEVER_MS);
    push_jobs(0, 5);
    CHECK_MEM(fake_queue_worker_id(), strlen(fake_queue_worker_id()), "w-test");
    run_for(30);
    CHECK_INT(fake_calls(FAKE_CLAIM), 0); /* starting claims nothing before a wake */
    worker_wake(w);
    CHECK_INT(fake_calls(FAKE_CLAIM), 1); /* an idle worker claims within the wake */
    CHECK(!answered(FAKE_CLAIM, 0));      /* and the answer comes later, on the loop */
    WAIT_UNTIL(st()->stored == 5 && answered(FAKE_CLAIM, 3));
    run_for(30); /* idle: nothing more */
    CHECK_INT(fake_calls(FAKE_CLAIM), 4);
    CHECK_INT(fake_calls(FAKE_INSERT), 3);
    CHECK_INT(fake_calls(FAKE_ACK_DEAD), 0);
    /* Claim 2, 2, 1, then none; every claim after the first acknowledges. */
    static const size_t got[] = {2, 2, 1, 0};
    for (size_t i = 0; i < 4 && i < fake_calls(FAKE_CLAIM); i++) {
        CHECK_INT(fake_call(FAKE_CLAIM, i)->max, 2);
        CHECK_INT(fake_call(FAKE_CLAIM, i)->ack, i > 0);
        CHECK_INT(fake_call(FAKE_CLAIM, i)->n, got[i]);
        CHECK_INT(fake_call(FAKE_CLAIM, i)->status, QUEUE_OK);
    }
    if (fake_calls(FAKE_INSERT) == 3) {
        CHECK(strcmp(fake_call(FAKE_INSERT, 0)->text, ids_text(0, 2)) == 0);
        CHECK(strcmp(fake_call(FAKE_INSERT, 1)->text, ids_text(2, 4)) == 0);
        CHECK(strcmp(fake_call(FAKE_INSERT, 2)->text, ids_text(4, 5)) == 0);
        for (size_t i = 0; i < 3; i++)
            CHECK(!fake_call(FAKE_INSERT, i)->docs_changed);
    }
    for (size_t i = 0; i < 5; i++)
        CHECK_INT(fake_store_has(ids[i]), 1);
    CHECK_INT(fake_store_again(), 0);
    CHECK_INT(fake_queue_acked(), 5);
    CHECK_INT(fake_queue_pending(), 0);
    CHECK_INT(fake_queue_processing(), 0);
    CHECK_INT(st()->failures, 0);
    CHECK_INT(st()->invalid, 0);
    CHECK_INT(st()->dead, 0);
    CHECK_INT(st()->store_unavailable, 0);
    CHECK_INT(st()->job_age.count, 5);
    CHECK_INT(st()->insert_time.count, 3);
    CHECK(worker_store_ready(w));
    CHECK_INT(fake_calls(FAKE_HEARTBEAT), 0);
    worker_end();
}

/* A held batch larger than this process's batch size (an earlier process left
 * it) is stored whole, then the worker goes on with its own size. */
static void test_held_batch_grows(void) {
    worker_begin(2, 3, NEVER_MS, NEVER_MS);
    for (size_t i = 0; i < 5; i++) {
        strbuf_t sb = STRBUF_INIT;
        job_encode(ids[i], 1, "held", 4, &sb);
        char entry[128];
        snprintf(entry, sizeof(entry), "%.*s", (int)sb.len, sb.data);
        fake_queue_hold(entry);
        strbuf_free(&sb);
    }
    push_jobs(5, 8);
    worker_wake(w);
    WAIT_UNTIL(st()->stored == 8 && fake_queue_pending() == 0 && fake_outstanding() == 0);
    CHECK(fake_calls(FAKE_CLAIM) >= 1 && fake_call(FAKE_CLAIM, 0)->n == 5);
    CHECK(fake_calls(FAKE_INSERT) >= 1 && fake_call(FAKE_INSERT, 0)->n == 5);
    CHECK_INT(fake_calls(FAKE_INSERT), 3); /* 5, then 2 and 1 */
    for (size_t i = 0; i < fake_calls(FAKE_CLAIM); i++)
        CHECK_INT(fake_call(FAKE_CLAIM, i)->max, 2);
    for (size_t i = 0; i < 8; i++)
        CHECK_INT(fake_store_has(ids[i]), 1);
    CHECK_INT(fake_queue_acked(), 8);
    worker_end();
}

/* ---- the wake and poll paths ---- */

static void test_poll(void) {
    worker_begin(1, 3, 40, NEVER_MS);
    uint64_t started = uv_now(&loop);
    push_jobs(0, 1);
    WAIT_UNTIL(st()->stored == 1);
    CHECK(fake_calls(FAKE_CLAIM) >= 1 && fake_call(FAKE_CLAIM, 0)->at_ms >= started + 40);
    size_t claims = fake_calls(FAKE_CLAIM);
    run_for(150); /* idle, it keeps polling */
    CHECK(fake_calls(FAKE_CLAIM) >= claims + 2);
    CHECK(fake_calls(FAKE_CLAIM) <= claims + 5);
    worker_end();
}

static void test_wake_while_busy(void) {
    worker_begin(2, 3, NEVER_MS, NEVER_MS);
    /* A wake during the claim that finds nothing: claim again at once. */
    fake_hold(FAKE_CLAIM);
    worker_wake(w);
    worker_wake(w); /* busy: remembered, no second claim in flight */
    CHECK_INT(fake_calls(FAKE_CLAIM), 1);
    CHECK(fake_let_go(FAKE_CLAIM));
    WAIT_UNTIL(answered(FAKE_CLAIM, 1));
    run_for(20);
    CHECK_INT(fake_calls(FAKE_CLAIM), 2); /* once, then idle */

    /* No wake during it: idle after the empty claim. */
    fake_hold(FAKE_CLAIM);
    worker_wake(w);
    CHECK_INT(fake_calls(FAKE_CLAIM), 3);
    CHECK(fake_let_go(FAKE_CLAIM));
    WAIT_UNTIL(answered(FAKE_CLAIM, 2));
    run_for(20);
    CHECK_INT(fake_calls(FAKE_CLAIM), 3);

    /* A claim that brings nothing while jobs remain claims again. */
    push_jobs(0, 1);
    fake_script(FAKE_CLAIM, (fake_outcome_t){.empty = true});
    worker_wake(w);
    WAIT_UNTIL(st()->stored == 1);
    CHECK(fake_calls(FAKE_CLAIM) >= 5 && fake_call(FAKE_CLAIM, 3)->n == 0 &&
          fake_call(FAKE_CLAIM, 4)->n == 1);
    worker_end();
}

static void test_wake_in_backoff(void) {
    worker_begin(1, 3, NEVER_MS, NEVER_MS);
    push_jobs(0, 1);
    fake_fail(FAKE_CLAIM, QUEUE_UNAVAILABLE);
    worker_wake(w);
    WAIT_UNTIL(answered(FAKE_CLAIM, 0));
    /* Backing off a Redis step: a wake while Redis is not ready waits it out... */
    fake_queue_set_ready(false);
    worker_wake(w);
    CHECK_INT(fake_calls(FAKE_CLAIM), 1);
    /* ...one while it is (a reconnect) retries at once. */
    fake_queue_set_ready(true);
    worker_wake(w);
    CHECK_INT(fake_calls(FAKE_CLAIM), 2);
    WAIT_UNTIL(st()->stored == 1 && fake_outstanding() == 0);

    /* Backing off the store: Redis waking us says nothing of MongoDB. */
    push_jobs(1, 2);
    fake_fail(FAKE_INSERT, STORE_UNAVAILABLE);
    worker_wake(w);
    WAIT_UNTIL(answered(FAKE_INSERT, 1));
    size_t claims = fake_calls(FAKE_CLAIM);
    worker_wake(w);
    CHECK_INT(fake_calls(FAKE_INSERT), 2);
    CHECK_INT(fake_calls(FAKE_CLAIM), claims);
    WAIT_UNTIL(st()->stored == 2 && fake_outstanding() == 0);
    CHECK_GAP(FAKE_INSERT, 2, FAKE_INSERT, 1, BACKOFF_MIN_MS);

    /* Backing off a dead-letter acknowledgement, a Redis step: at once. */
    fake_queue_push("garbage");
    fake_fail(FAKE_ACK_DEAD, QUEUE_UNAVAILABLE);
    worker_wake(w);
    WAIT_UNTIL(answered(FAKE_ACK_DEAD, 0));
    worker_wake(w);
    CHECK_INT(fake_calls(FAKE_ACK_DEAD), 2);
    WAIT_UNTIL(st()->dead == 1);
    CHECK_INT(fake_calls(FAKE_INSERT), 4); /* the empty batch's insert, once */
    worker_end();
}

/* ---- failures and backoff ---- */

static void test_claim_backoff(void) {
    worker_begin(1, 3, NEVER_MS, NEVER_MS);
    push_jobs(0, 1);
    /* Refused within the call, as queue.c does without a connection. */
    fake_script(FAKE_CLAIM, (fake_outcome_t){.status = QUEUE_UNAVAILABLE, .sync = true});
    fake_fail(FAKE_CLAIM, QUEUE_LOST);
    fake_fail(FAKE_CLAIM, QUEUE_ERROR);
    fake_fail(FAKE_CLAIM, QUEUE_UNAVAILABLE);
    fake_fail(FAKE_CLAIM, QUEUE_UNAVAILABLE);
    worker_wake(w);
    CHECK(answered(FAKE_CLAIM, 0));
    WAIT_UNTIL(st()->stored == 1 && answered(FAKE_CLAIM, 6));
    CHECK_INT(fake_calls(FAKE_CLAIM), 7); /* 5 failed, 1 claimed, 1 acknowledged */
    CHECK_GAP(FAKE_CLAIM, 1, FAKE_CLAIM, 0, 50);
    CHECK_GAP(FAKE_CLAIM, 2, FAKE_CLAIM, 1, 100);
    CHECK_GAP(FAKE_CLAIM, 3, FAKE_CLAIM, 2, 200);
    CHECK_GAP(FAKE_CLAIM, 4, FAKE_CLAIM, 3, BACKOFF_MAX_MS);
    CHECK_GAP(FAKE_CLAIM, 5, FAKE_CLAIM, 4, BACKOFF_MAX_MS); /* capped */
    CHECK_INT(st()->failures, 5);
    CHECK_INT(fake_calls(FAKE_INSERT), 1);
    /* A success resets the backoff. */
    push_jobs(1, 2);
    fake_fail(FAKE_CLAIM, QUEUE_UNAVAILABLE);
    worker_wake(w);
    WAIT_UNTIL(st()->stored == 2);
    CHECK_GAP(FAKE_CLAIM, 8, FAKE_CLAIM, 7, BACKOFF_MIN_MS);
    CHECK_INT(st()->failures, 6);
    worker_end();
}

/* The store refusing as a whole: the batch in hand is retried (never claimed
 * again), at most every 200 ms, and an outage dead-letters nothing even with
 * max_attempts 1. */
static void test_store_outage(void) {
    worker_begin(3, 1, NEVER_MS, NEVER_MS);
    push_jobs(0, 3);
    for (int i = 0; i < 4; i++)
        fake_script(FAKE_INSERT, (fake_outcome_t){.status = STORE_UNAVAILABLE, .err = "down"});
    worker_wake(w);
    WAIT_UNTIL(answered(FAKE_INSERT, 0));
    CHECK(!worker_store_ready(w));
    WAIT_UNTIL(st()->stored == 3);
    CHECK(worker_store_ready(w));
    CHECK_INT(fake_calls(FAKE_INSERT), 5);
    for (size_t i = 0; i < fake_calls(FAKE_INSERT); i++)
        CHECK(strcmp(fake_call(FAKE_INSERT, i)->text, ids_text(0, 3)) == 0);
    CHECK_GAP(FAKE_INSERT, 1, FAKE_INSERT, 0, 50);
    CHECK_GAP(FAKE_INSERT, 2, FAKE_INSERT, 1, 100);
    CHECK_GAP(FAKE_INSERT, 3, FAKE_INSERT, 2, STORE_BACKOFF_MAX_MS);
    CHECK_GAP(FAKE_INSERT, 4, FAKE_INSERT, 3, STORE_BACKOFF_MAX_MS); /* capped */
    WAIT_UNTIL(answered(FAKE_CLAIM, 1));
    CHECK_INT(fake_calls(FAKE_CLAIM), 2);
    CHECK_INT(st()->store_unavailable, 4);
    CHECK_INT(st()->failures, 4);
    CHECK_INT(st()->dead, 0);
    CHECK_INT(fake_calls(FAKE_ACK_DEAD), 0);
    CHECK_INT(fake_queue_dead(), 0);
    CHECK_INT(fake_store_count(), 3);
    worker_end();
}

static const unsigned char reject_middle[3] = {0, 1, 0};
static const unsigned char reject_all[2] = {1, 1};

/* A document refused max_attempts times goes to the dead letters with its
 * reason, acknowledged in the same step as the rest of its batch. */
static void test_dead_letter(void) {
    worker_begin(3, 3, NEVER_MS, NEVER_MS);
    push_jobs(0, 3);
    for (int i = 0; i < 3; i++)
        fake_script(FAKE_INSERT, (fake_outcome_t){.status = STORE_REJECTED,
                                                  .err = "document too large",
                                                  .rejected = reject_middle});
    worker_wake(w);
    WAIT_UNTIL(st()->dead == 1 && answered(FAKE_CLAIM, 1));
    CHECK_INT(fake_calls(FAKE_INSERT), 3); /* the whole batch each time: idempotent */
    for (size_t i = 0; i < fake_calls(FAKE_INSERT); i++)
        CHECK(strcmp(fake_call(FAKE_INSERT, i)->text, ids_text(0, 3)) == 0);
    CHECK_GAP(FAKE_INSERT, 1, FAKE_INSERT, 0, 50);
    CHECK_GAP(FAKE_INSERT, 2, FAKE_INSERT, 1, 100);
    CHECK_INT(fake_calls(FAKE_ACK_DEAD), 1);
    CHECK_INT(fake_queue_dead(), 1);
    const char *rec = fake_queue_dead_record(0);
    char want[256];
    snprintf(want, sizeof(want), "\"id\": \"%s\"", ids[1]);
    CHECK(has_text(rec, want));
    CHECK(has_text(rec, "\"attempts\": 3"));
    CHECK(has_text(rec, "\"error\": \"document too large\""));
    CHECK(has_text(rec, "\"worker\": \"w-test\""));
    CHECK(has_text(rec, "\"failed_at\": "));
    snprintf(want, sizeof(want), "\"job\": \"1:%s:1001:d1\"", ids[1]);
    CHECK(has_text(rec, want)); /* the entry as queued: requeueing restores it */
    CHECK_INT(st()->stored, 2);
    CHECK_INT(st()->failures, 2);
    CHECK_INT(st()->store_unavailable, 0);
    CHECK(worker_store_ready(w));
    CHECK_INT(fake_store_has(ids[0]), 1);
    CHECK_INT(fake_store_has(ids[1]), 0);
    CHECK_INT(fake_store_has(ids[2]), 1);
    CHECK_INT(fake_queue_acked(), 3);
    /* The dead-letter step acknowledged: the next claim carries no ack. */
    CHECK(fake_calls(FAKE_CLAIM) >= 2 && !fake_call(FAKE_CLAIM, 1)->ack);
    worker_end();

    /* Every document refused, max_attempts 1: all dead, nothing stored. */
    worker_begin(2, 1, NEVER_MS, NEVER_MS);
    push_jobs(0, 2);
    fake_script(FAKE_INSERT,
                (fake_outcome_t){.status = STORE_REJECTED, .err = "bad", .rejected = reject_all});
    worker_wake(w);
    WAIT_UNTIL(st()->dead == 2 && answered(FAKE_CLAIM, 1));
    CHECK_INT(fake_calls(FAKE_INSERT), 1);
    CHECK(fake_calls(FAKE_ACK_DEAD) == 1 && fake_call(FAKE_ACK_DEAD, 0)->n == 2);
    CHECK_INT(st()->stored, 0);
    CHECK_INT(st()->failures, 0);
    CHECK_INT(fake_store_count(), 0);
    CHECK_INT(fake_queue_dead(), 2);
    worker_end();
}

static void test_undecodable(void) {
    worker_begin(3, 3, NEVER_MS, NEVER_MS);
    fake_queue_push("garbage");
    push_jobs(0, 1);
    fake_queue_push("2:a-future-format");
    worker_wake(w);
    WAIT_UNTIL(st()->dead == 2 && st()->stored == 1 && answered(FAKE_CLAIM, 1));
    CHECK(fake_calls(FAKE_CLAIM) >= 1 && fake_call(FAKE_CLAIM, 0)->n == 3);
    CHECK(fake_calls(FAKE_INSERT) == 1 &&
          strcmp(fake_call(FAKE_INSERT, 0)->text, ids_text(0, 1)) == 0);
    CHECK(fake_calls(FAKE_ACK_DEAD) == 1 && fake_call(FAKE_ACK_DEAD, 0)->n == 2);
    CHECK_INT(fake_queue_dead(), 2);
    CHECK(has_text(fake_queue_dead_record(0), "\"job\": \"garbage\""));
    CHECK(has_text(fake_queue_dead_record(0), "\"error\": \"undecodable queue entry\""));
    CHECK(has_text(fake_queue_dead_record(0), "\"id\": \"\""));
    CHECK(has_text(fake_queue_dead_record(1), "\"job\": \"2:a-future-format\""));
    CHECK_INT(st()->invalid, 2);
    CHECK_INT(fake_queue_acked(), 3);

    /* A batch of nothing but undecodable entries. */
    fake_queue_push("junk");
    worker_wake(w);
    WAIT_UNTIL(st()->dead == 3 && fake_outstanding() == 0);
    CHECK_INT(fake_calls(FAKE_ACK_DEAD), 2);
    CHECK_INT(st()->stored, 1);
    CHECK_INT(st()->invalid, 3);
    CHECK_INT(fake_queue_acked(), 4);
    worker_end();
}

/* A failed acknowledgement is retried alone: the stored batch is never
 * inserted again. */
static void test_ack_retry(void) {
    worker_begin(2, 3, NEVER_MS, NEVER_MS);
    push_jobs(0, 2);
    fake_script(FAKE_CLAIM, (fake_outcome_t){0});
    fake_fail(FAKE_CLAIM, QUEUE_LOST);
    fake_fail(FAKE_CLAIM, QUEUE_ERROR);
    worker_wake(w);
    WAIT_UNTIL(answered(FAKE_CLAIM, 1));
    CHECK_INT(st()->stored, 0); /* not counted before it is acknowledged */
    WAIT_UNTIL(st()->stored == 2 && answered(FAKE_CLAIM, 3));
    CHECK_INT(fake_calls(FAKE_INSERT), 1);
    CHECK_INT(fake_store_again(), 0);
    CHECK_INT(fake_calls(FAKE_CLAIM), 4);
    for (size_t i = 1; i < fake_calls(FAKE_CLAIM); i++) {
        CHECK(fake_call(FAKE_CLAIM, i)->ack);
        CHECK_INT(fake_call(FAKE_CLAIM, i)->max, 2);
    }
    CHECK_GAP(FAKE_CLAIM, 2, FAKE_CLAIM, 1, 50);
    CHECK_GAP(FAKE_CLAIM, 3, FAKE_CLAIM, 2, 100);
    CHECK_INT(st()->failures, 2);
    CHECK_INT(fake_queue_acked(), 2);
    worker_end();

    /* Applied, but the reply was lost: the retried acknowledgement finds it
     * done; still one insert. */
    worker_begin(2, 3, NEVER_MS, NEVER_MS);
    push_jobs(0, 2);
    fake_script(FAKE_CLAIM, (fake_outcome_t){0});
    fake_script(FAKE_CLAIM, (fake_outcome_t){.status = QUEUE_LOST, .applied = true});
    worker_wake(w);
    WAIT_UNTIL(st()->stored == 2 && answered(FAKE_CLAIM, 2));
    CHECK_INT(fake_calls(FAKE_INSERT), 1);
    CHECK(fake_calls(FAKE_CLAIM) >= 3 && fake_call(FAKE_CLAIM, 2)->ack);
    CHECK_INT(fake_queue_acked(), 2);
    worker_end();

    /* The dead-letter acknowledgement fails: it alone is retried, with the
     * same records, and they are added once. */
    worker_begin(2, 3, NEVER_MS, NEVER_MS);
    push_jobs(0, 1);
    fake_queue_push("garbage");
    fake_fail(FAKE_ACK_DEAD, QUEUE_UNAVAILABLE);
    fake_fail(FAKE_ACK_DEAD, QUEUE_LOST);
    worker_wake(w);
    WAIT_UNTIL(st()->stored == 1 && st()->dead == 1 && fake_outstanding() == 0);
    CHECK_INT(fake_calls(FAKE_INSERT), 1);
    CHECK_INT(fake_calls(FAKE_ACK_DEAD), 3);
    for (size_t i = 1; i < fake_calls(FAKE_ACK_DEAD); i++)
        CHECK(strcmp(fake_call(FAKE_ACK_DEAD, i)->text, fake_call(FAKE_ACK_DEAD, 0)->text) == 0);
    CHECK_GAP(FAKE_ACK_DEAD, 1, FAKE_ACK_DEAD, 0, 50);
    CHECK_GAP(FAKE_ACK_DEAD, 2, FAKE_ACK_DEAD, 1, 100);
    CHECK_INT(fake_queue_dead(), 1);
    CHECK_INT(st()->failures, 2);
    CHECK(fake_calls(FAKE_CLAIM) >= 2 && !fake_call(FAKE_CLAIM, 1)->ack);
    worker_end();
}

/* ---- fencing ---- */

static void test_fenced(void) {
    /* lease 150 ms: heartbeats and fenced retries every 50 ms */
    worker_begin(2, 3, NEVER_MS, 150);
    push_jobs(0, 2);
    fake_fail(FAKE_CLAIM, QUEUE_FENCED);
    fake_fail(FAKE_CLAIM, QUEUE_FENCED);
    worker_wake(w);
    WAIT_UNTIL(answered(FAKE_CLAIM, 0));
    worker_wake(w); /* fenced: a wake does not cut the wait short */
    CHECK_INT(fake_calls(FAKE_CLAIM), 1);
    WAIT_UNTIL(st()->stored == 2 && answered(FAKE_CLAIM, 3));
    /* Retried at the lease's pace, not doubling. */
    CHECK_GAP(FAKE_CLAIM, 1, FAKE_CLAIM, 0, 50);
    CHECK_GAP(FAKE_CLAIM, 2, FAKE_CLAIM, 1, 50);
    CHECK_INT(st()->failures, 2);
    CHECK(fake_calls(FAKE_HEARTBEAT) >= 2);

    /* Fenced on the acknowledging claim: the batch is the other process's
     * now. Forgotten, not counted, not inserted again, not acknowledged. */
    push_jobs(2, 4);
    fake_script(FAKE_CLAIM, (fake_outcome_t){0});
    fake_fail(FAKE_CLAIM, QUEUE_FENCED);
    size_t first = fake_calls(FAKE_CLAIM);
    worker_wake(w);
    WAIT_UNTIL(answered(FAKE_CLAIM, first + 2) && fake_outstanding() == 0);
    CHECK(fake_calls(FAKE_CLAIM) >= first + 3 && fake_call(FAKE_CLAIM, first + 1)->ack &&
          fake_call(FAKE_CLAIM, first + 1)->status == QUEUE_FENCED &&
          !fake_call(FAKE_CLAIM, first + 2)->ack);
    CHECK_GAP(FAKE_CLAIM, first + 2, FAKE_CLAIM, first + 1, 50);
    CHECK_INT(st()->stored, 2);
    CHECK_INT(fake_queue_taken(), 2);
    CHECK_INT(fake_queue_acked(), 2);
    CHECK_INT(fake_calls(FAKE_INSERT), 2);
    CHECK_INT(st()->failures, 3);

    /* A heartbeat finding the id taken only logs; the worker goes on. */
    size_t beats = fake_calls(FAKE_HEARTBEAT);
    fake_fail(FAKE_HEARTBEAT, QUEUE_FENCED);
    WAIT_UNTIL(answered(FAKE_HEARTBEAT, beats));
    push_jobs(4, 5);
    worker_wake(w);
    WAIT_UNTIL(st()->stored == 3);
    worker_end();
}

/* ---- stopping ---- */

static void test_stop_idle(void) {
    /* Never started. */
    worker_options_t o = {"w-test", 2, NEVER_MS, NEVER_MS, 3};
    w = worker_new(&loop, fake_queue(), fake_store(), &o);
    stopped = 0;
    worker_stop(w, on_stopped, NULL);
    WAIT_UNTIL(stopped == 1 && fake_outstanding() == 0);
    CHECK_INT(fake_calls(FAKE_RELEASE), 1);
    CHECK_INT(fake_calls(FAKE_CLAIM), 0);
    worker_end_stopped();

    /* Idle, with heartbeats running; a wake after the stop claims nothing. */
    worker_begin(2, 3, NEVER_MS, 60);
    run_for(50);
    CHECK(fake_calls(FAKE_HEARTBEAT) >= 1);
    worker_stop(w, on_stopped, NULL);
    worker_wake(w);
    WAIT_UNTIL(stopped == 1 && fake_outstanding() == 0);
    size_t beats = fake_calls(FAKE_HEARTBEAT);
    run_for(60);
    CHECK_INT(fake_calls(FAKE_HEARTBEAT), beats);
    CHECK_INT(fake_calls(FAKE_CLAIM), 0);
    CHECK_INT(fake_calls(FAKE_RELEASE), 1);
    worker_end_stopped();

    /* The release fails: the jobs stay with the worker id for the reaper;
     * the stop still completes. */
    worker_begin(2, 3, NEVER_MS, NEVER_MS);
    fake_fail(FAKE_RELEASE, QUEUE_UNAVAILABLE);
    worker_end();
}

static void test_stop_while_claiming(void) {
    worker_begin(2, 3, NEVER_MS, NEVER_MS);
    push_jobs(0, 3);
    fake_hold(FAKE_CLAIM);
    worker_wake(w);
    worker_stop(w, on_stopped, NULL);
    worker_wake(w);
    run_for(20);
    CHECK_INT(stopped, 0); /* the claim is still out */
    CHECK_INT(fake_calls(FAKE_CLAIM), 1);
    CHECK(fake_let_go(FAKE_CLAIM));
    WAIT_UNTIL(stopped == 1 && fake_outstanding() == 0);
    /* What it brought goes back, unstored. */
    CHECK(answered(FAKE_CLAIM, 0) && fake_call(FAKE_CLAIM, 0)->n == 2);
    CHECK_INT(fake_calls(FAKE_INSERT), 0);
    CHECK_INT(fake_calls(FAKE_CLAIM), 1);
    CHECK_INT(fake_calls(FAKE_RELEASE), 1);
    CHECK_INT(fake_queue_pending(), 3);
    CHECK_INT(fake_queue_processing(), 0);
    CHECK_INT(st()->stored, 0);
    worker_end_stopped();
}

static void test_stop_while_storing(void) {
    /* The insert succeeds: acknowledged alone (a claim of 0), then gone. */
    worker_begin(2, 3, NEVER_MS, NEVER_MS);
    push_jobs(0, 2);
    fake_hold(FAKE_INSERT);
    worker_wake(w);
    WAIT_UNTIL(fake_calls(FAKE_INSERT) == 1);
    worker_stop(w, on_stopped, NULL);
    run_for(20);
    CHECK_INT(stopped, 0);
    CHECK(fake_let_go(FAKE_INSERT));
    WAIT_UNTIL(stopped == 1 && fake_outstanding() == 0);
    CHECK(fake_calls(FAKE_CLAIM) == 2 && fake_call(FAKE_CLAIM, 1)->max == 0 &&
          fake_call(FAKE_CLAIM, 1)->ack);
    CHECK_INT(st()->stored, 2);
    CHECK_INT(fake_queue_acked(), 2);
    CHECK_INT(fake_calls(FAKE_RELEASE), 1);
    CHECK_INT(fake_queue_pending(), 0);
    worker_end_stopped();

    /* The store is out: no backoff, the batch goes back. */
    worker_begin(2, 3, NEVER_MS, NEVER_MS);
    push_jobs(0, 2);
    fake_script(FAKE_INSERT, (fake_outcome_t){.status = STORE_UNAVAILABLE, .hold = true});
    worker_wake(w);
    WAIT_UNTIL(fake_calls(FAKE_INSERT) == 1);
    worker_stop(w, on_stopped, NULL);
    CHECK(fake_let_go(FAKE_INSERT));
    WAIT_UNTIL(stopped == 1 && fake_outstanding() == 0);
    run_for(BACKOFF_MIN_MS + 10);
    CHECK_INT(fake_calls(FAKE_INSERT), 1);
    CHECK_INT(fake_calls(FAKE_CLAIM), 1);
    CHECK_INT(fake_queue_pending(), 2);
    CHECK_INT(st()->stored, 0);
    CHECK_INT(st()->store_unavailable, 1);
    worker_end_stopped();

    /* Refused for the last time while stopping: not dead-lettered now,
     * returned to the queue (another worker counts its own attempts). */
    worker_begin(2, 1, NEVER_MS, NEVER_MS);
    push_jobs(0, 2);
    fake_script(FAKE_INSERT,
                (fake_outcome_t){.status = STORE_REJECTED, .hold = true, .rejected = reject_all});
    worker_wake(w);
    WAIT_UNTIL(fake_calls(FAKE_INSERT) == 1);
    worker_stop(w, on_stopped, NULL);
    CHECK(fake_let_go(FAKE_INSERT));
    WAIT_UNTIL(stopped == 1 && fake_outstanding() == 0);
    CHECK_INT(fake_calls(FAKE_ACK_DEAD), 0);
    CHECK_INT(fake_queue_dead(), 0);
    CHECK_INT(fake_queue_pending(), 2);
    CHECK_INT(st()->dead, 0);
    worker_end_stopped();
}

static void test_stop_while_acking(void) {
    /* The acknowledging claim was sent with a full batch size: what it
     * brings goes back. */
    worker_begin(2, 3, NEVER_MS, NEVER_MS);
    push_jobs(0, 4);
    fake_script(FAKE_CLAIM, (fake_outcome_t){0});
    fake_hold(FAKE_CLAIM);
    worker_wake(w);
    WAIT_UNTIL(fake_calls(FAKE_CLAIM) == 2);
    worker_stop(w, on_stopped, NULL);
    run_for(10);
    CHECK_INT(stopped, 0);
    CHECK(fake_let_go(FAKE_CLAIM));
    WAIT_UNTIL(stopped == 1 && fake_outstanding() == 0);
    CHECK_INT(st()->stored, 2);
    CHECK_INT(fake_queue_acked(), 2);
    CHECK_INT(fake_calls(FAKE_INSERT), 1);
    CHECK_INT(fake_calls(FAKE_CLAIM), 2);
    CHECK_INT(fake_queue_pending(), 2);
    worker_end_stopped();

    /* The acknowledging claim fails while stopping: no retry; the stored
     * batch goes back (stored again later, once by _id). */
    worker_begin(2, 3, NEVER_MS, NEVER_MS);
    push_jobs(0, 2);
    fake_script(FAKE_CLAIM, (fake_outcome_t){0});
    fake_script(FAKE_CLAIM, (fake_outcome_t){.status = QUEUE_LOST, .hold = true});
    worker_wake(w);
    WAIT_UNTIL(fake_calls(FAKE_CLAIM) == 2);
    worker_stop(w, on_stopped, NULL);
    CHECK(fake_let_go(FAKE_CLAIM));
    WAIT_UNTIL(stopped == 1 && fake_outstanding() == 0);
    CHECK_INT(fake_calls(FAKE_CLAIM), 2);
    CHECK_INT(st()->stored, 0);
    CHECK_INT(fake_queue_pending(), 2);
    worker_end_stopped();

    /* The dead-letter acknowledgement is out, and succeeds. */
    worker_begin(2, 3, NEVER_MS, NEVER_MS);
    push_jobs(0, 1);
    fake_queue_push("garbage");
    fake_hold(FAKE_ACK_DEAD);
    worker_wake(w);
    WAIT_UNTIL(fake_calls(FAKE_ACK_DEAD) == 1);
    worker_stop(w, on_stopped, NULL);
    run_for(10);
    CHECK_INT(stopped, 0);
    CHECK(fake_let_go(FAKE_ACK_DEAD));
    WAIT_UNTIL(stopped == 1 && fake_outstanding() == 0);
    CHECK_INT(st()->stored, 1);
    CHECK_INT(st()->dead, 1);
    CHECK_INT(fake_queue_dead(), 1);
    CHECK_INT(fake_calls(FAKE_CLAIM), 1);
    CHECK_INT(fake_queue_pending(), 0);
    worker_end_stopped();

    /* ...and fails: no retry, everything goes back, no dead letter yet. */
    worker_begin(2, 3, NEVER_MS, NEVER_MS);
    push_jobs(0, 1);
    fake_queue_push("garbage");
    fake_script(FAKE_ACK_DEAD, (fake_outcome_t){.status = QUEUE_UNAVAILABLE, .hold = true});
    worker_wake(w);
    WAIT_UNTIL(fake_calls(FAKE_ACK_DEAD) == 1);
    worker_stop(w, on_stopped, NULL);
    CHECK(fake_let_go(FAKE_ACK_DEAD));
    WAIT_UNTIL(stopped == 1 && fake_outstanding() == 0);
    run_for(BACKOFF_MIN_MS + 10);
    CHECK_INT(fake_calls(FAKE_ACK_DEAD), 1);
    CHECK_INT(fake_queue_dead(), 0);
    CHECK_INT(fake_queue_pending(), 2);
    CHECK_INT(st()->dead, 0);
    worker_end_stopped();
}

static void test_stop_in_backoff(void) {
    /* A claim backing off: stopped at once, not after the wait. */
    worker_begin(2, 3, NEVER_MS, NEVER_MS);
    push_jobs(0, 1);
    fake_fail(FAKE_CLAIM, QUEUE_UNAVAILABLE);
    worker_wake(w);
    WAIT_UNTIL(answered(FAKE_CLAIM, 0));
    uint64_t t0 = uv_now(&loop);
    worker_stop(w, on_stopped, NULL);
    WAIT_UNTIL(stopped == 1 && fake_outstanding() == 0);
    CHECK(uv_now(&loop) - t0 < BACKOFF_MIN_MS);
    run_for(BACKOFF_MIN_MS + 10);
    CHECK_INT(fake_calls(FAKE_CLAIM), 1);
    CHECK_INT(fake_queue_pending(), 1);
    worker_end_stopped();

    /* The store backing off: the batch goes back. */
    worker_begin(2, 3, NEVER_MS, NEVER_MS);
    push_jobs(0, 2);
    fake_fail(FAKE_INSERT, STORE_UNAVAILABLE);
    worker_wake(w);
    WAIT_UNTIL(answered(FAKE_INSERT, 0));
    worker_stop(w, on_stopped, NULL);
    WAIT_UNTIL(stopped == 1 && fake_outstanding() == 0);
    run_for(BACKOFF_MIN_MS + 10);
    CHECK_INT(fake_calls(FAKE_INSERT), 1);
    CHECK_INT(fake_queue_pending(), 2);
    CHECK_INT(st()->stored, 0);
    worker_end_stopped();

    /* An acknowledgement backing off: the stored batch goes back. */
    worker_begin(2, 3, NEVER_MS, NEVER_MS);
    push_jobs(0, 2);
    fake_script(FAKE_CLAIM, (fake_outcome_t){0});
    fake_fail(FAKE_CLAIM, QUEUE_ERROR);
    worker_wake(w);
    WAIT_UNTIL(answered(FAKE_CLAIM, 1));
    worker_stop(w, on_stopped, NULL);
    WAIT_UNTIL(stopped == 1 && fake_outstanding() == 0);
    run_for(BACKOFF_MIN_MS + 10);
    CHECK_INT(fake_calls(FAKE_CLAIM), 2);
    CHECK_INT(fake_calls(FAKE_INSERT), 1);
    CHECK_INT(fake_queue_pending(), 2);
    worker_end_stopped();

    /* Fenced: stopped at once; nothing of the batch is ours to return. */
    worker_begin(2, 3, NEVER_MS, 3000);
    push_jobs(0, 2);
    fake_fail(FAKE_CLAIM, QUEUE_FENCED);
    worker_wake(w);
    WAIT_UNTIL(answered(FAKE_CLAIM, 0));
    worker_stop(w, on_stopped, NULL);
    WAIT_UNTIL(stopped == 1 && fake_outstanding() == 0);
    CHECK_INT(fake_calls(FAKE_CLAIM), 1);
    worker_end_stopped();
}

/* A heartbeat reply may arrive after the stopped callback (the caller frees
 * the worker only once the queue has closed, worker.h): it finds the worker
 * still there and changes nothing. */
static void test_heartbeat_after_stop(void) {
    worker_begin(2, 3, NEVER_MS, 30);
    fake_hold(FAKE_HEARTBEAT);
    WAIT_UNTIL(fake_calls(FAKE_HEARTBEAT) >= 1);
    worker_stop(w, on_stopped, NULL);
    WAIT_UNTIL(stopped == 1);
    CHECK(fake_let_go(FAKE_HEARTBEAT)); /* still out */
    worker_end_stopped();
}

int main(void) {
    /* Quiet unless asked: the worker logs every failure it is made to meet. */
    if (!getenv("MULTIVAC_TEST_LOG")) log_set_level((log_level_t)(LOG_ERROR + 1));
    for (size_t i = 0; i < sizeof(ids) / sizeof(ids[0]); i++)
        snprintf(ids[i], sizeof(ids[i]), "%032zx", i + 0xa0);
    CHECK_INT(uv_loop_init(&loop), 0);
    fake_init(&loop);

    test_cycle();
    test_held_batch_grows();
    test_poll();
    test_wake_while_busy();
    test_wake_in_backoff();
    test_claim_backoff();
    test_store_outage();
    test_dead_letter();
    test_undecodable();
    test_ack_retry();
    test_fenced();
    test_stop_idle();
    test_stop_while_claiming();
    test_stop_while_storing();
    test_stop_while_acking();
    test_stop_in_backoff();
    test_heartbeat_after_stop();

    fake_close();
    uv_run(&loop, UV_RUN_DEFAULT);
    CHECK_INT(uv_loop_close(&loop), 0); /* every uv_*_init had its uv_close */
    return CHECK_SUMMARY();
}
