/* scrub_text.c: the scrubber's driver (etl_scrub_text, etl_scrub_clean; include/etlua/scrub.h).
 * Four linear passes over one text: the hygiene (UTF-8 checked by RFC 3629: each byte that does
 * not start a well-formed sequence becomes U+FFFD, NUL is dropped), then the three detectors on
 * the cleaned text (raw values, addresses, keyed values: src/scrub_match.c, src/scrub_detect.c),
 * then a three-way merge of their ordered span lists into disjoint spans (overlapping spans become
 * one, replaced by the mask of the longest), and one write of the result. */
#include "etlua/json_lex.h"
#include "etlua/scrub_internal.h"

#include <string.h>

/* ---- hygiene ---------------------------------------------------------------------------------- */

/* Length of the well-formed UTF-8 sequence at t[i], or 0: etl_json_utf8_seq's rule (RFC 3629,
 * table 3-7 of Unicode; include/etlua/json_lex.h). ASCII is answered here, as that function would:
 * through it (its out-parameter) the pass over ASCII text took 1.5x as long. */
static size_t utf8_len(const unsigned char *t, size_t n, size_t i)
{
    if (t[i] < 0x80)
        return 1;
    int valid;
    size_t k = etl_json_utf8_seq(t + i, n - i, &valid);
    return valid ? k : 0;
}

int etl_scrub_clean(const char *in, size_t len, char **out, size_t *outlen)
{
    const unsigned char *t = (const unsigned char *)in;
    size_t i = 0, k;
    while (i < len && t[i] != 0 && (k = utf8_len(t, len, i)) != 0)
        i += k;
    if (i == len)
        return ETL_SCRUB_SAME;
    if (len > ((size_t)-1) / 3)
        return ETL_SCRUB_NOMEM;
    char *buf = malloc(len * 3 + 1), *w = buf;
    if (buf == NULL)
        return ETL_SCRUB_NOMEM;
    memcpy(w, in, i);
    w += i;
    while (i < len) {
        if (t[i] == 0) {
            i++;
        } else if ((k = utf8_len(t, len, i)) != 0) {
            memcpy(w, t + i, k);
            w += k;
            i += k;
        } else {
            memcpy(w, "\xEF\xBF\xBD", 3);
            w += 3;
            i++;
        }
    }
    *out = buf;
    *outlen = (size_t)(w - buf);
    return ETL_SCRUB_NEW;
}

/* ---- replacement of one span ------------------------------------------------------------------ */

static int blank(unsigned char c) { return c == ' ' || (c >= '\t' && c <= '\r'); }

static int hash_span(const struct etl_scrub_cfg *cfg, const char *t,
                     const struct etl_scrub_span *sp, char hex[ETL_MASK_HEX_LEN + 1])
{
    size_t rs = sp->rs, re = sp->re;
    if (sp->kind == ETL_SCRUB_SPAN_HEX) {
        memcpy(hex, sp->hex, ETL_MASK_HEX_LEN);
        hex[ETL_MASK_HEX_LEN] = '\0';
        return 0;
    }
    if (cfg->hash == NULL)
        return -1;
    switch (sp->canonical) {
    case ETL_SCRUB_CANON_IP: {
        char ip[ETL_MASK_IP_MAX];
        if (etl_mask_canonical_ip(t + rs, re - rs, ip) != 0)
            return cfg->hash(cfg->hash_ud, ip, strlen(ip), hex);
        break;
    }
    case ETL_SCRUB_CANON_LOWER: {
        char *low = malloc(re - rs + 1);
        if (low == NULL)
            return -1;
        for (size_t i = rs; i < re; i++) {
            unsigned char c = (unsigned char)t[i];
            low[i - rs] = (char)((c >= 'A' && c <= 'Z') ? c + 32 : c);
        }
        int rc = cfg->hash(cfg->hash_ud, low, re - rs, hex);
        free(low);
        return rc;
    }
    case ETL_SCRUB_CANON_TRIM:
        while (rs < re && blank((unsigned char)t[rs]))
            rs++;
        while (re > rs && blank((unsigned char)t[re - 1]))
            re--;
        break;
    default:
        break;
    }
    return cfg->hash(cfg->hash_ud, t + rs, re - rs, hex);
}

/* ---- merge and write -------------------------------------------------------------------------- */

/* Merges three lists of spans ordered by start into out: overlapping spans become one. */
static int merge(struct etl_scrub_spans lists[3], struct etl_scrub_spans *out)
{
    size_t at[3] = {0, 0, 0};
    for (;;) {
        int best = -1;
        for (int l = 0; l < 3; l++)
            if (at[l] < lists[l].n &&
                (best < 0 || lists[l].v[at[l]].start < lists[best].v[at[best]].start))
                best = l;
        if (best < 0)
            return 0;
        const struct etl_scrub_span *sp = &lists[best].v[at[best]++];
        struct etl_scrub_span *cur = out->n ? &out->v[out->n - 1] : NULL;
        if (cur && sp->start < cur->end) {
            if (sp->end > cur->end)
                cur->end = sp->end;
            if (sp->re - sp->rs > cur->re - cur->rs) {
                cur->kind = sp->kind;
                cur->canonical = sp->canonical;
                cur->rs = sp->rs;
                cur->re = sp->re;
                cur->hex = sp->hex;
            }
        } else if (etl_scrub_spans_push(out, sp) != 0) {
            return -1;
        }
    }
}

static int write_out(const struct etl_scrub_cfg *cfg, const char *t, size_t n,
                     const struct etl_scrub_spans *sp, char **out, size_t *outlen)
{
    size_t size = n;
    for (size_t i = 0; i < sp->n; i++)
        size = size - (sp->v[i].end - sp->v[i].start) + ETL_MASK_HEX_LEN;
    char *buf = malloc(size + 1), *w = buf;
    if (buf == NULL)
        return ETL_SCRUB_NOMEM;
    size_t pos = 0;
    for (size_t i = 0; i < sp->n; i++) {
        char hex[ETL_MASK_HEX_LEN + 1];
        memcpy(w, t + pos, sp->v[i].start - pos);
        w += sp->v[i].start - pos;
        if (hash_span(cfg, t, &sp->v[i], hex) != 0) {
            free(buf);
            return ETL_SCRUB_HASH_FAILED;
        }
        memcpy(w, hex, ETL_MASK_HEX_LEN);
        w += ETL_MASK_HEX_LEN;
        pos = sp->v[i].end;
    }
    memcpy(w, t + pos, n - pos);
    w += n - pos;
    *out = buf;
    *outlen = (size_t)(w - buf);
    return ETL_SCRUB_NEW;
}

int etl_scrub_text(const struct etl_scrub_cfg *cfg, const char *in, size_t len, char **out,
                   size_t *outlen)
{
    char *clean = NULL;
    size_t n = len;
    int rc = etl_scrub_clean(in, len, &clean, &n);
    if (rc < 0)
        return rc;
    const char *t = clean ? clean : in;
    struct etl_scrub_spans lists[3] = {{0}}, merged = {0};
    if (etl_scrub_match(cfg->patterns, t, n, &lists[0]) != 0 ||
        etl_scrub_addresses(t, n, &lists[1]) != 0 ||
        etl_scrub_keyed(cfg->keys, cfg->nkeys, t, n, &lists[2]) != 0) {
        rc = ETL_SCRUB_NOMEM;
    } else if (lists[2].n == 0 && (lists[0].n == 0) != (lists[1].n == 0)) {
        /* only raw values or only addresses: that list is already ordered and disjoint (the
         * keyed list is ordered by start but may nest: a key read again inside a value) */
        rc = write_out(cfg, t, n, &lists[lists[0].n ? 0 : 1], out, outlen);
    } else if (merge(lists, &merged) != 0) {
        rc = ETL_SCRUB_NOMEM;
    } else if (merged.n == 0) {
        rc = ETL_SCRUB_SAME;
        if (clean) { /* only the hygiene changed it */
            *out = clean;
            *outlen = n;
            clean = NULL;
            rc = ETL_SCRUB_NEW;
        }
    } else {
        rc = write_out(cfg, t, n, &merged, out, outlen);
    }
    for (int l = 0; l < 3; l++)
        free(lists[l].v);
    free(merged.v);
    free(clean);
    return rc;
}
