/* http.h: the transport of etlua.sqs. One libcurl easy handle per client, reused across requests
 * so the connection stays open (keep-alive). It moves bytes only: building requests, signing and
 * parsing answers live in sqs*.c and sigv4.c, so a curl-multi transport can later drive the same
 * request/response pairs concurrently. */
#ifndef ETLUA_HTTP_H
#define ETLUA_HTTP_H

#include <stddef.h>

#define ETL_HTTP_MAX_BODY (16u * 1024u * 1024u) /* answers larger than this are refused */

enum etl_http_status {
    ETL_HTTP_OK = 0,      /* an HTTP answer arrived (any status code) */
    ETL_HTTP_NETWORK,     /* resolve, connect, TLS, reset, ... */
    ETL_HTTP_TIMEOUT,     /* connect or total timeout */
    ETL_HTTP_TOO_LARGE,   /* answer body over ETL_HTTP_MAX_BODY */
    ETL_HTTP_NOMEM
};

struct etl_http_response {
    long status;               /* HTTP status code */
    char *body;                /* heap, NUL-terminated, len bytes (may hold NULs) */
    size_t len;
    char content_type[128];    /* Content-Type header, "" when absent */
    char query_error[256];     /* x-amzn-query-error header ("Code;Sender"), "" when absent */
};

struct etl_http;

/* Creates a transport. ca_bundle: a CA file for TLS verification or NULL for the system store.
 * Returns NULL when curl cannot be initialised. TLS peer and host verification are always on. */
struct etl_http *etl_http_open(const char *ca_bundle);

/* POSTs body to url with the given "Name: value" header lines. On ETL_HTTP_OK *resp holds the
 * answer (free it with etl_http_response_free); otherwise err holds a message without secrets. */
enum etl_http_status etl_http_post(struct etl_http *h, const char *url, const char *const *headers,
                                   size_t nheaders, const char *body, size_t len,
                                   long connect_timeout_ms, long total_timeout_ms,
                                   struct etl_http_response *resp, char *err, size_t errlen);

void etl_http_response_free(struct etl_http_response *resp);

/* Closes the connection and frees the transport; NULL is accepted. */
void etl_http_close(struct etl_http *h);

#endif
