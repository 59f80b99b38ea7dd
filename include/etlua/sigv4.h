/* sigv4.h: AWS Signature Version 4 for the requests of the SQS transport (src/sigv4.c). A signer
 * holds one identity (access key, secret, region, service) and what it can reuse between
 * requests: the fetched SHA-256, one digest context, one buffer for the canonical request and the
 * string to sign, and the day's signing key as HMAC states already keyed, so a request costs two
 * SHA-256 (payload, canonical request) and one HMAC, and the four-HMAC key derivation runs once
 * a day. The caller passes the time, so tests are deterministic.
 *
 * What is signed: the method, the path and query as given (the caller passes them canonical:
 * etlua posts to the endpoint's root, "/" with no query), the headers host and x-amz-date plus
 * every header line the caller gives (names lowercased, values trimmed with inner runs of spaces
 * folded to one, sorted by name: the canonical headers of the SigV4 documentation), and the
 * SHA-256 of the body. A session token is one of the caller's lines (X-Amz-Security-Token). */
#ifndef ETLUA_SIGV4_H
#define ETLUA_SIGV4_H

#include <stddef.h>
#include <time.h>

#define ETL_SIGV4_MAX_HEADERS 16 /* caller's header lines one request may carry */
#define ETL_SIGV4_AUTH_MAX 512   /* room for the Authorization value, NUL included */

struct etl_sigv4;

/* A signer for (access_key, secret_key, region, service); the strings are copied and the
 * secret is wiped by etl_sigv4_free. NULL when an input is missing (NULL), or memory or OpenSSL
 * fails. */
struct etl_sigv4 *etl_sigv4_new(const char *access_key, const char *secret_key, const char *region,
                                const char *service);
void etl_sigv4_free(struct etl_sigv4 *s); /* NULL is accepted */

struct etl_sigv4_request {
    const char *method;         /* "POST" */
    const char *host;           /* the Host header as sent: lowercase host[:port] */
    const char *path;           /* canonical URI, "/" */
    const char *query;          /* canonical query string, "" for none */
    const char *const *headers; /* "Name: value" lines signed besides host and x-amz-date */
    size_t nheaders;            /* at most ETL_SIGV4_MAX_HEADERS */
    const char *body;           /* may be NULL when len is 0 */
    size_t len;
    time_t now; /* epoch seconds, UTC */
};

/* Signs req: writes the X-Amz-Date value ("YYYYMMDDTHHMMSSZ") to amz_date and the Authorization
 * value ("AWS4-HMAC-SHA256 Credential=..., SignedHeaders=..., Signature=...") to auth. Returns
 * 0, or -1 (a header line without ':', too many headers, the value does not fit, out of memory,
 * OpenSSL failed). */
int etl_sigv4_sign(struct etl_sigv4 *s, const struct etl_sigv4_request *req, char amz_date[17],
                   char auth[ETL_SIGV4_AUTH_MAX]);

/* The Host header value of an http(s) URL into host (lowercase host, ":port" unless the
 * scheme's default; user info dropped) and the offset of its path in *path_at. Returns 0, or -1
 * when the URL is not http(s)://host[:port]... or host does not fit hostlen. */
int etl_sigv4_host_of(const char *url, char *host, size_t hostlen, size_t *path_at);

#endif
