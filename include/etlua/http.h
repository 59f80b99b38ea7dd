/* http.h: the transport of etlua.sqs. It moves bytes only: building requests, signing and parsing
 * answers live in sqs*.c and sigv4.c. Two transports drive the same request/response pairs:
 *  - etl_http: one libcurl easy handle per client, one blocking request at a time, reused so the
 *    connection stays open (keep-alive);
 *  - etl_http_multi: a curl multi handle with a small pool of easy handles (one per request in
 *    flight, reused), whose connection cache keeps one open connection per concurrent request. */
#ifndef ETLUA_HTTP_H
#define ETLUA_HTTP_H

#include <stddef.h>

#define ETL_HTTP_MAX_BODY (16u * 1024u * 1024u) /* answers larger than this are refused */

enum etl_http_status {
    ETL_HTTP_OK = 0,      /* an HTTP answer arrived (any status code) */
    ETL_HTTP_NETWORK,     /* resolve, connect, TLS, reset, ... */
    ETL_HTTP_TIMEOUT,     /* connect or total timeout */
    ETL_HTTP_TOO_LARGE,   /* answer body over ETL_HTTP_MAX_BODY */
    ETL_HTTP_NOMEM,
    ETL_HTTP_STOPPED,     /* cut short because the process was asked to stop */
    ETL_HTTP_TLS          /* the server's certificate was not verified: not retried */
};

/* Returns non-zero once the process should stop (etl_host_stop_requested); NULL = never. */
typedef int (*etl_http_stop_fn)(void);

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

/* The ca_bundle the transport was opened with (NULL: the system store), for a multi transport
 * of the same client. */
const char *etl_http_ca_bundle(const struct etl_http *h);

/* POSTs body to url with the given "Name: value" header lines. On ETL_HTTP_OK *resp holds the
 * answer (free it with etl_http_response_free); otherwise err holds a message without secrets.
 * stop: polled during the transfer (about every second and on each chunk); when it returns
 * non-zero the transfer is abandoned with ETL_HTTP_STOPPED. NULL = not interruptible. */
enum etl_http_status etl_http_post(struct etl_http *h, const char *url, const char *const *headers,
                                   size_t nheaders, const char *body, size_t len,
                                   long connect_timeout_ms, long total_timeout_ms,
                                   etl_http_stop_fn stop, struct etl_http_response *resp,
                                   char *err, size_t errlen);

void etl_http_response_free(struct etl_http_response *resp);

/* Closes the connection and frees the transport; NULL is accepted. */
void etl_http_close(struct etl_http *h);

/* ---- concurrent requests (curl multi) ------------------------------------------------------ */

#define ETL_HTTP_MULTI_MAX 256u /* most requests one multi transport holds in flight */

struct etl_http_multi;

/* One finished request, as handed out by etl_http_multi_next. */
struct etl_http_done {
    unsigned long long id;          /* what etl_http_multi_add gave */
    enum etl_http_status status;
    struct etl_http_response resp;  /* on ETL_HTTP_OK: owned by the caller (etl_http_response_free) */
    char err[256];                  /* otherwise: why, without secrets */
};

/* Creates a transport for at most max_inflight (1..ETL_HTTP_MULTI_MAX) concurrent requests.
 * Returns NULL when curl cannot be initialised. TLS verification is always on. */
struct etl_http_multi *etl_http_multi_open(const char *ca_bundle, size_t max_inflight);

/* Queues one POST (body is copied; headers are copied by libcurl). interruptible: the request is
 * cancelled with ETL_HTTP_STOPPED by etl_http_multi_run once its stop function says so (long
 * polls); other requests always run to their end or their timeout. Returns 0 and sets *id (ids
 * are unique per transport, from 1), or -1 with a message in err: every slot is busy
 * (ETL_HTTP_MULTI_MAX / max_inflight) or out of memory. Nothing is sent before
 * etl_http_multi_run. */
int etl_http_multi_add(struct etl_http_multi *m, const char *url, const char *const *headers,
                       size_t nheaders, const char *body, size_t len, long connect_timeout_ms,
                       long total_timeout_ms, int interruptible, unsigned long long *id,
                       char *err, size_t errlen);

/* A request is cut at a stop only once it has been in flight this long (see etl_http_multi_run). */
#define ETL_HTTP_STOP_GRACE_MS 500

/* Drives the transfers until at least one has finished or timeout_ms has passed (0: one
 * non-blocking step; < 0: no limit other than the requests' own timeouts). Sleeps in slices of
 * at most 100 ms, calling stop (may be NULL) between them; once it returns non-zero, every
 * interruptible request in flight for ETL_HTTP_STOP_GRACE_MS or more is finished as
 * ETL_HTTP_STOPPED (a younger one is most likely being answered: it runs on, and is cut once it
 * reaches that age). Returns the number of finished requests waiting for etl_http_multi_next. */
size_t etl_http_multi_run(struct etl_http_multi *m, long timeout_ms, etl_http_stop_fn stop);

/* Takes the oldest finished request into *out. Returns 1, or 0 when none is waiting. */
int etl_http_multi_next(struct etl_http_multi *m, struct etl_http_done *out);

/* Requests in flight (added, not yet finished). */
size_t etl_http_multi_inflight(const struct etl_http_multi *m);

/* Aborts what is in flight, drops unclaimed answers, closes the connections; NULL is accepted. */
void etl_http_multi_close(struct etl_http_multi *m);

#endif
