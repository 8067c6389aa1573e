/* store: MongoDB access, run on the libuv thread pool.
 *
 * mongoc is blocking, so every operation is a uv_work_t: the work runs on a pool
 * thread with a client popped from a mongoc_client_pool_t, the callback runs back
 * on the loop thread. Nothing here blocks the loop.
 *
 * Documents in <db>.entropy: {_id: <job id>, data: <string>, received_at: <date>,
 * processed_at: <date>}. Inserts are idempotent by _id: a document that is already
 * there counts as stored, so a job delivered twice is stored once. */
#ifndef MULTIVAC_STORE_H
#define MULTIVAC_STORE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <uv.h>

typedef struct store store_t;

typedef struct store_doc {
    const char *id; /* NUL-terminated job id */
    const char *data;
    size_t data_len;
    int64_t received_at_ms;
} store_doc_t;

/* Outcomes of every operation. */
typedef enum {
    STORE_OK = 0,
    /* Nothing is known to be stored, try again later: unreachable, timed out,
     * or the store refusing writes as a whole (a full disk, missing rights,
     * lock or write conflicts, a primary stepping down, a quota, and any
     * refusal every document of the insert shares). */
    STORE_UNAVAILABLE = -1,
    /* Inserts only: the server refused particular documents for good (too
     * large, invalid); every other document of the batch is stored. */
    STORE_REJECTED = -2,
} store_status_t;

/* A short static description of `status`. Callbacks pass the precise message
 * (`err`) with every failure, which is what a log line should carry. */
const char *store_strerror(store_status_t status);

/* Callbacks take the status as an int holding a store_status_t; with any but
 * STORE_OK, `err` is a message valid during the callback. */

/* `rejected` (one flag per document, 1 for each refused) only with
 * STORE_REJECTED. */
typedef void (*store_insert_cb)(void *arg, int status, const char *err,
                                const unsigned char *rejected);
/* STORE_OK or STORE_UNAVAILABLE. */
typedef void (*store_find_cb)(void *arg, int status, const char *err, bool found, const char *data,
                              size_t data_len);
/* STORE_OK or STORE_UNAVAILABLE. */
typedef void (*store_ping_cb)(void *arg, int status, const char *err);
typedef void (*store_close_cb)(void *arg);

/* `uri` is a MongoDB connection string; server selection and connect timeouts
 * default to 2 s unless the URI sets them, so an unreachable server fails
 * operations quickly instead of pinning pool threads for 30 s.
 * Returns NULL with a message in `err` (room for `err_len` bytes) when the
 * database name is empty or the URI is invalid. */
store_t *store_new(uv_loop_t *loop, const char *uri, const char *db, char *err, size_t err_len);

/* Inserts `n` documents. `docs` and what they point to must stay valid until
 * the callback. Duplicate _ids are not errors (see above). */
void store_insert(store_t *s, const store_doc_t *docs, size_t n, store_insert_cb cb, void *arg);

/* Finds the first document of the collection in natural order (the original's
 * find_one()), which is the oldest in practice. `data` is valid during the callback. */
void store_find_oldest(store_t *s, store_find_cb cb, void *arg);

/* Runs {ping: 1} against the server. */
void store_ping(store_t *s, store_ping_cb cb, void *arg);

/* Waits for operations in flight, then calls `cb`; after it, store_free. */
void store_close(store_t *s, store_close_cb cb, void *arg);
void store_free(store_t *s);

#endif
