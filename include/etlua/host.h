/* host.h: the one place that owns the Lua state (creation, preloading, the outermost protected
 * call).
 * The rule for calling Lua from C: a call from C code that Lua did not call is protected; in the
 * program that is only etl_host_main, whose lua_pcall runs etlua.cli.main. Inside a C function
 * that Lua called, a plain lua_call is fine when no C resource would leak if it raised: its error
 * goes to the nearest protected call (host.c's loader and etl_host_run, the callbacks of
 * src/mask_rows.c). A function that must not raise, or must handle the error itself, makes its
 * own lua_pcall (src/budget.c's budget.call, src/pg_wait.c's wait hook, host.c's redaction of an
 * error message). */
#ifndef ETLUA_HOST_H
#define ETLUA_HOST_H

#include <pthread.h>
#include <stddef.h>

struct lua_State;

/* One Lua module of the host's own, compiled into the binary (cmake/embed_lua.cmake). */
struct etl_embedded {
    const char *name; /* "etlua.runner" */
    const char *src;
    size_t len;
};
extern const struct etl_embedded etl_embedded_modules[];

/* Registry key that etl_host_main sets to true before running etlua.cli: the code runs in the
 * executable, not in etlua.so loaded by plain lua5.4 (busted). src/pg_prestart.c reads it: only
 * the executable starts pg.prestart's thread. */
#define ETL_HOST_EXECUTABLE_KEY "etlua.executable"

/* Registers the C modules (their entry points: etlua/modules.h) and the embedded Lua modules in
 * package.preload. Returns nothing; raises on memory exhaustion only. */
void etl_host_preload(struct lua_State *L);

/* Non-zero once SIGTERM/SIGINT has asked the process to stop (after host.install_signals()).
 * Long network waits (a long poll) poll it to cut themselves short. Async-signal safe to read. */
int etl_host_stop_requested(void);

/* Calls fn(L) at lua_close: registry[key] becomes an empty userdata whose __gc is fn, unless
 * registry[key] is set already (once per key). For what a module started outside the state (a
 * thread) and must stop before the state goes: src/budget.c's watchdog, src/pg_prestart.c's
 * connection. Raises on memory exhaustion only. */
void etl_host_at_close(struct lua_State *L, const char *key, int (*fn)(struct lua_State *L));

/* pthread_create(t, NULL, fn, arg) with every signal blocked in the new thread (the caller's mask
 * is restored): SIGTERM and the rest keep going to the main thread. For the helper threads of
 * src/budget.c and src/pg_prestart.c. Returns pthread_create's result. */
int etl_host_thread_start(pthread_t *t, void *(*fn)(void *), void *arg);
/* Runs etlua.cli.main(argv) in a fresh state; returns the process exit status. */
int etl_host_main(int argc, char **argv);

#endif
