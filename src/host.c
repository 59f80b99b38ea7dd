/* host.c: owns the Lua state. It creates the state (on etlua's allocator, src/lua_alloc.c),
 * preloads the C primitive modules and the embedded Lua half of the host, and runs
 * etlua.cli.main(argv) under lua_pcall, the way lua.c runs a script: a message handler adds a
 * traceback to internal errors, and errors print as `etlua: msg`. A user mistake (bad
 * configuration, unreachable service, broken script) is raised by the Lua side as a table
 * {user_error = "one line"}; it prints as that line, no traceback.
 *
 * It also owns the process's signal state (the `etlua.host` module): SIGTERM/SIGINT set a stop
 * flag that the runner polls between steps, and cut short a script hook call that is running
 * (etl_budget_interrupt, src/budget.c); a second one exits at once. host.list_dir lists a
 * directory without a shell (the rule files). */
#include "etlua/host.h"

#include "etlua/budget.h"
#include "etlua/lua_alloc.h"
#include "etlua/modules.h"

#include <dirent.h>
#include <errno.h>
#include <lauxlib.h>
#include <lua.h>
#include <lualib.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static volatile sig_atomic_t stop_requests;
static volatile sig_atomic_t reload_requests;

static void on_stop_signal(int sig)
{
    (void)sig;
    if (++stop_requests > 1)
        _exit(130);         /* second signal: leave now; the ledger makes it harmless */
    etl_budget_interrupt(); /* a script hook running now stops at its next instruction */
}

static void on_reload_signal(int sig)
{
    (void)sig;
    reload_requests++;
}

int etl_host_stop_requested(void) { return stop_requests > 0; }

/* host.install_signals(): SIGTERM/SIGINT request a graceful stop, SIGHUP a reload. */
static int etl_host_install_signals(lua_State *L)
{
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sigemptyset(&sa.sa_mask);
    sa.sa_handler = on_stop_signal;
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);
    sa.sa_handler = on_reload_signal;
    sigaction(SIGHUP, &sa, NULL);
    signal(SIGPIPE, SIG_IGN);
    (void)L;
    return 0;
}

/* host.stopping() -> true once SIGTERM/SIGINT arrived. */
static int etl_host_stopping(lua_State *L)
{
    lua_pushboolean(L, stop_requests > 0);
    return 1;
}

/* host.take_reload() -> true once per SIGHUP received since the last call. */
static int etl_host_take_reload(lua_State *L)
{
    int pending = reload_requests > 0;
    reload_requests = 0;
    lua_pushboolean(L, pending);
    return 1;
}

/* host.now_ms() -> wall clock milliseconds; host.mono() -> monotonic seconds (float). */
static int etl_host_now_ms(lua_State *L)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    lua_pushinteger(L, (lua_Integer)ts.tv_sec * 1000 + ts.tv_nsec / 1000000);
    return 1;
}

static int etl_host_mono(lua_State *L)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    lua_pushnumber(L, (lua_Number)ts.tv_sec + (lua_Number)ts.tv_nsec / 1e9);
    return 1;
}

/* host.sleep(seconds): sleeps, cut short by a stop signal. */
static int etl_host_sleep(lua_State *L)
{
    lua_Number s = luaL_checknumber(L, 1);
    struct timespec req, rem;
    if (s <= 0)
        return 0;
    req.tv_sec = (time_t)s;
    req.tv_nsec = (long)((s - (lua_Number)req.tv_sec) * 1e9);
    while (nanosleep(&req, &rem) == -1 && errno == EINTR && !stop_requests)
        req = rem;
    return 0;
}

/* host.isatty(fd) -> boolean */
static int etl_host_isatty(lua_State *L)
{
    lua_pushboolean(L, isatty((int)luaL_checkinteger(L, 1)));
    return 1;
}

/* host.list_dir(path) -> array of the entry names (without "." and ".."), unsorted
 *                     or nil, msg (missing, not a directory, unreadable). */
static int etl_host_list_dir(lua_State *L)
{
    const char *path = luaL_checkstring(L, 1);
    DIR *d = opendir(path);
    if (d == NULL) {
        lua_pushnil(L);
        lua_pushfstring(L, "cannot list %s: %s", path, strerror(errno));
        return 2;
    }
    lua_newtable(L);
    lua_Integer n = 0;
    struct dirent *e;
    errno = 0;
    while ((e = readdir(d)) != NULL) {
        if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
            continue;
        lua_pushstring(L, e->d_name); /* on memory exhaustion this raises and leaks d: rare */
        lua_rawseti(L, -2, ++n);
    }
    int err = errno;
    closedir(d);
    if (err != 0) {
        lua_pushnil(L);
        lua_pushfstring(L, "cannot list %s: %s", path, strerror(err));
        return 2;
    }
    return 1;
}

static const luaL_Reg host_funcs[] = {
    {"install_signals", etl_host_install_signals},
    {"stopping", etl_host_stopping},
    {"take_reload", etl_host_take_reload},
    {"now_ms", etl_host_now_ms},
    {"mono", etl_host_mono},
    {"sleep", etl_host_sleep},
    {"isatty", etl_host_isatty},
    {"list_dir", etl_host_list_dir},
    {NULL, NULL},
};

int luaopen_etlua_host(lua_State *L)
{
    luaL_newlib(L, host_funcs);
    lua_pushliteral(L, ETLUA_VERSION);
    lua_setfield(L, -2, "version");
    return 1;
}

/* package.preload loader for an embedded Lua module: upvalue 1 is its index in the table. */
static int etl_host_load_embedded(lua_State *L)
{
    const struct etl_embedded *m = &etl_embedded_modules[lua_tointeger(L, lua_upvalueindex(1))];
    char chunkname[128];
    snprintf(chunkname, sizeof chunkname, "=%s", m->name);
    if (luaL_loadbufferx(L, m->src, m->len, chunkname, "t") != LUA_OK)
        return lua_error(L);
    lua_pushstring(L, m->name);
    lua_call(L, 1, 1); /* runs inside require, itself under the caller's pcall */
    return 1;
}

void etl_host_preload(lua_State *L)
{
    static const luaL_Reg c_modules[] = {
        {"etlua.host", luaopen_etlua_host},
        {"etlua.mask", luaopen_etlua_mask},
        {"etlua.sqs", luaopen_etlua_sqs},
        {"etlua.pg", luaopen_etlua_pg},
        {"etlua.metrics", luaopen_etlua_metrics},
        {"etlua.vault", luaopen_etlua_vault},
        {"etlua.json", luaopen_etlua_json},
        {"etlua.scrub", luaopen_etlua_scrub},
        {"etlua.budget", luaopen_etlua_budget},
        {"etlua.row", luaopen_etlua_row},
        {"etlua.lines", luaopen_etlua_lines},
        {"etlua.ledger_entries", luaopen_etlua_ledger_entries},
        {NULL, NULL},
    };
    luaL_getsubtable(L, LUA_REGISTRYINDEX, LUA_PRELOAD_TABLE);
    for (const luaL_Reg *r = c_modules; r->name; r++) {
        lua_pushcfunction(L, r->func);
        lua_setfield(L, -2, r->name);
    }
    for (lua_Integer i = 0; etl_embedded_modules[i].name; i++) {
        lua_pushinteger(L, i);
        lua_pushcclosure(L, etl_host_load_embedded, 1);
        lua_setfield(L, -2, etl_embedded_modules[i].name);
    }
    lua_pop(L, 1);
}

/* Replaces the string on top of the stack by etlua.redact.line(it) when etlua.redact is loaded
 * (config.lua registers the secrets there): no piece of a secret in a traceback either. User
 * errors went through it already (fail.user). */
static void etl_host_redact(lua_State *L)
{
    int top = lua_gettop(L); /* the message */
    lua_getfield(L, LUA_REGISTRYINDEX, LUA_LOADED_TABLE);
    if (lua_getfield(L, -1, "etlua.redact") == LUA_TTABLE &&
        lua_getfield(L, -1, "line") == LUA_TFUNCTION) {
        lua_pushvalue(L, top);
        if (lua_pcall(L, 1, 1, 0) == LUA_OK && lua_type(L, -1) == LUA_TSTRING)
            lua_replace(L, top);
    }
    lua_settop(L, top);
}

/* Message handler: user errors pass through as their one line; anything else gets a traceback. */
static int etl_host_msgh(lua_State *L)
{
    if (lua_istable(L, 1)) {
        lua_getfield(L, 1, "user_error");
        if (lua_isstring(L, -1))
            return 1;
        lua_pop(L, 1);
    }
    const char *msg = lua_tostring(L, 1);
    if (msg == NULL) {
        if (luaL_callmeta(L, 1, "__tostring") && lua_type(L, -1) == LUA_TSTRING)
            return 1;
        msg = lua_pushfstring(L, "(error object is a %s value)", luaL_typename(L, 1));
    }
    luaL_traceback(L, L, msg, 1);
    lua_pushliteral(L, "\netlua: internal error; please report it with the lines above");
    lua_concat(L, 2);
    etl_host_redact(L);
    return 1;
}

/* Panic function (an error outside any protected call), as luaL_newstate's: print and abort. */
static int etl_host_panic(lua_State *L)
{
    const char *msg = lua_tostring(L, -1);
    fprintf(stderr, "etlua: PANIC: unprotected error in call to Lua API (%s)\n",
            msg ? msg : "error object is not a string");
    return 0; /* Lua aborts */
}

/* type(v): the base library's, its result pushed from an upvalue (the type names, made once)
 * rather than by lua_pushstring, which finds the name's string again by its C text (Lua's
 * string cache, a strcmp) at every call. The same strings, the same error without an argument.
 * Every message meets about six type() calls (the script's checks, the sink's), and the base
 * library's was ~2% of --input's CPU time, half of it that lookup. */
static int etl_host_type(lua_State *L)
{
    int t = lua_type(L, 1);
    luaL_argcheck(L, t != LUA_TNONE, 1, "value expected");
    lua_pushvalue(L, lua_upvalueindex(t + 1));
    return 1;
}

int etl_host_thread_start(pthread_t *t, void *(*fn)(void *), void *arg)
{
    sigset_t all, old;
    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, &old);
    int rc = pthread_create(t, NULL, fn, arg);
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    return rc;
}

void etl_host_at_close(lua_State *L, const char *key, lua_CFunction fn)
{
    if (lua_getfield(L, LUA_REGISTRYINDEX, key) == LUA_TNIL) {
        lua_newuserdatauv(L, 0, 0);
        lua_newtable(L);
        lua_pushcfunction(L, fn);
        lua_setfield(L, -2, "__gc");
        lua_setmetatable(L, -2);
        lua_setfield(L, LUA_REGISTRYINDEX, key);
    }
    lua_pop(L, 1);
}

/* Sets _G.type to etl_host_type, before any module or script copies it. */
static void etl_host_set_type(lua_State *L)
{
    lua_pushglobaltable(L);
    for (int t = LUA_TNIL; t < LUA_NUMTYPES; t++) /* upvalue t + 1: the name of type t */
        lua_pushstring(L, lua_typename(L, t));
    lua_pushcclosure(L, etl_host_type, LUA_NUMTYPES);
    lua_setfield(L, -2, "type");
    lua_pop(L, 1);
}

/* Runs require("etlua.cli").main(argv) and converts its result to an exit status. */
static int etl_host_run(lua_State *L)
{
    int argc = (int)lua_tointeger(L, 1);
    char **argv = (char **)lua_touserdata(L, 2);
    luaL_openlibs(L);
    etl_host_set_type(L);
    etl_host_preload(L);
    lua_pushboolean(L, 1); /* the executable, not etlua.so: pg.prestart may start its thread */
    lua_setfield(L, LUA_REGISTRYINDEX, ETL_HOST_EXECUTABLE_KEY);
    lua_getglobal(L, "require");
    lua_pushliteral(L, "etlua.cli");
    lua_call(L, 1, 1);
    lua_getfield(L, -1, "main");
    lua_createtable(L, argc, 0);
    for (int i = 1; i < argc; i++) {
        lua_pushstring(L, argv[i]);
        lua_rawseti(L, -2, i);
    }
    lua_call(L, 1, 1);
    return 1;
}

int etl_host_main(int argc, char **argv)
{
    /* The collector keeps Lua's defaults (incremental, pause 200, step multiplier 100): on
     * --input with this allocator, pause 300 and 400 saved ~1% of the instructions and no
     * measurable CPU time, for 3 and 7 MiB more peak RSS; generational mode cost 3% more
     * instructions (the batch's objects outlive two minor collections, then die old). */
    struct etl_lua_alloc *alloc = etl_lua_alloc_new(); /* small blocks from slabs: its header */
    lua_State *L = alloc ? lua_newstate(etl_lua_alloc_f, alloc) : NULL;
    if (L == NULL) {
        etl_lua_alloc_close(alloc);
        fputs("etlua: cannot create the Lua state: out of memory\n", stderr);
        return 1;
    }
    lua_atpanic(L, etl_host_panic); /* as luaL_newstate; no warning function: warnings stay off,
                                       as luaL_newstate starts them (scripts have no warn) */
    lua_pushcfunction(L, etl_host_msgh);
    lua_pushcfunction(L, etl_host_run);
    lua_pushinteger(L, argc);
    lua_pushlightuserdata(L, argv);
    int status = lua_pcall(L, 2, 1, 1);
    int code;
    if (status == LUA_OK) {
        code = lua_isinteger(L, -1) ? (int)lua_tointeger(L, -1) : 0;
    } else {
        const char *msg = lua_tostring(L, -1);
        fprintf(stderr, "etlua: %s\n", msg ? msg : "(no error message)");
        code = 1;
    }
    fflush(stdout);
    lua_close(L);
    etl_lua_alloc_close(alloc);
    return code;
}
