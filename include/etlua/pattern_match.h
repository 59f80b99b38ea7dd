/* pattern_match.h: the matcher of Lua's string patterns (src/pattern_match.c), shared by the
 * string functions of src/pattern.c. The pattern language is Lua 5.4's (manual section 6.4.1);
 * the matcher counts its steps and every ETL_PATTERN_STEPS_PER_LOOK steps calls
 * etl_budget_check, which raises when the running hook call is past its time or stopped.
 * Malformed patterns raise Lua's own error messages (luaL_error on the matcher's state). */
#ifndef ETLUA_PATTERN_MATCH_H
#define ETLUA_PATTERN_MATCH_H

#include <lua.h>
#include <stddef.h>

#define ETL_PATTERN_MAX_CAPTURES 32      /* as Lua's LUA_MAXCAPTURES */
#define ETL_PATTERN_STEPS_PER_LOOK 1024u /* a power of two: steps between two looks at the budget */

/* a capture's len while it is open, and a () capture's */
enum { ETL_PATTERN_OPEN = -1, ETL_PATTERN_POSITION = -2 };

struct etl_pattern_capture {
    const char *at;
    ptrdiff_t len; /* bytes, or ETL_PATTERN_OPEN, or ETL_PATTERN_POSITION */
};

struct etl_pattern_matcher {
    lua_State *L; /* where errors are raised */
    const char *subject, *subject_end;
    const char *pattern_end;
    int depth_left; /* recursion left before "pattern too complex" */
    int ncap;       /* captures opened so far in this attempt */
    unsigned steps;
    struct etl_pattern_capture cap[ETL_PATTERN_MAX_CAPTURES];
};

/* A matcher of the subject s (ls bytes) against the pattern p (lp bytes, without a leading '^'
 * the caller treats as an anchor). Both stay owned by the caller and must outlive it. */
void etl_pattern_init(struct etl_pattern_matcher *m, lua_State *L, const char *s, size_t ls,
                      const char *p, size_t lp);

/* The end of the match of the pattern from p at s, or NULL; its captures in m->cap[0..ncap).
 * Starts a new attempt: the captures of the last one are forgotten. */
const char *etl_pattern_match(struct etl_pattern_matcher *m, const char *s, const char *p);

#endif
