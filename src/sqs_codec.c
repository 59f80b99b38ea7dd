/* sqs_codec.c: what the two SQS codecs share (include/etlua/sqs_codec.h): the names of codes
 * and actions, the classification of service errors, and the result's memory. */
#include "etlua/sqs_codec.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

const char *etl_sqs_code_name(enum etl_sqs_code code)
{
    static const char *const names[] = {"ok",     "network", "timeout",  "throttled",
                                        "server", "auth",    "no_queue", "protocol",
                                        "client", "stopped", "busy"};
    return (unsigned)code < sizeof names / sizeof names[0] ? names[code] : "client";
}

const char *etl_sqs_action_name(enum etl_sqs_action action)
{
    static const char *const names[] = {
        "ReceiveMessage", "DeleteMessageBatch", "ChangeMessageVisibilityBatch",
        "GetQueueUrl",    "GetQueueAttributes", "ListQueues"};
    return (unsigned)action < sizeof names / sizeof names[0] ? names[action] : "?";
}

static int code_is(const char *code, const char *const *list)
{
    for (; *list; list++)
        if (strcmp(code, *list) == 0)
            return 1;
    return 0;
}

enum etl_sqs_code etl_sqs_classify(long http_status, const char *aws_code)
{
    static const char *const throttled[] = {"Throttling",
                                            "ThrottlingException",
                                            "RequestThrottled",
                                            "RequestThrottledException",
                                            "TooManyRequestsException",
                                            "SlowDown",
                                            "ProvisionedThroughputExceededException",
                                            "RequestLimitExceeded",
                                            "KmsThrottled",
                                            "OverLimit",
                                            NULL};
    static const char *const auth[] = {"InvalidClientTokenId",
                                       "SignatureDoesNotMatch",
                                       "AccessDenied",
                                       "AccessDeniedException",
                                       "UnrecognizedClientException",
                                       "IncompleteSignature",
                                       "MissingAuthenticationToken",
                                       "MissingAuthenticationTokenException",
                                       "ExpiredToken",
                                       "ExpiredTokenException",
                                       "InvalidSecurity",
                                       "MissingClientTokenId",
                                       "InvalidAccessKeyId",
                                       "AuthFailure",
                                       "RequestExpired",
                                       "OptInRequired",
                                       "KmsAccessDenied",
                                       NULL};
    static const char *const server[] = {"InternalError", "InternalFailure", "ServiceUnavailable",
                                         NULL};
    static const char *const protocol[] = {"MissingAction", "InvalidAction", "UnknownOperation",
                                           "UnknownOperationException", NULL};
    if (aws_code && *aws_code) {
        const char *hash = strrchr(aws_code, '#'); /* com.amazonaws.sqs#X */
        const char *c = hash ? hash + 1 : aws_code;
        char buf[128];
        snprintf(buf, sizeof buf, "%.*s", (int)strcspn(c, ":;"), c);
        if (strstr(buf, "QueueDoesNotExist") || strstr(buf, "NonExistentQueue"))
            return ETL_SQS_NO_QUEUE;
        if (code_is(buf, throttled))
            return ETL_SQS_THROTTLED;
        if (code_is(buf, auth))
            return ETL_SQS_AUTH;
        if (code_is(buf, server))
            return ETL_SQS_SERVER;
        if (code_is(buf, protocol))
            return ETL_SQS_PROTOCOL;
    }
    if (http_status == 429)
        return ETL_SQS_THROTTLED;
    if (http_status >= 500)
        return ETL_SQS_SERVER;
    if (http_status == 401 || http_status == 403)
        return ETL_SQS_AUTH;
    return ETL_SQS_CLIENT;
}

int etl_sqs_is_protocol_mismatch(const char *aws_code, const char *message)
{
    enum etl_sqs_code c = etl_sqs_classify(400, aws_code);
    if (c == ETL_SQS_PROTOCOL)
        return 1;
    return c == ETL_SQS_CLIENT && message && strstr(message, "Action") != NULL;
}

enum etl_sqs_code etl_sqs_service_error(struct etl_sqs_result *out, long status, const char *code,
                                        const char *message)
{
    out->service_error = 1;
    free(out->error_code);
    free(out->error_message);
    out->error_code = code && *code ? strdup(code) : NULL;
    out->error_message = message ? strdup(message) : NULL;
    return etl_sqs_classify(status, code);
}

/* The array's room is the power of two at or above its count (no capacity kept): it grows
 * only when the count is 0 or a power of two, so ten messages cost five reallocs, not ten. */
void *etl_sqs_append(void **arr, size_t *n, size_t sz)
{
    if (*n >= ETL_SQS_MAX_ENTRIES)
        return NULL;
    char *p = *arr;
    if ((*n & (*n - 1)) == 0) { /* 0, 1, 2, 4, ...: full */
        p = realloc(*arr, (*n ? 2 * *n : 1) * sz);
        if (!p)
            return NULL;
        *arr = p;
    }
    memset(p + *n * sz, 0, sz);
    return p + (*n)++ * sz;
}

long long etl_sqs_parse_count(const char *s)
{
    long long v = 0;
    if (!s || !*s)
        return -1;
    for (int i = 0; s[i]; i++) {
        if (s[i] < '0' || s[i] > '9' || i >= 18)
            return -1;
        v = v * 10 + (s[i] - '0');
    }
    return v;
}

static void free_pairs(struct etl_sqs_pair *p, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        free(p[i].name);
        free(p[i].value);
    }
    free(p);
}

void etl_sqs_result_free(struct etl_sqs_result *r)
{
    free(r->queue_url);
    for (size_t i = 0; i < r->nmessages; i++) {
        struct etl_sqs_message *m = &r->messages[i];
        if (!r->strings) {
            free(m->id);
            free(m->receipt);
            free(m->body);
            free(m->group_id);
            free(m->sequence_number);
        }
        free_pairs(m->attributes, m->nattributes);
    }
    free(r->messages);
    free(r->strings);
    for (size_t i = 0; i < r->nfailures; i++) {
        free(r->failures[i].id);
        free(r->failures[i].code);
        free(r->failures[i].message);
    }
    free(r->failures);
    free_pairs(r->attributes, r->nattributes);
    free(r->error_code);
    free(r->error_message);
    memset(r, 0, sizeof *r);
}
