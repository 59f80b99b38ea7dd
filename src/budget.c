/* budget.c: the etlua.budget module. Owns the budget of one call into untrusted script code (a
 * pipeline script's validate/transform, a rule's check, the top level of a script or rule file):
 * a time limit, a memory limit, a stop signal, and turning whatever the call raised into text.
 *
 * Time is the CPU time of the hook: the Lua thread's own CPU clock (pthread_getcpuclockid), not
 * the wall clock, so a call whose thread is descheduled on a loaded host, or a process stopped
 * and continued, is not cut; the sandbox gives hooks no blocking call, so CPU time is what the
 * script's code consumes. Should the thread's CPU clock be unavailable (pthread_getcpuclockid
 * or clock_gettime on it fails), the watchdog falls back to the monotonic (wall) clock.
 * How, the way lua.c stops a script on Ctrl-C: nothing runs while a call stays within its
 * budget (a count hook would slow every Lua instruction about twofold), and budget.call reads
 * no clock (a thread CPU clock is a system call, not a vDSO read). A watchdog thread wakes
 * every WATCH_MS; the first time it sees a new call it records the Lua thread's CPU clock, and
 * once that clock has advanced by the call's ms it sends BUDGET_SIG to the Lua thread, whose
 * handler (like lua.c's laction) arms a hook for every instruction; the hook raises at once.
 * So a call is cut after between ms and ms + WATCH_MS of CPU time (what it used before the
 * watchdog's first look is not counted), and a call shorter than one tick costs no clock read. Once raised it raises again at every instruction, so a script that catches
 * the error meets it at once (the sandbox's pcall also re-raises it, see etlua.sandbox).
 * Stop: the SIGTERM/SIGINT handler (src/host.c) calls etl_budget_interrupt(), which arms the
 * same hook on the running call; the hook raises when a stop was requested, and a call asked
 * for after a stop does not start (false, "stopped").
 * Memory: during a call the state's allocator is wrapped (only then: the host's own code pays
 * nothing); live memory may grow by at most BUDGET_MEMORY_MB (Lua runs a full emergency
 * collection before giving up), so string.rep, table.concat or gsub of a huge size fail at once
 * with "not enough memory".
 * C functions: a C function runs no VM instruction, so the hook cannot cut it while it runs.
 * The library functions a hook may call take time about linear in their input (table.sort's is
 * n log n), and the memory limit bounds the input. Lua's string patterns are the exception: they
 * can backtrack for hours on a short subject. So string.find, match, gmatch and gsub in the
 * sandbox are budget.patterns (src/pattern.c), whose matcher (src/pattern_match.c) calls
 * etl_budget_check as it works: the hook's error is raised there.
 *
 * Lua API:
 *   budget.call(ms, fn, ...) -> true, results...
 *                            |  false, why, text   why: "timeout" | "stopped" | "memory" | "error"
 *       text: the error as text: a string as is, a number as text, a value with __tostring
 *       converted under the same budget, anything else "(error object is a T value)".
 *       Misuse (ms not a positive integer, fn not a function, a call inside a call) raises.
 *   budget.expired() -> true when the running call is past its CPU time or stopped
 *   budget.patterns -> {find, match, gmatch, gsub}: Lua's string functions of those names, whose
 *       matcher looks at the running call's budget as it works (src/pattern.c)
 *   budget.MEMORY_MB, budget.WATCH_MS
 * One budgeted call runs at a time in the process (the host has one Lua state). The allocator
 * counts only while a call runs: a block allocated before and freed during it counts as freed,
 * which only loosens the limit. */
#include "etlua/budget.h"

#include "etlua/host.h"
#include "etlua/modules.h"
#include "etlua/pattern.h"

#include <errno.h>
#include <lauxlib.h>
#include <lua.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdint.h>
#include <string.h>
#include <time.h>

#define BUDGET_MEMORY_MB 64 /* live memory a call may add */
#define WATCH_MS 10         /* how often the watchdog looks at the running call */
#define BUDGET_SIG SIGURG   /* watchdog -> Lua thread: arm the hook (ignored by default) */

enum { WHY_NONE, WHY_TIMEOUT, WHY_STOPPED };

static lua_State *volatile active_L; /* the state running a budgeted call, or NULL */
static volatile sig_atomic_t why;    /* why the running call is being stopped */
static _Atomic int64_t budget_ns;    /* CPU time the running call may use */
static _Atomic unsigned call_gen;    /* odd while a call runs: +1 as it starts and as it ends */
static _Atomic unsigned expired_gen; /* the call the watchdog found past its budget */
static pthread_t lua_thread;         /* the thread running the call */
static pthread_t watchdog;
static _Atomic int watchdog_state; /* 0 not started, 1 running, 2 asked to quit */
static pthread_mutex_t watch_mu = PTHREAD_MUTEX_INITIALIZER; /* the tick's wait, and its end */
static pthread_cond_t watch_cv; /* on CLOCK_MONOTONIC: signalled to end the watchdog at once */

static lua_Alloc base_alloc; /* the state's own allocator, wrapped during a call */
static void *base_ud;
static long long call_bytes; /* bytes allocated minus bytes freed since the call started */
static int mem_refused;      /* the wrapper refused an allocation during the running call */

/* The time on clock, or on the monotonic clock should clock fail. */
static int64_t etl_budget_clock_ns(clockid_t clock)
{
    struct timespec ts;
    if (clock_gettime(clock, &ts) != 0)
        clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

/* Why the budgeted call running on L is to stop now (recorded in why), or WHY_NONE: none runs on
 * L, or it is within its time and no stop was asked for. */
static int etl_budget_due(lua_State *L)
{
    if (active_L != L)
        return WHY_NONE;
    if (why == WHY_NONE) {
        if (etl_host_stop_requested())
            why = WHY_STOPPED;
        else if (atomic_load(&expired_gen) == atomic_load(&call_gen))
            why = WHY_TIMEOUT;
    }
    return why;
}

static void etl_budget_hook(lua_State *L, lua_Debug *ar);

/* Raises the call's stop; from now on at every instruction too: even an error caught by a pcall
 * meets the next. */
static void etl_budget_raise(lua_State *L)
{
    lua_sethook(L, etl_budget_hook, LUA_MASKCOUNT, 1);
    luaL_error(L, why == WHY_STOPPED ? "stopped by a stop signal" : "ran past its time budget");
}

static void etl_budget_hook(lua_State *L, lua_Debug *ar)
{
    (void)ar;
    /* nothing due: armed by a signal as the call ended, or a late signal of an earlier call */
    if (etl_budget_due(L) == WHY_NONE) {
        lua_sethook(L, NULL, 0, 0);
        return;
    }
    etl_budget_raise(L);
}

void etl_budget_check(lua_State *L)
{
    if (etl_budget_due(L) != WHY_NONE)
        etl_budget_raise(L);
}

/* Arms the hook on the running call; only ever on the Lua thread itself (a signal handler
 * interrupting it, as lua.c's laction), never from another thread. */
static void etl_budget_arm(void)
{
    lua_State *L = active_L;
    if (L != NULL)
        lua_sethook(L, etl_budget_hook, LUA_MASKCALL | LUA_MASKRET | LUA_MASKLINE | LUA_MASKCOUNT,
                    1);
}

static void etl_budget_on_signal(int sig)
{
    (void)sig;
    int saved = errno;
    etl_budget_arm();
    errno = saved;
}

void etl_budget_interrupt(void)
{
    if (active_L == NULL)
        return;
    if (pthread_equal(pthread_self(), lua_thread))
        etl_budget_arm();
    else
        pthread_kill(lua_thread, BUDGET_SIG); /* the signal landed on another thread */
}

/* Waits one tick (WATCH_MS), cut short when the watchdog is asked to quit: the stop at the
 * end of a run then costs no part of a tick (a sleep made every run's end wait ~5 ms, up to
 * WATCH_MS, for nothing). Returns whether the watchdog is still to run. */
static int etl_budget_tick(void)
{
    struct timespec until;
    clock_gettime(CLOCK_MONOTONIC, &until);
    until.tv_nsec += WATCH_MS * 1000000L;
    if (until.tv_nsec >= 1000000000L) {
        until.tv_sec++;
        until.tv_nsec -= 1000000000L;
    }
    pthread_mutex_lock(&watch_mu);
    int rc = 0;
    while (atomic_load(&watchdog_state) == 1 && rc != ETIMEDOUT)
        rc = pthread_cond_timedwait(&watch_cv, &watch_mu, &until);
    int running = atomic_load(&watchdog_state) == 1;
    pthread_mutex_unlock(&watch_mu);
    return running;
}

/* The watchdog: every WATCH_MS, a call whose thread has used more than its budget of CPU time
 * since the watchdog first saw it gets BUDGET_SIG, once. The call's generation is read again
 * after the clock, so a reading is never charged to a call that started meanwhile. */
static void *etl_budget_watch(void *arg)
{
    (void)arg;
    unsigned seen = 0; /* the call whose start was recorded */
    int64_t start = 0; /* its thread's CPU clock then */
    clockid_t clock = CLOCK_MONOTONIC;
    while (etl_budget_tick()) {
        unsigned gen = atomic_load(&call_gen);
        if (gen % 2 == 0 || atomic_load(&expired_gen) == gen)
            continue; /* no call runs, or this one was signalled */
        if (gen != seen) {
            if (pthread_getcpuclockid(lua_thread, &clock) != 0)
                clock = CLOCK_MONOTONIC;
            start = etl_budget_clock_ns(clock);
            seen = gen;
            continue;
        }
        int64_t used = etl_budget_clock_ns(clock) - start;
        if (used >= atomic_load(&budget_ns) && atomic_load(&call_gen) == gen) {
            atomic_store(&expired_gen, gen);
            pthread_kill(lua_thread, BUDGET_SIG);
        }
    }
    return NULL;
}

/* __gc of a sentinel in the registry: stops the watchdog at lua_close, before package's own
 * finaliser unloads etlua.so (finalisers run in the reverse order of their marking). */
static int etl_budget_stop_watchdog(lua_State *L)
{
    (void)L;
    int running = 1;
    if (atomic_compare_exchange_strong(&watchdog_state, &running, 2)) {
        pthread_mutex_lock(&watch_mu); /* the watchdog waits or has yet to read the state */
        pthread_cond_signal(&watch_cv);
        pthread_mutex_unlock(&watch_mu);
        pthread_join(watchdog, NULL);
        pthread_cond_destroy(&watch_cv);
        atomic_store(&watchdog_state, 0);
    }
    return 0;
}

static void *etl_budget_alloc(void *ud, void *ptr, size_t osize, size_t nsize)
{
    (void)ud;
    size_t old = ptr ? osize : 0; /* without ptr, osize is a type tag, not a size */
    if (nsize > old && call_bytes + (long long)(nsize - old) > (long long)BUDGET_MEMORY_MB << 20) {
        mem_refused = 1;
        return NULL; /* Lua collects fully and retries once, then raises "not enough memory" */
    }
    void *p = base_alloc(base_ud, ptr, osize, nsize);
    if (nsize == 0)
        call_bytes -= (long long)old;
    else if (p != NULL)
        call_bytes += (long long)nsize - (long long)old;
    return p;
}

static int etl_budget_tostring(lua_State *L)
{
    luaL_tolstring(L, 1, NULL);
    return 1;
}

/* Message handler, run under the call's budget: the error object as text, never raising. */
static int etl_budget_msgh(lua_State *L)
{
    int t = lua_type(L, 1);
    if (t == LUA_TSTRING)
        return 1;
    if (t == LUA_TNUMBER) {
        luaL_tolstring(L, 1, NULL);
        return 1;
    }
    /* Not for an error the hook raised (why is set): this handler then runs inside the hook,
     * with hooks off, and a __tostring there would be out of the budget's reach. */
    if (why == WHY_NONE && luaL_getmetafield(L, 1, "__tostring") != LUA_TNIL) {
        lua_pop(L, 1);
        lua_pushcfunction(L, etl_budget_tostring);
        lua_pushvalue(L, 1);
        if (lua_pcall(L, 1, 1, 0) == LUA_OK && lua_type(L, -1) == LUA_TSTRING)
            return 1;
        lua_pop(L, 1);
    }
    lua_pushfstring(L, "(error object is a %s value)", luaL_typename(L, 1));
    return 1;
}

/* budget.call(ms, fn, ...) */
static int etl_budget_call(lua_State *L)
{
    /* (the checks' usual case first: each luaL_check* is a few calls more, twice a message) */
    int isnum;
    lua_Integer ms = lua_tointegerx(L, 1, &isnum);
    if (!isnum)
        ms = luaL_checkinteger(L, 1); /* raises, as it would have */
    luaL_argcheck(L, ms > 0, 1, "the budget must be a positive number of milliseconds");
    if (lua_type(L, 2) != LUA_TFUNCTION)
        luaL_checktype(L, 2, LUA_TFUNCTION);
    if (active_L != NULL)
        return luaL_error(L, "etlua.budget: call: a budgeted call is running");
    if (etl_host_stop_requested()) { /* after a stop no new call starts */
        lua_pushboolean(L, 0);
        lua_pushliteral(L, "stopped");
        lua_pushliteral(L, "stopped by a stop signal");
        return 3;
    }
    int nargs = lua_gettop(L) - 2;
    /* msgh, fn, args...: the handler (the function's first upvalue) takes the budget's slot (read
       above), so the arguments are not moved up one by one; one copy, not a push and a move */
    lua_copy(L, lua_upvalueindex(1), 1);

    lua_Hook prev_hook = lua_gethook(L);
    int prev_mask = lua_gethookmask(L), prev_count = lua_gethookcount(L);
    why = WHY_NONE;
    call_bytes = 0;
    mem_refused = 0;
    base_alloc = lua_getallocf(L, &base_ud);
    lua_setallocf(L, etl_budget_alloc, NULL);
    lua_thread = pthread_self();
    active_L = L;
    /* Two plain stores a call, no locked instruction (every message makes two calls): only this
     * thread writes call_gen and budget_ns (one budgeted call at a time, on the state's thread),
     * so a load and a store are the increment; the watchdog only reads them. budget_ns is
     * stored before call_gen turns odd, and that store is a release: a watchdog that reads the
     * odd generation (atomic_load, at least an acquire) reads this call's budget_ns too. Later
     * work may become visible before the odd generation does: the watchdog then starts this
     * call's clock a little late, which it may anyway (the first tick after the call starts).
     * The store that makes it even again is a release too: nothing of the call stays after it. */
    unsigned gen = atomic_load_explicit(&call_gen, memory_order_relaxed);
    atomic_store_explicit(&budget_ns, ms > INT64_MAX / 1000000 ? INT64_MAX : (int64_t)ms * 1000000,
                          memory_order_relaxed);
    atomic_store_explicit(&call_gen, gen + 1, memory_order_release); /* odd: may be looked at */
    int status = lua_pcall(L, nargs, LUA_MULTRET, 1);
    atomic_store_explicit(&call_gen, gen + 2, memory_order_release);
    active_L = NULL;
    if (lua_gethook(L) != prev_hook || lua_gethookmask(L) != prev_mask)
        lua_sethook(L, prev_hook, prev_mask, prev_count); /* the call was stopped: disarm */
    lua_setallocf(L, base_alloc, base_ud);

    if (status == LUA_OK && why == WHY_NONE) { /* msgh, results... -> true, results... */
        lua_copy(L, lua_upvalueindex(2), 1);   /* true: the second upvalue */
        return lua_gettop(L);
    }
    const char *kind = why == WHY_STOPPED                      ? "stopped"
                       : why == WHY_TIMEOUT                    ? "timeout"
                       : (status == LUA_ERRMEM || mem_refused) ? "memory"
                                                               : "error";
    const char *text = status == LUA_OK ? NULL : lua_tostring(L, -1);
    if (why == WHY_TIMEOUT)
        text = "ran past its time budget";
    if (why == WHY_STOPPED)
        text = "stopped by a stop signal";
    if (why == WHY_NONE && (status == LUA_ERRMEM || mem_refused))
        text = lua_pushfstring(L, "used more than %d MiB of memory", BUDGET_MEMORY_MB);
    lua_pushboolean(L, 0);
    lua_pushstring(L, kind);
    lua_pushstring(L, text ? text : "(error object is not text)");
    return 3;
}

/* budget.expired() */
static int etl_budget_expired(lua_State *L)
{
    lua_pushboolean(L, active_L != NULL && why != WHY_NONE);
    return 1;
}

static const luaL_Reg etl_budget_funcs[] = {
    {"call", etl_budget_call},
    {"expired", etl_budget_expired},
    {NULL, NULL},
};

int luaopen_etlua_budget(lua_State *L)
{
    int idle = 0;
    if (atomic_compare_exchange_strong(&watchdog_state, &idle, 1)) {
        struct sigaction sa;
        memset(&sa, 0, sizeof sa);
        sigemptyset(&sa.sa_mask);
        sa.sa_handler = etl_budget_on_signal;
        sa.sa_flags = SA_RESTART;
        sigaction(BUDGET_SIG, &sa, NULL);
        pthread_condattr_t ca;
        pthread_condattr_init(&ca);
        pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
        pthread_cond_init(&watch_cv, &ca);
        pthread_condattr_destroy(&ca);
        /* the watchdog blocks every signal: SIGTERM and the rest go to the other threads */
        int rc = etl_host_thread_start(&watchdog, etl_budget_watch, NULL);
        if (rc != 0) {
            pthread_cond_destroy(&watch_cv);
            atomic_store(&watchdog_state, 0);
            return luaL_error(L, "etlua.budget: cannot start the watchdog thread: %s",
                              strerror(rc));
        }
        etl_host_at_close(L, "etlua.budget.watchdog", etl_budget_stop_watchdog);
    }
    luaL_newlibtable(L, etl_budget_funcs);
    lua_pushcfunction(L, etl_budget_msgh); /* call's upvalues: its message handler and true */
    lua_pushboolean(L, 1);
    luaL_setfuncs(L, etl_budget_funcs, 2);
    lua_pushinteger(L, BUDGET_MEMORY_MB);
    lua_setfield(L, -2, "MEMORY_MB");
    lua_pushinteger(L, WATCH_MS);
    lua_setfield(L, -2, "WATCH_MS");
    etl_pattern_push(L);
    lua_setfield(L, -2, "patterns");
    return 1;
}
