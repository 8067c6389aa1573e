/* form: extracts one field from an HTML form body.
 *
 * Both encodings browsers and curl send are understood:
 *   application/x-www-form-urlencoded  `+` is a space, `%XX` a byte; a bad escape
 *                                       is an error, not passed through.
 *   multipart/form-data                 parts separated by the boundary of the
 *                                       Content-Type; file parts (with a filename)
 *                                       are not form fields, as in the original.
 * The first occurrence of the field wins, as with Flask's request.form[name]. */
#ifndef MULTIVAC_FORM_H
#define MULTIVAC_FORM_H

#include <stddef.h>

#include "util/strbuf.h"

typedef enum {
    FORM_OK = 0,
    FORM_MISSING = -1,     /* well-formed, but no such field */
    FORM_MALFORMED = -2,   /* body does not parse as its content type says */
    FORM_UNSUPPORTED = -3, /* content type is neither form encoding */
} form_status_t;

/* A static, human-readable description of `status`; form_get_field's `why`
 * names the precise fault where there are several. */
const char *form_strerror(form_status_t status);

/* Appends the decoded value of field `name` to `out`. `content_type` is the raw
 * Content-Type header value (may be NULL when absent). On failure `out` keeps
 * its previous length, and `*why` (if not NULL) points to a static, human-readable
 * reason suitable for an error response. */
form_status_t form_get_field(const char *content_type, size_t content_type_len, const char *body,
                             size_t body_len, const char *name, strbuf_t *out, const char **why);

/* Percent-decodes application/x-www-form-urlencoded text into `out`.
 * Returns FORM_OK or FORM_MALFORMED on a bad escape. */
form_status_t form_urldecode(const char *in, size_t len, strbuf_t *out);

#endif
