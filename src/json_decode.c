/* json_decode.c: JSON text -> Lua values for etlua.json, in one pass straight onto the Lua stack
 * (no intermediate tree). Strict RFC 8259: one value with optional whitespace around it; no
 * NaN/Infinity, hex, leading zeros, leading '+', trailing commas, comments or byte-order mark.
 *
 *  - object -> table (duplicate keys: the last one wins); array -> table with json.array_mt,
 *    elements at 1..n; null -> json.null (the NULL light userdata), so no holes and no lost keys;
 *  - a number without fraction and exponent within the signed 64-bit range -> Lua integer,
 *    exactly (-9223372036854775808 included; "-0" is the integer 0); any other number -> float
 *    by strtod (whatever the locale); a number whose magnitude overflows a double (1e400) is
 *    refused ("number out of range"): it could be carried on neither as a float nor as JSON;
 *  - strings: UTF-8 validated (an ill-formed byte is refused), escapes decoded, \u escapes to
 *    UTF-8 with surrogate pairs joined; a lone surrogate (\ud800 alone, \udc00 first) is refused,
 *    as PostgreSQL's jsonb refuses it: replacing it would change the data without a trace;
 *    \u0000 gives a NUL byte in the Lua string;
 *  - more than ETL_JSON_MAX_DEPTH nested arrays/objects: refused, never a crash.
 *
 * Every refusal is `nil, "<what> at byte N"`, N counted from 1 as string.sub counts; the message
 * never quotes the input (bodies carry personal data). Only memory errors raise. */
#include "etlua/json_internal.h"
#include "etlua/json_lex.h"

#include <locale.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <lauxlib.h>
#include <lua.h>

struct dec {
    lua_State *L;
    const unsigned char *s, *p, *end; /* *end == '\0' */
    int mt_idx;
    struct etl_json_keys *keys; /* NULL: no key cache */
    int strings_up;             /* the upvalue of slot 0's string; slot h's is strings_up + h */
    const char *err;            /* set with err_at when refused */
    const unsigned char *err_at;
};

/* Records the first refusal; the caller unwinds by returning -1. */
static int dec_fail(struct dec *d, const unsigned char *at, const char *what)
{
    d->err = what;
    d->err_at = at;
    return -1;
}

/* A refusal where something specific was expected: at the end of the input it is the end. */
static int dec_expected(struct dec *d, const char *what)
{
    return dec_fail(d, d->p, d->p >= d->end ? "unexpected end of input" : what);
}

static void dec_skip_ws(struct dec *d)
{
    while (*d->p == ' ' || *d->p == '\n' || *d->p == '\r' || *d->p == '\t')
        d->p++;
}

/* One escape; d->p is at the backslash. Writes the bytes at *o. Returns 0 or -1. */
static int dec_escape(struct dec *d, char **o)
{
    const unsigned char *bs = d->p;
    int n = etl_json_unescape(bs, o);
    if (n > 0) {
        d->p = bs + n;
        return 0;
    }
    if (n == ETL_JSON_ESC_BAD_U)
        return dec_fail(d, bs, "invalid \\u escape");
    if (n == ETL_JSON_ESC_SURROGATE)
        return dec_fail(d, bs, "lone surrogate in \\u escape");
    return dec_fail(d, bs, bs + 1 >= d->end ? "unexpected end of input" : "invalid escape");
}

/* The bytes a string holds as they are, with nothing to check: printable ASCII but the quote
 * and the backslash. A run of them is skipped one table load a byte (the common string is all
 * of them); anything else (the end of the string, an escape, a control character, a UTF-8
 * sequence, the terminating NUL) takes the checks below. Lines of 32 bytes: 0x00-0x1F (controls),
 * 0x20-0x3F ('"' at 0x22), 0x40-0x5F ('\\' at 0x5C), 0x60-0x7F (DEL is allowed in a JSON
 * string), then 0x80-0xFF (UTF-8, checked apart). */
static const unsigned char PLAIN[256] = {
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
    1, 1, 0, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1,
    1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 0, 1, 1, 1,
    1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1,
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
};

/* Pushes the string whose opening quote is at d->p. Without escapes the input bytes are pushed
 * as they are; with escapes they are decoded into a buffer no longer than the raw text (every
 * escape is at least as long as what it stands for). */
static int dec_string(struct dec *d)
{
    const unsigned char *start = ++d->p;
    for (;;) {
        while (PLAIN[*d->p])
            d->p++;
        unsigned char c = *d->p;
        if (c == '"') {
            lua_pushlstring(d->L, (const char *)start, (size_t)(d->p - start));
            d->p++;
            return 0;
        }
        if (c == '\\')
            break;
        if (c < 0x20)
            return dec_expected(d, "control character in string");
        if (c < 0x80) {
            d->p++;
        } else {
            int ok;
            size_t n = etl_json_utf8_seq(d->p, (size_t)(d->end - d->p), &ok);
            if (!ok)
                return dec_fail(d, d->p, "invalid UTF-8 in string");
            d->p += n;
        }
    }
    /* escapes: bound the decoded length by the raw length up to the closing quote */
    const unsigned char *q = d->p;
    while (q < d->end && *q != '"')
        q += (*q == '\\') ? 2 : 1;
    size_t bound = (size_t)((q < d->end ? q : d->end) - start);
    luaL_Buffer b;
    char *out = luaL_buffinitsize(d->L, &b, bound + 1);
    memcpy(out, start, (size_t)(d->p - start));
    char *o = out + (d->p - start);
    for (;;) {
        unsigned char c = *d->p;
        if (c == '"') {
            luaL_pushresultsize(&b, (size_t)(o - out));
            d->p++;
            return 0;
        }
        if (c == '\\') {
            if (dec_escape(d, &o) < 0)
                return -1; /* the buffer is dropped with the rest of the stack */
        } else if (c < 0x20) {
            return dec_expected(d, "control character in string");
        } else if (c < 0x80) {
            *o++ = (char)c;
            d->p++;
        } else {
            int ok;
            size_t n = etl_json_utf8_seq(d->p, (size_t)(d->end - d->p), &ok);
            if (!ok)
                return dec_fail(d, d->p, "invalid UTF-8 in string");
            memcpy(o, d->p, n);
            o += n;
            d->p += n;
        }
    }
}

/* Pushes the object key whose opening quote is at d->p. A key of plain bytes only (the common
 * one), at most ETL_JSON_KEY_MAX of them, is looked up in the key cache by its bytes: found, its
 * string is pushed from the calling closure's upvalue for its slot (a lua_pushvalue, ~17
 * instructions; a lua_rawgeti from a table of the strings was ~51); else it is made and takes
 * the slot. Any other key (escapes, UTF-8, control characters, longer) is read by dec_string,
 * uncached. The string pushed is the same either way: equal bytes make one Lua string. */
static int dec_key(struct dec *d)
{
    const unsigned char *start = d->p + 1, *q = start;
    while (PLAIN[*q])
        q++;
    size_t n = (size_t)(q - start);
    if (*q != '"' || n > ETL_JSON_KEY_MAX || d->keys == NULL)
        return dec_string(d);
    unsigned h = (unsigned)n * 31u;
    if (n > 0)
        h += start[0] * 7u + start[n - 1] * 131u + start[n >> 1];
    h = (h ^ (h >> 6)) & (ETL_JSON_KEY_SLOTS - 1);
    struct etl_json_keys *k = d->keys;
    d->p = q + 1;
    if (k->len[h] == n + 1 && memcmp(k->bytes[h], start, n) == 0) {
        lua_pushvalue(d->L, lua_upvalueindex(d->strings_up + (int)h));
        return 0;
    }
    lua_pushlstring(d->L, (const char *)start, n);
    lua_pushvalue(d->L, -1);
    lua_replace(d->L, lua_upvalueindex(d->strings_up + (int)h));
    memcpy(k->bytes[h], start, n);
    k->len[h] = (unsigned char)(n + 1);
    return 0;
}

/* Parses a float that strtod of the C locale reads from start to end (already checked against
 * the JSON grammar). strtod follows LC_NUMERIC: when the locale's decimal point is not '.', the
 * text is read again from a copy with the locale's point. */
static int dec_float(struct dec *d, const unsigned char *start, double *out)
{
    char *endp;
    double v = strtod((const char *)start, &endp);
    if ((const unsigned char *)endp != d->p) {
        const char *point = localeconv()->decimal_point;
        size_t n = (size_t)(d->p - start), pl = strlen(point);
        char *copy = malloc(n * pl + 1);
        if (copy == NULL)
            return dec_fail(d, start, "out of memory");
        char *c = copy;
        for (const unsigned char *s = start; s < d->p; s++) {
            if (*s == '.') {
                memcpy(c, point, pl);
                c += pl;
            } else {
                *c++ = (char)*s;
            }
        }
        *c = '\0';
        v = strtod(copy, &endp);
        int whole = (*endp == '\0');
        free(copy);
        if (!whole)
            return dec_fail(d, start, "invalid number");
    }
    if (isinf(v))
        return dec_fail(d, start, "number out of range");
    *out = v;
    return 0;
}

/* A malformed number is named at its first byte (the end of the input, if it ran out). */
static int dec_bad_number(struct dec *d, const unsigned char *start)
{
    return d->p >= d->end ? dec_fail(d, d->p, "unexpected end of input")
                          : dec_fail(d, start, "invalid number");
}

/* Pushes the number at d->p (the grammar: etl_json_scan_number). */
static int dec_number(struct dec *d)
{
    const unsigned char *start = d->p;
    int neg = (*d->p == '-'), flags;
    d->p = etl_json_scan_number(start, &flags);
    if (flags & ETL_JSON_NUM_LEADING_ZERO)
        return dec_fail(d, start, "invalid number (leading zero)");
    if (flags & ETL_JSON_NUM_BAD)
        return dec_bad_number(d, start);
    int is_float = flags & ETL_JSON_NUM_FLOAT;
    const unsigned char *digits = start + neg, *digits_end = d->p;
    if (!is_float) {
        /* exact within [-2^63, 2^63 - 1]; beyond it the number is read as a float */
        const uint64_t limit = neg ? (uint64_t)1 << 63 : ((uint64_t)1 << 63) - 1;
        uint64_t u = 0;
        const unsigned char *s = digits;
        for (; s < digits_end; s++) {
            unsigned dgt = (unsigned)(*s - '0');
            if (u > (limit - dgt) / 10)
                break;
            u = u * 10 + dgt;
        }
        if (s == digits_end) {
            lua_Integer v;
            if (!neg)
                v = (lua_Integer)u;
            else if (u == (uint64_t)1 << 63)
                v = LUA_MININTEGER;
            else
                v = -(lua_Integer)u;
            lua_pushinteger(d->L, v);
            return 0;
        }
    }
    double v;
    if (dec_float(d, start, &v) < 0)
        return -1;
    lua_pushnumber(d->L, (lua_Number)v);
    return 0;
}

static int dec_value(struct dec *d, int depth);

/* Arrays and objects are sized once: their first DEC_HELD elements (or key/value pairs) wait
 * on the Lua stack until the container closes or that many are read, then the table is made
 * with room for them and they move in. A table filled from empty instead grows at every power
 * of two, each time rehashing what it holds (a login body's 6 keys: 4 rehashes, a quarter of
 * its decoding). Elements past DEC_HELD go straight into the table. The stack room this takes
 * (at most 2 * DEC_HELD + 8 slots per open container, checked as each opens) stays far below
 * Lua's stack limit at the depth limit.
 * The outermost object (a message's body) is made at once instead, with room for as many pairs
 * as the last outermost object this decoder read (the key cache keeps the count): the bodies of
 * one stream share their shape, so its pairs go straight in, without waiting on the stack. */
#define DEC_HELD 32

/* Moves the n values (arrays: step 1, from index next) or pairs (objects: step 2) held above
 * the placeholder at t into its table, made first when *made is 0. */
static void dec_flush(lua_State *L, int t, int n, int pairs, lua_Integer *next, int *made,
                      int mt_idx)
{
    if (!*made) {
        lua_createtable(L, pairs ? 0 : n, pairs ? n : 0);
        if (!pairs) {
            lua_pushvalue(L, mt_idx);
            lua_setmetatable(L, -2);
        }
        lua_replace(L, t);
        *made = 1;
    }
    for (int i = 0; i < n; i++) {
        if (pairs) {
            lua_pushvalue(L, t + 1 + 2 * i);
            lua_pushvalue(L, t + 2 + 2 * i);
            lua_rawset(L, t);
        } else {
            lua_pushvalue(L, t + 1 + i);
            lua_rawseti(L, t, (*next)++);
        }
    }
    lua_settop(L, t);
}

/* Pushes the array or object whose '[' or '{' is at d->p; depth counts it. Objects: duplicate
 * keys, the last one wins (pairs move into the table in the order they were read). */
static int dec_container(struct dec *d, int depth)
{
    lua_State *L = d->L;
    const int object = *d->p == '{';
    const char close = object ? '}' : ']';
    luaL_checkstack(L, (object ? 2 * DEC_HELD : DEC_HELD) + 8, "json.decode: nesting");
    d->p++;
    dec_skip_ws(d);
    lua_pushnil(L); /* the placeholder of the table */
    int t = lua_gettop(L), held = 0, made = 0, count = 0;
    lua_Integer next = 1;
    /* the outermost object: sized as the last one was, its pairs go straight in */
    const int outer = object && depth == 1 && d->keys != NULL, hint = outer ? d->keys->pairs : 0;
    if (hint > 0 && *d->p != close) {
        lua_createtable(L, 0, hint);
        lua_replace(L, t);
        made = 1;
    }
    if (*d->p == close) {
        d->p++;
        dec_flush(L, t, 0, object, &next, &made, d->mt_idx);
        return 0;
    }
    for (;;) {
        if (object) {
            dec_skip_ws(d);
            if (*d->p != '"')
                return dec_expected(d, "expected a string key");
            if (dec_key(d) < 0)
                return -1;
            dec_skip_ws(d);
            if (*d->p != ':')
                return dec_expected(d, "expected ':'");
            d->p++;
        }
        if (dec_value(d, depth) < 0)
            return -1;
        if (made) {
            if (object)
                lua_rawset(L, t);
            else
                lua_rawseti(L, t, next++);
        } else if (++held == DEC_HELD) {
            dec_flush(L, t, held, object, &next, &made, d->mt_idx);
        }
        count++;
        dec_skip_ws(d);
        if (*d->p == ',') {
            d->p++;
        } else if (*d->p == close) {
            d->p++;
            if (!made)
                dec_flush(L, t, held, object, &next, &made, d->mt_idx);
            if (outer)
                d->keys->pairs = count < DEC_HELD ? (unsigned char)count : DEC_HELD;
            return 0;
        } else {
            return dec_expected(d, object ? "expected ',' or '}'" : "expected ',' or ']'");
        }
    }
}

static int dec_literal(struct dec *d, const char *word, size_t n)
{
    if ((size_t)(d->end - d->p) < n || memcmp(d->p, word, n) != 0)
        return dec_fail(d, d->p, "expected a value");
    d->p += n;
    return 0;
}

/* Pushes the value at d->p (after any whitespace); depth: containers already open. */
static int dec_value(struct dec *d, int depth)
{
    dec_skip_ws(d);
    switch (*d->p) {
    case '{':
    case '[':
        if (depth >= ETL_JSON_MAX_DEPTH)
            return dec_fail(d, d->p, "nesting deeper than 1000");
        return dec_container(d, depth + 1);
    case '"':
        return dec_string(d);
    case 't':
        if (dec_literal(d, "true", 4) < 0)
            return -1;
        lua_pushboolean(d->L, 1);
        return 0;
    case 'f':
        if (dec_literal(d, "false", 5) < 0)
            return -1;
        lua_pushboolean(d->L, 0);
        return 0;
    case 'n':
        if (dec_literal(d, "null", 4) < 0)
            return -1;
        lua_pushlightuserdata(d->L, NULL);
        return 0;
    case '-':
    case '0':
    case '1':
    case '2':
    case '3':
    case '4':
    case '5':
    case '6':
    case '7':
    case '8':
    case '9':
        return dec_number(d);
    default:
        return dec_expected(d, "expected a value");
    }
}

int etl_json_decode(lua_State *L, const char *s, size_t len, int mt_idx, struct etl_json_keys *keys,
                    int strings_up)
{
    struct dec d = {
        .L = L,
        .s = (const unsigned char *)s,
        .p = (const unsigned char *)s,
        .end = (const unsigned char *)s + len,
        .mt_idx = lua_absindex(L, mt_idx),
        .keys = keys,
        .strings_up = keys ? strings_up : 0,
    };
    int base = lua_gettop(L);
    int rc = dec_value(&d, 0);
    if (rc == 0) {
        dec_skip_ws(&d);
        if (d.p != d.end)
            rc = dec_fail(&d, d.p, "unexpected data after the value");
    }
    if (rc == 0)
        return 1;
    lua_settop(L, base);
    lua_pushnil(L);
    lua_pushfstring(L, "%s at byte %I", d.err, (lua_Integer)(d.err_at - d.s + 1));
    return 2;
}
