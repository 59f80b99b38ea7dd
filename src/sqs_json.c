/* sqs_json.c: the SQS JSON protocol's bodies, built and read with lua-cjson (the Debian `cjson`
 * module, required at run time) instead of a JSON parser of our own. Every call into cjson runs
 * under lua_pcall; its error messages never quote the input. Answers are read defensively: a
 * field of the wrong type is treated as absent. */
#include "etlua/sqs.h"

#include <string.h>

#include <lauxlib.h>
#include <lua.h>

int etl_sqs_json_load(lua_State *L)
{
    lua_getglobal(L, "require");
    lua_pushliteral(L, "cjson");
    if (lua_pcall(L, 1, 1, 0) != LUA_OK) {
        lua_pushfstring(L, "etlua.sqs needs lua-cjson: %s", lua_tostring(L, -1));
        lua_remove(L, -2);
        return -1;
    }
    /* A private instance when available, so settings changed by scripts do not reach us. */
    if (lua_getfield(L, -1, "new") == LUA_TFUNCTION && lua_pcall(L, 0, 1, 0) == LUA_OK &&
        lua_istable(L, -1)) {
        lua_remove(L, -2);
    } else {
        lua_pop(L, 1);
    }
    lua_createtable(L, 0, 2);
    int enc = lua_getfield(L, -2, "encode"), dec = lua_getfield(L, -3, "decode");
    if (enc != LUA_TFUNCTION || dec != LUA_TFUNCTION) {
        lua_settop(L, lua_gettop(L) - 4);
        lua_pushliteral(L, "etlua.sqs: the cjson module has no encode/decode");
        return -1;
    }
    lua_setfield(L, -3, "decode");
    lua_setfield(L, -2, "encode");
    lua_remove(L, -2);
    return 0;
}

int etl_sqs_json_encode(lua_State *L, int codec_idx)
{
    codec_idx = lua_absindex(L, codec_idx);
    lua_getfield(L, codec_idx, "encode");
    lua_insert(L, -2);
    if (lua_pcall(L, 1, 1, 0) != LUA_OK || !lua_isstring(L, -1)) {
        lua_pop(L, 1);
        lua_pushliteral(L, "cannot encode the JSON request");
        return -1;
    }
    return 0;
}

int etl_sqs_json_decode(lua_State *L, int codec_idx, const char *s, size_t len)
{
    lua_getfield(L, codec_idx, "decode");
    lua_pushlstring(L, s, len);
    if (lua_pcall(L, 1, 1, 0) != LUA_OK) {
        const char *why = lua_tostring(L, -1);
        lua_pushfstring(L, "bad JSON answer: %s", why ? why : "?");
        lua_remove(L, -2);
        return -1;
    }
    return 0;
}

/* Pushes t[key] when it is a string, else nil. */
static void push_string_field(lua_State *L, int t, const char *key)
{
    if (lua_getfield(L, t, key) != LUA_TSTRING) {
        lua_pop(L, 1);
        lua_pushnil(L);
    }
}

void etl_sqs_json_error(lua_State *L, int idx)
{
    idx = lua_absindex(L, idx);
    if (!lua_istable(L, idx)) {
        lua_pushnil(L);
        lua_pushnil(L);
        return;
    }
    push_string_field(L, idx, "__type");
    if (lua_isnil(L, -1)) {
        lua_pop(L, 1);
        push_string_field(L, idx, "code");
        if (lua_isnil(L, -1)) {
            lua_pop(L, 1);
            push_string_field(L, idx, "Code");
        }
    } else { /* "com.amazonaws.sqs#QueueDoesNotExist" or "...#X:http://internal..." */
        const char *t = lua_tostring(L, -1), *hash = strrchr(t, '#');
        const char *start = hash ? hash + 1 : t;
        size_t n = strcspn(start, ":");
        lua_pushlstring(L, start, n);
        lua_remove(L, -2);
    }
    push_string_field(L, idx, "message");
    if (lua_isnil(L, -1)) {
        lua_pop(L, 1);
        push_string_field(L, idx, "Message");
    }
}

/* SentTimestamp as an integer (it arrives as a string of epoch milliseconds), or nil. */
static void push_sent_ms(lua_State *L, int msg)
{
    if (lua_getfield(L, msg, "Attributes") == LUA_TTABLE) {
        lua_getfield(L, -1, "SentTimestamp");
        lua_remove(L, -2);
        int isnum = 0;
        lua_Integer v = lua_tointegerx(L, -1, &isnum);
        lua_pop(L, 1);
        if (isnum && v >= 0)
            lua_pushinteger(L, v);
        else
            lua_pushnil(L);
    } else {
        lua_pop(L, 1);
        lua_pushnil(L);
    }
}

void etl_sqs_json_messages(lua_State *L, int idx)
{
    idx = lua_absindex(L, idx);
    lua_newtable(L);
    int out = lua_gettop(L);
    lua_Integer n = 0;
    if (!lua_istable(L, idx) || lua_getfield(L, idx, "Messages") != LUA_TTABLE) {
        if (lua_istable(L, idx))
            lua_pop(L, 1);
        return;
    }
    int msgs = lua_gettop(L);
    for (lua_Integer i = 1; lua_geti(L, msgs, i) == LUA_TTABLE; i++) {
        int m = lua_gettop(L);
        lua_createtable(L, 0, 4);
        push_string_field(L, m, "MessageId");
        push_string_field(L, m, "ReceiptHandle");
        push_string_field(L, m, "Body");
        if (lua_isnil(L, -1) || lua_isnil(L, -2) || lua_isnil(L, -3)) {
            lua_settop(L, m - 1);
            continue;
        }
        lua_setfield(L, -4, "body");
        lua_setfield(L, -3, "receipt");
        lua_setfield(L, -2, "id");
        push_sent_ms(L, m);
        lua_setfield(L, -2, "sent_ms");
        lua_seti(L, out, ++n);
        lua_settop(L, m - 1);
    }
    lua_settop(L, out);
}

void etl_sqs_json_failures(lua_State *L, int idx)
{
    idx = lua_absindex(L, idx);
    lua_newtable(L);
    int out = lua_gettop(L);
    lua_Integer n = 0;
    if (!lua_istable(L, idx) || lua_getfield(L, idx, "Failed") != LUA_TTABLE) {
        lua_settop(L, out);
        return;
    }
    int failed = lua_gettop(L);
    for (lua_Integer i = 1; lua_geti(L, failed, i) == LUA_TTABLE; i++) {
        int f = lua_gettop(L);
        lua_createtable(L, 0, 3);
        push_string_field(L, f, "Id");
        lua_setfield(L, -2, "id");
        push_string_field(L, f, "Code");
        lua_setfield(L, -2, "code");
        push_string_field(L, f, "Message");
        lua_setfield(L, -2, "message");
        lua_seti(L, out, ++n);
        lua_settop(L, f - 1);
    }
    lua_settop(L, out);
}
