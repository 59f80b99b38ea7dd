/* vault.c: the etlua.vault module. Owns the PII vault's cipher: AES-256-GCM through OpenSSL 3's
 * EVP interface (no crypto of our own), random nonces from RAND_bytes, and a key handle whose
 * bytes never go back to Lua and are cleansed (OPENSSL_cleanse) when it is closed.
 *
 * Lua API (what the vault stores and how: README "PII vault and `etlua reveal`" and
 * src/lua/etlua/pii_vault.lua):
 *   vault.key(material)          -> key ("etlua.vault.key")  or nil, msg
 *                                   material: 32 raw bytes or 64 hex digits (+ one newline)
 *   key:id()                     -> 16 lowercase hex chars: the first 8 bytes of SHA-256(key)
 *   key:seal(ad, plaintext)      -> nonce (12 bytes), ciphertext (plaintext's length + 16-byte tag)
 *   key:open(ad, nonce, ct)      -> plaintext  or nil, msg   (wrong key or anything tampered)
 *   key:close() (also __gc/__close; twice is safe)
 *   vault.tohex(s)               -> lowercase hex of s
 *   vault.fromhex(s)             -> bytes  or nil (not an even run of hex digits)
 * OpenSSL failures while sealing raise; a ciphertext that does not open is an expected result
 * and returns nil, msg. Messages never contain the key, the plaintext or the ciphertext. */
#include "etlua/buf.h"
#include "etlua/modules.h"
#include "etlua/vault.h"

#include <limits.h>
#include <string.h>

#include <lauxlib.h>
#include <lua.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/rand.h>

#define KEY_MT "etlua.vault.key"

/* ---- C functions ------------------------------------------------------------------------------ */

/* Decodes 2*n hex digits into out[0..n). Returns 0, or -1 at the first non-hex digit. */
static int etl_vault_unhex(const char *s, size_t n, unsigned char *out)
{
    for (size_t i = 0; i < n; i++) {
        int hi = etl_hex_digit((unsigned char)s[2 * i]);
        int lo = etl_hex_digit((unsigned char)s[2 * i + 1]);
        if (hi < 0 || lo < 0)
            return -1;
        out[i] = (unsigned char)(hi << 4 | lo);
    }
    return 0;
}

int etl_vault_parse_key(const char *material, size_t len, unsigned char key[ETL_VAULT_KEY_LEN])
{
    /* Exactly 32 bytes are raw key bytes (`openssl rand 32 > f`), whatever they are. Otherwise
     * one trailing newline is dropped (`openssl rand -hex 32 > f`) and 64 hex digits must remain. */
    if (len == ETL_VAULT_KEY_LEN) {
        memcpy(key, material, ETL_VAULT_KEY_LEN);
        return 0;
    }
    if (len > 0 && material[len - 1] == '\n')
        len--;
    if (len > 0 && material[len - 1] == '\r')
        len--;
    if (len == 2 * ETL_VAULT_KEY_LEN && etl_vault_unhex(material, ETL_VAULT_KEY_LEN, key) == 0)
        return 0;
    OPENSSL_cleanse(key, ETL_VAULT_KEY_LEN);
    return -1;
}

int etl_vault_key_id(const unsigned char key[ETL_VAULT_KEY_LEN], char out[ETL_VAULT_KEY_ID_HEX + 1])
{
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int mdlen = 0;
    out[0] = '\0';
    if (!EVP_Digest(key, ETL_VAULT_KEY_LEN, md, &mdlen, EVP_sha256(), NULL) || mdlen < 8)
        return -1;
    etl_hex(out, md, ETL_VAULT_KEY_ID_HEX / 2, 0);
    OPENSSL_cleanse(md, sizeof md);
    return 0;
}

/* A context set up for AES-256-GCM in the given direction with key, nonce and the associated
 * data already fed, or NULL. enc: 1 encrypt, 0 decrypt. */
static EVP_CIPHER_CTX *etl_vault_ctx(int enc, const unsigned char *key, const unsigned char *nonce,
                                     const void *ad, size_t adlen)
{
    int outl = 0;
    if (adlen > INT_MAX)
        return NULL;
    EVP_CIPHER_CTX *ctx = EVP_CIPHER_CTX_new();
    if (ctx == NULL)
        return NULL;
    /* The default GCM IV length is 12 bytes (ETL_VAULT_NONCE_LEN): no SET_IVLEN needed. */
    if (!EVP_CipherInit_ex(ctx, EVP_aes_256_gcm(), NULL, key, nonce, enc) ||
        (adlen > 0 && !EVP_CipherUpdate(ctx, NULL, &outl, ad, (int)adlen))) {
        EVP_CIPHER_CTX_free(ctx);
        return NULL;
    }
    return ctx;
}

int etl_vault_seal(const unsigned char key[ETL_VAULT_KEY_LEN], const void *ad, size_t adlen,
                   const void *pt, size_t ptlen, unsigned char nonce[ETL_VAULT_NONCE_LEN],
                   unsigned char *out)
{
    int outl = 0, finl = 0;
    if (ptlen > INT_MAX - ETL_VAULT_TAG_LEN)
        return -1;
    if (RAND_bytes(nonce, ETL_VAULT_NONCE_LEN) != 1)
        return -1;
    EVP_CIPHER_CTX *ctx = etl_vault_ctx(1, key, nonce, ad, adlen);
    if (ctx == NULL)
        return -1;
    int ok = (ptlen == 0 || EVP_CipherUpdate(ctx, out, &outl, pt, (int)ptlen)) &&
             EVP_CipherFinal_ex(ctx, out + outl, &finl) && (size_t)(outl + finl) == ptlen &&
             EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_GET_TAG, ETL_VAULT_TAG_LEN, out + ptlen);
    EVP_CIPHER_CTX_free(ctx);
    if (!ok) {
        OPENSSL_cleanse(out, ptlen + ETL_VAULT_TAG_LEN);
        return -1;
    }
    return 0;
}

long etl_vault_open(const unsigned char key[ETL_VAULT_KEY_LEN], const void *ad, size_t adlen,
                    const unsigned char nonce[ETL_VAULT_NONCE_LEN], const unsigned char *ct,
                    size_t ctlen, unsigned char *out)
{
    int outl = 0, finl = 0;
    if (ctlen < ETL_VAULT_TAG_LEN || ctlen > INT_MAX)
        return -1;
    size_t n = ctlen - ETL_VAULT_TAG_LEN;
    EVP_CIPHER_CTX *ctx = etl_vault_ctx(0, key, nonce, ad, adlen);
    if (ctx == NULL)
        return -1;
    /* The tag is set before Final, which is where it is checked. */
    int ok = (n == 0 || EVP_CipherUpdate(ctx, out, &outl, ct, (int)n)) &&
             EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_SET_TAG, ETL_VAULT_TAG_LEN, (void *)(ct + n)) &&
             EVP_CipherFinal_ex(ctx, out + outl, &finl) > 0 && (size_t)(outl + finl) == n;
    EVP_CIPHER_CTX_free(ctx);
    if (!ok) {
        if (n > 0)
            OPENSSL_cleanse(out, n); /* never hand back unauthenticated plaintext */
        return -1;
    }
    return (long)n;
}

/* ---- Lua binding ------------------------------------------------------------------------------ */

typedef struct {
    int open;
    unsigned char key[ETL_VAULT_KEY_LEN];
} etl_vault_key;

static etl_vault_key *etl_vault_checkkey(lua_State *L)
{
    etl_vault_key *k = luaL_checkudata(L, 1, KEY_MT);
    if (!k->open)
        luaL_error(L, "etlua.vault: key is closed");
    return k;
}

/* vault.key(material) -> key | nil, msg */
static int etl_vault_l_key(lua_State *L)
{
    size_t len;
    const char *material = luaL_checklstring(L, 1, &len);
    etl_vault_key *k = lua_newuserdatauv(L, sizeof *k, 0);
    k->open = 0;
    luaL_setmetatable(L, KEY_MT);
    if (etl_vault_parse_key(material, len, k->key) != 0) {
        luaL_pushfail(L);
        lua_pushliteral(L, "the vault key must be 64 hex digits or 32 raw bytes");
        return 2;
    }
    k->open = 1;
    return 1;
}

static int etl_vault_l_id(lua_State *L)
{
    etl_vault_key *k = etl_vault_checkkey(L);
    char id[ETL_VAULT_KEY_ID_HEX + 1];
    if (etl_vault_key_id(k->key, id) != 0)
        return luaL_error(L, "etlua.vault: SHA-256 failed in OpenSSL");
    lua_pushlstring(L, id, ETL_VAULT_KEY_ID_HEX);
    return 1;
}

/* key:seal(ad, plaintext) -> nonce, ciphertext..tag */
static int etl_vault_l_seal(lua_State *L)
{
    etl_vault_key *k = etl_vault_checkkey(L);
    size_t adlen, ptlen;
    const char *ad = luaL_checklstring(L, 2, &adlen);
    const char *pt = luaL_checklstring(L, 3, &ptlen);
    unsigned char nonce[ETL_VAULT_NONCE_LEN];
    luaL_Buffer b;
    unsigned char *out = (unsigned char *)luaL_buffinitsize(L, &b, ptlen + ETL_VAULT_TAG_LEN);
    if (etl_vault_seal(k->key, ad, adlen, pt, ptlen, nonce, out) != 0)
        return luaL_error(L, "etlua.vault: AES-256-GCM encryption failed in OpenSSL");
    luaL_pushresultsize(&b, ptlen + ETL_VAULT_TAG_LEN); /* the buffer must be on top here */
    lua_pushlstring(L, (const char *)nonce, sizeof nonce);
    lua_insert(L, -2); /* nonce first */
    return 2;
}

/* key:open(ad, nonce, ct) -> plaintext | nil, msg */
static int etl_vault_l_open(lua_State *L)
{
    etl_vault_key *k = etl_vault_checkkey(L);
    size_t adlen, noncelen, ctlen;
    const char *ad = luaL_checklstring(L, 2, &adlen);
    const char *nonce = luaL_checklstring(L, 3, &noncelen);
    const char *ct = luaL_checklstring(L, 4, &ctlen);
    if (noncelen != ETL_VAULT_NONCE_LEN || ctlen < ETL_VAULT_TAG_LEN) {
        luaL_pushfail(L);
        lua_pushliteral(L, "malformed ciphertext (nonce or tag length)");
        return 2;
    }
    size_t n = ctlen - ETL_VAULT_TAG_LEN;
    luaL_Buffer b;
    unsigned char *out = (unsigned char *)luaL_buffinitsize(L, &b, n);
    long got = etl_vault_open(k->key, ad, adlen, (const unsigned char *)nonce,
                              (const unsigned char *)ct, ctlen, out);
    if (got < 0) { /* etl_vault_open zeroed the buffer */
        luaL_pushfail(L);
        lua_pushliteral(L, "decryption failed: wrong vault key or tampered ciphertext");
        return 2;
    }
    luaL_pushresultsize(&b, (size_t)got);
    return 1;
}

static int etl_vault_l_close(lua_State *L)
{
    etl_vault_key *k = luaL_checkudata(L, 1, KEY_MT);
    OPENSSL_cleanse(k->key, sizeof k->key);
    k->open = 0;
    return 0;
}

static int etl_vault_l_tostring(lua_State *L)
{
    etl_vault_key *k = luaL_checkudata(L, 1, KEY_MT);
    lua_pushfstring(L, KEY_MT " (%s)", k->open ? "open" : "closed"); /* never the key */
    return 1;
}

static int etl_vault_l_tohex(lua_State *L)
{
    size_t n;
    const char *s = luaL_checklstring(L, 1, &n);
    luaL_Buffer b;
    char *out = luaL_buffinitsize(L, &b, 2 * n + 1); /* etl_hex ends with a NUL */
    etl_hex(out, s, n, 0);
    luaL_pushresultsize(&b, 2 * n);
    return 1;
}

static int etl_vault_l_fromhex(lua_State *L)
{
    size_t n;
    const char *s = luaL_checklstring(L, 1, &n);
    if (n % 2 != 0) {
        luaL_pushfail(L);
        return 1;
    }
    luaL_Buffer b;
    unsigned char *out = (unsigned char *)luaL_buffinitsize(L, &b, n / 2);
    if (etl_vault_unhex(s, n / 2, out) != 0) {
        luaL_pushfail(L);
        return 1;
    }
    luaL_pushresultsize(&b, n / 2);
    return 1;
}

static const luaL_Reg etl_vault_key_methods[] = {
    {"id", etl_vault_l_id},
    {"seal", etl_vault_l_seal},
    {"open", etl_vault_l_open},
    {"close", etl_vault_l_close},
    {NULL, NULL},
};

static const luaL_Reg etl_vault_key_meta[] = {
    {"__gc", etl_vault_l_close},
    {"__close", etl_vault_l_close},
    {"__tostring", etl_vault_l_tostring},
    {NULL, NULL},
};

static const luaL_Reg etl_vault_funcs[] = {
    {"key", etl_vault_l_key},
    {"tohex", etl_vault_l_tohex},
    {"fromhex", etl_vault_l_fromhex},
    {NULL, NULL},
};

int luaopen_etlua_vault(lua_State *L)
{
    if (luaL_newmetatable(L, KEY_MT)) {
        luaL_setfuncs(L, etl_vault_key_meta, 0);
        luaL_newlib(L, etl_vault_key_methods);
        lua_setfield(L, -2, "__index");
        lua_pushliteral(
            L, "etlua.vault.key"); /* getmetatable(key) does not expose the methods' state */
        lua_setfield(L, -2, "__metatable");
    }
    lua_pop(L, 1);
    luaL_newlib(L, etl_vault_funcs);
    return 1;
}
