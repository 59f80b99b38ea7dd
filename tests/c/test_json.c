/* test_json.c: the C side of etlua.json — the number texts the Postgres path shares
 * (etl_json_number_text, etl_json_float_text), the UTF-8 rule (etl_json_utf8_seq, with the
 * maximal subparts the encoder replaces), and the binding's stack discipline: decode and encode
 * leave exactly their results on the stack, also when they refuse. The value-level behaviour
 * is spec/json_spec.lua. */
#include "etlua/json_internal.h"
#include "etlua/json_lex.h"
#include "etlua/modules.h"

#include "check.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

#include <lauxlib.h>
#include <lua.h>
#include <lualib.h>

static void check_number(double x, const char *want_pg, const char *want_json, int line)
{
    char out[ETL_JSON_NUMBER_MAX];
    int n = etl_json_number_text(x, out);
    if (strcmp(out, want_pg) != 0 || n != (int)strlen(out))
        check_fail_at(__FILE__, line, "number_text(%.17g) = %s (%d), want %s", x, out, n, want_pg);
    if (!want_json)
        return;
    n = etl_json_float_text(x, out);
    if (strcmp(out, want_json) != 0 || n != (int)strlen(out))
        check_fail_at(__FILE__, line, "float_text(%.17g) = %s (%d), want %s", x, out, n, want_json);
}

static void test_numbers(void)
{
    check_number(2.0, "2", "2.0", __LINE__);
    check_number(-0.0, "-0", "-0.0", __LINE__);
    check_number(0.0, "0", "0.0", __LINE__);
    check_number(0.1, "0.1", "0.1", __LINE__);
    check_number(1.0 / 3, "0.3333333333333333", "0.3333333333333333", __LINE__);
    check_number(1e15, "1000000000000000", "1e+15", __LINE__);
    check_number(9007199254740992.0, "9007199254740992", "9007199254740992.0", __LINE__);
    check_number(-9223372036854775808.0, "-9223372036854775808", "-9.223372036854776e+18",
                 __LINE__);
    check_number(9223372036854775808.0, "9.223372036854776e+18", "9.223372036854776e+18", __LINE__);
    check_number(1e300, "1e+300", "1e+300", __LINE__);
    check_number(-1.7976931348623157e308, "-1.7976931348623157e+308", "-1.7976931348623157e+308",
                 __LINE__);
    check_number(5e-324, "4.94065645841247e-324", "4.94065645841247e-324", __LINE__);
    check_number(INFINITY, "Infinity", NULL, __LINE__);
    check_number(-INFINITY, "-Infinity", NULL, __LINE__);
    check_number(NAN, "NaN", NULL, __LINE__);
}

static void check_utf8(const char *s, size_t n, int want_valid, size_t want_len, int line)
{
    int valid = -1;
    size_t len = etl_json_utf8_seq((const unsigned char *)s, n, &valid);
    if (valid != want_valid || len != want_len)
        check_fail_at(__FILE__, line, "utf8_seq: valid %d len %zu, want %d %zu", valid, len,
                      want_valid, want_len);
}

static void test_utf8(void)
{
    check_utf8("A", 1, 1, 1, __LINE__);
    check_utf8("\xC3\xA9", 2, 1, 2, __LINE__);
    check_utf8("\xE2\x82\xAC", 3, 1, 3, __LINE__);
    check_utf8("\xF0\x9F\x98\x80", 4, 1, 4, __LINE__);
    check_utf8("\xF4\x8F\xBF\xBF", 4, 1, 4, __LINE__); /* U+10FFFF */
    check_utf8("\xF4\x90\x80\x80", 4, 0, 1, __LINE__); /* past U+10FFFF */
    check_utf8("\xC0\xAF", 2, 0, 1, __LINE__);         /* overlong */
    check_utf8("\xE0\x80\xAF", 3, 0, 1, __LINE__);     /* overlong */
    check_utf8("\xED\xA0\x80", 3, 0, 1, __LINE__);     /* surrogate */
    check_utf8("\xE2\x82", 2, 0, 2, __LINE__);         /* truncated: one subpart */
    check_utf8("\xE2\x82\xAC", 2, 0, 2, __LINE__);     /* cut by n */
    check_utf8("\xF0\x9F\x98", 3, 0, 3, __LINE__);
    check_utf8("\xF0\x9F\x98"
               "A",
               4, 0, 3, __LINE__);
    check_utf8("\x80", 1, 0, 1, __LINE__);
    check_utf8("\xFF", 1, 0, 1, __LINE__);
}

static void test_stack(void)
{
    lua_State *L = luaL_newstate();
    luaL_openlibs(L);
    luaL_requiref(L, "etlua.json", luaopen_etlua_json, 0);
    int mt = lua_gettop(L);
    lua_getfield(L, mt, "array_mt");
    int mt_idx = lua_gettop(L);
    int top = lua_gettop(L);
    static const char bad[] = "[1, {\"a\": [2, \"x\\u0041\"], \"b\": tru}]";
    CHECK(etl_json_decode(L, bad, sizeof bad - 1, mt_idx, NULL, 0) == 2);
    CHECK(lua_gettop(L) == top + 2, "decode left %d slots", lua_gettop(L) - top);
    CHECK_STR_EQ(lua_tostring(L, -1), "expected a value at byte 32");
    lua_settop(L, top);
    static const char good[] = "[1, {\"a\": [2, \"x\\u0041\"], \"b\": true}]";
    CHECK(etl_json_decode(L, good, sizeof good - 1, mt_idx, NULL, 0) == 1);
    CHECK(lua_gettop(L) == top + 1);
    CHECK(etl_json_encode(L, -1, mt_idx, 0) == 1);
    CHECK(lua_gettop(L) == top + 2);
    const char *text = lua_tostring(L, -1);
    CHECK(text && (strcmp(text, "[1,{\"a\":[2,\"xA\"],\"b\":true}]") == 0 ||
                   strcmp(text, "[1,{\"b\":true,\"a\":[2,\"xA\"]}]") == 0),
          "encode gave %s", text ? text : "(null)");
    lua_settop(L, top);
    lua_pushcfunction(L, luaopen_etlua_json); /* a function: refused */
    CHECK(etl_json_encode(L, -1, mt_idx, 0) == 2);
    CHECK(lua_gettop(L) == top + 3);
    CHECK_STR_EQ(lua_tostring(L, -1), "cannot encode a function");
    lua_close(L);
}

int main(void)
{
    test_numbers();
    test_utf8();
    test_stack();
    return CHECK_DONE("test_json");
}
