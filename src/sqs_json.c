/* sqs_json.c: the SQS JSON 1.0 protocol codec (include/etlua/sqs_codec.h): request bodies are
 * written here (objects of strings, integers and string arrays: escaping is all there is to it);
 * answers are read by src/sqs_json_answer.c. */
#include "etlua/buf.h"
#include "etlua/sqs_codec.h"

/* ---- request bodies ------------------------------------------------------------------------ */

/* 1 for the bytes a JSON string cannot hold as they are (control characters, '"', '\\') and for
 * the NUL that ends the string: runs between them are copied whole. */
static const unsigned char stop[256] = {1, 1, 1, 1, 1, 1, 1, 1, 1,         1,         1, 1,
                                        1, 1, 1, 1, 1, 1, 1, 1, 1,         1,         1, 1,
                                        1, 1, 1, 1, 1, 1, 1, 1, ['"'] = 1, ['\\'] = 1};

static void add_string(struct etl_buf *b, const char *s)
{
    etl_buf_add(b, "\"", 1);
    for (;;) {
        const char *run = s;
        while (!stop[(unsigned char)*s])
            s++;
        etl_buf_add(b, run, (size_t)(s - run));
        if (!*s)
            break;
        unsigned char c = (unsigned char)*s++;
        if (c == '"' || c == '\\') {
            char esc[2] = {'\\', (char)c};
            etl_buf_add(b, esc, 2);
        } else {
            char esc[7] = "\\u00";
            etl_hex(esc + 4, &c, 1, 0);
            etl_buf_add(b, esc, 6);
        }
    }
    etl_buf_add(b, "\"", 1);
}

/* ,"key": */
static void add_key(struct etl_buf *b, const char *key)
{
    if (b->len > 1)
        etl_buf_add(b, ",", 1);
    add_string(b, key);
    etl_buf_add(b, ":", 1);
}

static void add_names(struct etl_buf *b, const char *key, const char *const *names, size_t n)
{
    add_key(b, key);
    etl_buf_add(b, "[", 1);
    for (size_t i = 0; i < n; i++) {
        if (i)
            etl_buf_add(b, ",", 1);
        add_string(b, names[i]);
    }
    etl_buf_add(b, "]", 1);
}

static int build(const struct etl_sqs_request *req, struct etl_buf *out)
{
    static const char *const system_attributes[] = ETL_SQS_SYSTEM_ATTRIBUTES;
    static const char *const all[] = {"All"};
    etl_buf_add(out, "{", 1);
    if (req->action == ETL_SQS_GET_QUEUE_URL) {
        add_key(out, "QueueName");
        add_string(out, req->queue_name);
    } else if (req->action == ETL_SQS_LIST_QUEUES) {
        add_key(out, "MaxResults");
        etl_buf_add(out, "1", 1);
    } else {
        add_key(out, "QueueUrl");
        add_string(out, req->queue_url);
    }
    if (req->action == ETL_SQS_RECEIVE) {
        add_key(out, "MaxNumberOfMessages");
        etl_buf_addf(out, "%d", req->max_messages);
        add_key(out, "WaitTimeSeconds");
        etl_buf_addf(out, "%d", req->wait_s);
        if (req->visibility_s >= 0) {
            add_key(out, "VisibilityTimeout");
            etl_buf_addf(out, "%d", req->visibility_s);
        }
        add_names(out, "AttributeNames", system_attributes, 4);
        add_names(out, "MessageSystemAttributeNames", system_attributes, 4);
        add_names(out, "MessageAttributeNames", all, 1);
    } else if (req->action == ETL_SQS_DELETE_BATCH ||
               req->action == ETL_SQS_CHANGE_VISIBILITY_BATCH) {
        add_key(out, "Entries");
        etl_buf_add(out, "[", 1);
        for (size_t i = 0; i < req->nentries; i++) {
            etl_buf_adds(out, i ? ",{\"Id\":" : "{\"Id\":");
            add_string(out, req->entries[i].id);
            etl_buf_adds(out, ",\"ReceiptHandle\":");
            add_string(out, req->entries[i].receipt);
            if (req->action == ETL_SQS_CHANGE_VISIBILITY_BATCH)
                etl_buf_addf(out, ",\"VisibilityTimeout\":%d", req->visibility_s);
            etl_buf_add(out, "}", 1);
        }
        etl_buf_add(out, "]", 1);
    } else if (req->action == ETL_SQS_GET_QUEUE_ATTRIBUTES && req->nnames > 0) {
        add_names(out, "AttributeNames", req->names, req->nnames);
    }
    etl_buf_add(out, "}", 1);
    return out->oom || out->over_limit ? -1 : 0;
}

const struct etl_sqs_codec etl_sqs_json_codec = {
    .name = "json",
    .content_type = "Content-Type: application/x-amz-json-1.0",
    .send_target = 1,
    .build = build,
    .parse = etl_sqs_json_parse,
};
