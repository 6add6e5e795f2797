/* targets.h — one function per reader of untrusted input, shared by the
 * libFuzzer harnesses (fuzz_<name>.c) and the regression unit test
 * (tests/unit/test_regressions.c), which feeds tests/fuzz/regressions/
 * through the same code.
 *
 * Each target takes arbitrary bytes, runs them through a reader the way a
 * tool does, and returns 0; it returns 1 only when a property that must
 * hold for every input fails (a file that decodes must encode and decode to
 * the same thing, a dataset written by prep must read back, ...).  Errors
 * the readers report are expected and fine. */
#ifndef AMTL_FUZZ_TARGETS_H
#define AMTL_FUZZ_TARGETS_H

#include <stddef.h>
#include <stdint.h>

typedef int (*amtl_fuzz_fn)(const uint8_t *data, size_t size);

int amtl_fuzz_csv(const uint8_t *data, size_t size);
int amtl_fuzz_prep(const uint8_t *data, size_t size);
int amtl_fuzz_file(const uint8_t *data, size_t size);
int amtl_fuzz_dataset(const uint8_t *data, size_t size);
int amtl_fuzz_checkpoint(const uint8_t *data, size_t size);
int amtl_fuzz_model(const uint8_t *data, size_t size);
int amtl_fuzz_arch(const uint8_t *data, size_t size);
int amtl_fuzz_config(const uint8_t *data, size_t size);

/* The target of a name ("csv", "prep", ...), or NULL. */
amtl_fuzz_fn amtl_fuzz_target(const char *name);

#endif
