// libhiredis (Debian libhiredis-dev 0.14) as a Swift module, with its libevent adapter.
// hiredis's printf-style calls (redisCommand, redisAppendCommand, redisAsyncCommand) are variadic
// and cannot be called from Swift; the wrappers below take argv/argvlen arrays instead. The libevent
// adapter's functions are `static` in its header, so they are re-exported here as inline functions.
#ifndef CHIREDIS_SHIM_H
#define CHIREDIS_SHIM_H

#include <time.h>
#include <hiredis/hiredis.h>
#include <hiredis/async.h>
#include <event2/event.h>
#include <hiredis/adapters/libevent.h>

/// Sends one command given as argv/argvlen and waits for its reply (non-variadic wrapper).
/// Returns NULL on an I/O or protocol error (see `context->err` / `context->errstr`).
static inline redisReply *chiredis_command_argv(redisContext *context, int argc, const char **argv, const size_t *argvlen) {
    return (redisReply *)redisCommandArgv(context, argc, argv, argvlen);
}

/// Appends one command given as argv/argvlen to the output buffer without waiting (pipelining).
/// Returns REDIS_OK or REDIS_ERR.
static inline int chiredis_append_command_argv(redisContext *context, int argc, const char **argv, const size_t *argvlen) {
    return redisAppendCommandArgv(context, argc, argv, argvlen);
}

/// Reads the next reply (flushing pending output first). Returns NULL on error; the caller frees
/// the reply with `freeReplyObject`.
static inline redisReply *chiredis_get_reply(redisContext *context) {
    void *reply = NULL;
    if (redisGetReply(context, &reply) != REDIS_OK) {
        return NULL;
    }
    return (redisReply *)reply;
}

/// Connects with a connect timeout given in milliseconds and applies the same timeout to reads and
/// writes. Returns NULL only when hiredis cannot allocate a context; check `context->err` otherwise.
static inline redisContext *chiredis_connect(const char *host, int port, long timeout_ms) {
    struct timeval tv;
    tv.tv_sec = timeout_ms / 1000;
    tv.tv_usec = (timeout_ms % 1000) * 1000;
    redisContext *context = redisConnectWithTimeout(host, port, tv);
    if (context != NULL && context->err == 0) {
        redisSetTimeout(context, tv);
    }
    return context;
}

/// Element `index` of an array reply.
static inline redisReply *chiredis_reply_element(const redisReply *reply, size_t index) {
    return reply->element[index];
}

/// Sends one command on an async context; `callback` runs with the reply (or NULL when the
/// connection failed) and `privdata`. Returns REDIS_OK or REDIS_ERR.
static inline int chiredis_async_command_argv(redisAsyncContext *context, redisCallbackFn *callback, void *privdata,
                                              int argc, const char **argv, const size_t *argvlen) {
    return redisAsyncCommandArgv(context, callback, privdata, argc, argv, argvlen);
}

/// Attaches an async context to a libevent base (the adapter's functions are static inline).
static inline int chiredis_libevent_attach(redisAsyncContext *context, struct event_base *base) {
    return redisLibeventAttach(context, base);
}

/// A monotonic clock reading in nanoseconds, for per-request latencies.
static inline unsigned long long chiredis_monotonic_nanoseconds(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (unsigned long long)ts.tv_sec * 1000000000ULL + (unsigned long long)ts.tv_nsec;
}

#endif
