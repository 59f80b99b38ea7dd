/* scrub_internal.h: what the parts of the scrubber share (src/scrub_text.c drives them; the
 * detectors are src/scrub_detect.c and src/scrub_match.c). A detector appends the spans it
 * finds to a growable array, in increasing order of start (raw values and addresses without
 * overlaps; keyed values may nest); the driver merges the three lists and writes the text once. Not a public interface. */
#ifndef ETLUA_SCRUB_INTERNAL_H
#define ETLUA_SCRUB_INTERNAL_H

#include <stdlib.h>

#include "etlua/scrub.h"

enum etl_scrub_span_kind {
    ETL_SCRUB_SPAN_HEX, /* replaced by hex (a raw value's mask, known in advance) */
    ETL_SCRUB_SPAN_HASH /* replaced by the mask of text[rs..re) in canonical form */
};

struct etl_scrub_span {
    size_t start, end; /* the text replaced: [start, end) */
    int kind;
    int canonical;
    size_t rs, re; /* the text the replacement stands for (within [start, end)) */
    const char *hex;
};

struct etl_scrub_spans {
    struct etl_scrub_span *v;
    size_t n, cap;
};

static inline int etl_scrub_spans_push(struct etl_scrub_spans *s, const struct etl_scrub_span *sp)
{
    if (s->n == s->cap) {
        size_t cap = s->cap ? s->cap * 2 : 16;
        struct etl_scrub_span *v = realloc(s->v, cap * sizeof *v);
        if (v == NULL)
            return -1;
        s->v = v;
        s->cap = cap;
    }
    s->v[s->n++] = *sp;
    return 0;
}

/* The detectors: each appends its spans ordered by start; 0, or -1 out of memory. */
int etl_scrub_match(const struct etl_scrub_patterns *p, const char *t, size_t n,
                    struct etl_scrub_spans *out);
int etl_scrub_addresses(const char *t, size_t n, struct etl_scrub_spans *out);
int etl_scrub_keyed(const struct etl_scrub_key *keys, size_t nkeys, const char *t, size_t n,
                    struct etl_scrub_spans *out);

#endif
