/* sqs_values.h: SQS results (sqs_codec.h) pushed onto the Lua stack (src/sqs_values.c). */
#ifndef ETLUA_SQS_VALUES_H
#define ETLUA_SQS_VALUES_H

#include <stddef.h>

#include <lua.h>

#include "etlua/sqs_codec.h"

/* A table name -> value of n pairs; pairs a failed copy left without name or value are skipped. */
void etl_sqs_push_pairs(lua_State *L, const struct etl_sqs_pair *p, size_t n);

/* An array of {id, receipt, body, sent_ms, receive_count, group_id, sequence_number,
 * attributes}; a message without id or receipt is left out. */
void etl_sqs_push_messages(lua_State *L, const struct etl_sqs_result *r);

/* An array of {id, code, message}, one per failed batch entry. */
void etl_sqs_push_failures(lua_State *L, const struct etl_sqs_result *r);

#endif
