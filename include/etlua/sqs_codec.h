/* sqs_codec.h: the SQS wire protocols behind one table of functions, after libcurl's struct
 * Curl_handler: the Lua binding (src/sqs.c) picks a codec once, after detection, and never asks
 * which protocol it speaks again. A codec builds the body of a request from a neutral struct
 * etl_sqs_request and reads an answer into a neutral struct etl_sqs_result, mapping the
 * service's errors onto the etlua.sqs codes. Both codecs are pure functions of their input
 * bytes, bounded in what they keep, so tests and fuzzers feed them arbitrary answers:
 *  - src/sqs_json.c   JSON 1.0 (x-amz-json-1.0, X-Amz-Target), answers read by
 *                     src/sqs_json_answer.c with the one-pass reader of src/sqs_json_read.c
 *                     (why not a JSON library: the header of sqs_json_read.c);
 *  - src/sqs_query.c  the query protocol (form bodies), XML answers read with expat.
 * src/sqs_codec.c holds what both share: code and action names, the error classification,
 * freeing a result. */
#ifndef ETLUA_SQS_CODEC_H
#define ETLUA_SQS_CODEC_H

#include "etlua/buf.h"

#include <stddef.h>

/* The codes of expected failures, returned to Lua as the third value of nil, msg, code. */
enum etl_sqs_code {
    ETL_SQS_OK = 0,
    ETL_SQS_NETWORK,
    ETL_SQS_TIMEOUT,
    ETL_SQS_THROTTLED,
    ETL_SQS_SERVER,
    ETL_SQS_AUTH,
    ETL_SQS_NO_QUEUE,
    ETL_SQS_PROTOCOL,
    ETL_SQS_CLIENT,
    ETL_SQS_STOPPED, /* a long poll cut short by SIGTERM/SIGINT */
    ETL_SQS_BUSY     /* every request slot is taken: try again after a poll */
};

/* "network", "timeout", ... ; "ok" for ETL_SQS_OK. */
const char *etl_sqs_code_name(enum etl_sqs_code code);

/* Classifies a failed answer: aws_code is the service's error code ("QueueDoesNotExist",
 * "com.amazonaws.sqs#QueueDoesNotExist", "AWS.SimpleQueueService.NonExistentQueue", ...) or NULL;
 * status the HTTP status. Throttling and missing queue win over the status class. */
enum etl_sqs_code etl_sqs_classify(long http_status, const char *aws_code);

/* True when an error code means "this endpoint does not speak the protocol you used" (the
 * answer of a query-only endpoint to a JSON request: MissingAction, InvalidAction, ...). */
int etl_sqs_is_protocol_mismatch(const char *aws_code, const char *message);

enum etl_sqs_action {
    ETL_SQS_RECEIVE,
    ETL_SQS_DELETE_BATCH,
    ETL_SQS_CHANGE_VISIBILITY_BATCH,
    ETL_SQS_GET_QUEUE_URL,
    ETL_SQS_GET_QUEUE_ATTRIBUTES,
    ETL_SQS_LIST_QUEUES
};

/* "ReceiveMessage", "DeleteMessageBatch", ... */
const char *etl_sqs_action_name(enum etl_sqs_action action);

struct etl_sqs_entry {
    const char *id, *receipt;
};

/* One request. Strings are NUL-terminated and borrowed. */
struct etl_sqs_request {
    enum etl_sqs_action action;
    const char *queue_url;  /* every action but GetQueueUrl and ListQueues */
    const char *queue_name; /* GetQueueUrl */
    int max_messages;       /* ReceiveMessage: 1..10 */
    int wait_s;             /* ReceiveMessage: 0..20 */
    int visibility_s;       /* ReceiveMessage (< 0: the queue's), ChangeMessageVisibilityBatch */
    const struct etl_sqs_entry *entries; /* the batches: 1..10 */
    size_t nentries;
    const char *const
        *names; /* GetQueueAttributes: attribute names (none: the service's default) */
    size_t nnames;
};

/* The message system attributes every ReceiveMessage asks for (both protocols); message
 * attributes are asked for with "All". */
#define ETL_SQS_SYSTEM_ATTRIBUTES                                                                  \
    {                                                                                              \
        "SentTimestamp", "ApproximateReceiveCount", "MessageGroupId", "SequenceNumber"             \
    }

#define ETL_SQS_MAX_FIELD (1024u * 1024u) /* longest text of one XML element kept */
#define ETL_SQS_MAX_ENTRIES 1000u         /* most messages / entries / attributes kept */

struct etl_sqs_pair {
    char *name, *value;
};

struct etl_sqs_message {
    char *id, *receipt, *body;        /* NULL when absent (the binding drops a message without id
                                      or receipt and reads a missing body as "") */
    long long sent_ms;                /* SentTimestamp, -1 when absent or not a number */
    long long receive_count;          /* ApproximateReceiveCount, -1 when absent */
    char *group_id, *sequence_number; /* FIFO queues; NULL when absent */
    struct etl_sqs_pair
        *attributes; /* message attributes: StringValue, else BinaryValue (base64) */
    size_t nattributes;
};

struct etl_sqs_failure {       /* one failed entry of a batch */
    char *id, *code, *message; /* any may be NULL */
};

/* Everything an answer may carry; what the action does not use stays empty. */
struct etl_sqs_result {
    char *queue_url; /* GetQueueUrl */
    struct etl_sqs_message *messages;
    size_t nmessages;
    char *strings; /* NULL, or one block holding every message's id, receipt, body, group_id and
                      sequence_number (the JSON codec's): those are then not freed one by one */
    struct etl_sqs_failure *failures;
    size_t nfailures;
    struct etl_sqs_pair *attributes; /* GetQueueAttributes */
    size_t nattributes;
    /* a failed answer */
    int service_error;                /* the service said why: error_code / error_message */
    char *error_code, *error_message; /* may be NULL */
    int mismatch;                     /* the endpoint does not speak this protocol */
    char why[200];                    /* otherwise: what was wrong with the answer */
};

void etl_sqs_result_free(struct etl_sqs_result *r);

/* An answer as the transport received it. */
struct etl_sqs_answer {
    long status;
    const char *body; /* NUL-terminated, len bytes */
    size_t len;
    const char *query_error; /* x-amzn-query-error header ("Code;Sender") or "" */
};

struct etl_sqs_codec {
    const char *name;         /* "json" | "query" */
    const char *content_type; /* the Content-Type header line */
    int send_target;          /* sends X-Amz-Target: AmazonSQS.<Action> */
    /* Appends the body of req to out. Returns 0, or -1 out of memory. */
    int (*build)(const struct etl_sqs_request *req, struct etl_buf *out);
    /* Reads the answer to an action into *out (zeroed first; free it in every case). Returns
     * ETL_SQS_OK, or the code of the failure with out->service_error / error_code /
     * error_message / mismatch / why saying what it was. */
    enum etl_sqs_code (*parse)(enum etl_sqs_action action, const struct etl_sqs_answer *ans,
                               struct etl_sqs_result *out);
};

extern const struct etl_sqs_codec etl_sqs_json_codec;
extern const struct etl_sqs_codec etl_sqs_query_codec;

/* The JSON codec's parse (src/sqs_json_answer.c). */
enum etl_sqs_code etl_sqs_json_parse(enum etl_sqs_action action, const struct etl_sqs_answer *ans,
                                     struct etl_sqs_result *out);

/* Shared by the codecs (sqs_codec.c): grows *arr of *n elements of size sz by one zeroed
 * element (room for the next ones grows by doubling); NULL when ETL_SQS_MAX_ENTRIES are there
 * or memory runs out. */
void *etl_sqs_append(void **arr, size_t *n, size_t sz);

/* Shared by the codecs: "12345" -> 12345; -1 for anything but 1..18 decimal digits. */
long long etl_sqs_parse_count(const char *s);

/* Shared by the codecs: the code of a service error and its classification; sets
 * out->service_error and copies code / message (either may be NULL). */
enum etl_sqs_code etl_sqs_service_error(struct etl_sqs_result *out, long status, const char *code,
                                        const char *message);

#endif
