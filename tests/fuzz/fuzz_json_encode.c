/* fuzz_json_encode.c: libFuzzer target for the encoder of etlua.json (src/json_encode.c) on
 * Lua values no decoder makes: the input is a small program that builds values on a stack
 * (integers and floats from raw bits, NaN and infinities included; strings of any bytes; plain
 * tables, json.array_mt tables, sparse and mixed keys, float and boolean keys, shared tables,
 * cycles, functions, json.null). Every value left is encoded. Checked: encode never raises and
 * leaves exactly its results; a refusal is a one-line message; an accepted text decodes again
 * (valid JSON and valid UTF-8, within the depth limit), and a text of a plain scalar or string
 * is the same when the decoded value is encoded again. */
#include "etlua/json_internal.h"
#include "etlua/modules.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <lauxlib.h>
#include <lua.h>
#include <lualib.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define MAX_VALUES 48

static lua_State *L;
static int mt_idx, scratch_idx, base;

struct reader {
    const uint8_t *p, *end;
};

static uint8_t next_byte(struct reader *r) { return r->p < r->end ? *r->p++ : 0; }

static uint64_t next_u64(struct reader *r)
{
    uint64_t v = 0;
    for (int i = 0; i < 8; i++)
        v = v << 8 | next_byte(r);
    return v;
}

static int dummy(lua_State *l)
{
    (void)l;
    return 0;
}

/* Runs the program; the values it leaves are above base. */
static void build(struct reader *r)
{
    while (r->p < r->end) {
        int n = lua_gettop(L) - base;
        uint8_t op = next_byte(r) % 13;
        if (n >= MAX_VALUES && op < 7)
            op = 11;
        switch (op) {
        case 0: {
            uint64_t u = next_u64(r);
            lua_Integer v;
            memcpy(&v, &u, sizeof v);
            lua_pushinteger(L, v);
            break;
        }
        case 1: {
            uint64_t u = next_u64(r);
            double d;
            memcpy(&d, &u, sizeof d);
            lua_pushnumber(L, (lua_Number)d);
            break;
        }
        case 2: {
            size_t len = next_byte(r) % 40;
            if (len > (size_t)(r->end - r->p))
                len = (size_t)(r->end - r->p);
            lua_pushlstring(L, (const char *)r->p, len);
            r->p += len;
            break;
        }
        case 3: lua_newtable(L); break;
        case 4:
            lua_newtable(L);
            lua_pushvalue(L, mt_idx);
            lua_setmetatable(L, -2);
            break;
        case 5: lua_pushlightuserdata(L, NULL); break;
        case 6: lua_pushboolean(L, next_byte(r) & 1); break;
        case 7: /* t[k] = v with t, k, v the top three */
            if (n >= 3 && lua_istable(L, -3) && !lua_isnil(L, -2) &&
                !(lua_type(L, -2) == LUA_TNUMBER && lua_tonumber(L, -2) != lua_tonumber(L, -2))) {
                lua_rawset(L, -3);
            } else if (n >= 2) {
                lua_pop(L, 2);
            }
            break;
        case 8: /* t[#t + 1] = v */
            if (n >= 2 && lua_istable(L, -2))
                lua_rawseti(L, -2, (lua_Integer)lua_rawlen(L, -2) + 1);
            else if (n >= 1)
                lua_pop(L, 1);
            break;
        case 9: /* a copy of an earlier value: shared tables, cycles */
            if (n >= 1)
                lua_pushvalue(L, base + 1 + next_byte(r) % n);
            break;
        case 10: lua_pushcfunction(L, dummy); break;
        case 11:
            if (n >= 1)
                lua_pop(L, 1);
            break;
        default: /* t[i] = v at an integer key near the border: sparse and mixed tables */
            if (n >= 2 && lua_istable(L, -2))
                lua_rawseti(L, -2, (lua_Integer)lua_rawlen(L, -2) + (next_byte(r) % 5) - 1);
            else if (n >= 1)
                lua_pop(L, 1);
        }
    }
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
        base = lua_gettop(L);
    }
    struct reader r = {data, data + size};
    build(&r);
    int top = lua_gettop(L);
    for (int i = base + 1; i <= top; i++) {
        int nres = etl_json_encode(L, i, mt_idx, scratch_idx);
        if (lua_gettop(L) != top + nres)
            abort();
        if (nres == 2) {
            const char *msg = lua_tostring(L, -1);
            if (msg == NULL || strchr(msg, '\n') != NULL || !lua_isnil(L, -2))
                abort();
        } else {
            size_t len;
            const char *text = lua_tolstring(L, -1, &len);
            if (etl_json_decode(L, text, len, mt_idx, NULL, 0) != 1)
                abort(); /* the encoder wrote text the decoder refuses */
            int t = lua_type(L, i);
            if (t != LUA_TTABLE) { /* scalars: the text is a fixed point */
                if (etl_json_encode(L, -1, mt_idx, scratch_idx) != 1 ||
                    !lua_rawequal(L, -1, -3))
                    abort();
            }
        }
        lua_settop(L, top);
    }
    lua_settop(L, base);
    return 0;
}
