/* sigv4_internal.h: what src/sigv4.c (signing) and src/sigv4_canonical.c (the canonical
 * request's parts) share. Private to them; the API is include/etlua/sigv4.h. */
#ifndef ETLUA_SIGV4_INTERNAL_H
#define ETLUA_SIGV4_INTERNAL_H

#include "etlua/sigv4.h"

#include <stdlib.h>
#include <string.h>

/* A growable string on a caller's buffer first, the heap past it; every append reports failure
 * by leaving ok = 0. */
struct sbuf {
    char *p;
    size_t len, cap;
    int ok, heap;
};

#define SBUF_ON(buf) {.p = (buf), .cap = sizeof(buf), .ok = 1}

static inline void sb_reserve(struct sbuf *b, size_t extra)
{
    if (!b->ok)
        return;
    if (b->len + extra + 1 <= b->cap)
        return;
    size_t cap = b->cap ? b->cap : 256;
    while (cap < b->len + extra + 1)
        cap *= 2;
    char *p = b->heap ? realloc(b->p, cap) : malloc(cap);
    if (!p) {
        b->ok = 0;
        return;
    }
    if (!b->heap && b->len)
        memcpy(p, b->p, b->len);
    b->p = p;
    b->cap = cap;
    b->heap = 1;
}

static inline void sb_free(struct sbuf *b)
{
    if (b->heap)
        free(b->p);
    b->p = NULL;
    b->heap = 0;
}

static inline void sb_addn(struct sbuf *b, const char *s, size_t n)
{
    sb_reserve(b, n);
    if (!b->ok)
        return;
    memcpy(b->p + b->len, s, n);
    b->len += n;
    b->p[b->len] = '\0';
}

static inline void sb_add(struct sbuf *b, const char *s) { sb_addn(b, s, strlen(s)); }

/* The parts of a URL the signature needs. Pointers into the URL; lengths beside them. */
struct url_parts {
    const char *host, *path, *query;
    size_t host_len, path_len, query_len;
    long port; /* -1: none given */
    int https;
};

/* Each returns 0 or -1 (int) or appends to its sbuf, leaving ok = 0 on failure (void). */
int etl_sigv4_url_split(const char *url, struct url_parts *u);
void etl_sigv4_canonical_path(struct sbuf *b, const char *path, size_t len);
void etl_sigv4_canonical_query(struct sbuf *b, const char *q, size_t len);
void etl_sigv4_canonical_headers(struct sbuf *ch, struct sbuf *sh, const struct etl_sigv4_input *in,
                              const struct etl_sigv4_output *out);
int etl_sigv4_set_host(struct etl_sigv4_output *out, const struct url_parts *u);

#endif
