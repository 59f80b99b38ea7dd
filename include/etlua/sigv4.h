/* sigv4.h: AWS Signature Version 4 for one request, as a pure function (no clock, no I/O).
 * The caller passes the time, so tests are deterministic; etl_sigv4_sign returns the header
 * values the caller must then send: Authorization, X-Amz-Date and (when a session token is
 * given) X-Amz-Security-Token, plus the Host header value that was signed. */
#ifndef ETLUA_SIGV4_H
#define ETLUA_SIGV4_H

#include <stddef.h>
#include <time.h>

/* One request header to sign ("content-type", "x-amz-target"); the name in any case. */
struct etl_sigv4_header {
    const char *name;
    const char *value;
};

struct etl_sigv4_input {
    const char *method;        /* "POST" */
    const char *url;           /* scheme://host[:port][/path][?query] */
    const struct etl_sigv4_header *headers; /* signed in addition to host, x-amz-date, token */
    size_t nheaders;
    const char *body;          /* may be NULL when body_len is 0 */
    size_t body_len;
    const char *region;        /* "us-east-1" */
    const char *service;       /* "sqs" */
    const char *access_key;
    const char *secret_key;
    const char *session_token; /* NULL: none */
    time_t now;                /* epoch seconds, UTC */
};

struct etl_sigv4_output {
    char *authorization; /* heap: "AWS4-HMAC-SHA256 Credential=..., SignedHeaders=..., Signature=..." */
    char host[300];      /* Host header value signed: lowercase host, port unless the default */
    char amz_date[17];   /* X-Amz-Date: YYYYMMDDTHHMMSSZ */
};

/* Signs the request. Returns 0 and fills *out (free with etl_sigv4_output_free), or -1 when
 * the URL cannot be parsed, an input is missing, or memory runs out (out->authorization NULL). */
int etl_sigv4_sign(const struct etl_sigv4_input *in, struct etl_sigv4_output *out);
void etl_sigv4_output_free(struct etl_sigv4_output *out);

/* Appends to dst the AWS URI encoding of src[0..len): every byte but A-Z a-z 0-9 - _ . ~ becomes
 * %XY (uppercase hex); '/' too unless keep_slash. dst must hold 3*len+1; returns chars written. */
size_t etl_sigv4_uri_encode(char *dst, const char *src, size_t len, int keep_slash);

#endif
