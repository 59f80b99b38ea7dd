/* pg_param.c: a statement's parameters, from Lua values to what libpq sends. nil -> NULL,
 * strings and numbers as text, booleans as true/false, arrays (tables) as text array literals
 * (pg_text.c) or, for a prepared statement whose parameter the server typed int4[], int8[],
 * "char"[] or text[], in the binary array format (array_send's layout: ndim, has-nulls flag,
 * element type, dimension and lower bound, then each element as a length and its bytes), which
 * the server reads without parsing text. An array that does not fit its type's binary form (an
 * element that is not an integer in range, not a one-byte ASCII string for "char", not a string
 * without NUL for text) goes as a text literal instead, so the server refuses it exactly as it
 * refuses the text. A C module that has its values in C arrays already (etlua.ledger_entries)
 * pushes the binary form itself (etl_pg_push_int_array, etl_pg_push_char_array): a userdata of
 * its own type that every statement sends as it is, with no Lua table in between; pg.array_values
 * reads one back (tests). */
#include "etlua/pg_internal.h"

#include <lauxlib.h>
#include <stdint.h>
#include <string.h>

#define OID_CHAR 18
#define OID_INT8 20
#define OID_INT4 23
#define OID_TEXT 25
#define OID_CHAR_ARRAY 1002
#define OID_INT4_ARRAY 1007
#define OID_TEXT_ARRAY 1009
#define OID_INT8_ARRAY 1016

/* The number of elements of the Lua array at idx: field n when it is an integer (arrays with
 * nil holes), else its raw length. */
lua_Integer etl_pg_array_len(lua_State *L, int idx)
{
    lua_Integer n = (lua_Integer)lua_rawlen(L, idx);
    if (lua_getfield(L, idx, "n") == LUA_TNUMBER && lua_isinteger(L, -1))
        n = lua_tointeger(L, -1);
    lua_pop(L, 1);
    return n;
}

static void put32(unsigned char *p, uint32_t v)
{
    p[0] = (unsigned char)(v >> 24);
    p[1] = (unsigned char)(v >> 16);
    p[2] = (unsigned char)(v >> 8);
    p[3] = (unsigned char)v;
}

/* Writes one int4 or int8 element of a binary array at w (its length, then its big-endian
 * value) and returns where the next one goes. */
static unsigned char *put_int_elem(unsigned char *w, uint32_t elem, uint64_t v)
{
    if (elem == OID_INT8) {
        put32(w, 8);
        put32(w + 4, (uint32_t)(v >> 32));
        put32(w + 8, (uint32_t)v);
        return w + 12;
    }
    put32(w, 4);
    put32(w + 4, (uint32_t)v);
    return w + 8;
}

/* The element type of an array type etlua sends in binary, and its fixed element size (0 for
 * text); 0 for any other type. */
static uint32_t binary_elem(Oid type, size_t *size)
{
    switch (type) {
    case OID_INT4_ARRAY:
        *size = 4;
        return OID_INT4;
    case OID_INT8_ARRAY:
        *size = 8;
        return OID_INT8;
    case OID_CHAR_ARRAY:
        *size = 1;
        return OID_CHAR;
    case OID_TEXT_ARRAY:
        *size = 0;
        return OID_TEXT;
    default:
        return 0;
    }
}

/* The bytes element i of the array at idx takes in binary form (without its length word), or
 * -1 when it has no binary form of this type (the array then goes as text); *null set for nil. */
static long long elem_size(lua_State *L, int idx, lua_Integer i, uint32_t elem, int *null)
{
    int t = lua_rawgeti(L, idx, i);
    long long r = -1;
    *null = t == LUA_TNIL;
    if (*null) {
        r = 0;
    } else if (elem == OID_INT4 || elem == OID_INT8) {
        if (lua_isinteger(L, -1)) {
            lua_Integer v = lua_tointeger(L, -1);
            if (elem == OID_INT8)
                r = 8;
            else if (v >= INT32_MIN && v <= INT32_MAX)
                r = 4;
        }
    } else if (t == LUA_TSTRING) {
        size_t len;
        const char *s = lua_tolstring(L, -1, &len);
        if (elem == OID_CHAR)
            r = len == 1 && s[0] > 0 && (unsigned char)s[0] < 0x80 ? 1 : -1;
        else if (memchr(s, '\0', len) == NULL && len <= INT32_MAX)
            r = (long long)len;
    }
    lua_pop(L, 1);
    return r;
}

/* The header of a binary array of n elements of type elem (12 bytes, 20 when n > 0); returns
 * where the first element goes. */
static unsigned char *array_header(unsigned char *p, uint32_t elem, size_t n, int hasnull)
{
    put32(p, n > 0 ? 1 : 0);
    put32(p + 4, (uint32_t)hasnull);
    put32(p + 8, elem);
    if (n == 0)
        return p + 12;
    put32(p + 12, (uint32_t)n);
    put32(p + 16, 1);
    return p + 20;
}

/* Pushes the binary form of the Lua array at idx as a parameter of type `type` (a userdata
 * holding the bytes) and returns its length, or returns -1 with nothing pushed when the array has
 * no binary form of that type. */
static long long binary_array(lua_State *L, int idx, Oid type)
{
    size_t fixed;
    uint32_t elem = binary_elem(type, &fixed);
    if (elem == 0)
        return -1;
    lua_Integer n = etl_pg_array_len(L, idx);
    if (n < 0 || n > INT32_MAX / 4)
        return -1;
    long long total = n > 0 ? 20 : 12;
    int hasnull = 0;
    for (lua_Integer i = 1; i <= n; i++) {
        int null;
        long long size = elem_size(L, idx, i, elem, &null);
        if (size < 0)
            return -1;
        hasnull |= null;
        total += 4 + size;
        if (total > INT32_MAX)
            return -1;
    }
    unsigned char *p = lua_newuserdatauv(L, (size_t)total, 0);
    unsigned char *w = array_header(p, elem, (size_t)n, hasnull);
    for (lua_Integer i = 1; i <= n; i++) {
        int t = lua_rawgeti(L, idx, i);
        if (t == LUA_TNIL) {
            put32(w, UINT32_MAX); /* -1: NULL */
            w += 4;
        } else if (elem == OID_INT4 || elem == OID_INT8) {
            w = put_int_elem(w, elem, (uint64_t)lua_tointeger(L, -1));
        } else {
            size_t len;
            const char *s = lua_tolstring(L, -1, &len);
            put32(w, (uint32_t)len);
            memcpy(w + 4, s, len);
            w += 4 + len;
        }
        lua_pop(L, 1);
    }
    return total;
}

long long etl_pg_binary_array(lua_State *L, int idx, unsigned type)
{
    return binary_array(L, lua_absindex(L, idx), (Oid)type);
}

/* ---- arrays made in C ---------------------------------------------------------------------- */

/* The userdata etl_pg_push_int_array and etl_pg_push_char_array push: an array parameter in its
 * binary form, whatever statement it goes to. */
struct etl_pg_array {
    Oid type; /* the array type: int4[], int8[] or "char"[] */
    int len;  /* bytes */
    unsigned char bytes[];
};

static struct etl_pg_array *new_array(lua_State *L, Oid type, uint32_t elem, size_t n, size_t size,
                                      unsigned char **w)
{
    if (n > (size_t)(INT32_MAX - 20) / (4 + size))
        luaL_error(L, "etlua.pg: an array of %I elements is too long", (LUAI_UACINT)n);
    size_t len = (n > 0 ? 20 : 12) + n * (4 + size);
    struct etl_pg_array *a = lua_newuserdatauv(L, sizeof *a + len, 0);
    a->type = type;
    a->len = (int)len;
    *w = array_header(a->bytes, elem, n, 0);
    if (luaL_newmetatable(L, ETL_PG_ARRAY_MT)) {
        lua_pushliteral(L, "etlua.pg.array");
        lua_setfield(L, -2, "__name");
    }
    lua_setmetatable(L, -2);
    return a;
}

void etl_pg_push_int_array(lua_State *L, unsigned type, const int64_t *v, size_t n)
{
    size_t size = 0;
    uint32_t elem = binary_elem((Oid)type, &size);
    if (elem != OID_INT4 && elem != OID_INT8)
        luaL_error(L, "etlua.pg: %u is not int4[] or int8[]", type);
    unsigned char *w;
    new_array(L, (Oid)type, elem, n, size, &w);
    for (size_t i = 0; i < n; i++) {
        if (elem == OID_INT4 && (v[i] < INT32_MIN || v[i] > INT32_MAX))
            luaL_error(L, "etlua.pg: %I is out of the range of int4", (LUAI_UACINT)v[i]);
        w = put_int_elem(w, elem, (uint64_t)v[i]);
    }
}

void etl_pg_push_char_array(lua_State *L, const char *v, size_t n)
{
    unsigned char *w;
    new_array(L, OID_CHAR_ARRAY, OID_CHAR, n, 1, &w);
    for (size_t i = 0; i < n; i++, w += 5) {
        if (v[i] <= 0 || (unsigned char)v[i] >= 0x80)
            luaL_error(L, "etlua.pg: a \"char\" array element is not an ASCII character");
        put32(w, 1);
        w[4] = (unsigned char)v[i];
    }
}

const unsigned char *etl_pg_array_bytes(lua_State *L, int idx, unsigned *type, size_t *len)
{
    const struct etl_pg_array *a = luaL_testudata(L, idx, ETL_PG_ARRAY_MT);
    if (a == NULL)
        return NULL;
    *type = (unsigned)a->type;
    *len = (size_t)a->len;
    return a->bytes;
}

static uint32_t get32(const unsigned char *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

/* pg.array_values(a) -> the elements of an array parameter made in C, as a Lua array (integers,
 * or one-character strings for "char"[]). For tests that look at what a statement was given. */
int etl_pg_array_values(lua_State *L)
{
    const struct etl_pg_array *a = luaL_checkudata(L, 1, ETL_PG_ARRAY_MT);
    const unsigned char *p = a->bytes;
    size_t n = get32(p) == 0 ? 0 : get32(p + 12);
    uint32_t elem = get32(p + 8);
    const unsigned char *w = p + (n > 0 ? 20 : 12);
    lua_createtable(L, n < INT32_MAX ? (int)n : 0, 0);
    for (size_t i = 0; i < n; i++) {
        uint32_t len = get32(w);
        w += 4;
        if (elem == OID_CHAR) {
            lua_pushlstring(L, (const char *)w, 1);
        } else if (elem == OID_INT4) {
            lua_pushinteger(L, (int32_t)get32(w));
        } else {
            uint64_t x = (uint64_t)get32(w) << 32 | get32(w + 4);
            lua_pushinteger(L, (lua_Integer)x);
        }
        w += len;
        lua_rawseti(L, -2, (lua_Integer)i + 1);
    }
    return 1;
}

static int bad_param(lua_State *L, int i, int idx)
{
    return luaL_error(L,
                      "bad parameter $%d (expected nil, string, number, boolean or array, got %s)",
                      i + 1, luaL_typename(L, idx));
}

/* Fills p from the nparams Lua values at first.. (types[i]: the server's type of parameter i,
 * or NULL when unknown: no binary form). Converted values replace the originals on the stack,
 * which keeps them alive until the call ends. Returns 0, or 3 with nil, msg, code pushed. */
int etl_pg_params(lua_State *L, int first, int nparams, const Oid *types, struct etl_pg_params *p)
{
    size_t n = (size_t)nparams + 1;
    char *mem = lua_newuserdatauv(L, n * (sizeof(char *) + 2 * sizeof(int)), 0);
    p->values = (const char **)(void *)mem;
    p->lengths = (int *)(void *)(mem + n * sizeof(char *));
    p->formats = p->lengths + n;
    p->binary = 0;
    for (int i = 0; i < nparams; i++) {
        int idx = first + i;
        size_t len = 0;
        p->lengths[i] = 0;
        p->formats[i] = 0;
        switch (lua_type(L, idx)) {
        case LUA_TNIL:
            p->values[i] = NULL;
            continue;
        case LUA_TBOOLEAN:
            p->values[i] = lua_toboolean(L, idx) ? "true" : "false";
            continue;
        case LUA_TTABLE:
            if (types != NULL) {
                long long blen = binary_array(L, idx, types[i]);
                if (blen >= 0) {
                    p->values[i] = lua_touserdata(L, -1);
                    lua_replace(L, idx);
                    p->lengths[i] = (int)blen;
                    p->formats[i] = 1;
                    p->binary = 1;
                    continue;
                }
            }
            etl_pg_array_literal(L, idx);
            lua_replace(L, idx);
            break;
        case LUA_TSTRING:
        case LUA_TNUMBER:
            break;
        case LUA_TUSERDATA: {
            unsigned type;
            const unsigned char *bytes = etl_pg_array_bytes(L, idx, &type, &len);
            if (bytes == NULL)
                return bad_param(L, i, idx);
            if (types != NULL && types[i] != type)
                return luaL_error(L,
                                  "bad parameter $%d (an array of type %u for a parameter of "
                                  "type %u)",
                                  i + 1, type, (unsigned)types[i]);
            p->values[i] = (const char *)bytes;
            p->lengths[i] = (int)len;
            p->formats[i] = 1;
            p->binary = 1;
            continue;
        }
        default:
            return bad_param(L, i, idx);
        }
        p->values[i] = lua_tolstring(L, idx, &len); /* converts numbers in place on the stack */
        if (memchr(p->values[i], '\0', len) != NULL) {
            lua_pushnil(L);
            lua_pushfstring(L, "parameter $%d contains a NUL byte", i + 1);
            lua_pushliteral(L, "22021");
            return 3;
        }
    }
    return 0;
}
