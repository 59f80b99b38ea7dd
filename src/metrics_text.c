/* metrics_text.c: the Prometheus text exposition (format 0.0.4) of an etlua.metrics registry:
 * families in declaration order, series in order of first use, the constant label first in
 * every series, HELP text and label values escaped, sample values in the shortest form that
 * reads back exactly; then, when enabled, the process metrics (metrics_process.c, read before
 * the lock is taken). etl_metrics_render copies the registry into the growable buffer
 * (etlua/buf.h) under its lock: tests call it without a server, and the server thread calls it
 * for /metrics. */
#include "etlua/buf.h"
#include "etlua/metrics_internal.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- rendering ------------------------------------------------------------------------------------ */

/* Appends to the one growable buffer (etlua/buf.h); an allocation failure is seen at the end. */
static void put(struct etl_buf *b, const char *s, size_t n) { etl_buf_add(b, s, n); }

static void puts_(struct etl_buf *b, const char *s) { put(b, s, strlen(s)); }

/* Escapes for HELP text (\\ and \n) or, with quote, for label values (\\, \" and \n). */
static void put_escaped(struct etl_buf *b, const char *s, int quote)
{
    const char *run = s;
    for (; *s; s++) {
        const char *rep = NULL;
        if (*s == '\\')
            rep = "\\\\";
        else if (*s == '\n')
            rep = "\\n";
        else if (quote && *s == '"')
            rep = "\\\"";
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
#define NUMBER_LEN 40

static void format_number(char s[NUMBER_LEN], double v)
{
    if (isnan(v))
        snprintf(s, NUMBER_LEN, "NaN");
    else if (isinf(v))
        snprintf(s, NUMBER_LEN, v > 0 ? "+Inf" : "-Inf");
    else if (v == floor(v) && fabs(v) < 1e15)
        snprintf(s, NUMBER_LEN, "%.0f", v == 0 ? 0.0 : v);
    else {
        snprintf(s, NUMBER_LEN, "%.15g", v);
        if (strtod(s, NULL) != v)
            snprintf(s, NUMBER_LEN, "%.17g", v);
    }
}

static void put_number(struct etl_buf *b, double v)
{
    char s[NUMBER_LEN];
    format_number(s, v);
    puts_(b, s);
}

static void put_u64(struct etl_buf *b, unsigned long long v)
{
    char s[24];
    snprintf(s, sizeof s, "%llu", v);
    puts_(b, s);
}

static const char *const kind_names[] = {"counter", "gauge", "histogram"};

static void put_header(struct etl_buf *b, const char *name, const char *help, const char *kind)
{
    if (help) {
        puts_(b, "# HELP ");
        puts_(b, name);
        puts_(b, " ");
        put_escaped(b, help, 0);
        puts_(b, "\n");
    }
    puts_(b, "# TYPE ");
    puts_(b, name);
    puts_(b, " ");
    puts_(b, kind);
    puts_(b, "\n");
}

/* The constant label (when set), then name="value" (when name is not NULL), as {...}; nothing
 * when there is neither. */
struct labels {
    const char *const_name, *const_value;
};

static void put_labels(struct etl_buf *b, const struct labels *c, const char *name,
                       const char *value)
{
    if (c->const_name == NULL && name == NULL)
        return;
    puts_(b, "{");
    if (c->const_name) {
        puts_(b, c->const_name);
        puts_(b, "=\"");
        put_escaped(b, c->const_value, 1);
        puts_(b, "\"");
        if (name)
            puts_(b, ",");
    }
    if (name) {
        puts_(b, name);
        puts_(b, "=\"");
        put_escaped(b, value, 1);
        puts_(b, "\"");
    }
    puts_(b, "}");
}

/* name[suffix]{labels} value\n */
static void put_sample(struct etl_buf *b, const char *name, const char *suffix,
                       const struct labels *c, const char *label, const char *value)
{
    puts_(b, name);
    if (suffix)
        puts_(b, suffix);
    put_labels(b, c, label, value);
    puts_(b, " ");
}

static void render_family(struct etl_buf *b, const struct family *f, const struct labels *c)
{
    put_header(b, f->name, f->help, kind_names[f->kind]);
    if (f->kind == ETL_HISTOGRAM) {
        unsigned long long cum = 0;
        char le[NUMBER_LEN];
        for (size_t i = 0; i <= f->nbounds; i++) {
            cum += f->counts[i];
            if (i < f->nbounds)
                format_number(le, f->bounds[i]);
            else
                snprintf(le, sizeof le, "+Inf");
            put_sample(b, f->name, "_bucket", c, "le", le);
            put_u64(b, cum);
            puts_(b, "\n");
        }
        put_sample(b, f->name, "_sum", c, NULL, NULL);
        put_number(b, f->sum);
        puts_(b, "\n");
        put_sample(b, f->name, "_count", c, NULL, NULL);
        put_u64(b, f->count);
        puts_(b, "\n");
        return;
    }
    if (f->label == NULL && f->nseries == 0) { /* an unlabelled family is 0 before any update */
        put_sample(b, f->name, NULL, c, NULL, NULL);
        puts_(b, "0\n");
    }
    for (size_t i = 0; i < f->nseries; i++) {
        put_sample(b, f->name, NULL, c, f->label, f->series[i].label_value);
        put_number(b, f->series[i].value);
        puts_(b, "\n");
    }
}

/* One process metric, left out when unknown (v < 0). No constant label: these describe the
 * process, which the scrape's own job and instance labels name. */
static void put_process(struct etl_buf *b, const char *name, const char *kind, const char *help,
                        double v)
{
    static const struct labels none = {NULL, NULL};
    if (v < 0)
        return;
    put_header(b, name, help, kind);
    put_sample(b, name, NULL, &none, NULL, NULL);
    put_number(b, v);
    puts_(b, "\n");
}

static void render_process(struct etl_buf *b, const struct etl_process_stats *p, double start)
{
    put_process(b, "process_cpu_seconds_total", "counter",
                "Total user and system CPU time spent in seconds.", p->cpu_seconds);
    put_process(b, "process_resident_memory_bytes", "gauge", "Resident memory size in bytes.",
                p->resident_bytes);
    put_process(b, "process_virtual_memory_bytes", "gauge", "Virtual memory size in bytes.",
                p->virtual_bytes);
    put_process(b, "process_start_time_seconds", "gauge",
                "Start time of the process since unix epoch in seconds.", start);
    put_process(b, "process_open_fds", "gauge", "Number of open file descriptors.", p->open_fds);
    put_process(b, "process_max_fds", "gauge", "Maximum number of open file descriptors.",
                p->max_fds);
}

char *etl_metrics_render(struct etl_metrics *m, size_t *len)
{
    struct etl_buf b = {0};
    struct etl_process_stats p;
    pthread_mutex_lock(&m->lock);
    int process = m->process;
    pthread_mutex_unlock(&m->lock);
    if (process)
        etl_process_read(&p); /* the kernel's files, outside the lock */
    pthread_mutex_lock(&m->lock);
    struct labels c = {m->const_label, m->const_value};
    for (int i = 0; i < m->nfam; i++)
        render_family(&b, &m->fam[i], &c);
    if (process)
        render_process(&b, &p, m->start_time);
    pthread_mutex_unlock(&m->lock);
    return etl_buf_take(&b, len); /* "" for an empty registry; NULL when out of memory */
}
