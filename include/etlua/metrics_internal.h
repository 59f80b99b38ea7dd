/* metrics_internal.h: what the C files of etlua.metrics share and nothing outside them uses: the
 * registry's layout (struct etl_metrics and its families and series) and the readiness read the
 * server answers /readyz from. The files:
 *  - src/metrics.c         the registry (new, free, declaring families, updates under its
 *                          mutex, readiness) and the Lua binding with luaopen_etlua_metrics;
 *  - src/metrics_text.c    the Prometheus text exposition (etl_metrics_render);
 *  - src/metrics_server.c  the HTTP server (libmicrohttpd): address parsing, binding, requests.
 * Every field below is guarded by lock, except daemon, which only the Lua thread touches
 * (etl_metrics_serve, etl_metrics_free). */
#ifndef ETLUA_METRICS_INTERNAL_H
#define ETLUA_METRICS_INTERNAL_H

#include "etlua/metrics.h"

#include <pthread.h>
#include <stddef.h>

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

/* Readiness as set by etl_metrics_set_ready, read under the registry's lock (metrics.c). */
int etl_metrics_is_ready(struct etl_metrics *m);

#endif
