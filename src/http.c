/* http.c: libcurl transports for etlua.sqs (see http.h). The blocking one reuses one easy handle
 * for every request of a client so libcurl keeps the connection alive; the concurrent one keeps a
 * pool of easy handles on a multi handle (whose connection cache outlives each request). Both
 * share the request setup, collect answers into a bounded buffer and fold curl's failures into
 * network / timeout / stopped. Knows nothing of SQS. */
#include "etlua/http.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

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

const char *etl_http_ca_bundle(const struct etl_http *h)
{
    return h ? h->ca_bundle : NULL;
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
    etl_http_stop_fn stop; /* polled by on_progress; NULL = not interruptible */
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

static int on_progress(void *ud, curl_off_t dltotal, curl_off_t dlnow, curl_off_t ultotal,
                       curl_off_t ulnow)
{
    (void)dltotal, (void)dlnow, (void)ultotal, (void)ulnow;
    const struct collect *c = ud;
    return c->stop && c->stop() ? 1 : 0; /* non-zero: CURLE_ABORTED_BY_CALLBACK */
}

/* The "Name: value" lines plus "Expect:" (no 100-continue round trip) as a curl list, or NULL
 * when out of memory. */
static struct curl_slist *header_list(const char *const *headers, size_t nheaders)
{
    struct curl_slist *list = NULL;
    for (size_t i = 0; i <= nheaders; i++) {
        struct curl_slist *l = curl_slist_append(list, i < nheaders ? headers[i] : "Expect:");
        if (!l) {
            curl_slist_free_all(list);
            return NULL;
        }
        list = l;
    }
    return list;
}

/* Sets every option of one POST on a fresh or reset easy handle. body must outlive the transfer. */
static void setup_easy(CURL *cu, const char *ca_bundle, const char *url, struct curl_slist *list,
                       const char *body, size_t len, long connect_timeout_ms,
                       long total_timeout_ms, struct collect *c, char *errbuf)
{
    errbuf[0] = '\0';
    curl_easy_setopt(cu, CURLOPT_URL, url);
    curl_easy_setopt(cu, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(cu, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(cu, CURLOPT_SSL_VERIFYPEER, 1L);
    curl_easy_setopt(cu, CURLOPT_SSL_VERIFYHOST, 2L);
    if (ca_bundle)
        curl_easy_setopt(cu, CURLOPT_CAINFO, ca_bundle);
    curl_easy_setopt(cu, CURLOPT_CONNECTTIMEOUT_MS, connect_timeout_ms);
    curl_easy_setopt(cu, CURLOPT_TIMEOUT_MS, total_timeout_ms);
    curl_easy_setopt(cu, CURLOPT_TCP_KEEPALIVE, 1L);
    curl_easy_setopt(cu, CURLOPT_POST, 1L);
    curl_easy_setopt(cu, CURLOPT_POSTFIELDS, body ? body : "");
    curl_easy_setopt(cu, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)len);
    curl_easy_setopt(cu, CURLOPT_HTTPHEADER, list);
    curl_easy_setopt(cu, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(cu, CURLOPT_WRITEDATA, c);
    curl_easy_setopt(cu, CURLOPT_HEADERFUNCTION, on_header);
    curl_easy_setopt(cu, CURLOPT_HEADERDATA, c);
    curl_easy_setopt(cu, CURLOPT_ERRORBUFFER, errbuf);
    if (c->stop) {
        curl_easy_setopt(cu, CURLOPT_NOPROGRESS, 0L);
        curl_easy_setopt(cu, CURLOPT_XFERINFOFUNCTION, on_progress);
        curl_easy_setopt(cu, CURLOPT_XFERINFODATA, c);
    }
}

/* Turns the end of a transfer into a status; on ETL_HTTP_OK resp has its status code and a
 * non-NULL body, otherwise resp is freed and err says why. */
static enum etl_http_status conclude(CURL *cu, CURLcode rc, struct collect *c,
                                     const char *errbuf, char *err, size_t errlen)
{
    struct etl_http_response *resp = c->resp;
    enum etl_http_status st = ETL_HTTP_OK;
    if (c->too_large)
        st = fail(ETL_HTTP_TOO_LARGE, err, errlen, "answer larger than 16 MiB", NULL);
    else if (c->nomem)
        st = fail(ETL_HTTP_NOMEM, err, errlen, "out of memory", NULL);
    else if (rc == CURLE_ABORTED_BY_CALLBACK)
        st = fail(ETL_HTTP_STOPPED, err, errlen, "stopped", NULL);
    else if (rc == CURLE_OPERATION_TIMEDOUT)
        st = fail(ETL_HTTP_TIMEOUT, err, errlen, "timed out", errbuf);
    else if (rc == CURLE_PEER_FAILED_VERIFICATION || rc == CURLE_SSL_CACERT_BADFILE)
        st = fail(ETL_HTTP_TLS, err, errlen, curl_easy_strerror(rc), errbuf);
    else if (rc != CURLE_OK)
        st = fail(ETL_HTTP_NETWORK, err, errlen, curl_easy_strerror(rc), errbuf);
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

enum etl_http_status etl_http_post(struct etl_http *h, const char *url, const char *const *headers,
                                   size_t nheaders, const char *body, size_t len,
                                   long connect_timeout_ms, long total_timeout_ms,
                                   etl_http_stop_fn stop, struct etl_http_response *resp,
                                   char *err, size_t errlen)
{
    memset(resp, 0, sizeof *resp);
    struct collect c = {.resp = resp, .stop = stop};
    struct curl_slist *list = header_list(headers, nheaders);
    if (!list)
        return fail(ETL_HTTP_NOMEM, err, errlen, "out of memory", NULL);
    CURL *cu = h->curl;
    curl_easy_reset(cu); /* keeps the connection cache: reuse survives */
    setup_easy(cu, h->ca_bundle, url, list, body, len, connect_timeout_ms, total_timeout_ms, &c,
               h->errbuf);
    CURLcode rc = curl_easy_perform(cu);
    curl_easy_setopt(cu, CURLOPT_HTTPHEADER, NULL);
    curl_slist_free_all(list);
    return conclude(cu, rc, &c, h->errbuf, err, errlen);
}

/* ---- concurrent requests ------------------------------------------------------------------- */

/* One slot of the pool: an easy handle kept across requests, and the buffers of the request
 * it carries now. */
struct slot {
    CURL *easy;                /* NULL until first used */
    struct curl_slist *hdrs;   /* of the request in flight */
    char *body;                /* copy of the request body, reused (grows only) */
    size_t body_cap;
    struct etl_http_response resp;
    struct collect col;
    char errbuf[CURL_ERROR_SIZE];
    unsigned long long id;
    int busy, interruptible;
    long long started_ms; /* when it was queued (monotonic), for the stop grace */
};

static long long now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

struct etl_http_multi {
    CURLM *multi;
    char *ca_bundle;
    struct slot *slots;        /* fixed array: collect.resp points into it */
    size_t nslots, inflight;
    unsigned long long last_id;
    struct etl_http_done *done; /* FIFO of finished requests: done[head..n) */
    size_t done_head, done_n, done_cap;
};

struct etl_http_multi *etl_http_multi_open(const char *ca_bundle, size_t max_inflight)
{
    if (max_inflight == 0 || max_inflight > ETL_HTTP_MULTI_MAX)
        return NULL;
    struct etl_http_multi *m = calloc(1, sizeof *m);
    if (!m)
        return NULL;
    m->slots = calloc(max_inflight, sizeof *m->slots);
    m->nslots = max_inflight;
    m->multi = curl_multi_init();
    if (!m->slots || !m->multi || (ca_bundle && !(m->ca_bundle = strdup(ca_bundle)))) {
        etl_http_multi_close(m);
        return NULL;
    }
    /* keep one idle connection per slot, so every concurrent request finds one next time */
    curl_multi_setopt(m->multi, CURLMOPT_MAXCONNECTS, (long)max_inflight);
    return m;
}

size_t etl_http_multi_inflight(const struct etl_http_multi *m)
{
    return m->inflight;
}

/* Makes room for need finished requests in the done queue (compacting it first). Every add
 * reserves a place for its own answer, so finish never has to allocate. */
static int reserve_done(struct etl_http_multi *m, size_t need)
{
    if (m->done_head > 0) {
        memmove(m->done, m->done + m->done_head, (m->done_n - m->done_head) * sizeof *m->done);
        m->done_n -= m->done_head;
        m->done_head = 0;
    }
    if (need <= m->done_cap)
        return 0;
    size_t cap = m->done_cap ? m->done_cap : 16;
    while (cap < need)
        cap *= 2;
    struct etl_http_done *p = realloc(m->done, cap * sizeof *p);
    if (!p)
        return -1;
    m->done = p;
    m->done_cap = cap;
    return 0;
}

/* Takes a slot out of the multi handle and records its outcome. */
static void finish(struct etl_http_multi *m, struct slot *s, enum etl_http_status st,
                   const char *why)
{
    curl_multi_remove_handle(m->multi, s->easy);
    curl_easy_setopt(s->easy, CURLOPT_HTTPHEADER, NULL);
    curl_slist_free_all(s->hdrs);
    s->hdrs = NULL;
    struct etl_http_done d;
    memset(&d, 0, sizeof d);
    d.id = s->id;
    d.status = st;
    if (st == ETL_HTTP_OK)
        d.resp = s->resp; /* the body moves to the caller */
    else
        etl_http_response_free(&s->resp);
    snprintf(d.err, sizeof d.err, "%s", st == ETL_HTTP_OK ? "" : why);
    memset(&s->resp, 0, sizeof s->resp);
    s->busy = 0;
    m->inflight--;
    if (m->done_n == m->done_cap) /* room was reserved by add: only compaction is needed */
        reserve_done(m, m->done_n - m->done_head + 1);
    m->done[m->done_n++] = d;
}

int etl_http_multi_add(struct etl_http_multi *m, const char *url, const char *const *headers,
                       size_t nheaders, const char *body, size_t len, long connect_timeout_ms,
                       long total_timeout_ms, int interruptible, unsigned long long *id,
                       char *err, size_t errlen)
{
    struct slot *s = NULL;
    for (size_t i = 0; i < m->nslots && !s; i++)
        if (!m->slots[i].busy)
            s = &m->slots[i];
    if (!s)
        return fail(ETL_HTTP_NOMEM, err, errlen, "too many requests in flight", NULL), -1;
    if (reserve_done(m, (m->done_n - m->done_head) + m->inflight + 1) != 0)
        return fail(ETL_HTTP_NOMEM, err, errlen, "out of memory", NULL), -1;
    if (!s->easy && !(s->easy = curl_easy_init()))
        return fail(ETL_HTTP_NOMEM, err, errlen, "cannot create a curl handle", NULL), -1;
    if (len + 1 > s->body_cap) {
        char *p = realloc(s->body, len + 1);
        if (!p)
            return fail(ETL_HTTP_NOMEM, err, errlen, "out of memory", NULL), -1;
        s->body = p;
        s->body_cap = len + 1;
    }
    if (len)
        memcpy(s->body, body, len);
    s->body[len] = '\0';
    struct curl_slist *list = header_list(headers, nheaders);
    if (!list)
        return fail(ETL_HTTP_NOMEM, err, errlen, "out of memory", NULL), -1;
    memset(&s->resp, 0, sizeof s->resp);
    memset(&s->col, 0, sizeof s->col);
    s->col.resp = &s->resp;
    curl_easy_reset(s->easy);
    setup_easy(s->easy, m->ca_bundle, url, list, s->body, len, connect_timeout_ms,
               total_timeout_ms, &s->col, s->errbuf);
    curl_easy_setopt(s->easy, CURLOPT_PRIVATE, (void *)s);
    if (curl_multi_add_handle(m->multi, s->easy) != CURLM_OK) {
        curl_easy_setopt(s->easy, CURLOPT_HTTPHEADER, NULL);
        curl_slist_free_all(list);
        return fail(ETL_HTTP_NOMEM, err, errlen, "cannot queue the request", NULL), -1;
    }
    s->hdrs = list;
    s->busy = 1;
    s->interruptible = interruptible;
    s->started_ms = now_ms();
    s->id = ++m->last_id;
    m->inflight++;
    *id = s->id;
    return 0;
}

/* Moves every transfer curl reports as finished into the done queue. */
static void reap(struct etl_http_multi *m)
{
    CURLMsg *msg;
    int left;
    while ((msg = curl_multi_info_read(m->multi, &left)) != NULL) {
        if (msg->msg != CURLMSG_DONE)
            continue;
        CURL *cu = msg->easy_handle;
        CURLcode rc = msg->data.result;
        struct slot *s = NULL;
        curl_easy_getinfo(cu, CURLINFO_PRIVATE, (char **)&s);
        if (!s || !s->busy)
            continue;
        char why[256];
        enum etl_http_status st = conclude(cu, rc, &s->col, s->errbuf, why, sizeof why);
        finish(m, s, st, why);
    }
}

size_t etl_http_multi_run(struct etl_http_multi *m, long timeout_ms, etl_http_stop_fn stop)
{
    long long deadline = timeout_ms > 0 ? now_ms() + timeout_ms : 0;
    for (;;) {
        int running = 0;
        curl_multi_perform(m->multi, &running);
        reap(m);
        if (stop && m->inflight > 0 && stop()) {
            /* Only long polls older than the grace are cut: a younger one is most likely being
             * answered (a receive on a non-empty queue takes milliseconds), and cutting it would
             * leave its messages invisible, with no receipt to release them, for the whole
             * visibility timeout. A long poll on an empty queue is cut once it reaches it. */
            long long now = now_ms();
            for (size_t i = 0; i < m->nslots; i++) {
                struct slot *s = &m->slots[i];
                if (s->busy && s->interruptible && now - s->started_ms >= ETL_HTTP_STOP_GRACE_MS)
                    finish(m, s, ETL_HTTP_STOPPED, "stopped");
            }
        }
        if (m->done_n > m->done_head || m->inflight == 0 || timeout_ms == 0)
            break;
        long slice = 100;
        if (timeout_ms > 0) {
            long long left = deadline - now_ms();
            if (left <= 0)
                break;
            if (left < slice)
                slice = (long)left;
        }
        curl_multi_poll(m->multi, NULL, 0, (int)slice, NULL);
    }
    return m->done_n - m->done_head;
}

int etl_http_multi_next(struct etl_http_multi *m, struct etl_http_done *out)
{
    if (m->done_head == m->done_n)
        return 0;
    *out = m->done[m->done_head++];
    return 1;
}

void etl_http_multi_close(struct etl_http_multi *m)
{
    if (!m)
        return;
    for (size_t i = 0; m->slots && i < m->nslots; i++) {
        struct slot *s = &m->slots[i];
        if (s->busy && m->multi)
            curl_multi_remove_handle(m->multi, s->easy);
        if (s->easy)
            curl_easy_cleanup(s->easy);
        curl_slist_free_all(s->hdrs);
        etl_http_response_free(&s->resp);
        free(s->body);
    }
    for (size_t i = m->done_head; i < m->done_n; i++)
        etl_http_response_free(&m->done[i].resp);
    if (m->multi)
        curl_multi_cleanup(m->multi);
    free(m->done);
    free(m->slots);
    free(m->ca_bundle);
    free(m);
}
