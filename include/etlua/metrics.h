/* metrics.h: the metrics primitive (etlua.metrics). A small registry of counters, gauges and
 * histograms (src/metrics.c), the standard process metrics read at scrape time
 * (src/metrics_process.c) and its Prometheus text exposition, format 0.0.4
 * (src/metrics_text.c). The HTTP server answering /metrics, /healthz and /readyz is
 * metrics_server.h; the Lua binding (src/metrics_lua.c) owns one of each. The dependencies go
 * one way: binding -> server -> exposition -> registry -> process metrics.
 *
 * The registry is shared between the Lua thread (updates) and the server thread (rendering):
 * every function below takes the registry's mutex, so any of them may be called from either
 * thread. No Lua state is touched from the server thread. */
#ifndef ETLUA_METRICS_H
#define ETLUA_METRICS_H

#include <stddef.h>

struct etl_metrics;

enum etl_metric_kind { ETL_COUNTER, ETL_GAUGE, ETL_HISTOGRAM };

#define ETL_METRICS_MAX_FAMILIES 64
#define ETL_METRICS_MAX_SERIES 256 /* label values per family; more fold into "_other" */
#define ETL_METRICS_MAX_BUCKETS 32

/* A new, empty registry, or NULL when out of memory. */
struct etl_metrics *etl_metrics_new(void);

/* Frees the registry (stop a server started on it first). NULL is a no-op. */
void etl_metrics_free(struct etl_metrics *m);

/* Declares a family and returns its index (>= 0), or -1 with *err set to a static message:
 * invalid name (Prometheus: [a-zA-Z_:][a-zA-Z0-9_:]*, label [a-zA-Z_][a-zA-Z0-9_]*, no "__"
 * prefix for labels), duplicate name, too many families, bad buckets, out of memory.
 * label may be NULL (a single unlabelled series). Histograms have no label; bounds must be
 * finite and strictly increasing (the +Inf bucket is implicit). help may be NULL. */
int etl_metrics_add(struct etl_metrics *m, enum etl_metric_kind kind, const char *name,
                    const char *help, const char *label, const double *bounds, size_t nbounds,
                    const char **err);

/* Adds v to a counter or gauge series (label_value NULL or ignored for an unlabelled family),
 * or sets a gauge series to v. Return 0, or -1 when id is not a family of that kind, or for a
 * counter when v is negative or not finite. */
int etl_metrics_inc(struct etl_metrics *m, int id, const char *label_value, double v);
int etl_metrics_set(struct etl_metrics *m, int id, const char *label_value, double v);

/* Records one observation in a histogram. Returns 0, or -1 (not a histogram, v NaN). */
int etl_metrics_observe(struct etl_metrics *m, int id, double v);

/* The whole registry as Prometheus text (0.0.4): families in declaration order, series in
 * order of first use, label values and help text escaped. Returns a malloc'd NUL-terminated
 * string (length in *len when len is not NULL), or NULL when out of memory. A pure function of
 * the registry's contents: tests call it without a server. */
char *etl_metrics_render(struct etl_metrics *m, size_t *len);

/* Gives every family the label name="value", first among a series' labels (histogram buckets
 * too; the process metrics do not carry it). Returns 0, or -1 with *err set: invalid label
 * name, a family already uses that label, out of memory. Called again, it changes the value.
 * A family declared afterwards may not use that label name either. */
int etl_metrics_set_constant_label(struct etl_metrics *m, const char *name, const char *value,
                                   const char **err);

/* Adds the standard process metrics to the rendering, after the families, read from the kernel
 * at each scrape (so they move while the Lua thread is busy): process_cpu_seconds_total
 * (getrusage), process_resident_memory_bytes and process_virtual_memory_bytes
 * (/proc/self/statm), process_start_time_seconds, process_open_fds, process_max_fds. A sample
 * that cannot be read on this system is left out. */
void etl_metrics_enable_process(struct etl_metrics *m);

/* Readiness, as /readyz reports it (0 until set). */
void etl_metrics_set_ready(struct etl_metrics *m, int ready);

/* Readiness as set by etl_metrics_set_ready (0 until set). */
int etl_metrics_is_ready(struct etl_metrics *m);

#endif
