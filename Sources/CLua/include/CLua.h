// The Lua 5.1 scripting engine behind EVAL, in C so that Lua's errors (longjmp) never cross Swift frames: the
// Lua state, redis's `redis` API table, the globals protection, the RESP <-> Lua conversions and the SHA1 of script
// bodies live here. Swift sees an opaque engine and two callbacks (run a command, write a log line).
#ifndef CLUA_H
#define CLUA_H

#include <stddef.h>

/// A growable byte buffer the engine writes replies and errors into. Zero-initialise; free with cl_buffer_free.
typedef struct cl_buffer {
    char *data;
    size_t length;
    size_t capacity;
} cl_buffer;

void cl_buffer_append(cl_buffer *buffer, const void *bytes, size_t length);
void cl_buffer_free(cl_buffer *buffer);

/// Runs one command for redis.call / redis.pcall and writes its RESP reply (in protocol `resp`, 2 or 3) to `reply`.
/// An error reply (`-CODE message\r\n`) is how a refused or failed command is reported. With `resp`
/// CL_ACL_CHECK_ONLY (redis.acl_check_cmd) the command is not run: the reply is `:1` or `:0`, whether the script's
/// user may run it, or an error for an unknown command.
enum { CL_ACL_CHECK_ONLY = -1 };
typedef void (*cl_command_function)(void *context, int argc, const char *const *argv, const size_t *lengths, int resp,
                                    cl_buffer *reply);
/// redis.log(level, ...): level 0 (debug) ... 3 (warning), the message joined with spaces.
typedef void (*cl_log_function)(void *context, int level, const char *message, size_t length);

typedef struct cl_engine cl_engine;

/// A fresh Lua state with redis's libraries and API, its globals protected.
cl_engine *cl_engine_create(void);
void cl_engine_destroy(cl_engine *engine);
/// SCRIPT FLUSH: a fresh Lua state in the same engine (no script compiled).
void cl_engine_reset(cl_engine *engine);

/// Compiles `body` as the function of script `sha` (40 lowercase hex digits). Returns 0, or 1 with redis's
/// "Error compiling script (new function): ..." text in `error`.
int cl_engine_define(cl_engine *engine, const char *sha, const char *body, size_t length, cl_buffer *error);
/// Whether script `sha` is compiled in this engine.
int cl_engine_has(cl_engine *engine, const char *sha);

/// Runs script `sha` with KEYS and ARGV and writes its reply (or error) as RESP for a client speaking
/// `client_resp` into `reply`. Returns 0 for a reply, 1 for an error reply, 2 for an error reply that a failed
/// redis.call already counted in the error statistics.
int cl_engine_run(cl_engine *engine, const char *sha,
                  int key_count, const char *const *keys, const size_t *key_lengths,
                  int argument_count, const char *const *arguments, const size_t *argument_lengths,
                  int client_resp, void *context, cl_command_function command, cl_log_function log,
                  cl_buffer *reply);

/// SCRIPT KILL: the running script stops at its next check with "Script killed by user with SCRIPT KILL...".
/// Safe from any thread.
void cl_engine_request_kill(cl_engine *engine);

/// Called once in a run, from the script's own thread, when it has run for the engine's busy threshold (redis's
/// busy-reply-threshold): other clients are answered -BUSY from then on. `context` is the run's.
typedef void (*cl_busy_function)(void *context);
/// Sets whom runs report to, and after how long (milliseconds; negative: never). Safe during a run on another thread
/// once `busy` was set: only the threshold changes then.
void cl_engine_set_busy_report(cl_engine *engine, long long after_ms, cl_busy_function busy);
/// Bytes the Lua state holds (INFO used_memory_lua).
size_t cl_engine_memory(cl_engine *engine);

// MARK: functions (FUNCTION LOAD / FCALL), in an engine of their own

/// Function flags (redis scripts_flags_def), as FUNCTION LOAD reports them.
enum {
    CL_FUNCTION_FLAG_NO_WRITES = 1 << 1,
    CL_FUNCTION_FLAG_ALLOW_OOM = 1 << 2,
    CL_FUNCTION_FLAG_ALLOW_STALE = 1 << 3,
    CL_FUNCTION_FLAG_NO_CLUSTER = 1 << 4,
    CL_FUNCTION_FLAG_ALLOW_CROSS_SLOT_KEYS = 1 << 5,
};

/// An engine for function libraries: as cl_engine_create, plus the load-time library API (redis.register_function,
/// redis.log, the version fields) and the environment functions run in.
cl_engine *cl_function_engine_create(void);
/// FUNCTION FLUSH: a fresh state (every library reference becomes invalid).
void cl_function_engine_reset(cl_engine *engine);

/// Runs a library's `code` (without its shebang line; starting at that line's line feed keeps line numbers the
/// user's), which registers its functions. `timeout_ms` > 0 stops a load running longer ("FUNCTION LOAD timeout").
/// Returns 0 with the library's reference in `library` and, in `functions`, per registered function in order:
/// name length (UInt32 LE), name, flags (UInt32 LE, CL_FUNCTION_FLAG_*), description length (UInt32 LE, 0xFFFFFFFF
/// for none), description. Returns 1 with redis's error text in `error` (nothing is kept).
int cl_library_load(cl_engine *engine, const char *code, size_t length, long long timeout_ms, int *library,
                    cl_buffer *functions, cl_buffer *error);
/// Forgets a loaded library (its functions can no longer be called).
void cl_library_release(cl_engine *engine, int library);
/// FCALL: runs `function` of `library` with its KEYS and ARGV tables as arguments; otherwise as cl_engine_run
/// (errors name the function).
int cl_function_call(cl_engine *engine, int library, const char *function,
                     int key_count, const char *const *keys, const size_t *key_lengths,
                     int argument_count, const char *const *arguments, const size_t *argument_lengths,
                     int client_resp, void *context, cl_command_function command, cl_log_function log,
                     cl_buffer *reply);

/// SHA1 of `bytes` as 40 lowercase hex digits and a NUL.
void cl_sha1_hex(const void *bytes, size_t length, char out[41]);

/// SHA-256 of `bytes` as 64 lowercase hex digits and a NUL (ACL password hashes, as redis stores them).
void cl_sha256_hex(const void *bytes, size_t length, char out[65]);

#endif
