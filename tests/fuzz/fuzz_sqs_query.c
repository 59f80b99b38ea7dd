/* fuzz_sqs_query.c: libFuzzer target for the SQS query protocol's XML answers.
 * The input is an answer body as the endpoint would send it (ReceiveMessage,
 * DeleteMessageBatch / ChangeMessageVisibilityBatch results, GetQueueUrl, GetQueueAttributes,
 * ErrorResponse, or anything else). It goes through etl_sqs_query_parse exactly as etl_sqs_call_query in
 * src/sqs.c feeds it, then through what the client does with the result: the error code is
 * classified, and the ids and receipt handles are sent back in a DeleteMessageBatch form.
 * Invariants checked: the parser's promises in include/etlua/sqs.h (bounded lists and fields,
 * NUL-terminated strings, root name terminated, an error message on failure). */
#include "etlua/sqs.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check_str(const char *s)
{
    if (s && strlen(s) > ETL_SQS_MAX_FIELD)
        abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct etl_sqs_result r;
    char err[200];
    err[0] = '\0';
    /* the transport hands over a heap copy that is NUL-terminated after len bytes */
    char *body = malloc(size + 1);
    if (!body)
        return 0;
    if (size)
        memcpy(body, data, size);
    body[size] = '\0';

    int rc = etl_sqs_query_parse(body, size, &r, err, sizeof err);
    if (rc != 0 && rc != -1)
        abort();
    if (rc == -1 && err[0] == '\0')
        abort(); /* a failure always says why */
    if (memchr(r.root, '\0', sizeof r.root) == NULL)
        abort();
    if (r.nmessages > ETL_SQS_MAX_ENTRIES || r.nfailures > ETL_SQS_MAX_ENTRIES ||
        r.nsucceeded > ETL_SQS_MAX_ENTRIES || r.nattributes > ETL_SQS_MAX_ENTRIES)
        abort();
    check_str(r.error_code);
    check_str(r.error_message);
    check_str(r.queue_url);

    /* what etl_sqs_call_query does with a failed answer: classify its code */
    enum etl_sqs_code code = etl_sqs_classify(400, r.error_code);
    if (code == ETL_SQS_OK || code > ETL_SQS_CLIENT)
        abort();
    (void)etl_sqs_code_name(code);
    (void)etl_sqs_is_protocol_mismatch(r.error_code, r.error_message);

    /* what m_receive + delete_batch do with the messages: send ids and receipts back */
    struct etl_sqs_form f;
    etl_sqs_query_begin(&f, "DeleteMessageBatch");
    char key[96];
    for (size_t i = 0; i < r.nmessages; i++) {
        const struct etl_sqs_message *m = &r.messages[i];
        check_str(m->id);
        check_str(m->receipt);
        check_str(m->body);
        if (m->sent_ms < -1)
            abort();
        if (!m->id || !m->receipt || i >= 10)
            continue;
        snprintf(key, sizeof key, "DeleteMessageBatchRequestEntry.%zu.Id", i + 1);
        etl_sqs_query_add(&f, key, m->id, strlen(m->id));
        snprintf(key, sizeof key, "DeleteMessageBatchRequestEntry.%zu.ReceiptHandle", i + 1);
        etl_sqs_query_add(&f, key, m->receipt, strlen(m->receipt));
    }
    if (f.ok && (f.p == NULL || strlen(f.p) != f.len))
        abort(); /* the form is percent-encoded: no NUL inside, terminated at len */
    etl_sqs_query_free(&f);

    for (size_t i = 0; i < r.nfailures; i++) {
        check_str(r.failures[i].id);
        check_str(r.failures[i].code);
        check_str(r.failures[i].message);
        (void)etl_sqs_classify(200, r.failures[i].code);
    }
    for (size_t i = 0; i < r.nsucceeded; i++)
        check_str(r.succeeded[i]);
    for (size_t i = 0; i < r.nattributes; i++) {
        if (rc == 0 && (!r.attributes[i].name || !r.attributes[i].value))
            abort(); /* m_attributes uses both of a parsed answer without a NULL check */
        check_str(r.attributes[i].name);
        check_str(r.attributes[i].value);
    }

    etl_sqs_result_free(&r);
    etl_sqs_result_free(&r); /* freeing twice is safe: the struct is zeroed */
    free(body);
    return 0;
}
