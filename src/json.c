/* json.c: the etlua.json module (the Lua binding), the text of numbers it shares with the
 * Postgres path (json.number_text). The UTF-8 rule both directions apply is etl_json_utf8_seq
 * (include/etlua/json_lex.h).
 * The decoder is src/json_decode.c, the encoder src/json_encode.c; what each accepts and writes
 * is stated in their header comments.
 *
 * Why a codec of our own, when the house rule prefers a well-kept library: rows need JSON
 * integers as exact Lua integers over the whole signed 64-bit range and an empty array that
 * stays an array, and none of the JSON libraries Debian packages gives both (checked on
 * Debian 12 with the packaged versions):
 *  - lua-cjson 2.1.0 reads every number with strtod into a float: cjson.decode("2") is 2.0,
 *    written "2.0", which an integer column refuses, and 9007199254740993 becomes
 *    9.007199254741e+15 (the last digit is gone before Lua sees it); it decodes [] and {} to
 *    the same empty table and encodes both as {};
 *  - jansson 2.14 refuses valid JSON with an integer past 64 bits as a parse error ("too big
 *    integer near '9223372036854775808'") and builds a tree that must then be copied into Lua
 *    tables: two passes and twice the allocations per message;
 *  - json-c 0.16 saturates without a word: 99999999999999999999 reads as 18446744073709551615,
 *    -9223372036854775809 as -9223372036854775808;
 *  - Debian has no yyjson or simdjson C library.
 * So the decoder reads the text once, straight onto the Lua stack, and the encoder writes into
 * one buffer. Measured per message on the login bodies (bench/json_decode.sh, Release build,
 * lua5.4, medians): decode 0.67 us against lua-cjson's 0.97 us on data/login-sample.jsonl, and
 * 1.68 us against 1.93 us on 100,000 generated bodies; encode on a par (0.52-0.57 us against
 * 0.48-0.54 us).
 *
 * Lua API:
 *   json.decode(s)      -> value  | nil, "<what> at byte N"   (never raises on bad input)
 *   json.decode_object(s) -> table | nil   the object s holds; nil for anything else
 *   json.encode(v)      -> text   | nil, msg                  (never raises on bad values)
 *   json.number_text(n) -> the Postgres text of a number (etl_json_number_text for floats,
 *                          digits for integers); raises when n is not a number
 *   json.array_mt       the metatable of decoded arrays; set it on a table to encode it as an
 *                       array (an empty one as [])
 *   json.null           the NULL light userdata (equal to cjson.null); decodes from and
 *                       encodes to null
 * A non-string argument to decode is misuse and raises. */
#include "etlua/json_internal.h"
#include "etlua/modules.h"

#include <locale.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <lauxlib.h>
#include <lua.h>

#define ARRAY_MT "etlua.json.array"

/* The shortest %.15g / %.16g / %.17g text of x that strtod reads back as x (%.17g always does),
 * with the locale's decimal point written as '.'. x is finite. Returns the length. */
static int etl_json_shortest(double x, char out[ETL_JSON_NUMBER_MAX])
{
    int n = 0;
    for (int prec = 15; prec <= 17; prec++) {
        n = snprintf(out, ETL_JSON_NUMBER_MAX, "%.*g", prec, x);
        if (prec == 17 || strtod(out, NULL) == x)
            break;
    }
    /* snprintf and strtod both follow LC_NUMERIC: normalise the point after the check */
    const char *point = localeconv()->decimal_point;
    if (point[0] != '.' || point[1] != '\0') {
        char *hit = strstr(out, point);
        if (hit) {
            size_t pl = strlen(point);
            *hit = '.';
            memmove(hit + 1, hit + pl, strlen(hit + pl) + 1);
            n -= (int)pl - 1;
        }
    }
    return n;
}

int etl_json_number_text(double x, char out[ETL_JSON_NUMBER_MAX])
{
    if (isnan(x))
        return snprintf(out, ETL_JSON_NUMBER_MAX, "NaN");
    if (isinf(x))
        return snprintf(out, ETL_JSON_NUMBER_MAX, x > 0 ? "Infinity" : "-Infinity");
    /* -2^63 <= x < 2^63, both bounds exact as doubles */
    if (x == floor(x) && x >= -9223372036854775808.0 && x < 9223372036854775808.0) {
        if (x == 0)
            return snprintf(out, ETL_JSON_NUMBER_MAX, signbit(x) ? "-0" : "0");
        return snprintf(out, ETL_JSON_NUMBER_MAX, "%lld", (long long)x);
    }
    return etl_json_shortest(x, out);
}

int etl_json_float_text(double x, char out[ETL_JSON_NUMBER_MAX])
{
    int n = etl_json_shortest(x, out);
    if (strpbrk(out, ".eEin") == NULL) { /* reads as an integer: keep it a float */
        memcpy(out + n, ".0", 3);
        n += 2;
    }
    return n;
}

/* json.decode(s) -> value | nil, msg */
static int etl_json_decode_l(lua_State *L)
{
    size_t len;
    const char *s = luaL_checklstring(L, 1, &len);
    lua_settop(L, 1);
    return etl_json_decode(L, s, len, lua_upvalueindex(1), lua_touserdata(L, lua_upvalueindex(2)),
                           3);
}

/* json.decode_object(s) -> table | nil: the object s holds, or nil when s is not JSON or holds
 * another value (json.decode says which). The per-message decode of etlua.record: one call
 * where json.decode needed type() and getmetatable() after it to tell an object from the rest,
 * and a body that does not start with '{' is not decoded at all. */
static int etl_json_decode_object_l(lua_State *L)
{
    size_t len;
    const char *s = luaL_checklstring(L, 1, &len), *p = s, *end = s + len;
    while (p < end && (*p == ' ' || *p == '\n' || *p == '\r' || *p == '\t'))
        p++;
    lua_settop(L, 1);
    if (p == end || *p != '{' ||
        etl_json_decode(L, s, len, lua_upvalueindex(1), lua_touserdata(L, lua_upvalueindex(2)),
                        3) != 1)
        lua_pushnil(L); /* (above a refusal's nil, msg: the last value is returned) */
    return 1;
}

/* json.encode(v) -> text | nil, msg */
static int etl_json_encode_l(lua_State *L)
{
    lua_settop(L, 1);
    return etl_json_encode(L, 1, lua_upvalueindex(1), lua_upvalueindex(2));
}

/* json.number_text(n) -> text */
static int etl_json_number_text_l(lua_State *L)
{
    char out[ETL_JSON_NUMBER_MAX];
    if (lua_type(L, 1) != LUA_TNUMBER)
        return luaL_typeerror(L, 1, "number");
    if (lua_isinteger(L, 1)) {
        lua_pushfstring(L, "%I", (LUAI_UACINT)lua_tointeger(L, 1));
        return 1;
    }
    int n = etl_json_number_text((double)lua_tonumber(L, 1), out);
    lua_pushlstring(L, out, (size_t)n);
    return 1;
}

int luaopen_etlua_json(lua_State *L)
{
    lua_newtable(L);
    /* one metatable per Lua state, in the registry: loading the module twice shares it */
    luaL_newmetatable(L, ARRAY_MT);
    /* decode and decode_object: the array metatable, a key cache of their own and its strings
     * (upvalues 3.., false until a key takes the slot) */
    lua_CFunction decoders[2] = {etl_json_decode_l, etl_json_decode_object_l};
    const char *names[2] = {"decode", "decode_object"};
    luaL_checkstack(L, 2 + ETL_JSON_KEY_SLOTS, "etlua.json");
    for (int i = 0; i < 2; i++) {
        lua_pushvalue(L, -1);
        memset(lua_newuserdatauv(L, sizeof(struct etl_json_keys), 0), 0,
               sizeof(struct etl_json_keys));
        for (int k = 0; k < ETL_JSON_KEY_SLOTS; k++)
            lua_pushboolean(L, 0);
        lua_pushcclosure(L, decoders[i], 2 + ETL_JSON_KEY_SLOTS);
        lua_setfield(L, -3, names[i]);
    }
    lua_newuserdatauv(L, ETL_JSON_SCRATCH_MIN, 0); /* the encoder's reused buffer */
    lua_pushcclosure(L, etl_json_encode_l, 2);
    lua_setfield(L, -2, "encode");
    luaL_getmetatable(L, ARRAY_MT);
    lua_setfield(L, -2, "array_mt");
    lua_pushcfunction(L, etl_json_number_text_l);
    lua_setfield(L, -2, "number_text");
    lua_pushlightuserdata(L, NULL);
    lua_setfield(L, -2, "null");
    return 1;
}
