/* metrics.c: etlua.metrics — the registry of counters, gauges and histograms (declaring
 * families, updates, readiness) and its Lua binding, ending in luaopen_etlua_metrics. Rendering
 * is metrics_text.c, the HTTP server for /metrics, /healthz and /readyz is metrics_server.c
 * (include/etlua/metrics_internal.h lists what they share).
 *
 * Threads: the Lua thread updates the registry, the server thread renders it. One pthread mutex
 * guards the whole registry; updates are a few per batch, so it is never contended for long.
 * The server thread never touches the Lua state: it only reads the registry and the ready flag. */
#include "etlua/metrics_internal.h"

#include <math.h>
#include <microhttpd.h> /* MHD_stop_daemon in etl_metrics_free */
#include <stdlib.h>
#include <string.h>

#include <lauxlib.h>
#include <lua.h>

struct etl_metrics *etl_metrics_new(void) {
    struct etl_metrics *m = calloc(1, sizeof *m);
    if (m == NULL) return NULL;
    if (pthread_mutex_init(&m->lock, NULL) != 0) {
        free(m);
        return NULL;
    }
    return m;
}

void etl_metrics_free(struct etl_metrics *m) {
    if (m == NULL) return;
    if (m->daemon) MHD_stop_daemon(m->daemon); /* joins the server thread; closes the socket */
    for (int i = 0; i < m->nfam; i++) {
        struct family *f = &m->fam[i];
        for (size_t j = 0; j < f->nseries; j++) free(f->series[j].label_value);
        free(f->series);
        free(f->name);
        free(f->help);
        free(f->label);
    }
    pthread_mutex_destroy(&m->lock);
    free(m);
}

/* ---- declaring families ------------------------------------------------------------------------ */

static int valid_name(const char *s, int colon) {
    if (s == NULL || *s == '\0') return 0;
    for (const char *p = s; *p; p++) {
        char c = *p;
        int ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' || (colon && c == ':')
                 || (p != s && c >= '0' && c <= '9');
        if (!ok) return 0;
    }
    return 1;
}

static char *dup_or_null(const char *s, int *oom) {
    if (s == NULL) return NULL;
    char *d = strdup(s);
    if (d == NULL) *oom = 1;
    return d;
}

int etl_metrics_add(struct etl_metrics *m, enum etl_metric_kind kind, const char *name,
                    const char *help, const char *label, const double *bounds, size_t nbounds,
                    const char **err) {
    const char *e = NULL;
    int id = -1;
    if (!valid_name(name, 1)) e = "invalid metric name";
    else if (label && (!valid_name(label, 0) || strncmp(label, "__", 2) == 0 || strcmp(label, "le") == 0))
        e = "invalid label name";
    else if (kind == ETL_HISTOGRAM && label) e = "histograms take no label";
    else if (kind == ETL_HISTOGRAM && (nbounds == 0 || nbounds > ETL_METRICS_MAX_BUCKETS))
        e = "a histogram needs 1..32 bucket bounds";
    if (e == NULL && kind == ETL_HISTOGRAM) {
        for (size_t i = 0; i < nbounds; i++) {
            if (!isfinite(bounds[i]) || (i > 0 && !(bounds[i] > bounds[i - 1]))) {
                e = "bucket bounds must be finite and increasing";
                break;
            }
        }
    }
    if (e) {
        if (err) *err = e;
        return -1;
    }
    pthread_mutex_lock(&m->lock);
    for (int i = 0; i < m->nfam; i++) {
        if (strcmp(m->fam[i].name, name) == 0) e = "duplicate metric name";
    }
    if (e == NULL && m->nfam >= ETL_METRICS_MAX_FAMILIES) e = "too many metric families";
    if (e == NULL) {
        struct family *f = &m->fam[m->nfam];
        int oom = 0;
        memset(f, 0, sizeof *f);
        f->kind = kind;
        f->name = dup_or_null(name, &oom);
        f->help = dup_or_null(help, &oom);
        f->label = dup_or_null(label, &oom);
        if (kind == ETL_HISTOGRAM) {
            memcpy(f->bounds, bounds, nbounds * sizeof *bounds);
            f->nbounds = nbounds;
        }
        if (oom) {
            free(f->name);
            free(f->help);
            free(f->label);
            e = "out of memory";
        } else {
            id = m->nfam++;
        }
    }
    pthread_mutex_unlock(&m->lock);
    if (e && err) *err = e;
    return id;
}

/* ---- updates (callers hold the lock) ------------------------------------------------------------ */

/* The series of family f for label value lv (created on first use), or NULL (out of memory).
 * Past ETL_METRICS_MAX_SERIES label values, new ones share the series "_other". */
static struct series *find_series(struct family *f, const char *lv) {
    if (f->label == NULL) lv = NULL;
    else if (lv == NULL) lv = "";
    for (size_t i = 0; i < f->nseries; i++) {
        const char *have = f->series[i].label_value;
        if (lv == NULL || strcmp(have, lv) == 0) return &f->series[i];
    }
    if (lv && f->nseries >= ETL_METRICS_MAX_SERIES) {
        lv = "_other";
        for (size_t i = 0; i < f->nseries; i++) {
            if (strcmp(f->series[i].label_value, lv) == 0) return &f->series[i];
        }
    }
    if (f->nseries == f->cap) {
        size_t cap = f->cap ? 2 * f->cap : 4;
        struct series *s = realloc(f->series, cap * sizeof *s);
        if (s == NULL) return NULL;
        f->series = s;
        f->cap = cap;
    }
    struct series *s = &f->series[f->nseries];
    s->label_value = NULL;
    if (lv && (s->label_value = strdup(lv)) == NULL) return NULL;
    s->value = 0;
    f->nseries++;
    return s;
}

static struct family *family_of(struct etl_metrics *m, int id, enum etl_metric_kind kind) {
    if (id < 0 || id >= m->nfam || m->fam[id].kind != kind) return NULL;
    return &m->fam[id];
}

static int update(struct etl_metrics *m, int id, const char *lv, double v, int set) {
    int rc = -1;
    pthread_mutex_lock(&m->lock);
    struct family *f = NULL;
    if (id >= 0 && id < m->nfam) f = &m->fam[id];
    if (f && f->kind == ETL_COUNTER && (set || !(v >= 0) || !isfinite(v))) f = NULL;
    if (f && f->kind == ETL_HISTOGRAM) f = NULL;
    if (f) {
        struct series *s = find_series(f, lv);
        if (s) {
            s->value = set ? v : s->value + v;
            rc = 0;
        }
    }
    pthread_mutex_unlock(&m->lock);
    return rc;
}

int etl_metrics_inc(struct etl_metrics *m, int id, const char *label_value, double v) {
    return update(m, id, label_value, v, 0);
}

int etl_metrics_set(struct etl_metrics *m, int id, const char *label_value, double v) {
    return update(m, id, label_value, v, 1);
}

int etl_metrics_observe(struct etl_metrics *m, int id, double v) {
    if (isnan(v)) return -1;
    pthread_mutex_lock(&m->lock);
    struct family *f = family_of(m, id, ETL_HISTOGRAM);
    if (f) {
        size_t b = 0;
        while (b < f->nbounds && v > f->bounds[b]) b++; /* le: upper bounds are inclusive */
        f->counts[b]++;
        f->count++;
        f->sum += v;
    }
    pthread_mutex_unlock(&m->lock);
    return f ? 0 : -1;
}

void etl_metrics_set_ready(struct etl_metrics *m, int ready) {
    pthread_mutex_lock(&m->lock);
    m->ready = ready != 0;
    pthread_mutex_unlock(&m->lock);
}

int etl_metrics_is_ready(struct etl_metrics *m) {
    pthread_mutex_lock(&m->lock);
    int r = m->ready;
    pthread_mutex_unlock(&m->lock);
    return r;
}

/* ---- Lua binding ------------------------------------------------------------------------------- */

#define REGISTRY_MT "etlua.metrics.registry"

static struct etl_metrics **box(lua_State *L) {
    return (struct etl_metrics **)luaL_checkudata(L, 1, REGISTRY_MT);
}

static struct etl_metrics *check_open(lua_State *L) {
    struct etl_metrics **p = box(L);
    if (*p == NULL) luaL_error(L, "etlua.metrics: registry is closed");
    return *p;
}

static int l_registry(lua_State *L) {
    struct etl_metrics **p = lua_newuserdatauv(L, sizeof *p, 0);
    *p = NULL;
    luaL_setmetatable(L, REGISTRY_MT);
    *p = etl_metrics_new();
    if (*p == NULL) return luaL_error(L, "etlua.metrics: out of memory");
    return 1;
}

static int declare(lua_State *L, enum etl_metric_kind kind) {
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
    if (id < 0) return luaL_error(L, "etlua.metrics: %s: %s", name, err);
    lua_pushinteger(L, id);
    return 1;
}

static int l_counter(lua_State *L) { return declare(L, ETL_COUNTER); }
static int l_gauge(lua_State *L) { return declare(L, ETL_GAUGE); }
static int l_histogram(lua_State *L) { return declare(L, ETL_HISTOGRAM); }

/* reg:inc(id [, n [, label_value]]) */
static int l_inc(lua_State *L) {
    struct etl_metrics *m = check_open(L);
    int id = (int)luaL_checkinteger(L, 2);
    double v = (double)luaL_optnumber(L, 3, 1);
    const char *lv = luaL_optstring(L, 4, NULL);
    if (etl_metrics_inc(m, id, lv, v) != 0) {
        return luaL_error(L, "etlua.metrics: inc(%d, %f): not a counter or gauge, or a negative count", id, v);
    }
    return 0;
}

/* reg:set(id, v [, label_value]) */
static int l_set(lua_State *L) {
    struct etl_metrics *m = check_open(L);
    int id = (int)luaL_checkinteger(L, 2);
    double v = (double)luaL_checknumber(L, 3);
    const char *lv = luaL_optstring(L, 4, NULL);
    if (etl_metrics_set(m, id, lv, v) != 0) return luaL_error(L, "etlua.metrics: set(%d): not a gauge", id);
    return 0;
}

/* reg:observe(id, v) */
static int l_observe(lua_State *L) {
    struct etl_metrics *m = check_open(L);
    int id = (int)luaL_checkinteger(L, 2);
    double v = (double)luaL_checknumber(L, 3);
    if (etl_metrics_observe(m, id, v) != 0) return luaL_error(L, "etlua.metrics: observe(%d): not a histogram", id);
    return 0;
}

static int l_render(lua_State *L) {
    struct etl_metrics *m = check_open(L);
    size_t len;
    char *text = etl_metrics_render(m, &len);
    if (text == NULL) return luaL_error(L, "etlua.metrics: out of memory");
    lua_pushlstring(L, text, len); /* may raise on OOM: free first would lose the text, so guard */
    free(text);
    return 1;
}

static int l_ready(lua_State *L) {
    struct etl_metrics *m = check_open(L);
    etl_metrics_set_ready(m, lua_toboolean(L, 2));
    return 0;
}

/* reg:serve(addr) -> bound_addr | nil, msg */
static int l_serve(lua_State *L) {
    struct etl_metrics *m = check_open(L);
    const char *addr = luaL_checkstring(L, 2);
    char bound[80], err[256];
    if (etl_metrics_serve(m, addr, bound, sizeof bound, err, sizeof err) != 0) {
        luaL_pushfail(L);
        lua_pushstring(L, err);
        return 2;
    }
    lua_pushstring(L, bound);
    return 1;
}

static int l_close(lua_State *L) {
    struct etl_metrics **p = box(L);
    etl_metrics_free(*p);
    *p = NULL;
    return 0;
}

static const luaL_Reg registry_methods[] = {
    {"counter", l_counter}, {"gauge", l_gauge}, {"histogram", l_histogram},
    {"inc", l_inc},         {"set", l_set},     {"observe", l_observe},
    {"render", l_render},   {"ready", l_ready}, {"serve", l_serve},
    {"close", l_close},     {NULL, NULL},
};

static const luaL_Reg funcs[] = {
    {"registry", l_registry},
    {NULL, NULL},
};

int luaopen_etlua_metrics(lua_State *L) {
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
