/* store: every operation is a store_op_t run on the libuv thread pool; pool
 * threads read only what store_new set, and callbacks run on the loop thread. */
#include "store/store.h"

#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <mongoc/mongoc.h>

#include "obs/log.h"
#include "util/clock.h"
#include "util/mem.h"

#define STORE_COLLECTION "entropy"
#define STORE_APPNAME "multivac"
#define STORE_DUPLICATE_KEY 11000
/* Defaults for a URI that does not set them: an unreachable server must fail an
 * operation in about 2 s, not hold a pool thread for mongoc's 30 s. */
#define STORE_SERVER_SELECTION_TIMEOUT_MS 2000
#define STORE_CONNECT_TIMEOUT_MS 2000
#define STORE_SOCKET_TIMEOUT_MS 10000
/* Only libuv pool threads pop clients, so this just has to exceed their number
 * (UV_THREADPOOL_SIZE, 4 by default) for pops not to wait on each other. */
#define STORE_MAX_POOL_SIZE 16
/* "MongoDB: " followed by a bson_error_t message. */
#define STORE_ERR_MAX (BSON_ERROR_BUFFER_SIZE + 16)

struct store {
    uv_loop_t *loop;
    mongoc_uri_t *uri;
    mongoc_client_pool_t *pool;
    char *db;
    /* The fields below belong to the loop thread; pool threads read only the
     * three above, which do not change after store_new. */
    size_t outstanding; /* ops queued whose after-work has not run yet */
    bool closing;
    store_close_cb close_cb;
    void *close_arg;
};

/* Refusals of one insert: documents refused with a code known to be about the
 * document, and those refused with a code we do not know. */
typedef struct store_tally {
    size_t known;
    size_t unknown;
} store_tally_t;

typedef enum { STORE_OP_INSERT, STORE_OP_FIND, STORE_OP_PING, STORE_OP_CLOSE } store_op_kind_t;

/* One queued operation. Request fields are set on the loop thread before
 * uv_queue_work, results by the pool thread; libuv orders the work before the
 * after-work, so no lock is needed. */
typedef struct store_op {
    uv_work_t req;
    store_t *s;
    store_op_kind_t kind;
    bool refused; /* requested after store_close: the work does nothing */
    const store_doc_t *docs;
    size_t ndocs;
    union {
        store_insert_cb insert;
        store_find_cb find;
        store_ping_cb ping;
    } cb;
    void *arg;

    store_status_t status;
    char err[STORE_ERR_MAX];
    size_t duplicates;       /* insert: documents that were already there */
    store_tally_t tally;     /* insert: refusals, by kind of code */
    unsigned char *rejected; /* insert: per document, refused for good */
    bool found;              /* find */
    char *data;              /* find: owned, freed with bson_free */
    size_t data_len;
} store_op_t;

const char *store_strerror(store_status_t status) {
    switch (status) {
    case STORE_OK: return "ok";
    case STORE_UNAVAILABLE: return "store unavailable";
    case STORE_REJECTED: return "documents rejected";
    }
    return "unknown store status";
}

static void store_op_fail(store_op_t *op, const char *msg) {
    op->status = STORE_UNAVAILABLE;
    snprintf(op->err, sizeof(op->err), "%s", msg);
}

static void store_op_fail_mongo(store_op_t *op, const bson_error_t *error) {
    op->status = STORE_UNAVAILABLE;
    snprintf(op->err, sizeof(op->err), "MongoDB: %s", error->message);
}

/* ---- store_new / store_free ---------------------------------------------- */

static void store_uri_default_int32(mongoc_uri_t *uri, const char *option, int32_t value) {
    if (!mongoc_uri_has_option(uri, option)) mongoc_uri_set_option_as_int32(uri, option, value);
}

store_t *store_new(uv_loop_t *loop, const char *uri, const char *db, char *err, size_t err_len) {
    if (!db || !*db) {
        snprintf(err, err_len, "MongoDB database name is empty");
        return NULL;
    }

    bson_error_t error;
    mongoc_uri_t *u = mongoc_uri_new_with_error(uri, &error);
    if (!u) {
        snprintf(err, err_len, "invalid MongoDB URI: %s", error.message);
        return NULL;
    }
    store_uri_default_int32(u, MONGOC_URI_SERVERSELECTIONTIMEOUTMS,
                            STORE_SERVER_SELECTION_TIMEOUT_MS);
    store_uri_default_int32(u, MONGOC_URI_CONNECTTIMEOUTMS, STORE_CONNECT_TIMEOUT_MS);
    store_uri_default_int32(u, MONGOC_URI_SOCKETTIMEOUTMS, STORE_SOCKET_TIMEOUT_MS);
    store_uri_default_int32(u, MONGOC_URI_MAXPOOLSIZE, STORE_MAX_POOL_SIZE);
    if (!mongoc_uri_get_appname(u)) mongoc_uri_set_appname(u, STORE_APPNAME);

    mongoc_client_pool_t *pool = mongoc_client_pool_new_with_error(u, &error);
    if (!pool) {
        snprintf(err, err_len, "MongoDB: %s", error.message);
        mongoc_uri_destroy(u);
        return NULL;
    }
    /* Version 2 reports server errors in MONGOC_ERROR_SERVER with the server's
     * own code, which is what the duplicate-key check below relies on. */
    mongoc_client_pool_set_error_api(pool, MONGOC_ERROR_API_VERSION_2);

    store_t *s = mem_calloc(1, sizeof(*s));
    s->loop = loop;
    s->uri = u;
    s->pool = pool;
    s->db = mem_strdup(db);
    return s;
}

void store_free(store_t *s) {
    if (!s) return;
    /* Destroying the pool joins its monitoring threads; every client is back in
     * it because store_close waited for the last operation. */
    mongoc_client_pool_destroy(s->pool);
    mongoc_uri_destroy(s->uri);
    free(s->db);
    free(s);
}

/* ---- work, on a pool thread ---------------------------------------------- */

/* Server error codes that say the store refuses writes as a whole right now
 * (its state, its disk, our rights, contention), not that a document is bad:
 * every document would get the same answer, so this is an outage to wait out,
 * never a reason to dead-letter. */
static bool store_code_storewide(int64_t code) {
    switch (code) {
    case 1:     /* InternalError: FerretDB's answer on a full disk */
    case 6:     /* HostUnreachable */
    case 7:     /* HostNotFound */
    case 11:    /* UserNotFound */
    case 13:    /* Unauthorized */
    case 18:    /* AuthenticationFailed */
    case 20:    /* IllegalOperation: a read-only server */
    case 24:    /* LockTimeout */
    case 46:    /* LockBusy */
    case 50:    /* MaxTimeMSExpired */
    case 64:    /* WriteConcernFailed */
    case 89:    /* NetworkTimeout */
    case 91:    /* ShutdownInProgress */
    case 100:   /* UnsatisfiableWriteConcern */
    case 112:   /* WriteConflict */
    case 117:   /* ConflictingOperationInProgress */
    case 133:   /* FailedToSatisfyReadPreference */
    case 189:   /* PrimarySteppedDown */
    case 202:   /* NetworkInterfaceExceededTimeLimit */
    case 262:   /* ExceededTimeLimit */
    case 8000:  /* AtlasError: over quota */
    case 9001:  /* SocketException */
    case 10107: /* NotWritablePrimary */
    case 11600: /* InterruptedAtShutdown */
    case 11601: /* Interrupted */
    case 11602: /* InterruptedDueToReplStateChange */
    case 13435: /* NotPrimaryNoSecondaryOk */
    case 13436: /* NotPrimaryOrSecondary */
    case 14031: /* OutOfDiskSpace */
    case 16500: /* TooManyRequests (Cosmos DB's rate limit) */ return true;
    default: return false;
    }
}

/* Server error codes about one document: that document will never be stored. */
static bool store_code_document(int64_t code) {
    switch (code) {
    case 2:     /* BadValue */
    case 9:     /* FailedToParse */
    case 14:    /* TypeMismatch */
    case 15:    /* Overflow */
    case 16:    /* InvalidLength */
    case 22:    /* InvalidBSON */
    case 30:    /* InvalidPath */
    case 52:    /* DollarPrefixedFieldName */
    case 53:    /* InvalidIdField */
    case 55:    /* InvalidDBRef */
    case 56:    /* EmptyFieldName */
    case 57:    /* DotsInFieldName */
    case 121:   /* DocumentValidationFailure */
    case 10334: /* BSONObjectTooLarge */
    case 17280: /* KeyTooLong */
    case 17419: /* document too large */ return true;
    default: return false;
    }
}

/* Reads the reply of a failed unordered insert_many. Marks in `rejected` (by
 * position in `index`, the subset that was sent) every document refused for a
 * reason of its own; duplicates of _id count as stored. Returns STORE_OK when
 * only duplicates failed, STORE_REJECTED when some documents were refused, and
 * STORE_UNAVAILABLE when the failure was not about particular documents. */
static store_status_t store_classify(const bson_t *reply, const bson_error_t *error,
                                     const size_t *index, size_t n, unsigned char *rejected,
                                     size_t *duplicates, store_tally_t *tally) {
    bson_iter_t it, arr;
    if (bson_iter_init_find(&it, reply, "writeConcernErrors") && BSON_ITER_HOLDS_ARRAY(&it) &&
        bson_iter_recurse(&it, &arr) && bson_iter_next(&arr))
        return STORE_UNAVAILABLE;

    if (bson_iter_init_find(&it, reply, "writeErrors") && BSON_ITER_HOLDS_ARRAY(&it) &&
        bson_iter_recurse(&it, &arr)) {
        bool any = false, refused = false;
        while (bson_iter_next(&arr)) {
            bson_iter_t f;
            int64_t code = -1, at = -1;
            if (!BSON_ITER_HOLDS_DOCUMENT(&arr) || !bson_iter_recurse(&arr, &f))
                return STORE_UNAVAILABLE;
            while (bson_iter_next(&f)) {
                if (strcmp(bson_iter_key(&f), "code") == 0) code = bson_iter_as_int64(&f);
                if (strcmp(bson_iter_key(&f), "index") == 0) at = bson_iter_as_int64(&f);
            }
            if (code == STORE_DUPLICATE_KEY) {
                (*duplicates)++;
            } else if (store_code_storewide(code) || at < 0 || (size_t)at >= n) {
                return STORE_UNAVAILABLE;
            } else {
                rejected[index[at]] = 1;
                refused = true;
                if (store_code_document(code)) {
                    tally->known++;
                } else {
                    tally->unknown++;
                }
            }
            any = true;
        }
        if (any) return refused ? STORE_REJECTED : STORE_OK;
    }
    /* A server that reports a lone duplicate as a command error. */
    if (error->domain == MONGOC_ERROR_SERVER && error->code == STORE_DUPLICATE_KEY) return STORE_OK;
    return STORE_UNAVAILABLE;
}

/* True for an error about the command as a whole that a document can cause,
 * which for a batch does not say which document: raised by the server, or by
 * mongoc itself for a document over the server's size limit. Store-wide codes
 * are not: the whole store refuses, whatever the documents. */
static bool store_batch_refused(const bson_error_t *error) {
    if (error->domain == MONGOC_ERROR_BSON) return true;
    return error->domain == MONGOC_ERROR_SERVER && !store_code_storewide(error->code) &&
           error->code != STORE_DUPLICATE_KEY;
}

static void store_tally_refusal(const bson_error_t *error, store_tally_t *tally) {
    if (error->domain == MONGOC_ERROR_BSON || store_code_document(error->code)) {
        tally->known++;
    } else {
        tally->unknown++;
    }
}

static store_status_t store_insert_some(store_op_t *op, mongoc_collection_t *coll, bson_t **docs,
                                        const size_t *index, size_t n, bson_error_t *error) {
    bson_t opts = BSON_INITIALIZER;
    BSON_APPEND_BOOL(&opts, "ordered", false);
    bson_t reply;
    store_status_t status = STORE_OK;
    if (!mongoc_collection_insert_many(coll, (const bson_t **)docs, n, &opts, &reply, error))
        status = store_classify(&reply, error, index, n, op->rejected, &op->duplicates, &op->tally);
    bson_destroy(&reply);
    bson_destroy(&opts);
    return status;
}

static void store_insert_work(store_op_t *op, mongoc_client_t *client) {
    size_t n = op->ndocs, sent = 0;
    bson_t **docs = mem_calloc(n, sizeof(*docs));
    size_t *index = mem_calloc(n, sizeof(*index));
    op->rejected = mem_calloc(n, 1);
    /* One time for the batch: the documents were processed together. */
    int64_t processed_at = clock_wall_ms();
    bool refused = false;

    for (size_t i = 0; i < n; i++) {
        const store_doc_t *d = &op->docs[i];
        bson_t *doc = bson_new();
        /* data may hold NUL bytes, hence its explicit length; bson_append_*
         * fail rather than build a document over the BSON size limit. */
        if (d->data_len > INT_MAX || !bson_append_utf8(doc, "_id", 3, d->id, -1) ||
            !bson_append_utf8(doc, "data", 4, d->data, (int)d->data_len) ||
            !bson_append_date_time(doc, "received_at", 11, d->received_at_ms) ||
            !bson_append_date_time(doc, "processed_at", 12, processed_at)) {
            bson_destroy(doc);
            op->rejected[i] = 1;
            refused = true;
            continue;
        }
        docs[sent] = doc;
        index[sent++] = i;
    }

    store_status_t status = STORE_OK;
    bson_error_t error = {0};
    if (sent > 0) {
        mongoc_collection_t *coll =
            mongoc_client_get_collection(client, op->s->db, STORE_COLLECTION);
        status = store_insert_some(op, coll, docs, index, sent, &error);
        /* Refused as a whole: find the culprits one document at a time. */
        if (status == STORE_UNAVAILABLE && store_batch_refused(&error)) {
            status = STORE_OK;
            for (size_t k = 0; k < sent && status != STORE_UNAVAILABLE; k++) {
                bson_error_t one = {0};
                store_status_t st = sent == 1
                                        ? STORE_UNAVAILABLE
                                        : store_insert_some(op, coll, &docs[k], &index[k], 1, &one);
                if (sent == 1) one = error;
                if (st == STORE_UNAVAILABLE && store_batch_refused(&one)) {
                    op->rejected[index[k]] = 1;
                    store_tally_refusal(&one, &op->tally);
                    st = STORE_REJECTED;
                }
                if (st != STORE_OK) {
                    status = st;
                    error = one;
                }
            }
        }
        /* An unknown refusal that every document shares is the store's state,
         * not the documents': an outage, not dead letters. */
        if (status == STORE_REJECTED && op->tally.known == 0 && op->tally.unknown == sent) {
            status = STORE_UNAVAILABLE;
        }
        mongoc_collection_destroy(coll);
    }
    if (status == STORE_OK && refused) {
        status = STORE_REJECTED;
        snprintf(error.message, sizeof(error.message), "document too large to build");
    }
    if (status != STORE_OK) {
        store_op_fail_mongo(op, &error);
        op->status = status;
    }

    for (size_t i = 0; i < sent; i++)
        bson_destroy(docs[i]);
    free(docs);
    free(index);
}

/* A non-string `data` is returned as its relaxed extended JSON (42, 1.5,
 * {"a" : 1}, {"$date" : "..."}), a readable form that keeps its type
 * apparent. Returns a bson_malloc'd, NUL-terminated string. */
static char *store_render_value(const bson_iter_t *value, size_t *len) {
    static const char prefix[] = "{ \"\" : ";
    static const char suffix[] = " }";
    const size_t prefix_len = sizeof(prefix) - 1, suffix_len = sizeof(suffix) - 1;

    /* libbson 1.23 has no extended JSON for a lone value, so wrap it in a
     * document under the empty key and cut the wrapper off its rendering. */
    bson_t wrap = BSON_INITIALIZER;
    bson_append_iter(&wrap, "", 0, value);
    size_t json_len;
    char *json = bson_as_relaxed_extended_json(&wrap, &json_len);
    bson_destroy(&wrap);
    if (json && json_len >= prefix_len + suffix_len && memcmp(json, prefix, prefix_len) == 0 &&
        memcmp(json + json_len - suffix_len, suffix, suffix_len) == 0) {
        *len = json_len - prefix_len - suffix_len;
        memmove(json, json + prefix_len, *len);
        json[*len] = '\0';
    } else if (json) {
        *len = json_len; /* not the expected shape: keep the whole wrapper */
    }
    return json;
}

static void store_find_work(store_op_t *op, mongoc_client_t *client) {
    mongoc_collection_t *coll = mongoc_client_get_collection(client, op->s->db, STORE_COLLECTION);
    bson_t filter = BSON_INITIALIZER;
    bson_t opts = BSON_INITIALIZER;
    bson_t projection;
    /* No sort: natural order, as the original's find_one(). */
    BSON_APPEND_INT64(&opts, "limit", 1);
    BSON_APPEND_DOCUMENT_BEGIN(&opts, "projection", &projection);
    BSON_APPEND_INT32(&projection, "data", 1);
    bson_append_document_end(&opts, &projection);

    mongoc_cursor_t *cursor = mongoc_collection_find_with_opts(coll, &filter, &opts, NULL);
    const bson_t *doc;
    bson_error_t error;
    bson_iter_t it;
    if (mongoc_cursor_next(cursor, &doc)) {
        if (!bson_iter_init_find(&it, doc, "data")) {
            store_op_fail(op, "MongoDB: oldest document in " STORE_COLLECTION " has no data field");
        } else if (BSON_ITER_HOLDS_UTF8(&it)) {
            uint32_t len;
            const char *str = bson_iter_utf8(&it, &len);
            op->data = bson_malloc(len + 1);
            memcpy(op->data, str, len);
            op->data[len] = '\0';
            op->data_len = len;
            op->found = true;
        } else {
            op->data = store_render_value(&it, &op->data_len);
            if (op->data)
                op->found = true;
            else
                store_op_fail(op, "MongoDB: cannot render the oldest document's data");
        }
    } else if (mongoc_cursor_error(cursor, &error)) {
        store_op_fail_mongo(op, &error);
    }

    mongoc_cursor_destroy(cursor);
    bson_destroy(&opts);
    bson_destroy(&filter);
    mongoc_collection_destroy(coll);
}

static void store_ping_work(store_op_t *op, mongoc_client_t *client) {
    bson_t cmd = BSON_INITIALIZER;
    BSON_APPEND_INT32(&cmd, "ping", 1);
    bson_t reply;
    bson_error_t error;
    if (!mongoc_client_command_simple(client, "admin", &cmd, NULL, &reply, &error))
        store_op_fail_mongo(op, &error);
    bson_destroy(&reply);
    bson_destroy(&cmd);
}

static void store_work(uv_work_t *req) {
    store_op_t *op = req->data;
    if (op->refused || op->kind == STORE_OP_CLOSE) return;
    if (op->kind == STORE_OP_INSERT && op->ndocs == 0) return; /* insert_many rejects none */

    mongoc_client_t *client = mongoc_client_pool_pop(op->s->pool);
    if (!client) {
        store_op_fail(op, "MongoDB: no client available");
        return;
    }
    switch (op->kind) {
    case STORE_OP_INSERT: store_insert_work(op, client); break;
    case STORE_OP_FIND: store_find_work(op, client); break;
    case STORE_OP_PING: store_ping_work(op, client); break;
    case STORE_OP_CLOSE: break;
    }
    mongoc_client_pool_push(op->s->pool, client);
}

/* ---- submission and completion, on the loop thread ----------------------- */

static void store_after_work(uv_work_t *req, int status) {
    store_op_t *op = req->data;
    store_t *s = op->s;

    if (status != 0 && op->status == STORE_OK) {
        op->status = STORE_UNAVAILABLE;
        snprintf(op->err, sizeof(op->err), "store: %s", uv_strerror(status));
    }
    const char *err = op->status == STORE_OK ? NULL : op->err;
    switch (op->kind) {
    case STORE_OP_INSERT:
        if (op->duplicates > 0) {
            char count[24];
            snprintf(count, sizeof(count), "%zu", op->duplicates);
            log_debug("duplicate documents skipped", "count", count);
        }
        op->cb.insert(op->arg, op->status, err, op->status == STORE_REJECTED ? op->rejected : NULL);
        break;
    case STORE_OP_FIND:
        op->cb.find(op->arg, op->status, err, op->found, op->data, op->data_len);
        break;
    case STORE_OP_PING: op->cb.ping(op->arg, op->status, err); break;
    case STORE_OP_CLOSE: break;
    }
    bson_free(op->data);
    free(op->rejected);
    free(op);

    /* Counted down after the callback, which may itself queue an operation. */
    s->outstanding--;
    if (s->closing && s->outstanding == 0 && s->close_cb) {
        store_close_cb cb = s->close_cb;
        s->close_cb = NULL;
        cb(s->close_arg); /* may store_free(s): nothing touches s after it */
    }
}

/* Every operation, even a refused one, completes through the thread pool so
 * its callback never runs inside the call that requested it. Allocation
 * aborts when out of memory (util/mem.h, as libbson and mongoc do): there is
 * no failure to report, and so no callback from inside the request. */
static store_op_t *store_op_new(store_t *s, store_op_kind_t kind, void *arg) {
    store_op_t *op = mem_calloc(1, sizeof(*op));
    op->s = s;
    op->kind = kind;
    op->arg = arg;
    op->req.data = op;
    if (s->closing && kind != STORE_OP_CLOSE) {
        op->refused = true;
        store_op_fail(op, "store is closing");
    }
    return op;
}

static void store_op_submit(store_op_t *op) {
    op->s->outstanding++;
    /* uv_queue_work only fails for a NULL work callback. */
    int rc = uv_queue_work(op->s->loop, &op->req, store_work, store_after_work);
    (void)rc;
}

void store_insert(store_t *s, const store_doc_t *docs, size_t n, store_insert_cb cb, void *arg) {
    store_op_t *op = store_op_new(s, STORE_OP_INSERT, arg);
    op->docs = docs;
    op->ndocs = n;
    op->cb.insert = cb;
    store_op_submit(op);
}

void store_find_oldest(store_t *s, store_find_cb cb, void *arg) {
    store_op_t *op = store_op_new(s, STORE_OP_FIND, arg);
    op->cb.find = cb;
    store_op_submit(op);
}

void store_ping(store_t *s, store_ping_cb cb, void *arg) {
    store_op_t *op = store_op_new(s, STORE_OP_PING, arg);
    op->cb.ping = cb;
    store_op_submit(op);
}

/* Closing queues a no-op that counts as outstanding: whichever after-work
 * brings the count to zero (this one's, when nothing else is in flight) calls
 * `cb` from the loop, with no handle of its own to initialise and close. */
void store_close(store_t *s, store_close_cb cb, void *arg) {
    s->closing = true;
    s->close_cb = cb;
    s->close_arg = arg;
    store_op_submit(store_op_new(s, STORE_OP_CLOSE, NULL));
}
