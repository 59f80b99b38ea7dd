/* json_encode.c: Lua values -> JSON text for etlua.json, into one growable buffer.
 *
 *  - nil and json.null -> null; booleans; integers as their digits; finite floats as the
 *    shortest text that reads back the same, ".0" added when it would read as an integer
 *    (etl_json_float_text: 2.0 -> "2.0", so a float decodes as a float again); inf, nan -> null;
 *  - strings with '"', '\\' and the control characters below 0x20 escaped (\b \f \n \r \t, else
 *    \u00XX), everything else as is (UTF-8 is kept, '/' is not escaped); each ill-formed UTF-8
 *    sequence (its maximal subpart) is written as U+FFFD, so the output is always valid UTF-8;
 *  - a table with json.array_mt -> array of its elements 1..#t (raw length; nil -> null; other
 *    keys are not written); a table without it whose keys are exactly 1..n (n >= 1) -> array;
 *    any other table -> object: string keys as they are, integer keys as their digits ({[5] = x}
 *    -> {"5":x}; a table holding both 5 and "5" writes the key twice); other keys (floats,
 *    booleans, tables...) refuse the table. An empty table without the metatable is {}. Keys
 *    come in the table's traversal order (unspecified); tables are read raw (no __index, no
 *    __pairs);
 *  - functions, threads, full userdata and light userdata other than null are refused, naming the
 *    type; so are tables nested deeper than ETL_JSON_MAX_DEPTH and tables that contain themselves
 *    (found when that depth is reached, so a cycle costs nothing until then).
 *
 * The buffer is a userdata held in one stack slot, replaced by a larger one as it grows: a memory
 * error raised mid-way leaves nothing to free. The module keeps the last buffer (up to
 * ETL_JSON_SCRATCH_MAX bytes) for the next call, as lua-cjson keeps its strbuf; a call takes it
 * out of its slot while it writes, so a call started meanwhile (only a __gc finalizer can: the
 * encoder calls no Lua function) uses a buffer of its own. */
#include "etlua/buf.h"
#include "etlua/json_internal.h"
#include "etlua/json_lex.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

#include <lauxlib.h>
#include <lua.h>

struct enc {
    lua_State *L;
    int buf_slot, mt_idx;
    char *b;
    size_t len, cap;
    const void *path[ETL_JSON_MAX_DEPTH]; /* the tables being written, outermost first */
    char err[96];
};

/* Makes room for n more bytes. */
static void enc_reserve(struct enc *e, size_t n)
{
    if (e->cap - e->len >= n)
        return;
    size_t cap = e->cap * 2;
    if (cap - e->len < n)
        cap = e->len + n;
    if (cap < e->cap)
        luaL_error(e->L, "json.encode: text too large");
    char *nb = lua_newuserdatauv(e->L, cap, 0);
    memcpy(nb, e->b, e->len);
    lua_replace(e->L, e->buf_slot);
    e->b = nb;
    e->cap = cap;
}

static void enc_put(struct enc *e, const char *s, size_t n)
{
    enc_reserve(e, n);
    memcpy(e->b + e->len, s, n);
    e->len += n;
}

#define enc_lit(e, s) enc_put((e), (s), sizeof(s) - 1)

static int enc_fail(struct enc *e, const char *fmt, const char *arg)
{
    snprintf(e->err, sizeof e->err, fmt, arg);
    return -1;
}

/* 1 for the bytes written as they are without a look at what follows: ASCII from 0x20 on,
 * except '"' and '\\'. */
static const unsigned char plain[256] = {
    [0x20] = 1, 1, 0, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, /* 0x22 '"' */
    [0x30] = 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1,
    [0x40] = 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1,
    [0x50] = 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 0, 1, 1, 1, /* 0x5C '\\' */
    [0x60] = 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1,
    [0x70] = 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1,
};

static void enc_string(struct enc *e, const char *str, size_t n)
{
    const unsigned char *s = (const unsigned char *)str, *end = s + n;
    enc_reserve(e, 2);
    e->b[e->len++] = '"';
    while (s < end) {
        /* the longest run written as it is */
        const unsigned char *run = s;
        while (s < end) {
            unsigned char c = *s;
            if (plain[c]) {
                s++;
            } else if (c >= 0x80) {
                int ok;
                size_t len = etl_json_utf8_seq(s, (size_t)(end - s), &ok);
                if (!ok)
                    break;
                s += len;
            } else {
                break;
            }
        }
        if (s > run)
            enc_put(e, (const char *)run, (size_t)(s - run));
        if (s >= end)
            break;
        unsigned char c = *s;
        enc_reserve(e, 6);
        char *o = e->b + e->len;
        if (c >= 0x80) { /* ill-formed UTF-8: one U+FFFD for its maximal subpart */
            int ok;
            s += etl_json_utf8_seq(s, (size_t)(end - s), &ok);
            memcpy(o, "\xEF\xBF\xBD", 3);
            e->len += 3;
            continue;
        }
        s++;
        o[0] = '\\';
        switch (c) {
        case '"':
            o[1] = '"';
            e->len += 2;
            break;
        case '\\':
            o[1] = '\\';
            e->len += 2;
            break;
        case '\b':
            o[1] = 'b';
            e->len += 2;
            break;
        case '\f':
            o[1] = 'f';
            e->len += 2;
            break;
        case '\n':
            o[1] = 'n';
            e->len += 2;
            break;
        case '\r':
            o[1] = 'r';
            e->len += 2;
            break;
        case '\t':
            o[1] = 't';
            e->len += 2;
            break;
        default: {
            char h[3];
            etl_hex(h, &c, 1, 0); /* the one hex encoder (etlua/buf.h) */
            memcpy(o + 1, "u00", 3);
            memcpy(o + 4, h, 2);
            e->len += 6;
        }
        }
    }
    enc_reserve(e, 1);
    e->b[e->len++] = '"';
}

static void enc_integer(struct enc *e, lua_Integer v)
{
    char tmp[ETL_JSON_NUMBER_MAX];
    int n = snprintf(tmp, sizeof tmp, LUA_INTEGER_FMT, (LUAI_UACINT)v);
    enc_put(e, tmp, (size_t)n);
}

static void enc_number(struct enc *e, int idx)
{
    if (lua_isinteger(e->L, idx)) {
        enc_integer(e, lua_tointeger(e->L, idx));
        return;
    }
    double x = (double)lua_tonumber(e->L, idx);
    if (!isfinite(x)) {
        enc_lit(e, "null");
        return;
    }
    char tmp[ETL_JSON_NUMBER_MAX];
    int n = etl_json_float_text(x, tmp);
    enc_put(e, tmp, (size_t)n);
}

static int enc_value(struct enc *e, int idx, int depth);

/* 1 when the table at idx, without json.array_mt, has exactly the keys 1..n, n >= 1. */
static int enc_is_sequence(lua_State *L, int idx)
{
    lua_Integer count = 0, max = 0;
    lua_pushnil(L);
    while (lua_next(L, idx)) {
        lua_pop(L, 1);
        lua_Integer k;
        if (!lua_isinteger(L, -1) || (k = lua_tointeger(L, -1)) < 1) {
            lua_pop(L, 1);
            return 0;
        }
        count++;
        if (k > max)
            max = k;
    }
    return count > 0 && max == count;
}

static int enc_array(struct enc *e, int idx, lua_Integer n, int depth)
{
    enc_lit(e, "[");
    for (lua_Integer i = 1; i <= n; i++) {
        if (i > 1)
            enc_lit(e, ",");
        lua_rawgeti(e->L, idx, i);
        if (enc_value(e, -1, depth) < 0)
            return -1;
        lua_pop(e->L, 1);
    }
    enc_lit(e, "]");
    return 0;
}

static int enc_object(struct enc *e, int idx, int depth)
{
    lua_State *L = e->L;
    int first = 1;
    enc_lit(e, "{");
    lua_pushnil(L);
    while (lua_next(L, idx)) {
        if (!first)
            enc_lit(e, ",");
        first = 0;
        if (lua_type(L, -2) == LUA_TSTRING) {
            size_t n;
            const char *k = lua_tolstring(L, -2, &n);
            enc_string(e, k, n);
        } else if (lua_isinteger(L, -2)) {
            enc_lit(e, "\"");
            enc_integer(e, lua_tointeger(L, -2));
            enc_lit(e, "\"");
        } else {
            return enc_fail(e, "cannot encode a table key of type %s",
                            lua_isnumber(L, -2) ? "float" : luaL_typename(L, -2));
        }
        enc_lit(e, ":");
        if (enc_value(e, -1, depth) < 0)
            return -1;
        lua_pop(L, 1);
    }
    enc_lit(e, "}");
    return 0;
}

/* depth: tables already open around this one. */
static int enc_table(struct enc *e, int idx, int depth)
{
    lua_State *L = e->L;
    const void *self = lua_topointer(L, idx);
    if (depth >= ETL_JSON_MAX_DEPTH) {
        for (int i = 0; i < depth; i++)
            if (e->path[i] == self)
                return enc_fail(e, "cannot encode a table that contains itself%s", "");
        return enc_fail(e, "cannot encode tables nested deeper than 1000%s", "");
    }
    e->path[depth] = self;
    luaL_checkstack(L, 4, "json.encode: nesting");
    int is_array = 0;
    if (lua_getmetatable(L, idx)) {
        is_array = lua_rawequal(L, -1, e->mt_idx);
        lua_pop(L, 1);
    }
    if (is_array)
        return enc_array(e, idx, (lua_Integer)lua_rawlen(L, idx), depth + 1);
    if (enc_is_sequence(L, idx))
        return enc_array(e, idx, (lua_Integer)lua_rawlen(L, idx), depth + 1);
    return enc_object(e, idx, depth + 1);
}

static int enc_value(struct enc *e, int idx, int depth)
{
    lua_State *L = e->L;
    idx = lua_absindex(L, idx);
    switch (lua_type(L, idx)) {
    case LUA_TNIL:
        enc_lit(e, "null");
        return 0;
    case LUA_TBOOLEAN:
        if (lua_toboolean(L, idx))
            enc_lit(e, "true");
        else
            enc_lit(e, "false");
        return 0;
    case LUA_TNUMBER:
        enc_number(e, idx);
        return 0;
    case LUA_TSTRING: {
        size_t n;
        const char *s = lua_tolstring(L, idx, &n);
        enc_string(e, s, n);
        return 0;
    }
    case LUA_TTABLE:
        return enc_table(e, idx, depth);
    case LUA_TLIGHTUSERDATA:
        if (lua_touserdata(L, idx) == NULL) {
            enc_lit(e, "null");
            return 0;
        }
        return enc_fail(e, "cannot encode a %s", "light userdata other than json.null");
    default:
        return enc_fail(e, "cannot encode a %s", luaL_typename(L, idx));
    }
}

/* Hands the buffer in buf_slot back to the scratch slot for the next call, unless it grew past
 * ETL_JSON_SCRATCH_MAX. */
static void enc_keep_buffer(struct enc *e, int scratch_idx)
{
    if (scratch_idx != 0 && e->cap <= ETL_JSON_SCRATCH_MAX) {
        lua_pushvalue(e->L, e->buf_slot);
        lua_replace(e->L, scratch_idx);
    }
}

int etl_json_encode(lua_State *L, int idx, int mt_idx, int scratch_idx)
{
    struct enc state, *e = &state; /* its path is not initialised: written before it is read */
    idx = lua_absindex(L, idx);
    mt_idx = lua_absindex(L, mt_idx);
    if (scratch_idx != 0)
        scratch_idx = lua_absindex(L, scratch_idx);
    int base = lua_gettop(L);
    lua_pushnil(L); /* the slot the message takes on failure */
    e->L = L;
    e->mt_idx = mt_idx;
    e->len = 0;
    if (scratch_idx != 0 && lua_type(L, scratch_idx) == LUA_TUSERDATA) {
        lua_pushvalue(L, scratch_idx);
        e->b = lua_touserdata(L, -1);
        e->cap = lua_rawlen(L, -1);
        /* taken while in use: a call made meanwhile (a __gc finalizer run by an allocation
         * of this one) finds the slot empty and allocates its own */
        lua_pushboolean(L, 0);
        lua_replace(L, scratch_idx);
    } else {
        e->cap = ETL_JSON_SCRATCH_MIN;
        e->b = lua_newuserdatauv(L, e->cap, 0);
    }
    e->buf_slot = lua_gettop(L);
    e->err[0] = '\0';
    if (enc_value(e, idx, 0) < 0) {
        enc_keep_buffer(e, scratch_idx);
        lua_pushnil(L);
        lua_pushstring(L, e->err);
        lua_replace(L, base + 2);
        lua_replace(L, base + 1);
        lua_settop(L, base + 2);
        return 2;
    }
    lua_pushlstring(L, e->b, e->len);
    enc_keep_buffer(e, scratch_idx);
    lua_replace(L, base + 1);
    lua_settop(L, base + 1);
    return 1;
}
