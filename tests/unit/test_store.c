/* Unit tests of store: its status convention and the checks store_new makes
 * before any server is involved (the rest needs MongoDB: integration tests). */
#include "store/store.h"

#include <mongoc/mongoc.h>
#include <string.h>

#include "check.h"

static void test_strerror(void) {
    CHECK(strcmp(store_strerror(STORE_OK), "ok") == 0);
    CHECK(strcmp(store_strerror(STORE_UNAVAILABLE), "store unavailable") == 0);
    CHECK(strcmp(store_strerror(STORE_REJECTED), "documents rejected") == 0);
    CHECK(strcmp(store_strerror((store_status_t)5), "unknown store status") == 0);
    /* Callbacks carry statuses as ints, and answer.c compares with 0. */
    CHECK_INT(STORE_OK, 0);
    CHECK_INT(STORE_UNAVAILABLE, -1);
    CHECK_INT(STORE_REJECTED, -2);
}

static void test_new_invalid(void) {
    uv_loop_t loop;
    uv_loop_init(&loop);
    char err[256] = "";
    CHECK(store_new(&loop, "mongodb://127.0.0.1:1", "", err, sizeof(err)) == NULL);
    CHECK(strcmp(err, "MongoDB database name is empty") == 0);
    err[0] = '\0';
    CHECK(store_new(&loop, "http://x", "db", err, sizeof(err)) == NULL);
    CHECK(strncmp(err, "invalid MongoDB URI: ", 21) == 0);
    /* A valid URI connects lazily: nothing is contacted here. */
    store_t *s = store_new(&loop, "mongodb://127.0.0.1:1", "db", err, sizeof(err));
    CHECK(s != NULL);
    store_free(s);
    uv_loop_close(&loop);
}

int main(void) {
    mongoc_init();
    mongoc_log_set_handler(NULL, NULL); /* its own view of the bad URI */
    test_strerror();
    test_new_invalid();
    mongoc_cleanup();
    return CHECK_SUMMARY();
}
