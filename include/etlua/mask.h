/* mask.h: the masking primitive (etlua.mask). SHA-256 and HMAC-SHA-256 to lowercase hex, and
 * the canonical text form of an IP address, so that equal addresses mask equal.
 * The C functions below are what the Lua module wraps; tests call them directly.
 * SHA-256 is OpenSSL's (HMAC is RFC 2104 around it, with the key's states computed once per
 * hasher), address parsing is inet_pton/inet_ntop: no hand-written hash or address parser. */
#ifndef ETLUA_MASK_H
#define ETLUA_MASK_H

#include <stddef.h>
#include <stdint.h>

struct lua_State;

#define ETL_MASK_HEX_LEN 64 /* SHA-256 as lowercase hex, without the terminating NUL */
#define ETL_MASK_IP_MAX 46  /* INET6_ADDRSTRLEN: the longest canonical text plus its NUL */

/* Writes the lowercase hex SHA-256 of data[0..len) and a NUL to out.
 * Returns 0, or -1 when OpenSSL fails (out is then an empty string). */
int etl_mask_sha256_hex(const void *data, size_t len, char out[ETL_MASK_HEX_LEN + 1]);

/* The same for the bytes of a[0..alen) followed by b[0..blen), without joining them. */
int etl_mask_sha256_hex2(const void *a, size_t alen, const void *b, size_t blen,
                         char out[ETL_MASK_HEX_LEN + 1]);

/* Writes the lowercase hex HMAC-SHA-256(key, data) and a NUL to out. Any key bytes, any length.
 * Returns 0, or -1 when OpenSSL fails (out is then an empty string). */
int etl_mask_hmac_hex(const void *key, size_t keylen, const void *data, size_t len,
                      char out[ETL_MASK_HEX_LEN + 1]);

/* Canonical text of the IP address s[0..len) (not NUL-terminated; embedded NULs, zone ids,
 * surrounding blanks and over-long input are rejected). IPv4: dotted quad by inet_pton rules.
 * IPv6: RFC 5952 text from inet_ntop (lowercase, longest zero run as ::, IPv4-mapped as
 * ::ffff:a.b.c.d). Returns 4 or 6 and fills out, or 0 when s is not a valid address. */
int etl_mask_canonical_ip(const char *s, size_t len, char out[ETL_MASK_IP_MAX]);

/* The last address etl_mask_ip_memo_get made canonical, its bytes and its result, so that the
 * same address asked for again costs a comparison: a message's ip is made canonical twice, by
 * its pii mask (canonical = "ip") and by the script's own check (mask.canonical_ip). Kept by
 * the Lua module in a userdata of its own (one per module instance). Zeroed: empty. */
struct etl_mask_ip_memo {
    size_t len;  /* bytes of in (1 .. ETL_MASK_IP_MAX - 1); 0: nothing remembered */
    size_t tlen; /* bytes of text */
    int family;  /* etl_mask_canonical_ip's result for in */
    int same;    /* text is in itself (every IPv4 address) */
    char in[ETL_MASK_IP_MAX], text[ETL_MASK_IP_MAX];
};

/* etl_mask_canonical_ip(s, len) through the memo m: the result remembered when s holds the
 * same bytes as the last address (compared by content: a string's address says nothing, a
 * freed one's may be reused), else computed and remembered. Returns the family (0: not an
 * address); for an address, *text and *tlen its canonical text (m's: valid until the next
 * call) and *same nonzero when that text is s's bytes themselves. */
int etl_mask_ip_memo_get(struct etl_mask_ip_memo *m, const char *s, size_t len, const char **text,
                         size_t *tlen, int *same);

/* The ledger's entry digest: SHA-256 of s[0..slen), or of s NUL t[0..tlen) when t is not NULL;
 * *d = its first 8 bytes big-endian as a signed 64-bit integer (two's complement), *bits = the
 * next 4 big-endian. What mask.sha256_int64 returns. Returns 0, or -1 when OpenSSL fails. */
int etl_mask_sha256_int64(const void *s, size_t slen, const void *t, size_t tlen, int64_t *d,
                          uint32_t *bits);

/* A hasher of the Lua module (mask.new(key)), for other C modules that mask text; its
 * metatable is the registry's ETL_MASK_HASHER_MT. */
struct etl_mask_hasher;
#define ETL_MASK_HASHER_MT "etlua.mask.hasher"

/* The hasher at stack index idx; raises when the value is not one, or is closed. */
struct etl_mask_hasher *etl_mask_check_hasher(struct lua_State *L, int idx);

/* The same, checked against the hasher metatable at index mt (kept by the caller, e.g. as an
 * upvalue: no lookup by name), for calls made once per message. */
struct etl_mask_hasher *etl_mask_test_hasher(struct lua_State *L, int idx, int mt);

/* Writes the lowercase hex HMAC-SHA-256 of data[0..len) under the hasher's key and a NUL to
 * out. Returns 0, or -1 when OpenSSL fails or the hasher is closed. */
int etl_mask_hasher_hex(struct etl_mask_hasher *h, const void *data, size_t len,
                        char out[ETL_MASK_HEX_LEN + 1]);

/* mask.row_masks(entries, null, json_text, each_masks) -> a spec's row_masks method in C, for
 * etlua.pii (src/mask_rows.c says what it reads and returns). Part of the Lua module
 * (luaopen_etlua_mask, etlua/modules.h). */
int etl_mask_l_row_masks(struct lua_State *L);

/* mask.canonical(s, form) -> the text s is masked by under form: nil, "ip", "lower" or "trim"
 * (src/mask_rows.c: the one definition of the canonical forms). Part of the Lua module
 * (luaopen_etlua_mask, etlua/modules.h). */
int etl_mask_l_canonical(struct lua_State *L);

#endif
