/* sqs_internal.h: what the C files of etlua.sqs share and nothing outside them uses: the client
 * userdata (struct client) and the functions one file calls in another. The files:
 *  - src/sqs.c          the Lua binding: constructor, closing, blocking methods, method table;
 *  - src/sqs_call.c     one request and its answer: error vocabulary, failure values, signing,
 *                       sending, JSON and query answers, protocol detection;
 *  - src/sqs_request.c  argument checks, request bodies and query results shared by the
 *                       blocking and the concurrent methods;
 *  - src/sqs_async.c    the concurrent methods (curl multi);
 *  - src/sqs_json.c, src/sqs_query.c  the two wire protocols (sqs.h).
 * The functions that reach a client's user values expect it at stack index 1 (the self of a
 * method); "pushes nil, msg, code" means the three values of an expected failure. */
#ifndef ETLUA_SQS_INTERNAL_H
#define ETLUA_SQS_INTERNAL_H

#include "etlua/http.h"
#include "etlua/sqs.h"

#include <stddef.h>

#include <lua.h>

enum proto { PROTO_AUTO, PROTO_JSON, PROTO_QUERY };

/* The user values of a client userdata. */
enum { UV_CODEC = 1, UV_DONE, UV_PENDING, UV_COUNT = UV_PENDING };

struct client {
    struct etl_http *http; /* NULL once closed */
    struct etl_http_multi *multi; /* created by the first asynchronous call */
    size_t max_inflight;
    lua_Integer last_local_token; /* tokens of answers known without a request: -1, -2, ... */
    char *endpoint, *queue_url, *region, *access_key, *secret_key, *session_token;
    enum proto protocol;
    int forced; /* protocol given as "json" or "query": etl_sqs_detect() asks nothing */
    long timeout_ms;
};

/* ---- the binding (sqs.c) ------------------------------------------------------------------- */

/* The client at argument 1; raises when it is not one or is closed. */
struct client *etl_sqs_check_client(lua_State *L);

/* The queue URL of the client; raises when there is none. */
const char *etl_sqs_need_queue(lua_State *L, struct client *c);

/* ---- one call (sqs_call.c) ----------------------------------------------------------------- */

/* Pushes nil, msg, code; returns 3. */
int etl_sqs_push_failure(lua_State *L, enum etl_sqs_code code, const char *msg);

/* The code of a transport failure. */
enum etl_sqs_code etl_sqs_code_of_http(enum etl_http_status st);

/* Signs one POST and queues it on c->multi (interruptible: cut short on SIGTERM/SIGINT).
 * Returns ETL_SQS_OK with *id, or a code with msg. */
enum etl_sqs_code etl_sqs_start_signed(struct client *c, const char *action, int json,
                                       const char *body, size_t len, long extra_ms,
                                       int interruptible, unsigned long long *id, char *msg,
                                       size_t msglen);

/* Interprets a JSON answer (resp is freed) with the codec at index codec. Returns 0 with the
 * decoded answer pushed, or -1 with nil, msg, code pushed; *mismatch is set when the answer says
 * the endpoint does not speak JSON. */
int etl_sqs_answer_json(lua_State *L, struct client *c, int codec, const char *action,
                        struct etl_http_response *resp, int *mismatch);

/* Replaces the request table at the top of the stack with its JSON text. Returns 0, or -1 with
 * the table popped and nil, msg, code pushed. */
int etl_sqs_encode_json_request(lua_State *L);

/* JSON protocol, blocking: the request table at the top of the stack is consumed. Returns 0 with
 * the decoded answer pushed, or -1 with nil, msg, code pushed (*mismatch as above). */
int etl_sqs_call_json(lua_State *L, struct client *c, const char *action, long extra_ms,
                      int *mismatch);

/* Interprets a query answer (resp is freed). Returns 0 with *r filled (free it), or -1 with
 * nil, msg, code pushed. */
int etl_sqs_answer_query(lua_State *L, struct client *c, const char *action,
                         struct etl_http_response *resp, struct etl_sqs_result *r);

/* Query protocol, blocking: sends the form (freed). Returns 0 with *r filled (free it), or -1
 * with nil, msg, code pushed. */
int etl_sqs_call_query(lua_State *L, struct client *c, const char *action,
                       struct etl_sqs_form *form, long extra_ms, struct etl_sqs_result *r);

/* Asks the endpoint which protocol it speaks. Returns 0 once c->protocol is known, or -1 with
 * nil, msg, code pushed (network, timeout, 5xx: nothing decided). */
int etl_sqs_detect(lua_State *L, struct client *c);

/* etl_sqs_detect unless the protocol is known already; same returns. */
int etl_sqs_ensure_protocol(lua_State *L, struct client *c);

/* ---- requests and results (sqs_request.c) -------------------------------------------------- */

struct recv_args {
    lua_Integer max, wait, vis;
    int has_vis;
};

/* Reads max, wait_s [, visibility_s] from arguments first, first + 1, first + 2; raises when
 * one is out of range. */
void etl_sqs_check_recv_args(lua_State *L, int first, struct recv_args *a);

/* ReceiveMessage: pushes the JSON request table, or builds the query form. */
void etl_sqs_push_receive_json(lua_State *L, const char *queue, const struct recv_args *a);
void etl_sqs_receive_form(struct etl_sqs_form *f, const char *queue, const struct recv_args *a);

/* Checks entries (argument 2): an array of at most 10 {id=string, receipt=string}; raises
 * otherwise. Returns their number. */
lua_Integer etl_sqs_check_entries(lua_State *L);

/* DeleteMessageBatch (timeout < 0) or ChangeMessageVisibilityBatch for the entries at
 * argument 2: the action name, the JSON request table (pushed) or the query form. */
const char *etl_sqs_batch_action(lua_Integer timeout);
void etl_sqs_push_batch_json(lua_State *L, const char *queue, lua_Integer n, lua_Integer timeout);
void etl_sqs_batch_form(lua_State *L, struct etl_sqs_form *f, const char *queue, lua_Integer n,
                        lua_Integer timeout);

/* Push the messages {id, receipt, body, sent_ms} or the batch failures {id, code, message} of a
 * query answer as an array. */
void etl_sqs_push_query_messages(lua_State *L, const struct etl_sqs_result *r);
void etl_sqs_push_query_failures(lua_State *L, const struct etl_sqs_result *r);

/* ---- the concurrent methods (sqs_async.c), registered by luaopen_etlua_sqs ------------------ */

int etl_sqs_m_receive_many(lua_State *L);
int etl_sqs_m_start_receive(lua_State *L);
int etl_sqs_m_start_delete_batch(lua_State *L);
int etl_sqs_m_start_change_visibility_batch(lua_State *L);
int etl_sqs_m_poll(lua_State *L);
int etl_sqs_m_pending(lua_State *L);

#endif
