/* sqs.h: the pieces of etlua.sqs below the Lua binding (src/sqs.c; what the module's own C
 * files share with each other is in sqs_internal.h):
 *  - the error vocabulary (src/sqs_call.c; codes returned to Lua as the third value of nil, msg,
 *    code),
 *  - the query protocol (src/sqs_query.c): form-encoded requests, XML answers parsed with expat
 *    into plain C structs by a pure function (bytes in, result out; safe on hostile input),
 *  - the JSON protocol (src/sqs_json.c): bodies built and answers decoded with lua-cjson.
 *
 * Concurrent calls (Lua API of src/sqs_async.c; ARCHITECTURE.md lists the blocking ones). They
 * run on a curl multi transport (http.h) created by the first of them: a pool of at most
 * max_inflight easy handles (client option, 1..256, default 32), one kept-alive connection per
 * handle. The protocol is detected (blocking) before the first request goes out; each request is
 * SigV4-signed when it is started.
 *   c:receive_many(n, max, wait_s [, visibility_s])  n (1..max_inflight) ReceiveMessage calls at
 *       once, each for up to max (1..10); waits for all of them.
 *       -> messages                       all succeeded (array of {id, receipt, body, sent_ms})
 *       -> messages, msg, code            some failed: the messages of the others, and the first
 *                                         failure (messages are never dropped)
 *       -> nil, msg, code                 all failed (code "stopped" after SIGTERM/SIGINT)
 *       Completions of start_* requests met while waiting are kept for poll.
 *   c:start_receive(max, wait_s [, visibility_s])      -> token  or nil, msg, code
 *   c:start_delete_batch(entries)                      -> token  or nil, msg, code
 *   c:start_change_visibility_batch(entries, timeout_s) -> token or nil, msg, code
 *       Queue one request (code "client" when every slot is busy). Tokens are integers, unique
 *       per client (an empty batch is answered at once under a negative token).
 *   c:poll([timeout_ms])  -> array of {token=, kind=, result=} | {token=, kind=, err=, code=}
 *       kind: "receive" | "delete_batch" | "change_visibility_batch"; result shaped exactly as
 *       the blocking method's (messages, or the failed entries). Waits until at least one request
 *       has finished or timeout_ms passed (default 0: no wait; < 0: no limit); {} when nothing
 *       finished. Each token is reported once.
 *   c:pending()           -> requests in flight + finished ones not yet returned by poll
 *   Receives in flight are cancelled with code "stopped" once SIGTERM/SIGINT arrived
 *   (etl_host_stop_requested, checked at least every 100 ms); deletes and visibility changes
 *   always run to their end. c:close() abandons what is in flight: the receipts of a receive
 *   in flight come back after the visibility timeout. The blocking methods are unchanged (their
 *   long polls are not interruptible). */
#ifndef ETLUA_SQS_H
#define ETLUA_SQS_H

#include <stddef.h>

struct lua_State;

enum etl_sqs_code {
    ETL_SQS_OK = 0,
    ETL_SQS_NETWORK,
    ETL_SQS_TIMEOUT,
    ETL_SQS_THROTTLED,
    ETL_SQS_SERVER,
    ETL_SQS_AUTH,
    ETL_SQS_NO_QUEUE,
    ETL_SQS_PROTOCOL,
    ETL_SQS_CLIENT,
    ETL_SQS_STOPPED /* "stopped": cut short by SIGTERM/SIGINT (concurrent receives only) */
};

/* "network", "timeout", ... ; "ok" for ETL_SQS_OK. */
const char *etl_sqs_code_name(enum etl_sqs_code code);

/* Classifies a failed answer: aws_code is the service's error code ("QueueDoesNotExist",
 * "com.amazonaws.sqs#QueueDoesNotExist", "AWS.SimpleQueueService.NonExistentQueue", ...) or NULL;
 * status the HTTP status. Throttling and missing queue win over the status class. */
enum etl_sqs_code etl_sqs_classify(long http_status, const char *aws_code);

/* True when an error code means "this endpoint does not speak the protocol you used" (the
 * answer of a query-only endpoint to a JSON request: MissingAction, InvalidAction, ...). */
int etl_sqs_is_protocol_mismatch(const char *aws_code, const char *message);

/* ---- query protocol (sqs_query.c) ---------------------------------------------------------- */

#define ETL_SQS_MAX_FIELD (1024u * 1024u) /* longest text of one XML element we keep */
#define ETL_SQS_MAX_ENTRIES 1000u         /* most messages / batch entries / attributes kept */

/* A form body being built: "Action=...&Version=2012-11-05&Name=Value...". ok = 0 after a
 * failed allocation (the body is then unusable). */
struct etl_sqs_form {
    char *p;
    size_t len, cap;
    int ok;
};

void etl_sqs_query_begin(struct etl_sqs_form *f, const char *action);
void etl_sqs_query_add(struct etl_sqs_form *f, const char *name, const char *value, size_t vlen);
void etl_sqs_query_free(struct etl_sqs_form *f);

struct etl_sqs_message {
    char *id, *receipt, *body;
    long long sent_ms; /* -1 when the SentTimestamp attribute is absent or not a number */
};

struct etl_sqs_batch_failure {
    char *id, *code, *message;
};

struct etl_sqs_attribute {
    char *name, *value;
};

/* Everything an SQS query answer may carry; unused parts stay empty / NULL. */
struct etl_sqs_result {
    char root[64];                 /* local name of the root element, "ErrorResponse", ... */
    char *error_code, *error_message; /* ErrorResponse/Error/{Code,Message} */
    char *queue_url;               /* GetQueueUrlResult/QueueUrl */
    struct etl_sqs_message *messages;
    size_t nmessages;
    struct etl_sqs_batch_failure *failures; /* BatchResultErrorEntry */
    size_t nfailures;
    char **succeeded;              /* ids of the ...BatchResultEntry elements */
    size_t nsucceeded;
    struct etl_sqs_attribute *attributes; /* GetQueueAttributesResult/Attribute */
    size_t nattributes;
};

/* Parses an XML answer. Returns 0 and fills *out, or -1 with a short reason in err (malformed
 * or truncated XML, a field over ETL_SQS_MAX_FIELD, a DTD, out of memory); *out must be freed
 * with etl_sqs_result_free in both cases. Never reads past xml[len]. */
int etl_sqs_query_parse(const char *xml, size_t len, struct etl_sqs_result *out, char *err,
                        size_t errlen);
void etl_sqs_result_free(struct etl_sqs_result *r);

/* ---- JSON protocol (sqs_json.c), working on the Lua stack with lua-cjson ------------------ */

/* Pushes a table {encode = cjson.encode, decode = cjson.decode} (require "cjson" under pcall).
 * Returns 0, or -1 with an error message pushed instead. */
int etl_sqs_json_load(struct lua_State *L);

/* Encodes the table at the top of the stack with the codec table at codec_idx; replaces it with
 * the JSON string. Returns 0, or -1 with an error message in its place. */
int etl_sqs_json_encode(struct lua_State *L, int codec_idx);

/* Decodes s[0..len) with the codec at codec_idx and pushes the value. Returns 0, or -1 with
 * an error message pushed (the message does not quote the input). */
int etl_sqs_json_decode(struct lua_State *L, int codec_idx, const char *s, size_t len);

/* From a decoded JSON error answer at idx: pushes the error code (the part of "__type" after
 * '#', or "code"/"Code") and the message; either may be nil. */
void etl_sqs_json_error(struct lua_State *L, int idx);

/* From a decoded ReceiveMessage answer at idx: pushes the array of {id, receipt, body, sent_ms}.
 * Messages without a string id, receipt or body are skipped. */
void etl_sqs_json_messages(struct lua_State *L, int idx);

/* From a decoded ...Batch answer at idx: pushes the array of failures {id, code, message}. */
void etl_sqs_json_failures(struct lua_State *L, int idx);

#endif
