/* metrics.c: etlua.metrics — a registry of counters, gauges and histograms, its Prometheus text
 * rendering, and an HTTP server (libmicrohttpd, MHD_USE_INTERNAL_POLLING_THREAD) for
 * /metrics, /healthz and /readyz.
 *
 * Threads: the Lua thread updates the registry, the server thread renders it. One pthread mutex
 * guards the whole registry; updates are a few per batch, so it is never contended for long.
 * The server thread never touches the Lua state: it only reads the registry and the ready flag.
 *
 * Binding: the listening socket is made here (socket/bind/listen on exactly the address given)
 * and handed to libmicrohttpd with MHD_OPTION_LISTEN_SOCKET, so a bind failure reports the
 * system's reason ("Address already in use") instead of a bare NULL from MHD_start_daemon. */
#include "etlua/metrics.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <lauxlib.h>
#include <lua.h>

struct series {
    char *label_value; /* NULL for an unlabelled family */
    double value;
};

struct family {
    enum etl_metric_kind kind;
    char *name, *help, *label;
    /* counter, gauge */
    struct series *series;
    size_t nseries, cap;
    /* histogram */
    double bounds[ETL_METRICS_MAX_BUCKETS];
    unsigned long long counts[ETL_METRICS_MAX_BUCKETS + 1]; /* per bucket, not cumulative; last = +Inf */
    size_t nbounds;
    double sum;
    unsigned long long count;
};

struct etl_metrics {
    pthread_mutex_t lock;
    struct family fam[ETL_METRICS_MAX_FAMILIES];
    int nfam;
    int ready;
    struct MHD_Daemon *daemon;
};

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

static int is_ready(struct etl_metrics *m) {
    pthread_mutex_lock(&m->lock);
    int r = m->ready;
    pthread_mutex_unlock(&m->lock);
    return r;
}

/* ---- rendering ------------------------------------------------------------------------------------ */

struct buf {
    char *p;
    size_t len, cap;
    int oom;
};

static void put(struct buf *b, const char *s, size_t n) {
    if (b->oom) return;
    if (b->len + n + 1 > b->cap) {
        size_t cap = b->cap ? b->cap : 4096;
        while (b->len + n + 1 > cap) cap *= 2;
        char *p = realloc(b->p, cap);
        if (p == NULL) {
            b->oom = 1;
            return;
        }
        b->p = p;
        b->cap = cap;
    }
    memcpy(b->p + b->len, s, n);
    b->len += n;
    b->p[b->len] = '\0';
}

static void puts_(struct buf *b, const char *s) { put(b, s, strlen(s)); }

/* Escapes for HELP text (\\ and \n) or, with quote, for label values (\\, \" and \n). */
static void put_escaped(struct buf *b, const char *s, int quote) {
    const char *run = s;
    for (; *s; s++) {
        const char *rep = NULL;
        if (*s == '\\') rep = "\\\\";
        else if (*s == '\n') rep = "\\n";
        else if (quote && *s == '"') rep = "\\\"";
        if (rep) {
            put(b, run, (size_t)(s - run));
            puts_(b, rep);
            run = s + 1;
        }
    }
    put(b, run, (size_t)(s - run));
}

/* A sample value as Prometheus reads it: integers without a fraction, others in the shortest
 * of %.15g / %.17g that reads back exactly, +Inf, -Inf, NaN. */
static void put_number(struct buf *b, double v) {
    char s[40];
    if (isnan(v)) snprintf(s, sizeof s, "NaN");
    else if (isinf(v)) snprintf(s, sizeof s, v > 0 ? "+Inf" : "-Inf");
    else if (v == floor(v) && fabs(v) < 1e15) snprintf(s, sizeof s, "%.0f", v == 0 ? 0.0 : v);
    else {
        snprintf(s, sizeof s, "%.15g", v);
        if (strtod(s, NULL) != v) snprintf(s, sizeof s, "%.17g", v);
    }
    puts_(b, s);
}

static void put_u64(struct buf *b, unsigned long long v) {
    char s[24];
    snprintf(s, sizeof s, "%llu", v);
    puts_(b, s);
}

static const char *const kind_names[] = {"counter", "gauge", "histogram"};

static void render_family(struct buf *b, const struct family *f) {
    if (f->help) {
        puts_(b, "# HELP ");
        puts_(b, f->name);
        puts_(b, " ");
        put_escaped(b, f->help, 0);
        puts_(b, "\n");
    }
    puts_(b, "# TYPE ");
    puts_(b, f->name);
    puts_(b, " ");
    puts_(b, kind_names[f->kind]);
    puts_(b, "\n");
    if (f->kind == ETL_HISTOGRAM) {
        unsigned long long cum = 0;
        for (size_t i = 0; i <= f->nbounds; i++) {
            cum += f->counts[i];
            puts_(b, f->name);
            puts_(b, "_bucket{le=\"");
            if (i < f->nbounds) put_number(b, f->bounds[i]);
            else puts_(b, "+Inf");
            puts_(b, "\"} ");
            put_u64(b, cum);
            puts_(b, "\n");
        }
        puts_(b, f->name);
        puts_(b, "_sum ");
        put_number(b, f->sum);
        puts_(b, "\n");
        puts_(b, f->name);
        puts_(b, "_count ");
        put_u64(b, f->count);
        puts_(b, "\n");
        return;
    }
    if (f->label == NULL && f->nseries == 0) { /* an unlabelled family is 0 before any update */
        puts_(b, f->name);
        puts_(b, " 0\n");
    }
    for (size_t i = 0; i < f->nseries; i++) {
        puts_(b, f->name);
        if (f->label) {
            puts_(b, "{");
            puts_(b, f->label);
            puts_(b, "=\"");
            put_escaped(b, f->series[i].label_value, 1);
            puts_(b, "\"}");
        }
        puts_(b, " ");
        put_number(b, f->series[i].value);
        puts_(b, "\n");
    }
}

char *etl_metrics_render(struct etl_metrics *m, size_t *len) {
    struct buf b = {0};
    puts_(&b, ""); /* an empty registry renders as "" (not NULL) */
    pthread_mutex_lock(&m->lock);
    for (int i = 0; i < m->nfam; i++) render_family(&b, &m->fam[i]);
    pthread_mutex_unlock(&m->lock);
    if (b.oom) {
        free(b.p);
        return NULL;
    }
    if (len) *len = b.len;
    return b.p;
}

/* ---- the HTTP server ---------------------------------------------------------------------------- */

static enum MHD_Result reply(struct MHD_Connection *c, unsigned int status, const char *type,
                             char *body, size_t len, int must_free) {
    struct MHD_Response *r = MHD_create_response_from_buffer(
        len, body, must_free ? MHD_RESPMEM_MUST_FREE : MHD_RESPMEM_PERSISTENT);
    if (r == NULL) {
        if (must_free) free(body);
        return MHD_NO;
    }
    MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, type);
    enum MHD_Result ret = MHD_queue_response(c, status, r);
    MHD_destroy_response(r);
    return ret;
}

#define TEXT "text/plain; charset=utf-8"

/* Runs on the server thread: reads the registry under its lock, never the Lua state. */
static enum MHD_Result on_request(void *cls, struct MHD_Connection *c, const char *url,
                                  const char *method, const char *version, const char *upload,
                                  size_t *upload_size, void **req) {
    struct etl_metrics *m = cls;
    (void)version;
    (void)upload;
    if (*req == NULL) { /* first call: headers only; answer on the second */
        *req = (void *)1;
        return MHD_YES;
    }
    if (*upload_size != 0) {
        *upload_size = 0; /* ignore any body */
        return MHD_YES;
    }
    if (strcmp(method, MHD_HTTP_METHOD_GET) != 0 && strcmp(method, MHD_HTTP_METHOD_HEAD) != 0) {
        static char msg[] = "method not allowed\n";
        return reply(c, MHD_HTTP_METHOD_NOT_ALLOWED, TEXT, msg, sizeof msg - 1, 0);
    }
    if (strcmp(url, "/metrics") == 0) {
        size_t len;
        char *text = etl_metrics_render(m, &len);
        if (text == NULL) {
            static char msg[] = "out of memory\n";
            return reply(c, MHD_HTTP_INTERNAL_SERVER_ERROR, TEXT, msg, sizeof msg - 1, 0);
        }
        return reply(c, MHD_HTTP_OK, "text/plain; version=0.0.4; charset=utf-8", text, len, 1);
    }
    if (strcmp(url, "/healthz") == 0) {
        static char msg[] = "ok\n";
        return reply(c, MHD_HTTP_OK, TEXT, msg, sizeof msg - 1, 0);
    }
    if (strcmp(url, "/readyz") == 0) {
        static char yes[] = "ready\n", no[] = "not ready\n";
        if (is_ready(m)) return reply(c, MHD_HTTP_OK, TEXT, yes, sizeof yes - 1, 0);
        return reply(c, MHD_HTTP_SERVICE_UNAVAILABLE, TEXT, no, sizeof no - 1, 0);
    }
    static char msg[] = "not found: try /metrics, /healthz or /readyz\n";
    return reply(c, MHD_HTTP_NOT_FOUND, TEXT, msg, sizeof msg - 1, 0);
}

static int fail(char *err, size_t errlen, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
    return -1;
}

/* "1.2.3.4:9108" or "[::1]:9108" -> sockaddr. Numeric only: the address bound is the one given. */
static int parse_addr(const char *addr, struct sockaddr_storage *ss, socklen_t *sslen) {
    char host[64];
    const char *port;
    memset(ss, 0, sizeof *ss);
    if (addr[0] == '[') {
        const char *end = strchr(addr, ']');
        if (end == NULL || end[1] != ':' || (size_t)(end - addr - 1) >= sizeof host) return -1;
        memcpy(host, addr + 1, (size_t)(end - addr - 1));
        host[end - addr - 1] = '\0';
        port = end + 2;
    } else {
        const char *colon = strrchr(addr, ':');
        if (colon == NULL || (size_t)(colon - addr) >= sizeof host) return -1;
        memcpy(host, addr, (size_t)(colon - addr));
        host[colon - addr] = '\0';
        port = colon + 1;
        if (strchr(host, ':')) return -1; /* IPv6 needs brackets */
    }
    if (*port == '\0' || strlen(port) > 5 || strspn(port, "0123456789") != strlen(port)) return -1;
    long p = strtol(port, NULL, 10);
    if (p > 65535) return -1;
    struct sockaddr_in *v4 = (struct sockaddr_in *)ss;
    struct sockaddr_in6 *v6 = (struct sockaddr_in6 *)ss;
    if (addr[0] != '[' && inet_pton(AF_INET, host, &v4->sin_addr) == 1) {
        v4->sin_family = AF_INET;
        v4->sin_port = htons((unsigned short)p);
        *sslen = sizeof *v4;
        return 0;
    }
    if (addr[0] == '[' && inet_pton(AF_INET6, host, &v6->sin6_addr) == 1) {
        v6->sin6_family = AF_INET6;
        v6->sin6_port = htons((unsigned short)p);
        *sslen = sizeof *v6;
        return 0;
    }
    return -1;
}

static void format_addr(const struct sockaddr_storage *ss, char *out, size_t outlen) {
    char host[INET6_ADDRSTRLEN] = "?";
    if (ss->ss_family == AF_INET6) {
        const struct sockaddr_in6 *v6 = (const struct sockaddr_in6 *)ss;
        inet_ntop(AF_INET6, &v6->sin6_addr, host, sizeof host);
        snprintf(out, outlen, "[%s]:%u", host, (unsigned)ntohs(v6->sin6_port));
    } else {
        const struct sockaddr_in *v4 = (const struct sockaddr_in *)ss;
        inet_ntop(AF_INET, &v4->sin_addr, host, sizeof host);
        snprintf(out, outlen, "%s:%u", host, (unsigned)ntohs(v4->sin_port));
    }
}

int etl_metrics_serve(struct etl_metrics *m, const char *addr, char *bound, size_t boundlen,
                      char *err, size_t errlen) {
    struct sockaddr_storage ss;
    socklen_t sslen;
    if (m->daemon) return fail(err, errlen, "the metrics server is already running");
    if (parse_addr(addr, &ss, &sslen) != 0) {
        return fail(err, errlen, "'%s' is not a numeric address:port such as 127.0.0.1:9108, "
                                 "0.0.0.0:9108 or [::1]:9108", addr);
    }
    int fd = socket(ss.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) return fail(err, errlen, "cannot listen on %s: %s", addr, strerror(errno));
    int one = 1;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    if (ss.ss_family == AF_INET6) setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof one);
    if (bind(fd, (struct sockaddr *)&ss, sslen) != 0 || listen(fd, 64) != 0) {
        int e = errno;
        close(fd);
        return fail(err, errlen, "cannot listen on %s: %s", addr, strerror(e));
    }
    sslen = sizeof ss;
    getsockname(fd, (struct sockaddr *)&ss, &sslen);

    /* The server thread inherits this thread's signal mask: keep SIGTERM/SIGINT/SIGHUP for the
     * main thread, whose sleeps they cut short. */
    sigset_t block, old;
    sigemptyset(&block);
    sigaddset(&block, SIGTERM);
    sigaddset(&block, SIGINT);
    sigaddset(&block, SIGHUP);
    sigaddset(&block, SIGPIPE);
    pthread_sigmask(SIG_BLOCK, &block, &old);
    m->daemon = MHD_start_daemon(MHD_USE_INTERNAL_POLLING_THREAD, 0, NULL, NULL, on_request, m,
                                 MHD_OPTION_LISTEN_SOCKET, (MHD_socket)fd,
                                 MHD_OPTION_CONNECTION_LIMIT, (unsigned int)32,
                                 MHD_OPTION_CONNECTION_TIMEOUT, (unsigned int)10,
                                 MHD_OPTION_END);
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    if (m->daemon == NULL) {
        if (fcntl(fd, F_GETFD) != -1) close(fd);
        return fail(err, errlen, "cannot start the metrics server on %s (libmicrohttpd)", addr);
    }
    format_addr(&ss, bound, boundlen);
    return 0;
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
