/* fuzz_sqs_json.c: libFuzzer target for the SQS JSON protocol codec (src/sqs_json.c, answers
 * read by src/sqs_json_answer.c): arbitrary JSON answers to every action under several HTTP
 * statuses, read exactly as the client reads them; the invariants are those of sqs_answer.h. */
#include "sqs_answer.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    fuzz_answer(&etl_sqs_json_codec, data, size);
    return 0;
}
