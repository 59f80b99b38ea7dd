/* budget.h: the CPU time and memory budget of one script hook call (src/budget.c, module etlua.budget).
 * One budgeted call runs at a time in the process (the host has one Lua state). */
#ifndef ETLUA_BUDGET_H
#define ETLUA_BUDGET_H

/* Called from the SIGTERM/SIGINT handler (async-signal safe): when a budgeted call is running,
 * arms a hook on its state that raises at the next instruction, the way lua.c's laction does
 * (on the Lua thread; from another thread it forwards the signal to it), so a stop lands even
 * inside an endless loop. Does nothing otherwise. */
void etl_budget_interrupt(void);

#endif
