/* scrub.h: the text scrubber of rejects (etlua.scrub): what a reject body, a reject detail or a
 * log line may keep of a message's text. One call takes a text and returns it with
 *   - every occurrence of the message's raw pii values (a set of patterns, Aho-Corasick),
 *   - address-shaped text (IPv4 dotted quads, IPv6 in any spelling),
 *   - the value after a key naming a pii field ("ip": ..., 'device_id': ..., "device\u005fid",
 *     \"ip\" in JSON inside a JSON string, and bare ip=... / ip: ...)
 * replaced by a 64-hex mask, invalid UTF-8 replaced by U+FFFD and NUL bytes dropped (Postgres
 * text holds neither). Each of the three detectors is a single left-to-right pass; their spans
 * are merged in one more pass; nothing is ever rescanned, so the time is linear in the text's
 * size whatever its shape (a 1 MiB run of digits, colons or quotes included).
 *
 * Why a hand-written scanner: the inputs are exactly the texts no parser accepts (truncated
 * JSON, Python dicts, free text), and a pattern engine that backtracks (Lua's included) turns
 * such a scan quadratic on hostile shapes. */
#ifndef ETLUA_SCRUB_H
#define ETLUA_SCRUB_H

#include <stddef.h>

#include "etlua/mask.h"

/* Canonical form applied to a masked value before hashing (the pii declaration's `canonical`). */
enum etl_scrub_canonical {
    ETL_SCRUB_CANON_NONE = 0,
    ETL_SCRUB_CANON_IP,    /* etl_mask_canonical_ip, the text itself when not a valid address */
    ETL_SCRUB_CANON_LOWER, /* ASCII lowercase */
    ETL_SCRUB_CANON_TRIM   /* without leading and trailing ASCII blanks */
};

#define ETL_SCRUB_KEY_MAX 128 /* longest key name a scrubber watches for */

/* A key naming a pii field: the value after it is masked. Compared ASCII case-insensitively. */
struct etl_scrub_key {
    const char *name;
    size_t len; /* 1..ETL_SCRUB_KEY_MAX */
    int canonical;
};

/* The raw values of one message as an Aho-Corasick automaton, each with its replacement. */
struct etl_scrub_patterns;

/* Builds the automaton over text[i][0..len[i]) with replacement hex[i] (ETL_MASK_HEX_LEN chars);
 * everything is copied, empty patterns are ignored. Time and memory linear in the total length.
 * Returns NULL when out of memory. */
struct etl_scrub_patterns *etl_scrub_patterns_new(size_t n, const char *const *text,
                                                  const size_t *len, const char *const *hex);
void etl_scrub_patterns_free(struct etl_scrub_patterns *p);

/* Computes the mask of s[0..len): lowercase hex and a NUL into out. Returns 0, or -1 on failure. */
typedef int (*etl_scrub_hash_fn)(void *ud, const char *s, size_t len,
                                 char out[ETL_MASK_HEX_LEN + 1]);

struct etl_scrub_cfg {
    const struct etl_scrub_key *keys; /* may be NULL when nkeys is 0 */
    size_t nkeys;
    const struct etl_scrub_patterns *patterns; /* NULL: no raw values */
    etl_scrub_hash_fn hash;
    void *hash_ud;
};

enum etl_scrub_result {
    ETL_SCRUB_SAME = 0, /* the text is clean and nothing was masked: *out is left untouched */
    ETL_SCRUB_NEW = 1,  /* *out (malloc'd, caller frees) and *outlen hold the new text */
    ETL_SCRUB_NOMEM = -1,
    ETL_SCRUB_HASH_FAILED = -2
};

/* Scrubs in[0..len). Returns an etl_scrub_result. */
int etl_scrub_text(const struct etl_scrub_cfg *cfg, const char *in, size_t len, char **out,
                   size_t *outlen);

/* Only the text hygiene: invalid UTF-8 -> U+FFFD (one per invalid byte), NUL dropped.
 * Returns ETL_SCRUB_SAME, ETL_SCRUB_NEW or ETL_SCRUB_NOMEM. */
int etl_scrub_clean(const char *in, size_t len, char **out, size_t *outlen);

#endif
