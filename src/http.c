/* http.c: the libcurl transport of etlua.sqs (see http.h): a multi handle with a fixed pool of
 * easy handles, each reused for the next request so its connection stays open, its options set
 * once and only the request's own (body, headers, timeouts; the URL, parsed once into a CURLU,
 * and its proxy when they change) set per request; the header lines live in the slot (no list
 * allocated per request).
 * Every request is signed here (src/sigv4.c) when it is queued. The event loop is curl's socket
 * interface on Linux's epoll (src/http_sockets.c: a wake-up costs the sockets that are ready,
 * not every socket in flight). Answers are collected into a bounded buffer; curl's failures
 * fold into network / timeout / tls / stopped. Knows nothing of SQS. */
#include "etlua/http.h"
#include "etlua/http_proxy.h"
#include "etlua/http_sockets.h"
#include "etlua/buf.h"
#include "etlua/sigv4.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include <curl/curl.h>
#include <openssl/crypto.h>

#define MAX_LINES (ETL_SIGV4_MAX_HEADERS + 5) /* + host, token, date, authorization, expect */
#define EXPECT_AT (1024u * 1024u) /* libcurl's threshold of Expect: 100-continue for a POST */

/* One slot of the pool: an easy handle kept across requests and the request it carries now. */
struct slot {
    CURL *easy;                        /* NULL until first used */
    struct curl_slist hdrs[MAX_LINES]; /* of the request in flight, over hdrtext */
    struct etl_buf hdrtext;            /* its header lines, each NUL-terminated (reused) */
    struct etl_buf body;               /* copy of the request body (reused) */
    struct etl_buf answer;             /* the answer's body, at most ETL_HTTP_MAX_BODY */
    char query_error[256];
    char errbuf[CURL_ERROR_SIZE];
    unsigned long long id;
    unsigned url_gen; /* the URL (and its proxy) the easy handle holds: h->url_gen's */
    CURLU *curlu;     /* that URL, parsed once (CURLOPT_CURLU): NULL until first set */
    int tag, busy, flags;
    long long started_ms; /* when first driven (sent), monotonic; 0 = not yet: the stop grace */
};

struct etl_http {
    CURLM *multi;
    struct etl_sigv4 *signer;
    char *ca_bundle, *token_header, *connect_to;
    char *url;      /* the URL of the last request, and its parts as signed: */
    char host[300]; /* the Host header value */
    char *path;     /* canonical path and query (etlua posts to "/") */
    char *query;
    char *proxy, *noproxy; /* for that URL, from the environment (proxy_of) */
    unsigned url_gen;      /* counts the URLs seen: a slot still set for another one */
    struct curl_slist *connect_list;
    struct slot *slots; /* nslots - 1 for anyone, the last one reserved */
    size_t nslots, inflight;
    unsigned long long last_id;
    struct etl_http_done *done; /* FIFO of finished requests: done[head..n) */
    size_t done_head, done_n, done_cap;
    struct etl_http_sockets *sockets; /* what the transport waits on (src/http_sockets.c) */
};

void etl_http_free_secret(char **s)
{
    if (*s) {
        OPENSSL_cleanse(*s, strlen(*s));
        free(*s);
        *s = NULL;
    }
}

static char *dup_opt(const char *s, int *ok)
{
    char *d = s ? strdup(s) : NULL;
    if (s && !d)
        *ok = 0;
    return d;
}

struct etl_http *etl_http_open(const struct etl_http_config *cfg)
{
    if (cfg->max_inflight == 0 || cfg->max_inflight > ETL_HTTP_MAX_INFLIGHT)
        return NULL;
    struct etl_http *h = calloc(1, sizeof *h);
    if (!h)
        return NULL;
    int ok = 1;
    h->nslots = cfg->max_inflight + 1;
    h->slots = calloc(h->nslots, sizeof *h->slots);
    h->multi = curl_multi_init();
    h->sockets = h->multi ? etl_http_sockets_new(h->multi) : NULL;
    h->ca_bundle = dup_opt(cfg->ca_bundle, &ok);
    h->connect_to = dup_opt(cfg->connect_to, &ok);
    h->signer =
        etl_sigv4_new(cfg->access_key, cfg->secret_key, cfg->region ? cfg->region : "us-east-1",
                      cfg->service ? cfg->service : "sqs");
    if (!h->signer)
        ok = 0;
    if (cfg->session_token && *cfg->session_token) {
        size_t n = strlen(cfg->session_token) + 32;
        if ((h->token_header = malloc(n)) != NULL)
            snprintf(h->token_header, n, "X-Amz-Security-Token: %s", cfg->session_token);
        else
            ok = 0;
    }
    if (h->connect_to && !(h->connect_list = curl_slist_append(NULL, h->connect_to)))
        ok = 0;
    if (!ok || !h->slots || !h->multi || !h->sockets) {
        etl_http_close(h);
        return NULL;
    }
    /* one idle connection per slot, so every concurrent request finds one next time */
    curl_multi_setopt(h->multi, CURLMOPT_MAXCONNECTS, (long)h->nslots);
    return h;
}

static size_t on_body(char *data, size_t size, size_t nmemb, void *ud)
{
    struct slot *s = ud;
    size_t n = size * nmemb;
    curl_off_t announced = -1;
    /* an answer that says its length is allocated once, not grown by doubling from 256 bytes */
    if (s->answer.cap == 0 &&
        curl_easy_getinfo(s->easy, CURLINFO_CONTENT_LENGTH_DOWNLOAD_T, &announced) == CURLE_OK &&
        announced > 0 && announced <= ETL_HTTP_MAX_BODY)
        etl_buf_reserve(&s->answer, (size_t)announced);
    return etl_buf_add(&s->answer, data, n) == 0 ? n : 0; /* 0 aborts: CURLE_WRITE_ERROR */
}

/* The x-amzn-query-error header of the answer just finished (its final answer: not a 100
 * Continue's) into s->query_error, read from curl's own store of the answer's headers once the
 * transfer is done: a header callback would be called for every header line of every answer. */
static void read_query_error(struct slot *s)
{
    struct curl_header *hd = NULL;
    s->query_error[0] = '\0';
    if (curl_easy_header(s->easy, "x-amzn-query-error", 0, CURLH_HEADER, -1, &hd) != CURLHE_OK ||
        !hd || !hd->value)
        return;
    const char *v = hd->value, *end = v + strlen(v);
    while (v < end && (*v == ' ' || *v == '\t'))
        v++;
    while (end > v && (end[-1] == '\r' || end[-1] == '\n' || end[-1] == ' '))
        end--;
    snprintf(s->query_error, sizeof s->query_error, "%.*s", (int)(end - v), v);
}

static enum etl_http_status fail(enum etl_http_status st, char *err, size_t errlen,
                                 const char *what, const char *detail)
{
    /* bounded pieces: a message fits the 256 bytes of etl_http_done.err */
    snprintf(err, errlen, "%.60s%s%.180s", what, detail && *detail ? ": " : "",
             detail ? detail : "");
    return st;
}

/* The proxy of the URL (src/http_proxy.c: the environment, by curl's own rules), read once. */
static int proxy_of(struct etl_http *h, int https)
{
    free(h->proxy);
    free(h->noproxy);
    return etl_http_proxy_from_env(https, &h->proxy, &h->noproxy);
}

/* The parts of url as signed (h->host, h->path, h->query), kept while the URL stays the same
 * (etlua posts every request to the endpoint's root), and its proxy. Returns 0, or -1 (not
 * http(s), no memory). */
static int url_parts(struct etl_http *h, const char *url)
{
    if (h->url && strcmp(h->url, url) == 0)
        return 0;
    h->url_gen++;
    free(h->url);
    free(h->path);
    h->url = h->path = h->query = NULL;
    size_t at;
    if (etl_sigv4_host_of(url, h->host, sizeof h->host, &at) != 0 ||
        proxy_of(h, strncasecmp(url, "https:", 6) == 0) != 0)
        return -1;
    const char *p = url + at;
    size_t plen = strcspn(p, "?#");
    const char *q = p[plen] == '?' ? p + plen + 1 : "";
    size_t qlen = strcspn(q, "#");
    /* path and query in one allocation: "path\0query\0" */
    if (!(h->path = malloc((plen ? plen : 1) + qlen + 2)) || !(h->url = strdup(url))) {
        free(h->path);
        h->path = NULL;
        return -1;
    }
    if (plen)
        memcpy(h->path, p, plen);
    else
        h->path[plen++] = '/';
    h->path[plen] = '\0';
    h->query = h->path + plen + 1;
    memcpy(h->query, q, qlen);
    h->query[qlen] = '\0';
    return 0;
}

/* Writes the header line a b (NUL-terminated) at o; returns the end. */
static char *put_line(char *o, const char *a, size_t alen, const char *b, size_t blen)
{
    memcpy(o, a, alen);
    memcpy(o + alen, b, blen);
    o[alen + blen] = '\0';
    return o + alen + blen + 1;
}

/* Signs the request in slot s and writes its header lines into the slot: Host (the value signed,
 * so libcurl sends exactly that), the caller's lines, the session token, X-Amz-Date and
 * Authorization, and an empty Expect (no 100-continue wait) for a body over 1 MiB only: libcurl
 * asks for 100-continue for no smaller one (EXPECT_100_THRESHOLD), no SQS request of etlua comes
 * near it (10 receipts), and every line is one more that libcurl compares with each header it
 * looks for, at every request. Returns 0, or -1 with err set. */
static int sign_headers(struct etl_http *h, struct slot *s, const char *const *headers,
                        size_t nheaders, char *err, size_t errlen)
{
    const char *lines[ETL_SIGV4_MAX_HEADERS];
    size_t n = 0;
    if (nheaders + 1 > ETL_SIGV4_MAX_HEADERS) {
        fail(ETL_HTTP_NOMEM, err, errlen, "too many header lines", NULL);
        return -1;
    }
    for (size_t i = 0; i < nheaders; i++)
        lines[n++] = headers[i];
    if (h->token_header)
        lines[n++] = h->token_header;
    struct etl_sigv4_request req = {.method = "POST",
                                    .host = h->host,
                                    .path = h->path,
                                    .query = h->query,
                                    .headers = lines,
                                    .nheaders = n,
                                    .body = s->body.p,
                                    .len = s->body.len,
                                    .now = time(NULL)};
    char date[17], auth[ETL_SIGV4_AUTH_MAX];
    if (etl_sigv4_sign(h->signer, &req, date, auth) != 0) {
        fail(ETL_HTTP_NOMEM, err, errlen, "cannot sign the request", NULL);
        return -1;
    }
    /* the lines, each NUL-terminated, written at once into the slot's buffer made large enough */
    static const char host_h[] = "Host: ", date_h[] = "X-Amz-Date: ", auth_h[] = "Authorization: ",
                      expect_h[] = "Expect:";
    struct etl_buf *t = &s->hdrtext;
    size_t len[ETL_SIGV4_MAX_HEADERS], hostlen = strlen(h->host), authlen = strlen(auth);
    int expect = s->body.len > EXPECT_AT;
    size_t need = sizeof host_h + hostlen + sizeof date_h + 16 + sizeof auth_h + authlen +
                  (expect ? sizeof expect_h : 0);
    for (size_t i = 0; i < n; i++)
        need += (len[i] = strlen(lines[i])) + 1;
    etl_buf_reset(t);
    if (etl_buf_reserve(t, need) != 0) {
        fail(ETL_HTTP_NOMEM, err, errlen, "out of memory", NULL);
        return -1;
    }
    char *at[MAX_LINES], *o = t->p;
    size_t k = 0;
    at[k++] = o;
    o = put_line(o, host_h, sizeof host_h - 1, h->host, hostlen);
    for (size_t i = 0; i < n; i++) {
        at[k++] = o;
        o = put_line(o, lines[i], len[i], "", 0);
    }
    at[k++] = o;
    o = put_line(o, date_h, sizeof date_h - 1, date, 16);
    at[k++] = o;
    o = put_line(o, auth_h, sizeof auth_h - 1, auth, authlen);
    if (expect) {
        at[k++] = o;
        o = put_line(o, expect_h, sizeof expect_h - 1, "", 0);
    }
    t->len = (size_t)(o - t->p) - 1; /* the last line's NUL is the buffer's own */
    for (size_t i = 0; i < k; i++) {
        s->hdrs[i].data = at[i];
        s->hdrs[i].next = i + 1 < k ? &s->hdrs[i + 1] : NULL;
    }
    return 0;
}

/* The options of a new easy handle that every request shares. */
static void setup_once(struct etl_http *h, struct slot *s)
{
    CURL *cu = s->easy;
    curl_easy_setopt(cu, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(cu, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(cu, CURLOPT_SSL_VERIFYPEER, 1L);
    curl_easy_setopt(cu, CURLOPT_SSL_VERIFYHOST, 2L);
    if (h->ca_bundle)
        curl_easy_setopt(cu, CURLOPT_CAINFO, h->ca_bundle);
    if (h->connect_list)
        curl_easy_setopt(cu, CURLOPT_CONNECT_TO, h->connect_list);
    curl_easy_setopt(cu, CURLOPT_TCP_KEEPALIVE, 1L);
    curl_easy_setopt(cu, CURLOPT_USERAGENT, "etlua/" ETLUA_VERSION);
    curl_easy_setopt(cu, CURLOPT_POST, 1L);
    curl_easy_setopt(cu, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(cu, CURLOPT_WRITEDATA, s);
    curl_easy_setopt(cu, CURLOPT_ERRORBUFFER, s->errbuf);
    curl_easy_setopt(cu, CURLOPT_PRIVATE, (void *)s);
    etl_http_sockets_adopt(h->sockets, cu);
}

/* The options of this request; the URL and its proxy only when the slot held another one (an
 * easy handle keeps its options between requests). */
static void setup(struct etl_http *h, struct slot *s, long connect_timeout_ms,
                  long total_timeout_ms)
{
    CURL *cu = s->easy;
    s->errbuf[0] = '\0';
    if (s->url_gen != h->url_gen) {
        /* the URL as a parsed handle: given a string, curl parses it again at every request
         * (~6 k instructions: the parse and the normalized URL written back) */
        CURLU *u = curl_url();
        if (u && curl_url_set(u, CURLUPART_URL, h->url, 0) != CURLUE_OK) {
            curl_url_cleanup(u);
            u = NULL;
        }
        curl_easy_setopt(cu, CURLOPT_CURLU, u);
        if (!u) /* not parsed: the string, for curl to say what is wrong with it */
            curl_easy_setopt(cu, CURLOPT_URL, h->url);
        curl_url_cleanup(s->curlu);
        s->curlu = u;
        curl_easy_setopt(cu, CURLOPT_PROXY, h->proxy);
        curl_easy_setopt(cu, CURLOPT_NOPROXY, h->noproxy);
        s->url_gen = h->url_gen;
    }
    curl_easy_setopt(cu, CURLOPT_CONNECTTIMEOUT_MS, connect_timeout_ms);
    curl_easy_setopt(cu, CURLOPT_TIMEOUT_MS, total_timeout_ms);
    curl_easy_setopt(cu, CURLOPT_POSTFIELDS, s->body.p ? s->body.p : "");
    curl_easy_setopt(cu, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)s->body.len);
    curl_easy_setopt(cu, CURLOPT_HTTPHEADER, s->hdrs);
}

static long long now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Makes room for need finished requests in the done queue (compacting it first). Every add
 * reserves a place for its own answer, so finish never has to allocate. */
static int reserve_done(struct etl_http *h, size_t need)
{
    if (h->done_head > 0) {
        memmove(h->done, h->done + h->done_head, (h->done_n - h->done_head) * sizeof *h->done);
        h->done_n -= h->done_head;
        h->done_head = 0;
    }
    if (need <= h->done_cap)
        return 0;
    size_t cap = h->done_cap ? h->done_cap : 16;
    while (cap < need)
        cap *= 2;
    struct etl_http_done *p = realloc(h->done, cap * sizeof *p);
    if (!p)
        return -1;
    h->done = p;
    h->done_cap = cap;
    return 0;
}

enum etl_http_status etl_http_add(struct etl_http *h, const char *url, const char *const *headers,
                                  size_t nheaders, const char *body, size_t len,
                                  long connect_timeout_ms, long total_timeout_ms, int flags,
                                  int tag, unsigned long long *id, char *err, size_t errlen)
{
    struct slot *s = NULL;
    size_t usable = flags & ETL_HTTP_RESERVED ? h->nslots : h->nslots - 1;
    for (size_t i = 0; i < usable && !s; i++)
        if (!h->slots[i].busy)
            s = &h->slots[i];
    if (!s)
        return fail(ETL_HTTP_BUSY, err, errlen, "every request slot is taken", NULL);
    if (reserve_done(h, (h->done_n - h->done_head) + h->inflight + 1) != 0)
        return fail(ETL_HTTP_NOMEM, err, errlen, "out of memory", NULL);
    if (!s->easy) {
        if (!(s->easy = curl_easy_init()))
            return fail(ETL_HTTP_NOMEM, err, errlen, "out of memory", NULL);
        setup_once(h, s);
    }
    if (url_parts(h, url) != 0)
        return fail(ETL_HTTP_NOMEM, err, errlen, "not an http(s) URL, or out of memory", NULL);
    etl_buf_reset(&s->body);
    if (etl_buf_add(&s->body, body, len) != 0)
        return fail(ETL_HTTP_NOMEM, err, errlen, "out of memory", NULL);
    if (sign_headers(h, s, headers, nheaders, err, errlen) != 0)
        return ETL_HTTP_NOMEM;
    etl_buf_free(&s->answer);
    s->answer.limit = ETL_HTTP_MAX_BODY;
    s->query_error[0] = '\0';
    s->flags = flags;
    setup(h, s, connect_timeout_ms, total_timeout_ms);
    if (curl_multi_add_handle(h->multi, s->easy) != CURLM_OK)
        return fail(ETL_HTTP_NOMEM, err, errlen, "cannot queue the request", NULL);
    s->busy = 1;
    s->tag = tag;
    s->started_ms = 0;
    s->id = ++h->last_id;
    h->inflight++;
    *id = s->id;
    return ETL_HTTP_OK;
}

/* Takes a slot out of the multi handle and queues its outcome: rc is curl's result, or
 * CURLE_ABORTED_BY_CALLBACK for a request cancelled because the process stops. */
static void finish(struct etl_http *h, struct slot *s, CURLcode rc)
{
    struct etl_http_done d;
    memset(&d, 0, sizeof d);
    d.id = s->id;
    d.tag = s->tag;
    char *err = d.err;
    size_t errlen = sizeof d.err;
    if (s->answer.over_limit)
        d.status = fail(ETL_HTTP_TOO_LARGE, err, errlen, "answer larger than 16 MiB", NULL);
    else if (s->answer.oom)
        d.status = fail(ETL_HTTP_NOMEM, err, errlen, "out of memory", NULL);
    else if (rc == CURLE_ABORTED_BY_CALLBACK)
        d.status = fail(ETL_HTTP_STOPPED, err, errlen, "stopped", NULL);
    else if (rc == CURLE_OPERATION_TIMEDOUT)
        d.status = fail(ETL_HTTP_TIMEOUT, err, errlen, "timed out", s->errbuf);
    else if (rc == CURLE_PEER_FAILED_VERIFICATION || rc == CURLE_SSL_CACERT_BADFILE)
        d.status = fail(ETL_HTTP_TLS, err, errlen, curl_easy_strerror(rc), s->errbuf);
    else if (rc != CURLE_OK)
        d.status = fail(ETL_HTTP_NETWORK, err, errlen, curl_easy_strerror(rc), s->errbuf);
    if (d.status == ETL_HTTP_OK) {
        curl_easy_getinfo(s->easy, CURLINFO_RESPONSE_CODE, &d.http_status);
        read_query_error(s);
        snprintf(d.query_error, sizeof d.query_error, "%s", s->query_error);
        d.body = etl_buf_take(&s->answer, &d.len); /* "" for an empty answer */
        if (!d.body)
            d.status = fail(ETL_HTTP_NOMEM, err, errlen, "out of memory", NULL);
    }
    etl_buf_free(&s->answer);
    curl_multi_remove_handle(h->multi, s->easy);
    s->busy = 0;
    h->inflight--;
    if (h->done_n == h->done_cap) /* room was reserved by add: only compaction is needed */
        reserve_done(h, h->done_n - h->done_head + 1);
    h->done[h->done_n++] = d;
}

size_t etl_http_run(struct etl_http *h, long timeout_ms, etl_http_stop_fn stop)
{
    long long deadline = timeout_ms > 0 ? now_ms() + timeout_ms : 0;
    size_t before = h->done_n - h->done_head;
    long wait = 0; /* the first look at the sockets never waits */
    for (;;) {
        CURLMsg *msg;
        int left;
        /* A request is sent by the first run that drives it, which may come long after it
         * was queued (the loop was busy in a commit): its age counts from there. At a stop, an
         * interruptible one never sent is cancelled unsent, so SQS never hands it anything. */
        int stopping = stop && h->inflight > 0 && stop();
        long long now = now_ms();
        for (size_t i = 0; i < h->nslots; i++) {
            struct slot *s = &h->slots[i];
            if (!s->busy || s->started_ms != 0)
                continue;
            if (stopping && (s->flags & ETL_HTTP_INTERRUPTIBLE))
                finish(h, s, CURLE_ABORTED_BY_CALLBACK);
            else
                s->started_ms = now;
        }
        etl_http_sockets_watch(h->sockets, wait);
        while ((msg = curl_multi_info_read(h->multi, &left)) != NULL) {
            struct slot *s = NULL;
            if (msg->msg != CURLMSG_DONE)
                continue;
            curl_easy_getinfo(msg->easy_handle, CURLINFO_PRIVATE, (char **)&s);
            if (s && s->busy)
                finish(h, s, msg->data.result);
        }
        if (stop && h->inflight > 0 && stop()) {
            /* Only long polls older than the grace are cut: a younger one is most likely being
             * answered (a receive on a non-empty queue takes milliseconds), and cutting it would
             * leave its messages invisible, with no receipt to release them, for the whole
             * visibility timeout. A long poll on an empty queue is cut once it reaches it. */
            now = now_ms();
            for (size_t i = 0; i < h->nslots; i++) {
                struct slot *s = &h->slots[i];
                if (s->busy && (s->flags & ETL_HTTP_INTERRUPTIBLE) && s->started_ms != 0 &&
                    now - s->started_ms >= ETL_HTTP_STOP_GRACE_MS)
                    finish(h, s, CURLE_ABORTED_BY_CALLBACK);
            }
        }
        if (h->done_n - h->done_head > before || h->inflight == 0 || timeout_ms == 0)
            break;
        wait = 100; /* a slice: stop is asked between slices */
        if (timeout_ms > 0) {
            long long rest = deadline - now_ms();
            if (rest <= 0)
                break;
            if (rest < wait)
                wait = (long)rest;
        }
        long t = -1; /* curl's next timer (a request's timeout, a retry of its own) */
        if (curl_multi_timeout(h->multi, &t) == CURLM_OK && t >= 0 && t < wait)
            wait = t;
    }
    return h->done_n - h->done_head;
}

int etl_http_next(struct etl_http *h, struct etl_http_done *out)
{
    if (h->done_head == h->done_n)
        return 0;
    *out = h->done[h->done_head++];
    return 1;
}

int etl_http_take(struct etl_http *h, unsigned long long id, struct etl_http_done *out)
{
    for (size_t i = h->done_head; i < h->done_n; i++) {
        if (h->done[i].id != id)
            continue;
        *out = h->done[i];
        memmove(h->done + i, h->done + i + 1, (h->done_n - i - 1) * sizeof *h->done);
        h->done_n--;
        return 1;
    }
    return 0;
}

size_t etl_http_pending(const struct etl_http *h)
{
    return h->inflight + (h->done_n - h->done_head);
}

void etl_http_close(struct etl_http *h)
{
    if (!h)
        return;
    for (size_t i = 0; h->slots && i < h->nslots; i++) {
        struct slot *s = &h->slots[i];
        if (s->busy && h->multi)
            curl_multi_remove_handle(h->multi, s->easy);
        if (s->easy)
            curl_easy_cleanup(s->easy);
        curl_url_cleanup(s->curlu);
        if (s->hdrtext.p) /* held the Authorization and the session token */
            OPENSSL_cleanse(s->hdrtext.p, s->hdrtext.cap);
        etl_buf_free(&s->hdrtext);
        etl_buf_free(&s->body);
        etl_buf_free(&s->answer);
    }
    for (size_t i = h->done_head; i < h->done_n; i++)
        free(h->done[i].body);
    if (h->multi)
        curl_multi_cleanup(h->multi); /* may still tell the set of closed sockets */
    etl_http_sockets_free(h->sockets);
    curl_slist_free_all(h->connect_list);
    free(h->done);
    free(h->slots);
    free(h->ca_bundle);
    free(h->connect_to);
    free(h->url);
    free(h->path);
    free(h->proxy);
    free(h->noproxy);
    etl_sigv4_free(h->signer);
    etl_http_free_secret(&h->token_header);
    free(h);
}
