/* sqs_json.c: the SQS JSON 1.0 protocol codec (include/etlua/sqs_codec.h). Request bodies are
 * written here (objects of strings, integers and string arrays: escaping is all there is to it);
 * answers are decoded by lua-cjson (the Debian `cjson` module, required at run time, its private
 * instance from cjson.new()) rather than a JSON parser of our own, then copied into the neutral
 * result. Every call into cjson runs under lua_pcall; its messages never quote the input.
 * Answers are read defensively: a field of the wrong type counts as absent. */
#include "etlua/buf.h"
#include "etlua/sqs_codec.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <lauxlib.h>
#include <lua.h>

/* ---- request bodies ------------------------------------------------------------------------ */

static void add_string(struct etl_buf *b, const char *s)
{
    etl_buf_add(b, "\"", 1);
    const char *run = s;
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        if (c >= 0x20 && c != '"' && c != '\\')
            continue;
        etl_buf_add(b, run, (size_t)(s - run));
        if (c == '"' || c == '\\') {
            char esc[2] = {'\\', (char)c};
            etl_buf_add(b, esc, 2);
        } else {
            char esc[7] = "\\u00";
            etl_hex(esc + 4, &c, 1, 0);
            etl_buf_add(b, esc, 6);
        }
        run = s + 1;
    }
    etl_buf_add(b, run, (size_t)(s - run));
    etl_buf_add(b, "\"", 1);
}

/* ,"key": */
static void add_key(struct etl_buf *b, const char *key)
{
    if (b->len > 1)
        etl_buf_add(b, ",", 1);
    add_string(b, key);
    etl_buf_add(b, ":", 1);
}

static void add_names(struct etl_buf *b, const char *key, const char *const *names, size_t n)
{
    add_key(b, key);
    etl_buf_add(b, "[", 1);
    for (size_t i = 0; i < n; i++) {
        if (i)
            etl_buf_add(b, ",", 1);
        add_string(b, names[i]);
    }
    etl_buf_add(b, "]", 1);
}

static int build(const struct etl_sqs_request *req, struct etl_buf *out)
{
    static const char *const system_attributes[] = ETL_SQS_SYSTEM_ATTRIBUTES;
    static const char *const all[] = {"All"};
    etl_buf_add(out, "{", 1);
    if (req->action == ETL_SQS_GET_QUEUE_URL) {
        add_key(out, "QueueName");
        add_string(out, req->queue_name);
    } else if (req->action == ETL_SQS_LIST_QUEUES) {
        add_key(out, "MaxResults");
        etl_buf_add(out, "1", 1);
    } else {
        add_key(out, "QueueUrl");
        add_string(out, req->queue_url);
    }
    if (req->action == ETL_SQS_RECEIVE) {
        add_key(out, "MaxNumberOfMessages");
        etl_buf_addf(out, "%d", req->max_messages);
        add_key(out, "WaitTimeSeconds");
        etl_buf_addf(out, "%d", req->wait_s);
        if (req->visibility_s >= 0) {
            add_key(out, "VisibilityTimeout");
            etl_buf_addf(out, "%d", req->visibility_s);
        }
        add_names(out, "AttributeNames", system_attributes, 4);
        add_names(out, "MessageSystemAttributeNames", system_attributes, 4);
        add_names(out, "MessageAttributeNames", all, 1);
    } else if (req->action == ETL_SQS_DELETE_BATCH ||
               req->action == ETL_SQS_CHANGE_VISIBILITY_BATCH) {
        add_key(out, "Entries");
        etl_buf_add(out, "[", 1);
        for (size_t i = 0; i < req->nentries; i++) {
            etl_buf_adds(out, i ? ",{\"Id\":" : "{\"Id\":");
            add_string(out, req->entries[i].id);
            etl_buf_adds(out, ",\"ReceiptHandle\":");
            add_string(out, req->entries[i].receipt);
            if (req->action == ETL_SQS_CHANGE_VISIBILITY_BATCH)
                etl_buf_addf(out, ",\"VisibilityTimeout\":%d", req->visibility_s);
            etl_buf_add(out, "}", 1);
        }
        etl_buf_add(out, "]", 1);
    } else if (req->action == ETL_SQS_GET_QUEUE_ATTRIBUTES && req->nnames > 0) {
        add_names(out, "AttributeNames", req->names, req->nnames);
    }
    etl_buf_add(out, "}", 1);
    return out->oom || out->over_limit ? -1 : 0;
}

/* ---- answers -------------------------------------------------------------------------------- */

#define DECODER_KEY "etlua.sqs.json_decode"

/* Pushes cjson's decode (a private instance, kept in the registry). Returns 0, or -1 with
 * nothing pushed and the reason in why. */
static int push_decoder(lua_State *L, char *why, size_t whylen)
{
    if (lua_getfield(L, LUA_REGISTRYINDEX, DECODER_KEY) == LUA_TFUNCTION)
        return 0;
    lua_pop(L, 1);
    int top = lua_gettop(L);
    lua_getglobal(L, "require");
    lua_pushliteral(L, "cjson");
    if (lua_pcall(L, 1, 1, 0) != LUA_OK || !lua_istable(L, -1)) {
        snprintf(why, whylen, "etlua.sqs needs lua-cjson: %s",
                 lua_isstring(L, -1) ? lua_tostring(L, -1) : "not a module");
        lua_settop(L, top);
        return -1;
    }
    /* A private instance when available, so settings changed by scripts do not reach us. */
    if (lua_getfield(L, -1, "new") == LUA_TFUNCTION && lua_pcall(L, 0, 1, 0) == LUA_OK &&
        lua_istable(L, -1))
        lua_remove(L, -2);
    else
        lua_pop(L, 1);
    if (lua_getfield(L, -1, "decode") != LUA_TFUNCTION) {
        snprintf(why, whylen, "etlua.sqs: the cjson module has no decode");
        lua_settop(L, top);
        return -1;
    }
    lua_pushvalue(L, -1);
    lua_setfield(L, LUA_REGISTRYINDEX, DECODER_KEY);
    lua_replace(L, top + 1);
    lua_settop(L, top + 1);
    return 0;
}

static int prepare(lua_State *L, char *why, size_t whylen)
{
    if (push_decoder(L, why, whylen) != 0)
        return -1;
    lua_pop(L, 1);
    return 0;
}

/* A copy of t[key] when it is a string (or an integer, as digits); NULL otherwise. */
static char *dup_field(lua_State *L, int t, const char *key)
{
    char *s = NULL, num[32];
    int type = lua_getfield(L, t, key), isint = 0;
    if (type == LUA_TSTRING) {
        s = strdup(lua_tostring(L, -1));
    } else if (type == LUA_TNUMBER) {
        lua_Integer v = lua_tointegerx(L, -1, &isint);
        snprintf(num, sizeof num, "%lld", (long long)v);
        s = isint ? strdup(num) : NULL;
    }
    lua_pop(L, 1);
    return s;
}

/* The message attributes at the top of the stack (a table name -> {StringValue=|BinaryValue=}). */
static int read_message_attributes(lua_State *L, struct etl_sqs_message *m)
{
    int t = lua_gettop(L);
    lua_pushnil(L);
    while (lua_next(L, t)) {
        if (lua_type(L, -2) == LUA_TSTRING && lua_istable(L, -1)) {
            struct etl_sqs_pair *p =
                etl_sqs_append((void **)&m->attributes, &m->nattributes, sizeof *m->attributes);
            if (!p) {
                lua_settop(L, t);
                return -1;
            }
            p->name = strdup(lua_tostring(L, -2));
            p->value = dup_field(L, lua_gettop(L), "StringValue");
            if (!p->value)
                p->value = dup_field(L, lua_gettop(L), "BinaryValue");
            if (!p->value)
                p->value = strdup("");
            if (!p->name || !p->value) {
                lua_settop(L, t);
                return -1;
            }
        }
        lua_pop(L, 1);
    }
    return 0;
}

static int read_messages(lua_State *L, int t, struct etl_sqs_result *out)
{
    if (lua_getfield(L, t, "Messages") != LUA_TTABLE)
        return 0;
    int msgs = lua_gettop(L);
    for (lua_Integer i = 1; lua_geti(L, msgs, i) == LUA_TTABLE; i++) {
        int mi = lua_gettop(L);
        struct etl_sqs_message *m =
            etl_sqs_append((void **)&out->messages, &out->nmessages, sizeof *out->messages);
        if (!m)
            return -1;
        m->id = dup_field(L, mi, "MessageId");
        m->receipt = dup_field(L, mi, "ReceiptHandle");
        m->body = dup_field(L, mi, "Body");
        m->sent_ms = m->receive_count = -1;
        if (lua_getfield(L, mi, "Attributes") == LUA_TTABLE) {
            int a = lua_gettop(L);
            char *v = dup_field(L, a, "SentTimestamp");
            m->sent_ms = etl_sqs_parse_count(v);
            free(v);
            v = dup_field(L, a, "ApproximateReceiveCount");
            m->receive_count = etl_sqs_parse_count(v);
            free(v);
            m->group_id = dup_field(L, a, "MessageGroupId");
            m->sequence_number = dup_field(L, a, "SequenceNumber");
        }
        lua_pop(L, 1);
        if (lua_getfield(L, mi, "MessageAttributes") == LUA_TTABLE &&
            read_message_attributes(L, m) != 0)
            return -1;
        lua_settop(L, msgs);
    }
    return 0;
}

static int read_failures(lua_State *L, int t, struct etl_sqs_result *out)
{
    if (lua_getfield(L, t, "Failed") != LUA_TTABLE)
        return 0;
    int failed = lua_gettop(L);
    for (lua_Integer i = 1; lua_geti(L, failed, i) == LUA_TTABLE; i++) {
        int fi = lua_gettop(L);
        struct etl_sqs_failure *f =
            etl_sqs_append((void **)&out->failures, &out->nfailures, sizeof *out->failures);
        if (!f)
            return -1;
        f->id = dup_field(L, fi, "Id");
        f->code = dup_field(L, fi, "Code");
        f->message = dup_field(L, fi, "Message");
        lua_settop(L, failed);
    }
    return 0;
}

static int read_attributes(lua_State *L, int t, struct etl_sqs_result *out)
{
    if (lua_getfield(L, t, "Attributes") != LUA_TTABLE)
        return 0;
    int a = lua_gettop(L);
    lua_pushnil(L);
    while (lua_next(L, a)) {
        if (lua_type(L, -2) == LUA_TSTRING && lua_type(L, -1) == LUA_TSTRING) {
            struct etl_sqs_pair *p = etl_sqs_append((void **)&out->attributes, &out->nattributes,
                                                    sizeof *out->attributes);
            if (!p)
                return -1;
            p->name = strdup(lua_tostring(L, -2));
            p->value = strdup(lua_tostring(L, -1));
        }
        lua_pop(L, 1);
    }
    return 0;
}

/* The error code of a decoded error answer at t into code[] ("" when none): the part of
 * "__type" after '#' and before ':', or "code" / "Code". */
static void error_code_of(lua_State *L, int t, char *code, size_t codelen)
{
    char *s = dup_field(L, t, "__type");
    const char *start = s;
    if (s) {
        const char *hash = strrchr(s, '#');
        start = hash ? hash + 1 : s;
    } else if ((s = dup_field(L, t, "code")) != NULL || (s = dup_field(L, t, "Code")) != NULL) {
        start = s;
    }
    snprintf(code, codelen, "%.*s", start ? (int)strcspn(start, ":") : 0, start ? start : "");
    free(s);
}

static enum etl_sqs_code parse(lua_State *L, enum etl_sqs_action action,
                               const struct etl_sqs_answer *ans, struct etl_sqs_result *out)
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
    if (status >= 200 && status < 300 && *p == '\0')
        return ETL_SQS_OK;
    int top = lua_gettop(L);
    if (push_decoder(L, out->why, sizeof out->why) != 0)
        return ETL_SQS_CLIENT;
    lua_pushlstring(L, ans->body, ans->len);
    if (lua_pcall(L, 1, 1, 0) != LUA_OK || !lua_istable(L, -1)) {
        lua_settop(L, top);
        out->mismatch =
            !*hcode && (status == 400 || status == 404 || status == 405 || status == 415);
        if (*hcode || status >= 300)
            return etl_sqs_service_error(out, status, *hcode ? hcode : NULL, NULL);
        snprintf(out->why, sizeof out->why, "the answer is not a JSON object");
        return ETL_SQS_PROTOCOL;
    }
    int t = lua_gettop(L);
    enum etl_sqs_code code = ETL_SQS_OK;
    if (status < 200 || status >= 300) {
        char jcode[256];
        error_code_of(L, t, jcode, sizeof jcode);
        char *jmsg = dup_field(L, t, "message");
        if (!jmsg)
            jmsg = dup_field(L, t, "Message");
        /* 415: the endpoint refuses the JSON content type (sqslite answers so) */
        out->mismatch = status == 415 ||
                        etl_sqs_is_protocol_mismatch(*hcode ? hcode : jcode, jmsg) ||
                        (*jcode && etl_sqs_is_protocol_mismatch(jcode, jmsg));
        code = etl_sqs_service_error(out, status, *hcode ? hcode : jcode, jmsg);
        free(jmsg);
    } else {
        int rc = 0;
        if (action == ETL_SQS_RECEIVE)
            rc = read_messages(L, t, out);
        else if (action == ETL_SQS_DELETE_BATCH || action == ETL_SQS_CHANGE_VISIBILITY_BATCH)
            rc = read_failures(L, t, out);
        else if (action == ETL_SQS_GET_QUEUE_URL)
            out->queue_url = dup_field(L, t, "QueueUrl");
        else if (action == ETL_SQS_GET_QUEUE_ATTRIBUTES)
            rc = read_attributes(L, t, out);
        if (rc != 0) {
            snprintf(out->why, sizeof out->why, "too many entries or out of memory");
            code = ETL_SQS_PROTOCOL;
        }
    }
    lua_settop(L, top);
    return code;
}

const struct etl_sqs_codec etl_sqs_json_codec = {
    .name = "json",
    .content_type = "Content-Type: application/x-amz-json-1.0",
    .send_target = 1,
    .prepare = prepare,
    .build = build,
    .parse = parse,
};
