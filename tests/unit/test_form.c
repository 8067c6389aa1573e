/* Unit tests of api/form: field extraction from urlencoded and multipart
 * bodies, failures that leave the output buffer as it was, and the static
 * reasons (form_strerror) that double as 400 bodies. */
#include "api/form.h"

#include <stdlib.h>
#include <string.h>

#include "check.h"

#define URLENC "application/x-www-form-urlencoded"

/* Runs form_get_field on NUL-free literals; `out` starts with "pre" so the
 * tests also see that failures leave earlier content alone. */
static form_status_t get(const char *ct, const char *body, size_t body_len, const char *name,
                         strbuf_t *out, const char **why) {
    strbuf_reset(out);
    strbuf_append_str(out, "pre");
    *why = NULL;
    return form_get_field(ct, ct ? strlen(ct) : 0, body, body_len, name, out, why);
}

static form_status_t get_s(const char *ct, const char *body, const char *name, strbuf_t *out,
                           const char **why) {
    return get(ct, body, strlen(body), name, out, why);
}

static void test_urldecode(void) {
    strbuf_t sb = STRBUF_INIT;
    CHECK_INT(form_urldecode("a+b%20c", 7, &sb), FORM_OK);
    CHECK_MEM(sb.data, sb.len, "a b c");

    strbuf_reset(&sb);
    CHECK_INT(form_urldecode("%4a%4A%e2%82%AC", 15, &sb), FORM_OK);
    CHECK_MEM(sb.data, sb.len, "JJ\xe2\x82\xac");

    strbuf_reset(&sb);
    CHECK_INT(form_urldecode("%00x", 4, &sb), FORM_OK);
    CHECK_INT(sb.len, 2);
    CHECK(sb.data[0] == '\0' && sb.data[1] == 'x');

    strbuf_reset(&sb);
    CHECK_INT(form_urldecode("", 0, &sb), FORM_OK);
    CHECK_INT(sb.len, 0);

    /* A literal '%2B' is a plus, unlike '+'. */
    strbuf_reset(&sb);
    CHECK_INT(form_urldecode("1%2B1+2", 7, &sb), FORM_OK);
    CHECK_MEM(sb.data, sb.len, "1+1 2");

    const char *bad[] = {"%", "%4", "%zz", "ab%g0", "ab%0g", "x%", "%%41"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        strbuf_reset(&sb);
        strbuf_append_str(&sb, "keep");
        CHECK_INT(form_urldecode(bad[i], strlen(bad[i]), &sb), FORM_MALFORMED);
        CHECK_MEM(sb.data, sb.len, "keep");
    }
    strbuf_free(&sb);
}

static void test_urlencoded(void) {
    strbuf_t out = STRBUF_INIT;
    const char *why;

    CHECK_INT(get_s(URLENC, "data=hello+world", "data", &out, &why), FORM_OK);
    CHECK_MEM(out.data, out.len, "prehello world");
    CHECK(why == NULL);

    CHECK_INT(get_s(URLENC, "a=1&data=%41%62c%2f%2F&b=2", "data", &out, &why), FORM_OK);
    CHECK_MEM(out.data, out.len, "preAbc//");

    /* First occurrence wins. */
    CHECK_INT(get_s(URLENC, "data=first&data=second", "data", &out, &why), FORM_OK);
    CHECK_MEM(out.data, out.len, "prefirst");

    /* Keys are decoded before comparing. */
    CHECK_INT(get_s(URLENC, "d%61ta=enc&data=plain", "data", &out, &why), FORM_OK);
    CHECK_MEM(out.data, out.len, "preenc");
    CHECK_INT(get_s(URLENC, "my+key=v", "my key", &out, &why), FORM_OK);
    CHECK_MEM(out.data, out.len, "prev");

    /* A prefix or extension of the name is another field. */
    CHECK_INT(get_s(URLENC, "dat=1&datax=2&data=3", "data", &out, &why), FORM_OK);
    CHECK_MEM(out.data, out.len, "pre3");

    /* Empty values, and keys without '='. */
    CHECK_INT(get_s(URLENC, "data=&x=1", "data", &out, &why), FORM_OK);
    CHECK_MEM(out.data, out.len, "pre");
    CHECK_INT(get_s(URLENC, "x=1&data", "data", &out, &why), FORM_OK);
    CHECK_MEM(out.data, out.len, "pre");
    CHECK_INT(get_s(URLENC, "&&data=v&&", "data", &out, &why), FORM_OK);
    CHECK_MEM(out.data, out.len, "prev");

    /* '=' inside a value belongs to the value. */
    CHECK_INT(get_s(URLENC, "data=a=b", "data", &out, &why), FORM_OK);
    CHECK_MEM(out.data, out.len, "prea=b");

    /* Parameters and case of the media type do not matter. */
    CHECK_INT(
        get_s("Application/X-WWW-Form-Urlencoded; charset=utf-8", "data=x", "data", &out, &why),
        FORM_OK);
    CHECK_MEM(out.data, out.len, "prex");
    CHECK_INT(
        get_s("  application/x-www-form-urlencoded;charset=UTF-8", "data=y", "data", &out, &why),
        FORM_OK);
    CHECK_MEM(out.data, out.len, "prey");

    /* Missing field. */
    CHECK_INT(get_s(URLENC, "a=1&b=2", "data", &out, &why), FORM_MISSING);
    CHECK_MEM(out.data, out.len, "pre");
    CHECK(why && strcmp(why, "missing form field 'data'") == 0);
    CHECK_INT(get_s(URLENC, "", "data", &out, &why), FORM_MISSING);
    CHECK_INT(get_s(URLENC, "a=1", "other", &out, &why), FORM_MISSING);
    CHECK(why && strcmp(why, "missing form field") == 0);
    CHECK_INT(get_s(URLENC, "data=1", "dat", &out, &why), FORM_MISSING);

    /* Bad escapes, in the field or elsewhere in the body. */
    const char *bad[] = {"data=%", "data=%4", "data=%zz", "data=ok&x=%g1", "d%6=1", "data=1%"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        CHECK_INT(get_s(URLENC, bad[i], "data", &out, &why), FORM_MALFORMED);
        CHECK_MEM(out.data, out.len, "pre");
        CHECK(why && strcmp(why, "malformed percent-escape in form body") == 0);
    }

    /* Binary value with an encoded NUL. */
    CHECK_INT(get_s(URLENC, "data=a%00b", "data", &out, &why), FORM_OK);
    CHECK_INT(out.len, 6);
    CHECK(memcmp(out.data, "prea\0b", 6) == 0);

    /* Body is length-delimited, not NUL-terminated. */
    CHECK_INT(get(URLENC, "data=abcdef", 8, "data", &out, &why), FORM_OK);
    CHECK_MEM(out.data, out.len, "preabc");

    strbuf_free(&out);
}

static void test_unsupported(void) {
    strbuf_t out = STRBUF_INIT;
    const char *why;
    const char *types[] = {"text/plain",
                           "application/json",
                           "",
                           "   ",
                           "application/x-www-form-urlencodedx",
                           "multipart/mixed; boundary=x"};
    for (size_t i = 0; i < sizeof(types) / sizeof(types[0]); i++) {
        CHECK_INT(get_s(types[i], "data=1", "data", &out, &why), FORM_UNSUPPORTED);
        CHECK_MEM(out.data, out.len, "pre");
        CHECK(why && strstr(why, "Content-Type must be") == why);
    }
    CHECK_INT(get_s(NULL, "data=1", "data", &out, &why), FORM_UNSUPPORTED);

    /* NULL why is allowed. */
    strbuf_reset(&out);
    CHECK_INT(form_get_field("text/plain", 10, "", 0, "data", &out, NULL), FORM_UNSUPPORTED);
    CHECK_INT(form_get_field(URLENC, strlen(URLENC), "x", 1, "data", &out, NULL), FORM_MISSING);
    strbuf_free(&out);
}

static void test_multipart(void) {
    strbuf_t out = STRBUF_INIT;
    const char *why;

    /* What curl -F sends. */
    const char *curl = "--------------------------d74496d66958873e\r\n"
                       "Content-Disposition: form-data; name=\"data\"\r\n"
                       "\r\n"
                       "hello world\r\n"
                       "--------------------------d74496d66958873e--\r\n";
    CHECK_INT(get_s("multipart/form-data; boundary=------------------------d74496d66958873e", curl,
                    "data", &out, &why),
              FORM_OK);
    CHECK_MEM(out.data, out.len, "prehello world");

    /* Quoted boundary, other parameters, upper-case names, several parts. */
    const char *multi = "preamble text\r\n"
                        "--b:1\r\n"
                        "Content-Disposition: form-data; name=\"other\"\r\n"
                        "\r\n"
                        "not this\r\n"
                        "--b:1\r\n"
                        "CONTENT-TYPE: text/plain\r\n"
                        "content-disposition: Form-Data; name=\"data\"\r\n"
                        "\r\n"
                        "line1\r\nline2\r\n"
                        "--b:1\r\n"
                        "Content-Disposition: form-data; name=\"data\"\r\n"
                        "\r\n"
                        "second\r\n"
                        "--b:1--\r\n"
                        "epilogue";
    CHECK_INT(
        get_s("Multipart/Form-Data; charset=utf-8; BOUNDARY=\"b:1\"", multi, "data", &out, &why),
        FORM_OK);
    CHECK_MEM(out.data, out.len, "preline1\r\nline2");
    CHECK_INT(get_s("multipart/form-data;boundary=\"b:1\"", multi, "other", &out, &why), FORM_OK);
    CHECK_MEM(out.data, out.len, "prenot this");
    CHECK_INT(get_s("multipart/form-data;boundary=\"b:1\"", multi, "nope", &out, &why),
              FORM_MISSING);
    CHECK_MEM(out.data, out.len, "pre");

    /* A file part named "data" is not the form field; the next one is. */
    const char *file = "--XyZ\r\n"
                       "Content-Disposition: form-data; name=\"data\"; filename=\"a.txt\"\r\n"
                       "Content-Type: text/plain\r\n"
                       "\r\n"
                       "file body\r\n"
                       "--XyZ\r\n"
                       "Content-Disposition: form-data; name=data\r\n"
                       "\r\n"
                       "field\r\n"
                       "--XyZ--";
    CHECK_INT(get_s("multipart/form-data; boundary=XyZ", file, "data", &out, &why), FORM_OK);
    CHECK_MEM(out.data, out.len, "prefield");
    const char *only_file = "--XyZ\r\n"
                            "Content-Disposition: form-data; filename=\"a\"; name=\"data\"\r\n"
                            "\r\n"
                            "file body\r\n"
                            "--XyZ--\r\n";
    CHECK_INT(get_s("multipart/form-data; boundary=XyZ", only_file, "data", &out, &why),
              FORM_MISSING);

    /* Binary content with NUL, CR, LF and a near-miss of the delimiter. */
    const char bin[] = "--bb\r\n"
                       "Content-Disposition: form-data; name=\"data\"\r\n"
                       "\r\n"
                       "\x00\x01\r\n--b\r\n\xff"
                       "\r\n--bb--\r\n";
    CHECK_INT(get("multipart/form-data; boundary=bb", bin, sizeof(bin) - 1, "data", &out, &why),
              FORM_OK);
    CHECK_INT(out.len, 3 + 10);
    CHECK(memcmp(out.data + 3, "\x00\x01\r\n--b\r\n\xff", 10) == 0);

    /* Empty value; a part without headers; transport padding after a delimiter. */
    const char *empty = "--q  \r\n"
                        "\r\n"
                        "no headers\r\n"
                        "--q\t\r\n"
                        "Content-Disposition: form-data; name=\"data\"\r\n"
                        "\r\n"
                        "\r\n"
                        "--q--";
    CHECK_INT(get_s("multipart/form-data; boundary=q", empty, "data", &out, &why), FORM_OK);
    CHECK_MEM(out.data, out.len, "pre");

    /* Escaped quote in a quoted name. */
    const char *esc = "--q\r\n"
                      "Content-Disposition: form-data; name=\"a\\\"b\"\r\n"
                      "\r\n"
                      "v\r\n"
                      "--q--";
    CHECK_INT(get_s("multipart/form-data; boundary=q", esc, "a\"b", &out, &why), FORM_OK);
    CHECK_MEM(out.data, out.len, "prev");

    /* Not form-data disposition. */
    const char *attach = "--q\r\n"
                         "Content-Disposition: attachment; name=\"data\"\r\n"
                         "\r\n"
                         "v\r\n"
                         "--q--";
    CHECK_INT(get_s("multipart/form-data; boundary=q", attach, "data", &out, &why), FORM_MISSING);

    /* 70-character boundary is the longest allowed. */
    char b70[71], ct[128], body[512];
    memset(b70, 'k', 70);
    b70[70] = '\0';
    snprintf(ct, sizeof(ct), "multipart/form-data; boundary=%s", b70);
    snprintf(body, sizeof(body),
             "--%s\r\nContent-Disposition: form-data; name=\"data\"\r\n\r\nlong\r\n--%s--", b70,
             b70);
    CHECK_INT(get_s(ct, body, "data", &out, &why), FORM_OK);
    CHECK_MEM(out.data, out.len, "prelong");
    snprintf(ct, sizeof(ct), "multipart/form-data; boundary=%sk", b70);
    CHECK_INT(get_s(ct, body, "data", &out, &why), FORM_MALFORMED);

    strbuf_free(&out);
}

static void test_multipart_malformed(void) {
    strbuf_t out = STRBUF_INIT;
    const char *why;
    const char *part = "--q\r\n"
                       "Content-Disposition: form-data; name=\"data\"\r\n"
                       "\r\n"
                       "value";

    /* No closing delimiter: the field is found but the body is cut short. */
    CHECK_INT(get_s("multipart/form-data; boundary=q", part, "data", &out, &why), FORM_MALFORMED);
    CHECK_MEM(out.data, out.len, "pre");
    CHECK(why && strcmp(why, "multipart body has no closing boundary") == 0);

    const char *unclosed = "--q\r\n"
                           "Content-Disposition: form-data; name=\"data\"\r\n"
                           "\r\n"
                           "value\r\n"
                           "--q\r\n";
    CHECK_INT(get_s("multipart/form-data; boundary=q", unclosed, "data", &out, &why),
              FORM_MALFORMED);
    CHECK_MEM(out.data, out.len, "pre");

    /* A malformed later part fails the whole body, with the field already copied. */
    const char *later = "--q\r\n"
                        "Content-Disposition: form-data; name=\"data\"\r\n"
                        "\r\n"
                        "value\r\n"
                        "--q\r\n"
                        "Content-Disposition: form-data; name=\"x\"\r\n"
                        "no blank line\r\n"
                        "--q--\r\n";
    CHECK_INT(get_s("multipart/form-data; boundary=q", later, "data", &out, &why), FORM_MALFORMED);
    CHECK_MEM(out.data, out.len, "pre");
    CHECK(why && strcmp(why, "multipart part has no blank line after its headers") == 0);

    /* Missing or empty boundary parameter. */
    const char *no_boundary[] = {
        "multipart/form-data", "multipart/form-data; charset=utf-8",
        "multipart/form-data; boundary=", "multipart/form-data; boundary=\"\"",
        "multipart/form-data; boundary=\"unterminated"};
    for (size_t i = 0; i < sizeof(no_boundary) / sizeof(no_boundary[0]); i++) {
        CHECK_INT(get_s(no_boundary[i], part, "data", &out, &why), FORM_MALFORMED);
        CHECK_MEM(out.data, out.len, "pre");
        CHECK(why && strstr(why, "boundary") != NULL);
    }

    /* No delimiter at all, LF-only line endings, junk after a delimiter. */
    CHECK_INT(get_s("multipart/form-data; boundary=q", "data=1", "data", &out, &why),
              FORM_MALFORMED);
    CHECK_INT(get_s("multipart/form-data; boundary=q", "", "data", &out, &why), FORM_MALFORMED);
    const char *lf = "--q\n"
                     "Content-Disposition: form-data; name=\"data\"\n"
                     "\n"
                     "v\n"
                     "--q--\n";
    CHECK_INT(get_s("multipart/form-data; boundary=q", lf, "data", &out, &why), FORM_MALFORMED);
    const char *junk = "--qjunk\r\n"
                       "Content-Disposition: form-data; name=\"data\"\r\n"
                       "\r\n"
                       "v\r\n"
                       "--q--";
    CHECK_INT(get_s("multipart/form-data; boundary=q", junk, "data", &out, &why), FORM_MALFORMED);
    CHECK(why && strcmp(why, "malformed boundary line in multipart body") == 0);

    /* Headers that never end. */
    const char *noend = "--q\r\nContent-Disposition: form-data; name=\"data\"\r\n";
    CHECK_INT(get_s("multipart/form-data; boundary=q", noend, "data", &out, &why), FORM_MALFORMED);
    CHECK_MEM(out.data, out.len, "pre");

    strbuf_free(&out);
}

/* The static reasons double as 400 bodies: they must stay exact, and no two
 * statuses may read the same. */
static void test_strerror(void) {
    CHECK(strcmp(form_strerror(FORM_UNSUPPORTED), "Content-Type must be "
                                                  "application/x-www-form-urlencoded or "
                                                  "multipart/form-data") == 0);
    CHECK(strcmp(form_strerror(FORM_MISSING), "missing form field") == 0);
    form_status_t all[] = {FORM_OK, FORM_MISSING, FORM_MALFORMED, FORM_UNSUPPORTED};
    int distinct = 0;
    for (int i = 0; i < 4; i++)
        for (int k = i + 1; k < 4; k++)
            distinct += strcmp(form_strerror(all[i]), form_strerror(all[k])) != 0;
    CHECK_INT(distinct, 6);
    CHECK(strcmp(form_strerror((form_status_t)7), "unknown form status") == 0);

    /* form_get_field gives the same words, with the field named when it is "data". */
    strbuf_t out = STRBUF_INIT;
    const char *why;
    CHECK_INT(get_s("text/plain", "data=1", "data", &out, &why), FORM_UNSUPPORTED);
    CHECK(why && strcmp(why, form_strerror(FORM_UNSUPPORTED)) == 0);
    CHECK_INT(get_s(URLENC, "other=1", "other2", &out, &why), FORM_MISSING);
    CHECK(why && strcmp(why, "missing form field") == 0);
    CHECK_INT(get_s(URLENC, "other=1", "data", &out, &why), FORM_MISSING);
    CHECK(why && strcmp(why, "missing form field 'data'") == 0);
    strbuf_free(&out);
}

int main(void) {
    test_strerror();
    test_urldecode();
    test_urlencoded();
    test_unsupported();
    test_multipart();
    test_multipart_malformed();
    return CHECK_SUMMARY();
}
