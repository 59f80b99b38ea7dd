/* metrics_lua.c: the Lua binding of etlua.metrics, ending in luaopen_etlua_metrics. A registry
 * handle ("etlua.metrics.registry") owns one registry (metrics.c) and at most one HTTP server
 * (metrics_server.c); close (also __gc, __close; twice is safe) stops the server, then frees the
 * registry. Misuse raises; serve returns nil, msg when it cannot listen. */
#include "etlua/metrics.h"
#include "etlua/metrics_server.h"
#include "etlua/modules.h"

#include <stdlib.h>

#include <lauxlib.h>
#include <lua.h>

#define REGISTRY_MT "etlua.metrics.registry"

/* The userdata: a registry and the server started on it (NULL until serve). */
struct handle {
    struct etl_metrics *reg;
    struct etl_metrics_server *server;
};

static struct handle *box(lua_State *L)
{
    return (struct handle *)luaL_checkudata(L, 1, REGISTRY_MT);
}

static struct etl_metrics *check_open(lua_State *L)
{
    struct handle *h = box(L);
    if (h->reg == NULL)
        luaL_error(L, "etlua.metrics: registry is closed");
    return h->reg;
}

static int l_registry(lua_State *L)
{
    struct handle *h = lua_newuserdatauv(L, sizeof *h, 0);
    h->reg = NULL;
    h->server = NULL;
    luaL_setmetatable(L, REGISTRY_MT);
    h->reg = etl_metrics_new();
    if (h->reg == NULL)
        return luaL_error(L, "etlua.metrics: out of memory");
    return 1;
}

static int declare(lua_State *L, enum etl_metric_kind kind)
{
    struct etl_metrics *m = check_open(L);
    const char *name = luaL_checkstring(L, 2);
    const char *help = luaL_optstring(L, 3, NULL);
    const char *label = NULL;
    double bounds[ETL_METRICS_MAX_BUCKETS];
    size_t n = 0;
    if (kind == ETL_HISTOGRAM) {
        luaL_checktype(L, 4, LUA_TTABLE);
        lua_Integer len = luaL_len(L, 4);
        luaL_argcheck(L, len >= 1 && len <= ETL_METRICS_MAX_BUCKETS, 4, "1..32 bucket bounds");
        for (lua_Integer i = 1; i <= len; i++) {
            lua_geti(L, 4, i);
            bounds[n++] = (double)luaL_checknumber(L, -1);
            lua_pop(L, 1);
        }
    } else {
        label = luaL_optstring(L, 4, NULL);
    }
    const char *err = NULL;
    int id = etl_metrics_add(m, kind, name, help, label, bounds, n, &err);
    if (id < 0)
        return luaL_error(L, "etlua.metrics: %s: %s", name, err);
    lua_pushinteger(L, id);
    return 1;
}

static int l_counter(lua_State *L) { return declare(L, ETL_COUNTER); }
static int l_gauge(lua_State *L) { return declare(L, ETL_GAUGE); }
static int l_histogram(lua_State *L) { return declare(L, ETL_HISTOGRAM); }

/* reg:inc(id [, n [, label_value]]) */
static int l_inc(lua_State *L)
{
    struct etl_metrics *m = check_open(L);
    int id = (int)luaL_checkinteger(L, 2);
    double v = (double)luaL_optnumber(L, 3, 1);
    const char *lv = luaL_optstring(L, 4, NULL);
    if (etl_metrics_inc(m, id, lv, v) != 0) {
        return luaL_error(
            L, "etlua.metrics: inc(%d, %f): not a counter or gauge, or a negative count", id, v);
    }
    return 0;
}

/* reg:set(id, v [, label_value]) */
static int l_set(lua_State *L)
{
    struct etl_metrics *m = check_open(L);
    int id = (int)luaL_checkinteger(L, 2);
    double v = (double)luaL_checknumber(L, 3);
    const char *lv = luaL_optstring(L, 4, NULL);
    if (etl_metrics_set(m, id, lv, v) != 0)
        return luaL_error(L, "etlua.metrics: set(%d): not a gauge", id);
    return 0;
}

/* reg:observe(id, v) */
static int l_observe(lua_State *L)
{
    struct etl_metrics *m = check_open(L);
    int id = (int)luaL_checkinteger(L, 2);
    double v = (double)luaL_checknumber(L, 3);
    if (etl_metrics_observe(m, id, v) != 0)
        return luaL_error(L, "etlua.metrics: observe(%d): not a histogram", id);
    return 0;
}

static int l_render(lua_State *L)
{
    struct etl_metrics *m = check_open(L);
    size_t len;
    char *text = etl_metrics_render(m, &len);
    if (text == NULL)
        return luaL_error(L, "etlua.metrics: out of memory");
    lua_pushlstring(L, text, len); /* may raise on OOM: free first would lose the text, so guard */
    free(text);
    return 1;
}

static int l_ready(lua_State *L)
{
    struct etl_metrics *m = check_open(L);
    etl_metrics_set_ready(m, lua_toboolean(L, 2));
    return 0;
}

/* reg:constant_label(name, value): every family's series carry name="value" */
static int l_constant_label(lua_State *L)
{
    struct etl_metrics *m = check_open(L);
    const char *name = luaL_checkstring(L, 2), *value = luaL_checkstring(L, 3);
    const char *err = NULL;
    if (etl_metrics_set_constant_label(m, name, value, &err) != 0)
        return luaL_error(L, "etlua.metrics: constant label %s: %s", name, err);
    return 0;
}

/* reg:process_metrics(): process_cpu_seconds_total & co., read at each scrape */
static int l_process_metrics(lua_State *L)
{
    etl_metrics_enable_process(check_open(L));
    return 0;
}

/* reg:serve(addr) -> bound_addr | nil, msg */
static int l_serve(lua_State *L)
{
    struct etl_metrics *m = check_open(L);
    const char *addr = luaL_checkstring(L, 2);
    char bound[80], err[256];
    struct handle *h = box(L);
    if (h->server != NULL) {
        luaL_pushfail(L);
        lua_pushliteral(L, "the metrics server is already running");
        return 2;
    }
    h->server = etl_metrics_server_start(m, addr, bound, sizeof bound, err, sizeof err);
    if (h->server == NULL) {
        luaL_pushfail(L);
        lua_pushstring(L, err);
        return 2;
    }
    lua_pushstring(L, bound);
    return 1;
}

static int l_close(lua_State *L)
{
    struct handle *h = box(L);
    etl_metrics_server_stop(h->server); /* joins the server thread before the registry goes */
    h->server = NULL;
    etl_metrics_free(h->reg);
    h->reg = NULL;
    return 0;
}

static const luaL_Reg registry_methods[] = {
    {"counter", l_counter},
    {"gauge", l_gauge},
    {"histogram", l_histogram},
    {"inc", l_inc},
    {"set", l_set},
    {"observe", l_observe},
    {"render", l_render},
    {"ready", l_ready},
    {"serve", l_serve},
    {"constant_label", l_constant_label},
    {"process_metrics", l_process_metrics},
    {"close", l_close},
    {NULL, NULL},
};

static const luaL_Reg funcs[] = {
    {"registry", l_registry},
    {NULL, NULL},
};

int luaopen_etlua_metrics(lua_State *L)
{
    if (luaL_newmetatable(L, REGISTRY_MT)) {
        luaL_newlib(L, registry_methods);
        lua_setfield(L, -2, "__index");
        lua_pushcfunction(L, l_close);
        lua_setfield(L, -2, "__gc");
        lua_pushcfunction(L, l_close);
        lua_setfield(L, -2, "__close");
    }
    lua_pop(L, 1);
    luaL_newlib(L, funcs);
    return 1;
}
