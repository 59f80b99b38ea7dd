/* test_sigv4.c: etl_sigv4_sign against AWS's published Signature Version 4 examples (the IAM
 * ListUsers request of the SigV4 documentation and the get-vanilla / post-vanilla cases of the
 * SigV4 test suite); the signing key kept across requests and renewed when the day changes; the
 * canonical headers (order, case, trimming); the Host value of a URL; refused input. */
#include "etlua/sigv4.h"

#include "check.h"

#include <stdio.h>
#include <string.h>

static const time_t T_20150830_123600 = 1440938160;
static const char *AK = "AKIDEXAMPLE";
static const char *SK = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY";

static void test_iam_list_users(void)
{
    struct etl_sigv4 *s = etl_sigv4_new(AK, SK, "us-east-1", "iam");
    CHECK(s != NULL);
    const char *h[] = {"Content-Type: application/x-www-form-urlencoded; charset=utf-8"};
    struct etl_sigv4_request req = {.method = "GET",
                                    .host = "iam.amazonaws.com",
                                    .path = "/",
                                    .query = "Action=ListUsers&Version=2010-05-08",
                                    .headers = h,
                                    .nheaders = 1,
                                    .now = T_20150830_123600};
    char date[17], auth[ETL_SIGV4_AUTH_MAX];
    CHECK(etl_sigv4_sign(s, &req, date, auth) == 0);
    CHECK_STR_EQ(auth,
                 "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/iam/aws4_request, "
                 "SignedHeaders=content-type;host;x-amz-date, "
                 "Signature=5d672d79c15b13162d9279b0855cfba6789a8edb4c82c400e06b5924a6f2b5d7");
    CHECK_STR_EQ(date, "20150830T123600Z");
    etl_sigv4_free(s);
}

static void vanilla(struct etl_sigv4 *s, const char *method, time_t now, char auth[])
{
    struct etl_sigv4_request req = {
        .method = method, .host = "example.amazonaws.com", .path = "/", .query = "", .now = now};
    char date[17];
    CHECK(etl_sigv4_sign(s, &req, date, auth) == 0);
}

static void test_vanilla(void)
{
    static const char *prefix =
        "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/service/aws4_request, "
        "SignedHeaders=host;x-amz-date, Signature=";
    char want[ETL_SIGV4_AUTH_MAX], auth[ETL_SIGV4_AUTH_MAX], other[ETL_SIGV4_AUTH_MAX];
    struct etl_sigv4 *s = etl_sigv4_new(AK, SK, "us-east-1", "service");
    CHECK(s != NULL);
    vanilla(s, "GET", T_20150830_123600, auth);
    snprintf(want, sizeof want, "%s%s", prefix,
             "5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31");
    CHECK_STR_EQ(auth, want);
    vanilla(s, "POST", T_20150830_123600, auth); /* the same day: the kept key */
    snprintf(want, sizeof want, "%s%s", prefix,
             "5da7c1a2acd57cee7505fc6676e4e544621c30862966e37dddb68e92efbe5d6b");
    CHECK_STR_EQ(auth, want);
    /* another day, then back: the key follows the date */
    vanilla(s, "POST", T_20150830_123600 + 86400, other);
    CHECK(strstr(other, "/20150831/us-east-1/service/aws4_request") != NULL);
    CHECK(strcmp(other + strlen(prefix), want + strlen(prefix)) != 0);
    struct etl_sigv4 *fresh = etl_sigv4_new(AK, SK, "us-east-1", "service");
    vanilla(fresh, "POST", T_20150830_123600 + 86400, auth);
    CHECK_STR_EQ(auth, other);
    etl_sigv4_free(fresh);
    vanilla(s, "POST", T_20150830_123600, auth);
    CHECK_STR_EQ(auth, want);
    etl_sigv4_free(s);
}

/* The caller's lines in any order and case give the same signature as sorted lowercase ones;
 * values are trimmed and inner runs of spaces folded. */
static void test_canonical_headers(void)
{
    struct etl_sigv4 *s = etl_sigv4_new(AK, SK, "eu-west-1", "sqs");
    const char *a[] = {"X-Amz-Target: AmazonSQS.ReceiveMessage",
                       "Content-Type:   application/x-amz-json-1.0  ", "X-Amz-Security-Token: t"};
    const char *b[] = {"content-type: application/x-amz-json-1.0", "x-amz-security-token:t",
                       "x-amz-target: AmazonSQS.ReceiveMessage"};
    const char *c[] = {"content-type: application/x-amz-json-1.0", "x-amz-security-token:t",
                       "x-amz-target: AmazonSQS.Receive  Message"};
    const char *d[] = {"content-type: application/x-amz-json-1.0", "x-amz-security-token:t",
                       "x-amz-target: AmazonSQS.Receive Message"};
    struct etl_sigv4_request req = {.method = "POST",
                                    .host = "127.0.0.1:4566",
                                    .path = "/",
                                    .query = "",
                                    .headers = a,
                                    .nheaders = 3,
                                    .body = "{}",
                                    .len = 2,
                                    .now = T_20150830_123600};
    char date[17], ra[ETL_SIGV4_AUTH_MAX], rb[ETL_SIGV4_AUTH_MAX], rc[ETL_SIGV4_AUTH_MAX],
        rd[ETL_SIGV4_AUTH_MAX];
    CHECK(etl_sigv4_sign(s, &req, date, ra) == 0);
    req.headers = b;
    CHECK(etl_sigv4_sign(s, &req, date, rb) == 0);
    CHECK_STR_EQ(ra, rb);
    CHECK(strstr(ra, "SignedHeaders=content-type;host;x-amz-date;x-amz-security-token;"
                     "x-amz-target, Signature=") != NULL);
    req.headers = c;
    CHECK(etl_sigv4_sign(s, &req, date, rc) == 0);
    req.headers = d;
    CHECK(etl_sigv4_sign(s, &req, date, rd) == 0);
    CHECK_STR_EQ(rc, rd);
    CHECK(strcmp(rc, ra) != 0);
    req.body = "{ }"; /* the payload is signed */
    req.len = 3;
    CHECK(etl_sigv4_sign(s, &req, date, rd) == 0);
    CHECK(strcmp(rc, rd) != 0);
    /* refused: a line without a name, too many lines */
    const char *bad[] = {": x"};
    req.headers = bad;
    req.nheaders = 1;
    CHECK(etl_sigv4_sign(s, &req, date, rd) == -1);
    req.nheaders = ETL_SIGV4_MAX_HEADERS + 1;
    CHECK(etl_sigv4_sign(s, &req, date, rd) == -1);
    etl_sigv4_free(s);
    CHECK(etl_sigv4_new(AK, NULL, "us-east-1", "sqs") == NULL);
    etl_sigv4_free(NULL);
}

static void test_host_of(void)
{
    char host[64];
    size_t at = 0;
    CHECK(etl_sigv4_host_of("http://User@LocalHost:4566", host, sizeof host, &at) == 0);
    CHECK_STR_EQ(host, "localhost:4566");
    CHECK(at == strlen("http://User@LocalHost:4566"));
    CHECK(etl_sigv4_host_of("https://[::1]:443/x", host, sizeof host, &at) == 0);
    CHECK_STR_EQ(host, "[::1]");
    CHECK(at == strlen("https://[::1]:443"));
    CHECK(etl_sigv4_host_of("http://sqs.us-east-1.amazonaws.com:80/", host, sizeof host, &at) == 0);
    CHECK_STR_EQ(host, "sqs.us-east-1.amazonaws.com");
    CHECK(etl_sigv4_host_of("https://h:80/", host, sizeof host, &at) == 0);
    CHECK_STR_EQ(host, "h:80");
    CHECK(etl_sigv4_host_of("ftp://example.com/", host, sizeof host, &at) == -1);
    CHECK(etl_sigv4_host_of("http://:80/", host, sizeof host, &at) == -1);
    CHECK(etl_sigv4_host_of("http://h:8x/", host, sizeof host, &at) == -1);
    CHECK(etl_sigv4_host_of("http://[::1/", host, sizeof host, &at) == -1);
    CHECK(etl_sigv4_host_of("http://a-very-long-host-name-that-does-not-fit-in-the-buffer.example/",
                            host, 16, &at) == -1);
}

int main(void)
{
    test_iam_list_users();
    test_vanilla();
    test_canonical_headers();
    test_host_of();
    return CHECK_DONE("test_sigv4");
}
