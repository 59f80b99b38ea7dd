/* fuzz_scrub.c: libFuzzer target for the reject scrubber (etl_scrub_text, src/scrub_*.c).
 *
 * Input: byte 0 = length L of a raw pii value (mod 32), then the value, then the text. The text
 * is scrubbed with that value as the message's only raw value and the keys ip / device_id.
 * Every replacement is written as 64 bytes 0xFF (the hash callback and the value's "mask"): 0xFF
 * never occurs in scrubbed text (it is not UTF-8), so the pieces between markers are exactly
 * what the scrubber kept of the text. Invariants ("no raw pii value survives"):
 *   - no piece contains the raw value (as cleaned: invalid UTF-8 as U+FFFD, NUL dropped);
 *   - no piece holds address-shaped text: scrubbing a piece again finds no address;
 *   - a piece is valid UTF-8 without NUL;
 * and a time bound: every 512th input is also scrubbed repeated up to 256 KiB, which must take
 * under a second (the scanner is linear; the old one was quadratic). */
#include "etlua/scrub.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const struct etl_scrub_key KEYS[] = {
    {"ip", 2, ETL_SCRUB_CANON_IP},
    {"device_id", 9, ETL_SCRUB_CANON_NONE},
};

static int marker(void *ud, const char *s, size_t len, char out[ETL_MASK_HEX_LEN + 1])
{
    (void)ud;
    (void)s;
    (void)len;
    memset(out, 0xFF, ETL_MASK_HEX_LEN);
    out[ETL_MASK_HEX_LEN] = '\0';
    return 0;
}

/* Masks with no hash at all: a piece in which this finds something still held an address. */
static int no_hash(void *ud, const char *s, size_t len, char out[ETL_MASK_HEX_LEN + 1])
{
    (void)s;
    (void)len;
    *(int *)ud = 1;
    memset(out, 'x', ETL_MASK_HEX_LEN);
    out[ETL_MASK_HEX_LEN] = '\0';
    return 0;
}

static int clean_utf8(const char *s, size_t n)
{
    char *out = NULL;
    size_t m;
    int rc = etl_scrub_clean(s, n, &out, &m);
    free(out);
    return rc == ETL_SCRUB_SAME;
}

static void check_piece(const char *p, size_t n, const char *raw, size_t rawlen)
{
    if (!clean_utf8(p, n))
        abort(); /* scrubbed text must be UTF-8 without NUL */
    if (rawlen > 0 && rawlen <= n) {
        for (size_t i = 0; i + rawlen <= n; i++)
            if (memcmp(p + i, raw, rawlen) == 0)
                abort(); /* the raw value survived */
    }
    /* address-shaped text left in a piece: scrubbing it again (addresses only) finds it */
    int found = 0;
    struct etl_scrub_cfg again = {NULL, 0, NULL, no_hash, &found};
    char *out = NULL;
    size_t m;
    int rc = etl_scrub_text(&again, p, n, &out, &m);
    free(out);
    if (rc < 0 || found)
        abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static unsigned long count;
    if (size == 0)
        return 0;
    size_t rawlen = data[0] % 32;
    if (rawlen > size - 1)
        rawlen = size - 1;
    const char *raw = (const char *)data + 1, *text = raw + rawlen;
    size_t n = size - 1 - rawlen;
    char *in = malloc(n ? n : 1); /* an exact-size copy, so ASan sees any read past the end */
    if (in == NULL)
        return 0;
    memcpy(in, text, n);

    char hex[ETL_MASK_HEX_LEN];
    memset(hex, 0xFF, sizeof hex);
    const char *texts[] = {raw}, *hexes[] = {hex};
    struct etl_scrub_patterns *pats = etl_scrub_patterns_new(1, texts, &rawlen, hexes);
    if (pats == NULL)
        abort();
    struct etl_scrub_cfg cfg = {KEYS, 2, pats, marker, NULL};
    char *out = NULL;
    size_t outlen = 0;
    int rc = etl_scrub_text(&cfg, in, n, &out, &outlen);
    if (rc < 0)
        abort();
    const char *res = rc == ETL_SCRUB_NEW ? out : in;
    size_t reslen = rc == ETL_SCRUB_NEW ? outlen : n;
    /* the raw value as the cleaned text would hold it */
    char *craw = NULL;
    size_t crawlen = rawlen;
    if (etl_scrub_clean(raw, rawlen, &craw, &crawlen) < 0)
        abort();
    size_t start = 0;
    for (size_t i = 0; i <= reslen; i++) {
        if (i == reslen || (unsigned char)res[i] == 0xFF) {
            if (i > start)
                check_piece(res + start, i - start, craw ? craw : raw, crawlen);
            start = i + 1;
        }
    }
    free(out);
    free(craw);

    if (++count % 512 == 0 && n > 0) {
        size_t big = 256 * 1024;
        char *rep = malloc(big);
        if (rep != NULL) {
            for (size_t i = 0; i < big; i++)
                rep[i] = in[i % n];
            clock_t c0 = clock();
            out = NULL;
            rc = etl_scrub_text(&cfg, rep, big, &out, &outlen);
            double secs = (double)(clock() - c0) / CLOCKS_PER_SEC;
            free(out);
            free(rep);
            if (rc < 0 || secs > 1.0)
                abort(); /* not linear */
        }
    }
    etl_scrub_patterns_free(pats);
    free(in);
    return 0;
}
