/* sqs_query.c: the SQS query protocol codec (include/etlua/sqs_codec.h). Requests are form
 * bodies ("Action=...&Version=2012-11-05&Name=Value..."); answers are XML read with expat's
 * streaming callbacks, not a parser of our own. Reading is bounded (ETL_SQS_MAX_FIELD per
 * element text, ETL_SQS_MAX_ENTRIES per list) and refuses DTD entity declarations, so it can be
 * fed arbitrary bytes by tests and fuzzers. */
#include "etlua/buf.h"
#include "etlua/sqs_codec.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <expat.h>

/* ---- form bodies --------------------------------------------------------------------------- */

/* Appends the percent-encoding of s (every byte but A-Z a-z 0-9 - _ . ~ as %XY). */
static void add_encoded(struct etl_buf *b, const char *s)
{
    const char *run = s;
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        if ((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
            c == '-' || c == '_' || c == '.' || c == '~')
            continue;
        char esc[4] = "%";
        etl_hex(esc + 1, &c, 1, 1);
        etl_buf_add(b, run, (size_t)(s - run));
        etl_buf_add(b, esc, 3);
        run = s + 1;
    }
    etl_buf_add(b, run, (size_t)(s - run));
}

/* Appends "&name=value"; name is printf-formatted with one number (or none). */
static void add_param(struct etl_buf *b, const char *name_fmt, size_t n, const char *value)
{
    char name[128];
    /* A name without a number ignores n: C11 7.21.6.1p2 evaluates and ignores surplus arguments. */
    /* cppcheck-suppress wrongPrintfScanfArgNum */
    snprintf(name, sizeof name, name_fmt, n);
    etl_buf_add(b, "&", 1);
    add_encoded(b, name);
    etl_buf_add(b, "=", 1);
    add_encoded(b, value);
}

static int build(const struct etl_sqs_request *req, struct etl_buf *out)
{
    static const char *const system_attributes[] = ETL_SQS_SYSTEM_ATTRIBUTES;
    char num[32];
    etl_buf_adds(out, "Action=");
    etl_buf_adds(out, etl_sqs_action_name(req->action));
    etl_buf_adds(out, "&Version=2012-11-05");
    if (req->action == ETL_SQS_GET_QUEUE_URL)
        add_param(out, "QueueName", 0, req->queue_name);
    else if (req->action == ETL_SQS_LIST_QUEUES)
        add_param(out, "MaxResults", 0, "1");
    else
        add_param(out, "QueueUrl", 0, req->queue_url);
    if (req->action == ETL_SQS_RECEIVE) {
        snprintf(num, sizeof num, "%d", req->max_messages);
        add_param(out, "MaxNumberOfMessages", 0, num);
        snprintf(num, sizeof num, "%d", req->wait_s);
        add_param(out, "WaitTimeSeconds", 0, num);
        if (req->visibility_s >= 0) {
            snprintf(num, sizeof num, "%d", req->visibility_s);
            add_param(out, "VisibilityTimeout", 0, num);
        }
        for (size_t i = 0; i < 4; i++) {
            add_param(out, "AttributeName.%zu", i + 1, system_attributes[i]);
            add_param(out, "MessageSystemAttributeName.%zu", i + 1, system_attributes[i]);
        }
        add_param(out, "MessageAttributeName.%zu", 1, "All");
    } else if (req->action == ETL_SQS_DELETE_BATCH ||
               req->action == ETL_SQS_CHANGE_VISIBILITY_BATCH) {
        int del = req->action == ETL_SQS_DELETE_BATCH;
        const char *prefix =
            del ? "DeleteMessageBatchRequestEntry" : "ChangeMessageVisibilityBatchRequestEntry";
        char fmt[96];
        snprintf(num, sizeof num, "%d", req->visibility_s);
        for (size_t i = 0; i < req->nentries; i++) {
            snprintf(fmt, sizeof fmt, "%s.%%zu.Id", prefix);
            add_param(out, fmt, i + 1, req->entries[i].id);
            snprintf(fmt, sizeof fmt, "%s.%%zu.ReceiptHandle", prefix);
            add_param(out, fmt, i + 1, req->entries[i].receipt);
            if (!del) {
                snprintf(fmt, sizeof fmt, "%s.%%zu.VisibilityTimeout", prefix);
                add_param(out, fmt, i + 1, num);
            }
        }
    } else if (req->action == ETL_SQS_GET_QUEUE_ATTRIBUTES) {
        for (size_t i = 0; i < req->nnames; i++)
            add_param(out, "AttributeName.%zu", i + 1, req->names[i]);
    }
    return out->oom || out->over_limit ? -1 : 0;
}

/* ---- XML answers ----------------------------------------------------------------------------- */

#define MAX_DEPTH 32
#define NAME_LEN 48

struct parse {
    XML_Parser xp;
    struct etl_sqs_result *r;
    int depth;                       /* current element depth, 1 = root */
    char names[MAX_DEPTH][NAME_LEN]; /* local names of the open elements */
    struct etl_buf text;             /* text of the innermost element so far */
    char *attr_name, *attr_value;    /* the (Message)Attribute element being read */
    char *error_code, *error_message;
    const char *failure; /* why a callback stopped the parser */
};

static const char *name_at(const struct parse *ps, int depth)
{
    return depth >= 1 && depth <= MAX_DEPTH ? ps->names[depth - 1] : "";
}

static int is(const char *a, const char *b) { return strcmp(a, b) == 0; }

static void stop(struct parse *ps, const char *why)
{
    if (!ps->failure)
        ps->failure = why;
    XML_StopParser(ps->xp, XML_FALSE);
}

static void *append(struct parse *ps, void **arr, size_t *n, size_t sz)
{
    void *p = etl_sqs_append(arr, n, sz);
    if (!p)
        stop(ps, *n >= ETL_SQS_MAX_ENTRIES ? "too many entries" : "out of memory");
    return p;
}

/* Replaces *field with a copy of the element's text. */
static void set_field(struct parse *ps, char **field)
{
    char *s = malloc(ps->text.len + 1);
    if (!s) {
        stop(ps, "out of memory");
        return;
    }
    if (ps->text.len)
        memcpy(s, ps->text.p, ps->text.len);
    s[ps->text.len] = '\0';
    free(*field);
    *field = s;
}

static void clear_attr(struct parse *ps)
{
    free(ps->attr_name);
    free(ps->attr_value);
    ps->attr_name = ps->attr_value = NULL;
}

static void on_start(void *ud, const XML_Char *name, const XML_Char **attrs)
{
    (void)attrs;
    struct parse *ps = ud;
    const char *local = strrchr(name, ':');
    local = local ? local + 1 : name;
    ps->depth++;
    etl_buf_reset(&ps->text);
    if (ps->depth <= MAX_DEPTH)
        snprintf(ps->names[ps->depth - 1], NAME_LEN, "%s", local);
    const char *parent = name_at(ps, ps->depth - 1);
    struct etl_sqs_result *r = ps->r;
    if (is(local, "Message") && is(parent, "ReceiveMessageResult")) {
        struct etl_sqs_message *m =
            append(ps, (void **)&r->messages, &r->nmessages, sizeof *r->messages);
        if (m)
            m->sent_ms = m->receive_count = -1;
    } else if (is(local, "BatchResultErrorEntry")) {
        append(ps, (void **)&r->failures, &r->nfailures, sizeof *r->failures);
    } else if (is(local, "Attribute") || is(local, "MessageAttribute")) {
        clear_attr(ps);
    }
}

static void on_text(void *ud, const XML_Char *s, int len)
{
    struct parse *ps = ud;
    if (etl_buf_add(&ps->text, s, (size_t)len) != 0)
        stop(ps, ps->text.oom ? "out of memory" : "element text too long");
}

/* Moves the attribute read so far onto the end of *arr; NULL value: "". */
static void take_pair(struct parse *ps, struct etl_sqs_pair **arr, size_t *n)
{
    if (!ps->attr_name)
        return;
    struct etl_sqs_pair *p = append(ps, (void **)arr, n, sizeof **arr);
    if (!p)
        return;
    p->name = ps->attr_name;
    p->value = ps->attr_value ? ps->attr_value : strdup("");
    ps->attr_name = ps->attr_value = NULL;
    if (!p->value)
        stop(ps, "out of memory");
}

/* The end of a message's system Attribute. */
static void message_attribute(struct parse *ps, struct etl_sqs_message *m)
{
    const char *n = ps->attr_name, *v = ps->attr_value;
    if (!n || !v)
        return;
    if (is(n, "SentTimestamp")) {
        m->sent_ms = etl_sqs_parse_count(v);
    } else if (is(n, "ApproximateReceiveCount")) {
        m->receive_count = etl_sqs_parse_count(v);
    } else if (is(n, "MessageGroupId") || is(n, "SequenceNumber")) {
        char **f = is(n, "MessageGroupId") ? &m->group_id : &m->sequence_number;
        free(*f);
        *f = ps->attr_value;
        ps->attr_value = NULL;
    }
}

static void on_end(void *ud, const XML_Char *name)
{
    (void)name;
    struct parse *ps = ud;
    struct etl_sqs_result *r = ps->r;
    const char *local = name_at(ps, ps->depth), *parent = name_at(ps, ps->depth - 1);
    const char *grand = name_at(ps, ps->depth - 2);
    struct etl_sqs_message *m = r->nmessages ? &r->messages[r->nmessages - 1] : NULL;

    if (is(parent, "Error")) {
        if (is(local, "Code"))
            set_field(ps, &ps->error_code);
        else if (is(local, "Message"))
            set_field(ps, &ps->error_message);
    } else if (is(parent, "GetQueueUrlResult") && is(local, "QueueUrl")) {
        set_field(ps, &r->queue_url);
    } else if (m && is(parent, "Message") && is(grand, "ReceiveMessageResult")) {
        if (is(local, "MessageId"))
            set_field(ps, &m->id);
        else if (is(local, "ReceiptHandle"))
            set_field(ps, &m->receipt);
        else if (is(local, "Body"))
            set_field(ps, &m->body);
        else if (is(local, "Attribute"))
            message_attribute(ps, m);
        else if (is(local, "MessageAttribute"))
            take_pair(ps, &m->attributes, &m->nattributes);
    } else if ((is(parent, "Attribute") || is(parent, "MessageAttribute")) && is(local, "Name")) {
        set_field(ps, &ps->attr_name);
    } else if (is(parent, "Attribute") && is(local, "Value")) {
        set_field(ps, &ps->attr_value);
    } else if (is(parent, "Value") && is(grand, "MessageAttribute") &&
               (is(local, "StringValue") || (is(local, "BinaryValue") && !ps->attr_value))) {
        set_field(ps, &ps->attr_value);
    } else if (is(local, "Attribute") && is(parent, "GetQueueAttributesResult")) {
        take_pair(ps, &r->attributes, &r->nattributes);
    } else if (is(parent, "BatchResultErrorEntry") && r->nfailures) {
        struct etl_sqs_failure *f = &r->failures[r->nfailures - 1];
        if (is(local, "Id"))
            set_field(ps, &f->id);
        else if (is(local, "Code"))
            set_field(ps, &f->code);
        else if (is(local, "Message"))
            set_field(ps, &f->message);
    }
    etl_buf_reset(&ps->text);
    ps->depth--;
}

/* A DTD declaring entities is how "billion laughs" inputs start; SQS never sends one. */
static void on_entity_decl(void *ud, const XML_Char *name, int is_param, const XML_Char *value,
                           int value_len, const XML_Char *base, const XML_Char *system_id,
                           const XML_Char *public_id, const XML_Char *notation)
{
    (void)name, (void)is_param, (void)value, (void)value_len, (void)base, (void)system_id;
    (void)public_id, (void)notation;
    stop(ud, "entity declarations are not accepted");
}

/* Parses xml[0..len). Returns 0, or -1 with the reason in r->why. */
static int parse_xml(struct parse *ps, const char *xml, size_t len)
{
    struct etl_sqs_result *r = ps->r;
    ps->xp = XML_ParserCreate(NULL);
    if (!ps->xp) {
        snprintf(r->why, sizeof r->why, "out of memory");
        return -1;
    }
    ps->text.limit = ETL_SQS_MAX_FIELD;
    XML_SetUserData(ps->xp, ps);
    XML_SetElementHandler(ps->xp, on_start, on_end);
    XML_SetCharacterDataHandler(ps->xp, on_text);
    XML_SetEntityDeclHandler(ps->xp, on_entity_decl);
    int rc = 0;
    const size_t chunk = 1u << 20;
    do { /* XML_Parse takes an int length: feed at most 1 MiB at a time */
        size_t n = len < chunk ? len : chunk;
        if (XML_Parse(ps->xp, xml, (int)n, n == len) != XML_STATUS_OK) {
            if (ps->failure)
                snprintf(r->why, sizeof r->why, "bad XML answer: %s", ps->failure);
            else
                snprintf(r->why, sizeof r->why, "bad XML answer: %s at line %lu",
                         XML_ErrorString(XML_GetErrorCode(ps->xp)),
                         (unsigned long)XML_GetCurrentLineNumber(ps->xp));
            rc = -1;
            break;
        }
        xml += n;
        len -= n;
    } while (len > 0);
    XML_ParserFree(ps->xp);
    etl_buf_free(&ps->text);
    clear_attr(ps);
    return rc;
}

static enum etl_sqs_code parse(enum etl_sqs_action action, const struct etl_sqs_answer *ans,
                               struct etl_sqs_result *out)
{
    (void)action;
    memset(out, 0, sizeof *out);
    struct parse ps = {.r = out};
    int parsed = parse_xml(&ps, ans->body, ans->len) == 0;
    char hcode[256];
    snprintf(hcode, sizeof hcode, "%.*s", (int)strcspn(ans->query_error, ";"), ans->query_error);
    enum etl_sqs_code code = ETL_SQS_OK;
    if (parsed && ans->status >= 200 && ans->status < 300 && !ps.error_code)
        code = ETL_SQS_OK;
    else if (parsed || *hcode || ans->status >= 300)
        code = etl_sqs_service_error(out, ans->status, *hcode ? hcode : ps.error_code,
                                     ps.error_message);
    else
        code = ETL_SQS_PROTOCOL;
    free(ps.error_code);
    free(ps.error_message);
    return code;
}

const struct etl_sqs_codec etl_sqs_query_codec = {
    .name = "query",
    .content_type = "Content-Type: application/x-www-form-urlencoded",
    .send_target = 0,
    .build = build,
    .parse = parse,
};
