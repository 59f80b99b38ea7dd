/* pattern.c: string.find, string.match, string.gmatch and string.gsub for etlua's Lua state, with
 * Lua 5.4's results and error messages, and a bound on their work: the matcher counts its steps
 * and every STEPS_PER_LOOK steps asks the budget whether the running hook call is past its CPU
 * time or a stop signal came (etl_budget_check), which raises there if so.
 *
 * Why not Lua's own functions (lstrlib.c): a pattern with several repetitions can backtrack for
 * hours on a short subject (("a"):rep(3000):find(("a-"):rep(12) .. "b")), and while Lua's matcher
 * works it runs no VM instruction, so the budget's hook, which is how a hook call is cut (see
 * budget.c), never fires: one rule could hang the pipeline and ignore SIGTERM. lstrlib.c has no
 * step limit and no callback, and no Debian library offers Lua patterns with one. So this file
 * is the pattern language of the Lua 5.4 manual (section 6.4.1), a backtracking matcher like
 * Lua's, with a step count; spec/pattern_spec.lua holds its results equal to Lua's own on a
 * table of cases and on random patterns and subjects. A plain search (find with plain = true, or
 * a pattern with no special character) is memmem: linear, nothing to bound.
 *
 * The budget module hands these out as budget.patterns; etlua.sandbox puts them into the
 * state's string library, which every string's metatable indexes (s:find in a script). Outside a
 * budgeted call etl_budget_check does nothing, so the host's own code sees Lua's behaviour.
 * Return conventions are Lua's: nil (fail) when nothing matches; malformed patterns raise. */
#define _GNU_SOURCE /* memmem */
#include "etlua/pattern.h"

#include "etlua/budget.h"

#include <ctype.h>
#include <lauxlib.h>
#include <lua.h>
#include <string.h>

#define MAX_CAPTURES 32       /* as Lua's LUA_MAXCAPTURES */
#define MAX_DEPTH 200         /* nesting of the matcher's recursion, as Lua's MAXCCALLS */
#define STEPS_PER_LOOK 1024u  /* a power of two: steps between two looks at the budget */
#define SPECIALS "^$*+?.([%-" /* a pattern without any of these is a plain search */

enum { OPEN = -1, POSITION = -2 }; /* a capture's len until it is closed; a () capture's */

struct capture {
    const char *at;
    ptrdiff_t len; /* bytes, or OPEN, or POSITION */
};

struct matcher {
    lua_State *L;
    const char *subject, *subject_end;
    const char *pattern_end;
    int depth_left; /* recursion left before "pattern too complex" */
    int ncap;       /* captures opened so far in this attempt */
    unsigned steps;
    struct capture cap[MAX_CAPTURES];
};

static void step(struct matcher *m)
{
    if ((++m->steps & (STEPS_PER_LOOK - 1)) == 0)
        etl_budget_check(m->L);
}

static void matcher_init(struct matcher *m, lua_State *L, const char *s, size_t ls, const char *p,
                         size_t lp)
{
    m->L = L;
    m->subject = s;
    m->subject_end = s + ls;
    m->pattern_end = p + lp;
    m->steps = 0;
}

/* Ready for one more attempt at a start position. */
static void attempt(struct matcher *m)
{
    m->ncap = 0;
    m->depth_left = MAX_DEPTH;
}

/* ---- one character against one item ---------------------------------------------------- */

/* c in the class %cl (cl a letter: a c d g l p s u w x z, upper case for the complement), or c
 * equal to cl for any other character (%. is a dot). The C locale's ctype, as Lua's. */
static int in_class(int c, int cl)
{
    int yes;
    switch (tolower(cl)) {
    case 'a':
        yes = isalpha(c);
        break;
    case 'c':
        yes = iscntrl(c);
        break;
    case 'd':
        yes = isdigit(c);
        break;
    case 'g':
        yes = isgraph(c);
        break;
    case 'l':
        yes = islower(c);
        break;
    case 'p':
        yes = ispunct(c);
        break;
    case 's':
        yes = isspace(c);
        break;
    case 'u':
        yes = isupper(c);
        break;
    case 'w':
        yes = isalnum(c);
        break;
    case 'x':
        yes = isxdigit(c);
        break;
    case 'z':
        yes = c == 0;
        break; /* \0: gone from the manual, still in Lua 5.4's matcher */
    default:
        return cl == c;
    }
    return (yes != 0) != (isupper(cl) != 0);
}

/* c in the set [...] that opens at p and closes at close (its ']'). */
static int in_set(int c, const char *p, const char *close)
{
    int member = 1;
    p++;
    if (*p == '^') {
        member = 0; /* [^...]: the complement */
        p++;
    }
    for (; p < close; p++) {
        if (*p == '%') {
            p++;
            if (in_class(c, (unsigned char)*p))
                return member;
        } else if (p[1] == '-' && p + 2 < close) { /* a range x-y */
            if ((unsigned char)p[0] <= c && c <= (unsigned char)p[2])
                return member;
            p += 2;
        } else if ((unsigned char)*p == c) {
            return member;
        }
    }
    return !member;
}

/* The end of the single item (a character, ., %x or a set) that starts at p < pattern_end. */
static const char *item_end(struct matcher *m, const char *p)
{
    char c = *p++;
    if (c == '%') {
        if (p >= m->pattern_end)
            luaL_error(m->L, "malformed pattern (ends with '%%')");
        return p + 1;
    }
    if (c == '[') {
        if (*p == '^')
            p++;
        do { /* the set's first character is itself, even a ']' */
            if (p >= m->pattern_end)
                luaL_error(m->L, "malformed pattern (missing ']')");
            c = *p++;
            if (c == '%' && p < m->pattern_end)
                p++; /* %] and the like */
        } while (*p != ']');
        return p + 1;
    }
    return p;
}

/* Whether the character at s (if any) matches the item p..ep. */
static int item_matches(const struct matcher *m, const char *s, const char *p, const char *ep)
{
    if (s >= m->subject_end)
        return 0;
    int c = (unsigned char)*s;
    switch (*p) {
    case '.':
        return 1;
    case '%':
        return in_class(c, (unsigned char)p[1]);
    case '[':
        return in_set(c, p, ep - 1);
    default:
        return (unsigned char)*p == c;
    }
}

/* ---- the matcher ------------------------------------------------------------------------ */

static const char *match_here(struct matcher *m, const char *s, const char *p);

/* item* and item+: as many as match, then fewer until the rest matches. */
static const char *longest(struct matcher *m, const char *s, const char *p, const char *ep)
{
    ptrdiff_t n = 0;
    while (item_matches(m, s + n, p, ep)) {
        n++;
        step(m);
    }
    for (; n >= 0; n--) {
        const char *end = match_here(m, s + n, ep + 1);
        if (end)
            return end;
    }
    return NULL;
}

/* item-: as few as let the rest match. */
static const char *shortest(struct matcher *m, const char *s, const char *p, const char *ep)
{
    for (;;) {
        const char *end = match_here(m, s, ep + 1);
        if (end)
            return end;
        if (!item_matches(m, s, p, ep))
            return NULL;
        s++;
    }
}

/* %bxy at s: x, then text up to the y that balances it. p points at x. */
static const char *balanced(struct matcher *m, const char *s, const char *p)
{
    if (p >= m->pattern_end - 1)
        luaL_error(m->L, "malformed pattern (missing arguments to '%%b')");
    if (s >= m->subject_end || *s != p[0])
        return NULL;
    char open = p[0], close = p[1];
    int depth = 1;
    while (++s < m->subject_end) {
        step(m);
        if (*s == close) {
            if (--depth == 0)
                return s + 1;
        } else if (*s == open) {
            depth++;
        }
    }
    return NULL;
}

static const char *open_capture(struct matcher *m, const char *s, const char *p, ptrdiff_t kind)
{
    if (m->ncap >= MAX_CAPTURES)
        luaL_error(m->L, "too many captures");
    m->cap[m->ncap].at = s;
    m->cap[m->ncap].len = kind;
    m->ncap++;
    const char *end = match_here(m, s, p);
    if (!end)
        m->ncap--;
    return end;
}

static const char *close_capture(struct matcher *m, const char *s, const char *p)
{
    int i = m->ncap - 1;
    while (i >= 0 && m->cap[i].len != OPEN)
        i--;
    if (i < 0)
        luaL_error(m->L, "invalid pattern capture");
    m->cap[i].len = s - m->cap[i].at;
    const char *end = match_here(m, s, p);
    if (!end)
        m->cap[i].len = OPEN;
    return end;
}

/* %1 .. %9 at s: the same text as that (closed) capture. */
static const char *same_as_capture(struct matcher *m, const char *s, int digit)
{
    int i = digit - '1';
    if (i < 0 || i >= m->ncap || m->cap[i].len == OPEN)
        luaL_error(m->L, "invalid capture index %%%d", i + 1);
    size_t len = (size_t)m->cap[i].len; /* a position capture's is huge: no match */
    if ((size_t)(m->subject_end - s) >= len && memcmp(m->cap[i].at, s, len) == 0)
        return s + len;
    return NULL;
}

/* The end of the match of p (up to pattern_end) at s, or NULL. Recursive where the pattern
 * branches (captures, repetitions); a run of single items is a loop. */
static const char *match_here(struct matcher *m, const char *s, const char *p)
{
    if (m->depth_left-- == 0)
        luaL_error(m->L, "pattern too complex");
    const char *end = NULL;
    for (;;) {
        step(m);
        if (p == m->pattern_end) {
            end = s;
            break;
        }
        if (*p == '(') {
            end =
                p[1] == ')' ? open_capture(m, s, p + 2, POSITION) : open_capture(m, s, p + 1, OPEN);
            break;
        }
        if (*p == ')') {
            end = close_capture(m, s, p + 1);
            break;
        }
        if (*p == '$' && p + 1 == m->pattern_end) { /* a '$' elsewhere is itself */
            end = s == m->subject_end ? s : NULL;
            break;
        }
        if (*p == '%' && p[1] == 'b') {
            s = balanced(m, s, p + 2);
            if (!s)
                break;
            p += 4;
            continue;
        }
        if (*p == '%' &&
            p[1] == 'f') { /* frontier: the set holds s's character, not the one before */
            p += 2;
            if (*p != '[')
                luaL_error(m->L, "missing '[' after '%%f' in pattern");
            const char *ep = item_end(m, p);
            int before = s == m->subject ? '\0' : (unsigned char)s[-1];
            int here = s < m->subject_end ? (unsigned char)*s : '\0';
            if (in_set(before, p, ep - 1) || !in_set(here, p, ep - 1))
                break;
            p = ep;
            continue;
        }
        if (*p == '%' && isdigit((unsigned char)p[1])) {
            s = same_as_capture(m, s, p[1]);
            if (!s)
                break;
            p += 2;
            continue;
        }
        /* a single item, perhaps repeated */
        const char *ep = item_end(m, p);
        char repeat = ep < m->pattern_end ? *ep : '\0';
        if (!item_matches(m, s, p, ep)) {
            if (repeat == '*' || repeat == '?' || repeat == '-') {
                p = ep + 1; /* none of it is fine */
                continue;
            }
            break;
        }
        if (repeat == '?') {
            const char *with = match_here(m, s + 1, ep + 1);
            if (with) {
                end = with;
                break;
            }
            p = ep + 1;
            continue;
        }
        if (repeat == '+') {
            end = longest(m, s + 1, p, ep);
            break;
        }
        if (repeat == '*') {
            end = longest(m, s, p, ep);
            break;
        }
        if (repeat == '-') {
            end = shortest(m, s, p, ep);
            break;
        }
        s++;
        p = ep;
    }
    m->depth_left++;
    return end;
}

/* ---- captures as Lua values ------------------------------------------------------------- */

/* Capture i: its text (a pointer into the subject and its length), or for a () capture its
 * position, pushed, and POSITION returned. With no capture at all, capture 0 is the whole match
 * s..e. */
static ptrdiff_t get_capture(struct matcher *m, int i, const char *s, const char *e,
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
    if (len == OPEN)
        luaL_error(m->L, "unfinished capture");
    if (len == POSITION)
        lua_pushinteger(m->L, (m->cap[i].at - m->subject) + 1);
    return len;
}

static void push_capture(struct matcher *m, int i, const char *s, const char *e)
{
    const char *text;
    ptrdiff_t len = get_capture(m, i, s, e, &text);
    if (len != POSITION)
        lua_pushlstring(m->L, text, (size_t)len);
}

/* Every capture, or the whole match s..e when the pattern has none (none at all for find, which
 * passes s NULL). Returns how many were pushed. */
static int push_captures(struct matcher *m, const char *s, const char *e)
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
    struct matcher m;
    int anchored = lp > 0 && *p == '^';
    if (anchored) {
        p++;
        lp--;
    }
    matcher_init(&m, L, s, ls, p, lp);
    const char *from = s + init;
    do {
        attempt(&m);
        const char *end = match_here(&m, from, p);
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
    struct matcher m;
    const char *next;     /* where the next search starts */
    const char *pattern;  /* its start (pattern_end is in m) */
    const char *last_end; /* the end of the last match: an empty match there is skipped */
};

static int gmatch_next(lua_State *L)
{
    struct gmatch_state *g = lua_touserdata(L, lua_upvalueindex(3));
    g->m.L = L; /* the state of this call (a coroutine's, say) */
    for (const char *from = g->next; from <= g->m.subject_end; from++) {
        attempt(&g->m);
        const char *end = match_here(&g->m, from, g->pattern);
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
    matcher_init(&g->m, L, s, ls, p, lp);
    g->next = s + init;
    g->pattern = p;
    g->last_end = NULL;
    lua_pushcclosure(L, gmatch_next, 3);
    return 1;
}

/* A replacement string's text for the match s..e: %0 the match, %1-%9 a capture, %% a '%'. */
static void add_replacement_text(struct matcher *m, luaL_Buffer *b, const char *s, const char *e)
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
            if (n == POSITION)
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
static int add_replacement(struct matcher *m, luaL_Buffer *b, const char *s, const char *e,
                           int kind)
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
    struct matcher m;
    matcher_init(&m, L, s, ls, p, lp);
    const char *from = s, *last_end = NULL;
    lua_Integer done = 0;
    int changed = 0;
    while (done < most) {
        attempt(&m);
        const char *end = match_here(&m, from, p);
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
