/* mask_rows.c: the masks of every message in C (etlua.mask's row_masks): what etlua.pii's
 * spec:row_masks computes for one decoded record, from the entries etlua.pii compiled. Every
 * message goes through it, and in Lua it was the largest single function of the interpreter's
 * profile (a lookup per path, the canonical form, the hash, two tables filled): here it is one C
 * call per message. etlua.pii stays the one parser of pii paths and the definition of what
 * row_masks returns (its reference_row_masks, in Lua); this file reads the entries it compiled
 * and applies the same rules, and spec/pii_row_masks_spec.lua holds the two to the same tables,
 * value by value, over every kind of value. The canonical forms are defined once, here
 * (push_canonical): etlua.pii applies them through mask.canonical.
 *
 *   local row_masks = mask.row_masks(entries, null, json_text, each_masks)
 *       entries: etlua.pii's compiled list, each {path = "user.email", canonical = nil|"ip"|
 *       "lower"|"trim", segments = {{name = "user"}, {name = "email"}}, each = false|true},
 *       read once here (the names kept as Lua strings); null: the JSON null value (left out like
 *       nil); json_text(v) -> the text a value that is not a string (a float, a table...) is
 *       masked by; each_masks(entry, rec, masker, masked, masks, n) -> n: the masks of an entry
 *       with [] (elements of lists), appended by Lua. Raises on entries that are not of that
 *       shape (misuse: pii.lua made them).
 *   mask.canonical(s, form) -> the text s is masked by under form (nil, "ip", "lower", "trim")
 *   row_masks(self, rec, masker [, masked_only]) -> masked, masks   (self ignored: a spec's
 *       method)
 *       masked[path] = hex (or, from each_masks, a list); masks = {path, hex, text, ...}: one
 *       triple per masked value in entry order. Absent and null values are left out; a string
 *       is masked by its canonical form, an integer by its digits, a boolean by true/false,
 *       anything else by json_text. A record that is not a table gives two empty tables.
 *       masked_only (true): masks is nil, its table and triples not made (a caller that keeps
 *       only masked: one table and six stores a message fewer); an entry with [] still gets a
 *       list to append to, dropped after.
 *
 * The canonical forms (as Lua's own functions would make them): "lower" is string.lower's byte-wise tolower, "trim" drops
 * the leading and trailing bytes string.find's %s matches (isspace), "ip" is canonical_ip's text
 * or the value itself when it is not a valid address (through the module's memo of the last
 * address, etl_mask_ip_memo_get: the script's own check of the same address, mask.canonical_ip,
 * then costs a comparison). A value left unchanged by its form is masked as that same string
 * (no copy is made). Lookups honour metatables as rec[name] does. */
#include "etlua/mask.h"

#include <ctype.h>
#include <string.h>

#include <lauxlib.h>
#include <lua.h>

enum form { FORM_NONE, FORM_IP, FORM_LOWER, FORM_TRIM };

/* One entry: its path's and names' positions in the names table (upvalue 2): path at at,
 * segment names at at + 1 .. at + nseg; an `each` entry keeps its entry table at at. */
struct row_entry {
    int at, nseg;
    unsigned char form, each;
};

struct row_plan {
    int n;
    int each;                      /* an entry has [] (each_masks appends to a masks list) */
    int null_type;                 /* lua_type of the null value: only a value of it can be null */
    struct etl_mask_ip_memo *memo; /* the module's memo (upvalue 7, kept alive by it) */
    struct row_entry e[];          /* n entries */
};

#define UV_PLAN lua_upvalueindex(1)
#define UV_NAMES lua_upvalueindex(2)
#define UV_NULL lua_upvalueindex(3)
#define UV_JSON_TEXT lua_upvalueindex(4)
#define UV_EACH lua_upvalueindex(5)
#define UV_HASHER_MT lua_upvalueindex(6)
#define UV_IP_MEMO lua_upvalueindex(7)

/* Pushes the text the string at idx is masked by under form; memo: the module's memo of the
 * last address made canonical (etl_mask_ip_memo_get). */
static void push_canonical(lua_State *L, int idx, int form, struct etl_mask_ip_memo *memo)
{
    size_t len;
    const char *s = lua_tolstring(L, idx, &len);
    switch (form) {
    case FORM_IP: {
        const char *text;
        size_t tlen;
        int same;
        if (etl_mask_ip_memo_get(memo, s, len, &text, &tlen, &same) == 0 || same)
            lua_pushvalue(L, idx);
        else
            lua_pushlstring(L, text, tlen);
        return;
    }
    case FORM_LOWER: {
        size_t i = 0;
        while (i < len && tolower((unsigned char)s[i]) == (unsigned char)s[i])
            i++;
        if (i == len) {
            lua_pushvalue(L, idx);
            return;
        }
        luaL_Buffer b;
        char *p = luaL_buffinitsize(L, &b, len);
        memcpy(p, s, i);
        for (; i < len; i++)
            p[i] = (char)tolower((unsigned char)s[i]);
        luaL_pushresultsize(&b, len);
        return;
    }
    case FORM_TRIM: {
        size_t a = 0, z = len;
        while (a < len && isspace((unsigned char)s[a]))
            a++;
        while (z > a && isspace((unsigned char)s[z - 1]))
            z--;
        if (a == 0 && z == len)
            lua_pushvalue(L, idx);
        else
            lua_pushlstring(L, s + a, z - a);
        return;
    }
    default:
        lua_pushvalue(L, idx);
    }
}

/* The form named by the string at idx (nil: none); -1 for another name. */
static int form_named(lua_State *L, int idx)
{
    if (lua_isnoneornil(L, idx))
        return FORM_NONE;
    const char *f = lua_tostring(L, idx);
    if (f != NULL && strcmp(f, "ip") == 0)
        return FORM_IP;
    if (f != NULL && strcmp(f, "lower") == 0)
        return FORM_LOWER;
    if (f != NULL && strcmp(f, "trim") == 0)
        return FORM_TRIM;
    return -1;
}

int etl_mask_l_canonical(lua_State *L)
{
    luaL_checktype(L, 1, LUA_TSTRING);
    int form = form_named(L, 2);
    if (form < 0)
        return luaL_argerror(L, 2, "nil, \"ip\", \"lower\" or \"trim\" expected");
    push_canonical(L, 1, form, lua_touserdata(L, lua_upvalueindex(1)));
    return 1;
}

/* Pushes the text the value at idx (not a string, not nil, not null) is masked by. */
static void push_json_text(lua_State *L, int idx)
{
    if (lua_isinteger(L, idx)) {
        lua_pushfstring(L, "%I",
                        (LUAI_UACINT)lua_tointeger(L, idx)); /* the JSON encoder's digits */
    } else if (lua_type(L, idx) == LUA_TBOOLEAN) {
        lua_pushstring(L, lua_toboolean(L, idx) ? "true" : "false");
    } else {
        lua_pushvalue(L, UV_JSON_TEXT);
        lua_pushvalue(L, idx);
        lua_call(L, 1, 1);
        if (lua_type(L, -1) != LUA_TSTRING)
            luaL_error(L, "etlua.mask: row_masks' json_text returned no text");
    }
}

/* row_masks(self, rec, masker) -> masked, masks (see the header). */
static int etl_mask_l_row_masks_run(lua_State *L)
{
    const struct row_plan *plan = lua_touserdata(L, UV_PLAN);
    int list = !lua_toboolean(L, 4); /* the masks list is made (else only for each_masks) */
    lua_settop(L, 3);
    lua_createtable(L, 0, plan->n); /* 4: masked */
    if (list || plan->each)
        lua_createtable(L, 3 * plan->n, 0); /* 5: masks */
    else
        lua_pushnil(L);
    if (lua_type(L, 2) != LUA_TTABLE)
        goto done;
    struct etl_mask_hasher *h = NULL; /* checked when first needed, as masker:hex would be */
    lua_Integer n = 0;
    for (int i = 0; i < plan->n; i++) {
        const struct row_entry *e = &plan->e[i];
        if (e->each) {
            lua_pushvalue(L, UV_EACH);
            lua_rawgeti(L, UV_NAMES, e->at); /* the entry's table */
            lua_pushvalue(L, 2);
            lua_pushvalue(L, 3);
            lua_pushvalue(L, 4);
            lua_pushvalue(L, 5);
            lua_pushinteger(L, n);
            lua_call(L, 6, 1);
            n = lua_tointeger(L, -1);
            lua_pop(L, 1);
            continue;
        }
        /* 6: the value at the path (nil when absent or below a value that is not a table) */
        lua_rawgeti(L, UV_NAMES, e->at + 1);
        lua_gettable(L, 2);
        for (int k = 2; k <= e->nseg; k++) {
            if (lua_type(L, -1) != LUA_TTABLE) {
                lua_pop(L, 1);
                lua_pushnil(L);
                break;
            }
            lua_rawgeti(L, UV_NAMES, e->at + k);
            lua_gettable(L, -2);
            lua_remove(L, -2);
        }
        /* the value's type once: a string is neither nil nor null (unless null is a string) */
        int vt = lua_type(L, 6);
        if (vt == LUA_TNIL || (vt == plan->null_type && lua_rawequal(L, 6, UV_NULL))) {
            lua_pop(L, 1);
            continue;
        }
        if (vt == LUA_TSTRING)
            push_canonical(L, 6, e->form, plan->memo); /* 7: the text */
        else
            push_json_text(L, 6);
        if (h == NULL)
            h = etl_mask_test_hasher(L, 3, UV_HASHER_MT);
        size_t len;
        const char *text = lua_tolstring(L, 7, &len);
        char hex[ETL_MASK_HEX_LEN + 1];
        if (etl_mask_hasher_hex(h, text, len, hex) != 0)
            return luaL_error(L, "etlua.mask: HMAC-SHA-256 failed in OpenSSL");
        lua_rawgeti(L, UV_NAMES, e->at);           /* 8: path */
        lua_pushlstring(L, hex, ETL_MASK_HEX_LEN); /* 9: hex */
        lua_pushvalue(L, 8);
        lua_pushvalue(L, 9);
        lua_rawset(L, 4); /* masked[path] = hex */
        if (list) {
            lua_rawseti(L, 5, n + 2);
            lua_rawseti(L, 5, n + 1);
            lua_rawseti(L, 5, n + 3);
            lua_pop(L, 1); /* the value */
        } else {
            lua_settop(L, 5);
        }
        n += 3;
    }
done:
    if (!list) { /* masked alone: nil for masks (each_masks' list dropped) */
        lua_pushnil(L);
        lua_replace(L, 5);
    }
    return 2;
}

/* Reads entries[i][field] onto the stack as a string, or raises (the entries are pii.lua's). */
static const char *entry_string(lua_State *L, int entry, const char *field, int i)
{
    if (lua_getfield(L, entry, field) != LUA_TSTRING)
        luaL_error(L, "etlua.mask: row_masks: entries[%d].%s is not a string", i, field);
    return lua_tostring(L, -1);
}

int etl_mask_l_row_masks(lua_State *L)
{
    luaL_checktype(L, 1, LUA_TTABLE);
    luaL_checkany(L, 2);
    luaL_checktype(L, 3, LUA_TFUNCTION);
    luaL_checktype(L, 4, LUA_TFUNCTION);
    lua_settop(L, 4);
    int n = (int)luaL_len(L, 1);
    struct row_plan *plan =
        lua_newuserdatauv(L, sizeof *plan + (size_t)n * sizeof plan->e[0], 0); /* 5 */
    plan->n = 0;
    plan->each = 0;
    plan->null_type = lua_type(L, 2);
    plan->memo = lua_touserdata(L, lua_upvalueindex(1));
    lua_newtable(L); /* 6: names */
    enum { NAMES = 6, ENTRY = 7 };
    int at = 1;
    for (int i = 1; i <= n; i++) {
        if (lua_rawgeti(L, 1, i) != LUA_TTABLE) /* 7 */
            return luaL_error(L, "etlua.mask: row_masks: entries[%d] is not a table", i);
        struct row_entry *e = &plan->e[i - 1];
        e->at = at;
        lua_getfield(L, ENTRY, "each");
        e->each = (unsigned char)lua_toboolean(L, -1);
        plan->each |= e->each;
        lua_pop(L, 1);
        lua_getfield(L, ENTRY, "canonical");
        int form = form_named(L, -1);
        if (form < 0)
            return luaL_error(L, "etlua.mask: row_masks: entries[%d].canonical is unknown", i);
        e->form = (unsigned char)form;
        lua_pop(L, 1);
        if (e->each) {
            e->nseg = 0;
            lua_pushvalue(L, ENTRY);
            lua_rawseti(L, NAMES, at++);
        } else {
            entry_string(L, ENTRY, "path", i);
            lua_rawseti(L, NAMES, at++);
            if (lua_getfield(L, ENTRY, "segments") != LUA_TTABLE)
                return luaL_error(L, "etlua.mask: row_masks: entries[%d].segments is not a table",
                                  i);
            e->nseg = (int)luaL_len(L, -1);
            if (e->nseg < 1)
                return luaL_error(L, "etlua.mask: row_masks: entries[%d] has no segments", i);
            for (int k = 1; k <= e->nseg; k++) {
                if (lua_rawgeti(L, -1, k) != LUA_TTABLE)
                    return luaL_error(L, "etlua.mask: row_masks: entries[%d].segments[%d]", i, k);
                entry_string(L, lua_gettop(L), "name", i);
                lua_rawseti(L, NAMES, at++);
                lua_pop(L, 1);
            }
            lua_pop(L, 1); /* segments */
        }
        lua_pop(L, 1); /* the entry */
        plan->n = i;
    }
    lua_pushvalue(L, 2); /* null */
    lua_pushvalue(L, 3); /* json_text */
    lua_pushvalue(L, 4); /* each_masks */
    luaL_getmetatable(L, ETL_MASK_HASHER_MT);
    lua_pushvalue(L, lua_upvalueindex(1)); /* the module's memo of the last address */
    lua_pushcclosure(L, etl_mask_l_row_masks_run, 7);
    return 1;
}
