# fuzz.mk — builds the libFuzzer harnesses into build-fuzz/ (run by tests/fuzz/run).
# The library is compiled with coverage, AddressSanitizer and UBSan; each
# harness links it with libFuzzer's main.

FCC     ?= clang
OUT     ?= build-fuzz
PKGS    := openblas msgpack yaml-0.1 liblbfgs zlib
SAN     := -fsanitize=address,undefined -fno-sanitize-recover=undefined
FCFLAGS := -std=c17 -D_GNU_SOURCE -DAMTL_VERSION='"fuzz"' -g -O1 -fno-omit-frame-pointer \
           -Ilib -Ikernels -Itests/fuzz $(shell pkg-config --cflags $(PKGS))
LIBS    := $(shell pkg-config --libs $(PKGS)) -lm -lpthread

SRC     := $(wildcard lib/*/*.c) $(wildcard kernels/*.c) $(wildcard kernels/cpu/*.c) tests/fuzz/targets.c
OBJ     := $(SRC:%.c=$(OUT)/obj/%.o)
NAMES   := csv prep file dataset checkpoint model arch config
BINS    := $(NAMES:%=$(OUT)/fuzz_%)

all: $(BINS)

$(OUT)/obj/%.o: %.c
	@mkdir -p $(@D)
	$(FCC) $(FCFLAGS) -fsanitize=fuzzer-no-link $(SAN) -MMD -MP -c $< -o $@

$(OUT)/libamtl-fuzz.a: $(OBJ)
	@rm -f $@
	ar rcs $@ $^

$(OUT)/fuzz_%: tests/fuzz/fuzz_%.c $(OUT)/libamtl-fuzz.a
	$(FCC) $(FCFLAGS) -fsanitize=fuzzer $(SAN) $< -o $@ $(OUT)/libamtl-fuzz.a $(LIBS)

.PHONY: all
-include $(shell find $(OUT)/obj -name '*.d' 2>/dev/null)
