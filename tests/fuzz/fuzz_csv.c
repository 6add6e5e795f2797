/* fuzz_csv.c — libFuzzer entry point of the csv target (targets.c). */
#include <stdlib.h>

#include "targets.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (amtl_fuzz_csv(data, size))
        abort();  /* a property of the reader failed: keep the input */
    return 0;
}
