/* host.h: the one place that owns the Lua state (creation, preloading, protected calls).
 * Every crossing from C into Lua goes through these functions; there is no bare lua_call. */
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

/* Registers the C modules (etlua.mask, etlua.sqs, etlua.pg, etlua.host) and the embedded Lua
 * modules in package.preload. Returns nothing; raises on memory exhaustion only. */
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
