// The Lua side of EVAL (redis script_lua.c / eval.c): one Lua 5.1 state with redis's libraries and `redis` API,
// globals protection, RESP <-> Lua conversions and script bodies' SHA1. Every Lua error is raised from C, so no
// longjmp crosses Swift frames: the Swift command callback only fills a buffer and returns.
#include "CLua.h"

#include <lua5.1/lauxlib.h>
#include <lua5.1/lua.h>
#include <lua5.1/lualib.h>
#include <openssl/sha.h>
#include <errno.h>
#include <math.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <stdint.h>

extern int luaopen_cjson(lua_State *L);
extern int luaopen_bit(lua_State *L);
extern int luaopen_cmsgpack(lua_State *L);
extern int luaopen_struct(lua_State *L);

struct cl_engine {
    lua_State *lua;
    atomic_int kill_requested;
    /// busy-reply-threshold, in ms (negative: never reported; CONFIG SET may change it during a run), and whom to
    /// tell.
    _Atomic long long busy_after_ms;
    cl_busy_function busy;
    /// Scripts run since the last incremental garbage-collection step (redis LUA_GC_CYCLE_PERIOD).
    int runs_since_gc_step;
};

/// What redis.call needs while a script runs (kept in the registry as light userdata).
typedef struct cl_run {
    cl_engine *engine;
    void *context;
    cl_command_function command;
    cl_log_function log;
    int script_resp;
    int in_command;
    /// When the run started (CLOCK_MONOTONIC), and whether it was reported busy.
    struct timespec start;
    int reported_busy;
} cl_run;

static const char *run_key = "__cl_run";

// MARK: buffers

void cl_buffer_append(cl_buffer *buffer, const void *bytes, size_t length) {
    if (buffer->length + length > buffer->capacity) {
        size_t capacity = buffer->capacity ? buffer->capacity : 256;
        while (capacity < buffer->length + length) capacity *= 2;
        char *grown = realloc(buffer->data, capacity);
        if (!grown) abort();
        buffer->data = grown;
        buffer->capacity = capacity;
    }
    if (length) memcpy(buffer->data + buffer->length, bytes, length);
    buffer->length += length;
}

void cl_buffer_free(cl_buffer *buffer) {
    free(buffer->data);
    buffer->data = NULL;
    buffer->length = buffer->capacity = 0;
}

static void append_string(cl_buffer *buffer, const char *text) { cl_buffer_append(buffer, text, strlen(text)); }

static void append_format(cl_buffer *buffer, const char *format, long long value) {
    char text[64];
    int length = snprintf(text, sizeof(text), format, value);
    cl_buffer_append(buffer, text, (size_t)length);
}

static void append_bulk(cl_buffer *buffer, const char *bytes, size_t length) {
    append_format(buffer, "$%lld\r\n", (long long)length);
    cl_buffer_append(buffer, bytes, length);
    cl_buffer_append(buffer, "\r\n", 2);
}

/// A status or error line: CR and LF become spaces, as redis maps them.
/// `text` with CR and LF made spaces (redis sdsmapchars), so a one-line reply stays one line.
static void append_one_line(cl_buffer *buffer, const char *text, size_t length) {
    for (size_t i = 0; i < length; i++) {
        char c = (text[i] == '\r' || text[i] == '\n') ? ' ' : text[i];
        cl_buffer_append(buffer, &c, 1);
    }
}

static void append_line(cl_buffer *buffer, char marker, const char *text, size_t length) {
    cl_buffer_append(buffer, &marker, 1);
    append_one_line(buffer, text, length);
    cl_buffer_append(buffer, "\r\n", 2);
}

/// A double as redis writes it: shortest text that reads back the same (%.17g at most).
static int format_double(double value, char *text, size_t size) {
    if (isinf(value)) return snprintf(text, size, value > 0 ? "inf" : "-inf");
    if (isnan(value)) return snprintf(text, size, "nan");
    for (int precision = 15; precision <= 17; precision++) {
        int length = snprintf(text, size, "%.*g", precision, value);
        if (strtod(text, NULL) == value) return length;
    }
    return snprintf(text, size, "%.17g", value);
}

// MARK: SHA1 and SHA-256

/// `count` bytes as lowercase hex digits and a NUL.
static void hex_digest(const unsigned char *digest, int count, char *out) {
    static const char hex[] = "0123456789abcdef";
    for (int i = 0; i < count; i++) {
        out[i * 2] = hex[digest[i] >> 4];
        out[i * 2 + 1] = hex[digest[i] & 15];
    }
    out[count * 2] = '\0';
}

void cl_sha1_hex(const void *bytes, size_t length, char out[41]) {
    unsigned char digest[SHA_DIGEST_LENGTH];
    SHA1((const unsigned char *)bytes, length, digest);
    hex_digest(digest, SHA_DIGEST_LENGTH, out);
}

void cl_sha256_hex(const void *bytes, size_t length, char out[65]) {
    unsigned char digest[SHA256_DIGEST_LENGTH];
    SHA256((const unsigned char *)bytes, length, digest);
    hex_digest(digest, SHA256_DIGEST_LENGTH, out);
}

// MARK: errors as redis's error tables

/// Pushes {err="CODE message"} (redis luaPushErrorBuff): "-CODE msg" keeps its code, plain text gets ERR.
static void push_error_table(lua_State *L, const char *text, size_t length) {
    luaL_Buffer b;
    luaL_buffinit(L, &b);
    if (length > 0 && text[0] == '-') {
        // "-CODE message" keeps its code; "-word" without a space is a message under ERR.
        const char *space = memchr(text, ' ', length);
        if (space) {
            luaL_addlstring(&b, text + 1, length - 1);
        } else {
            luaL_addstring(&b, "ERR ");
            luaL_addlstring(&b, text + 1, length - 1);
        }
    } else {
        luaL_addstring(&b, "ERR ");
        luaL_addlstring(&b, text, length);
    }
    luaL_pushresult(&b);
    // Trim the trailing CR/LF of a reused error reply.
    size_t message_length;
    const char *message = lua_tolstring(L, -1, &message_length);
    while (message_length > 0 && (message[message_length - 1] == '\r' || message[message_length - 1] == '\n')) message_length--;
    lua_pushlstring(L, message, message_length);
    lua_remove(L, -2);
    lua_newtable(L);
    lua_pushstring(L, "err");
    lua_pushvalue(L, -3);
    lua_rawset(L, -3);
    lua_remove(L, -2);
}

static void push_error_text(lua_State *L, const char *text) { push_error_table(L, text, strlen(text)); }

// MARK: RESP -> Lua (redis redisProtocolToLuaType)

static const char *parse_reply(lua_State *L, const char *p, const char *end);

static const char *line_end(const char *p, const char *end) {
    const char *cr = memchr(p, '\r', (size_t)(end - p));
    return cr ? cr : end;
}

static const char *parse_aggregate(lua_State *L, const char *p, const char *end, char kind, long long count) {
    luaL_checkstack(L, 4, "reached lua stack limit");
    if (kind == '*' || kind == '>') {
        lua_newtable(L);
        for (long long j = 0; j < count; j++) {
            p = parse_reply(L, p, end);
            lua_rawseti(L, -2, (int)j + 1);
        }
        return p;
    }
    lua_newtable(L);
    lua_pushstring(L, kind == '%' ? "map" : "set");
    lua_newtable(L);
    for (long long j = 0; j < count; j++) {
        p = parse_reply(L, p, end);
        if (kind == '%') {
            p = parse_reply(L, p, end);
        } else {
            lua_pushboolean(L, 1);
        }
        lua_rawset(L, -3);
    }
    lua_rawset(L, -3);
    return p;
}

static const char *parse_reply(lua_State *L, const char *p, const char *end) {
    luaL_checkstack(L, 4, "reached lua stack limit");
    if (p >= end) {
        lua_pushnil(L);
        return p;
    }
    char kind = *p++;
    const char *eol = line_end(p, end);
    size_t line_length = (size_t)(eol - p);
    const char *next = eol + 2 <= end ? eol + 2 : end;
    switch (kind) {
    case '+':
        lua_newtable(L);
        lua_pushstring(L, "ok");
        lua_pushlstring(L, p, line_length);
        lua_rawset(L, -3);
        return next;
    case '-': {
        lua_pushlstring(L, "-", 1);
        lua_pushlstring(L, p, line_length);
        lua_concat(L, 2);
        size_t length;
        const char *text = lua_tolstring(L, -1, &length);
        push_error_table(L, text, length);
        lua_remove(L, -2);
        lua_pushstring(L, "ignore_error_stats_update");
        lua_pushboolean(L, 1);
        lua_rawset(L, -3);
        return next;
    }
    case ':':
        lua_pushnumber(L, (lua_Number)strtoll(p, NULL, 10));
        return next;
    case '$':
    case '=': {
        long long length = strtoll(p, NULL, 10);
        if (length < 0) {
            lua_pushboolean(L, 0);
            return next;
        }
        if (next + length > end) length = end - next;
        if (kind == '$') {
            lua_pushlstring(L, next, (size_t)length);
        } else {
            lua_newtable(L);
            lua_pushstring(L, "verbatim_string");
            lua_newtable(L);
            lua_pushstring(L, "string");
            lua_pushlstring(L, length >= 4 ? next + 4 : next, length >= 4 ? (size_t)length - 4 : 0);
            lua_rawset(L, -3);
            lua_pushstring(L, "format");
            lua_pushlstring(L, next, length >= 3 ? 3 : (size_t)length);
            lua_rawset(L, -3);
            lua_rawset(L, -3);
        }
        const char *after = next + length + 2;
        return after <= end ? after : end;
    }
    case '*':
    case '~':
    case '%':
    case '>': {
        long long count = strtoll(p, NULL, 10);
        if (count < 0) {
            lua_pushboolean(L, 0);
            return next;
        }
        return parse_aggregate(L, next, end, kind, count);
    }
    case '_':
        lua_pushnil(L);
        return next;
    case '#':
        lua_pushboolean(L, line_length > 0 && p[0] == 't');
        return next;
    case ',': {
        char text[128];
        size_t n = line_length < sizeof(text) - 1 ? line_length : sizeof(text) - 1;
        memcpy(text, p, n);
        text[n] = '\0';
        lua_newtable(L);
        lua_pushstring(L, "double");
        lua_pushnumber(L, strtod(text, NULL));
        lua_rawset(L, -3);
        return next;
    }
    case '|': {
        // RESP3 attributes are no reply of their own: skipped, the reply after them is the value (as redis's Lua).
        long long count = strtoll(p, NULL, 10);
        const char *after = next;
        for (long long i = 0; i < 2 * count && after < end; i++) {
            after = parse_reply(L, after, end);
            lua_pop(L, 1);
        }
        return parse_reply(L, after, end);
    }
    case '(':
        lua_newtable(L);
        lua_pushstring(L, "big_number");
        lua_pushlstring(L, p, line_length);
        lua_rawset(L, -3);
        return next;
    default:
        lua_pushnil(L);
        return end;
    }
}

// MARK: Lua -> RESP (redis luaReplyToRedisReply)

static void lua_to_reply(lua_State *L, int script_resp, int client_resp, cl_buffer *out, int depth);

/// Pushes t[field] (raw) and returns its type; the caller pops it.
static int raw_field(lua_State *L, const char *field) {
    lua_pushstring(L, field);
    lua_rawget(L, -2);
    return lua_type(L, -1);
}

static void append_null(cl_buffer *out, int client_resp) { append_string(out, client_resp == 3 ? "_\r\n" : "$-1\r\n"); }

static void table_to_reply(lua_State *L, int script_resp, int client_resp, cl_buffer *out, int depth) {
    if (raw_field(L, "err") == LUA_TSTRING) {
        size_t length;
        const char *text = lua_tolstring(L, -1, &length);
        // Error text goes out as it is (redis addReplyErrorFormatEx maps newlines to spaces).
        append_line(out, '-', text, length);
        lua_pop(L, 1);
        return;
    }
    lua_pop(L, 1);
    if (raw_field(L, "ok") == LUA_TSTRING) {
        size_t length;
        const char *text = lua_tolstring(L, -1, &length);
        append_line(out, '+', text, length);
        lua_pop(L, 1);
        return;
    }
    lua_pop(L, 1);
    if (raw_field(L, "double") == LUA_TNUMBER) {
        char text[64];
        int length = format_double(lua_tonumber(L, -1), text, sizeof(text));
        if (client_resp == 3) {
            cl_buffer_append(out, ",", 1);
            cl_buffer_append(out, text, (size_t)length);
            cl_buffer_append(out, "\r\n", 2);
        } else {
            append_bulk(out, text, (size_t)length);
        }
        lua_pop(L, 1);
        return;
    }
    lua_pop(L, 1);
    if (raw_field(L, "big_number") == LUA_TSTRING) {
        size_t length;
        const char *text = lua_tolstring(L, -1, &length);
        // Line breaks become spaces in either protocol, as redis maps them.
        if (client_resp == 3) {
            append_line(out, '(', text, length);
        } else {
            append_format(out, "$%lld\r\n", (long long)length);
            append_one_line(out, text, length);
            cl_buffer_append(out, "\r\n", 2);
        }
        lua_pop(L, 1);
        return;
    }
    lua_pop(L, 1);
    if (raw_field(L, "verbatim_string") == LUA_TTABLE) {
        if (raw_field(L, "format") == LUA_TSTRING) {
            size_t format_length;
            const char *format = lua_tolstring(L, -1, &format_length);
            lua_pop(L, 1);
            if (raw_field(L, "string") == LUA_TSTRING) {
                size_t length;
                const char *text = lua_tolstring(L, -1, &length);
                if (client_resp == 3 && format_length == 3) {
                    append_format(out, "=%lld\r\n", (long long)length + 4);
                    cl_buffer_append(out, format, 3);
                    cl_buffer_append(out, ":", 1);
                    cl_buffer_append(out, text, length);
                    cl_buffer_append(out, "\r\n", 2);
                } else {
                    append_bulk(out, text, length);
                }
                lua_pop(L, 2);
                return;
            }
        }
        lua_pop(L, 1);
    }
    lua_pop(L, 1);
    if (raw_field(L, "map") == LUA_TTABLE) {
        long long count = 0;
        lua_pushnil(L);
        while (lua_next(L, -2)) {
            lua_pop(L, 1);
            count++;
        }
        append_format(out, client_resp == 3 ? "%%%lld\r\n" : "*%lld\r\n", client_resp == 3 ? count : count * 2);
        lua_pushnil(L);
        while (lua_next(L, -2)) {
            lua_pushvalue(L, -2);
            lua_to_reply(L, script_resp, client_resp, out, depth + 1); // the key copy
            lua_to_reply(L, script_resp, client_resp, out, depth + 1); // the value
        }
        lua_pop(L, 1);
        return;
    }
    lua_pop(L, 1);
    if (raw_field(L, "set") == LUA_TTABLE) {
        long long count = 0;
        lua_pushnil(L);
        while (lua_next(L, -2)) {
            lua_pop(L, 1);
            count++;
        }
        append_format(out, client_resp == 3 ? "~%lld\r\n" : "*%lld\r\n", count);
        lua_pushnil(L);
        while (lua_next(L, -2)) {
            lua_pop(L, 1);
            lua_pushvalue(L, -1);
            lua_to_reply(L, script_resp, client_resp, out, depth + 1);
        }
        lua_pop(L, 1);
        return;
    }
    lua_pop(L, 1);
    // An array: elements 1, 2, ... up to the first nil.
    long long count = 0;
    while (1) {
        lua_rawgeti(L, -1, (int)count + 1);
        int type = lua_type(L, -1);
        lua_pop(L, 1);
        if (type == LUA_TNIL) break;
        count++;
    }
    append_format(out, "*%lld\r\n", count);
    for (long long j = 1; j <= count; j++) {
        lua_rawgeti(L, -1, (int)j);
        lua_to_reply(L, script_resp, client_resp, out, depth + 1);
    }
}

/// Converts the value on top of the stack and pops it.
static void lua_to_reply(lua_State *L, int script_resp, int client_resp, cl_buffer *out, int depth) {
    if (depth > 1000 || !lua_checkstack(L, 4)) {
        append_string(out, "-ERR reached lua stack limit\r\n");
        lua_pop(L, 1);
        return;
    }
    switch (lua_type(L, -1)) {
    case LUA_TSTRING: {
        size_t length;
        const char *text = lua_tolstring(L, -1, &length);
        append_bulk(out, text, length);
        break;
    }
    case LUA_TBOOLEAN:
        if (script_resp == 2) {
            if (lua_toboolean(L, -1)) {
                append_string(out, ":1\r\n");
            } else {
                append_null(out, client_resp);
            }
        } else if (client_resp == 3) {
            append_string(out, lua_toboolean(L, -1) ? "#t\r\n" : "#f\r\n");
        } else {
            append_string(out, lua_toboolean(L, -1) ? ":1\r\n" : ":0\r\n");
        }
        break;
    case LUA_TNUMBER:
        append_format(out, ":%lld\r\n", (long long)lua_tonumber(L, -1));
        break;
    case LUA_TTABLE:
        table_to_reply(L, script_resp, client_resp, out, depth);
        break;
    default:
        append_null(out, client_resp);
    }
    lua_pop(L, 1);
}

// MARK: the redis API

static cl_run *current_run(lua_State *L) {
    lua_getfield(L, LUA_REGISTRYINDEX, run_key);
    cl_run *run = (cl_run *)lua_touserdata(L, -1);
    lua_pop(L, 1);
    return run;
}

/// redis.call / redis.pcall (`resp` the script's protocol), redis.acl_check_cmd (CL_ACL_CHECK_ONLY). Leaves the
/// result (or an error table) on the stack; returns whether it is an error.
static int run_command(lua_State *L, int check_only) {
    cl_run *run = current_run(L);
    int argc = lua_gettop(L);
    if (!run) {
        push_error_text(L, "redis.call can only be called inside a script invocation");
        return 1;
    }
    if (argc == 0) {
        push_error_text(L, "Please specify at least one argument for this redis lib call");
        return 1;
    }
    if (run->in_command) {
        push_error_text(L, "luaRedisGenericCommand() recursive call detected. Are you doing funny stuff with Lua debug hooks?");
        return 1;
    }
    const char **argv = malloc(sizeof(char *) * (size_t)argc);
    size_t *lengths = malloc(sizeof(size_t) * (size_t)argc);
    char (*numbers)[64] = malloc(64 * (size_t)argc);
    if (!argv || !lengths || !numbers) abort();
    int j;
    for (j = 0; j < argc; j++) {
        if (lua_type(L, j + 1) == LUA_TNUMBER) {
            // Not lua_tolstring: its %.14g loses precision.
            lengths[j] = (size_t)format_double(lua_tonumber(L, j + 1), numbers[j], 64);
            argv[j] = numbers[j];
        } else {
            argv[j] = lua_tolstring(L, j + 1, &lengths[j]);
            if (!argv[j]) break;
        }
    }
    if (j != argc) {
        free(argv);
        free(lengths);
        free(numbers);
        lua_settop(L, 0);
        push_error_text(L, "Lua redis lib command arguments must be strings or integers");
        return 1;
    }
    cl_buffer reply = {0};
    run->in_command = 1;
    run->command(run->context, argc, argv, lengths, check_only ? CL_ACL_CHECK_ONLY : run->script_resp, &reply);
    run->in_command = 0;
    free(argv);
    free(lengths);
    free(numbers);
    lua_settop(L, 0);
    parse_reply(L, reply.data, reply.data + reply.length);
    int is_error = reply.length > 0 && reply.data[0] == '-';
    cl_buffer_free(&reply);
    return is_error;
}

static int redis_call(lua_State *L) {
    if (run_command(L, 0)) return lua_error(L);
    return 1;
}

static int redis_pcall(lua_State *L) {
    run_command(L, 0);
    return 1;
}

/// redis.acl_check_cmd(command, args...): whether the script's user may run it (an error for an unknown command).
static int redis_acl_check_cmd(lua_State *L) {
    if (run_command(L, 1)) return lua_error(L);
    int allowed = lua_tonumber(L, -1) != 0;
    lua_pop(L, 1);
    lua_pushboolean(L, allowed);
    return 1;
}

/// Lua's pcall, but an error table becomes its message (redis 7 luaRedisPcall).
static int protected_call(lua_State *L) {
    int argc = lua_gettop(L);
    luaL_checkany(L, 1);
    lua_pushboolean(L, 1);
    lua_insert(L, 1);
    if (lua_pcall(L, argc - 1, LUA_MULTRET, 0)) {
        lua_remove(L, 1);
        if (lua_istable(L, -1)) {
            lua_getfield(L, -1, "err");
            if (lua_isstring(L, -1)) {
                lua_replace(L, -2);
            } else {
                lua_pop(L, 1);
            }
        }
        lua_pushboolean(L, 0);
        lua_insert(L, 1);
    }
    return lua_gettop(L);
}

static int redis_sha1hex(lua_State *L) {
    if (lua_gettop(L) != 1) {
        push_error_text(L, "wrong number of arguments");
        return lua_error(L);
    }
    size_t length;
    const char *text = lua_tolstring(L, 1, &length);
    if (!text) {
        text = "";
        length = 0;
    }
    char hex[41];
    cl_sha1_hex(text, length, hex);
    lua_pushstring(L, hex);
    return 1;
}

static int single_field_table(lua_State *L, const char *field) {
    if (lua_gettop(L) != 1 || lua_type(L, -1) != LUA_TSTRING) {
        push_error_text(L, "wrong number or type of arguments");
        return 1;
    }
    lua_newtable(L);
    lua_pushstring(L, field);
    lua_pushvalue(L, -3);
    lua_rawset(L, -3);
    return 1;
}

static int redis_error_reply(lua_State *L) {
    if (lua_gettop(L) != 1 || lua_type(L, -1) != LUA_TSTRING) {
        push_error_text(L, "wrong number or type of arguments");
        return 1;
    }
    size_t length;
    const char *text = lua_tolstring(L, -1, &length);
    if (length > 0 && text[0] == '-') {
        push_error_table(L, text, length);
    } else {
        lua_pushstring(L, "-");
        lua_pushvalue(L, -2);
        lua_concat(L, 2);
        const char *prefixed = lua_tolstring(L, -1, &length);
        push_error_table(L, prefixed, length);
    }
    return 1;
}

static int redis_status_reply(lua_State *L) { return single_field_table(L, "ok"); }

static int redis_log(lua_State *L) {
    int argc = lua_gettop(L);
    if (argc < 2) {
        push_error_text(L, "redis.log() requires two arguments or more.");
        return lua_error(L);
    }
    if (!lua_isnumber(L, 1)) {
        push_error_text(L, "First argument must be a number (log level).");
        return lua_error(L);
    }
    int level = (int)lua_tonumber(L, 1);
    if (level < 0 || level > 3) {
        push_error_text(L, "Invalid debug level.");
        return lua_error(L);
    }
    luaL_Buffer b;
    luaL_buffinit(L, &b);
    for (int j = 2; j <= argc; j++) {
        size_t length;
        const char *text = lua_tolstring(L, j, &length);
        if (!text) continue;
        if (j != 2) luaL_addchar(&b, ' ');
        luaL_addlstring(&b, text, length);
    }
    luaL_pushresult(&b);
    cl_run *run = current_run(L);
    if (run && run->log) {
        size_t length;
        const char *message = lua_tolstring(L, -1, &length);
        run->log(run->context, level, message, length);
    }
    return 0;
}

static int redis_setresp(lua_State *L) {
    if (lua_gettop(L) != 1) {
        push_error_text(L, "redis.setresp() requires one argument.");
        return lua_error(L);
    }
    int resp = (int)lua_tonumber(L, 1);
    if (resp != 2 && resp != 3) {
        push_error_text(L, "RESP version must be 2 or 3.");
        return lua_error(L);
    }
    cl_run *run = current_run(L);
    if (run) run->script_resp = resp;
    return 0;
}

static int redis_set_repl(lua_State *L) {
    if (lua_gettop(L) != 1) {
        push_error_text(L, "redis.set_repl() requires one argument.");
        return lua_error(L);
    }
    int flags = (int)lua_tonumber(L, 1);
    if ((flags & ~3) != 0) {
        push_error_text(L, "Invalid replication flags. Use REPL_AOF, REPL_REPLICA, REPL_ALL or REPL_NONE.");
        return lua_error(L);
    }
    return 0;
}

static int redis_replicate_commands(lua_State *L) {
    lua_pushboolean(L, 1);
    return 1;
}

static int redis_noop(lua_State *L) {
    (void)L;
    return 0;
}

static int nonexistent_global(lua_State *L) {
    const char *name = lua_tostring(L, 2);
    return luaL_error(L, "Script attempted to access nonexistent global variable '%s'", name ? name : "?");
}

static int readonly_table(lua_State *L) { return luaL_error(L, "Attempt to modify a readonly table"); }

/// Replaces the table at `index` of the globals by a read-only proxy of it.
static void protect_table(lua_State *L, int proxied_index) {
    lua_newtable(L); // proxy
    lua_newtable(L); // its metatable
    lua_pushvalue(L, proxied_index < 0 ? proxied_index - 2 : proxied_index);
    lua_setfield(L, -2, "__index");
    lua_pushcfunction(L, readonly_table);
    lua_setfield(L, -2, "__newindex");
    // getmetatable() sees an empty read-only table: changing what it returns is the same readonly error.
    lua_newtable(L);
    lua_newtable(L);
    lua_pushcfunction(L, readonly_table);
    lua_setfield(L, -2, "__newindex");
    lua_setmetatable(L, -2);
    lua_setfield(L, -2, "__metatable");
    lua_setmetatable(L, -2);
}

/// setmetatable, refusing a protected table with the readonly error (Lua's own says "cannot change a protected
/// metatable").
static int protected_setmetatable(lua_State *L) {
    if (lua_istable(L, 1) && luaL_getmetafield(L, 1, "__metatable")) {
        return luaL_error(L, "Attempt to modify a readonly table");
    }
    lua_pushvalue(L, lua_upvalueindex(1));
    lua_insert(L, 1);
    lua_call(L, lua_gettop(L) - 1, LUA_MULTRET);
    return lua_gettop(L);
}

/// loadstring without binary chunks (redis 7.2 refuses precompiled bytecode: it can break the VM), and with the
/// script environment, so a loaded chunk cannot write globals either.
static int safe_loadstring(lua_State *L) {
    size_t length;
    const char *chunk = luaL_checklstring(L, 1, &length);
    if (length > 0 && chunk[0] == LUA_SIGNATURE[0]) {
        lua_pushnil(L);
        lua_pushstring(L, "binary chunks are not allowed");
        return 2;
    }
    const char *name = luaL_optstring(L, 2, chunk);
    if (luaL_loadbuffer(L, chunk, length, name) != 0) {
        lua_pushnil(L);
        lua_insert(L, -2);
        return 2;
    }
    lua_getfield(L, LUA_REGISTRYINDEX, "__cl_environment");
    if (lua_istable(L, -1)) {
        lua_setfenv(L, -2);
    } else {
        lua_pop(L, 1);
    }
    return 1;
}

static void load_library(lua_State *L, const char *name, lua_CFunction open) {
    lua_pushcfunction(L, open);
    lua_pushstring(L, name);
    lua_call(L, 1, 0);
}

static long long elapsed_ms(const struct timespec *start) {
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    return (long long)(now.tv_sec - start->tv_sec) * 1000 + (now.tv_nsec - start->tv_nsec) / 1000000;
}

static void count_hook(lua_State *L, lua_Debug *ar) {
    (void)ar;
    cl_run *run = current_run(L);
    if (!run) return;
    if (atomic_load(&run->engine->kill_requested)) {
        // Every line from now on, so a pcall cannot catch it for good.
        lua_sethook(L, count_hook, LUA_MASKLINE, 0);
        push_error_text(L, "Script killed by user with SCRIPT KILL...");
        lua_error(L);
    }
    cl_engine *engine = run->engine;
    long long busy_after_ms = atomic_load_explicit(&engine->busy_after_ms, memory_order_relaxed);
    if (!run->reported_busy && engine->busy && busy_after_ms >= 0 && elapsed_ms(&run->start) >= busy_after_ms) {
        run->reported_busy = 1;
        engine->busy(run->context);
    }
}

static const char *error_handler_source =
    "local dbg = debug\n"
    "function __redis__err__handler(err)\n"
    "  local i = dbg.getinfo(2,'nSl')\n"
    "  if i and i.what == 'C' then\n"
    "    i = dbg.getinfo(3,'nSl')\n"
    "  end\n"
    "  if type(err) ~= 'table' then\n"
    "    err = {err='ERR ' .. tostring(err)}\n"
    "  end\n"
    "  if i then\n"
    "    err['source'] = i.source\n"
    "    err['line'] = i.currentline\n"
    "  end\n"
    "  return err\n"
    "end\n";

/// A new Lua state with redis's libraries, API and globals protection.
static lua_State *create_state(void) {
    lua_State *L = luaL_newstate();
    if (!L) return NULL;

    load_library(L, "", luaopen_base);
    load_library(L, LUA_TABLIBNAME, luaopen_table);
    load_library(L, LUA_STRLIBNAME, luaopen_string);
    load_library(L, LUA_MATHLIBNAME, luaopen_math);
    load_library(L, LUA_DBLIBNAME, luaopen_debug);
    lua_pushcfunction(L, luaopen_cjson);
    lua_call(L, 0, 1);
    lua_setglobal(L, "cjson");
    lua_pushcfunction(L, luaopen_bit);
    lua_call(L, 0, 1);
    lua_setglobal(L, "bit");
    load_library(L, "cmsgpack", luaopen_cmsgpack);
    load_library(L, "struct", luaopen_struct);
    // Not for scripts (redis's deny list).
    lua_pushnil(L);
    lua_setglobal(L, "dofile");
    lua_pushnil(L);
    lua_setglobal(L, "loadfile");
    lua_pushnil(L);
    lua_setglobal(L, "print");
    lua_getglobal(L, "setmetatable");
    lua_pushcclosure(L, protected_setmetatable, 1);
    lua_setglobal(L, "setmetatable");
    lua_pushcfunction(L, safe_loadstring);
    lua_setglobal(L, "loadstring");
    // redis 7's pcall (error tables become their message).
    lua_pushcfunction(L, protected_call);
    lua_setglobal(L, "pcall");

    lua_newtable(L);
    static const luaL_Reg api[] = {
        {"call", redis_call},
        {"pcall", redis_pcall},
        {"acl_check_cmd", redis_acl_check_cmd},
        {"log", redis_log},
        {"setresp", redis_setresp},
        {"sha1hex", redis_sha1hex},
        {"error_reply", redis_error_reply},
        {"status_reply", redis_status_reply},
        {"set_repl", redis_set_repl},
        {"replicate_commands", redis_replicate_commands},
        {"breakpoint", redis_noop},
        {"debug", redis_noop},
        {NULL, NULL},
    };
    for (const luaL_Reg *entry = api; entry->name; entry++) {
        lua_pushcfunction(L, entry->func);
        lua_setfield(L, -2, entry->name);
    }
    static const struct { const char *name; int value; } constants[] = {
        {"LOG_DEBUG", 0}, {"LOG_VERBOSE", 1}, {"LOG_NOTICE", 2}, {"LOG_WARNING", 3},
        {"REPL_NONE", 0}, {"REPL_AOF", 1}, {"REPL_SLAVE", 2}, {"REPL_REPLICA", 2}, {"REPL_ALL", 3},
        {"REDIS_VERSION_NUM", 0x070204},
    };
    for (size_t i = 0; i < sizeof(constants) / sizeof(constants[0]); i++) {
        lua_pushnumber(L, constants[i].value);
        lua_setfield(L, -2, constants[i].name);
    }
    lua_pushstring(L, "7.2.4");
    lua_setfield(L, -2, "REDIS_VERSION");
    lua_setglobal(L, "redis");

    if (luaL_loadbuffer(L, error_handler_source, strlen(error_handler_source), "@err_handler_def") == 0) {
        lua_pcall(L, 0, 0, 0);
    } else {
        lua_pop(L, 1);
    }
    lua_pushnil(L);
    lua_setglobal(L, "debug");

    // Globals protection: library tables become read-only proxies, reading a missing global is an error, and
    // scripts run with a read-only proxy of the globals as their environment (see cl_engine_define).
    static const char *libraries[] = {"redis", "cjson", "bit", "cmsgpack", "struct", "string", "math", "table", NULL};
    for (const char **name = libraries; *name; name++) {
        lua_getglobal(L, *name);
        protect_table(L, -1);
        lua_setglobal(L, *name);
        lua_pop(L, 1);
    }
    lua_pushvalue(L, LUA_GLOBALSINDEX);
    lua_newtable(L);
    lua_pushcfunction(L, nonexistent_global);
    lua_setfield(L, -2, "__index");
    lua_setmetatable(L, -2);
    protect_table(L, -1); // stack: globals, proxy
    lua_pushvalue(L, -1);
    lua_setfield(L, LUA_REGISTRYINDEX, "__cl_environment");
    lua_setfield(L, -2, "_G"); // globals._G = proxy
    lua_pop(L, 1);
    return L;
}

cl_engine *cl_engine_create(void) {
    cl_engine *engine = calloc(1, sizeof(cl_engine));
    if (!engine) return NULL;
    engine->lua = create_state();
    if (!engine->lua) {
        free(engine);
        return NULL;
    }
    atomic_init(&engine->kill_requested, 0);
    atomic_init(&engine->busy_after_ms, -1);
    return engine;
}

void cl_engine_reset(cl_engine *engine) {
    lua_State *fresh = create_state();
    if (!fresh) abort();
    lua_close(engine->lua);
    engine->lua = fresh;
}

void cl_engine_destroy(cl_engine *engine) {
    if (!engine) return;
    lua_close(engine->lua);
    free(engine);
}

static void function_name(const char *sha, char name[43]) {
    name[0] = 'f';
    name[1] = '_';
    memcpy(name + 2, sha, 40);
    name[42] = '\0';
}

/// Compiles `code` as chunk `chunk` and leaves it on the stack with the environment kept in the registry under
/// `environment`; on a syntax error writes `error_prefix` and Lua's message to `error` and returns 1.
static int compile(lua_State *L, const char *code, size_t length, const char *chunk, const char *environment,
                   const char *error_prefix, cl_buffer *error) {
    if (luaL_loadbuffer(L, code, length, chunk)) {
        append_string(error, error_prefix);
        size_t message_length;
        const char *message = lua_tolstring(L, -1, &message_length);
        if (message) cl_buffer_append(error, message, message_length);
        lua_pop(L, 1);
        return 1;
    }
    lua_getfield(L, LUA_REGISTRYINDEX, environment);
    lua_setfenv(L, -2);
    return 0;
}

int cl_engine_define(cl_engine *engine, const char *sha, const char *body, size_t length, cl_buffer *error) {
    lua_State *L = engine->lua;
    if (compile(L, body, length, "@user_script", "__cl_environment", "Error compiling script (new function): ", error)) return 1;
    char name[43];
    function_name(sha, name);
    lua_setfield(L, LUA_REGISTRYINDEX, name);
    return 0;
}

int cl_engine_has(cl_engine *engine, const char *sha) {
    char name[43];
    function_name(sha, name);
    lua_getfield(engine->lua, LUA_REGISTRYINDEX, name);
    int defined = lua_isfunction(engine->lua, -1);
    lua_pop(engine->lua, 1);
    return defined;
}

static void push_array(lua_State *L, int count, const char *const *items, const size_t *lengths) {
    lua_createtable(L, count, 0);
    for (int j = 0; j < count; j++) {
        lua_pushlstring(L, items[j], lengths[j]);
        lua_rawseti(L, -2, j + 1);
    }
}

static void set_global_array(lua_State *L, const char *name, int count, const char *const *items, const size_t *lengths) {
    push_array(L, count, items, lengths);
    lua_pushstring(L, name);
    lua_insert(L, -2);
    lua_rawset(L, LUA_GLOBALSINDEX);
}

/// Calls the function below the error handler on the stack with `argc` arguments above it, as a script run, and
/// writes its reply or error (naming `name`, the script's SHA1 or the function's name) into `reply`. Returns as
/// cl_engine_run does.
static int call_as_script(cl_engine *engine, cl_run *run, const char *name, int argc, int client_resp, cl_buffer *reply) {
    lua_State *L = engine->lua;
    int failed = lua_pcall(L, argc, 1, -2 - argc);
    int is_error = 0;
    if (failed) {
        is_error = 1;
        if (!lua_istable(L, -1)) {
            const char *message = lua_isstring(L, -1) ? lua_tostring(L, -1) : "execution failure";
            char text[256];
            int length = snprintf(text, sizeof(text), "ERR Error running script %s, %.100s", name, message);
            append_line(reply, '-', text, (size_t)(length < (int)sizeof(text) ? length : (int)sizeof(text) - 1));
        } else {
            // {err=..., source=..., line=...} from the error handler: "-<err> script: <name>, on <source>:<line>."
            cl_buffer message = {0};
            lua_getfield(L, -1, "err");
            if (lua_isstring(L, -1)) {
                size_t length;
                const char *text = lua_tolstring(L, -1, &length);
                cl_buffer_append(&message, text, length);
            }
            lua_pop(L, 1);
            lua_getfield(L, -1, "source");
            lua_getfield(L, -2, "line");
            if (lua_isstring(L, -2) && lua_isstring(L, -1)) {
                append_string(&message, " script: ");
                append_string(&message, name);
                append_string(&message, ", on ");
                append_string(&message, lua_tostring(L, -2));
                append_string(&message, ":");
                append_string(&message, lua_tostring(L, -1));
                append_string(&message, ".");
            }
            lua_pop(L, 2);
            // An error a redis.call raised was counted when its command failed (redis ERR_REPLY_FLAG_NO_STATS_UPDATE).
            lua_getfield(L, -1, "ignore_error_stats_update");
            if (lua_toboolean(L, -1)) is_error = 2;
            lua_pop(L, 1);
            append_line(reply, '-', message.data ? message.data : "", message.length);
            cl_buffer_free(&message);
        }
        lua_pop(L, 1); // the error
    } else {
        if (lua_istable(L, -1)) {
            lua_pushstring(L, "err");
            lua_rawget(L, -2);
            is_error = lua_type(L, -1) == LUA_TSTRING;
            lua_pop(L, 1);
            if (is_error) {
                lua_pushstring(L, "ignore_error_stats_update");
                lua_rawget(L, -2);
                if (lua_toboolean(L, -1)) is_error = 2;
                lua_pop(L, 1);
            }
        }
        lua_to_reply(L, run->script_resp, client_resp, reply, 0);
    }
    lua_pop(L, 1); // the error handler

    lua_sethook(L, NULL, 0, 0);
    lua_pushnil(L);
    lua_setfield(L, LUA_REGISTRYINDEX, run_key);
    if (++engine->runs_since_gc_step == 50) {
        lua_gc(L, LUA_GCSTEP, 50);
        engine->runs_since_gc_step = 0;
    }
    return is_error;
}

/// Starts a script run: the run context in the registry, the kill check, and the error handler on the stack.
static void begin_run(cl_engine *engine, cl_run *run, void *context, cl_command_function command, cl_log_function log) {
    lua_State *L = engine->lua;
    *run = (cl_run){.engine = engine, .context = context, .command = command, .log = log, .script_resp = 2};
    clock_gettime(CLOCK_MONOTONIC, &run->start);
    atomic_store(&engine->kill_requested, 0);
    lua_pushlightuserdata(L, run);
    lua_setfield(L, LUA_REGISTRYINDEX, run_key);
    lua_sethook(L, count_hook, LUA_MASKCOUNT, 100000);
    lua_pushstring(L, "__redis__err__handler");
    lua_rawget(L, LUA_GLOBALSINDEX);
}

int cl_engine_run(cl_engine *engine, const char *sha,
                  int key_count, const char *const *keys, const size_t *key_lengths,
                  int argument_count, const char *const *arguments, const size_t *argument_lengths,
                  int client_resp, void *context, cl_command_function command, cl_log_function log,
                  cl_buffer *reply) {
    lua_State *L = engine->lua;
    cl_run run;
    begin_run(engine, &run, context, command, log);
    char name[43];
    function_name(sha, name);
    lua_getfield(L, LUA_REGISTRYINDEX, name);
    set_global_array(L, "KEYS", key_count, keys, key_lengths);
    set_global_array(L, "ARGV", argument_count, arguments, argument_lengths);
    return call_as_script(engine, &run, sha, 0, client_resp, reply);
}

// MARK: functions (redis function_lua.c)

/// What redis.register_function needs while a FUNCTION LOAD runs (in the registry as light userdata).
typedef struct cl_load {
    struct timespec start;
    long long timeout_ms;
} cl_load;

static const char *load_key = "__cl_load";
static const char *pending_key = "__cl_pending";
static const char *function_environment_meta_key = "__cl_function_environment_meta";
static const char *library_api_key = "__cl_library_api";

static const char *name_error =
    "Library names can only contain letters, numbers, or underscores(_) and must be at least one character long";

/// redis functionsVerifyName: letters, digits and underscores, at least one.
static int valid_name(const char *name, size_t length) {
    if (length == 0) return 0;
    for (size_t i = 0; i < length; i++) {
        char c = name[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_')) return 0;
    }
    return 1;
}

/// The flags table on top of the stack as CL_FUNCTION_FLAG_* bits, or -1 for an unknown flag.
static int read_flags(lua_State *L) {
    static const struct { const char *name; int flag; } known[] = {
        {"no-writes", CL_FUNCTION_FLAG_NO_WRITES}, {"allow-oom", CL_FUNCTION_FLAG_ALLOW_OOM},
        {"allow-stale", CL_FUNCTION_FLAG_ALLOW_STALE}, {"no-cluster", CL_FUNCTION_FLAG_NO_CLUSTER},
        {"allow-cross-slot-keys", CL_FUNCTION_FLAG_ALLOW_CROSS_SLOT_KEYS},
    };
    int flags = 0;
    for (int j = 1;; j++) {
        lua_rawgeti(L, -1, j);
        if (lua_isnil(L, -1)) {
            lua_pop(L, 1);
            return flags;
        }
        if (!lua_isstring(L, -1)) {
            lua_pop(L, 1);
            return -1;
        }
        const char *text = lua_tostring(L, -1);
        int found = 0;
        for (size_t i = 0; i < sizeof(known) / sizeof(known[0]); i++) {
            if (strcasecmp(known[i].name, text) == 0) {
                flags |= known[i].flag;
                found = 1;
            }
        }
        lua_pop(L, 1);
        if (!found) return -1;
    }
}

/// redis.register_function(name, callback) or redis.register_function{function_name=, callback=, flags=,
/// description=}: adds {name, callback, flags, description} to the pending library (redis luaRegisterFunction).
static int register_function(lua_State *L) {
    lua_getfield(L, LUA_REGISTRYINDEX, load_key);
    cl_load *load = (cl_load *)lua_touserdata(L, -1);
    lua_pop(L, 1);
    if (!load) {
        push_error_text(L, "redis.register_function can only be called on FUNCTION LOAD command");
        return lua_error(L);
    }
    int argc = lua_gettop(L);
    if (argc < 1 || argc > 2) {
        push_error_text(L, "wrong number of arguments to redis.register_function");
        return lua_error(L);
    }
    // The entry being built: {name=, callback=, flags=, description=}.
    lua_newtable(L);
    int entry = lua_gettop(L);
    if (argc == 1) {
        if (!lua_istable(L, 1)) {
            push_error_text(L, "calling redis.register_function with a single argument is only applicable to Lua table (representing named arguments).");
            return lua_error(L);
        }
        lua_pushnil(L);
        while (lua_next(L, 1)) {
            if (lua_type(L, -2) != LUA_TSTRING) {
                push_error_text(L, "named argument key given to redis.register_function is not a string");
                return lua_error(L);
            }
            const char *key = lua_tostring(L, -2);
            // redis luaRegisterFunctionReadNamedArgs: each named argument, the type it needs and its error.
            static const struct { const char *key; const char *field; int type; const char *error; } named[] = {
                {"function_name", "name", LUA_TSTRING, "function_name argument given to redis.register_function must be a string"},
                {"description", "description", LUA_TSTRING, "description argument given to redis.register_function must be a string"},
                {"callback", "callback", LUA_TFUNCTION, "callback argument given to redis.register_function must be a function"},
                {"flags", "flags", LUA_TTABLE, "flags argument to redis.register_function must be a table representing function flags"},
            };
            size_t found = sizeof(named) / sizeof(named[0]);
            for (size_t i = 0; i < sizeof(named) / sizeof(named[0]); i++) {
                if (strcasecmp(key, named[i].key) == 0) found = i;
            }
            if (found == sizeof(named) / sizeof(named[0])) {
                push_error_text(L, "unknown argument given to redis.register_function");
                return lua_error(L);
            }
            if (lua_type(L, -1) != named[found].type) {
                push_error_text(L, named[found].error);
                return lua_error(L);
            }
            if (named[found].type == LUA_TTABLE) {
                int flags = read_flags(L);
                if (flags < 0) {
                    push_error_text(L, "unknown flag given");
                    return lua_error(L);
                }
                lua_pushinteger(L, flags);
            } else {
                lua_pushvalue(L, -1);
            }
            lua_setfield(L, entry, named[found].field);
            lua_pop(L, 1);
        }
        lua_getfield(L, entry, "name");
        int has_name = !lua_isnil(L, -1);
        lua_getfield(L, entry, "callback");
        int has_callback = !lua_isnil(L, -1);
        lua_pop(L, 2);
        if (!has_name) {
            push_error_text(L, "redis.register_function must get a function name argument");
            return lua_error(L);
        }
        if (!has_callback) {
            push_error_text(L, "redis.register_function must get a callback argument");
            return lua_error(L);
        }
    } else {
        if (lua_type(L, 1) != LUA_TSTRING) {
            push_error_text(L, "first argument to redis.register_function must be a string");
            return lua_error(L);
        }
        if (!lua_isfunction(L, 2)) {
            push_error_text(L, "second argument to redis.register_function must be a function");
            return lua_error(L);
        }
        lua_pushvalue(L, 1);
        lua_setfield(L, entry, "name");
        lua_pushvalue(L, 2);
        lua_setfield(L, entry, "callback");
    }
    lua_getfield(L, entry, "name");
    size_t name_length;
    const char *name = lua_tolstring(L, -1, &name_length);
    if (!valid_name(name, name_length)) {
        push_error_text(L, name_error);
        return lua_error(L);
    }
    lua_getfield(L, LUA_REGISTRYINDEX, pending_key);
    int pending = lua_gettop(L);
    int count = (int)lua_objlen(L, pending);
    for (int j = 1; j <= count; j++) {
        lua_rawgeti(L, pending, j);
        lua_getfield(L, -1, "name");
        int same = lua_rawequal(L, -1, pending - 1);
        lua_pop(L, 2);
        if (same) {
            push_error_text(L, "Function already exists in the library");
            return lua_error(L);
        }
    }
    lua_pushvalue(L, entry);
    lua_rawseti(L, pending, count + 1);
    return 0;
}

/// FUNCTION LOAD's time limit (redis luaEngineLoadHook).
static void load_hook(lua_State *L, lua_Debug *ar) {
    (void)ar;
    lua_getfield(L, LUA_REGISTRYINDEX, load_key);
    cl_load *load = (cl_load *)lua_touserdata(L, -1);
    lua_pop(L, 1);
    if (load && load->timeout_ms > 0 && elapsed_ms(&load->start) > load->timeout_ms) {
        lua_sethook(L, load_hook, LUA_MASKLINE, 0);
        push_error_text(L, "FUNCTION LOAD timeout");
        lua_error(L);
    }
}

/// The globals a library's code sees while it loads: only `redis`, with register_function, log and the version
/// fields (redis LIBRARY_API), read-only, and reading anything else is the nonexistent-global error.
static void create_library_api(lua_State *L) {
    lua_newtable(L); // the load-time globals
    lua_newtable(L); // their `redis`
    lua_pushcfunction(L, register_function);
    lua_setfield(L, -2, "register_function");
    lua_pushcfunction(L, redis_log);
    lua_setfield(L, -2, "log");
    static const struct { const char *name; int value; } constants[] = {
        {"LOG_DEBUG", 0}, {"LOG_VERBOSE", 1}, {"LOG_NOTICE", 2}, {"LOG_WARNING", 3}, {"REDIS_VERSION_NUM", 0x070204},
    };
    for (size_t i = 0; i < sizeof(constants) / sizeof(constants[0]); i++) {
        lua_pushnumber(L, constants[i].value);
        lua_setfield(L, -2, constants[i].name);
    }
    lua_pushstring(L, "7.2.4");
    lua_setfield(L, -2, "REDIS_VERSION");
    for (int level = 0; level < 2; level++) {
        // A read-only proxy whose missing fields are the nonexistent-global error: first `redis`, then the globals.
        lua_newtable(L); // the proxy
        lua_newtable(L); // its metatable
        lua_newtable(L); // the proxied table's own metatable: missing fields are errors
        lua_pushcfunction(L, nonexistent_global);
        lua_setfield(L, -2, "__index");
        lua_setmetatable(L, -4);
        lua_pushvalue(L, -3);
        lua_setfield(L, -2, "__index");
        lua_pushcfunction(L, readonly_table);
        lua_setfield(L, -2, "__newindex");
        lua_pushboolean(L, 0);
        lua_setfield(L, -2, "__metatable");
        lua_setmetatable(L, -2);
        lua_replace(L, -2); // the proxy replaces the table
        if (level == 0) lua_setfield(L, -2, "redis");
    }
    lua_setfield(L, LUA_REGISTRYINDEX, library_api_key);
}

/// Adds what FUNCTION needs to a fresh state: the library API and the functions' environment.
static void add_function_support(lua_State *L) {
    create_library_api(L);
    // Functions' environment: an empty read-only table whose lookups go to the library API while a library loads
    // and to the script globals when a function runs (redis swaps its globals' __index the same way).
    lua_newtable(L);
    lua_newtable(L);
    lua_getfield(L, LUA_REGISTRYINDEX, "__cl_environment");
    lua_setfield(L, -2, "__index");
    lua_pushcfunction(L, readonly_table);
    lua_setfield(L, -2, "__newindex");
    lua_pushboolean(L, 0);
    lua_setfield(L, -2, "__metatable");
    lua_pushvalue(L, -1);
    lua_setfield(L, LUA_REGISTRYINDEX, function_environment_meta_key);
    lua_setmetatable(L, -2);
    lua_setfield(L, LUA_REGISTRYINDEX, "__cl_function_environment");
}

cl_engine *cl_function_engine_create(void) {
    cl_engine *engine = cl_engine_create();
    if (!engine) return NULL;
    add_function_support(engine->lua);
    return engine;
}

void cl_function_engine_reset(cl_engine *engine) {
    cl_engine_reset(engine);
    add_function_support(engine->lua);
}

/// Points the functions' environment at the library API (loading) or the script globals (running).
static void set_function_environment(lua_State *L, int loading) {
    lua_getfield(L, LUA_REGISTRYINDEX, function_environment_meta_key);
    lua_getfield(L, LUA_REGISTRYINDEX, loading ? library_api_key : "__cl_environment");
    lua_setfield(L, -2, "__index");
    lua_pop(L, 1);
}

static void append_u32(cl_buffer *out, uint32_t value) {
    unsigned char bytes[4] = {(unsigned char)value, (unsigned char)(value >> 8), (unsigned char)(value >> 16), (unsigned char)(value >> 24)};
    cl_buffer_append(out, bytes, 4);
}

int cl_library_load(cl_engine *engine, const char *code, size_t length, long long timeout_ms, int *library,
                    cl_buffer *functions, cl_buffer *error) {
    lua_State *L = engine->lua;
    if (compile(L, code, length, "@user_function", "__cl_function_environment", "Error compiling function: ", error)) return 1;
    cl_load load = {.timeout_ms = timeout_ms};
    clock_gettime(CLOCK_MONOTONIC, &load.start);
    lua_pushlightuserdata(L, &load);
    lua_setfield(L, LUA_REGISTRYINDEX, load_key);
    lua_newtable(L);
    lua_setfield(L, LUA_REGISTRYINDEX, pending_key);
    set_function_environment(L, 1);
    lua_sethook(L, load_hook, LUA_MASKCOUNT, 100000);
    int failed = lua_pcall(L, 0, 0, 0);
    lua_sethook(L, NULL, 0, 0);
    set_function_environment(L, 0);
    lua_pushnil(L);
    lua_setfield(L, LUA_REGISTRYINDEX, load_key);
    lua_getfield(L, LUA_REGISTRYINDEX, pending_key);
    lua_pushnil(L);
    lua_setfield(L, LUA_REGISTRYINDEX, pending_key);
    if (failed) {
        lua_pop(L, 1); // the pending functions
        append_string(error, "Error registering functions: ");
        if (lua_istable(L, -1)) {
            lua_getfield(L, -1, "err");
            if (lua_isstring(L, -1)) append_string(error, lua_tostring(L, -1));
            lua_pop(L, 1);
        } else if (lua_isstring(L, -1)) {
            append_string(error, lua_tostring(L, -1));
        }
        lua_pop(L, 1);
        return 1;
    }
    // The library: name -> callback, kept by reference; the caller gets each function's name, flags, description.
    int pending = lua_gettop(L);
    int count = (int)lua_objlen(L, pending);
    lua_newtable(L);
    for (int j = 1; j <= count; j++) {
        lua_rawgeti(L, pending, j);
        lua_getfield(L, -1, "name");
        size_t name_length;
        const char *name = lua_tolstring(L, -1, &name_length);
        append_u32(functions, (uint32_t)name_length);
        cl_buffer_append(functions, name, name_length);
        lua_getfield(L, -2, "callback");
        lua_setfield(L, pending + 1, name);
        lua_pop(L, 1);
        lua_getfield(L, -1, "flags");
        append_u32(functions, (uint32_t)lua_tointeger(L, -1));
        lua_pop(L, 1);
        lua_getfield(L, -1, "description");
        if (lua_isstring(L, -1)) {
            size_t description_length;
            const char *description = lua_tolstring(L, -1, &description_length);
            append_u32(functions, (uint32_t)description_length);
            cl_buffer_append(functions, description, description_length);
        } else {
            append_u32(functions, UINT32_MAX);
        }
        lua_pop(L, 2);
    }
    *library = luaL_ref(L, LUA_REGISTRYINDEX);
    lua_pop(L, 1); // the pending functions
    return 0;
}

void cl_library_release(cl_engine *engine, int library) { luaL_unref(engine->lua, LUA_REGISTRYINDEX, library); }

int cl_function_call(cl_engine *engine, int library, const char *function,
                     int key_count, const char *const *keys, const size_t *key_lengths,
                     int argument_count, const char *const *arguments, const size_t *argument_lengths,
                     int client_resp, void *context, cl_command_function command, cl_log_function log,
                     cl_buffer *reply) {
    lua_State *L = engine->lua;
    cl_run run;
    begin_run(engine, &run, context, command, log);
    lua_rawgeti(L, LUA_REGISTRYINDEX, library);
    lua_getfield(L, -1, function);
    lua_remove(L, -2);
    push_array(L, key_count, keys, key_lengths);
    push_array(L, argument_count, arguments, argument_lengths);
    return call_as_script(engine, &run, function, 2, client_resp, reply);
}

void cl_engine_request_kill(cl_engine *engine) { atomic_store(&engine->kill_requested, 1); }

void cl_engine_set_busy_report(cl_engine *engine, long long after_ms, cl_busy_function busy) {
    engine->busy = busy;
    atomic_store(&engine->busy_after_ms, after_ms);
}

size_t cl_engine_memory(cl_engine *engine) { return (size_t)lua_gc(engine->lua, LUA_GCCOUNT, 0) * 1024; }
