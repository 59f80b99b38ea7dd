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
 *       Misuse (columns not a table, a column name not a string) raises. */
#include <lauxlib.h>
#include <lua.h>

static int etl_row_gather(lua_State *L)
{
    luaL_checktype(L, 2, LUA_TTABLE);
    if (lua_type(L, 1) != LUA_TTABLE) {
        lua_pushnil(L);
        return 1;
    }
    lua_Integer n = (lua_Integer)lua_rawlen(L, 2);
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

int luaopen_etlua_row(lua_State *L);
int luaopen_etlua_row(lua_State *L)
{
    lua_newtable(L);
    lua_pushcfunction(L, etl_row_gather);
    lua_setfield(L, -2, "gather");
    return 1;
}
