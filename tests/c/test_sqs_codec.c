/* test_sqs_codec.c: the two SQS codecs behind one table (include/etlua/sqs_codec.h). Each
 * request is built by both codecs into exact bodies (JSON and form); the same answers, one in
 * JSON and one in XML, are read by both into the same results: messages with their system
 * attributes (SentTimestamp, ApproximateReceiveCount, FIFO MessageGroupId / SequenceNumber) and
 * message attributes (string and binary), batch failures, queue URL, queue attributes, and
 * service errors mapped to the same codes. */
#include "etlua/sqs_codec.h"

#include "check.h"

#include <stdlib.h>
#include <string.h>

static void check_body(const struct etl_sqs_codec *codec, const struct etl_sqs_request *req,
                       const char *want, int line)
{
    struct etl_buf b = {0};
    if (codec->build(req, &b) != 0 || !b.p || strcmp(b.p, want) != 0)
        check_fail_at(__FILE__, line, "%s body:\n  got  %s\n  want %s", codec->name,
                      b.p ? b.p : "(null)", want);
    etl_buf_free(&b);
}

static void test_requests(void)
{
    struct etl_sqs_request receive = {.action = ETL_SQS_RECEIVE,
                                      .queue_url = "http://h/0/q",
                                      .max_messages = 10,
                                      .wait_s = 20,
                                      .visibility_s = -1};
    check_body(
        &etl_sqs_json_codec, &receive,
        "{\"QueueUrl\":\"http://h/0/q\",\"MaxNumberOfMessages\":10,\"WaitTimeSeconds\":20,"
        "\"AttributeNames\":[\"SentTimestamp\",\"ApproximateReceiveCount\",\"MessageGroupId\","
        "\"SequenceNumber\"],\"MessageSystemAttributeNames\":[\"SentTimestamp\","
        "\"ApproximateReceiveCount\",\"MessageGroupId\",\"SequenceNumber\"],"
        "\"MessageAttributeNames\":[\"All\"]}",
        __LINE__);
    check_body(&etl_sqs_query_codec, &receive,
               "Action=ReceiveMessage&Version=2012-11-05&QueueUrl=http%3A%2F%2Fh%2F0%2Fq"
               "&MaxNumberOfMessages=10&WaitTimeSeconds=20"
               "&AttributeName.1=SentTimestamp&MessageSystemAttributeName.1=SentTimestamp"
               "&AttributeName.2=ApproximateReceiveCount"
               "&MessageSystemAttributeName.2=ApproximateReceiveCount"
               "&AttributeName.3=MessageGroupId&MessageSystemAttributeName.3=MessageGroupId"
               "&AttributeName.4=SequenceNumber&MessageSystemAttributeName.4=SequenceNumber"
               "&MessageAttributeName.1=All",
               __LINE__);
    receive.visibility_s = 30;
    receive.wait_s = 0;
    check_body(&etl_sqs_json_codec, &receive,
               "{\"QueueUrl\":\"http://h/0/q\",\"MaxNumberOfMessages\":10,\"WaitTimeSeconds\":0,"
               "\"VisibilityTimeout\":30,\"AttributeNames\":[\"SentTimestamp\","
               "\"ApproximateReceiveCount\",\"MessageGroupId\",\"SequenceNumber\"],"
               "\"MessageSystemAttributeNames\":[\"SentTimestamp\",\"ApproximateReceiveCount\","
               "\"MessageGroupId\",\"SequenceNumber\"],\"MessageAttributeNames\":[\"All\"]}",
               __LINE__);

    struct etl_sqs_entry e[2] = {{"0", "AQEB+/=\"q\"\\\n"}, {"1", "r2"}};
    struct etl_sqs_request del = {
        .action = ETL_SQS_DELETE_BATCH, .queue_url = "http://h/0/q", .entries = e, .nentries = 2};
    check_body(&etl_sqs_json_codec, &del,
               "{\"QueueUrl\":\"http://h/0/q\",\"Entries\":[{\"Id\":\"0\",\"ReceiptHandle\":"
               "\"AQEB+/=\\\"q\\\"\\\\\\u000a\"},{\"Id\":\"1\",\"ReceiptHandle\":\"r2\"}]}",
               __LINE__);
    check_body(&etl_sqs_query_codec, &del,
               "Action=DeleteMessageBatch&Version=2012-11-05&QueueUrl=http%3A%2F%2Fh%2F0%2Fq"
               "&DeleteMessageBatchRequestEntry.1.Id=0"
               "&DeleteMessageBatchRequestEntry.1.ReceiptHandle=AQEB%2B%2F%3D%22q%22%5C%0A"
               "&DeleteMessageBatchRequestEntry.2.Id=1"
               "&DeleteMessageBatchRequestEntry.2.ReceiptHandle=r2",
               __LINE__);
    struct etl_sqs_request vis = {.action = ETL_SQS_CHANGE_VISIBILITY_BATCH,
                                  .queue_url = "http://h/0/q",
                                  .entries = e + 1,
                                  .nentries = 1,
                                  .visibility_s = 0};
    check_body(&etl_sqs_json_codec, &vis,
               "{\"QueueUrl\":\"http://h/0/q\",\"Entries\":[{\"Id\":\"1\",\"ReceiptHandle\":\"r2\","
               "\"VisibilityTimeout\":0}]}",
               __LINE__);
    check_body(&etl_sqs_query_codec, &vis,
               "Action=ChangeMessageVisibilityBatch&Version=2012-11-05"
               "&QueueUrl=http%3A%2F%2Fh%2F0%2Fq&ChangeMessageVisibilityBatchRequestEntry.1.Id=1"
               "&ChangeMessageVisibilityBatchRequestEntry.1.ReceiptHandle=r2"
               "&ChangeMessageVisibilityBatchRequestEntry.1.VisibilityTimeout=0",
               __LINE__);

    struct etl_sqs_request url = {.action = ETL_SQS_GET_QUEUE_URL, .queue_name = "login queue"};
    check_body(&etl_sqs_json_codec, &url, "{\"QueueName\":\"login queue\"}", __LINE__);
    check_body(&etl_sqs_query_codec, &url,
               "Action=GetQueueUrl&Version=2012-11-05&QueueName=login%20queue", __LINE__);
    const char *names[] = {"VisibilityTimeout", "QueueArn"};
    struct etl_sqs_request attrs = {.action = ETL_SQS_GET_QUEUE_ATTRIBUTES,
                                    .queue_url = "http://h/0/q",
                                    .names = names,
                                    .nnames = 2};
    check_body(&etl_sqs_json_codec, &attrs,
               "{\"QueueUrl\":\"http://h/0/q\",\"AttributeNames\":[\"VisibilityTimeout\","
               "\"QueueArn\"]}",
               __LINE__);
    check_body(&etl_sqs_query_codec, &attrs,
               "Action=GetQueueAttributes&Version=2012-11-05&QueueUrl=http%3A%2F%2Fh%2F0%2Fq"
               "&AttributeName.1=VisibilityTimeout&AttributeName.2=QueueArn",
               __LINE__);
    struct etl_sqs_request list = {.action = ETL_SQS_LIST_QUEUES};
    check_body(&etl_sqs_json_codec, &list, "{\"MaxResults\":1}", __LINE__);
    check_body(&etl_sqs_query_codec, &list, "Action=ListQueues&Version=2012-11-05&MaxResults=1",
               __LINE__);
}

/* ---- answers --------------------------------------------------------------------------------- */

static enum etl_sqs_code parse(const struct etl_sqs_codec *codec, enum etl_sqs_action action,
                               long status, const char *body, const char *header,
                               struct etl_sqs_result *r)
{
    struct etl_sqs_answer ans = {status, body, strlen(body), header ? header : ""};
    return codec->parse(action, &ans, r);
}

static int str_eq(const char *a, const char *b)
{
    return (!a && !b) || (a && b && strcmp(a, b) == 0);
}

/* The value of name among pairs, or NULL. */
static const char *pair(const struct etl_sqs_pair *p, size_t n, const char *name)
{
    for (size_t i = 0; i < n; i++)
        if (strcmp(p[i].name, name) == 0)
            return p[i].value;
    return NULL;
}

static int pairs_eq(const struct etl_sqs_pair *a, size_t na, const struct etl_sqs_pair *b,
                    size_t nb)
{
    if (na != nb)
        return 0;
    for (size_t i = 0; i < na; i++)
        if (!str_eq(a[i].value, pair(b, nb, a[i].name)))
            return 0;
    return 1;
}

/* The two results are the same (attribute pairs in any order). */
static void check_same(const struct etl_sqs_result *a, const struct etl_sqs_result *b, int line)
{
    int same = a->nmessages == b->nmessages && a->nfailures == b->nfailures &&
               str_eq(a->queue_url, b->queue_url) &&
               pairs_eq(a->attributes, a->nattributes, b->attributes, b->nattributes);
    for (size_t i = 0; same && i < a->nmessages; i++) {
        const struct etl_sqs_message *x = &a->messages[i], *y = &b->messages[i];
        same = str_eq(x->id, y->id) && str_eq(x->receipt, y->receipt) && str_eq(x->body, y->body) &&
               x->sent_ms == y->sent_ms && x->receive_count == y->receive_count &&
               str_eq(x->group_id, y->group_id) && str_eq(x->sequence_number, y->sequence_number) &&
               pairs_eq(x->attributes, x->nattributes, y->attributes, y->nattributes);
    }
    for (size_t i = 0; same && i < a->nfailures; i++)
        same = str_eq(a->failures[i].id, b->failures[i].id) &&
               str_eq(a->failures[i].code, b->failures[i].code) &&
               str_eq(a->failures[i].message, b->failures[i].message);
    if (!same)
        check_fail_at(__FILE__, line, "the JSON and the query codec read different results");
}

/* Reads the same answer in both protocols; checks both succeed with the same result, and
 * leaves the JSON one in *out. */
static void both(enum etl_sqs_action action, const char *json, const char *xml,
                 struct etl_sqs_result *out, int line)
{
    struct etl_sqs_result q;
    enum etl_sqs_code cj = parse(&etl_sqs_json_codec, action, 200, json, NULL, out);
    enum etl_sqs_code cq = parse(&etl_sqs_query_codec, action, 200, xml, NULL, &q);
    if (cj != ETL_SQS_OK || cq != ETL_SQS_OK)
        check_fail_at(__FILE__, line, "json %s (%s), query %s (%s)", etl_sqs_code_name(cj),
                      out->why, etl_sqs_code_name(cq), q.why);
    check_same(out, &q, line);
    etl_sqs_result_free(&q);
}

static void test_receive(void)
{
    struct etl_sqs_result r;
    both(ETL_SQS_RECEIVE,
         "{\"Messages\":[{\"MessageId\":\"m1\",\"ReceiptHandle\":\"r1\",\"MD5OfBody\":\"x\","
         "\"Body\":\"{\\\"user_id\\\":\\\"u<1>&\\\"}\",\"Attributes\":{\"SentTimestamp\":"
         "\"1700000000123\",\"ApproximateReceiveCount\":\"3\",\"MessageGroupId\":\"user-7\","
         "\"SequenceNumber\":\"18849496460467696128\",\"SenderId\":\"AIDA\"},"
         "\"MessageAttributes\":{\"trace_id\":{\"DataType\":\"String\",\"StringValue\":\"t-1\"},"
         "\"n\":{\"DataType\":\"Number\",\"StringValue\":\"42\"},\"blob\":{\"DataType\":\"Binary\","
         "\"BinaryValue\":\"AAEC\"}}},"
         "{\"MessageId\":\"m2\",\"ReceiptHandle\":\"r2\",\"Body\":\"\"}]}",
         "<ReceiveMessageResponse><ReceiveMessageResult><Message><MessageId>m1</MessageId>"
         "<ReceiptHandle>r1</ReceiptHandle><MD5OfBody>x</MD5OfBody>"
         "<Body>{&quot;user_id&quot;:&quot;u&lt;1&gt;&amp;&quot;}</Body>"
         "<Attribute><Name>SentTimestamp</Name><Value>1700000000123</Value></Attribute>"
         "<Attribute><Name>ApproximateReceiveCount</Name><Value>3</Value></Attribute>"
         "<Attribute><Name>MessageGroupId</Name><Value>user-7</Value></Attribute>"
         "<Attribute><Name>SequenceNumber</Name><Value>18849496460467696128</Value></Attribute>"
         "<Attribute><Name>SenderId</Name><Value>AIDA</Value></Attribute>"
         "<MessageAttribute><Name>trace_id</Name><Value><StringValue>t-1</StringValue>"
         "<DataType>String</DataType></Value></MessageAttribute>"
         "<MessageAttribute><Name>n</Name><Value><DataType>Number</DataType>"
         "<StringValue>42</StringValue></Value></MessageAttribute>"
         "<MessageAttribute><Name>blob</Name><Value><BinaryValue>AAEC</BinaryValue>"
         "<DataType>Binary</DataType></Value></MessageAttribute></Message>"
         "<Message><MessageId>m2</MessageId><ReceiptHandle>r2</ReceiptHandle><Body></Body>"
         "</Message></ReceiveMessageResult></ReceiveMessageResponse>",
         &r, __LINE__);
    CHECK(r.nmessages == 2);
    if (r.nmessages == 2) {
        const struct etl_sqs_message *m = &r.messages[0];
        CHECK_STR_EQ(m->id, "m1");
        CHECK_STR_EQ(m->receipt, "r1");
        CHECK_STR_EQ(m->body, "{\"user_id\":\"u<1>&\"}");
        CHECK(m->sent_ms == 1700000000123LL && m->receive_count == 3);
        CHECK_STR_EQ(m->group_id, "user-7");
        CHECK_STR_EQ(m->sequence_number, "18849496460467696128");
        CHECK(m->nattributes == 3);
        CHECK_STR_EQ(pair(m->attributes, m->nattributes, "trace_id"), "t-1");
        CHECK_STR_EQ(pair(m->attributes, m->nattributes, "n"), "42");
        CHECK_STR_EQ(pair(m->attributes, m->nattributes, "blob"), "AAEC");
        m = &r.messages[1];
        CHECK(m->sent_ms == -1 && m->receive_count == -1 && !m->group_id && !m->sequence_number &&
              m->nattributes == 0);
        CHECK_STR_EQ(m->body, "");
    }
    etl_sqs_result_free(&r);

    both(ETL_SQS_RECEIVE, "{}",
         "<ReceiveMessageResponse><ReceiveMessageResult/>"
         "</ReceiveMessageResponse>",
         &r, __LINE__);
    CHECK(r.nmessages == 0);
    etl_sqs_result_free(&r);
    /* an empty 2xx answer to a JSON long poll (local-aws-sqs): no messages */
    CHECK(parse(&etl_sqs_json_codec, ETL_SQS_RECEIVE, 200, "", NULL, &r) == ETL_SQS_OK &&
          r.nmessages == 0);
    etl_sqs_result_free(&r);
}

static void test_batches_and_queue(void)
{
    struct etl_sqs_result r;
    both(ETL_SQS_DELETE_BATCH,
         "{\"Successful\":[{\"Id\":\"0\"}],\"Failed\":[{\"Id\":\"1\",\"SenderFault\":true,"
         "\"Code\":\"ReceiptHandleIsInvalid\",\"Message\":\"The input receipt handle is "
         "invalid.\"}]}",
         "<DeleteMessageBatchResponse><DeleteMessageBatchResult><DeleteMessageBatchResultEntry>"
         "<Id>0</Id></DeleteMessageBatchResultEntry><BatchResultErrorEntry><Id>1</Id>"
         "<SenderFault>true</SenderFault><Code>ReceiptHandleIsInvalid</Code>"
         "<Message>The input receipt handle is invalid.</Message></BatchResultErrorEntry>"
         "</DeleteMessageBatchResult></DeleteMessageBatchResponse>",
         &r, __LINE__);
    CHECK(r.nfailures == 1);
    if (r.nfailures == 1) {
        CHECK_STR_EQ(r.failures[0].id, "1");
        CHECK_STR_EQ(r.failures[0].code, "ReceiptHandleIsInvalid");
    }
    etl_sqs_result_free(&r);
    both(ETL_SQS_CHANGE_VISIBILITY_BATCH, "{\"Successful\":[{\"Id\":\"0\"}]}",
         "<ChangeMessageVisibilityBatchResponse><ChangeMessageVisibilityBatchResult>"
         "<ChangeMessageVisibilityBatchResultEntry><Id>0</Id>"
         "</ChangeMessageVisibilityBatchResultEntry></ChangeMessageVisibilityBatchResult>"
         "</ChangeMessageVisibilityBatchResponse>",
         &r, __LINE__);
    CHECK(r.nfailures == 0);
    etl_sqs_result_free(&r);
    both(ETL_SQS_GET_QUEUE_URL, "{\"QueueUrl\":\"http://h:4566/000000000000/q\"}",
         "<GetQueueUrlResponse><GetQueueUrlResult><QueueUrl>http://h:4566/000000000000/q"
         "</QueueUrl></GetQueueUrlResult></GetQueueUrlResponse>",
         &r, __LINE__);
    CHECK_STR_EQ(r.queue_url, "http://h:4566/000000000000/q");
    etl_sqs_result_free(&r);
    both(ETL_SQS_GET_QUEUE_ATTRIBUTES,
         "{\"Attributes\":{\"VisibilityTimeout\":\"30\",\"QueueArn\":\"arn:aws:sqs:x:0:q\"}}",
         "<GetQueueAttributesResponse><GetQueueAttributesResult><Attribute>"
         "<Name>VisibilityTimeout</Name><Value>30</Value></Attribute><Attribute>"
         "<Name>QueueArn</Name><Value>arn:aws:sqs:x:0:q</Value></Attribute>"
         "</GetQueueAttributesResult></GetQueueAttributesResponse>",
         &r, __LINE__);
    CHECK(r.nattributes == 2);
    CHECK_STR_EQ(pair(r.attributes, r.nattributes, "VisibilityTimeout"), "30");
    etl_sqs_result_free(&r);
}

/* The same error in both protocols maps to the same code and says the same thing. */
static void same_error(long status, const char *json, const char *xml, const char *header,
                       enum etl_sqs_code want, const char *want_code, int line)
{
    struct etl_sqs_result j, q;
    enum etl_sqs_code cj = parse(&etl_sqs_json_codec, ETL_SQS_RECEIVE, status, json, header, &j);
    enum etl_sqs_code cq = parse(&etl_sqs_query_codec, ETL_SQS_RECEIVE, status, xml, header, &q);
    if (cj != want || cq != want || !j.service_error || !q.service_error ||
        !str_eq(j.error_code, want_code) || !str_eq(q.error_code, want_code) ||
        !str_eq(j.error_message, q.error_message))
        check_fail_at(__FILE__, line, "json %s %s, query %s %s, want %s %s", etl_sqs_code_name(cj),
                      j.error_code ? j.error_code : "-", etl_sqs_code_name(cq),
                      q.error_code ? q.error_code : "-", etl_sqs_code_name(want), want_code);
    etl_sqs_result_free(&j);
    etl_sqs_result_free(&q);
}

static void test_errors(void)
{
    same_error(400, "{\"__type\":\"com.amazonaws.sqs#QueueDoesNotExist\",\"message\":\"gone\"}",
               "<ErrorResponse><Error><Type>Sender</Type><Code>QueueDoesNotExist</Code>"
               "<Message>gone</Message></Error></ErrorResponse>",
               NULL, ETL_SQS_NO_QUEUE, "QueueDoesNotExist", __LINE__);
    same_error(400, "{\"__type\":\"com.amazonaws.sqs#QueueDoesNotExist\",\"message\":\"gone\"}",
               "<ErrorResponse><Error><Code>AWS.SimpleQueueService.NonExistentQueue</Code>"
               "<Message>gone</Message></Error></ErrorResponse>",
               "AWS.SimpleQueueService.NonExistentQueue;Sender", ETL_SQS_NO_QUEUE,
               "AWS.SimpleQueueService.NonExistentQueue", __LINE__);
    same_error(400, "{\"__type\":\"ThrottlingException\",\"Message\":\"slow down\"}",
               "<ErrorResponse><Error><Code>ThrottlingException</Code><Message>slow down"
               "</Message></Error></ErrorResponse>",
               NULL, ETL_SQS_THROTTLED, "ThrottlingException", __LINE__);
    same_error(403, "{\"__type\":\"SignatureDoesNotMatch\",\"message\":\"bad\"}",
               "<ErrorResponse><Error><Code>SignatureDoesNotMatch</Code><Message>bad</Message>"
               "</Error></ErrorResponse>",
               NULL, ETL_SQS_AUTH, "SignatureDoesNotMatch", __LINE__);
    same_error(503, "{\"code\":\"ServiceUnavailable\"}",
               "<ErrorResponse><Error><Code>ServiceUnavailable</Code></Error></ErrorResponse>",
               NULL, ETL_SQS_SERVER, "ServiceUnavailable", __LINE__);

    /* what detection reads: an XML answer to a JSON request, MissingAction, 415 */
    struct etl_sqs_result r;
    CHECK(parse(&etl_sqs_json_codec, ETL_SQS_LIST_QUEUES, 400,
                "<ErrorResponse><Error><Code>MissingAction</Code></Error></ErrorResponse>", NULL,
                &r) == ETL_SQS_PROTOCOL &&
          r.mismatch);
    etl_sqs_result_free(&r);
    CHECK(parse(&etl_sqs_json_codec, ETL_SQS_LIST_QUEUES, 415, "{}", NULL, &r) != ETL_SQS_OK &&
          r.mismatch);
    etl_sqs_result_free(&r);
    CHECK(parse(&etl_sqs_json_codec, ETL_SQS_LIST_QUEUES, 400,
                "{\"__type\":\"com.amazonaws.sqs#QueueDoesNotExist\"}", NULL,
                &r) == ETL_SQS_NO_QUEUE &&
          !r.mismatch);
    etl_sqs_result_free(&r);
    /* not JSON, not XML: a protocol failure with a reason, not a crash */
    CHECK(parse(&etl_sqs_json_codec, ETL_SQS_RECEIVE, 200, "[1,2", NULL, &r) == ETL_SQS_PROTOCOL &&
          !r.service_error);
    CHECK_STR_EQ(r.why, "the answer is not a JSON object");
    etl_sqs_result_free(&r);
    CHECK(parse(&etl_sqs_query_codec, ETL_SQS_RECEIVE, 200, "<a>", NULL, &r) == ETL_SQS_PROTOCOL &&
          strncmp(r.why, "bad XML answer: ", 16) == 0);
    etl_sqs_result_free(&r);
}

/* ---- the JSON reader (src/sqs_json_answer.c) on its own ------------------------------------- */

static enum etl_sqs_code json(const char *body, struct etl_sqs_result *r)
{
    return parse(&etl_sqs_json_codec, ETL_SQS_RECEIVE, 200, body, NULL, r);
}

static void test_json_reader(void)
{
    struct etl_sqs_result r;
    /* escapes: \" \\ \/ \n \t, \u to UTF-8 (2, 3 and 4 bytes, a surrogate pair joined); keys
     * with escapes; unknown values of every kind skipped, nested; numbers as text where a string
     * is expected (integers only); repeated keys: the last one counts */
    CHECK(
        json(" {\"Skip\":[1,-0.5e+3,true,false,null,{\"a\":[[]],\"b\":{}},\"\\u0041\"],"
             "\"Messages\":[{\"MessageId\":\"old\"}],"
             "\"Messages\" : [ {\"Message\\u0049d\":\"m\\/1\",\"ReceiptHandle\":\"r\","
             "\"Body\":\"a\\\"b\\\\c\\nd\\te \\u00e9\\u20ac\\ud83d\\ude00\","
             "\"Attributes\":{\"SentTimestamp\":1700000000123,\"ApproximateReceiveCount\":\"x\","
             "\"MessageGroupId\":12,\"SequenceNumber\":1.5},"
             "\"MessageAttributes\":{\"s\":{\"StringValue\":\"v\",\"BinaryValue\":\"b\"},"
             "\"b\":{\"BinaryValue\":\"QUI=\"},\"e\":{},\"x\":7,\"k\\u0031\":{\"StringValue\":1}},"
             "\"Body\":\"second\\u0021\"} ] }\n",
             &r) == ETL_SQS_OK);
    CHECK(r.nmessages == 1);
    if (r.nmessages == 1) {
        const struct etl_sqs_message *m = &r.messages[0];
        CHECK_STR_EQ(m->id, "m/1");
        CHECK_STR_EQ(m->body, "second!");
        CHECK(m->sent_ms == 1700000000123LL && m->receive_count == -1);
        CHECK_STR_EQ(m->group_id, "12");
        CHECK(m->sequence_number == NULL);
        CHECK(m->nattributes == 4);
        CHECK_STR_EQ(pair(m->attributes, m->nattributes, "s"), "v");
        CHECK_STR_EQ(pair(m->attributes, m->nattributes, "b"), "QUI=");
        CHECK_STR_EQ(pair(m->attributes, m->nattributes, "e"), "");
        CHECK_STR_EQ(pair(m->attributes, m->nattributes, "k1"), "1");
    }
    etl_sqs_result_free(&r);
    CHECK(json("{\"Messages\":[{\"MessageId\":\"m\",\"Body\":\"a\\\"b\\\\c\\nd\\te \\u00e9"
               "\\u20ac\\ud83d\\ude00\"}]}",
               &r) == ETL_SQS_OK &&
          r.nmessages == 1);
    if (r.nmessages == 1)
        CHECK_STR_EQ(r.messages[0].body, "a\"b\\c\nd\te \xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80");
    etl_sqs_result_free(&r);
    /* a message's strings are copied into one block the result owns (r.strings), as large as
     * the rest of the answer from the first of them: the tightest values still fit (an integer
     * followed by one character, empty strings, escapes) */
    CHECK(json("{\"Messages\":[{\"MessageId\":7,\"ReceiptHandle\":\"\",\"Body\":\"\\u0041\","
               "\"Attributes\":{\"MessageGroupId\":-0,\"SequenceNumber\":\"\"}},{\"Body\":1,"
               "\"MessageId\":\"\\\"\",\"ReceiptHandle\":2}]}",
               &r) == ETL_SQS_OK &&
          r.nmessages == 2 && r.strings != NULL);
    if (r.nmessages == 2) {
        const struct etl_sqs_message *m = r.messages;
        CHECK_STR_EQ(m[0].id, "7");
        CHECK_STR_EQ(m[0].receipt, "");
        CHECK_STR_EQ(m[0].body, "A");
        CHECK_STR_EQ(m[0].group_id, "0");
        CHECK_STR_EQ(m[0].sequence_number, "");
        CHECK_STR_EQ(m[1].body, "1");
        CHECK_STR_EQ(m[1].id, "\"");
        CHECK_STR_EQ(m[1].receipt, "2");
        const char *fields[] = {m[0].id,       m[0].receipt,         m[0].body,
                                m[0].group_id, m[0].sequence_number, m[1].body,
                                m[1].id,       m[1].receipt};
        for (size_t i = 0; i < sizeof fields / sizeof *fields; i++)
            CHECK(fields[i] >= r.strings && fields[i] < r.strings + 200, "field %zu", i);
    }
    etl_sqs_result_free(&r);
    /* the messages end at the first element that is not an object; a non-array is none */
    CHECK(json("{\"Messages\":[{\"MessageId\":\"a\"},2,{\"MessageId\":\"c\"}]}", &r) ==
              ETL_SQS_OK &&
          r.nmessages == 1);
    etl_sqs_result_free(&r);
    CHECK(json("{\"Messages\":{\"MessageId\":\"a\"}}", &r) == ETL_SQS_OK && r.nmessages == 0);
    etl_sqs_result_free(&r);
    CHECK(json("[1,{\"Messages\":[]}]", &r) == ETL_SQS_OK && r.nmessages == 0);
    etl_sqs_result_free(&r);

    /* refused: not strict JSON, or not an object or array at the top */
    static const char *const bad[] = {"{\"Messages\":[]} x",
                                      "{\"a\":01}",
                                      "{\"a\":1.}",
                                      "{\"a\":-}",
                                      "{\"a\":.5}",
                                      "{\"a\":+1}",
                                      "{\"a\":NaN}",
                                      "{\"a\":0x10}",
                                      "{\"a\":[1,]}",
                                      "{\"a\":1,}",
                                      "{\"a\" 1}",
                                      "{a:1}",
                                      "{\"a\":\"\\ud800\"}",
                                      "{\"a\":\"\\udc00\"}",
                                      "{\"a\":\"\\ud800\\u0041\"}",
                                      "{\"a\":\"\\x\"}",
                                      "{\"a\":\"\\u12g4\"}",
                                      "{\"a\":\"open}",
                                      "{\"a\":tru}",
                                      "{\"a\":nul}",
                                      "\"text\"",
                                      "42",
                                      "{\"a\":1}/* c */",
                                      "{\"a\":[1 2]}",
                                      "{\"a\":{\"b\":1 \"c\":2}}"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        CHECK(json(bad[i], &r) == ETL_SQS_PROTOCOL, "accepted: %s", bad[i]);
        CHECK(r.nmessages == 0 && strcmp(r.why, "the answer is not a JSON object") == 0, "%s: %s",
              bad[i], r.why);
        etl_sqs_result_free(&r);
    }
    /* raw control characters in a string are taken as they are (as lua-cjson took them) */
    CHECK(json("{\"Messages\":[{\"MessageId\":\"a\tb\n\"}]}", &r) == ETL_SQS_OK &&
          r.nmessages == 1 && strcmp(r.messages[0].id, "a\tb\n") == 0);
    etl_sqs_result_free(&r);
    /* a NUL inside the answer ends nothing: refused */
    struct etl_sqs_answer ans = {200, "{\"a\":1}\0{}", 10, ""};
    CHECK(etl_sqs_json_codec.parse(ETL_SQS_RECEIVE, &ans, &r) == ETL_SQS_PROTOCOL);
    etl_sqs_result_free(&r);
    /* nesting: 1000 levels are read, 1001 refused */
    char deep[2 * 1001 + 1];
    for (int depth = 1000; depth <= 1001; depth++) {
        memset(deep, '[', (size_t)depth);
        memset(deep + depth, ']', (size_t)depth);
        deep[2 * depth] = '\0';
        CHECK(json(deep, &r) == (depth == 1000 ? ETL_SQS_OK : ETL_SQS_PROTOCOL), "depth %d", depth);
        etl_sqs_result_free(&r);
    }
    /* a long escaped string (its scratch grows as it is decoded): every byte in place */
    struct etl_buf longer = {0}, want = {0};
    etl_buf_adds(&longer, "{\"Messages\":[{\"MessageId\":\"m\",\"Body\":\"");
    for (int i = 0; i < 700; i++) {
        etl_buf_addf(&longer, "k%d\\\"\\u00e9", i);
        etl_buf_addf(&want, "k%d\"\xc3\xa9", i);
    }
    etl_buf_adds(&longer, "\"}]}");
    CHECK(json(longer.p, &r) == ETL_SQS_OK && r.nmessages == 1);
    if (r.nmessages == 1)
        CHECK(r.messages[0].body && strcmp(r.messages[0].body, want.p) == 0);
    etl_sqs_result_free(&r);
    etl_buf_free(&longer);
    etl_buf_free(&want);
    /* eleven messages (the arrays grow by doubling): each kept whole, in order */
    struct etl_buf eleven = {0};
    etl_buf_adds(&eleven, "{\"Messages\":[");
    for (int i = 0; i < 11; i++)
        etl_buf_addf(&eleven,
                     "%s{\"MessageId\":\"m%d\",\"ReceiptHandle\":\"r%d\",\"Attributes\":"
                     "{\"SentTimestamp\":\"%d\"},\"MessageAttributes\":{\"a\":"
                     "{\"StringValue\":\"v%d\"}}}",
                     i ? "," : "", i, i, 1000 + i, i);
    etl_buf_adds(&eleven, "]}");
    CHECK(json(eleven.p, &r) == ETL_SQS_OK && r.nmessages == 11);
    for (size_t i = 0; i < r.nmessages; i++) {
        char id[24], v[24];
        snprintf(id, sizeof id, "m%zu", i);
        snprintf(v, sizeof v, "v%zu", i);
        CHECK_STR_EQ(r.messages[i].id, id);
        CHECK(r.messages[i].sent_ms == 1000 + (long long)i && r.messages[i].nattributes == 1);
        CHECK_STR_EQ(pair(r.messages[i].attributes, r.messages[i].nattributes, "a"), v);
    }
    etl_sqs_result_free(&r);
    etl_buf_free(&eleven);
    /* more messages than a result keeps: a protocol error, nothing kept */
    struct etl_buf many = {0};
    etl_buf_adds(&many, "{\"Messages\":[");
    for (unsigned i = 0; i <= ETL_SQS_MAX_ENTRIES; i++)
        etl_buf_adds(&many, i ? ",{}" : "{}");
    etl_buf_adds(&many, "]}");
    CHECK(json(many.p, &r) == ETL_SQS_PROTOCOL && r.nmessages == 0);
    CHECK_STR_EQ(r.why, "too many entries or out of memory");
    etl_sqs_result_free(&r);
    etl_buf_free(&many);
}

int main(void)
{
    test_requests();
    test_receive();
    test_batches_and_queue();
    test_errors();
    test_json_reader();
    return CHECK_DONE("test_sqs_codec");
}
