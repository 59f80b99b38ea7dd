/* pattern.c: string.find, string.match, string.gmatch and string.gsub for etlua's Lua state, with
 * Lua 5.4's results and error messages, and a bound on their work: their matcher
 * (src/pattern_match.c) counts its steps and, every few thousand, asks the budget whether the
 * running hook call is past its CPU time or a stop signal came (etl_budget_check), which raises
 * there if so. This file is what Lua sees: the arguments, the plain search, the captures as Lua
 * values, gmatch's iterator and gsub's replacements.
 *
 * Why not Lua's own functions (lstrlib.c): a pattern with several repetitions can backtrack for
 * hours on a short subject (("a"):rep(3000):find(("a-"):rep(12) .. "b")), and while Lua's matcher
 * works it runs no VM instruction, so the budget's hook, which is how a hook call is cut (see
 * budget.c), never fires: one rule could hang the pipeline and ignore SIGTERM. lstrlib.c has no
 * step limit and no callback, and no Debian library offers Lua patterns with one. So these
 * functions are the pattern language of the Lua 5.4 manual (section 6.4.1) with a step count;
 * tests/c/test_pattern.c holds their results and errors equal to Lua's own on a table of cases
 * and on random patterns and subjects. A plain search (find with plain = true, or a pattern with
 * no special character) is memmem: linear, nothing to bound.
 *
 * The budget module hands these out as budget.patterns; etlua.sandbox puts them into the
 * state's string library, which every string's metatable indexes (s:find in a script). Outside a
 * budgeted call etl_budget_check does nothing, so the host's own code sees Lua's behaviour.
 * Return conventions are Lua's: nil (fail) when nothing matches; malformed patterns raise. */
#define _GNU_SOURCE /* memmem */
#include "etlua/pattern.h"

#include "etlua/pattern_match.h"

#include <ctype.h>
#include <lauxlib.h>
#include <lua.h>
#include <string.h>

#define SPECIALS "^$*+?.([%-" /* a pattern without any of these is a plain search */

/* ---- captures as Lua values ------------------------------------------------------------- */

/* Capture i: its text (a pointer into the subject and its length), or for a () capture its
 * position, pushed, and POSITION returned. With no capture at all, capture 0 is the whole match
 * s..e. */
static ptrdiff_t get_capture(struct etl_pattern_matcher *m, int i, const char *s, const char *e,
                             const char **text)
{
    if (i >= m->ncap) {
        if (i != 0)
            luaL_error(m->L, "invalid capture index %%%d", i + 1);
        *text = s;
        return e - s;
    }
    ptrdiff_t len = m->cap[i].len;
    *text = m->cap[i].at;
    if (len == ETL_PATTERN_OPEN)
        luaL_error(m->L, "unfinished capture");
    if (len == ETL_PATTERN_POSITION)
        lua_pushinteger(m->L, (m->cap[i].at - m->subject) + 1);
    return len;
}

static void push_capture(struct etl_pattern_matcher *m, int i, const char *s, const char *e)
{
    const char *text;
    ptrdiff_t len = get_capture(m, i, s, e, &text);
    if (len != ETL_PATTERN_POSITION)
        lua_pushlstring(m->L, text, (size_t)len);
}

/* Every capture, or the whole match s..e when the pattern has none (none at all for find, which
 * passes s NULL). Returns how many were pushed. */
static int push_captures(struct etl_pattern_matcher *m, const char *s, const char *e)
{
    int n = m->ncap == 0 && s ? 1 : m->ncap;
    luaL_checkstack(m->L, n, "too many captures");
    for (int i = 0; i < n; i++)
        push_capture(m, i, s, e);
    return n;
}

/* ---- the four functions ----------------------------------------------------------------- */

/* A 1-based position, negative from the end, as a 0-based offset; may be past the end. */
static size_t start_offset(lua_Integer pos, size_t len)
{
    if (pos > 0)
        return (size_t)pos - 1;
    if (pos == 0 || pos < -(lua_Integer)len)
        return 0;
    return (size_t)((lua_Integer)len + pos);
}

static int has_specials(const char *p, size_t lp)
{
    for (size_t i = 0; i < lp; i++)
        if (p[i] != '\0' && strchr(SPECIALS, p[i]))
            return 1;
    return 0;
}

static int find_or_match(lua_State *L, int find)
{
    size_t ls, lp;
    const char *s = luaL_checklstring(L, 1, &ls);
    const char *p = luaL_checklstring(L, 2, &lp);
    size_t init = start_offset(luaL_optinteger(L, 3, 1), ls);
    if (init > ls) {
        luaL_pushfail(L);
        return 1;
    }
    if (find && (lua_toboolean(L, 4) || !has_specials(p, lp))) {
        const char *at = lp == 0 ? s + init : memmem(s + init, ls - init, p, lp);
        if (!at) {
            luaL_pushfail(L);
            return 1;
        }
        lua_pushinteger(L, (at - s) + 1);
        lua_pushinteger(L, (lua_Integer)((at - s) + (ptrdiff_t)lp));
        return 2;
    }
    struct etl_pattern_matcher m;
    int anchored = lp > 0 && *p == '^';
    if (anchored) {
        p++;
        lp--;
    }
    etl_pattern_init(&m, L, s, ls, p, lp);
    const char *from = s + init;
    do {
        const char *end = etl_pattern_match(&m, from, p);
        if (end) {
            if (!find)
                return push_captures(&m, from, end);
            lua_pushinteger(L, (from - s) + 1);
            lua_pushinteger(L, end - s);
            return push_captures(&m, NULL, NULL) + 2;
        }
    } while (from++ < m.subject_end && !anchored);
    luaL_pushfail(L);
    return 1;
}

static int pattern_find(lua_State *L) { return find_or_match(L, 1); }
static int pattern_match(lua_State *L) { return find_or_match(L, 0); }

struct gmatch_state {
    struct etl_pattern_matcher m;
    const char *next;     /* where the next search starts */
    const char *pattern;  /* its start (pattern_end is in m) */
    const char *last_end; /* the end of the last match: an empty match there is skipped */
};

static int gmatch_next(lua_State *L)
{
    struct gmatch_state *g = lua_touserdata(L, lua_upvalueindex(3));
    g->m.L = L; /* the state of this call (a coroutine's, say) */
    for (const char *from = g->next; from <= g->m.subject_end; from++) {
        const char *end = etl_pattern_match(&g->m, from, g->pattern);
        if (end && end != g->last_end) {
            g->next = g->last_end = end;
            return push_captures(&g->m, from, end);
        }
    }
    return 0;
}

static int pattern_gmatch(lua_State *L)
{
    size_t ls, lp;
    const char *s = luaL_checklstring(L, 1, &ls);
    const char *p = luaL_checklstring(L, 2, &lp);
    size_t init = start_offset(luaL_optinteger(L, 3, 1), ls);
    lua_settop(L, 2); /* the subject and the pattern stay alive as upvalues */
    struct gmatch_state *g = lua_newuserdatauv(L, sizeof *g, 0);
    if (init > ls)
        init = ls + 1; /* nothing to find, and no pointer far past the end */
    etl_pattern_init(&g->m, L, s, ls, p, lp);
    g->next = s + init;
    g->pattern = p;
    g->last_end = NULL;
    lua_pushcclosure(L, gmatch_next, 3);
    return 1;
}

/* A replacement string's text for the match s..e: %0 the match, %1-%9 a capture, %% a '%'. */
static void add_replacement_text(struct etl_pattern_matcher *m, luaL_Buffer *b, const char *s,
                                 const char *e)
{
    size_t len;
    const char *r = lua_tolstring(m->L, 3, &len);
    const char *pct;
    while ((pct = memchr(r, '%', len)) != NULL) {
        luaL_addlstring(b, r, (size_t)(pct - r));
        char c = pct[1]; /* the string's terminating '\0' after a final '%' */
        if (c == '%') {
            luaL_addchar(b, '%');
        } else if (c == '0') {
            luaL_addlstring(b, s, (size_t)(e - s));
        } else if (isdigit((unsigned char)c)) {
            const char *text;
            ptrdiff_t n = get_capture(m, c - '1', s, e, &text);
            if (n == ETL_PATTERN_POSITION)
                luaL_addvalue(b);
            else
                luaL_addlstring(b, text, (size_t)n);
        } else {
            luaL_error(m->L, "invalid use of '%%' in replacement string");
        }
        len -= (size_t)(pct + 2 - r);
        r = pct + 2;
    }
    luaL_addlstring(b, r, len);
}

/* Adds what replaces the match s..e to b. Returns whether that is a change: a function's or a
 * table's false or nil keeps the match's own text. */
static int add_replacement(struct etl_pattern_matcher *m, luaL_Buffer *b, const char *s,
                           const char *e, int kind)
{
    lua_State *L = m->L;
    if (kind == LUA_TFUNCTION) {
        lua_pushvalue(L, 3);
        int n = push_captures(m, s, e);
        lua_call(L, n, 1); /* inside gsub, which a Lua caller called: its errors are the caller's */
    } else if (kind == LUA_TTABLE) {
        push_capture(m, 0, s, e);
        lua_gettable(L, 3);
    } else {
        add_replacement_text(m, b, s, e);
        return 1;
    }
    if (!lua_toboolean(L, -1)) {
        lua_pop(L, 1);
        luaL_addlstring(b, s, (size_t)(e - s));
        return 0;
    }
    if (!lua_isstring(L, -1))
        return luaL_error(L, "invalid replacement value (a %s)", luaL_typename(L, -1));
    luaL_addvalue(b);
    return 1;
}

static int pattern_gsub(lua_State *L)
{
    size_t ls, lp;
    const char *s = luaL_checklstring(L, 1, &ls);
    const char *p = luaL_checklstring(L, 2, &lp);
    int kind = lua_type(L, 3);
    lua_Integer most = luaL_optinteger(L, 4, (lua_Integer)ls + 1);
    luaL_argexpected(L,
                     kind == LUA_TNUMBER || kind == LUA_TSTRING || kind == LUA_TFUNCTION ||
                         kind == LUA_TTABLE,
                     3, "string/function/table");
    luaL_Buffer b;
    luaL_buffinit(L, &b);
    int anchored = lp > 0 && *p == '^';
    if (anchored) {
        p++;
        lp--;
    }
    struct etl_pattern_matcher m;
    etl_pattern_init(&m, L, s, ls, p, lp);
    const char *from = s, *last_end = NULL;
    lua_Integer done = 0;
    int changed = 0;
    while (done < most) {
        const char *end = etl_pattern_match(&m, from, p);
        if (end && end != last_end) {
            done++;
            changed |= add_replacement(&m, &b, from, end, kind);
            from = last_end = end;
        } else if (from < m.subject_end) {
            luaL_addchar(&b, *from++);
        } else {
            break;
        }
        if (anchored)
            break;
    }
    if (changed) {
        luaL_addlstring(&b, from, (size_t)(m.subject_end - from));
        luaL_pushresult(&b);
    } else {
        lua_pushvalue(L, 1); /* nothing replaced: the subject itself */
    }
    lua_pushinteger(L, done);
    return 2;
}

void etl_pattern_push(lua_State *L)
{
    static const luaL_Reg funcs[] = {
        {"find", pattern_find},
        {"match", pattern_match},
        {"gmatch", pattern_gmatch},
        {"gsub", pattern_gsub},
        {NULL, NULL},
    };
    luaL_newlib(L, funcs);
}
