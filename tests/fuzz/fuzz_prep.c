/* fuzz_prep.c — libFuzzer entry point of the prep target (targets.c).
 * Chunks of 3 rows, so that the inputs' rows go through amtl-prep's temp
 * file and back (prep_table.h) as a large input's would. */
#include <stdlib.h>

#include "targets.h"

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    setenv("AMTL_PREP_CHUNK_ROWS", "3", 1);
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (amtl_fuzz_prep(data, size))
        abort();  /* a property of the reader failed: keep the input */
    return 0;
}
