/* sqs.c: the Lua binding of etlua.sqs and the error vocabulary of the module. A client is a
 * userdata ("etlua.sqs.client") holding the settings, the credentials and one HTTP transport;
 * its uservalue is the cjson codec. Each method builds a request (JSON: sqs_json.c, query:
 * sqs_query.c), signs it (sigv4.c), sends it (http.c) and turns the answer into Lua values.
 * Expected failures return nil, message, code; misuse raises. Messages never carry secrets,
 * signatures or message bodies. */
#include "etlua/host.h"
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
    static const char *const names[] = {"ok",       "network",  "timeout", "throttled",
                                        "server",   "auth",     "no_queue", "protocol",
                                        "client",   "stopped"};
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

/* The user values of a client userdata. */
enum { UV_CODEC = 1, UV_DONE, UV_PENDING, UV_COUNT = UV_PENDING };

/* What a request in flight was for; kept in the pending table as kind * 2 + (json ? 1 : 0). */
enum kind { K_RECEIVE = 1, K_DELETE, K_CHANGE };

#define DEFAULT_INFLIGHT 32

struct client {
    struct etl_http *http; /* NULL once closed */
    struct etl_http_multi *multi; /* created by the first asynchronous call */
    size_t max_inflight;
    lua_Integer last_local_token; /* tokens of answers known without a request: -1, -2, ... */
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
    etl_http_multi_close(c->multi); /* receipts of receives in flight come back after the
                                       visibility timeout */
    c->multi = NULL;
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

/* One signed request: the URL and the header lines, ready for either transport. */
struct signed_req {
    char url[1100], target[96], hdr_target[128], hdr_host[320], hdr_date[40], hdr_ctype[80];
    char *hdr_auth, *hdr_token;
    size_t alen, tlen;
    const char *headers[8];
    size_t nh;
    struct etl_sigv4_output sig;
};

static void signed_req_free(struct signed_req *sr)
{
    if (sr->hdr_auth)
        OPENSSL_cleanse(sr->hdr_auth, sr->alen);
    if (sr->hdr_token)
        OPENSSL_cleanse(sr->hdr_token, sr->tlen);
    free(sr->hdr_auth);
    free(sr->hdr_token);
    sr->hdr_auth = sr->hdr_token = NULL;
    etl_sigv4_output_free(&sr->sig);
}

/* Signs a POST of body to the endpoint now (SigV4 dates are checked by the service, so a request
 * is signed when it is sent). Returns ETL_SQS_OK with *sr filled (free it), or a code with msg. */
static enum etl_sqs_code sign_request(const struct client *c, const char *action, int json,
                                      const char *body, size_t len, struct signed_req *sr,
                                      char *msg, size_t msglen)
{
    memset(sr, 0, sizeof *sr);
    snprintf(sr->url, sizeof sr->url, "%s/", c->endpoint);
    snprintf(sr->target, sizeof sr->target, "AmazonSQS.%s", action);
    const char *ctype = json ? "application/x-amz-json-1.0" : "application/x-www-form-urlencoded";
    struct etl_sigv4_header signed_headers[2] = {{"content-type", ctype},
                                                 {"x-amz-target", sr->target}};
    struct etl_sigv4_input in = {
        .method = "POST", .url = sr->url, .headers = signed_headers, .nheaders = json ? 2 : 1,
        .body = body, .body_len = len, .region = c->region, .service = "sqs",
        .access_key = c->access_key, .secret_key = c->secret_key,
        .session_token = c->session_token, .now = time(NULL)};
    if (etl_sigv4_sign(&in, &sr->sig) != 0) {
        memset(&sr->sig, 0, sizeof sr->sig);
        snprintf(msg, msglen, "SQS %s: cannot sign the request (bad endpoint URL?)", action);
        return ETL_SQS_CLIENT;
    }
    sr->alen = strlen(sr->sig.authorization) + 32;
    sr->tlen = c->session_token ? strlen(c->session_token) + 32 : 1;
    sr->hdr_auth = malloc(sr->alen);
    sr->hdr_token = malloc(sr->tlen);
    if (!sr->hdr_auth || !sr->hdr_token) {
        signed_req_free(sr);
        snprintf(msg, msglen, "SQS %s: out of memory", action);
        return ETL_SQS_CLIENT;
    }
    snprintf(sr->hdr_auth, sr->alen, "Authorization: %s", sr->sig.authorization);
    snprintf(sr->hdr_host, sizeof sr->hdr_host, "Host: %s", sr->sig.host);
    snprintf(sr->hdr_date, sizeof sr->hdr_date, "X-Amz-Date: %s", sr->sig.amz_date);
    snprintf(sr->hdr_ctype, sizeof sr->hdr_ctype, "Content-Type: %s", ctype);
    snprintf(sr->hdr_target, sizeof sr->hdr_target, "X-Amz-Target: %s", sr->target);
    sr->headers[0] = sr->hdr_host;
    sr->headers[1] = sr->hdr_date;
    sr->headers[2] = sr->hdr_auth;
    sr->headers[3] = sr->hdr_ctype;
    sr->headers[4] = "User-Agent: etlua/" ETLUA_VERSION;
    sr->headers[5] = "Accept: */*";
    sr->nh = 6;
    if (json)
        sr->headers[sr->nh++] = sr->hdr_target;
    if (c->session_token) {
        snprintf(sr->hdr_token, sr->tlen, "X-Amz-Security-Token: %s", c->session_token);
        sr->headers[sr->nh++] = sr->hdr_token;
    }
    return ETL_SQS_OK;
}

static enum etl_sqs_code code_of_http(enum etl_http_status st)
{
    return st == ETL_HTTP_OK         ? ETL_SQS_OK
           : st == ETL_HTTP_TIMEOUT   ? ETL_SQS_TIMEOUT
           : st == ETL_HTTP_TOO_LARGE ? ETL_SQS_PROTOCOL
           : st == ETL_HTTP_NOMEM     ? ETL_SQS_CLIENT
           : st == ETL_HTTP_STOPPED   ? ETL_SQS_STOPPED
                                      : ETL_SQS_NETWORK;
}

static long connect_ms_of(const struct client *c)
{
    return c->timeout_ms < 10000 ? c->timeout_ms : 10000;
}

/* Signs and sends one POST to the endpoint. On ETL_SQS_OK *resp holds the answer; otherwise
 * msg says why (no secrets). */
static enum etl_sqs_code send_signed(struct client *c, const char *action, int json,
                                     const char *body, size_t len, long extra_ms,
                                     struct etl_http_response *resp, char *msg, size_t msglen)
{
    struct signed_req sr;
    enum etl_sqs_code code = sign_request(c, action, json, body, len, &sr, msg, msglen);
    if (code != ETL_SQS_OK)
        return code;
    char err[512];
    enum etl_http_status st =
        etl_http_post(c->http, sr.url, sr.headers, sr.nh, body, len, connect_ms_of(c),
                      c->timeout_ms + extra_ms, NULL, resp, err, sizeof err);
    signed_req_free(&sr);
    if (st == ETL_HTTP_OK)
        return ETL_SQS_OK;
    snprintf(msg, msglen, "SQS %s: %s", action, err);
    return code_of_http(st);
}

/* Signs one POST and queues it on the concurrent transport. Returns ETL_SQS_OK with *id. */
static enum etl_sqs_code start_signed(struct client *c, const char *action, int json,
                                      const char *body, size_t len, long extra_ms,
                                      int interruptible, unsigned long long *id, char *msg,
                                      size_t msglen)
{
    struct signed_req sr;
    enum etl_sqs_code code = sign_request(c, action, json, body, len, &sr, msg, msglen);
    if (code != ETL_SQS_OK)
        return code;
    char err[256];
    int rc = etl_http_multi_add(c->multi, sr.url, sr.headers, sr.nh, body, len, connect_ms_of(c),
                                c->timeout_ms + extra_ms, interruptible, id, err, sizeof err);
    signed_req_free(&sr);
    if (rc == 0)
        return ETL_SQS_OK;
    snprintf(msg, msglen, "SQS %s: %s", action, err);
    return ETL_SQS_CLIENT;
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

/* Interprets a JSON answer (resp is freed) with the codec at index codec. Returns 0 with the
 * decoded answer pushed, or -1 with nil, msg, code pushed; *mismatch is set when the answer says
 * the endpoint does not speak JSON. */
static int json_answer(lua_State *L, struct client *c, int codec, const char *action,
                       struct etl_http_response *resp, int *mismatch)
{
    *mismatch = 0;
    int base = lua_gettop(L);
    long status = resp->status;
    char hcode[256], msg[600];
    header_code(resp, hcode, sizeof hcode);
    int rc = 0;
    if (*skip_space(resp->body) == '<') { /* an XML answer: a query-protocol endpoint */
        *mismatch = status < 500 && status != 429;
        snprintf(msg, sizeof msg, "SQS %s: the endpoint answered a JSON request in XML (HTTP %ld)",
                 action, status);
        rc = push_failure(L, status >= 500 ? ETL_SQS_SERVER : ETL_SQS_PROTOCOL, msg);
    } else if (status >= 200 && status < 300 && *skip_space(resp->body) == '\0') {
        /* An empty 2xx answer carries no fields (local-aws-sqs answers an empty long poll with
         * Content-Length: 0): read it as {}, i.e. no messages, no failures. */
        lua_newtable(L);
    } else if (etl_sqs_json_decode(L, codec, resp->body, resp->len) != 0 || !lua_istable(L, -1)) {
        *mismatch = !*hcode && (status == 400 || status == 404 || status == 405 || status == 415);
        snprintf(msg, sizeof msg, "SQS %s: the answer is not a JSON object (HTTP %ld)", action,
                 status);
        lua_settop(L, base);
        if (*hcode || status >= 300)
            rc = push_service_error(L, c, action, status, *hcode ? hcode : NULL, NULL);
        else
            rc = push_failure(L, ETL_SQS_PROTOCOL, msg);
    } else if (status < 200 || status >= 300) {
        etl_sqs_json_error(L, -1); /* pushes code, message */
        const char *jcode = lua_tostring(L, -2), *jmsg = lua_tostring(L, -1);
        /* 415: the endpoint refuses the JSON content type (sqslite answers so) */
        *mismatch = status == 415 || etl_sqs_is_protocol_mismatch(*hcode ? hcode : jcode, jmsg) ||
                    (jcode && etl_sqs_is_protocol_mismatch(jcode, jmsg));
        char cmsg[256], aws_code[256]; /* copies: the Lua strings go with the settop below */
        clean_message(c, jmsg, cmsg, sizeof cmsg);
        snprintf(aws_code, sizeof aws_code, "%s", *hcode ? hcode : jcode ? jcode : "");
        lua_settop(L, base);
        rc = push_service_error(L, c, action, status, aws_code, cmsg);
    }
    etl_http_response_free(resp);
    return rc ? -1 : 0;
}

/* Replaces the request table at the top of the stack with its JSON text. Returns 0, or -1 with
 * the table popped and nil, msg, code pushed. */
static int json_encode_request(lua_State *L)
{
    lua_getiuservalue(L, 1, UV_CODEC);
    lua_insert(L, -2);
    if (etl_sqs_json_encode(L, -2) != 0) {
        lua_pop(L, 2);
        return push_failure(L, ETL_SQS_CLIENT, "SQS: cannot encode the JSON request"), -1;
    }
    lua_remove(L, -2);
    return 0;
}

/* JSON protocol: the request table is at the top of the stack (consumed). Returns 0 with the
 * decoded answer pushed, or -1 with nil, msg, code pushed; *mismatch is set when the answer says
 * the endpoint does not speak JSON. */
static int json_call(lua_State *L, struct client *c, const char *action, long extra_ms,
                     int *mismatch)
{
    *mismatch = 0;
    if (json_encode_request(L) != 0)
        return -1;
    int req = lua_gettop(L);
    size_t len;
    const char *body = lua_tolstring(L, req, &len);
    struct etl_http_response resp;
    char msg[600];
    enum etl_sqs_code code = send_signed(c, action, 1, body, len, extra_ms, &resp, msg, sizeof msg);
    lua_getiuservalue(L, 1, UV_CODEC); /* req + 1 */
    if (code != ETL_SQS_OK) {
        lua_settop(L, req - 1);
        return push_failure(L, code, msg), -1;
    }
    int rc = json_answer(L, c, req + 1, action, &resp, mismatch);
    int n = rc == 0 ? 1 : 3;
    lua_rotate(L, req, n); /* results below the body and the codec, which go */
    lua_settop(L, req - 1 + n);
    return rc;
}

/* Interprets a query answer (resp is freed). Returns 0 with *r filled (free it), or -1 with
 * nil, msg, code pushed. */
static int query_answer(lua_State *L, struct client *c, const char *action,
                        struct etl_http_response *resp, struct etl_sqs_result *r)
{
    char err[200], hcode[256], msg[600];
    header_code(resp, hcode, sizeof hcode);
    long status = resp->status;
    int parsed = etl_sqs_query_parse(resp->body, resp->len, r, err, sizeof err) == 0;
    etl_http_response_free(resp);
    if (parsed && status >= 200 && status < 300 && !r->error_code)
        return 0;
    if (parsed || *hcode || status >= 300) {
        char cmsg[256];
        clean_message(c, r->error_message, cmsg, sizeof cmsg);
        const char *aws_code = *hcode ? hcode : r->error_code;
        push_service_error(L, c, action, status, aws_code, cmsg);
    } else {
        snprintf(msg, sizeof msg, "SQS %s: %s (HTTP %ld)", action, err, status);
        push_failure(L, ETL_SQS_PROTOCOL, msg);
    }
    etl_sqs_result_free(r);
    return -1;
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
    return query_answer(L, c, action, &resp, r);
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

/* ---- request bodies ------------------------------------------------------------------------ */

struct recv_args {
    lua_Integer max, wait, vis;
    int has_vis;
};

/* Reads max, wait_s [, visibility_s] from arguments first, first + 1, first + 2. */
static void check_recv_args(lua_State *L, int first, struct recv_args *a)
{
    a->max = luaL_checkinteger(L, first);
    a->wait = luaL_checkinteger(L, first + 1);
    a->has_vis = !lua_isnoneornil(L, first + 2);
    a->vis = a->has_vis ? luaL_checkinteger(L, first + 2) : 0;
    luaL_argcheck(L, a->max >= 1 && a->max <= 10, first, "between 1 and 10");
    luaL_argcheck(L, a->wait >= 0 && a->wait <= 20, first + 1, "between 0 and 20");
    luaL_argcheck(L, a->vis >= 0 && a->vis <= 43200, first + 2, "between 0 and 43200");
}

static void push_receive_json(lua_State *L, const char *queue, const struct recv_args *a)
{
    lua_createtable(L, 0, 6);
    lua_pushstring(L, queue);
    lua_setfield(L, -2, "QueueUrl");
    lua_pushinteger(L, a->max);
    lua_setfield(L, -2, "MaxNumberOfMessages");
    lua_pushinteger(L, a->wait);
    lua_setfield(L, -2, "WaitTimeSeconds");
    if (a->has_vis) {
        lua_pushinteger(L, a->vis);
        lua_setfield(L, -2, "VisibilityTimeout");
    }
    lua_createtable(L, 1, 0);
    lua_pushliteral(L, "SentTimestamp");
    lua_rawseti(L, -2, 1);
    lua_pushvalue(L, -1);
    lua_setfield(L, -3, "AttributeNames");
    lua_setfield(L, -2, "MessageSystemAttributeNames");
}

static void receive_form(struct etl_sqs_form *f, const char *queue, const struct recv_args *a)
{
    char num[32];
    etl_sqs_query_begin(f, "ReceiveMessage");
    etl_sqs_query_add(f, "QueueUrl", queue, strlen(queue));
    snprintf(num, sizeof num, "%lld", (long long)a->max);
    etl_sqs_query_add(f, "MaxNumberOfMessages", num, strlen(num));
    snprintf(num, sizeof num, "%lld", (long long)a->wait);
    etl_sqs_query_add(f, "WaitTimeSeconds", num, strlen(num));
    if (a->has_vis) {
        snprintf(num, sizeof num, "%lld", (long long)a->vis);
        etl_sqs_query_add(f, "VisibilityTimeout", num, strlen(num));
    }
    etl_sqs_query_add(f, "AttributeName.1", "SentTimestamp", 13);
    etl_sqs_query_add(f, "MessageSystemAttributeName.1", "SentTimestamp", 13);
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

/* The request of DeleteMessageBatch (timeout < 0) or ChangeMessageVisibilityBatch for the
 * entries at argument 2. */
static void push_batch_json(lua_State *L, const char *queue, lua_Integer n, lua_Integer timeout)
{
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
}

static const char *batch_action(lua_Integer timeout)
{
    return timeout < 0 ? "DeleteMessageBatch" : "ChangeMessageVisibilityBatch";
}

static void batch_form(lua_State *L, struct etl_sqs_form *f, const char *queue, lua_Integer n,
                       lua_Integer timeout)
{
    const char *prefix = timeout < 0 ? "DeleteMessageBatchRequestEntry"
                                     : "ChangeMessageVisibilityBatchRequestEntry";
    char key[96], num[32];
    etl_sqs_query_begin(f, batch_action(timeout));
    etl_sqs_query_add(f, "QueueUrl", queue, strlen(queue));
    for (lua_Integer i = 1; i <= n; i++) {
        size_t len;
        lua_rawgeti(L, 2, i);
        lua_getfield(L, -1, "id");
        const char *s = lua_tolstring(L, -1, &len);
        snprintf(key, sizeof key, "%s.%lld.Id", prefix, (long long)i);
        etl_sqs_query_add(f, key, s, len);
        lua_getfield(L, -2, "receipt");
        s = lua_tolstring(L, -1, &len);
        snprintf(key, sizeof key, "%s.%lld.ReceiptHandle", prefix, (long long)i);
        etl_sqs_query_add(f, key, s, len);
        if (timeout >= 0) {
            snprintf(key, sizeof key, "%s.%lld.VisibilityTimeout", prefix, (long long)i);
            snprintf(num, sizeof num, "%lld", (long long)timeout);
            etl_sqs_query_add(f, key, num, strlen(num));
        }
        lua_pop(L, 3);
    }
}

static void push_query_failures(lua_State *L, const struct etl_sqs_result *r)
{
    lua_createtable(L, (int)r->nfailures, 0);
    for (size_t i = 0; i < r->nfailures; i++) {
        lua_createtable(L, 0, 3);
        lua_pushstring(L, r->failures[i].id);
        lua_setfield(L, -2, "id");
        lua_pushstring(L, r->failures[i].code);
        lua_setfield(L, -2, "code");
        lua_pushstring(L, r->failures[i].message);
        lua_setfield(L, -2, "message");
        lua_rawseti(L, -2, (lua_Integer)i + 1);
    }
}

/* ---- blocking calls ------------------------------------------------------------------------ */

static int m_receive(lua_State *L)
{
    struct client *c = check_client(L);
    struct recv_args a;
    check_recv_args(L, 2, &a);
    const char *queue = need_queue(L, c);
    if (ensure_protocol(L, c) != 0)
        return 3;
    long extra_ms = (long)a.wait * 1000;
    if (c->protocol == PROTO_JSON) {
        int mismatch;
        push_receive_json(L, queue, &a);
        if (json_call(L, c, "ReceiveMessage", extra_ms, &mismatch) != 0)
            return 3;
        etl_sqs_json_messages(L, -1);
        return 1;
    }
    struct etl_sqs_form f;
    struct etl_sqs_result r;
    receive_form(&f, queue, &a);
    if (query_call(L, c, "ReceiveMessage", &f, extra_ms, &r) != 0)
        return 3;
    push_query_messages(L, &r);
    etl_sqs_result_free(&r);
    return 1;
}

/* DeleteMessageBatch (timeout < 0) or ChangeMessageVisibilityBatch. */
static int batch(lua_State *L, struct client *c, lua_Integer n, lua_Integer timeout)
{
    const char *action = batch_action(timeout);
    const char *queue = need_queue(L, c);
    if (n == 0) {
        lua_newtable(L);
        return 1;
    }
    if (ensure_protocol(L, c) != 0)
        return 3;
    if (c->protocol == PROTO_JSON) {
        int mismatch;
        push_batch_json(L, queue, n, timeout);
        if (json_call(L, c, action, 0, &mismatch) != 0)
            return 3;
        etl_sqs_json_failures(L, -1);
        return 1;
    }
    struct etl_sqs_form f;
    struct etl_sqs_result r;
    batch_form(L, &f, queue, n, timeout);
    if (query_call(L, c, action, &f, 0, &r) != 0)
        return 3;
    push_query_failures(L, &r);
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

/* ---- concurrent calls ---------------------------------------------------------------------- */

static const char *kind_name(int kind)
{
    return kind == K_RECEIVE ? "receive" : kind == K_DELETE ? "delete_batch"
                                                            : "change_visibility_batch";
}

static const char *kind_action(int kind)
{
    return kind == K_RECEIVE ? "ReceiveMessage" : kind == K_DELETE ? "DeleteMessageBatch"
                                                                   : "ChangeMessageVisibilityBatch";
}

static void ensure_multi(lua_State *L, struct client *c)
{
    if (!c->multi && !(c->multi = etl_http_multi_open(NULL, c->max_inflight)))
        luaL_error(L, "etlua.sqs: cannot initialise libcurl multi");
}

/* Sends the request body (a JSON string at the top of the stack, consumed, or the form) on the
 * concurrent transport and records it as pending. Pushes the token, or nil, msg, code. */
static int start_request(lua_State *L, struct client *c, int kind, struct etl_sqs_form *form,
                         long extra_ms)
{
    int json = form == NULL;
    const char *action = kind_action(kind);
    char msg[600];
    unsigned long long id = 0;
    enum etl_sqs_code code;
    if (json) {
        size_t len;
        const char *body = lua_tolstring(L, -1, &len);
        code = start_signed(c, action, 1, body, len, extra_ms, kind == K_RECEIVE, &id, msg,
                            sizeof msg);
        lua_pop(L, 1);
    } else if (!form->ok) {
        etl_sqs_query_free(form);
        return push_failure(L, ETL_SQS_CLIENT, "SQS: out of memory");
    } else {
        code = start_signed(c, action, 0, form->p, form->len, extra_ms, kind == K_RECEIVE, &id,
                            msg, sizeof msg);
        etl_sqs_query_free(form);
    }
    if (code != ETL_SQS_OK)
        return push_failure(L, code, msg);
    lua_getiuservalue(L, 1, UV_PENDING);
    lua_pushinteger(L, kind * 2 + json);
    lua_rawseti(L, -2, (lua_Integer)id);
    lua_pop(L, 1);
    lua_pushinteger(L, (lua_Integer)id);
    return 1;
}

/* Starts one ReceiveMessage with the arguments at a. Pushes the token, or nil, msg, code. */
static int start_receive(lua_State *L, struct client *c, const char *queue,
                         const struct recv_args *a)
{
    long extra_ms = (long)a->wait * 1000;
    if (c->protocol == PROTO_JSON) {
        push_receive_json(L, queue, a);
        if (json_encode_request(L) != 0)
            return 3;
        return start_request(L, c, K_RECEIVE, NULL, extra_ms);
    }
    struct etl_sqs_form f;
    receive_form(&f, queue, a);
    return start_request(L, c, K_RECEIVE, &f, extra_ms);
}

/* Appends a finished request to the done list (table at done): the record on top is consumed. */
static void append_done(lua_State *L, int done)
{
    lua_rawseti(L, done, (lua_Integer)lua_rawlen(L, done) + 1);
}

/* Moves every finished request of the transport into the done list as a record
 * {token=, kind=, result=} or {token=, kind=, err=, code=}. */
static void collect(lua_State *L, struct client *c)
{
    lua_getiuservalue(L, 1, UV_DONE);
    int done = lua_gettop(L);
    lua_getiuservalue(L, 1, UV_PENDING);
    int pending = done + 1;
    lua_getiuservalue(L, 1, UV_CODEC);
    int codec = done + 2;
    struct etl_http_done d;
    while (etl_http_multi_next(c->multi, &d)) {
        lua_rawgeti(L, pending, (lua_Integer)d.id);
        lua_Integer tag = lua_tointeger(L, -1);
        lua_pop(L, 1);
        lua_pushnil(L);
        lua_rawseti(L, pending, (lua_Integer)d.id);
        int kind = (int)(tag / 2), json = (int)(tag % 2);
        if (kind < K_RECEIVE || kind > K_CHANGE) { /* not ours: cannot happen */
            etl_http_response_free(&d.resp);
            continue;
        }
        const char *action = kind_action(kind);
        lua_createtable(L, 0, 4);
        int rec = lua_gettop(L);
        lua_pushinteger(L, (lua_Integer)d.id);
        lua_setfield(L, rec, "token");
        lua_pushstring(L, kind_name(kind));
        lua_setfield(L, rec, "kind");
        int failed = 0;
        if (d.status != ETL_HTTP_OK) {
            char msg[600];
            snprintf(msg, sizeof msg, "SQS %s: %s", action, d.err);
            push_failure(L, code_of_http(d.status), msg);
            failed = 1;
        } else if (json) {
            int mismatch;
            if (json_answer(L, c, codec, action, &d.resp, &mismatch) != 0) {
                failed = 1;
            } else {
                if (kind == K_RECEIVE)
                    etl_sqs_json_messages(L, -1);
                else
                    etl_sqs_json_failures(L, -1);
                lua_remove(L, -2);
            }
        } else {
            struct etl_sqs_result r;
            memset(&r, 0, sizeof r);
            if (query_answer(L, c, action, &d.resp, &r) != 0) {
                failed = 1;
            } else {
                if (kind == K_RECEIVE)
                    push_query_messages(L, &r);
                else
                    push_query_failures(L, &r);
                etl_sqs_result_free(&r);
            }
        }
        if (failed) { /* nil, msg, code on top */
            lua_setfield(L, rec, "code");
            lua_setfield(L, rec, "err");
            lua_pop(L, 1);
        } else {
            lua_setfield(L, rec, "result");
        }
        append_done(L, done);
    }
    lua_settop(L, done - 1);
}

/* Records an answer known without asking the service (an empty batch) under a new token. */
static int local_done(lua_State *L, struct client *c, int kind)
{
    lua_Integer token = --c->last_local_token;
    lua_getiuservalue(L, 1, UV_DONE);
    lua_createtable(L, 0, 3);
    lua_pushinteger(L, token);
    lua_setfield(L, -2, "token");
    lua_pushstring(L, kind_name(kind));
    lua_setfield(L, -2, "kind");
    lua_newtable(L);
    lua_setfield(L, -2, "result");
    append_done(L, lua_gettop(L) - 1);
    lua_pop(L, 1);
    lua_pushinteger(L, token);
    return 1;
}

static int m_start_receive(lua_State *L)
{
    struct client *c = check_client(L);
    struct recv_args a;
    check_recv_args(L, 2, &a);
    const char *queue = need_queue(L, c);
    if (ensure_protocol(L, c) != 0)
        return 3;
    ensure_multi(L, c);
    return start_receive(L, c, queue, &a);
}

static int start_batch(lua_State *L, struct client *c, lua_Integer n, lua_Integer timeout)
{
    int kind = timeout < 0 ? K_DELETE : K_CHANGE;
    const char *queue = need_queue(L, c);
    if (n == 0)
        return local_done(L, c, kind);
    if (ensure_protocol(L, c) != 0)
        return 3;
    ensure_multi(L, c);
    if (c->protocol == PROTO_JSON) {
        push_batch_json(L, queue, n, timeout);
        if (json_encode_request(L) != 0)
            return 3;
        return start_request(L, c, kind, NULL, 0);
    }
    struct etl_sqs_form f;
    batch_form(L, &f, queue, n, timeout);
    return start_request(L, c, kind, &f, 0);
}

static int m_start_delete_batch(lua_State *L)
{
    struct client *c = check_client(L);
    lua_Integer n = check_entries(L);
    return start_batch(L, c, n, -1);
}

static int m_start_change_visibility_batch(lua_State *L)
{
    struct client *c = check_client(L);
    lua_Integer n = check_entries(L);
    lua_Integer timeout = luaL_checkinteger(L, 3);
    luaL_argcheck(L, timeout >= 0 && timeout <= 43200, 3, "between 0 and 43200");
    return start_batch(L, c, n, timeout);
}

static int m_poll(lua_State *L)
{
    struct client *c = check_client(L);
    lua_Integer timeout = luaL_optinteger(L, 2, 0);
    lua_getiuservalue(L, 1, UV_DONE);
    size_t ready = lua_rawlen(L, -1);
    lua_pop(L, 1);
    if (c->multi) {
        long t = ready > 0 ? 0 : timeout > 86400000 ? 86400000 : (long)timeout;
        etl_http_multi_run(c->multi, t < 0 ? -1 : t, etl_host_stop_requested);
        collect(L, c);
    }
    lua_getiuservalue(L, 1, UV_DONE); /* handed out; a fresh list takes its place */
    lua_newtable(L);
    lua_setiuservalue(L, 1, UV_DONE);
    return 1;
}

static int m_pending(lua_State *L)
{
    struct client *c = check_client(L);
    lua_getiuservalue(L, 1, UV_DONE);
    size_t ready = lua_rawlen(L, -1);
    lua_pop(L, 1);
    lua_pushinteger(L, (lua_Integer)(ready + (c->multi ? etl_http_multi_inflight(c->multi) : 0)));
    return 1;
}

/* receive_many(n, max, wait_s [, visibility_s]): n ReceiveMessage calls at once; waits for all
 * of them. Completions of other asynchronous requests met meanwhile stay for poll. */
static int m_receive_many(lua_State *L)
{
    struct client *c = check_client(L);
    lua_Integer n = luaL_checkinteger(L, 2);
    luaL_argcheck(L, n >= 1 && (size_t)n <= c->max_inflight, 2, "between 1 and max_inflight");
    struct recv_args a;
    check_recv_args(L, 3, &a);
    lua_settop(L, 5);
    const char *queue = need_queue(L, c);
    if (ensure_protocol(L, c) != 0)
        return 3;
    ensure_multi(L, c);
    lua_newtable(L); /* 6: tokens of ours -> true */
    lua_pushnil(L);  /* 7: first error message */
    lua_pushnil(L);  /* 8: its code */
    lua_newtable(L); /* 9: the messages */
    lua_Integer waiting = 0, ok = 0, nmsg = 0;
    for (lua_Integer i = 0; i < n; i++) {
        if (start_receive(L, c, queue, &a) == 1) {
            lua_pushboolean(L, 1);
            lua_rawset(L, 6);
            waiting++;
        } else {
            if (lua_isnil(L, 7)) {
                lua_replace(L, 8);
                lua_replace(L, 7);
            }
            lua_settop(L, 9);
        }
    }
    while (waiting > 0) {
        etl_http_multi_run(c->multi, -1, etl_host_stop_requested);
        collect(L, c);
        lua_getiuservalue(L, 1, UV_DONE); /* 10 */
        lua_Integer len = (lua_Integer)lua_rawlen(L, 10), keep = 0;
        for (lua_Integer i = 1; i <= len; i++) {
            lua_rawgeti(L, 10, i); /* 11: record */
            lua_getfield(L, 11, "token");
            if (lua_rawget(L, 6) == LUA_TNIL) { /* someone else's: keep it, in order */
                lua_pop(L, 1);
                lua_rawseti(L, 10, ++keep);
                continue;
            }
            lua_pop(L, 1);
            waiting--;
            if (lua_getfield(L, 11, "result") == LUA_TTABLE) {
                ok++;
                for (lua_Integer j = 1; lua_rawgeti(L, 12, j) != LUA_TNIL; j++)
                    lua_rawseti(L, 9, ++nmsg);
                lua_pop(L, 1);
            } else if (lua_isnil(L, 7)) {
                lua_getfield(L, 11, "err");
                lua_replace(L, 7);
                lua_getfield(L, 11, "code");
                lua_replace(L, 8);
            }
            lua_settop(L, 10);
        }
        for (lua_Integer i = keep + 1; i <= len; i++) {
            lua_pushnil(L);
            lua_rawseti(L, 10, i);
        }
        lua_settop(L, 9);
        if (waiting > 0 && etl_http_multi_inflight(c->multi) == 0)
            return luaL_error(L, "etlua.sqs: lost track of a request in flight"); /* a bug */
    }
    if (ok == 0) {
        lua_pushnil(L);
        lua_pushvalue(L, 7);
        lua_pushvalue(L, 8);
        return 3;
    }
    lua_pushvalue(L, 9);
    lua_pushvalue(L, 7);
    lua_pushvalue(L, 8);
    return 3;
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
    lua_Integer max_inflight = DEFAULT_INFLIGHT;
    if (lua_getfield(L, 1, "max_inflight") != LUA_TNIL) {
        int isint = 0;
        max_inflight = lua_tointegerx(L, -1, &isint);
        if (!isint || max_inflight < 1 || max_inflight > (lua_Integer)ETL_HTTP_MULTI_MAX)
            return luaL_error(L, "etlua.sqs.client: max_inflight must be an integer in 1..%d",
                              (int)ETL_HTTP_MULTI_MAX);
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

    struct client *c = lua_newuserdatauv(L, sizeof *c, UV_COUNT);
    memset(c, 0, sizeof *c);
    luaL_setmetatable(L, CLIENT_MT); /* from here __gc frees whatever was set */
    lua_pushvalue(L, codec);
    lua_setiuservalue(L, -2, UV_CODEC);
    lua_newtable(L);
    lua_setiuservalue(L, -2, UV_DONE);
    lua_newtable(L);
    lua_setiuservalue(L, -2, UV_PENDING);
    c->max_inflight = (size_t)max_inflight;
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
        {"receive_many", m_receive_many},
        {"start_receive", m_start_receive},
        {"start_delete_batch", m_start_delete_batch},
        {"start_change_visibility_batch", m_start_change_visibility_batch},
        {"poll", m_poll},
        {"pending", m_pending},
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
