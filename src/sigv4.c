/* sigv4.c: AWS Signature Version 4 for the SQS transport (include/etlua/sigv4.h): the canonical
 * request and the string to sign written into one reused buffer, SHA-256 and HMAC-SHA-256 from
 * OpenSSL (EVP_MD, EVP_MAC: no crypto of our own), the signing key derived once a day.
 *
 * Why not libcurl's CURLOPT_AWS_SIGV4, which signed every request before: measured with
 * callgrind on a drain of 5,000 messages (bench/bare_drain.lua, fauxqs, 1,112 requests), it
 * took ~326 k instructions a request, 47% of the whole client (~72 k a message): it derives the
 * signing key for every request, and its HMAC feeds the 64-byte key pads to the digest one byte
 * at a time (~650 digest updates a request), and its hex output goes through its printf engine
 * byte by byte. This signer keeps the fetched SHA-256, its digest context, the day's keyed HMAC
 * context and its buffer, so a request costs two digests and one HMAC (the figures after the
 * change: include/etlua/http.h). The forms follow the AWS SigV4 documentation; tests/c/test_sigv4.c
 * checks the published examples and tests/sigv4/compare_botocore.py checks requests sent by the
 * transport byte for byte against botocore. */
#include "etlua/sigv4.h"
#include "etlua/buf.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/params.h>

struct etl_sigv4 {
    char *access_key, *region, *service;
    char *ksecret; /* "AWS4" + secret: the first key of the derivation */
    size_t ksecret_len;
    EVP_MD *md;         /* SHA-256, fetched once */
    EVP_MD_CTX *dctx;   /* reused for every digest */
    EVP_MAC_CTX *mac;   /* keyed with the signing key of key_date */
    EVP_MAC_CTX *chain; /* scratch for the daily derivation */
    char key_date[9];   /* "YYYYMMDD" of the signing key, "" before the first */
    time_t last_now;    /* the second amz_date was formatted for */
    char amz_date[17];
    struct etl_buf text; /* the canonical request, then the string to sign */
};

static char *dup_str(const char *s, int *ok)
{
    char *d = s ? strdup(s) : NULL;
    if (!d)
        *ok = 0;
    return d;
}

void etl_sigv4_free(struct etl_sigv4 *s)
{
    if (!s)
        return;
    if (s->ksecret) {
        OPENSSL_cleanse(s->ksecret, s->ksecret_len);
        free(s->ksecret);
    }
    free(s->access_key);
    free(s->region);
    free(s->service);
    EVP_MAC_CTX_free(s->mac); /* frees the key material it holds */
    EVP_MAC_CTX_free(s->chain);
    EVP_MD_CTX_free(s->dctx);
    EVP_MD_free(s->md);
    if (s->text.p)
        OPENSSL_cleanse(s->text.p, s->text.cap);
    etl_buf_free(&s->text);
    free(s);
}

static EVP_MAC_CTX *hmac_ctx_new(void)
{
    EVP_MAC *mac = EVP_MAC_fetch(NULL, "HMAC", NULL);
    if (!mac)
        return NULL;
    EVP_MAC_CTX *ctx = EVP_MAC_CTX_new(mac);
    EVP_MAC_free(mac); /* the context keeps its own reference */
    OSSL_PARAM params[2] = {
        OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST, (char *)"SHA256", 0),
        OSSL_PARAM_construct_end()};
    if (ctx && !EVP_MAC_CTX_set_params(ctx, params)) {
        EVP_MAC_CTX_free(ctx);
        return NULL;
    }
    return ctx;
}

struct etl_sigv4 *etl_sigv4_new(const char *access_key, const char *secret_key, const char *region,
                                const char *service)
{
    struct etl_sigv4 *s = calloc(1, sizeof *s);
    if (!s)
        return NULL;
    int ok = 1;
    s->access_key = dup_str(access_key, &ok);
    s->region = dup_str(region, &ok);
    s->service = dup_str(service, &ok);
    size_t sl = secret_key ? strlen(secret_key) : 0;
    if (ok && secret_key && (s->ksecret = malloc(sl + 5)) != NULL) {
        memcpy(s->ksecret, "AWS4", 4);
        memcpy(s->ksecret + 4, secret_key, sl + 1);
        s->ksecret_len = sl + 4;
    } else {
        ok = 0;
    }
    s->md = EVP_MD_fetch(NULL, "SHA256", NULL);
    s->dctx = EVP_MD_CTX_new();
    s->mac = hmac_ctx_new();
    s->chain = hmac_ctx_new();
    s->last_now = (time_t)-1;
    if (!ok || !s->md || !s->dctx || !s->mac || !s->chain) {
        etl_sigv4_free(s);
        return NULL;
    }
    return s;
}

static int digest(struct etl_sigv4 *s, const void *data, size_t len, unsigned char out[32])
{
    unsigned int n = 0;
    return EVP_DigestInit_ex(s->dctx, s->md, NULL) && EVP_DigestUpdate(s->dctx, data, len) &&
                   EVP_DigestFinal_ex(s->dctx, out, &n) && n == 32
               ? 0
               : -1;
}

/* HMAC-SHA-256(key, msg) on ctx; key NULL: the key ctx already holds. */
static int hmac(EVP_MAC_CTX *ctx, const void *key, size_t keylen, const void *msg, size_t len,
                unsigned char out[32])
{
    size_t n = 0;
    return EVP_MAC_init(ctx, key, keylen, NULL) && EVP_MAC_update(ctx, msg, len) &&
                   EVP_MAC_final(ctx, out, &n, 32) && n == 32
               ? 0
               : -1;
}

/* Keys s->mac with the signing key of date ("YYYYMMDD"): HMAC chain from "AWS4" + secret over
 * the date, the region, the service and "aws4_request". */
static int derive_key(struct etl_sigv4 *s, const char *date)
{
    unsigned char k1[32], k2[32];
    int bad = hmac(s->chain, s->ksecret, s->ksecret_len, date, 8, k1) != 0 ||
              hmac(s->chain, k1, 32, s->region, strlen(s->region), k2) != 0 ||
              hmac(s->chain, k2, 32, s->service, strlen(s->service), k1) != 0 ||
              hmac(s->chain, k1, 32, "aws4_request", 12, k2) != 0 ||
              !EVP_MAC_init(s->mac, k2, 32, NULL);
    OPENSSL_cleanse(k1, sizeof k1);
    OPENSSL_cleanse(k2, sizeof k2);
    if (bad) {
        s->key_date[0] = '\0';
        return -1;
    }
    memcpy(s->key_date, date, 8);
    s->key_date[8] = '\0';
    return 0;
}

/* One caller header line split into its lowercase-able name and trimmed value. */
struct hdr {
    const char *name, *value;
    size_t nlen, vlen;
};

static int hdr_cmp(const struct hdr *a, const struct hdr *b)
{
    size_t n = a->nlen < b->nlen ? a->nlen : b->nlen;
    int c = strncasecmp(a->name, b->name, n);
    return c ? c : (a->nlen > b->nlen) - (a->nlen < b->nlen);
}

/* Writes s[0..n) lowercased at o; returns the end. */
static char *put_lower(char *o, const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++)
        o[i] = (char)tolower((unsigned char)s[i]);
    return o + n;
}

/* Writes a header value at o with inner runs of spaces folded to one (it is already trimmed);
 * returns the end. */
static char *put_value(char *o, const char *v, size_t n)
{
    const char *end = v + n;
    while (v < end) {
        const char *sp = memchr(v, ' ', (size_t)(end - v));
        size_t k = sp ? (size_t)(sp - v) + 1 : (size_t)(end - v);
        memcpy(o, v, k);
        o += k;
        v += k;
        while (sp && v < end && *v == ' ')
            v++;
    }
    return o;
}

static char *put(char *o, const char *s, size_t n)
{
    memcpy(o, s, n);
    return o + n;
}

static const char *format_date(struct etl_sigv4 *s, time_t now)
{
    if (now != s->last_now) {
        struct tm tm;
        if (!gmtime_r(&now, &tm) ||
            strftime(s->amz_date, sizeof s->amz_date, "%Y%m%dT%H%M%SZ", &tm) != 16)
            return NULL;
        s->last_now = now;
    }
    return s->amz_date;
}

int etl_sigv4_sign(struct etl_sigv4 *s, const struct etl_sigv4_request *req, char amz_date[17],
                   char auth[ETL_SIGV4_AUTH_MAX])
{
    if (req->nheaders > ETL_SIGV4_MAX_HEADERS)
        return -1;
    const char *date = format_date(s, req->now);
    if (!date || (strncmp(s->key_date, date, 8) != 0 && derive_key(s, date) != 0))
        return -1;
    memcpy(amz_date, date, 17);

    /* the canonical headers: the caller's lines, host and x-amz-date, sorted by name */
    struct hdr h[ETL_SIGV4_MAX_HEADERS + 2];
    size_t n = 0;
    h[n++] = (struct hdr){"host", req->host, 4, strlen(req->host)};
    h[n++] = (struct hdr){"x-amz-date", date, 10, 16};
    for (size_t i = 0; i < req->nheaders; i++) {
        const char *line = req->headers[i], *colon = strchr(line, ':');
        if (!colon || colon == line)
            return -1;
        const char *v = colon + 1, *end = v + strlen(v);
        while (*v == ' ' || *v == '\t')
            v++;
        while (end > v && (end[-1] == ' ' || end[-1] == '\t'))
            end--;
        struct hdr x = {line, v, (size_t)(colon - line), (size_t)(end - v)};
        size_t j = n++;
        for (; j > 0 && hdr_cmp(&h[j - 1], &x) > 0; j--)
            h[j] = h[j - 1];
        h[j] = x;
    }

    unsigned char md[32];
    char hex[65];
    if (digest(s, req->body ? req->body : "", req->len, md) != 0)
        return -1;
    etl_hex(hex, md, 32, 0);

    /* the canonical request, written at once into the buffer made large enough for it */
    struct etl_buf *b = &s->text;
    size_t mlen = strlen(req->method), plen = strlen(req->path), qlen = strlen(req->query);
    size_t need = mlen + plen + qlen + 3 + 1 + 1 + 64, names = 0;
    for (size_t i = 0; i < n; i++) {
        need += h[i].nlen + h[i].vlen + 2;
        names += h[i].nlen + 1;
    }
    need += names;
    etl_buf_reset(b);
    if (etl_buf_reserve(b, need) != 0)
        return -1;
    char *c = b->p;
    c = put(c, req->method, mlen);
    *c++ = '\n';
    c = put(c, req->path, plen);
    *c++ = '\n';
    c = put(c, req->query, qlen);
    *c++ = '\n';
    for (size_t i = 0; i < n; i++) {
        c = put_lower(c, h[i].name, h[i].nlen);
        *c++ = ':';
        c = put_value(c, h[i].value, h[i].vlen);
        *c++ = '\n';
    }
    *c++ = '\n';
    size_t signed_at = (size_t)(c - b->p);
    for (size_t i = 0; i < n; i++) {
        if (i)
            *c++ = ';';
        c = put_lower(c, h[i].name, h[i].nlen);
    }
    size_t signed_len = (size_t)(c - b->p) - signed_at;
    *c++ = '\n';
    c = put(c, hex, 64);
    b->len = (size_t)(c - b->p);
    b->p[b->len] = '\0';
    if (digest(s, b->p, b->len, md) != 0)
        return -1;
    etl_hex(hex, md, 32, 0);

    /* the Authorization value is written now, while the signed header list is in the buffer */
    need = 28 + strlen(s->access_key) + 1 + 8 + 1 + strlen(s->region) + 1 + strlen(s->service) +
           29 + signed_len + 12 + 64 + 1;
    if (need > ETL_SIGV4_AUTH_MAX)
        return -1;
    char *o = auth;
    o = put(o, "AWS4-HMAC-SHA256 Credential=", 28);
    o = put(o, s->access_key, strlen(s->access_key));
    o = put(o, "/", 1);
    o = put(o, date, 8);
    o = put(o, "/", 1);
    o = put(o, s->region, strlen(s->region));
    o = put(o, "/", 1);
    o = put(o, s->service, strlen(s->service));
    o = put(o, "/aws4_request, SignedHeaders=", 29);
    o = put(o, b->p + signed_at, signed_len);
    o = put(o, ", Signature=", 12);

    /* the string to sign, in the same buffer: its scope is the Credential's, from "date/" on */
    const char *scope = auth + 28 + strlen(s->access_key) + 1;
    size_t scope_len = 8 + 1 + strlen(s->region) + 1 + strlen(s->service) + 13;
    etl_buf_reset(b);
    etl_buf_add(b, "AWS4-HMAC-SHA256\n", 17);
    etl_buf_add(b, date, 16);
    etl_buf_add(b, "\n", 1);
    etl_buf_add(b, scope, scope_len);
    etl_buf_add(b, "\n", 1);
    etl_buf_add(b, hex, 64);
    if (b->oom || hmac(s->mac, NULL, 0, b->p, b->len, md) != 0)
        return -1;
    etl_hex(o, md, 32, 0);
    return 0;
}

int etl_sigv4_host_of(const char *url, char *host, size_t hostlen, size_t *path_at)
{
    const char *sep = strstr(url, "://");
    if (!sep)
        return -1;
    size_t slen = (size_t)(sep - url);
    const char *default_port;
    if (slen == 5 && strncasecmp(url, "https", 5) == 0)
        default_port = "443";
    else if (slen == 4 && strncasecmp(url, "http", 4) == 0)
        default_port = "80";
    else
        return -1;
    const char *auth = sep + 3;
    size_t alen = strcspn(auth, "/?#");
    const char *at;
    while ((at = memchr(auth, '@', alen)) != NULL) { /* user info: up to the last '@' */
        alen -= (size_t)(at + 1 - auth);
        auth = at + 1;
    }
    const char *end = auth + alen, *colon = NULL;
    if (alen && auth[0] == '[') {
        const char *rb = memchr(auth, ']', alen);
        if (!rb || (rb + 1 != end && rb[1] != ':'))
            return -1;
        colon = rb + 1 != end ? rb + 1 : NULL;
    } else {
        colon = memchr(auth, ':', alen);
    }
    size_t hl = colon ? (size_t)(colon - auth) : alen;
    if (hl == 0)
        return -1;
    const char *port = colon ? colon + 1 : end;
    size_t pl = (size_t)(end - port);
    for (size_t i = 0; i < pl; i++)
        if (!isdigit((unsigned char)port[i]))
            return -1;
    int keep_port = pl > 0 && !(pl == strlen(default_port) && memcmp(port, default_port, pl) == 0);
    if (hl + (keep_port ? pl + 1 : 0) + 1 > hostlen)
        return -1;
    for (size_t i = 0; i < hl; i++)
        host[i] = (char)tolower((unsigned char)auth[i]);
    size_t o = hl;
    if (keep_port) {
        host[o++] = ':';
        memcpy(host + o, port, pl);
        o += pl;
    }
    host[o] = '\0';
    *path_at = (size_t)(end - url);
    return 0;
}
