/* fuzz_sqs_error.c: libFuzzer target for the error-code mapping of SQS error answers
 * (etl_sqs_classify, etl_sqs_is_protocol_mismatch, etl_sqs_code_name in src/sqs_codec.c).
 * Input layout: two bytes of HTTP status (taken modulo 1000), then the x-amzn-query-error header
 * value up to the first '\n', then the service's error code up to the first NUL, then its
 * message. The codes go in the way the codecs (src/sqs_json.c, src/sqs_query.c) pass them: the header's code (the
 * part before ';') wins over the body's, an empty one counts as absent. */
#include "etlua/sqs_codec.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const char *const code_names[] = {"ok",   "network",  "timeout",  "throttled", "server",
                                         "auth", "no_queue", "protocol", "client"};

static enum etl_sqs_code classify(long status, const char *code)
{
    enum etl_sqs_code c = etl_sqs_classify(status, code);
    if (c == ETL_SQS_OK || c > ETL_SQS_CLIENT)
        abort();
    const char *name = etl_sqs_code_name(c);
    if (!name || strcmp(name, code_names[c]) != 0)
        abort();
    return c;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 2)
        return 0;
    long status = (long)((data[0] << 8 | data[1]) % 1000);
    unsigned first = data[0];
    data += 2;
    size -= 2;

    /* header line, code, message: copies as NUL-terminated strings */
    char *buf = malloc(size + 1);
    if (!buf)
        return 0;
    if (size)
        memcpy(buf, data, size);
    buf[size] = '\0';
    char *nl = memchr(buf, '\n', size);
    char *header = buf + size, *code = buf; /* no '\n': no header, all of it is the body */
    if (nl) {
        *nl = '\0';
        header = buf;
        code = nl + 1;
    }
    size_t rest = size - (size_t)(code - buf);
    char *nul = memchr(code, '\0', rest);
    const char *message = nul && nul < buf + size ? nul + 1 : NULL;

    /* header_code(): the part before ';' ("AWS.SimpleQueueService.NonExistentQueue;Sender") */
    size_t hlen = strcspn(header, ";");
    char *hcode = malloc(hlen + 1);
    if (!hcode) {
        free(buf);
        return 0;
    }
    memcpy(hcode, header, hlen);
    hcode[hlen] = '\0';

    const char *aws_code = *hcode ? hcode : *code ? code : NULL;
    enum etl_sqs_code c = classify(status, aws_code);
    if (!aws_code && c != classify(status, ""))
        abort(); /* an empty code is no code */
    (void)classify(status, code);
    (void)classify(status, message);

    /* the JSON codec's mismatch decision on a JSON error answer */
    int mismatch = status == 415 || etl_sqs_is_protocol_mismatch(aws_code, message) ||
                   (*code && etl_sqs_is_protocol_mismatch(code, message));
    (void)mismatch;
    if (etl_sqs_is_protocol_mismatch(NULL, NULL))
        abort();

    /* the status alone: its class */
    enum etl_sqs_code by_status = classify(status, NULL);
    if ((status == 429) != (by_status == ETL_SQS_THROTTLED) ||
        (status >= 500 && by_status != ETL_SQS_SERVER))
        abort();

    /* etl_sqs_code_name never fails, even out of range */
    if (!etl_sqs_code_name((enum etl_sqs_code)(first % 16)))
        abort();

    free(hcode);
    free(buf);
    return 0;
}
