/* pattern.h: Lua's string pattern functions with a bound on their work (src/pattern.c). */
#ifndef ETLUA_PATTERN_H
#define ETLUA_PATTERN_H

#include <lua.h>

/* Pushes a new table {find, match, gmatch, gsub}: Lua 5.4's string functions of those names,
 * the same results and errors, but a call that works long looks at the running hook call's
 * budget (etl_budget_check) every few thousand steps, so a budget or a stop signal cuts it. */
void etl_pattern_push(lua_State *L);

#endif
