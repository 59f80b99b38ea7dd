/* sigv4.c: AWS Signature Version 4 signing: the canonical request assembled from its parts
 * (src/sigv4_canonical.c), the string to sign, the signing key, the signature.
 * A function of its inputs: no clock, no network. Hashing and HMAC come from OpenSSL (EVP_MD and
 * EVP_MAC, neither deprecated in OpenSSL 3); we write no crypto of our own. The canonical forms
 * follow the AWS SigV4 documentation and are checked byte for byte against botocore
 * (tests/sigv4/compare_botocore.py).
 *
 * Speed (bench/README.md "Where the time goes"): OpenSSL 3's one-shot EVP_Digest() and HMAC()
 * look the algorithm up in the provider store on every call, which cost ~14 us per signature,
 * far more than the hashing itself. So each thread keeps, across calls, the fetched SHA-256, one
 * digest context and one HMAC context, and the signing key of the last (secret, date, region,
 * service): the four-HMAC key derivation runs once a day, not once a request. The key is
 * recognised by a SHA-256 fingerprint of the secret (no second copy of the secret is kept); the
 * cached key is the same value the chain would compute, so the output does not change. Buffers
 * start on the stack; only the returned Authorization value is allocated. When OpenSSL cannot
 * give the contexts, the one-shot calls are used as before. */
#include "etlua/sigv4_internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/params.h>

static const char hexdig[] = "0123456789abcdef";

static void to_hex(char *dst, const unsigned char *src, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        dst[2 * i] = hexdig[src[i] >> 4];
        dst[2 * i + 1] = hexdig[src[i] & 15];
    }
    dst[2 * n] = '\0';
}

/* What a thread keeps between signatures (see the top of the file). */
struct sig_state {
    int tried;             /* contexts asked of OpenSSL once */
    EVP_MD *md;            /* fetched SHA-256 */
    EVP_MD_CTX *mdctx;
    EVP_MAC_CTX *mac;      /* HMAC with SHA-256 */
    int have_key;
    unsigned char secret_fp[32]; /* SHA-256 of the secret the key was derived from */
    char scope[128];       /* "date/region/service" of the key */
    unsigned char key[32]; /* the signing key */
};

static _Thread_local struct sig_state st;

static void state_init(void)
{
    if (st.tried)
        return;
    st.tried = 1;
    st.md = EVP_MD_fetch(NULL, "SHA256", NULL);
    st.mdctx = EVP_MD_CTX_new();
    EVP_MAC *mac = EVP_MAC_fetch(NULL, "HMAC", NULL);
    if (mac) {
        st.mac = EVP_MAC_CTX_new(mac); /* holds its own reference to mac */
        EVP_MAC_free(mac);
        OSSL_PARAM params[2] = {
            OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST, (char *)"SHA256", 0),
            OSSL_PARAM_construct_end()};
        if (st.mac && !EVP_MAC_CTX_set_params(st.mac, params)) {
            EVP_MAC_CTX_free(st.mac);
            st.mac = NULL;
        }
    }
}

static int sha256(const void *data, size_t len, unsigned char md[32])
{
    unsigned int mdlen = 0;
    state_init();
    if (st.md && st.mdctx) {
        if (!EVP_DigestInit_ex(st.mdctx, st.md, NULL) || !EVP_DigestUpdate(st.mdctx, data ? data : "", len) ||
            !EVP_DigestFinal_ex(st.mdctx, md, &mdlen))
            return -1;
    } else if (!EVP_Digest(data ? data : "", len, md, &mdlen, EVP_sha256(), NULL)) {
        return -1;
    }
    return mdlen == 32 ? 0 : -1;
}

static int sha256_hex(const void *data, size_t len, char out[65])
{
    unsigned char md[32];
    if (sha256(data, len, md) != 0)
        return -1;
    to_hex(out, md, 32);
    return 0;
}

static int hmac256(const void *key, size_t keylen, const char *msg, size_t msglen,
                   unsigned char out[32])
{
    state_init();
    if (st.mac) {
        size_t len = 0;
        if (!EVP_MAC_init(st.mac, key, keylen, NULL) ||
            !EVP_MAC_update(st.mac, (const unsigned char *)msg, msglen) ||
            !EVP_MAC_final(st.mac, out, &len, 32))
            return -1;
        return len == 32 ? 0 : -1;
    }
    unsigned int len = 0;
    if (!HMAC(EVP_sha256(), key, (int)keylen, (const unsigned char *)msg, msglen, out, &len))
        return -1;
    return len == 32 ? 0 : -1;
}

/* The signing key of (secret, scope = "date/region/service"): HMAC chain from "AWS4" + secret
 * over date, region, service, "aws4_request"; the last one is reused while its inputs stay. */
static int signing_key(const char *secret, const char *date, const char *region,
                       const char *service, const char *scope, unsigned char key[32])
{
    unsigned char fp[32];
    size_t slen = strlen(secret);
    if (sha256(secret, slen, fp) != 0)
        return -1;
    if (st.have_key && strcmp(st.scope, scope) == 0 && CRYPTO_memcmp(st.secret_fp, fp, 32) == 0) {
        memcpy(key, st.key, 32);
        return 0;
    }
    unsigned char k[32], k2[32];
    char *ksecret = malloc(slen + 5);
    if (!ksecret)
        return -1;
    memcpy(ksecret, "AWS4", 4);
    memcpy(ksecret + 4, secret, slen + 1);
    int bad = hmac256(ksecret, slen + 4, date, 8, k) != 0 ||
              hmac256(k, 32, region, strlen(region), k2) != 0 ||
              hmac256(k2, 32, service, strlen(service), k) != 0 ||
              hmac256(k, 32, "aws4_request", 12, key) != 0;
    OPENSSL_cleanse(ksecret, slen + 5);
    free(ksecret);
    OPENSSL_cleanse(k, sizeof k);
    OPENSSL_cleanse(k2, sizeof k2);
    if (bad)
        return -1;
    if (strlen(scope) < sizeof st.scope) {
        memcpy(st.key, key, 32);
        memcpy(st.secret_fp, fp, 32);
        strcpy(st.scope, scope);
        st.have_key = 1;
    }
    return 0;
}

int etl_sigv4_sign(const struct etl_sigv4_input *in, struct etl_sigv4_output *out)
{
    memset(out, 0, sizeof *out);
    if (!in->method || !in->url || !in->region || !in->service || !in->access_key ||
        !in->secret_key || (in->body_len && !in->body))
        return -1;
    struct url_parts u;
    struct tm tm;
    if (etl_sigv4_url_split(in->url, &u) != 0 || etl_sigv4_set_host(out, &u) != 0 || !gmtime_r(&in->now, &tm))
        return -1;
    if (strftime(out->amz_date, sizeof out->amz_date, "%Y%m%dT%H%M%SZ", &tm) != 16)
        return -1;
    char date[9];
    memcpy(date, out->amz_date, 8);
    date[8] = '\0';

    char cr_buf[1024], ch_buf[512], sh_buf[128], sts_buf[256], auth_buf[512];
    struct sbuf cr = SBUF_ON(cr_buf), ch = SBUF_ON(ch_buf), sh = SBUF_ON(sh_buf),
                sts = SBUF_ON(sts_buf), auth = SBUF_ON(auth_buf);
    char payload_hash[65], cr_hash[65], sig[65];
    int rc = -1;

    sb_add(&cr, in->method);
    sb_add(&cr, "\n");
    etl_sigv4_canonical_path(&cr, u.path, u.path_len);
    sb_add(&cr, "\n");
    etl_sigv4_canonical_query(&cr, u.query, u.query_len);
    sb_add(&cr, "\n");
    etl_sigv4_canonical_headers(&ch, &sh, in, out);
    if (!ch.ok || !sh.ok)
        goto done;
    sb_addn(&cr, ch.p, ch.len);
    sb_add(&cr, "\n");
    sb_addn(&cr, sh.p, sh.len);
    sb_add(&cr, "\n");
    if (sha256_hex(in->body, in->body_len, payload_hash) != 0)
        goto done;
    sb_add(&cr, payload_hash);
    if (!cr.ok || sha256_hex(cr.p, cr.len, cr_hash) != 0)
        goto done;

    /* scope: date/region/service/aws4_request */
    sb_add(&sts, "AWS4-HMAC-SHA256\n");
    sb_add(&sts, out->amz_date);
    sb_add(&sts, "\n");
    size_t scope_at = sts.len;
    sb_add(&sts, date);
    sb_add(&sts, "/");
    sb_add(&sts, in->region);
    sb_add(&sts, "/");
    sb_add(&sts, in->service);
    sb_add(&sts, "/aws4_request");
    size_t scope_end = sts.len;
    sb_add(&sts, "\n");
    sb_add(&sts, cr_hash);
    if (!sts.ok)
        goto done;

    /* signing key (derived once per secret, date, region, service), then the signature */
    unsigned char k[32], key[32];
    char scope[128];
    snprintf(scope, sizeof scope, "%s/%s/%s", date, in->region, in->service);
    int bad = signing_key(in->secret_key, date, in->region, in->service, scope, key) != 0 ||
              hmac256(key, 32, sts.p, sts.len, k) != 0;
    OPENSSL_cleanse(key, sizeof key);
    if (bad)
        goto done;
    to_hex(sig, k, 32);
    OPENSSL_cleanse(k, sizeof k);

    sb_add(&auth, "AWS4-HMAC-SHA256 Credential=");
    sb_add(&auth, in->access_key);
    sb_add(&auth, "/");
    sb_addn(&auth, sts.p + scope_at, scope_end - scope_at);
    sb_add(&auth, ", SignedHeaders=");
    sb_addn(&auth, sh.p, sh.len);
    sb_add(&auth, ", Signature=");
    sb_add(&auth, sig);
    if (!auth.ok || !(out->authorization = malloc(auth.len + 1)))
        goto done;
    memcpy(out->authorization, auth.p, auth.len + 1);
    rc = 0;
done:
    sb_free(&cr);
    sb_free(&ch);
    sb_free(&sh);
    sb_free(&sts);
    sb_free(&auth);
    return rc;
}

void etl_sigv4_output_free(struct etl_sigv4_output *out)
{
    free(out->authorization);
    out->authorization = NULL;
}
