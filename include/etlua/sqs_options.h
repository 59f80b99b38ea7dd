/* sqs_options.h: the options table of sqs.client (the Lua API: sqs.h) read and checked, for the
 * binding's constructor (src/sqs.c); src/sqs_options.c. */
#ifndef ETLUA_SQS_OPTIONS_H
#define ETLUA_SQS_OPTIONS_H

#include <lua.h>

#include "etlua/sqs_codec.h"

/* sqs.client's options, their defaults applied. The strings belong to the options table (they
 * stay reachable from it while the constructor runs): copy what the client keeps. */
struct etl_sqs_options {
    const char *endpoint, *queue_url, *region, *access_key, *secret_key, *session_token, *ca_bundle;
    const struct etl_sqs_codec *codec; /* NULL: "auto", detected before the first request */
    lua_Integer timeout_ms, max_inflight;
};

/* Reads the options table at index 1 into *o; a missing, mistyped or out-of-range option
 * raises a one-line error naming it. */
void etl_sqs_options_read(lua_State *L, struct etl_sqs_options *o);

/* The URL requests go to, in a new string (free it): the endpoint's (else the queue URL's)
 * "scheme://authority/", else the region's AWS endpoint; NULL when the URL is not http(s)
 * (or out of memory). */
char *etl_sqs_options_url(const struct etl_sqs_options *o);

#endif
