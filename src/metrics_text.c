/* metrics_text.c: the Prometheus text exposition (format 0.0.4) of an etlua.metrics registry:
 * families in declaration order, series in order of first use, HELP text and label values
 * escaped, sample values in the shortest form that reads back exactly. etl_metrics_render copies
 * the registry into the growable buffer (etlua/buf.h) under its lock and touches nothing else:
 * tests call it without a server, and the server thread calls it for /metrics. */
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
static void put_escaped(struct etl_buf *b, const char *s, int quote) {
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
static void put_number(struct etl_buf *b, double v) {
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

static void put_u64(struct etl_buf *b, unsigned long long v) {
    char s[24];
    snprintf(s, sizeof s, "%llu", v);
    puts_(b, s);
}

static const char *const kind_names[] = {"counter", "gauge", "histogram"};

static void render_family(struct etl_buf *b, const struct family *f) {
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
    struct etl_buf b = {0};
    pthread_mutex_lock(&m->lock);
    for (int i = 0; i < m->nfam; i++) render_family(&b, &m->fam[i]);
    pthread_mutex_unlock(&m->lock);
    return etl_buf_take(&b, len); /* "" for an empty registry; NULL when out of memory */
}
