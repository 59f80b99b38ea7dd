/* host.h: the one place that owns the Lua state (creation, preloading, protected calls).
 * Every crossing from C into Lua goes through these functions; there is no bare lua_call. */
#ifndef ETLUA_HOST_H
#define ETLUA_HOST_H

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

/* Runs etlua.cli.main(argv) in a fresh state; returns the process exit status. */
int etl_host_main(int argc, char **argv);

#endif
