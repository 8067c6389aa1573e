/* redis_uv: drives a hiredis asynchronous context from a libuv loop.
 *
 * hiredis 0.14 ships an adapter for this, but it drops the error status libuv
 * gives a poll handle: a reset connection or a refused connect then goes
 * unnoticed until some timeout. This one hands such errors to hiredis, which
 * finds the failure on its next read or write and disconnects properly. */
#ifndef MULTIVAC_REDIS_UV_H
#define MULTIVAC_REDIS_UV_H

#include <stdint.h>

#include <hiredis/async.h>
#include <uv.h>

/* Returns REDIS_OK, or REDIS_ERR if the context is already attached or its
 * socket cannot be watched. The adapter frees itself when hiredis frees the context. */
int redis_uv_attach(redisAsyncContext *ac, uv_loop_t *loop);

/* A count that grows whenever bytes move: a reply arrives, or a write that had
 * filled the socket finds room again. A slow transfer of large commands keeps
 * it growing; a hung peer does not. */
uint64_t redis_uv_progress(const redisAsyncContext *ac);

#endif
