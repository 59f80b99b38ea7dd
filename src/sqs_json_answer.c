/* sqs_json_answer.c: the answers of the SQS JSON 1.0 protocol read into the neutral result
 * (include/etlua/sqs_codec.h), for the JSON codec (src/sqs_json.c): which fields each answer has
 * and what they mean (messages, their attributes, batch failures, queue attributes, errors). The
 * values are read by the one-pass reader of src/sqs_json_read.c (why not a JSON library: its
 * header); a repeated key counts once, the last one.
 * tests/c/test_sqs_codec.c reads the same answers as the query codec; fuzz_sqs_json feeds it
 * arbitrary bytes. */
#include "etlua/sqs_codec.h"
#include "etlua/sqs_json_read.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* The fields of an error answer, whatever the status (used when it is not 2xx). */
struct err_fields {
    char *type, *code, *Code, *message, *Message;
};

#define KEY(k, lit) (k##len == sizeof lit - 1 && memcmp(k, lit, sizeof lit - 1) == 0)

/* ---- a message ---- */

static int message_attribute(struct rd *r, const char *k, size_t klen, void *ud, int depth)
{
    char **v = ud; /* [0] StringValue, [1] BinaryValue */
    if (KEY(k, "StringValue"))
        return etl_sqs_jr_text(r, &v[0], depth);
    if (KEY(k, "BinaryValue"))
        return etl_sqs_jr_text(r, &v[1], depth);
    return etl_sqs_jr_value(r, depth);
}

static int message_attributes(struct rd *r, const char *k, size_t klen, void *ud, int depth)
{
    struct etl_sqs_message *m = ud;
    if (*r->p != '{')
        return etl_sqs_jr_value(r, depth);
    char *name = etl_sqs_jr_copy(r, k, klen), *v[2] = {NULL, NULL};
    if (!name)
        return -1;
    if (etl_sqs_jr_object(r, depth, message_attribute, v) != 0) {
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

/* A count's value (as etl_sqs_jr_text() reads it: a string, or an integer as its digits) into *out, by
 * etl_sqs_parse_count, without a heap copy: -1 when absent, not a count, or too long for one. */
static int count(struct rd *r, long long *out, int depth)
{
    char digits[32];
    const char *s;
    size_t n;
    *out = -1;
    if (*r->p == '"') {
        if (etl_sqs_jr_decode(r, &r->tmp, &s, &n) != 0)
            return -1;
        if (n < sizeof digits) {
            memcpy(digits, s, n);
            digits[n] = '\0';
            *out = etl_sqs_parse_count(digits);
        }
        return 0;
    }
    int len = 0;
    if (etl_sqs_jr_int_digits(r, digits, &len, depth) != 0)
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
        return etl_sqs_jr_kept(r, &m->group_id, depth);
    if (KEY(k, "SequenceNumber"))
        return etl_sqs_jr_kept(r, &m->sequence_number, depth);
    return etl_sqs_jr_value(r, depth);
}

static void message_clear(struct etl_sqs_message *m, int system)
{
    if (system) { /* (the two strings are the block's: see message_field) */
        m->sent_ms = m->receive_count = -1;
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

/* A message's strings (id, receipt, body, group id, sequence number) are kept in the reader's
 * one block (etl_sqs_jr_kept), which the result owns (its strings): one allocation an answer
 * rather than three or more a message, and a body with escapes (every JSON body) decoded right
 * into it. */
static int message_field(struct rd *r, const char *k, size_t klen, void *ud, int depth)
{
    struct etl_sqs_message *m = ud;
    if (KEY(k, "MessageId"))
        return etl_sqs_jr_kept(r, &m->id, depth);
    if (KEY(k, "ReceiptHandle"))
        return etl_sqs_jr_kept(r, &m->receipt, depth);
    if (KEY(k, "Body"))
        return etl_sqs_jr_kept(r, &m->body, depth);
    if (KEY(k, "Attributes")) { /* the last one counts, as for every repeated key */
        message_clear(m, 1);
        return *r->p == '{' ? etl_sqs_jr_object(r, depth, system_attribute, m)
                            : etl_sqs_jr_value(r, depth);
    }
    if (KEY(k, "MessageAttributes")) {
        message_clear(m, 0);
        return *r->p == '{' ? etl_sqs_jr_object(r, depth, message_attributes, m)
                            : etl_sqs_jr_value(r, depth);
    }
    return etl_sqs_jr_value(r, depth);
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
    return etl_sqs_jr_object(r, depth, message_field, m);
}

/* ---- a batch failure, queue attributes, the top level ---- */

static int failure_field(struct rd *r, const char *k, size_t klen, void *ud, int depth)
{
    struct etl_sqs_failure *f = ud;
    if (KEY(k, "Id"))
        return etl_sqs_jr_text(r, &f->id, depth);
    if (KEY(k, "Code"))
        return etl_sqs_jr_text(r, &f->code, depth);
    if (KEY(k, "Message"))
        return etl_sqs_jr_text(r, &f->message, depth);
    return etl_sqs_jr_value(r, depth);
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
    return etl_sqs_jr_object(r, depth, failure_field, f);
}

static int queue_attribute(struct rd *r, const char *k, size_t klen, void *ud, int depth)
{
    struct etl_sqs_result *out = ud;
    if (*r->p != '"')
        return etl_sqs_jr_value(r, depth);
    struct etl_sqs_pair *p =
        etl_sqs_append((void **)&out->attributes, &out->nattributes, sizeof *out->attributes);
    if (!p) {
        r->full = 1;
        return -1;
    }
    return (p->name = etl_sqs_jr_copy(r, k, klen)) != NULL ? etl_sqs_jr_str(r, &p->value) : -1;
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
            free_results(out); /* a repeated key: the last one counts (its block made anew) */
            r->block = NULL;
            return etl_sqs_jr_objects(r, depth, message, out);
        }
        if ((a == ETL_SQS_DELETE_BATCH || a == ETL_SQS_CHANGE_VISIBILITY_BATCH) &&
            KEY(k, "Failed")) {
            free_results(out);
            return etl_sqs_jr_objects(r, depth, failure, out);
        }
        if (a == ETL_SQS_GET_QUEUE_URL && KEY(k, "QueueUrl"))
            return etl_sqs_jr_text(r, &out->queue_url, depth);
        if (a == ETL_SQS_GET_QUEUE_ATTRIBUTES && KEY(k, "Attributes")) {
            free_results(out);
            return *r->p == '{' ? etl_sqs_jr_object(r, depth, queue_attribute, out)
                                : etl_sqs_jr_value(r, depth);
        }
        return etl_sqs_jr_value(r, depth);
    }
    if (KEY(k, "__type"))
        return etl_sqs_jr_text(r, &t->e.type, depth);
    if (KEY(k, "code"))
        return etl_sqs_jr_text(r, &t->e.code, depth);
    if (KEY(k, "Code"))
        return etl_sqs_jr_text(r, &t->e.Code, depth);
    if (KEY(k, "message"))
        return etl_sqs_jr_text(r, &t->e.message, depth);
    if (KEY(k, "Message"))
        return etl_sqs_jr_text(r, &t->e.Message, depth);
    return etl_sqs_jr_value(r, depth);
}

/* Reads the whole answer. Returns 1 when it is one JSON object or array (only an object has
 * fields), 0 when it is anything else, malformed JSON included; -1 when it holds too many entries
 * or memory ran out. */
static int read_answer(const struct etl_sqs_answer *ans, struct top *t)
{
    struct rd r = {.p = ans->body, .end = ans->body + ans->len, .block_home = &t->out->strings};
    etl_sqs_jr_ws(&r);
    int is_container = *r.p == '{' || *r.p == '[';
    int rc = *r.p == '{' ? etl_sqs_jr_object(&r, 1, top_field, t) : etl_sqs_jr_value(&r, 1);
    if (rc == 0) {
        etl_sqs_jr_ws(&r);
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
