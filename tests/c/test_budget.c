/* test_budget.c: etlua.budget's watchdog thread (src/budget.c). It still cuts a call past its
 * CPU time after the change to its tick, and its stop at lua_close is prompt: the tick is a wait
 * the stop cuts short, not a sleep the close had to wait out (every run's end paid ~5 ms, up to
 * one tick, WATCH_MS, for nothing). A plain program: prints each failure and exits non-zero
 * when any check failed.
 *
 * The close is timed against a state without the watchdog closed in the same round, and the
 * check is on medians: a sleep the stop waits out adds WATCH_MS/2 to the median whatever the
 * load, while a host that stalls the process now and then (a loaded CI machine, valgrind in
 * memcheck.drain) moves both closes of a round and only a few rounds. */
#include "etlua/modules.h"

#include "check.h"

#include <lauxlib.h>
#include <lua.h>
#include <lualib.h>
#include <stdlib.h>
#include <time.h>

#define ROUNDS 21
#define EXTRA_CLOSE_MS 2.5 /* a stop that waits out the tick adds ~WATCH_MS/2 = 5 ms */

static double now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

static int by_value(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static double median(double *v, int n)
{
    qsort(v, (size_t)n, sizeof *v, by_value);
    return v[n / 2];
}

/* Milliseconds lua_close of L takes. */
static double close_ms(lua_State *L)
{
    double t0 = now_ms();
    lua_close(L);
    return now_ms() - t0;
}

static const char *run(lua_State *L, const char *code)
{
    if (luaL_dostring(L, code) != LUA_OK)
        return lua_tostring(L, -1);
    return lua_tostring(L, -1);
}

int main(void)
{
    double with_watchdog[ROUNDS], plain[ROUNDS];
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
        lua_State *P = luaL_newstate(); /* the same state without the watchdog */
        luaL_openlibs(P);
        struct timespec pause = {0, (long)(1 + i % 7) * 1000000L}; /* a different phase each */
        nanosleep(&pause, NULL);
        with_watchdog[i] = close_ms(L); /* stops and joins the watchdog */
        plain[i] = close_ms(P);
    }
    double w = median(with_watchdog, ROUNDS), p = median(plain, ROUNDS);
    CHECK(w - p <= EXTRA_CLOSE_MS,
          "lua_close with the watchdog took %.1f ms against %.1f without (medians of %d): the stop "
          "waits for a tick",
          w, p, ROUNDS);
    return CHECK_DONE("test_budget");
}
