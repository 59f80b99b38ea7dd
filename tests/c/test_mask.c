/* test_mask.c: etlua.mask — SHA-256 and HMAC-SHA-256 against published vectors (RFC 4231,
 * FIPS 180-2 examples), the canonical IP form, and the Lua binding (hasher, close twice).
 * A plain program: prints each failure and exits non-zero when any check failed. */
#include "etlua/mask.h"

#include "check.h"

#include <stdio.h>
#include <string.h>

#include <lauxlib.h>
#include <lua.h>
#include <lualib.h>

/* ---- SHA-256 ---------------------------------------------------------------------------------- */

static void test_sha256(void)
{
    char hex[ETL_MASK_HEX_LEN + 1];
    CHECK(etl_mask_sha256_hex("", 0, hex) == 0, "sha256('') failed");
    CHECK(strcmp(hex, "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855") == 0,
          "sha256('') = %s", hex);
    CHECK(etl_mask_sha256_hex("abc", 3, hex) == 0, "sha256(abc) failed");
    CHECK(strcmp(hex, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad") == 0,
          "sha256(abc) = %s", hex);
}

/* ---- HMAC-SHA-256: RFC 4231 test cases 1-7 ------------------------------------------------------ */

struct hmac_case {
    const char *name;
    unsigned char key[131];
    size_t keylen;
    const char *data;
    size_t datalen;
    const char *mac; /* hex; case 5 is compared on its 128-bit truncation only */
};

static void fill(unsigned char *p, unsigned char b, size_t n) { memset(p, b, n); }

static void test_hmac_rfc4231(void)
{
    static struct hmac_case c[7];
    unsigned char dd[50], cd[50];
    fill(dd, 0xdd, sizeof dd);
    fill(cd, 0xcd, sizeof cd);

    c[0] = (struct hmac_case){"1", {0}, 20, "Hi There", 8,
                              "b0344c61d8db38535ca8afceaf0bf12b881dc200c9833da726e9376c2e32cff7"};
    fill(c[0].key, 0x0b, 20);
    c[1] = (struct hmac_case){"2", "Jefe", 4, "what do ya want for nothing?", 28,
                              "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"};
    c[2] = (struct hmac_case){"3", {0}, 20, (const char *)dd, 50,
                              "773ea91e36800e46854db8ebd09181a72959098b3ef8c122d9635514ced565fe"};
    fill(c[2].key, 0xaa, 20);
    c[3] = (struct hmac_case){"4", {0}, 25, (const char *)cd, 50,
                              "82558a389a443c0ea4cc819899f2083a85f0faa3e578f8077a2e3ff46729665b"};
    for (int i = 0; i < 25; i++)
        c[3].key[i] = (unsigned char)(i + 1);
    c[4] = (struct hmac_case){"5", {0}, 20, "Test With Truncation", 20,
                              "a3b6167473100ee06e0c796c2955552b"};
    fill(c[4].key, 0x0c, 20);
    c[5] = (struct hmac_case){"6", {0}, 131, "Test Using Larger Than Block-Size Key - Hash Key First",
                              54, "60e431591ee0b67f0d8a26aacbf5b77f8e0bc6213728c5140546040f0ee37f54"};
    fill(c[5].key, 0xaa, 131);
    static const char d7[] = "This is a test using a larger than block-size key and a larger than "
                             "block-size data. The key needs to be hashed before being used by the "
                             "HMAC algorithm.";
    c[6] = (struct hmac_case){"7", {0}, 131, d7, sizeof d7 - 1,
                              "9b09ffa71b942fcb27635fbcd5b0e944bfdc63644f0713938a7f51535c3a35e2"};
    fill(c[6].key, 0xaa, 131);

    for (size_t i = 0; i < sizeof c / sizeof c[0]; i++) {
        char hex[ETL_MASK_HEX_LEN + 1];
        CHECK(etl_mask_hmac_hex(c[i].key, c[i].keylen, c[i].data, c[i].datalen, hex) == 0,
              "RFC 4231 case %s: failed", c[i].name);
        CHECK(strncmp(hex, c[i].mac, strlen(c[i].mac)) == 0, "RFC 4231 case %s: got %s",
              c[i].name, hex);
        CHECK(strlen(hex) == ETL_MASK_HEX_LEN, "RFC 4231 case %s: length %zu", c[i].name,
              strlen(hex));
    }
}

static void test_hex_is_lowercase(void)
{
    char hex[ETL_MASK_HEX_LEN + 1];
    CHECK(etl_mask_hmac_hex("k", 1, "x", 1, hex) == 0, "hmac failed");
    for (size_t i = 0; i < ETL_MASK_HEX_LEN; i++)
        CHECK((hex[i] >= '0' && hex[i] <= '9') || (hex[i] >= 'a' && hex[i] <= 'f'),
              "non-lowercase-hex char at %zu in %s", i, hex);
    /* An empty key is a valid HMAC key (the 32-byte minimum is the configuration's rule). */
    CHECK(etl_mask_hmac_hex("", 0, "", 0, hex) == 0, "hmac with empty key failed");
    CHECK(strcmp(hex, "b613679a0814d9ec772f95d778c35fc5ff1697c493715653c6c712144292c5ad") == 0,
          "hmac('', '') = %s", hex);
}

/* ---- canonical IP ------------------------------------------------------------------------------ */

static void expect_ip(const char *in, size_t len, int family, const char *want)
{
    char out[ETL_MASK_IP_MAX];
    int got = etl_mask_canonical_ip(in, len, out);
    CHECK(got == family, "canonical_ip(\"%s\") family %d, want %d", in, got, family);
    if (family != 0 && got == family)
        CHECK(strcmp(out, want) == 0, "canonical_ip(\"%s\") = \"%s\", want \"%s\"", in, out, want);
}

#define IP_OK(in, fam, want) expect_ip(in, strlen(in), fam, want)
#define IP_BAD(in) expect_ip(in, strlen(in), 0, NULL)

static void test_canonical_ip(void)
{
    /* IPv4: returned as given */
    IP_OK("199.172.111.135", 4, "199.172.111.135");
    IP_OK("0.0.0.0", 4, "0.0.0.0");
    IP_OK("255.255.255.255", 4, "255.255.255.255");
    /* IPv4: what inet_pton refuses */
    IP_BAD("999.1.1.1");
    IP_BAD("256.0.0.1");
    IP_BAD("1.2.3");
    IP_BAD("1.2.3.4.5");
    IP_BAD("01.2.3.4");
    IP_BAD("0x1.2.3.4");
    IP_BAD("1.2.3.-1");
    IP_BAD(" 1.2.3.4");
    IP_BAD("1.2.3.4 ");
    IP_BAD("1.2.3.4\n");
    IP_BAD("1..2.3");
    IP_BAD("");
    expect_ip("1.2.3.4\0" "5", 9, 0, NULL); /* embedded NUL must not cut the input */
    expect_ip("1.2.3.4", 8, 0, NULL);        /* trailing NUL counted in the length */

    /* IPv6: many spellings, one form */
    IP_OK("2001:db8::1", 6, "2001:db8::1");
    IP_OK("2001:DB8::1", 6, "2001:db8::1");
    IP_OK("2001:0db8:0000:0000:0000:0000:0000:0001", 6, "2001:db8::1");
    IP_OK("2001:db8:0:0:0:0:0:1", 6, "2001:db8::1");
    IP_OK("2001:db8::0:0:1", 6, "2001:db8::1");
    IP_OK("2001:0DB8:0::0001", 6, "2001:db8::1");
    IP_OK("0:0:0:0:0:0:0:1", 6, "::1");
    IP_OK("::1", 6, "::1");
    IP_OK("::", 6, "::");
    IP_OK("0:0:0:0:0:0:0:0", 6, "::");
    IP_OK("1:0:0:0:0:0:0:0", 6, "1::");
    IP_OK("2001:db8:0:0:1:0:0:1", 6, "2001:db8::1:0:0:1");        /* tie: the first run */
    IP_OK("2001:0:0:1:0:0:0:1", 6, "2001:0:0:1::1");              /* the longest run */
    IP_OK("2001:db8:0:1:1:1:1:1", 6, "2001:db8:0:1:1:1:1:1");      /* one zero group stays */
    IP_OK("::ffff:1.2.3.4", 6, "::ffff:1.2.3.4");                  /* IPv4-mapped */
    IP_OK("::FFFF:0102:0304", 6, "::ffff:1.2.3.4");
    IP_OK("0:0:0:0:0:ffff:102:304", 6, "::ffff:1.2.3.4");
    IP_OK("::1.2.3.4", 6, "::102:304");                            /* IPv4-compatible: hex */
    IP_OK("::0.0.1.2", 6, "::102");
    IP_OK("::0.0.0.2", 6, "::2");
    IP_OK("FE80::ABCD:EF01", 6, "fe80::abcd:ef01");
    IP_OK("0000:0000:0000:0000:0000:ffff:255.255.255.255", 6, "::ffff:255.255.255.255");
    /* IPv6: refused */
    IP_BAD("fe80::1%eth0");
    IP_BAD("fe80::1%1");
    IP_BAD(":::");
    IP_BAD("1::2::3");
    IP_BAD("12345::1");
    IP_BAD("g::1");
    IP_BAD("1:2:3:4:5:6:7:8:9");
    IP_BAD("[::1]");
    IP_BAD(" ::1");
    IP_BAD("0000:0000:0000:0000:0000:0000:0000:0000:0001"); /* over-long */
    char longbuf[200];
    memset(longbuf, '0', sizeof longbuf);
    longbuf[0] = ':';
    longbuf[1] = ':';
    expect_ip(longbuf, sizeof longbuf, 0, NULL);
}

/* ---- the Lua binding --------------------------------------------------------------------------- */

static const char lua_checks[] =
    "local mask = ...\n"
    "local key = 'etlua-test-key-0123456789abcdef0123456789'\n"
    "local h = mask.new(key)\n"
    "assert(h:hex('199.172.111.135') == "
    "'26bcaeea1c777adc99cc49fd0c32b709e6ed63bda6d3f8136104721ec2c13137', 'hasher:hex')\n"
    "assert(h:hex('593-47-5928') == mask.hmac_sha256_hex(key, '593-47-5928'), 'hex = one-shot')\n"
    "assert(h:hex('a\\0b') ~= h:hex('a'), 'NUL is data')\n"
    "assert(mask.sha256_hex('abc'):sub(1, 8) == 'ba7816bf', 'sha256_hex')\n"
    "local ip, fam = mask.canonical_ip('2001:0DB8::0001')\n"
    "assert(ip == '2001:db8::1' and fam == 6, 'canonical_ip v6')\n"
    "assert(mask.canonical_ip('999.1.1.1') == nil, 'canonical_ip invalid')\n"
    "assert(select('#', mask.canonical_ip('x')) == 1, 'invalid returns one nil')\n"
    "assert(tostring(h):find('etlua.mask.hasher', 1, true), 'tostring')\n"
    "assert(not tostring(h):find(key, 1, true), 'tostring must not show the key')\n"
    "h:close(); h:close()\n"
    "assert(not pcall(h.hex, h, 'x'), 'closed hasher raises')\n"
    "assert(not pcall(mask.new), 'new without key raises')\n"
    "do local c <close> = mask.new('') ; assert(#c:hex('') == 64) end\n"
    "for i = 1, 1000 do mask.new('k' .. i) end collectgarbage()\n"
    "return true\n";

static void test_lua_binding(void)
{
    lua_State *L = luaL_newstate();
    CHECK(L != NULL, "luaL_newstate");
    if (L == NULL)
        return;
    luaL_openlibs(L);
    luaL_requiref(L, "etlua.mask", luaopen_etlua_mask, 0);
    if (luaL_loadstring(L, lua_checks) != LUA_OK) {
        CHECK(0, "load: %s", lua_tostring(L, -1));
    } else {
        lua_pushvalue(L, -2);
        if (lua_pcall(L, 1, 1, 0) != LUA_OK)
            CHECK(0, "lua checks: %s", lua_tostring(L, -1));
    }
    lua_close(L);
}

int main(void)
{
    test_sha256();
    test_hmac_rfc4231();
    test_hex_is_lowercase();
    test_canonical_ip();
    test_lua_binding();
    return CHECK_DONE("test_mask");
}
