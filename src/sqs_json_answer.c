/* sqs_json_answer.c: the answers of the SQS JSON 1.0 protocol read into the neutral result
 * (include/etlua/sqs_codec.h), for the JSON codec (src/sqs_json.c).
 *
 * Why a reader of our own instead of a JSON library: an answer needs a handful of strings per
 * message, and a general decoder builds the whole document first. lua-cjson (which read these
 * answers before) made a Lua table of every answer, which was then copied into the result and
 * from there into the Lua values the client hands out: callgrind charged that ~32 k instructions
 * a message (of 70 k for the whole SQS client in bench/bare_drain.lua); the Debian libraries at
 * hand (jansson, json-c) also build a tree, node by node. This reader makes one pass, strict
 * JSON (RFC 8259: no comments, NaN, hex numbers, leading zeros, trailing commas or text after the
 * value; \u escapes decoded to UTF-8 with surrogate pairs joined, a lone surrogate refused; at
 * most MAX_DEPTH nesting; raw control characters in strings are let through, as lua-cjson let
 * them through), copies only the fields the result has and checks and skips the rest. Answers are read defensively: a field of the wrong type
 * counts as absent (an integer counts as its digits); a repeated key counts once, the last one.
 * The grammar it shares with the body decoder (escapes, numbers) is src/json_lex.c.
 * tests/c/test_sqs_codec.c reads the same answers as the query codec; fuzz_sqs_json feeds it
 * arbitrary bytes. */
#include "etlua/sqs_codec.h"

#include "etlua/json_lex.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_DEPTH 1000

/* Room for one decoded string, kept for the next one. */
struct scratch {
    char *p;
    size_t cap;
};

struct rd {
    const char *p, *end; /* *end == '\0' */
    int failed;          /* malformed JSON */
    int full;            /* too many entries or out of memory */
    struct scratch tmp;  /* a string value with escapes, decoded */
    struct scratch key;  /* a key with escapes, decoded */
};

/* The fields of an error answer, whatever the status (used when it is not 2xx). */
struct err_fields {
    char *type, *code, *Code, *message, *Message;
};

static void ws(struct rd *r)
{
    while (*r->p == ' ' || *r->p == '\t' || *r->p == '\n' || *r->p == '\r')
        r->p++;
}

static int bad(struct rd *r)
{
    r->failed = 1;
    return -1;
}

/* The string at r->p (its opening quote), checked and decoded: *s, *n get its bytes, in the
 * answer itself when it has no escapes (the usual case), else in b. Returns 0 or -1. Control
 * characters are taken as they are (as lua-cjson, which read these answers before, took them);
 * a NUL ends the answer, so a string that reaches it is unterminated. */
static int decode(struct rd *r, struct scratch *b, const char **s, size_t *n)
{
    const char *start = ++r->p, *p = start + strcspn(start, "\"\\");
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
        p += strcspn(p, "\"\\");
    }
    r->p = p + 1;
    *s = b->p;
    *n = (size_t)(o - b->p);
    return 0;
}

/* A heap copy of s[0..n), or NULL with r->full set. */
static char *copy(struct rd *r, const char *s, size_t n)
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
static int str(struct rd *r, char **out)
{
    const char *s;
    size_t n;
    if (decode(r, &r->tmp, &s, &n) != 0)
        return -1;
    free(*out);
    *out = copy(r, s, n);
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

static int value(struct rd *r, int depth);
static int objects(struct rd *r, int depth, int (*each)(struct rd *, void *, int), void *ud);

/* Calls field(r, key, ud) for each member of the object at r->p (its '{'); field must read the
 * member's value. A NULL field skips every value. Returns 0 or -1. */
typedef int (*field_fn)(struct rd *r, const char *key, size_t klen, void *ud, int depth);

static int object(struct rd *r, int depth, field_fn field, void *ud)
{
    if (depth > MAX_DEPTH)
        return bad(r);
    r->p++;
    ws(r);
    if (*r->p == '}') {
        r->p++;
        return 0;
    }
    for (;;) {
        if (*r->p != '"')
            return bad(r);
        const char *k;
        size_t klen;
        if (decode(r, &r->key, &k, &klen) != 0)
            return -1;
        ws(r);
        if (*r->p != ':')
            return bad(r);
        r->p++;
        ws(r);
        if ((field ? field(r, k, klen, ud, depth + 1) : value(r, depth + 1)) != 0)
            return -1;
        ws(r);
        if (*r->p == ',') {
            r->p++;
            ws(r);
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
static int value(struct rd *r, int depth)
{
    int integral;
    const char *s;
    size_t n;
    switch (*r->p) {
    case '"':
        return decode(r, &r->tmp, &s, &n);
    case '{':
        return object(r, depth, NULL, NULL);
    case '[':
        return objects(r, depth, NULL, NULL);
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
static int int_digits(struct rd *r, char digits[32], int *n, int depth)
{
    const char *start = r->p;
    int integral = 0;
    *n = 0;
    if (*start != '-' && (*start < '0' || *start > '9'))
        return value(r, depth);
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
static int text(struct rd *r, char **out, int depth)
{
    if (*r->p == '"')
        return str(r, out);
    free(*out);
    *out = NULL;
    char digits[32];
    int n = 0;
    if (int_digits(r, digits, &n, depth) != 0)
        return -1;
    if (n == 0)
        return 0;
    *out = copy(r, digits, (size_t)n);
    return *out ? 0 : -1;
}

/* Calls each(r, ud, depth) for the elements of the array at r->p while they are objects (the
 * first one that is not ends the taking; the rest is still checked); skips anything but an
 * array. A NULL each checks and skips the whole array (value). */
static int objects(struct rd *r, int depth, int (*each)(struct rd *, void *, int), void *ud)
{
    if (*r->p != '[')
        return value(r, depth);
    if (depth > MAX_DEPTH)
        return bad(r);
    r->p++;
    ws(r);
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
            if (value(r, depth + 1) != 0)
                return -1;
        }
        ws(r);
        if (*r->p == ',') {
            r->p++;
            ws(r);
        } else if (*r->p == ']') {
            r->p++;
            return 0;
        } else {
            return bad(r);
        }
    }
}

#define KEY(k, lit) (k##len == sizeof lit - 1 && memcmp(k, lit, sizeof lit - 1) == 0)

/* ---- a message ---- */

static int message_attribute(struct rd *r, const char *k, size_t klen, void *ud, int depth)
{
    char **v = ud; /* [0] StringValue, [1] BinaryValue */
    if (KEY(k, "StringValue"))
        return text(r, &v[0], depth);
    if (KEY(k, "BinaryValue"))
        return text(r, &v[1], depth);
    return value(r, depth);
}

static int message_attributes(struct rd *r, const char *k, size_t klen, void *ud, int depth)
{
    struct etl_sqs_message *m = ud;
    if (*r->p != '{')
        return value(r, depth);
    char *name = copy(r, k, klen), *v[2] = {NULL, NULL};
    if (!name)
        return -1;
    if (object(r, depth, message_attribute, v) != 0) {
        free(name);
        free(v[0]);
        free(v[1]);
        return -1;
    }
    char *val = v[0] ? v[0] : v[1] ? v[1] : strdup("");
    if (v[0])
        free(v[1]);
    struct etl_sqs_pair *p =
        etl_sqs_append((void **)&m->attributes, &m->nattributes, sizeof *m->attributes);
    if (!p || !val) {
        free(name);
        free(val);
        r->full = 1;
        return -1;
    }
    p->name = name;
    p->value = val;
    return 0;
}

/* A count's value (as text() reads it: a string, or an integer as its digits) into *out, by
 * etl_sqs_parse_count, without a heap copy: -1 when absent, not a count, or too long for one. */
static int count(struct rd *r, long long *out, int depth)
{
    char digits[32];
    const char *s;
    size_t n;
    *out = -1;
    if (*r->p == '"') {
        if (decode(r, &r->tmp, &s, &n) != 0)
            return -1;
        if (n < sizeof digits) {
            memcpy(digits, s, n);
            digits[n] = '\0';
            *out = etl_sqs_parse_count(digits);
        }
        return 0;
    }
    int len = 0;
    if (int_digits(r, digits, &len, depth) != 0)
        return -1;
    if (len > 0)
        *out = etl_sqs_parse_count(digits);
    return 0;
}

static int system_attribute(struct rd *r, const char *k, size_t klen, void *ud, int depth)
{
    struct etl_sqs_message *m = ud;
    if (KEY(k, "SentTimestamp"))
        return count(r, &m->sent_ms, depth);
    if (KEY(k, "ApproximateReceiveCount"))
        return count(r, &m->receive_count, depth);
    if (KEY(k, "MessageGroupId"))
        return text(r, &m->group_id, depth);
    if (KEY(k, "SequenceNumber"))
        return text(r, &m->sequence_number, depth);
    return value(r, depth);
}

static void message_clear(struct etl_sqs_message *m, int system)
{
    if (system) {
        m->sent_ms = m->receive_count = -1;
        free(m->group_id);
        free(m->sequence_number);
        m->group_id = m->sequence_number = NULL;
        return;
    }
    for (size_t i = 0; i < m->nattributes; i++) {
        free(m->attributes[i].name);
        free(m->attributes[i].value);
    }
    free(m->attributes);
    m->attributes = NULL;
    m->nattributes = 0;
}

static int message_field(struct rd *r, const char *k, size_t klen, void *ud, int depth)
{
    struct etl_sqs_message *m = ud;
    if (KEY(k, "MessageId"))
        return text(r, &m->id, depth);
    if (KEY(k, "ReceiptHandle"))
        return text(r, &m->receipt, depth);
    if (KEY(k, "Body"))
        return text(r, &m->body, depth);
    if (KEY(k, "Attributes")) { /* the last one counts, as for every repeated key */
        message_clear(m, 1);
        return *r->p == '{' ? object(r, depth, system_attribute, m) : value(r, depth);
    }
    if (KEY(k, "MessageAttributes")) {
        message_clear(m, 0);
        return *r->p == '{' ? object(r, depth, message_attributes, m) : value(r, depth);
    }
    return value(r, depth);
}

static int message(struct rd *r, void *ud, int depth)
{
    struct etl_sqs_result *out = ud;
    struct etl_sqs_message *m =
        etl_sqs_append((void **)&out->messages, &out->nmessages, sizeof *out->messages);
    if (!m) {
        r->full = 1;
        return -1;
    }
    m->sent_ms = m->receive_count = -1;
    return object(r, depth, message_field, m);
}

/* ---- a batch failure, queue attributes, the top level ---- */

static int failure_field(struct rd *r, const char *k, size_t klen, void *ud, int depth)
{
    struct etl_sqs_failure *f = ud;
    if (KEY(k, "Id"))
        return text(r, &f->id, depth);
    if (KEY(k, "Code"))
        return text(r, &f->code, depth);
    if (KEY(k, "Message"))
        return text(r, &f->message, depth);
    return value(r, depth);
}

static int failure(struct rd *r, void *ud, int depth)
{
    struct etl_sqs_result *out = ud;
    struct etl_sqs_failure *f =
        etl_sqs_append((void **)&out->failures, &out->nfailures, sizeof *out->failures);
    if (!f) {
        r->full = 1;
        return -1;
    }
    return object(r, depth, failure_field, f);
}

static int queue_attribute(struct rd *r, const char *k, size_t klen, void *ud, int depth)
{
    struct etl_sqs_result *out = ud;
    if (*r->p != '"')
        return value(r, depth);
    struct etl_sqs_pair *p =
        etl_sqs_append((void **)&out->attributes, &out->nattributes, sizeof *out->attributes);
    if (!p) {
        r->full = 1;
        return -1;
    }
    return (p->name = copy(r, k, klen)) != NULL ? str(r, &p->value) : -1;
}

struct top {
    enum etl_sqs_action action;
    int success;
    struct etl_sqs_result *out;
    struct err_fields e;
};

static void free_results(struct etl_sqs_result *out)
{
    etl_sqs_result_free(out);
    memset(out, 0, sizeof *out);
}

static int top_field(struct rd *r, const char *k, size_t klen, void *ud, int depth)
{
    struct top *t = ud;
    struct etl_sqs_result *out = t->out;
    if (t->success) {
        enum etl_sqs_action a = t->action;
        if (a == ETL_SQS_RECEIVE && KEY(k, "Messages")) {
            free_results(out); /* a repeated key: the last one counts */
            return objects(r, depth, message, out);
        }
        if ((a == ETL_SQS_DELETE_BATCH || a == ETL_SQS_CHANGE_VISIBILITY_BATCH) &&
            KEY(k, "Failed")) {
            free_results(out);
            return objects(r, depth, failure, out);
        }
        if (a == ETL_SQS_GET_QUEUE_URL && KEY(k, "QueueUrl"))
            return text(r, &out->queue_url, depth);
        if (a == ETL_SQS_GET_QUEUE_ATTRIBUTES && KEY(k, "Attributes")) {
            free_results(out);
            return *r->p == '{' ? object(r, depth, queue_attribute, out) : value(r, depth);
        }
        return value(r, depth);
    }
    if (KEY(k, "__type"))
        return text(r, &t->e.type, depth);
    if (KEY(k, "code"))
        return text(r, &t->e.code, depth);
    if (KEY(k, "Code"))
        return text(r, &t->e.Code, depth);
    if (KEY(k, "message"))
        return text(r, &t->e.message, depth);
    if (KEY(k, "Message"))
        return text(r, &t->e.Message, depth);
    return value(r, depth);
}

/* Reads the whole answer. Returns 1 when it is one JSON object or array (only an object has
 * fields), 0 when it is anything else, malformed JSON included; -1 when it holds too many entries
 * or memory ran out. */
static int read_answer(const struct etl_sqs_answer *ans, struct top *t)
{
    struct rd r = {.p = ans->body, .end = ans->body + ans->len};
    ws(&r);
    int is_container = *r.p == '{' || *r.p == '[';
    int rc = *r.p == '{' ? object(&r, 1, top_field, t) : value(&r, 1);
    if (rc == 0) {
        ws(&r);
        if (r.p != r.end) /* trailing text, or a NUL inside the answer */
            r.failed = 1;
    }
    free(r.tmp.p);
    free(r.key.p);
    if (r.full && !r.failed)
        return -1;
    return rc == 0 && !r.failed && is_container;
}

/* The error code of an error answer into code[] ("" when none): the part of "__type" after
 * '#' and before ':', or "code" / "Code". */
static void error_code_of(const struct err_fields *e, char *code, size_t codelen)
{
    const char *s = e->type ? e->type : e->code ? e->code : e->Code;
    if (e->type) {
        const char *hash = strrchr(s, '#');
        s = hash ? hash + 1 : s;
    }
    snprintf(code, codelen, "%.*s", s ? (int)strcspn(s, ":") : 0, s ? s : "");
}

enum etl_sqs_code etl_sqs_json_parse(enum etl_sqs_action action, const struct etl_sqs_answer *ans,
                                     struct etl_sqs_result *out)
{
    memset(out, 0, sizeof *out);
    long status = ans->status;
    char hcode[256];
    snprintf(hcode, sizeof hcode, "%.*s", (int)strcspn(ans->query_error, ";"), ans->query_error);
    const char *p = ans->body + strspn(ans->body, " \t\r\n");
    if (*p == '<') { /* an XML answer: a query-protocol endpoint */
        out->mismatch = status < 500 && status != 429;
        snprintf(out->why, sizeof out->why, "the endpoint answered a JSON request in XML");
        return status >= 500 ? ETL_SQS_SERVER : ETL_SQS_PROTOCOL;
    }
    /* An empty 2xx answer carries no fields (local-aws-sqs answers an empty long poll with
     * Content-Length: 0): no messages, no failures. */
    int success = status >= 200 && status < 300;
    if (success && *p == '\0')
        return ETL_SQS_OK;
    struct top t = {.action = action, .success = success, .out = out};
    int rc = read_answer(ans, &t);
    enum etl_sqs_code code = ETL_SQS_OK;
    if (rc == 0) {
        free_results(out);
        out->mismatch =
            !*hcode && (status == 400 || status == 404 || status == 405 || status == 415);
        if (*hcode || status >= 300)
            code = etl_sqs_service_error(out, status, *hcode ? hcode : NULL, NULL);
        else {
            snprintf(out->why, sizeof out->why, "the answer is not a JSON object");
            code = ETL_SQS_PROTOCOL;
        }
    } else if (!success) {
        char jcode[256];
        error_code_of(&t.e, jcode, sizeof jcode);
        const char *jmsg = t.e.message ? t.e.message : t.e.Message;
        /* 415: the endpoint refuses the JSON content type (sqslite answers so) */
        out->mismatch = status == 415 ||
                        etl_sqs_is_protocol_mismatch(*hcode ? hcode : jcode, jmsg) ||
                        (*jcode && etl_sqs_is_protocol_mismatch(jcode, jmsg));
        code = etl_sqs_service_error(out, status, *hcode ? hcode : jcode, jmsg);
    } else if (rc < 0) {
        free_results(out);
        snprintf(out->why, sizeof out->why, "too many entries or out of memory");
        code = ETL_SQS_PROTOCOL;
    }
    free(t.e.type);
    free(t.e.code);
    free(t.e.Code);
    free(t.e.message);
    free(t.e.Message);
    return code;
}
