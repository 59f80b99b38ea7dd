/* pattern_match.c: the matcher of Lua's string patterns, for src/pattern.c's string functions
 * (include/etlua/pattern_match.h). A backtracking matcher like Lua's own (lstrlib.c), of the
 * pattern language of the Lua 5.4 manual (section 6.4.1), with the same results and error
 * messages, and one addition: it counts its steps, and every ETL_PATTERN_STEPS_PER_LOOK of them
 * calls etl_budget_check, which raises the hook's error when the running hook call is past its
 * CPU time or a stop signal came. Why it exists: src/pattern.c's header. */
#include "etlua/pattern_match.h"

#include "etlua/budget.h"

#include <ctype.h>
#include <lauxlib.h>
#include <string.h>

#define MAX_DEPTH 200 /* nesting of the matcher's recursion, as Lua's MAXCCALLS */

static void step(struct etl_pattern_matcher *m)
{
    if ((++m->steps & (ETL_PATTERN_STEPS_PER_LOOK - 1)) == 0)
        etl_budget_check(m->L);
}

void etl_pattern_init(struct etl_pattern_matcher *m, lua_State *L, const char *s, size_t ls,
                      const char *p, size_t lp)
{
    m->L = L;
    m->subject = s;
    m->subject_end = s + ls;
    m->pattern_end = p + lp;
    m->steps = 0;
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
static const char *item_end(struct etl_pattern_matcher *m, const char *p)
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
static int item_matches(const struct etl_pattern_matcher *m, const char *s, const char *p,
                        const char *ep)
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

static const char *match_here(struct etl_pattern_matcher *m, const char *s, const char *p);

/* item* and item+: as many as match, then fewer until the rest matches. */
static const char *longest(struct etl_pattern_matcher *m, const char *s, const char *p,
                           const char *ep)
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
static const char *shortest(struct etl_pattern_matcher *m, const char *s, const char *p,
                            const char *ep)
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
static const char *balanced(struct etl_pattern_matcher *m, const char *s, const char *p)
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

static const char *open_capture(struct etl_pattern_matcher *m, const char *s, const char *p,
                                ptrdiff_t kind)
{
    if (m->ncap >= ETL_PATTERN_MAX_CAPTURES)
        luaL_error(m->L, "too many captures");
    m->cap[m->ncap].at = s;
    m->cap[m->ncap].len = kind;
    m->ncap++;
    const char *end = match_here(m, s, p);
    if (!end)
        m->ncap--;
    return end;
}

static const char *close_capture(struct etl_pattern_matcher *m, const char *s, const char *p)
{
    int i = m->ncap - 1;
    while (i >= 0 && m->cap[i].len != ETL_PATTERN_OPEN)
        i--;
    if (i < 0)
        luaL_error(m->L, "invalid pattern capture");
    m->cap[i].len = s - m->cap[i].at;
    const char *end = match_here(m, s, p);
    if (!end)
        m->cap[i].len = ETL_PATTERN_OPEN;
    return end;
}

/* %1 .. %9 at s: the same text as that (closed) capture. */
static const char *same_as_capture(struct etl_pattern_matcher *m, const char *s, int digit)
{
    int i = digit - '1';
    if (i < 0 || i >= m->ncap || m->cap[i].len == ETL_PATTERN_OPEN)
        luaL_error(m->L, "invalid capture index %%%d", i + 1);
    size_t len = (size_t)m->cap[i].len; /* a position capture's is huge: no match */
    if ((size_t)(m->subject_end - s) >= len && memcmp(m->cap[i].at, s, len) == 0)
        return s + len;
    return NULL;
}

/* The end of the match of p (up to pattern_end) at s, or NULL. Recursive where the pattern
 * branches (captures, repetitions); a run of single items is a loop. */
static const char *match_here(struct etl_pattern_matcher *m, const char *s, const char *p)
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
            end = p[1] == ')' ? open_capture(m, s, p + 2, ETL_PATTERN_POSITION)
                              : open_capture(m, s, p + 1, ETL_PATTERN_OPEN);
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

const char *etl_pattern_match(struct etl_pattern_matcher *m, const char *s, const char *p)
{
    m->ncap = 0;
    m->depth_left = MAX_DEPTH;
    return match_here(m, s, p);
}
