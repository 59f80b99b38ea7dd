/* metrics_internal.h: what the C files of etlua.metrics share and nothing outside them uses: the
 * registry's layout (struct etl_metrics and its families and series) and the readiness read the
 * server answers /readyz from. The files:
 *  - src/metrics_process.c the standard process metrics (CPU, memory, start time, file
 *                          descriptors), read from the kernel at scrape time;
 *  - src/metrics.c         the registry (new, free, declaring families, updates under its
 *                          mutex, readiness);
 *  - src/metrics_text.c    the Prometheus text exposition (etl_metrics_render);
 *  - src/metrics_server.c  the HTTP server (metrics_server.h);
 *  - src/metrics_lua.c     the Lua binding, luaopen_etlua_metrics.
 * Every field below is guarded by lock. */
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
    unsigned long long
        counts[ETL_METRICS_MAX_BUCKETS + 1]; /* per bucket, not cumulative; last = +Inf */
    size_t nbounds;
    double sum;
    unsigned long long count;
};

struct etl_metrics {
    pthread_mutex_t lock;
    struct family fam[ETL_METRICS_MAX_FAMILIES];
    int nfam;
    int ready;
    char *const_label, *const_value; /* the label every family carries (NULL: none) */
    int process;                     /* render the process_* metrics */
    double start_time;               /* process_start_time_seconds, read once when enabled */
};

/* The process metrics of one scrape (src/metrics_process.c); a value < 0 is unknown (no /proc)
 * and its sample is left out. Called outside the registry's lock. */
struct etl_process_stats {
    double cpu_seconds;    /* user + system time of every thread (getrusage RUSAGE_SELF) */
    double resident_bytes; /* /proc/self/statm: resident pages x page size */
    double virtual_bytes;  /* /proc/self/statm: total program size x page size */
    double open_fds;       /* entries of /proc/self/fd */
    double max_fds;        /* RLIMIT_NOFILE, soft limit */
};

void etl_process_read(struct etl_process_stats *s);

/* The process's start time in unix seconds: /proc/self/stat's start time (clock ticks after
 * boot) plus /proc/stat's btime; the current time when those cannot be read. */
double etl_process_start_time(void);

#endif
