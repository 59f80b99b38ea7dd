/* fuzz_sqs_json.c: libFuzzer target for the SQS JSON protocol's answers (src/sqs_json.c).
 * One Lua state per process, with the standard libraries and lua-cjson loaded through
 * etl_sqs_json_load, the same call sqs.client makes. Each input is an answer body: it is decoded
 * with etl_sqs_json_decode and, when it is a table, read the way every method of the client reads
 * it: etl_sqs_json_error (then classified as json_call does), etl_sqs_json_messages (receive),
 * etl_sqs_json_failures (the batch calls), QueueUrl (get_queue_url) and the Attributes map
 * (attributes). The stack is checked to be balanced after each step and reset between inputs;
 * a full collection ends each input so that its allocations are balanced. */
#include "etlua/sqs.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <lauxlib.h>
#include <lua.h>
#include <lualib.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static lua_State *L;
static int codec; /* stack index of the codec table, below every input's values */

static lua_State *state(void)
{
    if (L)
        return L;
    L = luaL_newstate();
    if (!L)
        abort();
    luaL_openlibs(L);
    if (etl_sqs_json_load(L) != 0) {
        fprintf(stderr, "fuzz_sqs_json: %s\n", lua_tostring(L, -1));
        abort();
    }
    codec = lua_gettop(L);
    return L;
}

static void expect_top(lua_State *S, int top)
{
    if (lua_gettop(S) != top)
        abort();
}

/* The array built by etl_sqs_json_messages: {id, receipt, body strings; sent_ms integer >= 0}. */
static void check_messages(lua_State *S, int t)
{
    if (!lua_istable(S, t))
        abort();
    lua_Integer n = (lua_Integer)lua_rawlen(S, t);
    for (lua_Integer i = 1; i <= n; i++) {
        if (lua_rawgeti(S, t, i) != LUA_TTABLE)
            abort();
        if (lua_getfield(S, -1, "id") != LUA_TSTRING || lua_getfield(S, -2, "receipt") != LUA_TSTRING ||
            lua_getfield(S, -3, "body") != LUA_TSTRING)
            abort();
        int st = lua_getfield(S, -4, "sent_ms");
        if (st != LUA_TNIL && (!lua_isinteger(S, -1) || lua_tointeger(S, -1) < 0))
            abort();
        lua_pop(S, 5);
    }
}

/* The array built by etl_sqs_json_failures: each {id, code, message} strings or nil. */
static void check_failures(lua_State *S, int t)
{
    if (!lua_istable(S, t))
        abort();
    lua_Integer n = (lua_Integer)lua_rawlen(S, t);
    for (lua_Integer i = 1; i <= n; i++) {
        if (lua_rawgeti(S, t, i) != LUA_TTABLE)
            abort();
        static const char *const keys[] = {"id", "code", "message"};
        for (int k = 0; k < 3; k++) {
            int ty = lua_getfield(S, -1, keys[k]);
            if (ty != LUA_TNIL && ty != LUA_TSTRING)
                abort();
            lua_pop(S, 1);
        }
        lua_pop(S, 1);
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    lua_State *S = state();
    int base = lua_gettop(S);

    if (etl_sqs_json_decode(S, codec, (const char *)data, size) != 0) {
        expect_top(S, base + 1);
        if (!lua_isstring(S, -1))
            abort(); /* the error message */
        lua_settop(S, base);
        lua_gc(S, LUA_GCCOLLECT);
        return 0;
    }
    expect_top(S, base + 1);
    int answer = base + 1;

    /* json_call on an error status: code and message, then the classification */
    etl_sqs_json_error(S, answer);
    expect_top(S, base + 3);
    if (!lua_isnil(S, -2) && lua_type(S, -2) != LUA_TSTRING)
        abort();
    if (!lua_isnil(S, -1) && lua_type(S, -1) != LUA_TSTRING)
        abort();
    const char *jcode = lua_tostring(S, -2), *jmsg = lua_tostring(S, -1);
    static const long statuses[] = {400, 403, 404, 415, 429, 500, 503};
    long status = statuses[size % (sizeof statuses / sizeof statuses[0])];
    enum etl_sqs_code code = etl_sqs_classify(status, jcode);
    if (code == ETL_SQS_OK || code > ETL_SQS_CLIENT)
        abort();
    (void)etl_sqs_is_protocol_mismatch(jcode, jmsg);
    lua_settop(S, answer);

    /* receive */
    etl_sqs_json_messages(S, answer);
    expect_top(S, base + 2);
    check_messages(S, -1);
    lua_settop(S, answer);

    /* delete_batch / change_visibility_batch */
    etl_sqs_json_failures(S, answer);
    expect_top(S, base + 2);
    check_failures(S, -1);
    lua_settop(S, answer);

    if (lua_istable(S, answer)) {
        /* get_queue_url */
        if (lua_getfield(S, answer, "QueueUrl") == LUA_TSTRING) {
            char *copy = strdup(lua_tostring(S, -1)); /* the client keeps it with strdup */
            if (!copy)
                abort();
            free(copy);
        }
        lua_settop(S, answer);
        /* attributes: the string -> string pairs of Attributes, copied with lua_next */
        lua_newtable(S);
        if (lua_getfield(S, answer, "Attributes") == LUA_TTABLE) {
            lua_pushnil(S);
            while (lua_next(S, -2)) {
                if (lua_type(S, -2) == LUA_TSTRING && lua_type(S, -1) == LUA_TSTRING) {
                    lua_pushvalue(S, -2);
                    lua_insert(S, -2);
                    lua_rawset(S, -5);
                } else {
                    lua_pop(S, 1);
                }
            }
        }
        lua_settop(S, answer);
    }

    /* the codec must still work after any input: encode the decoded value back (may fail) */
    lua_pushvalue(S, answer);
    if (etl_sqs_json_encode(S, codec) != 0 && !lua_isstring(S, -1))
        abort();
    expect_top(S, base + 2);

    lua_settop(S, base);
    /* Free this input's garbage now: libFuzzer runs a (slow) leak check after any input that
     * allocated more than it freed, and Lua's collector would otherwise free it later. */
    lua_gc(S, LUA_GCCOLLECT);
    return 0;
}
