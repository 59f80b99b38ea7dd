/* mask.c: the etlua.mask module. Owns SHA-256 / HMAC-SHA-256 to lowercase hex (SHA-256 is
 * OpenSSL's: no hash function of our own) and the canonical text of IP addresses (inet_pton /
 * inet_ntop: no address parser of our own).
 *
 * Lua API (see ARCHITECTURE.md "etlua.mask"):
 *   mask.sha256_hex(s)           -> 64 lowercase hex chars
 *   mask.hmac_sha256_hex(key, s) -> 64 lowercase hex chars
 *   mask.new(key)                -> hasher ("etlua.mask.hasher"); the key's inner and outer
 *                                   SHA-256 states are computed once and kept in the hasher
 *   hasher:hex(s)                -> 64 lowercase hex chars;  hasher:close() (also __gc/__close)
 *   mask.canonical_ip(s)         -> text, 4|6  or nil (the last address's result remembered:
 *                                   etl_mask_ip_memo_get)
 *   mask.sha256_int64(s [, t])   -> d, bits: SHA-256 as integers (the ledger's digest; below)
 *   mask.row_masks(...)          -> etlua.pii's row_masks in C (src/mask_rows.c)
 *   mask.canonical(s, form)      -> the canonical form of s: nil, "ip", "lower", "trim" (ditto)
 * OpenSSL failures are internal errors and raise; an invalid address is an expected result
 * and returns nil. Error messages never contain keys or the hashed data.
 *
 * Why SHA256_Init/Update/Final (deprecated since OpenSSL 3.0, still part of its API) rather than
 * EVP: every message is masked twice and its ledger key digested once, and these values are
 * short, so per-call overhead is most of the cost. The SHA256_CTX is a plain struct: the HMAC
 * key's states are copied by assignment, no allocation, no provider lookup per call. Measured
 * (OpenSSL 3.0, HMAC of a 15-byte value, per call): EVP_MAC_init on a keyed context 0.61 us /
 * 6,260 instructions; EVP_MD_CTX_copy_ex of prepared inner/outer contexts 0.49 us / 5,730 (it
 * frees and allocates the provider context on every copy); SHA256_CTX copies 0.24 us / 4,600,
 * which is the two compressions themselves. SHA-256 alone: EVP_Digest with a fetched method
 * 0.41 us / 3,420, SHA256_Init/Update/Final 0.11 us / 2,320. It is the same implementation the
 * default provider runs. Should a future OpenSSL drop these functions, the EVP_MD_CTX_copy_ex
 * variant is the replacement (same structure: a prepared inner and outer state). */
#define OPENSSL_SUPPRESS_DEPRECATED /* SHA256_Init and friends: see above */

#include "etlua/buf.h"
#include "etlua/mask.h"
#include "etlua/modules.h"

#include <arpa/inet.h>
#include <stdio.h>
#include <string.h>

#include <lauxlib.h>
#include <lua.h>
#include <openssl/crypto.h>
#include <openssl/sha.h>

#define HASHER_MT ETL_MASK_HASHER_MT

/* ---- C helpers ------------------------------------------------------------------------------- */

/* md = SHA-256(data[0..len)). Returns 0, or -1 when OpenSSL fails. */
static int etl_mask_sha256(const void *data, size_t len, unsigned char md[SHA256_DIGEST_LENGTH])
{
    SHA256_CTX c;
    if (!SHA256_Init(&c) || !SHA256_Update(&c, data, len) || !SHA256_Final(md, &c))
        return -1;
    return 0;
}

int etl_mask_sha256_hex(const void *data, size_t len, char out[ETL_MASK_HEX_LEN + 1])
{
    unsigned char md[SHA256_DIGEST_LENGTH];
    out[0] = '\0';
    if (etl_mask_sha256(data, len, md) != 0)
        return -1;
    etl_hex(out, md, sizeof md, 0);
    return 0;
}

int etl_mask_sha256_hex2(const void *a, size_t alen, const void *b, size_t blen,
                         char out[ETL_MASK_HEX_LEN + 1])
{
    unsigned char md[SHA256_DIGEST_LENGTH];
    SHA256_CTX c;
    out[0] = '\0';
    if (!SHA256_Init(&c) || !SHA256_Update(&c, a, alen) || !SHA256_Update(&c, b, blen) ||
        !SHA256_Final(md, &c))
        return -1;
    etl_hex(out, md, sizeof md, 0);
    return 0;
}

/* An HMAC-SHA-256 key (RFC 2104) as the SHA-256 states after its block xor ipad (inner) and
 * xor opad (outer): a MAC is then the data's own compressions plus one for the outer hash.
 * Key material: cleansed when dropped. */
struct etl_mask_key {
    SHA256_CTX inner, outer;
};

/* Computes k's states from key[0..keylen) (any length: a key longer than the block is hashed
 * first, as RFC 2104 says). Returns 0, or -1 when OpenSSL fails (k is then cleansed). */
static int etl_mask_key_init(struct etl_mask_key *k, const void *key, size_t keylen)
{
    unsigned char block[SHA256_CBLOCK] = {0}, pad[SHA256_CBLOCK];
    int ok = 1;
    if (keylen > sizeof block)
        ok = etl_mask_sha256(key, keylen, block) == 0;
    else if (keylen > 0)
        memcpy(block, key, keylen);
    for (size_t i = 0; i < sizeof pad; i++)
        pad[i] = block[i] ^ 0x36;
    ok = ok && SHA256_Init(&k->inner) && SHA256_Update(&k->inner, pad, sizeof pad);
    for (size_t i = 0; i < sizeof pad; i++)
        pad[i] = block[i] ^ 0x5c;
    ok = ok && SHA256_Init(&k->outer) && SHA256_Update(&k->outer, pad, sizeof pad);
    OPENSSL_cleanse(block, sizeof block);
    OPENSSL_cleanse(pad, sizeof pad);
    if (!ok)
        OPENSSL_cleanse(k, sizeof *k);
    return ok ? 0 : -1;
}

/* The last bytes of a message that fit one block with its padding (FIPS 180-4 5.1.1: 0x80,
 * zeros, the message's length in bits big-endian in the last 8 bytes) are at most 55. */
#define ONE_BLOCK_MAX (SHA256_CBLOCK - 9)

/* Ends the SHA-256 in c with the block whose first len (<= ONE_BLOCK_MAX) bytes are the
 * message's last, total bytes long in all: pads block, compresses it with OpenSSL's
 * SHA256_Transform (the same compression SHA256_Final runs) and writes the digest to md.
 * SHA256_Update + SHA256_Final do the same for any length, but for the short values every
 * message hashes (the masked values, the inner digest, the ledger key) their copying, padding and
 * cleansing cost a good part of what the compression does. c's h is then the digest (no key
 * state). */
static void sha256_last_block(SHA256_CTX *c, unsigned char block[SHA256_CBLOCK], size_t len,
                              uint64_t total, unsigned char md[SHA256_DIGEST_LENGTH])
{
    uint64_t bits = total * 8;
    block[len] = 0x80;
    memset(block + len + 1, 0, SHA256_CBLOCK - 8 - (len + 1));
    for (int i = 0; i < 8; i++)
        block[SHA256_CBLOCK - 1 - i] = (unsigned char)(bits >> (8 * i));
    SHA256_Transform(c, block);
    for (int i = 0; i < 8; i++) {
        SHA_LONG h = c->h[i];
        md[4 * i] = (unsigned char)(h >> 24);
        md[4 * i + 1] = (unsigned char)(h >> 16);
        md[4 * i + 2] = (unsigned char)(h >> 8);
        md[4 * i + 3] = (unsigned char)h;
    }
}

/* Writes the hex HMAC of data[0..len) under k to out; k is left as it was. Returns 0 or -1.
 * The working copy ends as SHA256_Final leaves it (the digest, the input block cleansed): no
 * key state is left on the stack. A value of at most ONE_BLOCK_MAX bytes (every value a login
 * masks) is its inner block and the inner digest the outer one (sha256_last_block), the same
 * block overwritten (the value not left in it), its digest bytes cleansed after. */
static int etl_mask_key_hex(const struct etl_mask_key *k, const void *data, size_t len,
                            char out[ETL_MASK_HEX_LEN + 1])
{
    unsigned char md[SHA256_DIGEST_LENGTH];
    SHA256_CTX c = k->inner;
    out[0] = '\0';
    if (len <= ONE_BLOCK_MAX) {
        unsigned char block[SHA256_CBLOCK];
        if (len > 0)
            memcpy(block, data, len);
        sha256_last_block(&c, block, len, SHA256_CBLOCK + len, md);
        c = k->outer;
        memcpy(block, md, sizeof md);
        sha256_last_block(&c, block, sizeof md, SHA256_CBLOCK + sizeof md, md);
        OPENSSL_cleanse(block, sizeof md); /* the inner digest */
        etl_hex(out, md, sizeof md, 0);
        return 0;
    }
    int ok = SHA256_Update(&c, data, len) && SHA256_Final(md, &c);
    c = k->outer;
    ok = ok && SHA256_Update(&c, md, sizeof md) && SHA256_Final(md, &c);
    if (!ok) {
        OPENSSL_cleanse(&c, sizeof c);
        return -1;
    }
    etl_hex(out, md, sizeof md, 0);
    return 0;
}

int etl_mask_hmac_hex(const void *key, size_t keylen, const void *data, size_t len,
                      char out[ETL_MASK_HEX_LEN + 1])
{
    struct etl_mask_key k;
    out[0] = '\0';
    if (etl_mask_key_init(&k, key, keylen) != 0)
        return -1;
    int rc = etl_mask_key_hex(&k, data, len, out);
    OPENSSL_cleanse(&k, sizeof k);
    return rc;
}

/* The text inet_ntop gives an IPv4 address (four decimal octets without leading zeros, dots),
 * written directly: inet_ntop formats it with its own sprintf, about 1,800 instructions, and
 * every message's ip is canonicalised. out needs 16 bytes. */
static void etl_mask_ipv4_text(const unsigned char a[4], char *out)
{
    for (int i = 0; i < 4; i++) {
        unsigned v = a[i];
        if (v >= 100)
            *out++ = (char)('0' + v / 100);
        if (v >= 10)
            *out++ = (char)('0' + v / 10 % 10);
        *out++ = (char)('0' + v % 10);
        *out++ = i < 3 ? '.' : '\0';
    }
}

int etl_mask_canonical_ip(const char *s, size_t len, char out[ETL_MASK_IP_MAX])
{
    char buf[ETL_MASK_IP_MAX];
    unsigned char addr[sizeof(struct in6_addr)];
    out[0] = '\0';
    /* The longest valid spelling fits INET6_ADDRSTRLEN - 1; inet_pton needs a C string, so an
     * embedded NUL would silently cut the input: refuse it. Zone ids ("%eth0") are refused by
     * inet_pton itself; checked here too so the rule does not hang on libc details. */
    if (len == 0 || len >= sizeof buf || memchr(s, '\0', len) != NULL || memchr(s, '%', len))
        return 0;
    memcpy(buf, s, len);
    buf[len] = '\0';
    if (inet_pton(AF_INET, buf, addr) == 1) {
        etl_mask_ipv4_text(addr, out);
        return 4;
    }
    if (inet_pton(AF_INET6, buf, addr) != 1)
        return 0;
    /* RFC 5952 section 5 recommends the dotted tail only for well-known prefixes such as
     * IPv4-mapped ::ffff:0:0/96. glibc's inet_ntop also writes the deprecated IPv4-compatible
     * range (::a.b.c.d) that way; section 4's hex form is used there instead (::102:304), as
     * Python's ipaddress and the other RFC 5952 printers do. :: and ::1 are unaffected. */
    static const unsigned char zeros[12];
    if (memcmp(addr, zeros, 12) == 0 && (addr[12] | addr[13] | addr[14]) != 0) {
        unsigned hi = (unsigned)addr[12] << 8 | addr[13], lo = (unsigned)addr[14] << 8 | addr[15];
        if (hi != 0)
            snprintf(out, ETL_MASK_IP_MAX, "::%x:%x", hi, lo);
        else
            snprintf(out, ETL_MASK_IP_MAX, "::%x", lo);
        return 6;
    }
    return inet_ntop(AF_INET6, addr, out, ETL_MASK_IP_MAX) ? 6 : 0;
}

int etl_mask_ip_memo_get(struct etl_mask_ip_memo *m, const char *s, size_t len, const char **text,
                         size_t *tlen, int *same)
{
    if (len == 0 || len >= ETL_MASK_IP_MAX) /* never an address (etl_mask_canonical_ip's rule) */
        return 0;
    if (len != m->len || memcmp(s, m->in, len) != 0) {
        m->len = 0; /* nothing remembered while it is rewritten */
        m->family = etl_mask_canonical_ip(s, len, m->text);
        m->tlen = m->family ? strlen(m->text) : 0;
        m->same = m->tlen == len && memcmp(m->text, s, len) == 0;
        memcpy(m->in, s, len);
        m->len = len;
    }
    *text = m->text;
    *tlen = m->tlen;
    *same = m->same;
    return m->family;
}

/* ---- Lua binding ----------------------------------------------------------------------------- */

/* The key's states live in the userdata itself: nothing else to allocate or free. */
typedef struct etl_mask_hasher {
    struct etl_mask_key key;
    int open; /* 0 once closed (the states are then cleansed) */
} etl_hasher;

struct etl_mask_hasher *etl_mask_check_hasher(lua_State *L, int idx)
{
    etl_hasher *h = luaL_checkudata(L, idx, HASHER_MT);
    if (!h->open)
        luaL_error(L, "etlua.mask: hasher is closed");
    return h;
}

int etl_mask_hasher_hex(struct etl_mask_hasher *h, const void *data, size_t len,
                        char out[ETL_MASK_HEX_LEN + 1])
{
    out[0] = '\0';
    if (h == NULL || !h->open)
        return -1;
    return etl_mask_key_hex(&h->key, data, len, out);
}

static int etl_mask_l_sha256_hex(lua_State *L)
{
    size_t len;
    const char *s = luaL_checklstring(L, 1, &len);
    char hex[ETL_MASK_HEX_LEN + 1];
    if (etl_mask_sha256_hex(s, len, hex) != 0)
        return luaL_error(L, "etlua.mask: SHA-256 failed in OpenSSL");
    lua_pushlstring(L, hex, ETL_MASK_HEX_LEN);
    return 1;
}

static int etl_mask_l_hmac_sha256_hex(lua_State *L)
{
    size_t keylen, len;
    const char *key = luaL_checklstring(L, 1, &keylen);
    const char *s = luaL_checklstring(L, 2, &len);
    char hex[ETL_MASK_HEX_LEN + 1];
    if (etl_mask_hmac_hex(key, keylen, s, len, hex) != 0)
        return luaL_error(L, "etlua.mask: HMAC-SHA-256 failed in OpenSSL");
    lua_pushlstring(L, hex, ETL_MASK_HEX_LEN);
    return 1;
}

static int etl_mask_l_new(lua_State *L)
{
    size_t keylen;
    const char *key = luaL_checklstring(L, 1, &keylen);
    etl_hasher *h = lua_newuserdatauv(L, sizeof *h, 0);
    h->open = 0;
    luaL_setmetatable(L, HASHER_MT);
    if (etl_mask_key_init(&h->key, key, keylen) != 0)
        return luaL_error(L, "etlua.mask: cannot set up HMAC-SHA-256 in OpenSSL");
    h->open = 1;
    return 1;
}

/* luaL_checkudata's test against the metatable at mt (a method's upvalue) rather than looked up
 * by name in the registry (a third of hasher:hex's own cost; every message is masked twice).
 * Same error as luaL_checkudata. */
struct etl_mask_hasher *etl_mask_test_hasher(lua_State *L, int idx, int mt)
{
    etl_hasher *h = lua_touserdata(L, idx);
    int same = h != NULL && lua_getmetatable(L, idx);
    if (same) {
        same = lua_rawequal(L, -1, mt);
        lua_pop(L, 1);
    }
    if (!same)
        luaL_typeerror(L, idx, HASHER_MT);
    if (!h->open)
        luaL_error(L, "etlua.mask: hasher is closed");
    return h;
}

static int etl_mask_l_hex(lua_State *L)
{
    etl_hasher *h = etl_mask_test_hasher(L, 1, lua_upvalueindex(1));
    size_t len;
    const char *s = luaL_checklstring(L, 2, &len);
    char hex[ETL_MASK_HEX_LEN + 1];
    if (etl_mask_key_hex(&h->key, s, len, hex) != 0)
        return luaL_error(L, "etlua.mask: HMAC-SHA-256 failed in OpenSSL");
    lua_pushlstring(L, hex, ETL_MASK_HEX_LEN);
    return 1;
}

/* close, __gc and __close: cleanses the key's states (Lua frees the memory without wiping it);
 * safe twice. */
static int etl_mask_l_close(lua_State *L)
{
    etl_hasher *h = luaL_checkudata(L, 1, HASHER_MT);
    if (h->open) {
        OPENSSL_cleanse(&h->key, sizeof h->key);
        h->open = 0;
    }
    return 0;
}

static int etl_mask_l_tostring(lua_State *L)
{
    etl_hasher *h = luaL_checkudata(L, 1, HASHER_MT);
    lua_pushfstring(L, HASHER_MT " (%s)", h->open ? "open" : "closed"); /* never the key */
    return 1;
}

/* mask.canonical_ip(s): through the module's memo (upvalue 1), shared with the pii masks
 * (mask.row_masks' canonical = "ip"), which made the same message's address canonical just
 * before the script's check asks for it again. */
static int etl_mask_l_canonical_ip(lua_State *L)
{
    size_t len, tlen;
    const char *s = luaL_checklstring(L, 1, &len), *text;
    int same;
    int family =
        etl_mask_ip_memo_get(lua_touserdata(L, lua_upvalueindex(1)), s, len, &text, &tlen, &same);
    if (family == 0) {
        luaL_pushfail(L);
        return 1;
    }
    if (same)
        lua_pushvalue(L, 1); /* already canonical (every IPv4 address): the same string, not made
                                again (its bytes hashed and looked up among Lua's strings) */
    else
        lua_pushlstring(L, text, tlen);
    lua_pushinteger(L, family);
    return 2;
}

static const luaL_Reg etl_mask_hasher_methods[] = {
    {"hex", etl_mask_l_hex},
    {"close", etl_mask_l_close},
    {NULL, NULL},
};

static const luaL_Reg etl_mask_hasher_meta[] = {
    {"__gc", etl_mask_l_close},
    {"__close", etl_mask_l_close},
    {"__tostring", etl_mask_l_tostring},
    {"__index", NULL}, /* set to the methods table below */
    {NULL, NULL},
};

static int etl_mask_l_sha256_int64(lua_State *L); /* at the end of the file */

static const luaL_Reg etl_mask_funcs[] = {
    {"sha256_hex", etl_mask_l_sha256_hex},
    {"sha256_int64", etl_mask_l_sha256_int64},
    {"hmac_sha256_hex", etl_mask_l_hmac_sha256_hex},
    {"new", etl_mask_l_new},
    {"canonical_ip", etl_mask_l_canonical_ip},
    {"row_masks", etl_mask_l_row_masks},
    {"canonical", etl_mask_l_canonical},
    {NULL, NULL},
};

int luaopen_etlua_mask(lua_State *L)
{
    if (luaL_newmetatable(L, HASHER_MT)) {
        luaL_setfuncs(L, etl_mask_hasher_meta, 0);
        luaL_newlibtable(L, etl_mask_hasher_methods);
        lua_pushvalue(L, -2); /* the metatable: the methods' upvalue */
        luaL_setfuncs(L, etl_mask_hasher_methods, 1);
        lua_setfield(L, -2, "__index");
    }
    lua_pop(L, 1);
    luaL_newlibtable(L, etl_mask_funcs);
    /* every function's upvalue 1: the memo of the last address made canonical (canonical_ip,
     * canonical and the masks row_masks makes use it) */
    struct etl_mask_ip_memo *memo = lua_newuserdatauv(L, sizeof *memo, 0);
    memset(memo, 0, sizeof *memo);
    luaL_setfuncs(L, etl_mask_funcs, 1);
    return 1;
}

/* ---- The ledger's digest as integers (etlua.ledger) ------------------------------------------ */

/* mask.sha256_int64(s [, t]) -> d, bits: the SHA-256 of s, or of s NUL t when t is given (the
 * ledger hashes queue NUL key: joined here, not in Lua); d = its first 8 bytes big-endian as a
 * signed 64-bit integer, bits = the next 4 big-endian, 0..2^32-1. The same numbers as the hex
 * digest's first 16 and next 8 digits read as integers, without the hex text and its parsing
 * (the ledger needs them for every message). etl_mask_sha256_int64 is the same for C
 * (etlua.ledger_entries). */
int etl_mask_sha256_int64(const void *s, size_t slen, const void *t, size_t tlen, int64_t *d,
                          uint32_t *bits)
{
    unsigned char md[SHA256_DIGEST_LENGTH];
    SHA256_CTX c;
    size_t total = slen + (t != NULL ? 1 + tlen : 0);
    if (total <= ONE_BLOCK_MAX) { /* one block (sha256_last_block): the usual ledger key */
        unsigned char block[SHA256_CBLOCK];
        if (slen > 0)
            memcpy(block, s, slen);
        if (t != NULL) {
            block[slen] = 0;
            if (tlen > 0)
                memcpy(block + slen + 1, t, tlen);
        }
        if (!SHA256_Init(&c))
            return -1;
        sha256_last_block(&c, block, total, total, md);
    } else if (!SHA256_Init(&c) || !SHA256_Update(&c, s, slen) ||
               (t != NULL && (!SHA256_Update(&c, "", 1) || !SHA256_Update(&c, t, tlen))) ||
               !SHA256_Final(md, &c))
        return -1;
    uint64_t u = 0;
    uint32_t b = 0;
    for (int i = 0; i < 8; i++)
        u = u << 8 | md[i];
    for (int i = 8; i < 12; i++)
        b = b << 8 | md[i];
    *d = (int64_t)u; /* two's complement (as Lua casts): bit 63 set -> negative */
    *bits = b;
    return 0;
}

static int etl_mask_l_sha256_int64(lua_State *L)
{
    size_t slen, tlen = 0;
    const char *s = luaL_checklstring(L, 1, &slen);
    const char *t = luaL_optlstring(L, 2, NULL, &tlen);
    int64_t d;
    uint32_t bits;
    if (etl_mask_sha256_int64(s, slen, t, tlen, &d, &bits) != 0)
        return luaL_error(L, "etlua.mask: SHA-256 failed in OpenSSL");
    lua_pushinteger(L, (lua_Integer)d);
    lua_pushinteger(L, (lua_Integer)bits);
    return 2;
}
