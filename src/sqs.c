/* sqs.c: the Lua binding of etlua.sqs and the error vocabulary of the module. A client is a
 * userdata ("etlua.sqs.client") holding the settings, the credentials and one HTTP transport;
 * its uservalue is the cjson codec. Each method builds a request (JSON: sqs_json.c, query:
 * sqs_query.c), signs it (sigv4.c), sends it (http.c) and turns the answer into Lua values.
 * Expected failures return nil, message, code; misuse raises. Messages never carry secrets,
 * signatures or message bodies. */
#include "etlua/http.h"
#include "etlua/sigv4.h"
#include "etlua/sqs.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <lauxlib.h>
#include <lua.h>

#include <openssl/crypto.h>

#define CLIENT_MT "etlua.sqs.client"

/* ---- error vocabulary -------------------------------------------------------------------- */

const char *etl_sqs_code_name(enum etl_sqs_code code)
{
    static const char *const names[] = {"ok",   "network",  "timeout",  "throttled", "server",
                                        "auth", "no_queue", "protocol", "client"};
    return (unsigned)code < sizeof names / sizeof names[0] ? names[code] : "client";
}

static int code_is(const char *code, const char *const *list)
{
    for (; *list; list++)
        if (strcmp(code, *list) == 0)
            return 1;
    return 0;
}

enum etl_sqs_code etl_sqs_classify(long http_status, const char *aws_code)
{
    static const char *const throttled[] = {
        "Throttling", "ThrottlingException", "RequestThrottled", "RequestThrottledException",
        "TooManyRequestsException", "SlowDown", "ProvisionedThroughputExceededException",
        "RequestLimitExceeded", "KmsThrottled", "OverLimit", NULL};
    static const char *const auth[] = {
        "InvalidClientTokenId", "SignatureDoesNotMatch", "AccessDenied", "AccessDeniedException",
        "UnrecognizedClientException", "IncompleteSignature", "MissingAuthenticationToken",
        "MissingAuthenticationTokenException", "ExpiredToken", "ExpiredTokenException",
        "InvalidSecurity", "MissingClientTokenId", "InvalidAccessKeyId", "AuthFailure",
        "RequestExpired", "OptInRequired", "KmsAccessDenied", NULL};
    static const char *const server[] = {"InternalError", "InternalFailure", "ServiceUnavailable",
                                         NULL};
    static const char *const protocol[] = {"MissingAction", "InvalidAction", "UnknownOperation",
                                           "UnknownOperationException", NULL};
    if (aws_code && *aws_code) {
        const char *hash = strrchr(aws_code, '#'); /* com.amazonaws.sqs#X */
        const char *c = hash ? hash + 1 : aws_code;
        char buf[128];
        snprintf(buf, sizeof buf, "%.*s", (int)strcspn(c, ":;"), c);
        if (strstr(buf, "QueueDoesNotExist") || strstr(buf, "NonExistentQueue"))
            return ETL_SQS_NO_QUEUE;
        if (code_is(buf, throttled))
            return ETL_SQS_THROTTLED;
        if (code_is(buf, auth))
            return ETL_SQS_AUTH;
        if (code_is(buf, server))
            return ETL_SQS_SERVER;
        if (code_is(buf, protocol))
            return ETL_SQS_PROTOCOL;
    }
    if (http_status == 429)
        return ETL_SQS_THROTTLED;
    if (http_status >= 500)
        return ETL_SQS_SERVER;
    if (http_status == 401 || http_status == 403)
        return ETL_SQS_AUTH;
    return ETL_SQS_CLIENT;
}

int etl_sqs_is_protocol_mismatch(const char *aws_code, const char *message)
{
    enum etl_sqs_code c = etl_sqs_classify(400, aws_code);
    if (c == ETL_SQS_PROTOCOL)
        return 1;
    return c == ETL_SQS_CLIENT && message && strstr(message, "Action") != NULL;
}

/* ---- the client ------------------------------------------------------------------------- */

enum proto { PROTO_AUTO, PROTO_JSON, PROTO_QUERY };

struct client {
    struct etl_http *http; /* NULL once closed */
    char *endpoint, *queue_url, *region, *access_key, *secret_key, *session_token;
    enum proto protocol;
    int forced; /* protocol given as "json" or "query": detect() asks nothing */
    long timeout_ms;
};

static void free_secret(char **s)
{
    if (*s) {
        OPENSSL_cleanse(*s, strlen(*s));
        free(*s);
        *s = NULL;
    }
}

static int client_close(lua_State *L)
{
    struct client *c = luaL_checkudata(L, 1, CLIENT_MT);
    etl_http_close(c->http);
    c->http = NULL;
    free(c->endpoint);
    free(c->queue_url);
    free(c->region);
    free(c->access_key);
    c->endpoint = c->queue_url = c->region = c->access_key = NULL;
    free_secret(&c->secret_key);
    free_secret(&c->session_token);
    lua_pushboolean(L, 1);
    return 1;
}

static struct client *check_client(lua_State *L)
{
    struct client *c = luaL_checkudata(L, 1, CLIENT_MT);
    if (!c->http)
        luaL_error(L, "attempt to use a closed SQS client");
    return c;
}

static int push_failure(lua_State *L, enum etl_sqs_code code, const char *msg)
{
    lua_pushnil(L);
    lua_pushstring(L, msg);
    lua_pushstring(L, etl_sqs_code_name(code));
    return 3;
}

/* Copies a service message for an error: first line only, at most 200 bytes, and with the
 * secret key and session token cut out should the service echo them (SignatureDoesNotMatch
 * answers quote the canonical request, which holds the token). */
static void clean_message(const struct client *c, const char *in, char *out, size_t outlen)
{
    size_t n = in ? strcspn(in, "\r\n") : 0;
    if (n > 200)
        n = 200;
    snprintf(out, outlen, "%.*s", (int)n, in ? in : "");
    const char *secrets[2] = {c->secret_key, c->session_token};
    for (int i = 0; i < 2; i++) {
        if (!secrets[i] || strlen(secrets[i]) < 4)
            continue;
        char *p;
        while ((p = strstr(out, secrets[i])) != NULL)
            memmove(p, p + strlen(secrets[i]), strlen(p + strlen(secrets[i])) + 1);
    }
    for (char *p = out; *p; p++)
        if (iscntrl((unsigned char)*p))
            *p = ' ';
}

/* Pushes nil, "SQS Action: Code: message (HTTP n)", code for an error answer. */
static int push_service_error(lua_State *L, const struct client *c, const char *action,
                              long status, const char *aws_code, const char *message)
{
    char clean[256], code_txt[128], msg[512];
    clean_message(c, message, clean, sizeof clean);
    clean_message(c, aws_code, code_txt, sizeof code_txt);
    snprintf(msg, sizeof msg, "SQS %s: %s%s%s (HTTP %ld)", action,
             *code_txt ? code_txt : "error", *clean ? ": " : "", clean, status);
    return push_failure(L, etl_sqs_classify(status, aws_code), msg);
}

/* Signs and sends one POST to the endpoint. On ETL_SQS_OK *resp holds the answer; otherwise
 * msg says why (no secrets). */
static enum etl_sqs_code send_signed(struct client *c, const char *action, int json,
                                     const char *body, size_t len, long extra_ms,
                                     struct etl_http_response *resp, char *msg, size_t msglen)
{
    char url[1100], target[96], hdr_target[128], hdr_host[320], hdr_date[40];
    snprintf(url, sizeof url, "%s/", c->endpoint);
    snprintf(target, sizeof target, "AmazonSQS.%s", action);
    const char *ctype = json ? "application/x-amz-json-1.0" : "application/x-www-form-urlencoded";
    struct etl_sigv4_header signed_headers[2] = {{"content-type", ctype},
                                                 {"x-amz-target", target}};
    struct etl_sigv4_input in = {
        .method = "POST", .url = url, .headers = signed_headers, .nheaders = json ? 2 : 1,
        .body = body, .body_len = len, .region = c->region, .service = "sqs",
        .access_key = c->access_key, .secret_key = c->secret_key,
        .session_token = c->session_token, .now = time(NULL)};
    struct etl_sigv4_output sig;
    if (etl_sigv4_sign(&in, &sig) != 0) {
        snprintf(msg, msglen, "SQS %s: cannot sign the request (bad endpoint URL?)", action);
        return ETL_SQS_CLIENT;
    }
    size_t alen = strlen(sig.authorization) + 32;
    size_t tlen = c->session_token ? strlen(c->session_token) + 32 : 1;
    char *hdr_auth = malloc(alen), *hdr_token = malloc(tlen), hdr_ctype[80];
    if (!hdr_auth || !hdr_token) {
        free(hdr_auth);
        free(hdr_token);
        etl_sigv4_output_free(&sig);
        snprintf(msg, msglen, "SQS %s: out of memory", action);
        return ETL_SQS_CLIENT;
    }
    snprintf(hdr_auth, alen, "Authorization: %s", sig.authorization);
    snprintf(hdr_host, sizeof hdr_host, "Host: %s", sig.host);
    snprintf(hdr_date, sizeof hdr_date, "X-Amz-Date: %s", sig.amz_date);
    snprintf(hdr_ctype, sizeof hdr_ctype, "Content-Type: %s", ctype);
    snprintf(hdr_target, sizeof hdr_target, "X-Amz-Target: %s", target);
    const char *headers[8] = {hdr_host, hdr_date, hdr_auth, hdr_ctype,
                              "User-Agent: etlua/" ETLUA_VERSION, "Accept: */*"};
    size_t nh = 6;
    if (json)
        headers[nh++] = hdr_target;
    if (c->session_token) {
        snprintf(hdr_token, tlen, "X-Amz-Security-Token: %s", c->session_token);
        headers[nh++] = hdr_token;
    }
    char err[512];
    long connect_ms = c->timeout_ms < 10000 ? c->timeout_ms : 10000;
    enum etl_http_status st = etl_http_post(c->http, url, headers, nh, body, len, connect_ms,
                                            c->timeout_ms + extra_ms, resp, err, sizeof err);
    OPENSSL_cleanse(hdr_auth, alen);
    OPENSSL_cleanse(hdr_token, tlen);
    free(hdr_auth);
    free(hdr_token);
    etl_sigv4_output_free(&sig);
    if (st == ETL_HTTP_OK)
        return ETL_SQS_OK;
    snprintf(msg, msglen, "SQS %s: %s", action, err);
    return st == ETL_HTTP_TIMEOUT ? ETL_SQS_TIMEOUT
           : st == ETL_HTTP_TOO_LARGE ? ETL_SQS_PROTOCOL
           : st == ETL_HTTP_NOMEM ? ETL_SQS_CLIENT
                                  : ETL_SQS_NETWORK;
}

/* ---- one call per protocol ----------------------------------------------------------------- */

static const char *skip_space(const char *p)
{
    while (*p == ' ' || *p == '\t' || *p == '\r' || *p == '\n')
        p++;
    return p;
}

/* The code of an x-amzn-query-error header ("AWS.SimpleQueueService.NonExistentQueue;Sender"). */
static void header_code(const struct etl_http_response *resp, char *out, size_t outlen)
{
    snprintf(out, outlen, "%.*s", (int)strcspn(resp->query_error, ";"), resp->query_error);
}

/* JSON protocol: the request table is at the top of the stack (consumed). Returns 0 with the
 * decoded answer pushed, or -1 with nil, msg, code pushed; *mismatch is set when the answer says
 * the endpoint does not speak JSON. */
static int json_call(lua_State *L, struct client *c, const char *action, long extra_ms,
                     int *mismatch)
{
    *mismatch = 0;
    int req = lua_gettop(L);
    lua_getiuservalue(L, 1, 1);
    int codec = req + 1;
    lua_pushvalue(L, req);
    if (etl_sqs_json_encode(L, codec) != 0) {
        lua_settop(L, req - 1);
        return push_failure(L, ETL_SQS_CLIENT, "SQS: cannot encode the JSON request"), -1;
    }
    size_t len;
    const char *body = lua_tolstring(L, -1, &len);
    struct etl_http_response resp;
    char msg[600];
    enum etl_sqs_code code = send_signed(c, action, 1, body, len, extra_ms, &resp, msg, sizeof msg);
    lua_settop(L, codec);
    if (code != ETL_SQS_OK) {
        lua_settop(L, req - 1);
        return push_failure(L, code, msg), -1;
    }
    long status = resp.status;
    char hcode[256];
    header_code(&resp, hcode, sizeof hcode);
    int rc = 0;
    if (*skip_space(resp.body) == '<') { /* an XML answer: a query-protocol endpoint */
        *mismatch = status < 500 && status != 429;
        snprintf(msg, sizeof msg, "SQS %s: the endpoint answered a JSON request in XML (HTTP %ld)",
                 action, status);
        lua_settop(L, req - 1);
        rc = push_failure(L, status >= 500 ? ETL_SQS_SERVER : ETL_SQS_PROTOCOL, msg);
    } else if (status >= 200 && status < 300 && *skip_space(resp.body) == '\0') {
        /* An empty 2xx answer carries no fields (local-aws-sqs answers an empty long poll with
         * Content-Length: 0): read it as {}, i.e. no messages, no failures. */
        lua_newtable(L);
        lua_replace(L, req);
        lua_settop(L, req);
    } else if (etl_sqs_json_decode(L, codec, resp.body, resp.len) != 0 || !lua_istable(L, -1)) {
        *mismatch = !*hcode && (status == 400 || status == 404 || status == 405 || status == 415);
        snprintf(msg, sizeof msg, "SQS %s: the answer is not a JSON object (HTTP %ld)", action,
                 status);
        lua_settop(L, req - 1);
        if (*hcode || status >= 300)
            rc = push_service_error(L, c, action, status, *hcode ? hcode : NULL, NULL);
        else
            rc = push_failure(L, ETL_SQS_PROTOCOL, msg);
    } else if (status >= 200 && status < 300) {
        lua_replace(L, req);
        lua_settop(L, req);
    } else {
        etl_sqs_json_error(L, -1); /* pushes code, message */
        const char *jcode = lua_tostring(L, -2), *jmsg = lua_tostring(L, -1);
        /* 415: the endpoint refuses the JSON content type (sqslite answers so) */
        *mismatch = status == 415 || etl_sqs_is_protocol_mismatch(*hcode ? hcode : jcode, jmsg) ||
                    (jcode && etl_sqs_is_protocol_mismatch(jcode, jmsg));
        char cmsg[256], aws_code[256]; /* copies: the Lua strings go with the settop below */
        clean_message(c, jmsg, cmsg, sizeof cmsg);
        snprintf(aws_code, sizeof aws_code, "%s", *hcode ? hcode : jcode ? jcode : "");
        lua_settop(L, req - 1);
        rc = push_service_error(L, c, action, status, aws_code, cmsg);
    }
    etl_http_response_free(&resp);
    return rc ? -1 : 0;
}

/* Query protocol: sends the form. Returns 0 with *r filled (free it), or -1 with nil, msg, code
 * pushed. */
static int query_call(lua_State *L, struct client *c, const char *action,
                      struct etl_sqs_form *form, long extra_ms, struct etl_sqs_result *r)
{
    memset(r, 0, sizeof *r);
    char msg[600];
    if (!form->ok) {
        etl_sqs_query_free(form);
        return push_failure(L, ETL_SQS_CLIENT, "SQS: out of memory"), -1;
    }
    struct etl_http_response resp;
    enum etl_sqs_code code =
        send_signed(c, action, 0, form->p, form->len, extra_ms, &resp, msg, sizeof msg);
    etl_sqs_query_free(form);
    if (code != ETL_SQS_OK)
        return push_failure(L, code, msg), -1;
    char err[200], hcode[256];
    header_code(&resp, hcode, sizeof hcode);
    long status = resp.status;
    int parsed = etl_sqs_query_parse(resp.body, resp.len, r, err, sizeof err) == 0;
    etl_http_response_free(&resp);
    if (parsed && status >= 200 && status < 300 && !r->error_code)
        return 0;
    int rc;
    if (parsed || *hcode || status >= 300) {
        char cmsg[256];
        clean_message(c, r->error_message, cmsg, sizeof cmsg);
        const char *aws_code = *hcode ? hcode : r->error_code;
        rc = push_service_error(L, c, action, status, aws_code, cmsg);
    } else {
        snprintf(msg, sizeof msg, "SQS %s: %s (HTTP %ld)", action, err, status);
        rc = push_failure(L, ETL_SQS_PROTOCOL, msg);
    }
    (void)rc;
    etl_sqs_result_free(r);
    return -1;
}

/* ---- protocol detection -------------------------------------------------------------------- */

/* Asks the endpoint a JSON question and decides from the answer. Returns 0 once c->protocol is
 * known, or -1 with nil, msg, code pushed (network, timeout, 5xx: nothing decided). */
static int detect(lua_State *L, struct client *c)
{
    int mismatch;
    const char *action;
    if (c->queue_url) {
        action = "GetQueueAttributes";
        lua_createtable(L, 0, 2);
        lua_pushstring(L, c->queue_url);
        lua_setfield(L, -2, "QueueUrl");
        lua_createtable(L, 1, 0);
        lua_pushliteral(L, "QueueArn");
        lua_rawseti(L, -2, 1);
        lua_setfield(L, -2, "AttributeNames");
    } else {
        action = "ListQueues";
        lua_createtable(L, 0, 1);
        lua_pushinteger(L, 1);
        lua_setfield(L, -2, "MaxResults");
    }
    int top = lua_gettop(L) - 1;
    if (json_call(L, c, action, 0, &mismatch) == 0) {
        c->protocol = PROTO_JSON;
        lua_settop(L, top);
        return 0;
    }
    const char *code = lua_tostring(L, -1);
    if (mismatch) {
        c->protocol = PROTO_QUERY;
    } else if (strcmp(code, "network") == 0 || strcmp(code, "timeout") == 0 ||
               strcmp(code, "server") == 0) {
        return -1;
    } else {
        c->protocol = PROTO_JSON; /* a JSON error answer: the endpoint speaks JSON */
    }
    lua_settop(L, top);
    return 0;
}

static int ensure_protocol(lua_State *L, struct client *c)
{
    return c->protocol == PROTO_AUTO ? detect(L, c) : 0;
}

static const char *proto_name(enum proto p)
{
    return p == PROTO_JSON ? "json" : p == PROTO_QUERY ? "query" : "auto";
}

static const char *need_queue(lua_State *L, struct client *c)
{
    if (!c->queue_url)
        luaL_error(L, "etlua.sqs: no queue_url (give one to sqs.client or call get_queue_url)");
    return c->queue_url;
}

/* ---- methods ------------------------------------------------------------------------------- */

static int m_protocol(lua_State *L)
{
    struct client *c = check_client(L);
    lua_pushstring(L, proto_name(c->protocol));
    return 1;
}

static int m_detect(lua_State *L)
{
    struct client *c = check_client(L);
    if (!c->forced && detect(L, c) != 0)
        return 3;
    lua_pushstring(L, proto_name(c->protocol));
    return 1;
}

static int m_get_queue_url(lua_State *L)
{
    struct client *c = check_client(L);
    const char *name = luaL_checkstring(L, 2);
    if (ensure_protocol(L, c) != 0)
        return 3;
    if (c->protocol == PROTO_JSON) {
        int mismatch;
        lua_createtable(L, 0, 1);
        lua_pushstring(L, name);
        lua_setfield(L, -2, "QueueName");
        if (json_call(L, c, "GetQueueUrl", 0, &mismatch) != 0)
            return 3;
        if (lua_getfield(L, -1, "QueueUrl") != LUA_TSTRING)
            return push_failure(L, ETL_SQS_PROTOCOL, "SQS GetQueueUrl: no QueueUrl in the answer");
    } else {
        struct etl_sqs_form f;
        struct etl_sqs_result r;
        etl_sqs_query_begin(&f, "GetQueueUrl");
        etl_sqs_query_add(&f, "QueueName", name, strlen(name));
        if (query_call(L, c, "GetQueueUrl", &f, 0, &r) != 0)
            return 3;
        if (!r.queue_url) {
            etl_sqs_result_free(&r);
            return push_failure(L, ETL_SQS_PROTOCOL, "SQS GetQueueUrl: no QueueUrl in the answer");
        }
        lua_pushstring(L, r.queue_url);
        etl_sqs_result_free(&r);
    }
    if (!c->queue_url) {
        c->queue_url = strdup(lua_tostring(L, -1));
        if (!c->queue_url)
            return luaL_error(L, "out of memory");
    }
    return 1;
}

static void push_query_messages(lua_State *L, const struct etl_sqs_result *r)
{
    lua_createtable(L, (int)r->nmessages, 0);
    lua_Integer n = 0;
    for (size_t i = 0; i < r->nmessages; i++) {
        const struct etl_sqs_message *m = &r->messages[i];
        if (!m->id || !m->receipt)
            continue;
        lua_createtable(L, 0, 4);
        lua_pushstring(L, m->id);
        lua_setfield(L, -2, "id");
        lua_pushstring(L, m->receipt);
        lua_setfield(L, -2, "receipt");
        lua_pushstring(L, m->body ? m->body : "");
        lua_setfield(L, -2, "body");
        if (m->sent_ms >= 0) {
            lua_pushinteger(L, (lua_Integer)m->sent_ms);
            lua_setfield(L, -2, "sent_ms");
        }
        lua_rawseti(L, -2, ++n);
    }
}

static int m_receive(lua_State *L)
{
    struct client *c = check_client(L);
    lua_Integer max = luaL_checkinteger(L, 2), wait = luaL_checkinteger(L, 3);
    int has_vis = !lua_isnoneornil(L, 4);
    lua_Integer vis = has_vis ? luaL_checkinteger(L, 4) : 0;
    luaL_argcheck(L, max >= 1 && max <= 10, 2, "between 1 and 10");
    luaL_argcheck(L, wait >= 0 && wait <= 20, 3, "between 0 and 20");
    luaL_argcheck(L, vis >= 0 && vis <= 43200, 4, "between 0 and 43200");
    const char *queue = need_queue(L, c);
    if (ensure_protocol(L, c) != 0)
        return 3;
    long extra_ms = (long)wait * 1000;
    if (c->protocol == PROTO_JSON) {
        int mismatch;
        lua_createtable(L, 0, 6);
        lua_pushstring(L, queue);
        lua_setfield(L, -2, "QueueUrl");
        lua_pushinteger(L, max);
        lua_setfield(L, -2, "MaxNumberOfMessages");
        lua_pushinteger(L, wait);
        lua_setfield(L, -2, "WaitTimeSeconds");
        if (has_vis) {
            lua_pushinteger(L, vis);
            lua_setfield(L, -2, "VisibilityTimeout");
        }
        lua_createtable(L, 1, 0);
        lua_pushliteral(L, "SentTimestamp");
        lua_rawseti(L, -2, 1);
        lua_pushvalue(L, -1);
        lua_setfield(L, -3, "AttributeNames");
        lua_setfield(L, -2, "MessageSystemAttributeNames");
        if (json_call(L, c, "ReceiveMessage", extra_ms, &mismatch) != 0)
            return 3;
        etl_sqs_json_messages(L, -1);
        return 1;
    }
    char num[32];
    struct etl_sqs_form f;
    struct etl_sqs_result r;
    etl_sqs_query_begin(&f, "ReceiveMessage");
    etl_sqs_query_add(&f, "QueueUrl", queue, strlen(queue));
    snprintf(num, sizeof num, "%lld", (long long)max);
    etl_sqs_query_add(&f, "MaxNumberOfMessages", num, strlen(num));
    snprintf(num, sizeof num, "%lld", (long long)wait);
    etl_sqs_query_add(&f, "WaitTimeSeconds", num, strlen(num));
    if (has_vis) {
        snprintf(num, sizeof num, "%lld", (long long)vis);
        etl_sqs_query_add(&f, "VisibilityTimeout", num, strlen(num));
    }
    etl_sqs_query_add(&f, "AttributeName.1", "SentTimestamp", 13);
    etl_sqs_query_add(&f, "MessageSystemAttributeName.1", "SentTimestamp", 13);
    if (query_call(L, c, "ReceiveMessage", &f, extra_ms, &r) != 0)
        return 3;
    push_query_messages(L, &r);
    etl_sqs_result_free(&r);
    return 1;
}

/* Checks entries (argument 2): an array of at most 10 {id=string, receipt=string}. */
static lua_Integer check_entries(lua_State *L)
{
    luaL_checktype(L, 2, LUA_TTABLE);
    lua_Integer n = (lua_Integer)lua_rawlen(L, 2);
    luaL_argcheck(L, n <= 10, 2, "at most 10 entries");
    for (lua_Integer i = 1; i <= n; i++) {
        if (lua_rawgeti(L, 2, i) != LUA_TTABLE)
            luaL_argerror(L, 2, "entries must be tables {id=, receipt=}");
        if (lua_getfield(L, -1, "id") != LUA_TSTRING || lua_getfield(L, -2, "receipt") != LUA_TSTRING)
            luaL_argerror(L, 2, "each entry needs string id and receipt");
        lua_pop(L, 3);
    }
    return n;
}

/* DeleteMessageBatch (timeout < 0) or ChangeMessageVisibilityBatch. */
static int batch(lua_State *L, struct client *c, lua_Integer n, lua_Integer timeout)
{
    const char *action = timeout < 0 ? "DeleteMessageBatch" : "ChangeMessageVisibilityBatch";
    const char *queue = need_queue(L, c);
    if (n == 0) {
        lua_newtable(L);
        return 1;
    }
    if (ensure_protocol(L, c) != 0)
        return 3;
    if (c->protocol == PROTO_JSON) {
        int mismatch;
        lua_createtable(L, 0, 2);
        lua_pushstring(L, queue);
        lua_setfield(L, -2, "QueueUrl");
        lua_createtable(L, (int)n, 0);
        for (lua_Integer i = 1; i <= n; i++) {
            lua_rawgeti(L, 2, i);
            lua_createtable(L, 0, 3);
            lua_getfield(L, -2, "id");
            lua_setfield(L, -2, "Id");
            lua_getfield(L, -2, "receipt");
            lua_setfield(L, -2, "ReceiptHandle");
            if (timeout >= 0) {
                lua_pushinteger(L, timeout);
                lua_setfield(L, -2, "VisibilityTimeout");
            }
            lua_rawseti(L, -3, i);
            lua_pop(L, 1);
        }
        lua_setfield(L, -2, "Entries");
        if (json_call(L, c, action, 0, &mismatch) != 0)
            return 3;
        etl_sqs_json_failures(L, -1);
        return 1;
    }
    const char *prefix = timeout < 0 ? "DeleteMessageBatchRequestEntry"
                                     : "ChangeMessageVisibilityBatchRequestEntry";
    char key[96], num[32];
    struct etl_sqs_form f;
    struct etl_sqs_result r;
    etl_sqs_query_begin(&f, action);
    etl_sqs_query_add(&f, "QueueUrl", queue, strlen(queue));
    for (lua_Integer i = 1; i <= n; i++) {
        size_t len;
        lua_rawgeti(L, 2, i);
        lua_getfield(L, -1, "id");
        const char *s = lua_tolstring(L, -1, &len);
        snprintf(key, sizeof key, "%s.%lld.Id", prefix, (long long)i);
        etl_sqs_query_add(&f, key, s, len);
        lua_getfield(L, -2, "receipt");
        s = lua_tolstring(L, -1, &len);
        snprintf(key, sizeof key, "%s.%lld.ReceiptHandle", prefix, (long long)i);
        etl_sqs_query_add(&f, key, s, len);
        if (timeout >= 0) {
            snprintf(key, sizeof key, "%s.%lld.VisibilityTimeout", prefix, (long long)i);
            snprintf(num, sizeof num, "%lld", (long long)timeout);
            etl_sqs_query_add(&f, key, num, strlen(num));
        }
        lua_pop(L, 3);
    }
    if (query_call(L, c, action, &f, 0, &r) != 0)
        return 3;
    lua_createtable(L, (int)r.nfailures, 0);
    for (size_t i = 0; i < r.nfailures; i++) {
        lua_createtable(L, 0, 3);
        lua_pushstring(L, r.failures[i].id);
        lua_setfield(L, -2, "id");
        lua_pushstring(L, r.failures[i].code);
        lua_setfield(L, -2, "code");
        lua_pushstring(L, r.failures[i].message);
        lua_setfield(L, -2, "message");
        lua_rawseti(L, -2, (lua_Integer)i + 1);
    }
    etl_sqs_result_free(&r);
    return 1;
}

static int m_delete_batch(lua_State *L)
{
    struct client *c = check_client(L);
    lua_Integer n = check_entries(L);
    return batch(L, c, n, -1);
}

static int m_change_visibility_batch(lua_State *L)
{
    struct client *c = check_client(L);
    lua_Integer n = check_entries(L);
    lua_Integer timeout = luaL_checkinteger(L, 3);
    luaL_argcheck(L, timeout >= 0 && timeout <= 43200, 3, "between 0 and 43200");
    return batch(L, c, n, timeout);
}

static int m_attributes(lua_State *L)
{
    struct client *c = check_client(L);
    luaL_checktype(L, 2, LUA_TTABLE);
    lua_Integer n = (lua_Integer)lua_rawlen(L, 2);
    for (lua_Integer i = 1; i <= n; i++) {
        if (lua_rawgeti(L, 2, i) != LUA_TSTRING)
            luaL_argerror(L, 2, "attribute names must be strings");
        lua_pop(L, 1);
    }
    const char *queue = need_queue(L, c);
    if (ensure_protocol(L, c) != 0)
        return 3;
    if (c->protocol == PROTO_JSON) {
        int mismatch;
        lua_createtable(L, 0, 2);
        lua_pushstring(L, queue);
        lua_setfield(L, -2, "QueueUrl");
        if (n > 0) {
            lua_pushvalue(L, 2);
            lua_setfield(L, -2, "AttributeNames");
        }
        if (json_call(L, c, "GetQueueAttributes", 0, &mismatch) != 0)
            return 3;
        lua_newtable(L);
        if (lua_getfield(L, -2, "Attributes") == LUA_TTABLE) {
            lua_pushnil(L);
            while (lua_next(L, -2)) {
                if (lua_type(L, -2) == LUA_TSTRING && lua_type(L, -1) == LUA_TSTRING) {
                    lua_pushvalue(L, -2);
                    lua_insert(L, -2);
                    lua_rawset(L, -5);
                } else {
                    lua_pop(L, 1);
                }
            }
        }
        lua_pop(L, 1);
        return 1;
    }
    char key[48];
    struct etl_sqs_form f;
    struct etl_sqs_result r;
    etl_sqs_query_begin(&f, "GetQueueAttributes");
    etl_sqs_query_add(&f, "QueueUrl", queue, strlen(queue));
    for (lua_Integer i = 1; i <= n; i++) {
        size_t len;
        lua_rawgeti(L, 2, i);
        const char *s = lua_tolstring(L, -1, &len);
        snprintf(key, sizeof key, "AttributeName.%lld", (long long)i);
        etl_sqs_query_add(&f, key, s, len);
        lua_pop(L, 1);
    }
    if (query_call(L, c, "GetQueueAttributes", &f, 0, &r) != 0)
        return 3;
    lua_createtable(L, 0, (int)r.nattributes);
    for (size_t i = 0; i < r.nattributes; i++) {
        lua_pushstring(L, r.attributes[i].value);
        lua_setfield(L, -2, r.attributes[i].name);
    }
    etl_sqs_result_free(&r);
    return 1;
}

static int m_tostring(lua_State *L)
{
    struct client *c = luaL_checkudata(L, 1, CLIENT_MT);
    if (c->http)
        lua_pushfstring(L, "etlua.sqs.client (%s, %s)", c->endpoint, proto_name(c->protocol));
    else
        lua_pushliteral(L, "etlua.sqs.client (closed)");
    return 1;
}

/* ---- constructor --------------------------------------------------------------------------- */

static const char *opt_string(lua_State *L, const char *key, const char *def)
{
    int t = lua_getfield(L, 1, key);
    const char *s = def;
    if (t == LUA_TSTRING)
        s = lua_tostring(L, -1);
    else if (t != LUA_TNIL)
        luaL_error(L, "etlua.sqs.client: option '%s' must be a string", key);
    lua_pop(L, 1); /* the string stays reachable from the options table */
    return s;
}

static char *dup_or_raise(lua_State *L, const char *s)
{
    if (!s)
        return NULL;
    char *d = strdup(s);
    if (!d)
        luaL_error(L, "out of memory");
    return d;
}

/* scheme://authority of a URL, into a new string; NULL when it is not http(s). */
static char *origin_of(const char *url)
{
    const char *sep = strstr(url, "://");
    if (!sep || (strncmp(url, "http://", 7) != 0 && strncmp(url, "https://", 8) != 0))
        return NULL;
    size_t n = (size_t)(sep + 3 - url) + strcspn(sep + 3, "/?#");
    char *o = malloc(n + 1);
    if (o)
        snprintf(o, n + 1, "%s", url);
    return o;
}

static int l_client(lua_State *L)
{
    luaL_checktype(L, 1, LUA_TTABLE);
    const char *endpoint = opt_string(L, "endpoint", NULL);
    const char *queue_url = opt_string(L, "queue_url", NULL);
    const char *region = opt_string(L, "region", "us-east-1");
    const char *access_key = opt_string(L, "access_key", NULL);
    const char *secret_key = opt_string(L, "secret_key", NULL);
    const char *token = opt_string(L, "session_token", NULL);
    const char *protocol = opt_string(L, "protocol", "auto");
    const char *ca_bundle = opt_string(L, "ca_bundle", NULL);
    lua_Integer timeout_ms = 30000;
    if (lua_getfield(L, 1, "timeout_ms") != LUA_TNIL) {
        int isint = 0;
        timeout_ms = lua_tointegerx(L, -1, &isint);
        if (!isint || timeout_ms <= 0 || timeout_ms > 3600000)
            return luaL_error(L, "etlua.sqs.client: timeout_ms must be an integer in 1..3600000");
    }
    lua_pop(L, 1);
    if (!access_key || !secret_key)
        return luaL_error(L, "etlua.sqs.client: access_key and secret_key are required");
    if (!*region)
        return luaL_error(L, "etlua.sqs.client: region must not be empty");
    enum proto proto;
    if (strcmp(protocol, "auto") == 0)
        proto = PROTO_AUTO;
    else if (strcmp(protocol, "json") == 0)
        proto = PROTO_JSON;
    else if (strcmp(protocol, "query") == 0)
        proto = PROTO_QUERY;
    else
        return luaL_error(L, "etlua.sqs.client: protocol must be 'auto', 'json' or 'query'");

    if (etl_sqs_json_load(L) != 0)
        return lua_error(L);
    int codec = lua_gettop(L);

    struct client *c = lua_newuserdatauv(L, sizeof *c, 1);
    memset(c, 0, sizeof *c);
    luaL_setmetatable(L, CLIENT_MT); /* from here __gc frees whatever was set */
    lua_pushvalue(L, codec);
    lua_setiuservalue(L, -2, 1);
    c->protocol = proto;
    c->forced = proto != PROTO_AUTO;
    c->timeout_ms = (long)timeout_ms;
    if (endpoint) {
        c->endpoint = origin_of(endpoint);
    } else if (queue_url) {
        c->endpoint = origin_of(queue_url);
    } else {
        char buf[300];
        snprintf(buf, sizeof buf, "https://sqs.%s.amazonaws.com", region);
        c->endpoint = strdup(buf);
    }
    if (!c->endpoint)
        return luaL_error(L, "etlua.sqs.client: endpoint must be an http:// or https:// URL");
    c->queue_url = dup_or_raise(L, queue_url);
    c->region = dup_or_raise(L, region);
    c->access_key = dup_or_raise(L, access_key);
    c->secret_key = dup_or_raise(L, secret_key);
    c->session_token = token && *token ? dup_or_raise(L, token) : NULL;
    c->http = etl_http_open(ca_bundle);
    if (!c->http)
        return luaL_error(L, "etlua.sqs.client: cannot initialise libcurl");
    return 1;
}

int luaopen_etlua_sqs(lua_State *L)
{
    static const luaL_Reg methods[] = {
        {"protocol", m_protocol},
        {"detect", m_detect},
        {"get_queue_url", m_get_queue_url},
        {"receive", m_receive},
        {"delete_batch", m_delete_batch},
        {"change_visibility_batch", m_change_visibility_batch},
        {"attributes", m_attributes},
        {"close", client_close},
        {NULL, NULL}};
    static const luaL_Reg meta[] = {
        {"__gc", client_close}, {"__close", client_close}, {"__tostring", m_tostring}, {NULL, NULL}};
    static const luaL_Reg funcs[] = {{"client", l_client}, {NULL, NULL}};
    if (luaL_newmetatable(L, CLIENT_MT)) {
        luaL_setfuncs(L, meta, 0);
        luaL_newlib(L, methods);
        lua_setfield(L, -2, "__index");
    }
    lua_pop(L, 1);
    luaL_newlib(L, funcs);
    return 1;
}
