# amtl — AutoMTL in C.  GNU Make.
#
#   make            library and tools into bin/
#   make test       every unit and Bats test; ends "N passed, N failed"
#   make demo       the whole search on the embedded synthetic data
#   make deps       installs the Debian packages the build needs
#   make check-asan unit tests under AddressSanitizer + UBSan
#   make bench      benchmarks (never run by CI)
#   make bench-scale  the tools at 1, 5 and 20 million rows (SCALE_ROWS="..." for others)
#   make install PREFIX=/usr/local

PREFIX  ?= /usr/local
CC      ?= cc
# nvcc from PATH, else the toolkit's usual place
NVCC    ?= $(firstword $(shell command -v nvcc 2>/dev/null) $(wildcard /usr/local/cuda/bin/nvcc) nvcc)
PKGS    := openblas msgpack yaml-0.1 liblbfgs zlib
DEB_PKGS := build-essential pkg-config libopenblas-dev libmsgpack-dev libyaml-dev liblbfgs-dev zlib1g-dev bats python3 python3-numpy \
            gnuplot-nox graphviz mandoc groff-base libopenmpi-dev openmpi-bin
# what the tests and make plots run besides the build (make deps installs them;
# python3-numpy too, for make quality VALIDATION=1)
DEP_CMDS := bats python3 gnuplot dot mandoc groff mpirun
HAVE_DEPS = pkg-config --exists $(PKGS) 2>/dev/null && \
            (for c in $(DEP_CMDS); do command -v $$c >/dev/null || exit 1; done) && \
            (! command -v dpkg >/dev/null || dpkg -s python3-numpy >/dev/null 2>&1)
VERSION := 0.1.0

PKG_CFLAGS := $(shell pkg-config --cflags $(PKGS) 2>/dev/null)
PKG_LIBS   := $(shell pkg-config --libs $(PKGS) 2>/dev/null)

WARN    := -Wall -Wextra -Wshadow -Wstrict-prototypes -Wmissing-prototypes
CFLAGS  ?= -O2 -g
# kernels/: portable by default (fused.c carries per-CPU clones chosen at
# run time); NATIVE=1 builds every kernel for this machine's CPU only
KFLAGS  ?= -O3 -g $(if $(NATIVE),-march=native)
ALL_CFLAGS = -std=c17 -D_GNU_SOURCE -DAMTL_VERSION='"$(VERSION)"' $(WARN) \
             -Ilib -Ikernels $(PKG_CFLAGS) $(CFLAGS)
LDLIBS  = $(PKG_LIBS) $(MPI_LIBS) -lm -lpthread -ldl

BUILD   ?= build
BIN     ?= bin
LIB_SRC := $(wildcard lib/*/*.c)
# MPI (lib/dist/comm.c) whenever Open MPI's pkg-config file is found (and
# MPI=0 is not given); without it a job is always one process
ifeq ($(MPI),)
  MPI := $(if $(shell pkg-config --exists ompi-c 2>/dev/null && echo y),1,0)
endif
ifeq ($(MPI),1)
  ALL_CFLAGS_MPI := -DAMTL_HAVE_MPI=1 $(shell pkg-config --cflags ompi-c 2>/dev/null)
  MPI_LIBS := $(shell pkg-config --libs ompi-c 2>/dev/null)
endif
KER_SRC := $(wildcard kernels/*.c) $(wildcard kernels/cpu/*.c)
LIB_OBJ := $(LIB_SRC:%.c=$(BUILD)/%.o) $(KER_SRC:%.c=$(BUILD)/%.o)
LIBA    := $(BUILD)/libamtl.a

# The CUDA backend is compiled whenever nvcc exists (and CUDA=0 is not given),
# into a module of its own that the tools load when a GPU is asked for
# (kernels/cuda_loader.c): a run on the CPU never maps the CUDA libraries.
ifeq ($(CUDA),)
  CUDA := $(if $(shell command -v $(NVCC) 2>/dev/null),1,0)
endif
CU_SRC := $(wildcard kernels/cuda/*.cu)
CU_MOD  := $(BUILD)/lib/amtl/amtl-cuda.so
ifeq ($(CUDA),1)
  ifneq ($(CU_SRC),)
    CUDA_HOME ?= $(patsubst %/bin/,%,$(dir $(shell command -v $(NVCC))))
    CU_OBJ  := $(CU_SRC:%.cu=$(BUILD)/%.o)
    ALL_CFLAGS += -DAMTL_HAVE_CUDA=1
    MODULES := $(CU_MOD)
  endif
endif
# Machine code for sm_80 (A100) and sm_90 (H100, H200), PTX of sm_90 for newer
# GPUs.  --fmad=false: the kernels keep the CPU backend's rounding (its ISO C
# build does not contract a*b+c either); they are memory-bound, so it costs
# nothing.  Every nvcc and host-compiler warning is an error.
NVARCH  ?= -gencode arch=compute_80,code=sm_80 -gencode arch=compute_90,code=sm_90 \
           -gencode arch=compute_90,code=compute_90
NVFLAGS ?= -O3 -std=c++17 -lineinfo --fmad=false $(NVARCH) -Ilib -Ikernels \
           -Xcompiler -Wall,-Wextra -Werror all-warnings

TOOLS   := $(patsubst tools/%.c,$(BIN)/%,$(wildcard tools/amtl-*.c))
UNIT    := $(patsubst tests/unit/%.c,$(BUILD)/tests/%,$(wildcard tests/unit/test_*.c))
BENCH   := $(patsubst bench/%.c,$(BUILD)/bench/%,$(wildcard bench/*.c))
DEPSTAMP := $(BUILD)/.deps-ok

.PHONY: all deps test unit-tests demo bench bench-scale check-asan check-valgrind fuzz plots sweep crosses quality install clean

ifeq ($(PKG_LIBS),)
# a fresh machine: get the packages, then build in a make that reads their flags
all: $(DEPSTAMP)
	@$(MAKE) --no-print-directory $(TOOLS) $(MODULES)
else
all: $(TOOLS) $(MODULES)
endif

# Dependencies: installed by apt-get when root, otherwise the exact line.
deps:
	@if $(HAVE_DEPS); then \
	    echo "deps: all present"; \
	elif [ "$$(id -u)" = 0 ]; then \
	    echo "deps: installing $(DEB_PKGS)"; \
	    DEBIAN_FRONTEND=noninteractive apt-get update -qq && \
	    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $(DEB_PKGS) >/dev/null; \
	else \
	    echo "deps: missing; run as root:"; \
	    echo "  apt-get install -y $(DEB_PKGS)"; exit 1; \
	fi

# Every build checks once that the dependencies are there and gets them if not;
# the package flags are then re-read by a fresh make.
$(DEPSTAMP):
	@$(HAVE_DEPS) || $(MAKE) --no-print-directory deps
	@mkdir -p $(@D) && touch $@

ifeq ($(PKG_LIBS),)
# The flags were empty because the packages were missing: install, then rerun.
$(TOOLS) $(UNIT) $(BENCH) $(LIB_OBJ): | $(DEPSTAMP)
endif

$(BUILD)/lib/dist/comm.o: ALL_CFLAGS += $(ALL_CFLAGS_MPI)

# the plain-loop layers vectorise only at -O3 (and sqrtf without errno)
$(BUILD)/lib/model/layers.o $(BUILD)/lib/train/optim.o: CFLAGS += -O3 -fno-math-errno

$(BUILD)/lib/%.o: lib/%.c | $(DEPSTAMP)
	@mkdir -p $(@D)
	$(CC) $(ALL_CFLAGS) -MMD -MP -c $< -o $@

$(BUILD)/kernels/%.o: kernels/%.c | $(DEPSTAMP)
	@mkdir -p $(@D)
	$(CC) $(ALL_CFLAGS) $(KFLAGS) -MMD -MP -c $< -o $@

$(BUILD)/kernels/cuda/%.o: kernels/cuda/%.cu
	@mkdir -p $(@D)
	$(NVCC) $(NVFLAGS) -Xcompiler -fPIC -MMD -MP -c $< -o $@

# where the build tree's tools find the module (installed: ../lib/amtl/)
$(BUILD)/kernels/cuda_loader.o: ALL_CFLAGS += \
    $(if $(MODULES),-DAMTL_CUDA_MODULE_BUILT='"$(abspath $(CU_MOD))"')

$(CU_MOD): $(CU_OBJ)
	@mkdir -p $(@D)
	$(NVCC) -shared -o $@ $^ -L$(CUDA_HOME)/lib64 -Xlinker -rpath,$(CUDA_HOME)/lib64 \
	    -lcublas -lcudart

$(LIBA): $(LIB_OBJ)
	@rm -f $@
	ar rcs $@ $^

$(BIN)/%: tools/%.c $(LIBA)
	@mkdir -p $(@D)
	$(CC) $(ALL_CFLAGS) -MMD -MP -MF $(BUILD)/tools/$*.d $< -o $@ $(LIBA) $(LDLIBS)

$(BUILD)/tests/%: tests/unit/%.c $(wildcard tests/unit/*.h) $(LIBA)
	@mkdir -p $(@D)
	$(CC) $(ALL_CFLAGS) -Itests/unit $< -o $@ $(LIBA) $(LDLIBS)

# The float64 evaluation (tests/unit/test_real64.c): the library compiled
# again with float as double (tests/unit/real64.h), and the oracle program
# over it that the test runs.
R64      := $(BUILD)/real64
R64_OBJ  := $(LIB_OBJ:$(BUILD)/%=$(R64)/%)
R64_FLAGS = -DAMTL_REAL64 -DAMTL_NO_CLONES -include tests/unit/real64.h -Wno-unused-macros
R64_LIBA := $(R64)/libamtl64.a

$(R64)/lib/dist/comm.o: ALL_CFLAGS += $(ALL_CFLAGS_MPI)

$(R64)/%.o: %.c tests/unit/real64.h | $(DEPSTAMP)
	@mkdir -p $(@D)
	$(CC) $(ALL_CFLAGS) $(R64_FLAGS) -MMD -MP -c $< -o $@

$(R64_LIBA): $(R64_OBJ)
	@rm -f $@
	ar rcs $@ $^

$(BUILD)/tests/real64_oracle: tests/unit/real64_oracle.c $(wildcard tests/unit/*.h) $(R64_LIBA)
	@mkdir -p $(@D)
	$(CC) $(ALL_CFLAGS) $(R64_FLAGS) -Itests/unit $< -o $@ $(R64_LIBA) $(LDLIBS)

$(BUILD)/tests/test_real64: $(BUILD)/tests/real64_oracle

$(BUILD)/bench/%: bench/%.c $(LIBA)
	@mkdir -p $(@D)
	$(CC) $(ALL_CFLAGS) $< -o $@ $(LIBA) $(LDLIBS)

$(BUILD)/tools:
	@mkdir -p $@
$(TOOLS): | $(BUILD)/tools

unit-tests: $(UNIT) $(MODULES)

test: $(DEPSTAMP)
	@$(MAKE) --no-print-directory all unit-tests
	@BUILD=$(BUILD) AMTL_BIN=$(abspath $(BIN)) tests/run all

demo: $(DEPSTAMP)
	@$(MAKE) --no-print-directory all
	@$(MAKE) --no-print-directory -f pipelines/demo.mk

bench: all $(BENCH) $(MODULES)
	@bench/run

# the tools at 1, 5 and 20 million Ali-CCP-shaped rows (minutes; README table)
bench-scale: all
	@bench/scale.sh $(SCALE_ROWS)

# Sanitizers: a separate build tree so the normal one stays fast.
check-asan: $(DEPSTAMP)
	@$(MAKE) --no-print-directory BUILD=build-asan BIN=build-asan/bin CUDA=0 \
	    CFLAGS="-O1 -g -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined" \
	    KFLAGS="-O1 -g" LDFLAGS="-fsanitize=address,undefined" \
	    LDLIBS="$(LDLIBS) -fsanitize=address,undefined" all build-asan-units
	@BUILD=build-asan tests/run-asan

build-asan-units: $(UNIT)

# memcheck over the unit tests and the Bats tests (tests/run-valgrind)
check-valgrind: $(DEPSTAMP)
	@$(MAKE) --no-print-directory all unit-tests
	@tests/run-valgrind

# libFuzzer harnesses of every reader, each for a bounded time (tests/fuzz/run)
fuzz: $(DEPSTAMP)
	@tests/fuzz/run

# training curves and the architecture picture of a run directory
plots: $(DEPSTAMP)
	@$(MAKE) --no-print-directory all
	@$(MAKE) --no-print-directory -f pipelines/plots.mk

# a grid of seeds and config values into one TSV (pipelines/sweep.sh)
sweep: $(DEPSTAMP)
	@$(MAKE) --no-print-directory all
	@pipelines/sweep.sh

# which pairs of sparse fields to cross, by the linear floor's validation AUC
# (pipelines/crosses.sh): make crosses CONFIG=FILE DATA="INPUT..." [FIELDS=...]
crosses: $(DEPSTAMP)
	@$(MAKE) --no-print-directory all
	@test -n "$(DATA)" || { echo 'make crosses: give the inputs: DATA="train.csv [test.csv]"' >&2; exit 2; }
	@pipelines/crosses.sh $(DATA)

# test AUC of the search, every baseline and the linear floor on the real data
# sets over seeds: results/quality/quality.md (pipelines/quality.mk; QUICK=1
# for a smoke run of the pipeline, DATASETS, SEEDS, CONFIG_<set>)
quality: $(DEPSTAMP)
	@$(MAKE) --no-print-directory all
	@$(MAKE) --no-print-directory -f pipelines/quality.mk

install: all
	install -d $(DESTDIR)$(PREFIX)/bin $(DESTDIR)$(PREFIX)/share/man/man1 \
	    $(DESTDIR)$(PREFIX)/share/man/man5 $(DESTDIR)$(PREFIX)/share/man/man7
	install -m 755 $(TOOLS) $(DESTDIR)$(PREFIX)/bin
	$(if $(MODULES),install -d $(DESTDIR)$(PREFIX)/lib/amtl && \
	    install -m 755 $(MODULES) $(DESTDIR)$(PREFIX)/lib/amtl)
	for m in man/*.[157]; do [ -f "$$m" ] || continue; \
	    s=$${m##*.}; install -m 644 $$m $(DESTDIR)$(PREFIX)/share/man/man$$s; done

clean:
	rm -rf build build-asan bin

-include $(shell find $(BUILD) -name '*.d' 2>/dev/null)
