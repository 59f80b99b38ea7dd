/* test_budget.c: etlua.budget's watchdog thread (src/budget.c). It still cuts a call past its
 * CPU time after the change to its tick, and its stop at lua_close is prompt: the tick is a wait
 * the stop cuts short, not a sleep the close had to wait out (every run's end paid ~5 ms, up to
 * one tick, WATCH_MS, for nothing). A plain program: prints each failure and exits non-zero
 * when any check failed. */
#include "check.h"

#include <lauxlib.h>
#include <lua.h>
#include <lualib.h>
#include <time.h>

int luaopen_etlua_budget(lua_State *L);

#define ROUNDS 20
#define SLOW_CLOSE_MS 4.0 /* a close that waited for the tick: ~half of them with a sleep */

static double now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

static const char *run(lua_State *L, const char *code)
{
    if (luaL_dostring(L, code) != LUA_OK)
        return lua_tostring(L, -1);
    return lua_tostring(L, -1);
}

int main(void)
{
    int slow = 0;
    double worst = 0;
    for (int i = 0; i < ROUNDS; i++) {
        lua_State *L = luaL_newstate();
        luaL_openlibs(L);
        luaL_requiref(L, "etlua.budget", luaopen_etlua_budget, 0); /* starts the watchdog */
        lua_setglobal(L, "budget");
        if (i == 0) /* the watchdog still cuts a call at its budget */
            CHECK_STR_EQ(run(L,
                             "local ok, why = budget.call(30, function() while true do end end)\n"
                             "return tostring(ok) .. ' ' .. why"),
                         "false timeout");
        struct timespec pause = {0, (long)(1 + i % 7) * 1000000L}; /* a different phase each */
        nanosleep(&pause, NULL);
        double t0 = now_ms();
        lua_close(L); /* stops and joins the watchdog */
        double took = now_ms() - t0;
        if (took > SLOW_CLOSE_MS)
            slow++;
        if (took > worst)
            worst = took;
    }
    CHECK(slow <= 2, "%d of %d closes took over %.0f ms (worst %.1f ms): the stop waits for a tick",
          slow, ROUNDS, SLOW_CLOSE_MS, worst);
    return CHECK_DONE("test_budget");
}
