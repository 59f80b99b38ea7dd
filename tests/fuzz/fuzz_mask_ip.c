/* fuzz_mask_ip.c: libFuzzer target for etl_mask_canonical_ip (src/mask.c), the canonical text
 * of an IP address taken from message bodies (mask.canonical_ip). Arbitrary bytes in; checked:
 * the output is a NUL-terminated string within ETL_MASK_IP_MAX, empty on refusal; a valid
 * address of family 4 has no ':' and one of family 6 has one; the canonical form is a fixed
 * point (canonicalising it again gives the same text and family); and the rules the header
 * promises (no NUL, no '%', nothing over-long) are kept. */
#include "etlua/mask.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    /* an exact-size heap copy, so ASan sees any read past len */
    char *s = malloc(size ? size : 1);
    if (!s)
        return 0;
    if (size)
        memcpy(s, data, size);
    char out[ETL_MASK_IP_MAX];
    memset(out, 'x', sizeof out);
    int fam = etl_mask_canonical_ip(s, size, out);
    if (memchr(out, '\0', sizeof out) == NULL)
        abort();
    if (fam == 0) {
        if (out[0] != '\0')
            abort();
    } else {
        if (fam != 4 && fam != 6)
            abort();
        if (size == 0 || size >= ETL_MASK_IP_MAX || memchr(s, '\0', size) || memchr(s, '%', size))
            abort(); /* accepted what the contract refuses */
        if ((fam == 4) != (strchr(out, ':') == NULL))
            abort();
        if (fam == 4 && (size != strlen(out) || memcmp(s, out, size) != 0))
            abort(); /* IPv4 is returned as given */
        for (const char *p = out; *p; p++)
            if (*p >= 'A' && *p <= 'F')
                abort(); /* RFC 5952: lowercase */
        char again[ETL_MASK_IP_MAX];
        if (etl_mask_canonical_ip(out, strlen(out), again) != fam || strcmp(again, out) != 0)
            abort(); /* not a fixed point */
    }
    free(s);
    return 0;
}
