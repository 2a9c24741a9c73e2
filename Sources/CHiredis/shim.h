// libhiredis (Debian libhiredis-dev 0.14) as a Swift module, with its libevent adapter.
// hiredis's printf-style calls are variadic and cannot be called from Swift; use the *Argv
// variants, or the non-variadic wrappers below.
#ifndef CHIREDIS_SHIM_H
#define CHIREDIS_SHIM_H

#include <hiredis/hiredis.h>
#include <hiredis/async.h>
#include <event2/event.h>
#include <hiredis/adapters/libevent.h>

/// Sends one command given as argv/argvlen and waits for its reply (non-variadic wrapper).
static inline redisReply *chiredis_command_argv(redisContext *context, int argc, const char **argv, const size_t *argvlen) {
    return (redisReply *)redisCommandArgv(context, argc, argv, argvlen);
}

/// Attaches an async context to a libevent base (the adapter's functions are static inline).
static inline int chiredis_libevent_attach(redisAsyncContext *context, struct event_base *base) {
    return redisLibeventAttach(context, base);
}

#endif
