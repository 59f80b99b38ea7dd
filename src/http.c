/* http.c: libcurl transport for etlua.sqs (see http.h). One easy handle, reused for every request
 * of a client so libcurl keeps the connection alive; answers are collected into a bounded buffer;
 * curl's failures are folded into network / timeout. Knows nothing of SQS. */
#include "etlua/http.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <curl/curl.h>

struct etl_http {
    CURL *curl;
    char *ca_bundle;
    char errbuf[CURL_ERROR_SIZE];
};

struct etl_http *etl_http_open(const char *ca_bundle)
{
    struct etl_http *h = calloc(1, sizeof *h);
    if (!h)
        return NULL;
    h->curl = curl_easy_init();
    if (!h->curl || (ca_bundle && !(h->ca_bundle = strdup(ca_bundle)))) {
        etl_http_close(h);
        return NULL;
    }
    return h;
}

void etl_http_close(struct etl_http *h)
{
    if (!h)
        return;
    if (h->curl)
        curl_easy_cleanup(h->curl);
    free(h->ca_bundle);
    free(h);
}

void etl_http_response_free(struct etl_http_response *resp)
{
    free(resp->body);
    resp->body = NULL;
    resp->len = 0;
}

struct collect {
    struct etl_http_response *resp;
    size_t cap;
    int too_large, nomem;
};

static size_t on_body(char *data, size_t size, size_t nmemb, void *ud)
{
    struct collect *c = ud;
    size_t n = size * nmemb;
    struct etl_http_response *r = c->resp;
    if (n > ETL_HTTP_MAX_BODY - r->len) {
        c->too_large = 1;
        return 0; /* aborts the transfer with CURLE_WRITE_ERROR */
    }
    if (r->len + n + 1 > c->cap) {
        size_t cap = c->cap ? c->cap : 4096;
        while (cap < r->len + n + 1)
            cap *= 2;
        char *p = realloc(r->body, cap);
        if (!p) {
            c->nomem = 1;
            return 0;
        }
        r->body = p;
        c->cap = cap;
    }
    memcpy(r->body + r->len, data, n);
    r->len += n;
    r->body[r->len] = '\0';
    return n;
}

/* Copies the value of header line "Name: value\r\n" into dst when the name matches. */
static void header_value(const char *line, size_t len, const char *name, char *dst, size_t dstlen)
{
    size_t nlen = strlen(name);
    if (len <= nlen || line[nlen] != ':' || strncasecmp(line, name, nlen) != 0)
        return;
    const char *v = line + nlen + 1, *end = line + len;
    while (v < end && (*v == ' ' || *v == '\t'))
        v++;
    while (end > v && (end[-1] == '\r' || end[-1] == '\n' || end[-1] == ' '))
        end--;
    size_t vlen = (size_t)(end - v);
    if (vlen >= dstlen)
        vlen = dstlen - 1;
    memcpy(dst, v, vlen);
    dst[vlen] = '\0';
}

static size_t on_header(char *line, size_t size, size_t nmemb, void *ud)
{
    struct collect *c = ud;
    size_t n = size * nmemb;
    if (n >= 5 && strncmp(line, "HTTP/", 5) == 0) { /* a new answer (after 100 Continue) */
        c->resp->content_type[0] = '\0';
        c->resp->query_error[0] = '\0';
    }
    header_value(line, n, "content-type", c->resp->content_type, sizeof c->resp->content_type);
    header_value(line, n, "x-amzn-query-error", c->resp->query_error, sizeof c->resp->query_error);
    return n;
}

static enum etl_http_status fail(enum etl_http_status st, char *err, size_t errlen,
                                 const char *what, const char *detail)
{
    snprintf(err, errlen, "%s%s%s", what, detail && *detail ? ": " : "", detail ? detail : "");
    return st;
}

enum etl_http_status etl_http_post(struct etl_http *h, const char *url, const char *const *headers,
                                   size_t nheaders, const char *body, size_t len,
                                   long connect_timeout_ms, long total_timeout_ms,
                                   struct etl_http_response *resp, char *err, size_t errlen)
{
    memset(resp, 0, sizeof *resp);
    struct collect c = {.resp = resp};
    struct curl_slist *list = NULL;
    for (size_t i = 0; i < nheaders; i++) {
        struct curl_slist *l = curl_slist_append(list, headers[i]);
        if (!l) {
            curl_slist_free_all(list);
            return fail(ETL_HTTP_NOMEM, err, errlen, "out of memory", NULL);
        }
        list = l;
    }
    struct curl_slist *l = curl_slist_append(list, "Expect:"); /* no 100-continue round trip */
    if (l)
        list = l;

    CURL *cu = h->curl;
    curl_easy_reset(cu); /* keeps the connection cache: reuse survives */
    h->errbuf[0] = '\0';
    curl_easy_setopt(cu, CURLOPT_URL, url);
    curl_easy_setopt(cu, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(cu, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(cu, CURLOPT_SSL_VERIFYPEER, 1L);
    curl_easy_setopt(cu, CURLOPT_SSL_VERIFYHOST, 2L);
    if (h->ca_bundle)
        curl_easy_setopt(cu, CURLOPT_CAINFO, h->ca_bundle);
    curl_easy_setopt(cu, CURLOPT_CONNECTTIMEOUT_MS, connect_timeout_ms);
    curl_easy_setopt(cu, CURLOPT_TIMEOUT_MS, total_timeout_ms);
    curl_easy_setopt(cu, CURLOPT_TCP_KEEPALIVE, 1L);
    curl_easy_setopt(cu, CURLOPT_POST, 1L);
    curl_easy_setopt(cu, CURLOPT_POSTFIELDS, body ? body : "");
    curl_easy_setopt(cu, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)len);
    curl_easy_setopt(cu, CURLOPT_HTTPHEADER, list);
    curl_easy_setopt(cu, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(cu, CURLOPT_WRITEDATA, &c);
    curl_easy_setopt(cu, CURLOPT_HEADERFUNCTION, on_header);
    curl_easy_setopt(cu, CURLOPT_HEADERDATA, &c);
    curl_easy_setopt(cu, CURLOPT_ERRORBUFFER, h->errbuf);

    CURLcode rc = curl_easy_perform(cu);
    curl_easy_setopt(cu, CURLOPT_HTTPHEADER, NULL);
    curl_slist_free_all(list);

    enum etl_http_status st = ETL_HTTP_OK;
    if (c.too_large)
        st = fail(ETL_HTTP_TOO_LARGE, err, errlen, "answer larger than 16 MiB", NULL);
    else if (c.nomem)
        st = fail(ETL_HTTP_NOMEM, err, errlen, "out of memory", NULL);
    else if (rc == CURLE_OPERATION_TIMEDOUT)
        st = fail(ETL_HTTP_TIMEOUT, err, errlen, "timed out", h->errbuf);
    else if (rc != CURLE_OK)
        st = fail(ETL_HTTP_NETWORK, err, errlen, curl_easy_strerror(rc), h->errbuf);
    if (st != ETL_HTTP_OK) {
        etl_http_response_free(resp);
        return st;
    }
    curl_easy_getinfo(cu, CURLINFO_RESPONSE_CODE, &resp->status);
    if (!resp->body) { /* empty answer: still a valid NUL-terminated buffer */
        resp->body = calloc(1, 1);
        if (!resp->body)
            return fail(ETL_HTTP_NOMEM, err, errlen, "out of memory", NULL);
    }
    return ETL_HTTP_OK;
}
