/* fuzz_json.c: libFuzzer target for etlua.json (src/json_decode.c, src/json_encode.c).
 * Arbitrary bytes in. Checked:
 *  - decode never raises and leaves exactly its results on the stack;
 *  - a decoded value encodes, and the text decodes again to an equal value: same types, same
 *    integer/float subtypes (and the sign of zero), same strings, arrays still arrays (json.array_mt),
 *    objects still objects, with the same keys;
 *  - the input taken as a Lua string encodes; the text decodes to a string (so it is valid JSON
 *    and valid UTF-8) equal to the input whenever the input was valid UTF-8.
 * One Lua state serves every input. */
#include "etlua/json_internal.h"
#include "etlua/json_lex.h"
#include "etlua/modules.h"

#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <lauxlib.h>
#include <lua.h>
#include <lualib.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static lua_State *L;
static int mt_idx, scratch_idx; /* json.array_mt; the encoder's reused buffer, as the module has */

/* 1 when the values at a and b are equal in everything JSON carries. */
static int same(int a, int b)
{
    a = lua_absindex(L, a);
    b = lua_absindex(L, b);
    if (lua_type(L, a) != lua_type(L, b))
        return 0;
    switch (lua_type(L, a)) {
    case LUA_TNUMBER:
        if (lua_isinteger(L, a) != lua_isinteger(L, b))
            return 0;
        if (lua_isinteger(L, a))
            return lua_tointeger(L, a) == lua_tointeger(L, b);
        return lua_tonumber(L, a) == lua_tonumber(L, b) &&
               signbit(lua_tonumber(L, a)) == signbit(lua_tonumber(L, b));
    case LUA_TTABLE: {
        int ma = lua_getmetatable(L, a), mb = lua_getmetatable(L, b);
        int eq = (ma == mb) && (!ma || lua_rawequal(L, -1, -2));
        lua_pop(L, ma + mb);
        if (!eq)
            return 0;
        luaL_checkstack(L, 6, "fuzz_json: depth");
        lua_Integer na = 0, nb = 0;
        lua_pushnil(L);
        while (lua_next(L, a)) {
            na++;
            lua_pushvalue(L, -2);
            lua_rawget(L, b);
            int ok = same(-1, -2);
            lua_pop(L, 2);
            if (!ok) {
                lua_pop(L, 1);
                return 0;
            }
        }
        lua_pushnil(L);
        while (lua_next(L, b)) {
            nb++;
            lua_pop(L, 1);
        }
        return na == nb;
    }
    default: /* strings, booleans, json.null */
        return lua_rawequal(L, a, b);
    }
}

static int valid_utf8(const uint8_t *p, size_t n)
{
    for (size_t i = 0; i < n;) {
        int ok;
        i += etl_json_utf8_seq(p + i, n - i, &ok);
        if (!ok)
            return 0;
    }
    return 1;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (L == NULL) {
        L = luaL_newstate();
        luaL_openlibs(L);
        luaL_requiref(L, "etlua.json", luaopen_etlua_json, 0);
        lua_getfield(L, -1, "array_mt");
        mt_idx = lua_gettop(L);
        lua_newuserdatauv(L, ETL_JSON_SCRATCH_MIN, 0);
        scratch_idx = lua_gettop(L);
    }
    int top = lua_gettop(L);
    lua_pushlstring(L, (const char *)data, size);
    int input = lua_gettop(L);
    size_t len;
    const char *s = lua_tolstring(L, input, &len);

    /* decode -> encode -> decode */
    int nres = etl_json_decode(L, s, len, mt_idx, NULL, 0);
    if (lua_gettop(L) != input + nres)
        abort();
    if (nres == 1) {
        int v1 = lua_gettop(L);
        if (etl_json_encode(L, v1, mt_idx, scratch_idx) != 1)
            abort(); /* every decoded value must encode */
        size_t tlen;
        const char *text = lua_tolstring(L, -1, &tlen);
        if (etl_json_decode(L, text, tlen, mt_idx, NULL, 0) != 1)
            abort(); /* the encoder wrote text the decoder refuses */
        if (!same(v1, -1))
            abort(); /* the round trip changed the value */
    } else if (nres != 2 || !lua_isstring(L, -1)) {
        abort();
    }
    lua_settop(L, input);

    /* any bytes as a string: encode -> decode gives a string, the same one if it was UTF-8 */
    if (etl_json_encode(L, input, mt_idx, scratch_idx) != 1)
        abort();
    size_t tlen;
    const char *text = lua_tolstring(L, -1, &tlen);
    if (etl_json_decode(L, text, tlen, mt_idx, NULL, 0) != 1 || lua_type(L, -1) != LUA_TSTRING)
        abort();
    if (valid_utf8(data, size) && !lua_rawequal(L, -1, input))
        abort();
    lua_settop(L, top);
    return 0;
}
