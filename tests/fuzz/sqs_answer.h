/* sqs_answer.h: what fuzz_sqs_json.c and fuzz_sqs_query.c share: one answer fed through a codec
 * (include/etlua/sqs_codec.h) exactly as the client does, and the codec's promises checked.
 * Input layout: one byte choosing the action (low 3 bits) and the HTTP status (high bits), then
 * the answer body. Invariants: the result's lists and strings are bounded, a failed answer says
 * why (service error or a reason), its code is a real failure code, the pairs have names and
 * values, and the ids and receipts of the messages can be sent back in a DeleteMessageBatch. */
#include "etlua/buf.h"
#include "etlua/sqs_codec.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

static void check_str(const char *s)
{
    if (s && strlen(s) > 16u * 1024u * 1024u)
        abort();
}

static void check_pairs(const struct etl_sqs_pair *p, size_t n)
{
    if (n > ETL_SQS_MAX_ENTRIES)
        abort();
    for (size_t i = 0; i < n; i++) {
        if (!p[i].name || !p[i].value)
            abort();
        check_str(p[i].name);
        check_str(p[i].value);
    }
}

static void fuzz_answer(const struct etl_sqs_codec *codec, const uint8_t *data, size_t size)
{
    static const long statuses[] = {200, 200, 400, 403, 404, 415, 429, 500, 503, 200};
    if (size < 1)
        return;
    enum etl_sqs_action action = (enum etl_sqs_action)(data[0] % 6);
    long status = statuses[(data[0] >> 3) % (sizeof statuses / sizeof statuses[0])];
    /* the transport hands over a heap copy that is NUL-terminated after len bytes */
    char *body = malloc(size);
    if (!body)
        return;
    memcpy(body, data + 1, size - 1);
    body[size - 1] = '\0';
    struct etl_sqs_answer ans = {status, body, size - 1, (data[0] & 4) ? "AWS.X;Sender" : ""};
    struct etl_sqs_result r;
    enum etl_sqs_code code = codec->parse(action, &ans, &r);
    if (code != ETL_SQS_OK) {
        if (code > ETL_SQS_CLIENT || (!r.service_error && !r.why[0]))
            abort(); /* a failure always says why */
        (void)etl_sqs_code_name(code);
    }
    if (r.nmessages > ETL_SQS_MAX_ENTRIES || r.nfailures > ETL_SQS_MAX_ENTRIES)
        abort();
    check_str(r.error_code);
    check_str(r.error_message);
    check_str(r.queue_url);
    check_pairs(r.attributes, r.nattributes);
    struct etl_sqs_entry entries[10];
    size_t n = 0;
    for (size_t i = 0; i < r.nmessages; i++) {
        const struct etl_sqs_message *m = &r.messages[i];
        check_str(m->id);
        check_str(m->receipt);
        check_str(m->body);
        check_str(m->group_id);
        check_str(m->sequence_number);
        check_pairs(m->attributes, m->nattributes);
        if (m->sent_ms < -1 || m->receive_count < -1)
            abort();
        if (m->id && m->receipt && n < 10)
            entries[n++] = (struct etl_sqs_entry){m->id, m->receipt};
    }
    for (size_t i = 0; i < r.nfailures; i++) {
        check_str(r.failures[i].id);
        check_str(r.failures[i].code);
        check_str(r.failures[i].message);
    }
    struct etl_sqs_request req = {.action = ETL_SQS_DELETE_BATCH, .queue_url = "http://q/1/q",
                                  .entries = entries, .nentries = n};
    struct etl_buf b = {0};
    if (codec->build(&req, &b) == 0 && (!b.p || strlen(b.p) != b.len))
        abort(); /* encoded: no NUL inside, terminated at len */
    etl_buf_free(&b);
    etl_sqs_result_free(&r);
    etl_sqs_result_free(&r); /* freeing twice is safe: the struct is zeroed */
    free(body);
}
