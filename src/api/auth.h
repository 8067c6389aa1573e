/* auth: who may write. Tokens come from a file, one per line (blank lines and
 * lines starting with '#' are skipped), so a Kubernetes Secret can be mounted
 * as it is; the file is re-read when it changes (a rotated Secret), and a
 * re-read that fails keeps the tokens in force.
 *
 * A request is allowed with `Authorization: Bearer <token>`, or with HTTP Basic
 * credentials whose password is a token (any user name), the way the
 * original's nginx set-ups protected POST. Tokens are compared in time that
 * does not depend on their content. */
#ifndef MULTIVAC_AUTH_H
#define MULTIVAC_AUTH_H

#include <stdbool.h>
#include <stddef.h>
#include <uv.h>

typedef struct auth auth_t;

/* Reads the tokens. Returns NULL with `err` set when the file cannot be read or
 * holds no token. */
auth_t *auth_new(uv_loop_t *loop, const char *path, char *err, size_t err_len);
/* Watches the file for changes. */
void auth_start(auth_t *a);
/* The value of an Authorization header (NULL when absent). */
bool auth_allows(const auth_t *a, const char *authorization, size_t len);
/* The token of ours that `authorization` carries, if any: the writer's stable
 * identity (Idempotency-Keys are scoped by it). `token` stays valid until the
 * loop runs again, since a re-read replaces the tokens. */
bool auth_token(const auth_t *a, const char *authorization, size_t len, const char **token,
                size_t *token_len);
/* The WWW-Authenticate header line(s) of a 401. */
const char *auth_challenge(void);
/* Stops watching; `cb` once the watcher is closed. */
void auth_close(auth_t *a, void (*cb)(void *arg), void *arg);
void auth_free(auth_t *a);

#endif
