/* test_sigv4.c: etl_sigv4_sign against AWS's published Signature Version 4 examples (the IAM
 * ListUsers request of the SigV4 documentation and the get-vanilla / post-vanilla cases of the
 * SigV4 test suite), plus the URI encoding and the refusal of bad input. */
#include "etlua/sigv4.h"

#include "check.h"

#include <stdio.h>
#include <string.h>

static const time_t T_20150830_123600 = 1440938160;
static const char *AK = "AKIDEXAMPLE";
static const char *SK = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY";

static void test_iam_list_users(void)
{
    struct etl_sigv4_header h[] = {
        {"Content-Type", "application/x-www-form-urlencoded; charset=utf-8"}};
    struct etl_sigv4_input in = {
        .method = "GET", .url = "https://iam.amazonaws.com/?Action=ListUsers&Version=2010-05-08",
        .headers = h, .nheaders = 1, .region = "us-east-1", .service = "iam",
        .access_key = AK, .secret_key = SK, .now = T_20150830_123600};
    struct etl_sigv4_output out;
    CHECK(etl_sigv4_sign(&in, &out) == 0);
    CHECK_STR_EQ(out.authorization,
                 "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/iam/aws4_request, "
                 "SignedHeaders=content-type;host;x-amz-date, "
                 "Signature=5d672d79c15b13162d9279b0855cfba6789a8edb4c82c400e06b5924a6f2b5d7");
    CHECK_STR_EQ(out.amz_date, "20150830T123600Z");
    CHECK_STR_EQ(out.host, "iam.amazonaws.com");
    etl_sigv4_output_free(&out);
}

static void test_vanilla(const char *method, const char *want_sig)
{
    struct etl_sigv4_input in = {
        .method = method, .url = "https://example.amazonaws.com/", .region = "us-east-1",
        .service = "service", .access_key = AK, .secret_key = SK, .now = T_20150830_123600};
    struct etl_sigv4_output out;
    char want[256];
    snprintf(want, sizeof want,
             "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/service/aws4_request, "
             "SignedHeaders=host;x-amz-date, Signature=%s", want_sig);
    CHECK(etl_sigv4_sign(&in, &out) == 0);
    CHECK_STR_EQ(out.authorization, want);
    etl_sigv4_output_free(&out);
}

static void test_host_and_port(void)
{
    struct etl_sigv4_input in = {
        .method = "POST", .url = "http://User@LocalHost:4566", .region = "us-east-1",
        .service = "sqs", .access_key = AK, .secret_key = SK, .now = 0};
    struct etl_sigv4_output out;
    CHECK(etl_sigv4_sign(&in, &out) == 0);
    CHECK_STR_EQ(out.host, "localhost:4566");
    CHECK_STR_EQ(out.amz_date, "19700101T000000Z");
    etl_sigv4_output_free(&out);
    in.url = "https://[::1]:443/x";
    CHECK(etl_sigv4_sign(&in, &out) == 0);
    CHECK_STR_EQ(out.host, "[::1]");
    etl_sigv4_output_free(&out);
    in.url = "ftp://example.com/";
    CHECK(etl_sigv4_sign(&in, &out) == -1);
    CHECK(out.authorization == NULL);
    in.url = "http://:80/";
    CHECK(etl_sigv4_sign(&in, &out) == -1);
    in.url = "http://h:99999/";
    CHECK(etl_sigv4_sign(&in, &out) == -1);
    in.url = "http://h/";
    in.secret_key = NULL;
    CHECK(etl_sigv4_sign(&in, &out) == -1);
}

static void test_uri_encode(void)
{
    char buf[64];
    etl_sigv4_uri_encode(buf, "a b/c~d-e_f.g", 13, 1);
    CHECK_STR_EQ(buf, "a%20b/c~d-e_f.g");
    etl_sigv4_uri_encode(buf, "a/\xc3\xa9+=&", 7, 0);
    CHECK_STR_EQ(buf, "a%2F%C3%A9%2B%3D%26");
}

int main(void)
{
    test_iam_list_users();
    test_vanilla("GET", "5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31");
    test_vanilla("POST", "5da7c1a2acd57cee7505fc6676e4e544621c30862966e37dddb68e92efbe5d6b");
    test_host_and_port();
    test_uri_encode();
    return CHECK_DONE("test_sigv4");
}
