/* http.h: the transport of etlua.sqs (src/http.c on libcurl). It moves bytes: request bodies
 * come from a codec (sqs_codec.h), answers go back to it. A transport is a curl multi handle
 * with a fixed pool of easy handles, one per request in flight, each reused so its connection
 * stays open (keep-alive; the multi's connection cache keeps one idle connection per slot).
 * TLS peer and host verification are always on (ca_bundle: a CA file instead of the system
 * store). Every request is signed with AWS SigV4 by src/sigv4.c when it is queued (etl_http_add):
 * the signed headers are host (sent as signed), x-amz-date and the caller's header lines
 * (content-type, x-amz-target) plus x-amz-security-token when a session token is set. The service
 * accepts a signing time up to 5 minutes old; a request waits for the next etl_http_run only.
 *
 * Why our own signer and not libcurl's CURLOPT_AWS_SIGV4 (which signed every request from issue
 * 13 until issue 16): measured with callgrind (instructions, Release build, fauxqs, 5,000
 * messages; 612 receives and 500 DeleteMessageBatch):
 *  - libcurl's signer took ~326 k instructions a request, 47% of bench/bare_drain.lua's
 *    instructions: it derives the signing key on every request, feeds its HMAC key pads to the
 *    digest one byte at a time (~650 digest updates a request) and hex-encodes through its printf
 *    engine; src/sigv4.c takes ~47 k (two SHA-256 and one HMAC, the key derived once a day,
 *    the canonical request in one reused buffer; what remains is mostly hashing the body);
 *  - whole runs of 5,000 messages: bench/bare_drain.lua (64 receives in flight) 765.6 M ->
 *    444.0 M instructions, etlua --drain (scripts/login_etl.lua, durable Postgres) 1,847 M ->
 *    1,554 M: 64 k and 59 k a message less (a little of it in the requests every run makes
 *    anyway: an empty-queue bare drain went from 92.5 M to ~52 M).
 * Both are checked against AWS's published examples (tests/c/test_sigv4.c) and byte for byte
 * against botocore for requests sent through this transport (tests/sigv4/compare_botocore.py,
 * ctest sigv4.botocore). The easy handles keep their options between requests; only the body,
 * header lines and timeouts are set per request (the URL and its proxy when they change).
 * Proxy: http_proxy (https_proxy, HTTPS_PROXY for https), all_proxy, ALL_PROXY and no_proxy /
 * NO_PROXY, by curl's own rules, read once per URL rather than by curl at every request. */
#ifndef ETLUA_HTTP_H
#define ETLUA_HTTP_H

#include <stddef.h>

#define ETL_HTTP_MAX_BODY (16u * 1024u * 1024u) /* answers larger than this are refused */
#define ETL_HTTP_MAX_INFLIGHT 256u              /* most requests one transport holds */

enum etl_http_status {
    ETL_HTTP_OK = 0,    /* an HTTP answer arrived (any status code) */
    ETL_HTTP_NETWORK,   /* resolve, connect, TLS, reset, ... */
    ETL_HTTP_TIMEOUT,   /* connect or total timeout */
    ETL_HTTP_TOO_LARGE, /* answer body over ETL_HTTP_MAX_BODY */
    ETL_HTTP_NOMEM,
    ETL_HTTP_STOPPED, /* cut short because the process was asked to stop */
    ETL_HTTP_TLS,     /* the server's certificate was not verified: not retried */
    ETL_HTTP_BUSY     /* etl_http_add: every slot is taken */
};

/* Returns non-zero once the process should stop (etl_host_stop_requested); NULL = never. */
typedef int (*etl_http_stop_fn)(void);

struct etl_http_config {
    const char *ca_bundle; /* NULL: the system store */
    const char *region, *service, *access_key, *secret_key;
    const char *session_token; /* NULL: none */
    const char *connect_to;    /* NULL, or a CURLOPT_CONNECT_TO entry (tests reach a local
                                  listener under another host name with it) */
    size_t max_inflight;       /* 1..ETL_HTTP_MAX_INFLIGHT; one more slot is kept for
                                  ETL_HTTP_RESERVED requests */
};

/* Request flags. */
enum {
    ETL_HTTP_INTERRUPTIBLE = 1, /* cut with ETL_HTTP_STOPPED once stop() says so (see run) */
    ETL_HTTP_RESERVED = 2       /* may take the reserved slot (one blocking call at a time) */
};

/* One finished request, as handed out by etl_http_next / etl_http_take. */
struct etl_http_done {
    unsigned long long id; /* what etl_http_add gave */
    int tag;               /* what the caller gave etl_http_add */
    enum etl_http_status status;
    long http_status; /* on ETL_HTTP_OK: the status code */
    char *body;       /* on ETL_HTTP_OK: heap, NUL-terminated, len bytes (may hold NULs) */
    size_t len;
    char query_error[256]; /* x-amzn-query-error header ("Code;Sender"), "" when absent */
    char err[256];         /* otherwise: why, without secrets */
};

struct etl_http;

/* Creates a transport (the strings are copied; the secrets are wiped on close). Returns NULL
 * when curl cannot be initialised, max_inflight is out of range or memory runs out. */
struct etl_http *etl_http_open(const struct etl_http_config *cfg);

/* Queues one signed POST of body (copied) to url with the given "Name: value" header lines.
 * Returns ETL_HTTP_OK and sets *id (unique per transport, from 1), ETL_HTTP_BUSY when every slot
 * is taken, or ETL_HTTP_NOMEM with a message in err. Nothing is sent before etl_http_run. */
enum etl_http_status etl_http_add(struct etl_http *h, const char *url, const char *const *headers,
                                  size_t nheaders, const char *body, size_t len,
                                  long connect_timeout_ms, long total_timeout_ms, int flags,
                                  int tag, unsigned long long *id, char *err, size_t errlen);

/* A request is cut at a stop only once it has been in flight (sent) this long (etl_http_run). */
#define ETL_HTTP_STOP_GRACE_MS 1000

/* Drives the transfers until at least one more has finished or timeout_ms has passed (0: one
 * non-blocking step; < 0: no limit other than the requests' own timeouts). Sleeps in slices of
 * at most 100 ms, calling stop (may be NULL) between them; once it returns non-zero, every
 * interruptible request not yet sent, or sent ETL_HTTP_STOP_GRACE_MS ago or more, is finished
 * as ETL_HTTP_STOPPED (a younger one is most likely being answered: it runs on, and is cut once
 * it reaches that age; the age counts from the first run that drives the request, not from
 * etl_http_add). Returns the number of finished requests not yet handed out. */
size_t etl_http_run(struct etl_http *h, long timeout_ms, etl_http_stop_fn stop);

/* Cleanses (OPENSSL_cleanse) and frees a secret string, a credential or a header holding one,
 * and sets *s to NULL; NULL is fine. The transport's and the SQS client's copies go this way. */
void etl_http_free_secret(char **s);

/* Takes the oldest finished request into *out (free its body). Returns 1, or 0 when none. */
int etl_http_next(struct etl_http *h, struct etl_http_done *out);

/* Takes finished request id into *out, leaving the others in order. Returns 1, or 0. */
int etl_http_take(struct etl_http *h, unsigned long long id, struct etl_http_done *out);

/* Requests in flight plus finished ones not yet handed out. */
size_t etl_http_pending(const struct etl_http *h);

/* Aborts what is in flight, drops unclaimed answers, closes the connections, wipes the
 * secrets; NULL is accepted. */
void etl_http_close(struct etl_http *h);

#endif
