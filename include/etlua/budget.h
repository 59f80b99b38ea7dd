/* budget.h: the CPU time and memory budget of one script hook call (src/budget.c, module etlua.budget).
 * One budgeted call runs at a time in the process (the host has one Lua state). */
#ifndef ETLUA_BUDGET_H
#define ETLUA_BUDGET_H

#include <lua.h>

/* Called from the SIGTERM/SIGINT handler (async-signal safe): when a budgeted call is running,
 * arms a hook on its state that raises at the next instruction, the way lua.c's laction does
 * (on the Lua thread; from another thread it forwards the signal to it), so a stop lands even
 * inside an endless loop. Does nothing otherwise. */
void etl_budget_interrupt(void);

/* For C code that a hook call runs without running Lua instructions for long (the matcher of
 * src/pattern_match.c): raises the hook's own error, as its hook would, when the budgeted call running on L
 * is past its CPU time or a stop signal came; returns at once otherwise, and whenever no
 * budgeted call runs on L. Only from a C function Lua called (it raises). */
void etl_budget_check(lua_State *L);

#endif
