/* sqs.h: etlua.sqs, the SQS client, in three layers:
 *  - transport: include/etlua/http.h (src/http.c): libcurl multi, connection reuse, TLS; each
 *    request signed (SigV4) by our own src/sigv4.c (etl_sigv4_sign, include/etlua/sigv4.h);
 *  - codecs: include/etlua/sqs_codec.h (src/sqs_codec.c, src/sqs_json.c, src/sqs_query.c): one
 *    table of functions per wire protocol, picked once after detection;
 *  - the Lua binding: src/sqs.c, luaopen_etlua_sqs (declared in etlua/modules.h; sqs.client's
 *    options: src/sqs_options.c).
 *
 * Lua API (expected failures return nil, msg, code; misuse raises; messages never carry secrets,
 * signatures or message bodies):
 *   local c = sqs.client{endpoint=, queue_url=, region=, access_key=, secret_key=,
 *                        session_token=, protocol = "json"|"query"|"auto", ca_bundle=,
 *                        timeout_ms = 30000, max_inflight = 32 (1..256)}
 *   c:protocol()         -> "json" | "query" | "auto" (before detection)
 *   c:detect()           -> "json" | "query"       or nil, msg, code   (blocking)
 *   c:get_queue_url(name) -> url                   or nil, msg, code   (blocking)
 *   c:attributes(names)  -> {name -> string}       or nil, msg, code   (blocking)
 *   c:start_receive(max, wait_s [, visibility_s])       -> token or nil, msg, code
 *   c:start_delete_batch(entries [, by_position])                       -> token or nil, msg, code
 *   c:start_change_visibility_batch(entries, timeout_s [, by_position]) -> token or nil, msg, code
 *   c:start_attributes(names)                                           -> token or nil, msg, code
 *       entries: array (<= 10) of {id=, receipt=}; by_position: each entry's id is its position
 *       ("1".."10") and only its receipt is read (messages as a receive handed them out).
 *       Code "busy": every request slot is taken
 *       (poll, then try again); "client" is a real client error. Tokens are integers, unique
 *       per client (an empty batch is answered at once under a negative token).
 *   c:poll([timeout_ms]) -> array of {token=, kind=, result=} | {token=, kind=, err=, code=}
 *       kind: "receive" | "delete_batch" | "change_visibility_batch" | "attributes" (its
 *       result: {name -> string}, as c:attributes gives). result of a receive: an
 *       array of messages {id, receipt, body, sent_ms, receive_count, group_id,
 *       sequence_number, attributes = {name -> string value}} (sent_ms, receive_count,
 *       group_id, sequence_number nil when absent; attributes: the message attributes,
 *       StringValue or else the base64 BinaryValue); of a batch: the failed entries
 *       {id, code, message} (empty on success). Waits until at least one request finished or
 *       timeout_ms passed (default 0: no wait; < 0: no limit). Each token is reported once.
 *   c:pending()          -> requests in flight + finished ones not yet returned by poll
 *   c:close()            abandons what is in flight (a receive's messages come back after the
 *                        visibility timeout); also __gc and __close; twice is safe.
 *   codes: "network", "timeout", "throttled", "server" (5xx), "auth", "no_queue", "protocol",
 *          "client", "busy", "stopped" (a receive cut short by SIGTERM/SIGINT; deletes and
 *          visibility changes always run to their end).
 * The protocol is detected (blocking) before the first request when it is "auto"; the blocking
 * calls use a slot kept for them, so they work while every other slot is busy. */
#ifndef ETLUA_SQS_H
#define ETLUA_SQS_H

#endif
