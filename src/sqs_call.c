/* sqs_call.c: one SQS request and its answer, below the methods of etlua.sqs. It owns the error
 * vocabulary (code names, classification of service errors, protocol mismatch), the failure
 * values (nil, msg, code with service messages cleaned of secrets), SigV4 signing of a request
 * (sigv4.c) and sending it on the blocking or the concurrent transport (http.c), reading a JSON
 * answer (sqs_json.c) or a query answer (sqs_query.c) into Lua values or a failure, and the
 * detection of the protocol an endpoint speaks. Conventions: sqs_internal.h. */
#include "etlua/http.h"
#include "etlua/sigv4.h"
#include "etlua/sqs.h"
#include "etlua/sqs_internal.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <lauxlib.h>
#include <lua.h>

#include <openssl/crypto.h>

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


/* ---- failures ----------------------------------------------------------------------------- */

int etl_sqs_push_failure(lua_State *L, enum etl_sqs_code code, const char *msg)
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
    return etl_sqs_push_failure(L, etl_sqs_classify(status, aws_code), msg);
}

/* ---- signing and sending ------------------------------------------------------------------ */

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

enum etl_sqs_code etl_sqs_code_of_http(enum etl_http_status st)
{
    return st == ETL_HTTP_OK         ? ETL_SQS_OK
           : st == ETL_HTTP_TIMEOUT   ? ETL_SQS_TIMEOUT
           : st == ETL_HTTP_TOO_LARGE ? ETL_SQS_PROTOCOL
           : st == ETL_HTTP_NOMEM     ? ETL_SQS_CLIENT
           : st == ETL_HTTP_STOPPED   ? ETL_SQS_STOPPED
           : st == ETL_HTTP_TLS       ? ETL_SQS_AUTH /* certificate not verified: not retried */
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
    return etl_sqs_code_of_http(st);
}

/* Signs one POST and queues it on the concurrent transport. Returns ETL_SQS_OK with *id. */
enum etl_sqs_code etl_sqs_start_signed(struct client *c, const char *action, int json,
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
int etl_sqs_answer_json(lua_State *L, struct client *c, int codec, const char *action,
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
        rc = etl_sqs_push_failure(L, status >= 500 ? ETL_SQS_SERVER : ETL_SQS_PROTOCOL, msg);
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
            rc = etl_sqs_push_failure(L, ETL_SQS_PROTOCOL, msg);
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
int etl_sqs_encode_json_request(lua_State *L)
{
    lua_getiuservalue(L, 1, UV_CODEC);
    lua_insert(L, -2);
    if (etl_sqs_json_encode(L, -2) != 0) {
        lua_pop(L, 2);
        return etl_sqs_push_failure(L, ETL_SQS_CLIENT, "SQS: cannot encode the JSON request"), -1;
    }
    lua_remove(L, -2);
    return 0;
}

/* JSON protocol: the request table is at the top of the stack (consumed). Returns 0 with the
 * decoded answer pushed, or -1 with nil, msg, code pushed; *mismatch is set when the answer says
 * the endpoint does not speak JSON. */
int etl_sqs_call_json(lua_State *L, struct client *c, const char *action, long extra_ms,
                      int *mismatch)
{
    *mismatch = 0;
    if (etl_sqs_encode_json_request(L) != 0)
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
        return etl_sqs_push_failure(L, code, msg), -1;
    }
    int rc = etl_sqs_answer_json(L, c, req + 1, action, &resp, mismatch);
    int n = rc == 0 ? 1 : 3;
    lua_rotate(L, req, n); /* results below the body and the codec, which go */
    lua_settop(L, req - 1 + n);
    return rc;
}

/* Interprets a query answer (resp is freed). Returns 0 with *r filled (free it), or -1 with
 * nil, msg, code pushed. */
int etl_sqs_answer_query(lua_State *L, struct client *c, const char *action,
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
        etl_sqs_push_failure(L, ETL_SQS_PROTOCOL, msg);
    }
    etl_sqs_result_free(r);
    return -1;
}

/* Query protocol: sends the form. Returns 0 with *r filled (free it), or -1 with nil, msg, code
 * pushed. */
int etl_sqs_call_query(lua_State *L, struct client *c, const char *action,
                       struct etl_sqs_form *form, long extra_ms, struct etl_sqs_result *r)
{
    memset(r, 0, sizeof *r);
    char msg[600];
    if (!form->ok) {
        etl_sqs_query_free(form);
        return etl_sqs_push_failure(L, ETL_SQS_CLIENT, "SQS: out of memory"), -1;
    }
    struct etl_http_response resp;
    enum etl_sqs_code code =
        send_signed(c, action, 0, form->p, form->len, extra_ms, &resp, msg, sizeof msg);
    etl_sqs_query_free(form);
    if (code != ETL_SQS_OK)
        return etl_sqs_push_failure(L, code, msg), -1;
    return etl_sqs_answer_query(L, c, action, &resp, r);
}

/* ---- protocol detection -------------------------------------------------------------------- */

/* Asks the endpoint a JSON question and decides from the answer. Returns 0 once c->protocol is
 * known, or -1 with nil, msg, code pushed (network, timeout, 5xx: nothing decided). */
int etl_sqs_detect(lua_State *L, struct client *c)
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
    if (etl_sqs_call_json(L, c, action, 0, &mismatch) == 0) {
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

int etl_sqs_ensure_protocol(lua_State *L, struct client *c)
{
    return c->protocol == PROTO_AUTO ? etl_sqs_detect(L, c) : 0;
}
