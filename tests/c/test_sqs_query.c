/* test_sqs_query.c: the query protocol codec (src/sqs_query.c) without the network: form
 * bodies, and XML answers of ReceiveMessage, DeleteMessageBatch (partial failure), GetQueueUrl,
 * GetQueueAttributes and ErrorResponse parsed to exact results; malformed, truncated and hostile
 * XML refused cleanly; the error classification shared by both codecs (src/sqs_codec.c). */
#include "etlua/sqs_codec.h"

#include "check.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* The query codec's reading of a 200 answer of len bytes: 0, or -1 with the reason in err (a
 * service error answer gives -1 too, with r->service_error set). */
static int parse_len(const char *xml, size_t len, struct etl_sqs_result *r, char *err)
{
    struct etl_sqs_answer ans = {200, xml, len, ""};
    enum etl_sqs_code code = etl_sqs_query_codec.parse(ETL_SQS_RECEIVE, &ans, r);
    snprintf(err, 200, "%s", r->why);
    return code == ETL_SQS_OK ? 0 : -1;
}

static int parse(const char *xml, struct etl_sqs_result *r, char *err)
{
    return parse_len(xml, strlen(xml), r, err);
}

static void test_form(void)
{
    struct etl_sqs_entry e = {"0", "AQEB+/x= y&z\xc3\xa9"};
    struct etl_sqs_request req = {.action = ETL_SQS_DELETE_BATCH,
                                  .queue_url = "http://h:4566/000000000000/q",
                                  .entries = &e,
                                  .nentries = 1};
    struct etl_buf b = {0};
    CHECK(etl_sqs_query_codec.build(&req, &b) == 0);
    CHECK_STR_EQ(b.p,
                 "Action=DeleteMessageBatch&Version=2012-11-05"
                 "&QueueUrl=http%3A%2F%2Fh%3A4566%2F000000000000%2Fq"
                 "&DeleteMessageBatchRequestEntry.1.Id=0"
                 "&DeleteMessageBatchRequestEntry.1.ReceiptHandle=AQEB%2B%2Fx%3D%20y%26z%C3%A9");
    etl_buf_free(&b);
}

static void test_receive(void)
{
    const char *xml =
        "<?xml version=\"1.0\"?>\n"
        "<ReceiveMessageResponse xmlns=\"http://queue.amazonaws.com/doc/2012-11-05/\">\n"
        "  <ReceiveMessageResult>\n"
        "    <Message>\n"
        "      <MessageId>5fea7756-0ea4-451a-a703-a558b933e274</MessageId>\n"
        "      <ReceiptHandle>MbZj6wDWli+JvwwJaBV+3dcjk2YW2vA3+STFFljTM8tJJg6HRG6PYSasuWXPJB+Cw"
        "</ReceiptHandle>\n"
        "      <MD5OfBody>fafb00f5732ab283681e124bf8747ed1</MD5OfBody>\n"
        "      <Body>{&quot;user_id&quot;: &quot;u&lt;1&gt;&amp;&quot;, \"ip\": "
        "\"caf\xc3\xa9\"}</Body>\n"
        "      <Attribute><Name>SenderId</Name><Value>195004372649</Value></Attribute>\n"
        "      <Attribute><Name>SentTimestamp</Name><Value>1238099229000</Value></Attribute>\n"
        "      <MessageAttribute><Name>SentTimestamp</Name><Value><StringValue>1</StringValue>"
        "</Value></MessageAttribute>\n"
        "    </Message>\n"
        "    <Message><MessageId>m2</MessageId><ReceiptHandle>r2</ReceiptHandle>"
        "<Body></Body></Message>\n"
        "  </ReceiveMessageResult>\n"
        "  <ResponseMetadata><RequestId>b6633655-283d-45b4-aee4-4e84e0ae6afa</RequestId>"
        "</ResponseMetadata>\n"
        "</ReceiveMessageResponse>\n";
    struct etl_sqs_result r;
    char err[200];
    CHECK(parse(xml, &r, err) == 0);
    CHECK(r.nmessages == 2);
    if (r.nmessages == 2) {
        CHECK_STR_EQ(r.messages[0].id, "5fea7756-0ea4-451a-a703-a558b933e274");
        CHECK_STR_EQ(r.messages[0].receipt,
                     "MbZj6wDWli+JvwwJaBV+3dcjk2YW2vA3+STFFljTM8tJJg6HRG6PYSasuWXPJB+Cw");
        CHECK_STR_EQ(r.messages[0].body, "{\"user_id\": \"u<1>&\", \"ip\": \"caf\xc3\xa9\"}");
        CHECK(r.messages[0].sent_ms == 1238099229000LL);
        CHECK_STR_EQ(r.messages[1].id, "m2");
        CHECK_STR_EQ(r.messages[1].body, "");
        CHECK(r.messages[1].sent_ms == -1);
    }
    CHECK(r.error_code == NULL);
    etl_sqs_result_free(&r);

    CHECK(parse("<ReceiveMessageResponse><ReceiveMessageResult/></ReceiveMessageResponse>", &r,
                err) == 0);
    CHECK(r.nmessages == 0);
    etl_sqs_result_free(&r);
}

static void test_delete_batch_partial(void)
{
    const char *xml =
        "<DeleteMessageBatchResponse xmlns=\"http://queue.amazonaws.com/doc/2012-11-05/\">"
        "<DeleteMessageBatchResult>"
        "<DeleteMessageBatchResultEntry><Id>msg1</Id></DeleteMessageBatchResultEntry>"
        "<BatchResultErrorEntry><Id>msg2</Id><SenderFault>true</SenderFault>"
        "<Code>ReceiptHandleIsInvalid</Code><Message>The input receipt handle is invalid."
        "</Message></BatchResultErrorEntry>"
        "</DeleteMessageBatchResult>"
        "<ResponseMetadata><RequestId>d6f86b7a</RequestId></ResponseMetadata>"
        "</DeleteMessageBatchResponse>";
    struct etl_sqs_result r;
    char err[200];
    CHECK(parse(xml, &r, err) == 0);
    CHECK(r.nfailures == 1);
    if (r.nfailures == 1) {
        CHECK_STR_EQ(r.failures[0].id, "msg2");
        CHECK_STR_EQ(r.failures[0].code, "ReceiptHandleIsInvalid");
        CHECK_STR_EQ(r.failures[0].message, "The input receipt handle is invalid.");
    }
    etl_sqs_result_free(&r);

    xml = "<ChangeMessageVisibilityBatchResponse><ChangeMessageVisibilityBatchResult>"
          "<ChangeMessageVisibilityBatchResultEntry><Id>a</Id>"
          "</ChangeMessageVisibilityBatchResultEntry>"
          "<ChangeMessageVisibilityBatchResultEntry><Id>b</Id>"
          "</ChangeMessageVisibilityBatchResultEntry>"
          "</ChangeMessageVisibilityBatchResult></ChangeMessageVisibilityBatchResponse>";
    CHECK(parse(xml, &r, err) == 0);
    CHECK(r.nfailures == 0);
    etl_sqs_result_free(&r);
}

static void test_queue_url_and_attributes(void)
{
    struct etl_sqs_result r;
    char err[200];
    CHECK(parse("<GetQueueUrlResponse><GetQueueUrlResult>"
                "<QueueUrl>http://localhost:4566/000000000000/login-queue</QueueUrl>"
                "</GetQueueUrlResult><ResponseMetadata><RequestId>x</RequestId>"
                "</ResponseMetadata></GetQueueUrlResponse>",
                &r, err) == 0);
    CHECK_STR_EQ(r.queue_url, "http://localhost:4566/000000000000/login-queue");
    etl_sqs_result_free(&r);

    CHECK(parse("<GetQueueAttributesResponse><GetQueueAttributesResult>"
                "<Attribute><Name>ApproximateNumberOfMessages</Name><Value>12</Value></Attribute>"
                "<Attribute><Name>QueueArn</Name><Value>arn:aws:sqs:us-east-1:0:q</Value>"
                "</Attribute></GetQueueAttributesResult></GetQueueAttributesResponse>",
                &r, err) == 0);
    CHECK(r.nattributes == 2);
    if (r.nattributes == 2) {
        CHECK_STR_EQ(r.attributes[0].name, "ApproximateNumberOfMessages");
        CHECK_STR_EQ(r.attributes[0].value, "12");
        CHECK_STR_EQ(r.attributes[1].value, "arn:aws:sqs:us-east-1:0:q");
    }
    etl_sqs_result_free(&r);
}

static void test_error_response(void)
{
    struct etl_sqs_result r;
    char err[200];
    CHECK(parse("<?xml version=\"1.0\"?><ErrorResponse xmlns=\"http://queue.amazonaws.com/doc/"
                "2012-11-05/\"><Error><Type>Sender</Type>"
                "<Code>AWS.SimpleQueueService.NonExistentQueue</Code>"
                "<Message>The specified queue does not exist for this wsdl version.</Message>"
                "<Detail/></Error><RequestId>42d59b56-7407-4c4a-be0f-4c88daeea257</RequestId>"
                "</ErrorResponse>",
                &r, err) == -1);
    CHECK(r.service_error);
    CHECK_STR_EQ(r.error_code, "AWS.SimpleQueueService.NonExistentQueue");
    CHECK_STR_EQ(r.error_message, "The specified queue does not exist for this wsdl version.");
    CHECK(etl_sqs_classify(400, r.error_code) == ETL_SQS_NO_QUEUE);
    etl_sqs_result_free(&r);
}

static void test_classify(void)
{
    CHECK(etl_sqs_classify(400, "com.amazonaws.sqs#QueueDoesNotExist") == ETL_SQS_NO_QUEUE);
    CHECK(etl_sqs_classify(400, "QueueDoesNotExist") == ETL_SQS_NO_QUEUE);
    CHECK(etl_sqs_classify(400, "ThrottlingException") == ETL_SQS_THROTTLED);
    CHECK(etl_sqs_classify(403, "RequestThrottled") == ETL_SQS_THROTTLED);
    CHECK(etl_sqs_classify(429, NULL) == ETL_SQS_THROTTLED);
    CHECK(etl_sqs_classify(503, "ServiceUnavailable") == ETL_SQS_SERVER);
    CHECK(etl_sqs_classify(500, NULL) == ETL_SQS_SERVER);
    CHECK(etl_sqs_classify(403, "SignatureDoesNotMatch") == ETL_SQS_AUTH);
    CHECK(etl_sqs_classify(400, "com.amazonaws.sqs#InvalidClientTokenId") == ETL_SQS_AUTH);
    CHECK(etl_sqs_classify(400, "UnrecognizedClientException") == ETL_SQS_AUTH);
    CHECK(etl_sqs_classify(403, NULL) == ETL_SQS_AUTH);
    CHECK(etl_sqs_classify(400, "InvalidParameterValue") == ETL_SQS_CLIENT);
    CHECK(etl_sqs_classify(400, "MissingAction") == ETL_SQS_PROTOCOL);
    CHECK(etl_sqs_is_protocol_mismatch("MissingAction", NULL));
    CHECK(etl_sqs_is_protocol_mismatch("InvalidAction", NULL));
    CHECK(etl_sqs_is_protocol_mismatch("com.amazonaws.sqs#UnknownOperationException", NULL));
    CHECK(etl_sqs_is_protocol_mismatch("InvalidParameterValue",
                                       "The request must contain the parameter Action."));
    CHECK(!etl_sqs_is_protocol_mismatch("QueueDoesNotExist", "The queue does not exist."));
    CHECK_STR_EQ(etl_sqs_code_name(ETL_SQS_NO_QUEUE), "no_queue");
    CHECK_STR_EQ(etl_sqs_code_name(ETL_SQS_BUSY), "busy");
}

static void expect_refused(const char *xml, size_t len, const char *want_prefix)
{
    struct etl_sqs_result r;
    char err[200] = "";
    int rc = parse_len(xml, len, &r, err);
    CHECK(rc == -1 && strncmp(err, want_prefix, strlen(want_prefix)) == 0,
          "refused input (len %zu): rc=%d err=%s", len, rc, err);
    etl_sqs_result_free(&r);
}

static void test_hostile(void)
{
    const char *ok = "<ReceiveMessageResponse><ReceiveMessageResult><Message><MessageId>m"
                     "</MessageId><Body>b</Body></Message></ReceiveMessageResult>"
                     "</ReceiveMessageResponse>";
    for (size_t n = 0; n < strlen(ok); n++) /* every truncation is refused, none crashes */
        expect_refused(ok, n, "bad XML answer: ");
    expect_refused("", 0, "bad XML answer: no element found");
    expect_refused("<a><b></a>", 10, "bad XML answer: mismatched tag");
    expect_refused("not xml at all", 14, "bad XML answer: syntax error");
    expect_refused("<a>\0</a>", 8, "bad XML answer: ");
    const char *laughs = "<?xml version=\"1.0\"?><!DOCTYPE l [<!ENTITY a \"aaaaaaaa\">"
                         "<!ENTITY b \"&a;&a;&a;&a;&a;&a;&a;&a;\">]><l>&b;</l>";
    expect_refused(laughs, strlen(laughs), "bad XML answer: entity declarations");
    expect_refused("<a>&undefined;</a>", 18, "bad XML answer: undefined entity");

    /* one element's text over 1 MiB */
    size_t big = ETL_SQS_MAX_FIELD + 100;
    char *xml = malloc(big + 64);
    if (xml) {
        size_t n = (size_t)sprintf(xml, "<a><Body>");
        memset(xml + n, 'x', big);
        n += big;
        n += (size_t)sprintf(xml + n, "</Body></a>");
        expect_refused(xml, n, "bad XML answer: element text too long");
        free(xml);
    }

    /* deep nesting and many entries: bounded, no crash */
    struct etl_sqs_result r;
    char err[200];
    size_t depth = 5000, n = 0;
    char *deep = malloc(depth * 16 + 32);
    if (deep) {
        for (size_t i = 0; i < depth; i++)
            n += (size_t)sprintf(deep + n, "<Error>");
        n += (size_t)sprintf(deep + n, "<Code>X</Code>");
        for (size_t i = 0; i < depth; i++)
            n += (size_t)sprintf(deep + n, "</Error>");
        parse_len(deep, n, &r, err); /* read or refused as a service error: no crash */
        CHECK(!*err);
        etl_sqs_result_free(&r);
        free(deep);
    }
    size_t count = ETL_SQS_MAX_ENTRIES + 5;
    char *many = malloc(count * 64 + 128);
    if (many) {
        n = (size_t)sprintf(many, "<R><DeleteMessageBatchResult>");
        for (size_t i = 0; i < count; i++)
            n += (size_t)sprintf(many + n,
                                 "<BatchResultErrorEntry><Id>%zu</Id>"
                                 "</BatchResultErrorEntry>",
                                 i);
        n += (size_t)sprintf(many + n, "</DeleteMessageBatchResult></R>");
        CHECK(parse_len(many, n, &r, err) == -1);
        CHECK_STR_EQ(err, "bad XML answer: too many entries");
        etl_sqs_result_free(&r);
        free(many);
    }
}

int main(void)
{
    test_form();
    test_receive();
    test_delete_batch_partial();
    test_queue_url_and_attributes();
    test_error_response();
    test_classify();
    test_hostile();
    return CHECK_DONE("test_sqs_query");
}
