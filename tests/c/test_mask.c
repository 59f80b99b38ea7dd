/* test_mask.c: etlua.mask — SHA-256 and HMAC-SHA-256 against published vectors (RFC 4231,
 * FIPS 180-2 examples), at the padding and key-block boundaries, and against OpenSSL's own
 * EVP_MAC HMAC for every key and data length up to past two blocks, through both the one-shot
 * and the hasher (the key's states computed once, reused per call); the canonical IP form, and
 * the Lua binding (hasher, close twice).
 * A plain program: prints each failure and exits non-zero when any check failed. */
#include "etlua/buf.h"
#include "etlua/mask.h"
#include "etlua/modules.h"

#include "check.h"

#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <lauxlib.h>
#include <lua.h>
#include <lualib.h>
#include <openssl/core_names.h>
#include <openssl/evp.h>
#include <openssl/params.h>

/* ---- SHA-256 ---------------------------------------------------------------------------------- */

static void expect_sha256(const char *name, const void *data, size_t len, const char *want)
{
    char hex[ETL_MASK_HEX_LEN + 1];
    CHECK(etl_mask_sha256_hex(data, len, hex) == 0, "sha256(%s) failed", name);
    CHECK(strcmp(hex, want) == 0, "sha256(%s) = %s", name, hex);
}

static void test_sha256(void)
{
    /* FIPS 180-2 examples (and the empty message) */
    expect_sha256("''", "", 0, "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
    expect_sha256("abc", "abc", 3,
                  "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
    static const char m448[] = "abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq";
    expect_sha256("448 bits", m448, sizeof m448 - 1,
                  "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1");
    static const char m896[] = "abcdefghbcdefghicdefghijdefghijkefghijklfghijklmghijklmnhijklmno"
                               "ijklmnopjklmnopqklmnopqrlmnopqrsmnopqrstnopqrstu";
    expect_sha256("896 bits", m896, sizeof m896 - 1,
                  "cf5b16a778af8380036ce59e7b0492370b249b11e8f07a51afac45037afee9d1");
    char *a = malloc(1000000);
    CHECK(a != NULL, "malloc");
    if (a == NULL)
        return;
    memset(a, 'a', 1000000);
    expect_sha256("a x 1,000,000", a, 1000000,
                  "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0");
    /* the padding boundaries: 55 bytes fit one block with the length, 56 need a second */
    expect_sha256("a x 55", a, 55,
                  "9f4390f8d30c2dd92ec9f095b65e2b9ae9b0a925a5258e241c9f1e910f734318");
    expect_sha256("a x 56", a, 56,
                  "b35439a4ac6f0948b6d6f9e3c6af0f5f590ce20f1bde7090ef7970686ec6738a");
    expect_sha256("a x 64", a, 64,
                  "ffe054fe7ae0cb6dc65c3af9b61d5209f439851db43d0ba5997337df154668eb");
    expect_sha256("a x 65", a, 65,
                  "635361c48bb9eab14198e76ea8ab7f1a41685d6ad62aa9146d301d4f17eb0ae0");
    free(a);
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

/* A Lua state with etlua.mask's table at index 1, for hashers made by mask.new. */
static lua_State *mask_state(void)
{
    lua_State *L = luaL_newstate();
    if (L == NULL)
        return NULL;
    luaL_requiref(L, "etlua.mask", luaopen_etlua_mask, 0);
    return L;
}

/* mask.new(key), pushed on L; the C view of it. */
static struct etl_mask_hasher *push_hasher(lua_State *L, const void *key, size_t keylen)
{
    lua_getfield(L, 1, "new");
    lua_pushlstring(L, key, keylen);
    lua_call(L, 1, 1);
    return etl_mask_check_hasher(L, -1);
}

static void test_hmac_rfc4231(void)
{
    static struct hmac_case c[7];
    unsigned char dd[50], cd[50];
    fill(dd, 0xdd, sizeof dd);
    fill(cd, 0xcd, sizeof cd);

    c[0] = (struct hmac_case){
        "1",        {0}, 20,
        "Hi There", 8,   "b0344c61d8db38535ca8afceaf0bf12b881dc200c9833da726e9376c2e32cff7"};
    fill(c[0].key, 0x0b, 20);
    c[1] =
        (struct hmac_case){"2", "Jefe",
                           4,   "what do ya want for nothing?",
                           28,  "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"};
    c[2] =
        (struct hmac_case){"3", {0},
                           20,  (const char *)dd,
                           50,  "773ea91e36800e46854db8ebd09181a72959098b3ef8c122d9635514ced565fe"};
    fill(c[2].key, 0xaa, 20);
    c[3] =
        (struct hmac_case){"4", {0},
                           25,  (const char *)cd,
                           50,  "82558a389a443c0ea4cc819899f2083a85f0faa3e578f8077a2e3ff46729665b"};
    for (int i = 0; i < 25; i++)
        c[3].key[i] = (unsigned char)(i + 1);
    c[4] = (struct hmac_case){
        "5", {0}, 20, "Test With Truncation", 20, "a3b6167473100ee06e0c796c2955552b"};
    fill(c[4].key, 0x0c, 20);
    c[5] =
        (struct hmac_case){"6", {0},
                           131, "Test Using Larger Than Block-Size Key - Hash Key First",
                           54,  "60e431591ee0b67f0d8a26aacbf5b77f8e0bc6213728c5140546040f0ee37f54"};
    fill(c[5].key, 0xaa, 131);
    static const char d7[] = "This is a test using a larger than block-size key and a larger than "
                             "block-size data. The key needs to be hashed before being used by the "
                             "HMAC algorithm.";
    c[6] = (struct hmac_case){
        "7", {0},           131,
        d7,  sizeof d7 - 1, "9b09ffa71b942fcb27635fbcd5b0e944bfdc63644f0713938a7f51535c3a35e2"};
    fill(c[6].key, 0xaa, 131);

    lua_State *L = mask_state();
    CHECK(L != NULL, "luaL_newstate");
    for (size_t i = 0; i < sizeof c / sizeof c[0]; i++) {
        char hex[ETL_MASK_HEX_LEN + 1];
        CHECK(etl_mask_hmac_hex(c[i].key, c[i].keylen, c[i].data, c[i].datalen, hex) == 0,
              "RFC 4231 case %s: failed", c[i].name);
        CHECK(strncmp(hex, c[i].mac, strlen(c[i].mac)) == 0, "RFC 4231 case %s: got %s", c[i].name,
              hex);
        CHECK(strlen(hex) == ETL_MASK_HEX_LEN, "RFC 4231 case %s: length %zu", c[i].name,
              strlen(hex));
        if (L == NULL)
            continue;
        /* the hasher, twice: its key states are not changed by a call */
        struct etl_mask_hasher *h = push_hasher(L, c[i].key, c[i].keylen);
        for (int round = 0; round < 2; round++) {
            CHECK(etl_mask_hasher_hex(h, c[i].data, c[i].datalen, hex) == 0,
                  "RFC 4231 case %s: hasher failed", c[i].name);
            CHECK(strncmp(hex, c[i].mac, strlen(c[i].mac)) == 0,
                  "RFC 4231 case %s: hasher round %d got %s", c[i].name, round, hex);
        }
        lua_pop(L, 1);
    }
    if (L != NULL)
        lua_close(L);
}

/* The boundaries: keys of one block and one byte more (hashed first), data that fills the
 * inner hash's first block with its length (55) or needs a second (56), empty data. Expected
 * values from Python's hmac module; key byte i = 7i + 1, data = 'x' repeated. */
static void test_hmac_boundaries(void)
{
    static const struct {
        size_t keylen, datalen;
        const char *mac;
    } c[] = {
        {64, 0, "e85cffc652260de36a1ddbb0cac32dc4cf975b7cdbc0468fc61847947ba83b25"},
        {65, 0, "d8dcfa9ddfed8fd078bb0531ba6f4ac3d4fee7417a621c4bc380f0b6e83894eb"},
        {32, 0, "61441727616675ef1218d04f4db2af842446a742020936d8529aa18818205abc"},
        {32, 55, "0bc08c971e8afbf970a4c1ff05a8908c20768c5f9e252b1e56ee3f5881661c3c"},
        {32, 56, "8c71ce2434a844f66ee7d353ac38664a7ba5979942bd830aa74ea5ba59a0d16f"},
        {63, 64, "96d97f9ed4f804431eb472de0f2553dfae79161c446e03d932124531080531ef"},
        {200, 200, "46d5dbb4517d612e18cebf59032a62769573efdc23ad646729398225f1d2b219"},
    };
    unsigned char key[200], data[200];
    for (size_t i = 0; i < sizeof key; i++)
        key[i] = (unsigned char)(7 * i + 1);
    memset(data, 'x', sizeof data);
    for (size_t i = 0; i < sizeof c / sizeof c[0]; i++) {
        char hex[ETL_MASK_HEX_LEN + 1];
        CHECK(etl_mask_hmac_hex(key, c[i].keylen, data, c[i].datalen, hex) == 0 &&
                  strcmp(hex, c[i].mac) == 0,
              "hmac key %zu bytes, data %zu bytes: got %s", c[i].keylen, c[i].datalen, hex);
    }
}

/* Every key length and data length from 0 to past two blocks, against OpenSSL's EVP_MAC HMAC:
 * the one-shot, and one hasher per key reused for every data length. */
static void test_hmac_against_evp(void)
{
    enum { MAX = 140 };
    unsigned char key[MAX], data[MAX];
    for (size_t i = 0; i < MAX; i++) {
        key[i] = (unsigned char)(7 * i + 1);
        data[i] = (unsigned char)(13 * i + 5); /* includes NUL bytes */
    }
    lua_State *L = mask_state();
    CHECK(L != NULL, "luaL_newstate");
    if (L == NULL)
        return;
    int bad = 0;
    for (size_t kl = 0; kl < MAX && bad < 5; kl++) {
        struct etl_mask_hasher *h = push_hasher(L, key, kl);
        for (size_t dl = 0; dl < MAX && bad < 5; dl++) {
            unsigned char md[32];
            size_t mdlen = 0;
            char want[ETL_MASK_HEX_LEN + 1], one[ETL_MASK_HEX_LEN + 1], got[ETL_MASK_HEX_LEN + 1];
            if (!EVP_Q_mac(NULL, "HMAC", NULL, "SHA256", NULL, key, kl, data, dl, md, sizeof md,
                           &mdlen) ||
                mdlen != sizeof md) {
                CHECK(0, "EVP_Q_mac failed (key %zu, data %zu)", kl, dl);
                bad++;
                continue;
            }
            for (size_t i = 0; i < sizeof md; i++)
                snprintf(want + 2 * i, 3, "%02x", md[i]);
            int rc1 = etl_mask_hmac_hex(key, kl, data, dl, one);
            int rc2 = etl_mask_hasher_hex(h, data, dl, got);
            int ok = rc1 == 0 && rc2 == 0 && strcmp(one, want) == 0 && strcmp(got, want) == 0;
            CHECK(ok, "key %zu bytes, data %zu bytes: EVP %s, one-shot %s, hasher %s", kl, dl, want,
                  one, got);
            bad += !ok;
        }
        lua_pop(L, 1);
    }
    lua_close(L);
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

/* etl_hex (include/etlua/buf.h), which writes every mask: every byte value, at every offset and
 * length to past 70 bytes (16 bytes at a time with SSE2, then 4, then one at a time: every mix of
 * the three), against snprintf's %02x/%02X. */
static void test_hex_every_byte(void)
{
    unsigned char in[300];
    char got[2 * sizeof in + 1], want[2 * sizeof in + 1];
    for (size_t i = 0; i < sizeof in; i++)
        in[i] = (unsigned char)(i * 7 + 3); /* every value 0..255 (7 is odd) */
    for (int upper = 0; upper <= 1; upper++) {
        for (size_t off = 0; off < 8; off++) {
            for (size_t n = 0; off + n <= sizeof in; n += n < 71 ? 1 : 37) {
                memset(got, 'x', sizeof got);
                etl_hex(got, in + off, n, upper);
                for (size_t i = 0; i < n; i++)
                    snprintf(want + 2 * i, 3, upper ? "%02X" : "%02x", in[off + i]);
                want[2 * n] = '\0';
                CHECK(strcmp(got, want) == 0, "etl_hex(%zu bytes at %zu, upper %d) = %s", n, off,
                      upper, got);
            }
        }
    }
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
    expect_ip("1.2.3.4\0"
              "5",
              9, 0, NULL);            /* embedded NUL must not cut the input */
    expect_ip("1.2.3.4", 8, 0, NULL); /* trailing NUL counted in the length */

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
    IP_OK("2001:db8:0:0:1:0:0:1", 6, "2001:db8::1:0:0:1");    /* tie: the first run */
    IP_OK("2001:0:0:1:0:0:0:1", 6, "2001:0:0:1::1");          /* the longest run */
    IP_OK("2001:db8:0:1:1:1:1:1", 6, "2001:db8:0:1:1:1:1:1"); /* one zero group stays */
    IP_OK("::ffff:1.2.3.4", 6, "::ffff:1.2.3.4");             /* IPv4-mapped */
    IP_OK("::FFFF:0102:0304", 6, "::ffff:1.2.3.4");
    IP_OK("0:0:0:0:0:ffff:102:304", 6, "::ffff:1.2.3.4");
    IP_OK("::1.2.3.4", 6, "::102:304"); /* IPv4-compatible: hex */
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

    /* IPv4 text is written without inet_ntop: every octet value in every position, and the
     * IPv4-mapped IPv6 tail (inet_ntop's own), as inet_ntop writes them */
    for (unsigned v = 0; v < 256; v++) {
        const unsigned char quads[][4] = {{v, 0, 0, 0}, {0, v, 0, 0},       {0, 0, v, 0},
                                          {0, 0, 0, v}, {v, 255 - v, v, 9}, {255, v / 2, 99, v}};
        for (size_t q = 0; q < sizeof quads / sizeof quads[0]; q++) {
            char want[ETL_MASK_IP_MAX], mapped[ETL_MASK_IP_MAX], mwant[64];
            CHECK(inet_ntop(AF_INET, quads[q], want, sizeof want) != NULL, "inet_ntop");
            IP_OK(want, 4, want);
            snprintf(mapped, sizeof mapped, "::ffff:%u.%u.%u.%u", quads[q][0], quads[q][1],
                     quads[q][2], quads[q][3]);
            snprintf(mwant, sizeof mwant, "::ffff:%s", want);
            IP_OK(mapped, 6, mwant);
        }
    }
}

/* The memo (etl_mask_ip_memo_get) gives what etl_mask_canonical_ip gives, whatever came before:
 * the same address again, another of the same length, a prefix or an extension of the last,
 * an invalid one between valid ones, embedded NULs, the over-long. */
static void test_ip_memo(void)
{
    static const char *const seq[] = {
        "199.172.111.135", "199.172.111.135", "199.172.111.136", "199.172.111.135",
        "2001:DB8::1",     "2001:db8::1",     "2001:DB8::1",     "999.1.1.1",
        "999.1.1.1",       "1.2.3.4",         "1.2.3.41",        "1.2.3.4",
        "1.2.3.",          "::ffff:1.2.3.4",  "::FFFF:1.2.3.4",  "",
        "1.2.3.4",         "fe80::1%eth0",    "::1.2.3.4",       "::1.2.3.4",
    };
    const size_t n = sizeof seq / sizeof seq[0];
    struct etl_mask_ip_memo memo;
    memset(&memo, 0, sizeof memo);
    for (int round = 0; round < 2; round++) {
        for (size_t i = 0; i < n; i++) {
            const char *in = seq[round ? n - 1 - i : i], *text = NULL;
            size_t len = strlen(in), tlen = 0;
            char want[ETL_MASK_IP_MAX];
            int same = -1, family = etl_mask_canonical_ip(in, len, want);
            int got = etl_mask_ip_memo_get(&memo, in, len, &text, &tlen, &same);
            CHECK(got == family, "memo(\"%s\") family %d, want %d", in, got, family);
            if (family == 0 || got != family)
                continue;
            CHECK(tlen == strlen(want) && memcmp(text, want, tlen) == 0,
                  "memo(\"%s\") = \"%.*s\", want \"%s\"", in, (int)tlen, text, want);
            CHECK(same == (strcmp(want, in) == 0), "memo(\"%s\") same %d", in, same);
        }
    }
    /* embedded NUL and the length: the bytes counted, not the C string */
    const char *text;
    size_t tlen;
    int same;
    CHECK(etl_mask_ip_memo_get(&memo, "1.2.3.4", 7, &text, &tlen, &same) == 4, "memo 1.2.3.4");
    CHECK(etl_mask_ip_memo_get(&memo,
                               "1.2.3.4\0"
                               "5",
                               9, &text, &tlen, &same) == 0,
          "memo: embedded NUL");
    CHECK(etl_mask_ip_memo_get(&memo, "1.2.3.4", 8, &text, &tlen, &same) == 0,
          "memo: the NUL counted");
    CHECK(etl_mask_ip_memo_get(&memo, "1.2.3.4", 7, &text, &tlen, &same) == 4 && same,
          "memo 1.2.3.4 again");
    char longbuf[200];
    memset(longbuf, '0', sizeof longbuf);
    memcpy(longbuf, "::", 2);
    CHECK(etl_mask_ip_memo_get(&memo, longbuf, sizeof longbuf, &text, &tlen, &same) == 0,
          "memo: over-long");
    CHECK(etl_mask_ip_memo_get(&memo, longbuf, ETL_MASK_IP_MAX - 1, &text, &tlen, &same) == 0,
          "memo: 45 zeros");
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
    "assert(mask.canonical('2001:0DB8::0002', 'ip') == '2001:db8::2', 'canonical, then')\n"
    "assert(mask.canonical_ip('2001:0DB8::0002') == '2001:db8::2', 'canonical_ip of the same')\n"
    "assert(mask.canonical_ip('2001:0DB8::0003') == '2001:db8::3', 'then another')\n"
    "assert(mask.canonical('2001:0DB8::0002', 'ip') == '2001:db8::2', 'and the first again')\n"
    "assert(mask.canonical('not an ip', 'ip') == 'not an ip', 'not an address: as it is')\n"
    "assert(mask.canonical_ip('not an ip') == nil, 'canonical_ip of it: nil')\n"
    "assert(tostring(h):find('etlua.mask.hasher', 1, true), 'tostring')\n"
    "assert(not tostring(h):find(key, 1, true), 'tostring must not show the key')\n"
    "local ok, err = pcall(h.hex, io.stdout, 'x')\n"
    "assert(not ok and err:find('etlua.mask.hasher expected, got FILE*', 1, true), err)\n"
    "ok, err = pcall(h.hex, {}, 'x')\n"
    "assert(not ok and err:find('etlua.mask.hasher expected, got table', 1, true), err)\n"
    "assert(not pcall(h.hex, nil, 'x') and not pcall(h.hex, h), 'bad self, missing value')\n"
    "h:close(); h:close()\n"
    "assert(not pcall(h.hex, h, 'x'), 'closed hasher raises')\n"
    "assert(not pcall(mask.new), 'new without key raises')\n"
    "do local c <close> = mask.new('') ; assert(#c:hex('') == 64) end\n"
    "local long = string.rep('k', 200)\n"
    "assert(mask.new(long):hex('') == mask.hmac_sha256_hex(long, ''), 'long key, empty data')\n"
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

/* The ledger's digest (etl_mask_sha256_int64: s alone, or s NUL t; one block of its own up to
 * 55 bytes, SHA256_Update/Final past that) against EVP_Digest of the same bytes, for every
 * length of s and of t up to past two blocks. */
static void test_sha256_int64_against_evp(void)
{
    enum { MAX = 140 };
    unsigned char data[2 * MAX + 1];
    int bad = 0;
    for (size_t sl = 0; sl < MAX && bad < 5; sl++) {
        for (long tl = -1; tl < MAX && bad < 5; tl++) { /* -1: no t */
            size_t n = sl;
            for (size_t i = 0; i < sl; i++)
                data[i] = (unsigned char)(13 * i + 5);
            if (tl >= 0) {
                data[n++] = 0;
                for (long i = 0; i < tl; i++)
                    data[n++] = (unsigned char)(7 * i + 1);
            }
            unsigned char md[32];
            unsigned int mdlen = 0;
            CHECK(EVP_Digest(data, n, md, &mdlen, EVP_sha256(), NULL) == 1 && mdlen == 32,
                  "EVP_Digest");
            uint64_t u = 0;
            uint32_t b = 0;
            for (int i = 0; i < 8; i++)
                u = u << 8 | md[i];
            for (int i = 8; i < 12; i++)
                b = b << 8 | md[i];
            int64_t d = 0;
            uint32_t bits = 0;
            int rc = etl_mask_sha256_int64(data, sl, tl >= 0 ? data + sl + 1 : NULL,
                                           tl >= 0 ? (size_t)tl : 0, &d, &bits);
            int ok = rc == 0 && (uint64_t)d == u && bits == b;
            CHECK(ok, "sha256_int64: s %zu bytes, t %ld bytes", sl, tl);
            bad += !ok;
        }
    }
}

int main(void)
{
    test_sha256();
    test_hmac_rfc4231();
    test_hmac_boundaries();
    test_hmac_against_evp();
    test_sha256_int64_against_evp();
    test_hex_is_lowercase();
    test_hex_every_byte();
    test_canonical_ip();
    test_ip_memo();
    test_lua_binding();
    return CHECK_DONE("test_mask");
}
