/* sqs_json_read.c: reading the values of an SQS JSON 1.0 answer in one pass, for
 * src/sqs_json_answer.c, which knows what the answers' fields mean (include/etlua/sqs_json_read.h).
 *
 * Why a reader of our own instead of a JSON library: an answer needs a handful of strings per
 * message, and a general decoder builds the whole document first. lua-cjson (which read these
 * answers before) made a Lua table of every answer, which was then copied into the result and
 * from there into the Lua values the client hands out: callgrind charged that ~32 k instructions
 * a message (of 70 k for the whole SQS client in bench/bare_drain.lua); the Debian libraries at
 * hand (jansson, json-c) also build a tree, node by node. This reader makes one pass, strict
 * JSON (RFC 8259: no comments, NaN, hex numbers, leading zeros, trailing commas or text after the
 * value; \u escapes decoded to UTF-8 with surrogate pairs joined, a lone surrogate refused; at
 * most ETL_SQS_JR_MAX_DEPTH nesting; raw control characters in strings are let through, as
 * lua-cjson let them through), copies only the fields asked for and checks and skips the rest.
 * Values are read defensively: a field of the wrong type counts as absent (an integer counts as
 * its digits). The grammar it shares with the body decoder (escapes, numbers) is src/json_lex.c. */
#include "etlua/sqs_json_read.h"

#include "etlua/json_lex.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void etl_sqs_jr_ws(struct rd *r)
{
    while (*r->p == ' ' || *r->p == '\t' || *r->p == '\n' || *r->p == '\r')
        r->p++;
}

static int bad(struct rd *r)
{
    r->failed = 1;
    return -1;
}

/* The first '"', '\\' or NUL at or after p: the end of a string's run of plain bytes. A run is
 * looked at byte by byte for its first 16 bytes, then by strcspn: a message body is a JSON text
 * escaped into a string, a quote every ten bytes or so, and strcspn's setup at every run was ~1%
 * of a drain's CPU; a long run (an AWS receipt handle: hundreds of bytes) still goes 16 at once. */
static const char *run_end(const char *p)
{
    static const unsigned char stop[256] = {[0] = 1, ['"'] = 1, ['\\'] = 1};
    const unsigned char *u = (const unsigned char *)p;
    for (int i = 0; i < 16; i += 4, u += 4) { /* u[k] is read only after u[k - 1] was no NUL */
        if (stop[u[0]])
            return (const char *)u;
        if (stop[u[1]])
            return (const char *)u + 1;
        if (stop[u[2]])
            return (const char *)u + 2;
        if (stop[u[3]])
            return (const char *)u + 3;
    }
    return (const char *)u + strcspn((const char *)u, "\"\\");
}

/* The string at r->p (its opening quote), checked and decoded: *s, *n get its bytes, in the
 * answer itself when it has no escapes (the usual case), else in b. Returns 0 or -1. Control
 * characters are taken as they are (as lua-cjson, which read these answers before, took them);
 * a NUL ends the answer, so a string that reaches it is unterminated. */
int etl_sqs_jr_decode(struct rd *r, struct scratch *b, const char **s, size_t *n)
{
    const char *start = ++r->p, *p = run_end(start);
    if (*p == '"') {
        r->p = p + 1;
        *s = start;
        *n = (size_t)(p - start);
        return 0;
    }
    /* escapes: the decoded text is never longer than the escaped one, so the rest of the
     * answer bounds it (the scratch is at most the answer's size, and kept for the answer's
     * next escaped string); bytes are then written in place */
    size_t need = (size_t)(r->end - start) + 1;
    if (need > b->cap) {
        char *q = realloc(b->p, need);
        if (!q) {
            r->full = 1;
            return -1;
        }
        b->p = q;
        b->cap = need;
    }
    char *o = b->p;
    for (;;) {
        memcpy(o, start, (size_t)(p - start));
        o += p - start;
        if (*p == '"')
            break;
        if (*p != '\\')
            return bad(r); /* the end of the text */
        int esc = etl_json_unescape((const unsigned char *)p, &o);
        if (esc < 0)
            return bad(r);
        p += esc;
        start = p;
        p = run_end(p);
    }
    r->p = p + 1;
    *s = b->p;
    *n = (size_t)(o - b->p);
    return 0;
}

/* A heap copy of s[0..n), or NULL with r->full set. */
char *etl_sqs_jr_copy(struct rd *r, const char *s, size_t n)
{
    char *d = malloc(n + 1);
    if (!d) {
        r->full = 1;
        return NULL;
    }
    memcpy(d, s, n);
    d[n] = '\0';
    return d;
}

/* The string at r->p into *out (a heap copy, replacing what *out held). Returns 0 or -1. */
int etl_sqs_jr_str(struct rd *r, char **out)
{
    const char *s;
    size_t n;
    if (etl_sqs_jr_decode(r, &r->tmp, &s, &n) != 0)
        return -1;
    free(*out);
    *out = etl_sqs_jr_copy(r, s, n);
    return *out ? 0 : -1;
}

/* The number at r->p, checked (etl_json_scan_number). *integral: without fraction or exponent. */
static int num(struct rd *r, int *integral)
{
    int flags;
    const char *end = (const char *)etl_json_scan_number((const unsigned char *)r->p, &flags);
    if (flags & ETL_JSON_NUM_BAD)
        return bad(r);
    *integral = !(flags & ETL_JSON_NUM_FLOAT);
    r->p = end;
    return 0;
}

int etl_sqs_jr_value(struct rd *r, int depth);
int etl_sqs_jr_objects(struct rd *r, int depth, int (*each)(struct rd *, void *, int), void *ud);

int etl_sqs_jr_object(struct rd *r, int depth, etl_sqs_jr_field field, void *ud)
{
    if (depth > ETL_SQS_JR_MAX_DEPTH)
        return bad(r);
    r->p++;
    etl_sqs_jr_ws(r);
    if (*r->p == '}') {
        r->p++;
        return 0;
    }
    for (;;) {
        if (*r->p != '"')
            return bad(r);
        const char *k;
        size_t klen;
        if (etl_sqs_jr_decode(r, &r->key, &k, &klen) != 0)
            return -1;
        etl_sqs_jr_ws(r);
        if (*r->p != ':')
            return bad(r);
        r->p++;
        etl_sqs_jr_ws(r);
        if ((field ? field(r, k, klen, ud, depth + 1) : etl_sqs_jr_value(r, depth + 1)) != 0)
            return -1;
        etl_sqs_jr_ws(r);
        if (*r->p == ',') {
            r->p++;
            etl_sqs_jr_ws(r);
        } else if (*r->p == '}') {
            r->p++;
            return 0;
        } else {
            return bad(r);
        }
    }
}

static int lit(struct rd *r, const char *word, size_t n)
{
    if (strncmp(r->p, word, n) != 0)
        return bad(r);
    r->p += n;
    return 0;
}

/* Checks and skips any value. */
int etl_sqs_jr_value(struct rd *r, int depth)
{
    int integral;
    const char *s;
    size_t n;
    switch (*r->p) {
    case '"':
        return etl_sqs_jr_decode(r, &r->tmp, &s, &n);
    case '{':
        return etl_sqs_jr_object(r, depth, NULL, NULL);
    case '[':
        return etl_sqs_jr_objects(r, depth, NULL, NULL);
    case 't':
        return lit(r, "true", 4);
    case 'f':
        return lit(r, "false", 5);
    case 'n':
        return lit(r, "null", 4);
    default:
        return num(r, &integral);
    }
}

/* A value that is not a string: an integer within 64 bits written into digits (its decimal
 * text, *n its length); any other value skipped (*n 0: absent). -1 on a malformed answer. */
int etl_sqs_jr_int_digits(struct rd *r, char digits[32], int *n, int depth)
{
    const char *start = r->p;
    int integral = 0;
    *n = 0;
    if (*start != '-' && (*start < '0' || *start > '9'))
        return etl_sqs_jr_value(r, depth);
    if (num(r, &integral) != 0)
        return -1;
    if (!integral)
        return 0;
    errno = 0;
    long long v = strtoll(start, NULL, 10);
    if (errno == ERANGE)
        return 0; /* beyond 64 bits: not an integer this client can use */
    *n = snprintf(digits, 32, "%lld", v);
    return 0;
}

/* A field's value into *out when it is a string, or an integer written as one (its digits);
 * any other value is skipped and counts as absent (*out NULL). */
int etl_sqs_jr_text(struct rd *r, char **out, int depth)
{
    if (*r->p == '"')
        return etl_sqs_jr_str(r, out);
    free(*out);
    *out = NULL;
    char digits[32];
    int n = 0;
    if (etl_sqs_jr_int_digits(r, digits, &n, depth) != 0)
        return -1;
    if (n == 0)
        return 0;
    *out = etl_sqs_jr_copy(r, digits, (size_t)n);
    return *out ? 0 : -1;
}

/* Calls each(r, ud, depth) for the elements of the array at r->p while they are objects (the
 * first one that is not ends the taking; the rest is still checked); skips anything but an
 * array. A NULL each checks and skips the whole array (value). */
int etl_sqs_jr_objects(struct rd *r, int depth, int (*each)(struct rd *, void *, int), void *ud)
{
    if (*r->p != '[')
        return etl_sqs_jr_value(r, depth);
    if (depth > ETL_SQS_JR_MAX_DEPTH)
        return bad(r);
    r->p++;
    etl_sqs_jr_ws(r);
    if (*r->p == ']') {
        r->p++;
        return 0;
    }
    int taking = 1;
    for (;;) {
        if (taking && each && *r->p == '{') {
            if (each(r, ud, depth + 1) != 0)
                return -1;
        } else {
            taking = 0;
            if (etl_sqs_jr_value(r, depth + 1) != 0)
                return -1;
        }
        etl_sqs_jr_ws(r);
        if (*r->p == ',') {
            r->p++;
            etl_sqs_jr_ws(r);
        } else if (*r->p == ']') {
            r->p++;
            return 0;
        } else {
            return bad(r);
        }
    }
}

int etl_sqs_jr_kept(struct rd *r, char **out, int depth)
{
    size_t rest = (size_t)(r->end - r->p) + 1;
    if (!r->block) {
        if (!(r->block = malloc(rest))) {
            r->full = 1;
            return -1;
        }
        r->block_used = 0;
        r->block_cap = rest;
        *r->block_home = r->block;
    }
    /* the free part of the block: at least as large as the rest of the answer (see the header),
     * which bounds a string decoded there; checked all the same, the scratch must never grow */
    struct scratch view = {r->block + r->block_used, r->block_cap - r->block_used};
    if (view.cap < rest) {
        r->full = 1;
        return -1;
    }
    const char *s;
    size_t n;
    char digits[32];
    if (*r->p == '"') {
        if (etl_sqs_jr_decode(r, &view, &s, &n) != 0)
            return -1;
    } else {
        int k = 0;
        *out = NULL;
        if (etl_sqs_jr_int_digits(r, digits, &k, depth) != 0)
            return -1;
        if (k == 0)
            return 0;
        s = digits;
        n = (size_t)k;
    }
    if (s != view.p) /* not decoded in place: copied (a string without escapes, digits) */
        memcpy(view.p, s, n);
    view.p[n] = '\0';
    r->block_used += n + 1;
    *out = view.p;
    return 0;
}
