#include "api/route.h"

#include <stdlib.h>
#include <string.h>

#include "check.h"

/* The route id, or -1 when the target is malformed. */
static int id_of(const char *target) {
    route_match_t m;
    if (route_match(target, strlen(target), &m) != 0) return -1;
    return (int)m.id;
}

/* Checks route_normalise's result against `want` (NULL: malformed). */
static void check_norm(const char *target, const char *want, int line) {
    char out[256];
    int n = route_normalise(target, strlen(target), out, sizeof(out));
    if (want == NULL) {
        if (n != -1) fprintf(stderr, "line %d: \"%s\" normalised to \"%s\"\n", line, target, out);
        CHECK_INT(n, -1);
        return;
    }
    if (n < 0 || strcmp(out, want) != 0)
        fprintf(stderr, "line %d: \"%s\" -> %d \"%s\", expected \"%s\"\n", line, target, n,
                n < 0 ? "" : out, want);
    CHECK_INT(n, (long long)strlen(want));
    CHECK(n >= 0 && strcmp(out, want) == 0);
}
#define NORM(t, w) check_norm(t, w, __LINE__)

static void test_normalise(void) {
    NORM("/", "/");
    NORM("/zzz", "/zzz");
    NORM("/zzz/", "/zzz");
    NORM("//zzz", "/zzz");
    NORM("/zzz//", "/zzz");
    NORM("/./zzz", "/zzz");
    NORM("/zzz/.", "/zzz");
    NORM("/a/../zzz", "/zzz");
    NORM("/a/b/../../zzz", "/zzz");
    NORM("/a/b/..", "/a");
    NORM("/a/..", "/");
    NORM("/a/../", "/");
    NORM("/%7azz", "/zzz");
    NORM("/%7Azz", "/zzz");
    NORM("/%2e/zzz", "/zzz");
    NORM("/a/%2E%2e/zzz", "/zzz");
    NORM("/%41-%5f%7e%2D", "/A-_~-");
    NORM("/.../zzz", "/.../zzz");
    NORM("/..a/zzz", "/..a/zzz");
    NORM("/a./b", "/a./b");
    NORM("///", "/");
    /* Reserved and non-ASCII escapes stay as they are. */
    NORM("/a%2Fb", "/a%2Fb");
    NORM("/a%2fb", "/a%2fb");
    NORM("/%20x", "/%20x");
    NORM("/%e2%82%ac", "/%e2%82%ac");
    NORM("/multivac?wait=1", "/multivac");
    NORM("/multivac/data/?x", "/multivac/data");
    NORM("/?", "/");
    NORM("/a?b/../c", "/a");
    /* Absolute form. */
    NORM("http://h:1/multivac?wait=1", "/multivac");
    NORM("HTTPS://example.com", "/");
    NORM("http://example.com?x=1", "/");
    NORM("http://user@h//zzz/", "/zzz");

    NORM("/..", NULL);
    NORM("/../x", NULL);
    NORM("/a/../../x", NULL);
    NORM("/%2e%2e/x", NULL);
    NORM("/%zz", NULL);
    NORM("/%", NULL);
    NORM("/%4", NULL);
    NORM("/a%4?x", NULL);
    NORM("", NULL);
    NORM("zzz", NULL);
    NORM("*", NULL);
    NORM("?x", NULL);
    NORM("h:80", NULL);
    NORM("1http://h/", NULL);

    /* The query is not validated as part of the path. */
    NORM("/zzz?%zz", "/zzz");

    /* Capacity: the result and its NUL must fit. */
    char small[5];
    CHECK_INT(route_normalise("/zzz", 4, small, sizeof(small)), 4);
    CHECK(strcmp(small, "/zzz") == 0);
    CHECK_INT(route_normalise("/zzzz", 5, small, sizeof(small)), -1);
    CHECK_INT(route_normalise("/./zzz", 6, small, sizeof(small)), 4);
    /* Segments are resolved in place, so an unresolved prefix must fit too. */
    CHECK_INT(route_normalise("/ab/../zzz", 10, small, sizeof(small)), -1);
    char one[1];
    CHECK_INT(route_normalise("/", 1, one, sizeof(one)), -1);

    /* Length-delimited input: bytes after `len` are not read. */
    char out[32];
    CHECK_INT(route_normalise("/zzz/extra", 4, out, sizeof(out)), 4);
    CHECK(strcmp(out, "/zzz") == 0);
}

static void test_match(void) {
    CHECK_INT(id_of("/"), ROUTE_ROOT);
    CHECK_INT(id_of("/multivac"), ROUTE_MULTIVAC);
    CHECK_INT(id_of("/multivac/data"), ROUTE_MULTIVAC_DATA);
    CHECK_INT(id_of("/multivac/data/"), ROUTE_MULTIVAC_DATA);
    CHECK_INT(id_of("/zzz"), ROUTE_ZZZ);
    CHECK_INT(id_of("/zzz/"), ROUTE_ZZZ);
    CHECK_INT(id_of("//zzz"), ROUTE_ZZZ);
    CHECK_INT(id_of("/./zzz"), ROUTE_ZZZ);
    CHECK_INT(id_of("/a/../zzz"), ROUTE_ZZZ);
    CHECK_INT(id_of("/%7azz"), ROUTE_ZZZ);
    CHECK_INT(id_of("/healthz"), ROUTE_HEALTHZ);
    CHECK_INT(id_of("/readyz"), ROUTE_READYZ);
    CHECK_INT(id_of("/metrics"), ROUTE_METRICS);
    CHECK_INT(id_of("http://h:1/multivac?wait=1"), ROUTE_MULTIVAC);

    CHECK_INT(id_of("/ZZZ"), ROUTE_NOT_FOUND);
    CHECK_INT(id_of("/zz"), ROUTE_NOT_FOUND);
    CHECK_INT(id_of("/zzzz"), ROUTE_NOT_FOUND);
    CHECK_INT(id_of("/multivac/dat"), ROUTE_NOT_FOUND);
    CHECK_INT(id_of("/multivac/data/x"), ROUTE_NOT_FOUND);
    CHECK_INT(id_of("/multivac%2Fdata"), ROUTE_NOT_FOUND);
    CHECK_INT(id_of("/healthy"), ROUTE_NOT_FOUND);
    CHECK_INT(id_of("/metricz"), ROUTE_NOT_FOUND);
    CHECK_INT(id_of("/readyy"), ROUTE_NOT_FOUND);
    CHECK_INT(id_of("/multivaC"), ROUTE_NOT_FOUND);

    CHECK_INT(id_of("/../x"), -1);
    CHECK_INT(id_of("/%zz"), -1);
    CHECK_INT(id_of("zzz"), -1);

    route_match_t m;
    CHECK_INT(route_match("/multivac?wait=1&x=2", 20, &m), 0);
    CHECK_INT(m.id, ROUTE_MULTIVAC);
    CHECK_MEM(m.query, m.query_len, "wait=1&x=2");

    CHECK_INT(route_match("/zzz", 4, &m), 0);
    CHECK(m.query == NULL);
    CHECK_INT(m.query_len, 0);

    /* An empty query is present, not absent. */
    CHECK_INT(route_match("/zzz?", 5, &m), 0);
    CHECK(m.query != NULL);
    CHECK_INT(m.query_len, 0);

    /* Unknown paths still report their query. */
    CHECK_INT(route_match("/nope?a=b", 9, &m), 0);
    CHECK_INT(m.id, ROUTE_NOT_FOUND);
    CHECK_MEM(m.query, m.query_len, "a=b");

    /* Malformed: -1 and a cleared match. */
    m.id = ROUTE_ZZZ;
    CHECK_INT(route_match("/%g?x", 5, &m), -1);
    CHECK_INT(m.id, ROUTE_NOT_FOUND);

    /* A path longer than ROUTE_PATH_MAX is not found rather than an error. */
    size_t n = ROUTE_PATH_MAX + 10;
    char *big = malloc(n + 1);
    big[0] = '/';
    memset(big + 1, 'a', n - 1);
    big[n] = '\0';
    CHECK_INT(route_match(big, n, &m), 0);
    CHECK_INT(m.id, ROUTE_NOT_FOUND);
    memcpy(big + n - 4, "?q=1", 4);
    CHECK_INT(route_match(big, n, &m), 0);
    CHECK_INT(m.id, ROUTE_NOT_FOUND);
    CHECK_MEM(m.query, m.query_len, "q=1");
    /* The limit is on the normalised path: dropped "/." segments do not count. */
    size_t k = 0;
    while (k + 2 + 4 < n) {
        memcpy(big + k, "/.", 2);
        k += 2;
    }
    memcpy(big + k, "/zzz", 4);
    k += 4;
    CHECK(k > ROUTE_PATH_MAX);
    CHECK_INT(route_match(big, k, &m), 0);
    CHECK_INT(m.id, ROUTE_ZZZ);
    /* A path of exactly ROUTE_PATH_MAX - 1 bytes still fits the buffer. */
    memset(big, 'a', ROUTE_PATH_MAX - 1);
    big[0] = '/';
    char norm[ROUTE_PATH_MAX];
    CHECK_INT(route_normalise(big, ROUTE_PATH_MAX - 1, norm, sizeof(norm)), ROUTE_PATH_MAX - 1);
    CHECK_INT(route_normalise(big, ROUTE_PATH_MAX, norm, sizeof(norm)), -1);
    free(big);
}

static void test_allowed(void) {
    CHECK_INT(route_allowed(ROUTE_ROOT), ROUTE_ALLOW_GET);
    CHECK_INT(route_allowed(ROUTE_MULTIVAC), ROUTE_ALLOW_GET);
    CHECK_INT(route_allowed(ROUTE_MULTIVAC_DATA), ROUTE_ALLOW_POST);
    CHECK_INT(route_allowed(ROUTE_ZZZ), ROUTE_ALLOW_GET);
    CHECK_INT(route_allowed(ROUTE_HEALTHZ), ROUTE_ALLOW_GET);
    CHECK_INT(route_allowed(ROUTE_READYZ), ROUTE_ALLOW_GET);
    CHECK_INT(route_allowed(ROUTE_METRICS), ROUTE_ALLOW_GET);
    CHECK_INT(route_allowed(ROUTE_NOT_FOUND), 0);
    CHECK_INT(route_allowed(ROUTE_COUNT), 0);

    CHECK(strcmp(route_allow_header(ROUTE_ZZZ), "GET, HEAD") == 0);
    CHECK(strcmp(route_allow_header(ROUTE_METRICS), "GET, HEAD") == 0);
    CHECK(strcmp(route_allow_header(ROUTE_MULTIVAC_DATA), "POST") == 0);
    CHECK(route_allow_header(ROUTE_NOT_FOUND) == NULL);
}

static void test_query_param(void) {
    const char *q = "wait=1&x=&flag&name=a%20b&wait=2&w=3";
    size_t qlen = strlen(q), len = 99;
    const char *v;

    v = route_query_param(q, qlen, "wait", &len);
    CHECK_MEM(v, len, "1");
    v = route_query_param(q, qlen, "x", &len);
    CHECK(v != NULL);
    CHECK_INT(len, 0);
    v = route_query_param(q, qlen, "flag", &len);
    CHECK(v != NULL);
    CHECK_INT(len, 0);
    v = route_query_param(q, qlen, "name", &len);
    CHECK_MEM(v, len, "a%20b");
    v = route_query_param(q, qlen, "w", &len);
    CHECK_MEM(v, len, "3");
    CHECK(route_query_param(q, qlen, "wai", &len) == NULL);
    CHECK(route_query_param(q, qlen, "waitx", &len) == NULL);
    CHECK(route_query_param(q, qlen, "", &len) == NULL);
    CHECK(route_query_param(NULL, 0, "wait", &len) == NULL);
    CHECK(route_query_param("", 0, "wait", &len) == NULL);
    /* Only the first `query_len` bytes count. */
    CHECK(route_query_param("a=1&wait=2", 3, "wait", &len) == NULL);
    v = route_query_param("wait=12", 6, "wait", &len);
    CHECK_MEM(v, len, "1");

    route_match_t m;
    CHECK_INT(route_match("/multivac?wait=5", 16, &m), 0);
    v = route_query_param(m.query, m.query_len, "wait", &len);
    CHECK_MEM(v, len, "5");
}

int main(void) {
    test_normalise();
    test_match();
    test_allowed();
    test_query_param();
    return CHECK_SUMMARY();
}
