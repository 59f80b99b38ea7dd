/* metrics.c: the registry of etlua.metrics: counters, gauges and histograms (declaring
 * families, the constant label, updates, readiness, the switch for the process metrics). Of the
 * module it uses only metrics_process.c (the start time, read once when the process metrics are
 * switched on): rendering (metrics_text.c) reads it, the HTTP server (metrics_server.c) serves that rendering, and the
 * Lua binding (metrics_lua.c) owns a registry and at most one server, and stops the server
 * before it frees the registry (include/etlua/metrics_internal.h lists what they share).
 *
 * Threads: the Lua thread updates the registry, the server thread renders it. One pthread mutex
 * guards the whole registry; updates are a few per batch, so it is never contended for long.
 * The server thread never touches the Lua state: it only reads the registry and the ready flag. */
#include "etlua/metrics_internal.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

struct etl_metrics *etl_metrics_new(void)
{
    struct etl_metrics *m = calloc(1, sizeof *m);
    if (m == NULL)
        return NULL;
    if (pthread_mutex_init(&m->lock, NULL) != 0) {
        free(m);
        return NULL;
    }
    return m;
}

void etl_metrics_free(struct etl_metrics *m)
{
    if (m == NULL)
        return;
    for (int i = 0; i < m->nfam; i++) {
        struct family *f = &m->fam[i];
        for (size_t j = 0; j < f->nseries; j++)
            free(f->series[j].label_value);
        free(f->series);
        free(f->name);
        free(f->help);
        free(f->label);
    }
    free(m->const_label);
    free(m->const_value);
    pthread_mutex_destroy(&m->lock);
    free(m);
}

/* ---- declaring families ------------------------------------------------------------------------ */

static int valid_name(const char *s, int colon)
{
    if (s == NULL || *s == '\0')
        return 0;
    for (const char *p = s; *p; p++) {
        char c = *p;
        int ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' ||
                 (colon && c == ':') || (p != s && c >= '0' && c <= '9');
        if (!ok)
            return 0;
    }
    return 1;
}

static char *dup_or_null(const char *s, int *oom)
{
    if (s == NULL)
        return NULL;
    char *d = strdup(s);
    if (d == NULL)
        *oom = 1;
    return d;
}

int etl_metrics_add(struct etl_metrics *m, enum etl_metric_kind kind, const char *name,
                    const char *help, const char *label, const double *bounds, size_t nbounds,
                    const char **err)
{
    const char *e = NULL;
    int id = -1;
    if (!valid_name(name, 1))
        e = "invalid metric name";
    else if (label &&
             (!valid_name(label, 0) || strncmp(label, "__", 2) == 0 || strcmp(label, "le") == 0))
        e = "invalid label name";
    else if (kind == ETL_HISTOGRAM && label)
        e = "histograms take no label";
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
        if (err)
            *err = e;
        return -1;
    }
    pthread_mutex_lock(&m->lock);
    for (int i = 0; i < m->nfam; i++) {
        if (strcmp(m->fam[i].name, name) == 0)
            e = "duplicate metric name";
    }
    if (e == NULL && label && m->const_label && strcmp(label, m->const_label) == 0)
        e = "the label is the registry's constant label";
    if (e == NULL && m->nfam >= ETL_METRICS_MAX_FAMILIES)
        e = "too many metric families";
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
    if (e && err)
        *err = e;
    return id;
}

int etl_metrics_set_constant_label(struct etl_metrics *m, const char *name, const char *value,
                                   const char **err)
{
    const char *e = NULL;
    if (!valid_name(name, 0) || strncmp(name, "__", 2) == 0 || strcmp(name, "le") == 0)
        e = "invalid label name";
    else if (value == NULL)
        e = "no label value";
    char *n = NULL, *v = NULL;
    if (e == NULL && ((n = strdup(name)) == NULL || (v = strdup(value)) == NULL))
        e = "out of memory";
    if (e == NULL) {
        pthread_mutex_lock(&m->lock);
        for (int i = 0; i < m->nfam; i++) {
            if (m->fam[i].label && strcmp(m->fam[i].label, name) == 0)
                e = "a family already uses that label";
        }
        if (e == NULL) {
            free(m->const_label);
            free(m->const_value);
            m->const_label = n;
            m->const_value = v;
            n = v = NULL;
        }
        pthread_mutex_unlock(&m->lock);
    }
    free(n);
    free(v);
    if (e && err)
        *err = e;
    return e ? -1 : 0;
}

void etl_metrics_enable_process(struct etl_metrics *m)
{
    double start = etl_process_start_time(); /* reads /proc: outside the lock */
    pthread_mutex_lock(&m->lock);
    m->process = 1;
    m->start_time = start;
    pthread_mutex_unlock(&m->lock);
}

/* ---- updates (callers hold the lock) ------------------------------------------------------------ */

/* The series of family f for label value lv (created on first use), or NULL (out of memory).
 * Past ETL_METRICS_MAX_SERIES label values, new ones share the series "_other". */
static struct series *find_series(struct family *f, const char *lv)
{
    if (f->label == NULL)
        lv = NULL;
    else if (lv == NULL)
        lv = "";
    for (size_t i = 0; i < f->nseries; i++) {
        const char *have = f->series[i].label_value;
        if (lv == NULL || strcmp(have, lv) == 0)
            return &f->series[i];
    }
    if (lv && f->nseries >= ETL_METRICS_MAX_SERIES) {
        lv = "_other";
        for (size_t i = 0; i < f->nseries; i++) {
            if (strcmp(f->series[i].label_value, lv) == 0)
                return &f->series[i];
        }
    }
    if (f->nseries == f->cap) {
        size_t cap = f->cap ? 2 * f->cap : 4;
        struct series *s = realloc(f->series, cap * sizeof *s);
        if (s == NULL)
            return NULL;
        f->series = s;
        f->cap = cap;
    }
    struct series *s = &f->series[f->nseries];
    s->label_value = NULL;
    if (lv && (s->label_value = strdup(lv)) == NULL)
        return NULL;
    s->value = 0;
    f->nseries++;
    return s;
}

static struct family *family_of(struct etl_metrics *m, int id, enum etl_metric_kind kind)
{
    if (id < 0 || id >= m->nfam || m->fam[id].kind != kind)
        return NULL;
    return &m->fam[id];
}

static int update(struct etl_metrics *m, int id, const char *lv, double v, int set)
{
    int rc = -1;
    pthread_mutex_lock(&m->lock);
    struct family *f = NULL;
    if (id >= 0 && id < m->nfam)
        f = &m->fam[id];
    if (f && f->kind == ETL_COUNTER && (set || !(v >= 0) || !isfinite(v)))
        f = NULL;
    if (f && f->kind == ETL_HISTOGRAM)
        f = NULL;
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

int etl_metrics_inc(struct etl_metrics *m, int id, const char *label_value, double v)
{
    return update(m, id, label_value, v, 0);
}

int etl_metrics_set(struct etl_metrics *m, int id, const char *label_value, double v)
{
    return update(m, id, label_value, v, 1);
}

int etl_metrics_observe(struct etl_metrics *m, int id, double v)
{
    if (isnan(v))
        return -1;
    pthread_mutex_lock(&m->lock);
    struct family *f = family_of(m, id, ETL_HISTOGRAM);
    if (f) {
        size_t b = 0;
        while (b < f->nbounds && v > f->bounds[b])
            b++; /* le: upper bounds are inclusive */
        f->counts[b]++;
        f->count++;
        f->sum += v;
    }
    pthread_mutex_unlock(&m->lock);
    return f ? 0 : -1;
}

void etl_metrics_set_ready(struct etl_metrics *m, int ready)
{
    pthread_mutex_lock(&m->lock);
    m->ready = ready != 0;
    pthread_mutex_unlock(&m->lock);
}

int etl_metrics_is_ready(struct etl_metrics *m)
{
    pthread_mutex_lock(&m->lock);
    int r = m->ready;
    pthread_mutex_unlock(&m->lock);
    return r;
}
