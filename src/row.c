/* row.c: the etlua.row module. Owns the one step of etlua.rows (src/lua/etlua/rows.lua) that
 * runs for every row of every message: reading a row table keyed by column name into an array
 * in column order, and telling whether it needs anything more than that.
 *
 * Why C: in Lua the same work is one type() per value and one next() per key of the row (to
 * find a key that is not a column), each a call into C, and those calls cost more than the rest
 * of the row's handling together (about 10 k instructions for a row of 7 columns, against 3 k
 * here). What a value becomes, which values are refused and the messages saying why stay in
 * rows.lua: this only sorts the common row out from the rest.
 *
 * Lua API:
 *   row.gather(t, columns) -> row, plain  |  nil when t is not a table
 *       t: the row keyed by column name (read with t[name], so __index applies, as in Lua);
 *       columns: the output's column names, in order.
 *       row[i] = t[columns[i]] (nil stays a hole); plain is true when every value found is a
 *       string or an integer and t holds no other key than the columns it has values for (its
 *       raw keys are counted with next, as rows.lua does). When plain is false the caller
 *       looks at row and t again (a float, a boolean, null, a table, an unknown key).
 *       Misuse (columns not a table, a column name not a string) raises. A columns table is
 *       not to be changed after its first gather: its names are kept (below).
 *
 * A row without a metatable is read in one walk of its keys (the check for a key that is not
 * a column needs that walk anyway: Lua's API counts no table's keys), each key's value moved
 * straight to its column's place; a key that is not found among the names sends the row the
 * general way (a lookup per column, then the walk). callgrind, 5,000 login rows of 7 columns:
 * 3.70 k -> 3.47 k instructions a row (lua_next is still 1.2 k of it). */
#include "etlua/modules.h"

#include <stdint.h>
#include <string.h>

#include <lauxlib.h>
#include <lua.h>

/* A columns table's names by identity (lua_topointer of each string), made at its first gather
 * and kept in the weak-keyed table of gather's upvalue (columns -> this userdata; the strings
 * held in its user value, so no pointer here can come to name another string). A column name of
 * at most 40 bytes is one Lua string whatever made it (Lua interns short strings), so a row's
 * key is that column exactly when it is that pointer. A longer name only misses (the row then
 * takes the general path). The columns table is not changed after its first gather (rows.lua's
 * are made once per loaded script). */
struct etl_row_columns {
    lua_Integer n;
    int dup;              /* a name given twice: the walk is not used (each column is read) */
    size_t mask;          /* slots - 1 */
    unsigned short *slot; /* 2^k >= 2n slots: 1 + the column of the name hashed there, 0 empty */
    const void *name[];   /* n names, then the slots */
};

/* The slot a name's pointer starts its probe at (Fibonacci hashing of the address). A row's key
 * is found by one or two probes instead of a search through the names from the last column
 * found: a login row's keys come in its table's hash order, not the columns' (callgrind, 5,000
 * rows of 7 columns: ~40 -> ~15 instructions a key). */
static size_t name_slot(const struct etl_row_columns *c, const void *p)
{
    return (size_t)(((uint64_t)(uintptr_t)p * 0x9e3779b97f4a7c15ULL) >> 40) & c->mask;
}

/* The names of the columns table at 2, or NULL when there are too many to keep. Raises when a
 * column is not a string (misuse). */
static const struct etl_row_columns *columns_of(lua_State *L, lua_Integer n)
{
    if (lua_rawequal(L, 2, lua_upvalueindex(2))) { /* the columns of the last call */
        const struct etl_row_columns *c = lua_touserdata(L, lua_upvalueindex(3));
        return c->n == n && !c->dup ? c : NULL;
    }
    lua_pushvalue(L, 2);
    if (lua_rawget(L, lua_upvalueindex(1)) == LUA_TUSERDATA) {
        const struct etl_row_columns *c = lua_touserdata(L, -1);
        lua_replace(L, lua_upvalueindex(3));
        lua_pushvalue(L, 2);
        lua_replace(L, lua_upvalueindex(2));
        return c->n == n && !c->dup ? c : NULL;
    }
    lua_pop(L, 1);
    if (n > 4096)
        return NULL;
    size_t slots = 2;
    while (slots < 2 * (size_t)n)
        slots *= 2;
    struct etl_row_columns *c = lua_newuserdatauv(
        L, sizeof *c + (size_t)n * sizeof c->name[0] + slots * sizeof c->slot[0], 1);
    c->n = n;
    c->dup = 0;
    c->mask = slots - 1;
    c->slot = (unsigned short *)(void *)&c->name[n];
    memset(c->slot, 0, slots * sizeof c->slot[0]);
    lua_createtable(L, (int)n, 0);
    for (lua_Integer i = 1; i <= n; i++) {
        if (lua_rawgeti(L, 2, i) != LUA_TSTRING)
            luaL_error(L, "etlua.row: gather: column %I is not a string", (LUAI_UACINT)i);
        const void *p = lua_topointer(L, -1);
        c->name[i - 1] = p;
        size_t h = name_slot(c, p);
        while (c->slot[h] != 0 && c->name[c->slot[h] - 1] != p)
            h = (h + 1) & c->mask;
        if (c->slot[h] != 0)
            c->dup = 1;
        else
            c->slot[h] = (unsigned short)i;
        lua_rawseti(L, -2, i);
    }
    lua_setiuservalue(L, -2, 1);
    lua_pushvalue(L, 2);
    lua_pushvalue(L, -2);
    lua_rawset(L, lua_upvalueindex(1));
    lua_replace(L, lua_upvalueindex(3));
    lua_pushvalue(L, 2);
    lua_replace(L, lua_upvalueindex(2));
    return c->dup ? NULL : c;
}

/* The common case of a row without a metatable (t[name] is then its raw value): one walk of its
 * keys with lua_next, each key found among the column names by identity and its value moved to
 * its place, instead of a lookup per column and then the same walk to find a key that is not a
 * column. Returns 2 (row and plain pushed), or 0 when a key is not a column name (or no string):
 * the caller then gathers the general way, from the stack as it was. */
static int gather_walk(lua_State *L, const struct etl_row_columns *c)
{
    lua_createtable(L, (int)c->n, 0); /* 3: the row */
    int plain = 1;
    lua_pushnil(L);
    while (lua_next(L, 1)) {
        const void *key = lua_type(L, -2) == LUA_TSTRING ? lua_topointer(L, -2) : NULL;
        size_t h = name_slot(c, key);
        unsigned i;
        while ((i = c->slot[h]) != 0 && c->name[i - 1] != key)
            h = (h + 1) & c->mask;
        if (i == 0) { /* not a column name */
            lua_settop(L, 2);
            return 0;
        }
        int t = lua_type(L, -1);
        if (t != LUA_TSTRING && !(t == LUA_TNUMBER && lua_isinteger(L, -1)))
            plain = 0;
        lua_rawseti(L, 3, i);
    }
    lua_pushboolean(L, plain);
    return 2;
}

static int etl_row_gather(lua_State *L)
{
    luaL_checktype(L, 2, LUA_TTABLE);
    if (lua_type(L, 1) != LUA_TTABLE) {
        lua_pushnil(L);
        return 1;
    }
    lua_Integer n = (lua_Integer)lua_rawlen(L, 2);
    lua_settop(L, 2);
    if (n > 0 && !lua_getmetatable(L, 1)) {
        const struct etl_row_columns *c = columns_of(L, n);
        if (c != NULL && gather_walk(L, c) == 2)
            return 2;
    }
    lua_settop(L, 2);
    lua_createtable(L, n > 0 && n < 1 << 20 ? (int)n : 0, 0); /* 3: the row */
    lua_Integer found = 0;
    int plain = 1;
    for (lua_Integer i = 1; i <= n; i++) {
        if (lua_rawgeti(L, 2, i) != LUA_TSTRING)
            return luaL_error(L, "etlua.row: gather: column %I is not a string", (LUAI_UACINT)i);
        int t = lua_gettable(L, 1);
        if (t == LUA_TNIL) {
            lua_pop(L, 1);
            continue;
        }
        found++;
        if (t != LUA_TSTRING && !(t == LUA_TNUMBER && lua_isinteger(L, -1)))
            plain = 0;
        lua_rawseti(L, 3, i);
    }
    if (plain) { /* a key beyond the `found` columns with a value is one that is not a column */
        lua_Integer keys = 0;
        lua_pushnil(L);
        while (lua_next(L, 1)) {
            lua_pop(L, 1);
            if (++keys > found) {
                lua_pop(L, 1);
                plain = 0;
                break;
            }
        }
    }
    lua_pushboolean(L, plain);
    return 2;
}

int luaopen_etlua_row(lua_State *L)
{
    lua_newtable(L);
    lua_newtable(L); /* columns table -> its names (struct etl_row_columns), weak keys */
    lua_createtable(L, 0, 1);
    lua_pushliteral(L, "k");
    lua_setfield(L, -2, "__mode");
    lua_setmetatable(L, -2);
    lua_pushboolean(L, 0); /* the columns table of the last call (none yet) */
    lua_pushboolean(L, 0); /* and its names */
    lua_pushcclosure(L, etl_row_gather, 3);
    lua_setfield(L, -2, "gather");
    return 1;
}
