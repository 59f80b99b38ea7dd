/* test_vault.c: etlua.vault — AES-256-GCM seal/open round trips, a known answer computed with an
 * independent implementation (python3-cryptography's AESGCM), every kind of tampering (key,
 * nonce, ciphertext, tag, associated data, truncation) refused with zeroed output, key parsing,
 * the key id, and the Lua binding (no key in tostring, close twice, closed key raises).
 * A plain program: prints each failure and exits non-zero when any check failed. */
#include "etlua/modules.h"
#include "etlua/vault.h"

#include "check.h"

#include <stdio.h>
#include <string.h>

#include <lauxlib.h>
#include <lua.h>
#include <lualib.h>

static void key_0_31(unsigned char k[ETL_VAULT_KEY_LEN])
{
    for (int i = 0; i < ETL_VAULT_KEY_LEN; i++)
        k[i] = (unsigned char)i;
}

static int all_zero(const unsigned char *p, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (p[i])
            return 0;
    return 1;
}

/* ---- key parsing and id ----------------------------------------------------------------------- */

static void test_parse_key(void)
{
    unsigned char k[ETL_VAULT_KEY_LEN], want[ETL_VAULT_KEY_LEN];
    key_0_31(want);
    const char *hex = "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f";
    CHECK(etl_vault_parse_key(hex, 64, k) == 0 && memcmp(k, want, 32) == 0, "64 hex digits");
    CHECK(etl_vault_parse_key("000102030405060708090A0B0C0D0E0F101112131415161718191A1B1C1D1E1F\n",
                              65, k) == 0 &&
              memcmp(k, want, 32) == 0,
          "upper-case hex + newline");
    CHECK(etl_vault_parse_key(
              "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f\r\n", 66, k) == 0,
          "hex + CRLF");
    CHECK(etl_vault_parse_key((const char *)want, 32, k) == 0 && memcmp(k, want, 32) == 0,
          "32 raw bytes");
    CHECK(etl_vault_parse_key(hex, 63, k) == -1 && all_zero(k, 32),
          "63 hex digits refused, key zeroed");
    CHECK(etl_vault_parse_key("zz0102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f",
                              64, k) == -1,
          "non-hex refused");
    CHECK(etl_vault_parse_key("short", 5, k) == -1, "short refused");
    CHECK(etl_vault_parse_key("", 0, k) == -1, "empty refused");
    char longer[130];
    memset(longer, 'a', sizeof longer);
    CHECK(etl_vault_parse_key(longer, 128, k) == -1, "128 hex digits refused");
}

static void test_key_id(void)
{
    unsigned char k[ETL_VAULT_KEY_LEN];
    char id[ETL_VAULT_KEY_ID_HEX + 1];
    key_0_31(k);
    /* python3 -c "import hashlib;print(hashlib.sha256(bytes(range(32))).hexdigest()[:16])" */
    CHECK(etl_vault_key_id(k, id) == 0 && strcmp(id, "630dcd2966c43366") == 0, "key id = %s", id);
}

/* ---- seal / open ------------------------------------------------------------------------------ */

static const char AD[] = "ip\0abc"; /* field, NUL, masked value: as etlua builds it */
#define ADLEN (sizeof AD - 1)
static const char PT[] = "199.172.111.135";
#define PTLEN (sizeof PT - 1)

static void test_known_answer(void)
{
    /* AESGCM(bytes(range(32))).encrypt(bytes(range(100,112)), b"199.172.111.135", b"ip\0abc") */
    static const char want_hex[] = "7922e74848de64b00f536ec6eb565f9305dabf47e3bf31744b2db5ef5c7160";
    unsigned char k[ETL_VAULT_KEY_LEN], nonce[ETL_VAULT_NONCE_LEN], ct[PTLEN + ETL_VAULT_TAG_LEN];
    unsigned char out[PTLEN + 1];
    key_0_31(k);
    for (int i = 0; i < ETL_VAULT_NONCE_LEN; i++)
        nonce[i] = (unsigned char)(100 + i);
    for (size_t i = 0; i < sizeof ct; i++) {
        unsigned int byte;
        sscanf(want_hex + 2 * i, "%2x", &byte);
        ct[i] = (unsigned char)byte;
    }
    long n = etl_vault_open(k, AD, ADLEN, nonce, ct, sizeof ct, out);
    CHECK(n == (long)PTLEN && memcmp(out, PT, PTLEN) == 0, "known answer opens (n=%ld)", n);
}

static void test_round_trip_and_tampering(void)
{
    unsigned char k[ETL_VAULT_KEY_LEN], nonce[ETL_VAULT_NONCE_LEN], nonce2[ETL_VAULT_NONCE_LEN];
    unsigned char ct[PTLEN + ETL_VAULT_TAG_LEN], ct2[PTLEN + ETL_VAULT_TAG_LEN], out[PTLEN];
    key_0_31(k);
    CHECK(etl_vault_seal(k, AD, ADLEN, PT, PTLEN, nonce, ct) == 0, "seal");
    CHECK(memcmp(ct, PT, PTLEN) != 0, "ciphertext differs from plaintext");
    CHECK(etl_vault_open(k, AD, ADLEN, nonce, ct, sizeof ct, out) == (long)PTLEN &&
              memcmp(out, PT, PTLEN) == 0,
          "round trip");

    CHECK(etl_vault_seal(k, AD, ADLEN, PT, PTLEN, nonce2, ct2) == 0, "seal again");
    CHECK(memcmp(nonce, nonce2, sizeof nonce) != 0 && memcmp(ct, ct2, sizeof ct) != 0,
          "a fresh random nonce per value");

    unsigned char wrong[ETL_VAULT_KEY_LEN];
    memcpy(wrong, k, sizeof wrong);
    wrong[31] ^= 1;
    memset(out, 0x55, sizeof out);
    CHECK(etl_vault_open(wrong, AD, ADLEN, nonce, ct, sizeof ct, out) == -1 && all_zero(out, PTLEN),
          "wrong key refused, output zeroed");

    unsigned char t[sizeof ct], tn[ETL_VAULT_NONCE_LEN];
    memcpy(tn, nonce, sizeof tn);
    tn[0] ^= 0x80;
    CHECK(etl_vault_open(k, AD, ADLEN, tn, ct, sizeof ct, out) == -1, "tampered nonce refused");
    for (size_t i = 0; i < sizeof ct; i++) { /* every byte of ciphertext and tag */
        memcpy(t, ct, sizeof t);
        t[i] ^= 0x01;
        memset(out, 0x55, sizeof out);
        CHECK(etl_vault_open(k, AD, ADLEN, nonce, t, sizeof t, out) == -1 && all_zero(out, PTLEN),
              "tampered %s byte %zu refused", i < PTLEN ? "ciphertext" : "tag", i);
    }
    CHECK(etl_vault_open(k, "device_id\0abc", 13, nonce, ct, sizeof ct, out) == -1,
          "other field as associated data refused");
    CHECK(etl_vault_open(k, "ip\0abd", 6, nonce, ct, sizeof ct, out) == -1,
          "other masked value as associated data refused");
    CHECK(etl_vault_open(k, NULL, 0, nonce, ct, sizeof ct, out) == -1,
          "no associated data refused");
    CHECK(etl_vault_open(k, AD, ADLEN, nonce, ct, sizeof ct - 1, out) == -1,
          "truncated tag refused");
    CHECK(etl_vault_open(k, AD, ADLEN, nonce, ct, ETL_VAULT_TAG_LEN - 1, out) == -1,
          "shorter than a tag refused");

    unsigned char empty_ct[ETL_VAULT_TAG_LEN], none[1];
    CHECK(etl_vault_seal(k, AD, ADLEN, "", 0, nonce, empty_ct) == 0, "seal empty");
    CHECK(etl_vault_open(k, AD, ADLEN, nonce, empty_ct, sizeof empty_ct, none) == 0, "open empty");
}

/* ---- Lua binding ------------------------------------------------------------------------------ */

static const char LUA_TEST[] =
    "local vault = require 'etlua.vault'\n"
    "local hex = ('000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f')\n"
    "local k = assert(vault.key(hex))\n"
    "assert(k:id() == '630dcd2966c43366', 'id')\n"
    "assert(not tostring(k):find('0001'), 'tostring shows no key')\n"
    "assert(getmetatable(k) == 'etlua.vault.key', 'metatable hidden')\n"
    "local n, c = k:seal('ip\\0m', '2001:db8::1')\n"
    "assert(#n == 12 and #c == 11 + 16, 'sizes')\n"
    "assert(k:open('ip\\0m', n, c) == '2001:db8::1', 'round trip')\n"
    "local p, err = k:open('device_id\\0m', n, c)\n"
    "assert(p == nil and err:find('wrong vault key or tampered'), 'moved field refused')\n"
    "assert(select(2, k:open('ip\\0m', 'short', c)):find('malformed'), 'bad nonce length')\n"
    "assert(vault.fromhex(vault.tohex(c)) == c and vault.tohex('\\0\\255') == '00ff', 'hex')\n"
    "assert(vault.fromhex('abc') == nil and vault.fromhex('zz') == nil, 'bad hex')\n"
    "local bad, msg = vault.key('too short')\n"
    "assert(bad == nil and msg == 'the vault key must be 64 hex digits or 32 raw bytes', msg)\n"
    "k:close(); k:close()\n"
    "assert(not pcall(k.seal, k, 'a', 'b'), 'closed key raises')\n"
    "assert(tostring(k):find('closed'), 'closed in tostring')\n"
    "do local k2 <close> = assert(vault.key(string.rep('x', 32))) end\n";

static void test_lua_binding(void)
{
    lua_State *L = luaL_newstate();
    luaL_openlibs(L);
    luaL_getsubtable(L, LUA_REGISTRYINDEX, LUA_PRELOAD_TABLE);
    lua_pushcfunction(L, luaopen_etlua_vault);
    lua_setfield(L, -2, "etlua.vault");
    lua_pop(L, 1);
    int rc = luaL_loadstring(L, LUA_TEST) || lua_pcall(L, 0, 0, 0);
    CHECK(rc == 0, "lua binding: %s", rc ? lua_tostring(L, -1) : "");
    lua_close(L);
}

int main(void)
{
    test_parse_key();
    test_key_id();
    test_known_answer();
    test_round_trip_and_tampering();
    test_lua_binding();
    return CHECK_DONE("test_vault");
}
