/* fuzz_sqs_query.c: libFuzzer target for the SQS query protocol codec (src/sqs_query.c, expat):
 * arbitrary XML answers to every action under several HTTP statuses, read exactly as the client
 * reads them; the invariants are those of sqs_answer.h. */
#include "sqs_answer.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    fuzz_answer(&etl_sqs_query_codec, data, size);
    return 0;
}
