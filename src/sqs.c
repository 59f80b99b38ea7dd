/* sqs.c: the Lua binding of etlua.sqs (API: include/etlua/sqs.h). A client is a userdata
 * ("etlua.sqs.client") holding the settings, the transport (http.h) and, once known, the codec
 * of the protocol the endpoint speaks (sqs_codec.h); its user value is the list of answers
 * known without asking the service (empty batches), handed out by the next poll. This file owns
 * the constructor, protocol detection, turning requests into codec calls (results become Lua
 * values in sqs_values.c), the failure values (service messages cleaned of secrets) and closing;
 * the constructor's options are read and checked in sqs_options.c. */
#include "etlua/buf.h"
#include "etlua/host.h"
#include "etlua/http.h"
#include "etlua/modules.h"
#include "etlua/sqs.h"
#include "etlua/sqs_codec.h"
#include "etlua/sqs_options.h"
#include "etlua/sqs_values.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <lauxlib.h>
#include <lua.h>

#define CLIENT_MT "etlua.sqs.client"
#define UV_LOCAL 1 /* user value: finished answers known without a request */

struct client {
    struct etl_http *http;             /* NULL once closed */
    const struct etl_sqs_codec *codec; /* NULL until detected */
    char *url, *queue_url, *secret_key, *session_token;
    struct etl_buf body; /* the request being built (reused: the transport copies it) */
    long timeout_ms;
    lua_Integer last_local_token; /* -1, -2, ... */
};

/* ---- failures ------------------------------------------------------------------------------ */

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
    snprintf(out, outlen, "%.*s", (int)(n > 200 ? 200 : n), in ? in : "");
    const char *secrets[2] = {c->secret_key, c->session_token};
    for (int i = 0; i < 2; i++) {
        if (!secrets[i] || strlen(secrets[i]) < 4)
            continue;
        char *p;
        size_t sl = strlen(secrets[i]);
        while ((p = strstr(out, secrets[i])) != NULL)
            memmove(p, p + sl, strlen(p + sl) + 1);
    }
    for (char *p = out; *p; p++)
        if (iscntrl((unsigned char)*p))
            *p = ' ';
}

/* Pushes nil, msg, code for a failed answer: "SQS Action: Code: message (HTTP n)" when the
 * service said why, else "SQS Action: what was wrong (HTTP n)". */
static int push_answer_failure(lua_State *L, const struct client *c, enum etl_sqs_action action,
                               long status, enum etl_sqs_code code, const struct etl_sqs_result *r)
{
    char msg[600], clean[256], code_txt[128];
    if (r->service_error) {
        clean_message(c, r->error_message, clean, sizeof clean);
        clean_message(c, r->error_code, code_txt, sizeof code_txt);
        snprintf(msg, sizeof msg, "SQS %s: %s%s%s (HTTP %ld)", etl_sqs_action_name(action),
                 *code_txt ? code_txt : "error", *clean ? ": " : "", clean, status);
    } else {
        snprintf(msg, sizeof msg, "SQS %s: %s (HTTP %ld)", etl_sqs_action_name(action), r->why,
                 status);
    }
    return push_failure(L, code, msg);
}

static enum etl_sqs_code code_of_http(enum etl_http_status st)
{
    return st == ETL_HTTP_TIMEOUT     ? ETL_SQS_TIMEOUT
           : st == ETL_HTTP_TOO_LARGE ? ETL_SQS_PROTOCOL
           : st == ETL_HTTP_NOMEM     ? ETL_SQS_CLIENT
           : st == ETL_HTTP_STOPPED   ? ETL_SQS_STOPPED
           : st == ETL_HTTP_TLS       ? ETL_SQS_AUTH /* certificate not verified: not retried */
           : st == ETL_HTTP_BUSY      ? ETL_SQS_BUSY
                                      : ETL_SQS_NETWORK;
}

/* ---- one request ---------------------------------------------------------------------------- */

/* Builds req with codec and queues it. Returns 0 with *id, or 3 with nil, msg, code pushed. */
static int start(lua_State *L, struct client *c, const struct etl_sqs_codec *codec,
                 const struct etl_sqs_request *req, int flags, unsigned long long *id)
{
    const char *action = etl_sqs_action_name(req->action);
    char target[64], err[256], msg[400];
    struct etl_buf *body = &c->body;
    etl_buf_reset(body);
    if (codec->build(req, body) != 0) {
        etl_buf_free(body); /* out of memory: the next request starts afresh */
        snprintf(msg, sizeof msg, "SQS %s: out of memory", action);
        return push_failure(L, ETL_SQS_CLIENT, msg);
    }
    snprintf(target, sizeof target, "X-Amz-Target: AmazonSQS.%s", action);
    const char *headers[2] = {codec->content_type, target};
    long extra_ms = req->action == ETL_SQS_RECEIVE ? req->wait_s * 1000L : 0;
    enum etl_http_status st =
        etl_http_add(c->http, c->url, headers, codec->send_target ? 2 : 1, body->p, body->len,
                     c->timeout_ms < 10000 ? c->timeout_ms : 10000, c->timeout_ms + extra_ms, flags,
                     (int)req->action, id, err, sizeof err);
    if (st == ETL_HTTP_OK)
        return 0;
    snprintf(msg, sizeof msg, "SQS %s: %s", action, err);
    return push_failure(L, code_of_http(st), msg);
}

/* Reads a finished request into *r (free it). Returns 0, or 3 with nil, msg, code pushed;
 * *mismatch (may be NULL) tells whether the endpoint does not speak the codec's protocol. */
static int answer(lua_State *L, const struct client *c, const struct etl_sqs_codec *codec,
                  struct etl_http_done *d, struct etl_sqs_result *r, int *mismatch)
{
    enum etl_sqs_action action = (enum etl_sqs_action)d->tag;
    memset(r, 0, sizeof *r);
    if (d->status != ETL_HTTP_OK) {
        char msg[400];
        snprintf(msg, sizeof msg, "SQS %s: %s", etl_sqs_action_name(action), d->err);
        return push_failure(L, code_of_http(d->status), msg);
    }
    struct etl_sqs_answer ans = {d->http_status, d->body, d->len, d->query_error};
    enum etl_sqs_code code = codec->parse(action, &ans, r);
    free(d->body);
    d->body = NULL;
    if (mismatch)
        *mismatch = r->mismatch;
    if (code == ETL_SQS_OK)
        return 0;
    push_answer_failure(L, c, action, d->http_status, code, r);
    etl_sqs_result_free(r);
    return 3;
}

/* A blocking call on the reserved slot; other requests' answers stay for poll. Returns 0 with
 * *r filled (free it), or 3 with nil, msg, code pushed. */
static int call(lua_State *L, struct client *c, const struct etl_sqs_codec *codec,
                const struct etl_sqs_request *req, struct etl_sqs_result *r, int *mismatch)
{
    unsigned long long id;
    if (mismatch)
        *mismatch = 0;
    if (start(L, c, codec, req, ETL_HTTP_RESERVED, &id) != 0)
        return 3;
    struct etl_http_done d;
    while (!etl_http_take(c->http, id, &d))
        etl_http_run(c->http, 100, NULL);
    return answer(L, c, codec, &d, r, mismatch);
}

/* ---- the client ----------------------------------------------------------------------------- */

static int client_close(lua_State *L)
{
    struct client *c = luaL_checkudata(L, 1, CLIENT_MT);
    etl_http_close(c->http);
    c->http = NULL;
    etl_buf_free(&c->body);
    free(c->url);
    free(c->queue_url);
    c->url = c->queue_url = NULL;
    etl_http_free_secret(&c->secret_key);
    etl_http_free_secret(&c->session_token);
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

static const char *need_queue(lua_State *L, struct client *c)
{
    if (!c->queue_url)
        luaL_error(L, "etlua.sqs: no queue_url (give one to sqs.client or call get_queue_url)");
    return c->queue_url;
}

/* Asks the endpoint a JSON question and decides from the answer. Returns 0 once c->codec is
 * set, or 3 with nil, msg, code pushed (network, timeout, 5xx: nothing decided). */
static int detect(lua_State *L, struct client *c)
{
    static const char *const arn[] = {"QueueArn"};
    struct etl_sqs_request req = {.action = ETL_SQS_LIST_QUEUES};
    if (c->queue_url)
        req = (struct etl_sqs_request){.action = ETL_SQS_GET_QUEUE_ATTRIBUTES,
                                       .queue_url = c->queue_url,
                                       .names = arn,
                                       .nnames = 1};
    struct etl_sqs_result r;
    int mismatch, top = lua_gettop(L);
    if (call(L, c, &etl_sqs_json_codec, &req, &r, &mismatch) == 0) {
        etl_sqs_result_free(&r);
        c->codec = &etl_sqs_json_codec;
        return 0;
    }
    const char *code = lua_tostring(L, -1);
    if (mismatch)
        c->codec = &etl_sqs_query_codec;
    else if (strcmp(code, "network") == 0 || strcmp(code, "timeout") == 0 ||
             strcmp(code, "server") == 0 || strcmp(code, "busy") == 0)
        return 3;
    else
        c->codec = &etl_sqs_json_codec; /* a JSON error answer: the endpoint speaks JSON */
    lua_settop(L, top);
    return 0;
}

static int ensure_codec(lua_State *L, struct client *c) { return c->codec ? 0 : detect(L, c); }

static int m_protocol(lua_State *L)
{
    struct client *c = check_client(L);
    lua_pushstring(L, c->codec ? c->codec->name : "auto");
    return 1;
}

static int m_detect(lua_State *L)
{
    struct client *c = check_client(L);
    if (ensure_codec(L, c) != 0)
        return 3;
    lua_pushstring(L, c->codec->name);
    return 1;
}

static int m_get_queue_url(lua_State *L)
{
    struct client *c = check_client(L);
    struct etl_sqs_request req = {.action = ETL_SQS_GET_QUEUE_URL,
                                  .queue_name = luaL_checkstring(L, 2)};
    struct etl_sqs_result r;
    if (ensure_codec(L, c) != 0 || call(L, c, c->codec, &req, &r, NULL) != 0)
        return 3;
    if (!r.queue_url) {
        etl_sqs_result_free(&r);
        return push_failure(L, ETL_SQS_PROTOCOL, "SQS GetQueueUrl: no QueueUrl in the answer");
    }
    if (!c->queue_url && !(c->queue_url = strdup(r.queue_url))) {
        etl_sqs_result_free(&r);
        return luaL_error(L, "out of memory");
    }
    lua_pushstring(L, r.queue_url);
    etl_sqs_result_free(&r);
    return 1;
}

/* The attribute names at argument 2 into names[64]; they stay reachable from the table. */
static size_t attribute_names(lua_State *L, const char *names[64])
{
    luaL_checktype(L, 2, LUA_TTABLE);
    size_t n = lua_rawlen(L, 2);
    luaL_argcheck(L, n <= 64, 2, "at most 64 attribute names");
    for (size_t i = 0; i < n; i++) {
        if (lua_rawgeti(L, 2, (lua_Integer)i + 1) != LUA_TSTRING)
            luaL_argerror(L, 2, "attribute names must be strings");
        names[i] = lua_tostring(L, -1);
        lua_pop(L, 1);
    }
    return n;
}

/* The GetQueueAttributes request for the names in argument 2 (names[] is the caller's). */
static struct etl_sqs_request attributes_request(lua_State *L, struct client *c,
                                                 const char *names[64])
{
    size_t n = attribute_names(L, names);
    struct etl_sqs_request req = {.action = ETL_SQS_GET_QUEUE_ATTRIBUTES,
                                  .queue_url = need_queue(L, c),
                                  .names = names,
                                  .nnames = n};
    return req;
}

static int m_attributes(lua_State *L)
{
    struct client *c = check_client(L);
    const char *names[64];
    struct etl_sqs_request req = attributes_request(L, c, names);
    struct etl_sqs_result r;
    if (ensure_codec(L, c) != 0 || call(L, c, c->codec, &req, &r, NULL) != 0)
        return 3;
    etl_sqs_push_pairs(L, r.attributes, r.nattributes);
    etl_sqs_result_free(&r);
    return 1;
}

/* ---- concurrent requests -------------------------------------------------------------------- */

static const char *kind_name(enum etl_sqs_action a)
{
    return a == ETL_SQS_RECEIVE                ? "receive"
           : a == ETL_SQS_DELETE_BATCH         ? "delete_batch"
           : a == ETL_SQS_GET_QUEUE_ATTRIBUTES ? "attributes"
                                               : "change_visibility_batch";
}

/* Starts req on a free slot: pushes the token, or nil, msg, code. */
static int start_async(lua_State *L, struct client *c, struct etl_sqs_request *req)
{
    unsigned long long id;
    if (ensure_codec(L, c) != 0)
        return 3;
    int flags = req->action == ETL_SQS_RECEIVE ? ETL_HTTP_INTERRUPTIBLE : 0;
    if (start(L, c, c->codec, req, flags, &id) != 0)
        return 3;
    lua_pushinteger(L, (lua_Integer)id);
    return 1;
}

static int m_start_receive(lua_State *L)
{
    struct client *c = check_client(L);
    lua_Integer max = luaL_checkinteger(L, 2), wait = luaL_checkinteger(L, 3);
    lua_Integer vis = luaL_optinteger(L, 4, -1);
    luaL_argcheck(L, max >= 1 && max <= 10, 2, "between 1 and 10");
    luaL_argcheck(L, wait >= 0 && wait <= 20, 3, "between 0 and 20");
    luaL_argcheck(L, lua_isnoneornil(L, 4) || (vis >= 0 && vis <= 43200), 4, "between 0 and 43200");
    struct etl_sqs_request req = {.action = ETL_SQS_RECEIVE,
                                  .queue_url = need_queue(L, c),
                                  .max_messages = (int)max,
                                  .wait_s = (int)wait,
                                  .visibility_s = (int)vis};
    return start_async(L, c, &req);
}

/* The batch entry Ids of entries taken by position: "1".."10". */
static const char *const POSITION_IDS[10] = {"1", "2", "3", "4", "5", "6", "7", "8", "9", "10"};

/* Delete (timeout < 0) or change the visibility of the entries at argument 2; by_position:
 * each entry's Id is its position ("1".."10") and only its receipt is read, so the messages
 * a receive handed out serve as entries as they are (no table of {id=, receipt=} made for each). */
static int start_batch(lua_State *L, lua_Integer timeout, int by_position)
{
    struct client *c = check_client(L);
    struct etl_sqs_entry entries[10];
    luaL_checktype(L, 2, LUA_TTABLE);
    size_t n = lua_rawlen(L, 2);
    luaL_argcheck(L, n <= 10, 2, "at most 10 entries");
    for (size_t i = 0; i < n; i++) {
        if (lua_rawgeti(L, 2, (lua_Integer)i + 1) != LUA_TTABLE)
            luaL_argerror(L, 2, "entries must be tables {id=, receipt=}");
        if (by_position) {
            if (lua_getfield(L, -1, "receipt") != LUA_TSTRING)
                luaL_argerror(L, 2, "each entry needs a string receipt");
            entries[i].id = POSITION_IDS[i];
            entries[i].receipt = lua_tostring(L, -1); /* reachable from the entries table */
            lua_pop(L, 2);
            continue;
        }
        if (lua_getfield(L, -1, "id") != LUA_TSTRING ||
            lua_getfield(L, -2, "receipt") != LUA_TSTRING)
            luaL_argerror(L, 2, "each entry needs string id and receipt");
        entries[i].id = lua_tostring(L, -2); /* reachable from the entries table */
        entries[i].receipt = lua_tostring(L, -1);
        lua_pop(L, 3);
    }
    struct etl_sqs_request req = {.action = timeout < 0 ? ETL_SQS_DELETE_BATCH
                                                        : ETL_SQS_CHANGE_VISIBILITY_BATCH,
                                  .queue_url = need_queue(L, c),
                                  .visibility_s = (int)timeout,
                                  .entries = entries,
                                  .nentries = n};
    if (n > 0)
        return start_async(L, c, &req);
    lua_Integer token = --c->last_local_token; /* nothing to ask: answered at once */
    lua_getiuservalue(L, 1, UV_LOCAL);
    lua_createtable(L, 0, 3);
    lua_pushinteger(L, token);
    lua_setfield(L, -2, "token");
    lua_pushstring(L, kind_name(req.action));
    lua_setfield(L, -2, "kind");
    lua_newtable(L);
    lua_setfield(L, -2, "result");
    lua_rawseti(L, -2, (lua_Integer)lua_rawlen(L, -2) + 1);
    lua_pushinteger(L, token);
    return 1;
}

/* c:start_delete_batch(entries [, by_position]) */
static int m_start_delete_batch(lua_State *L) { return start_batch(L, -1, lua_toboolean(L, 3)); }

/* c:start_change_visibility_batch(entries, timeout_s [, by_position]) */
static int m_start_change_visibility_batch(lua_State *L)
{
    lua_Integer timeout = luaL_checkinteger(L, 3);
    luaL_argcheck(L, timeout >= 0 && timeout <= 43200, 3, "between 0 and 43200");
    return start_batch(L, timeout, lua_toboolean(L, 4));
}

/* c:start_attributes(names): GetQueueAttributes on a request slot, answered through poll */
static int m_start_attributes(lua_State *L)
{
    struct client *c = check_client(L);
    const char *names[64];
    struct etl_sqs_request req = attributes_request(L, c, names);
    return start_async(L, c, &req);
}

static int m_poll(lua_State *L)
{
    struct client *c = check_client(L);
    lua_Integer timeout = luaL_optinteger(L, 2, 0);
    lua_settop(L, 2);
    lua_getiuservalue(L, 1, UV_LOCAL); /* 3: handed out; a fresh list takes its place */
    lua_newtable(L);
    lua_setiuservalue(L, 1, UV_LOCAL);
    long t = timeout > 86400000 ? 86400000 : timeout < 0 ? -1 : (long)timeout;
    if (etl_http_run(c->http, 0, etl_host_stop_requested) == 0 && lua_rawlen(L, 3) == 0 && t != 0)
        etl_http_run(c->http, t, etl_host_stop_requested); /* nothing yet: wait for one */
    struct etl_http_done d;
    while (etl_http_next(c->http, &d)) {
        enum etl_sqs_action action = (enum etl_sqs_action)d.tag;
        struct etl_sqs_result r;
        lua_createtable(L, 0, 4);
        lua_pushinteger(L, (lua_Integer)d.id);
        lua_setfield(L, -2, "token");
        lua_pushstring(L, kind_name(action));
        lua_setfield(L, -2, "kind");
        if (answer(L, c, c->codec, &d, &r, NULL) != 0) {
            lua_setfield(L, -4, "code");
            lua_setfield(L, -3, "err");
            lua_pop(L, 1);
        } else {
            if (action == ETL_SQS_RECEIVE)
                etl_sqs_push_messages(L, &r);
            else if (action == ETL_SQS_GET_QUEUE_ATTRIBUTES)
                etl_sqs_push_pairs(L, r.attributes, r.nattributes);
            else
                etl_sqs_push_failures(L, &r);
            etl_sqs_result_free(&r);
            lua_setfield(L, -2, "result");
        }
        lua_rawseti(L, 3, (lua_Integer)lua_rawlen(L, 3) + 1);
    }
    return 1;
}

static int m_pending(lua_State *L)
{
    struct client *c = check_client(L);
    lua_getiuservalue(L, 1, UV_LOCAL);
    lua_pushinteger(L, (lua_Integer)(lua_rawlen(L, -1) + etl_http_pending(c->http)));
    return 1;
}

static int m_tostring(lua_State *L)
{
    struct client *c = luaL_checkudata(L, 1, CLIENT_MT);
    if (c->http)
        lua_pushfstring(L, "etlua.sqs.client (%s, %s)", c->url, c->codec ? c->codec->name : "auto");
    else
        lua_pushliteral(L, "etlua.sqs.client (closed)");
    return 1;
}

/* ---- constructor ---------------------------------------------------------------------------- */

static char *dup_or_raise(lua_State *L, const char *s)
{
    char *d = s ? strdup(s) : NULL;
    if (s && !d)
        luaL_error(L, "out of memory");
    return d;
}

static int l_client(lua_State *L)
{
    struct etl_sqs_options o;
    etl_sqs_options_read(L, &o);
    struct client *c = lua_newuserdatauv(L, sizeof *c, 1);
    memset(c, 0, sizeof *c);
    luaL_setmetatable(L, CLIENT_MT); /* from here __gc frees whatever was set */
    lua_newtable(L);
    lua_setiuservalue(L, -2, UV_LOCAL);
    c->codec = o.codec;
    c->timeout_ms = (long)o.timeout_ms;
    c->url = etl_sqs_options_url(&o);
    if (!c->url)
        return luaL_error(L, "etlua.sqs.client: endpoint must be an http:// or https:// URL");
    c->queue_url = dup_or_raise(L, o.queue_url);
    c->secret_key = dup_or_raise(L, o.secret_key);
    c->session_token =
        o.session_token && *o.session_token ? dup_or_raise(L, o.session_token) : NULL;
    struct etl_http_config cfg = {.ca_bundle = o.ca_bundle,
                                  .region = o.region,
                                  .service = "sqs",
                                  .access_key = o.access_key,
                                  .secret_key = o.secret_key,
                                  .session_token = c->session_token,
                                  .max_inflight = (size_t)o.max_inflight};
    c->http = etl_http_open(&cfg);
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
        {"attributes", m_attributes},
        {"start_receive", m_start_receive},
        {"start_attributes", m_start_attributes},
        {"start_delete_batch", m_start_delete_batch},
        {"start_change_visibility_batch", m_start_change_visibility_batch},
        {"poll", m_poll},
        {"pending", m_pending},
        {"close", client_close},
        {NULL, NULL}};
    static const luaL_Reg meta[] = {{"__gc", client_close},
                                    {"__close", client_close},
                                    {"__tostring", m_tostring},
                                    {NULL, NULL}};
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
