# pipelines/quality.mk — model quality on real data (make quality; DESIGN.md
# sections 7 and 11): for every data set and seed, the search and every
# baseline, all by the same tools on the same dataset file, then one TSV and
# one Markdown report of test AUC over the seeds, with the linear floor in
# every table.
#
#   make quality                                 tianchi-ecomm and adult, seeds 1 2 3
#   make quality QUICK=1                         a smoke run: few rows and epochs
#   make quality DATASETS=zipf SEEDS="1 2"       the synthetic long-tail data
#   make quality CONFIG_adult=my-adult.yaml SET="lr=0.003"
#   make quality DATASETS=mine INPUTS_mine="train.csv test.csv"   any data set
#
# Settings (make variables):
#   DATASETS    the data sets (tianchi-ecomm adult): the real sets in SHARED
#               that are big enough to measure; also zipf and latent, the
#               synthetic kinds of amtl-prep --synthetic-kind, and any NAME
#               with INPUTS_NAME set.  ali-ccp, aliexpress and census-income
#               are samples of at most 100 rows: format tests only, refused.
#   SEEDS       1 2 3.  A seed is amtl-prep's --seed (the split of the rows
#               that no file fixes; for the synthetic sets the data as well)
#               and the training seed (config key seed) of every model.
#   CONFIG_NAME the training config of data set NAME (configs/quality-NAME.yaml)
#   PREP_CONFIG_NAME  amtl-prep's config (configs/NAME.yaml; for the synthetic
#               sets CONFIG_NAME).  The data keys vocab, min_id_count,
#               min_count and dense_transform of CONFIG_NAME (and SET) go to
#               amtl-prep as well, over PREP_CONFIG_NAME's, so that one file
#               tunes a data set.
#   INPUTS_NAME amtl-prep's input files: adult reads SHARED/adult/adult.data.gz
#               and adult.test.gz (train, split into train and val by the
#               seed; test); tianchi-ecomm reads the processed CSV that
#               TIANCHI_CMD (bench/quality/tianchi-ecomm.py SHARED/tianchi-ecomm)
#               writes to the file named after it, made once into
#               OUT/tianchi-ecomm/
#   ROWS        amtl-prep --limit (rows of each input file) for files, --rows
#               for the synthetic sets (100000); empty: every row
#   QUICK=1     a test of the pipeline, not a measurement: ROWS 3000, the
#               overrides QUICK_SET (epochs=4 warmup_epochs=1
#               full_arch_train_epochs=1 patience=2), OUT results/quality-quick
#   SET         config overrides KEY=VALUE for every tool of every run
#   BASELINES, BASELINE_OP   as in pipelines/search.mk (every baseline, MLP-64)
#   VALIDATION=1  choose settings, read no test row: each run trains only
#               what bench/quality/candidate-choice.py reads (the search's
#               candidates and the MMoE, PLE and Shared-Bottom models), no
#               model is scored on the test split and no report is written;
#               then candidate-choice.py prints, per data set, how the
#               searched model chosen on one half of the validation rows
#               scores on the other against each baseline (needs
#               python3-numpy).  A later make quality on the same OUT
#               reuses these runs.
#   OUT         results/quality: OUT/NAME/sSEED is one search.mk run, whose
#               dataset file is made here (OUT/NAME/sSEED/data.amtl)
#   BIN, SHARED the tools (bin) and the shared data (../shared/data)
#
# Output: OUT/quality.tsv (one row per data set, model and seed: each task's
# test AUC, the mean, params, search/train/eval/wall seconds, amtl-prep's
# seconds) and OUT/quality.md (per data set: mean test AUC +- standard
# deviation over the seeds, min-max, mean wall seconds per model, and a
# finding line where a deep model is below the linear floor, and the
# searched model minus each baseline on the same test rows with its paired
# standard error, per seed and over the seeds), printed at the end.  Each
# stage's wall time is in OUT/NAME/sSEED/wall/ (pipelines/timed).
#
# The runs go one after another (.NOTPARALLEL, and each search.mk without
# -j): the tools use every core, and runs side by side would skew the times.
# make reruns only what is stale: a run done is not redone.

DATASETS    ?= tianchi-ecomm adult
SEEDS       ?= 1 2 3
QUICK       ?=
VALIDATION  ?=
OUT         ?= $(if $(QUICK),results/quality-quick,results/quality)
BIN         ?= bin
SHARED      ?= ../shared/data
SET         ?=
BASELINES   ?= shared-bottom mmoe ple single-task linear
BASELINE_OP ?= MLP-64
QUICK_SET   ?= epochs=4 warmup_epochs=1 full_arch_train_epochs=1 patience=2
ROWS        ?= $(if $(QUICK),3000,)
TIANCHI_CMD ?= python3 bench/quality/tianchi-ecomm.py $(SHARED)/tianchi-ecomm

PIPE   := $(dir $(lastword $(MAKEFILE_LIST)))
TIMED  := $(PIPE)timed
ALLSET := $(if $(QUICK),$(QUICK_SET)) $(SET)
SYNTHETIC  := zipf latent
TOO_SMALL  := ali-ccp aliexpress census-income
PREP_KEYS  := vocab min_id_count min_count dense_transform

ifneq ($(words $(OUT))$(findstring =,$(OUT))$(findstring :,$(OUT)),1)
  $(error OUT '$(OUT)' holds a space, '=' or ':', which make cannot take in file names)
endif
ifneq ($(filter $(TOO_SMALL),$(DATASETS)),)
  $(error $(filter $(TOO_SMALL),$(DATASETS)): samples of at most 100 rows in $(SHARED), format tests only (tests/bats); too small to measure quality)
endif
ifeq ($(strip $(DATASETS)),)
  $(error no data sets (DATASETS))
endif
ifeq ($(strip $(SEEDS)),)
  $(error no seeds (SEEDS))
endif
ifneq ($(shell printf '%s\n' $(SEEDS) | grep -cv '^[0-9][0-9]*$$'),0)
  $(error a seed is a number: SEEDS '$(SEEDS)')
endif

INPUTS_adult         ?= $(SHARED)/adult/adult.data.gz $(SHARED)/adult/adult.test.gz
INPUTS_tianchi-ecomm ?= $(OUT)/tianchi-ecomm/tianchi-ecomm.csv

# the files each data set needs, with who makes them when they are missing
need = $(if $(wildcard $(1)),,$(error $(2): $(1) is missing$(if $(3), ($(3)))))
$(foreach d,$(DATASETS),\
  $(eval CONFIG_$(d) ?= configs/quality-$(d).yaml)\
  $(eval PREP_CONFIG_$(d) ?= $(if $(filter $(SYNTHETIC),$(d)),$(CONFIG_$(d)),configs/$(d).yaml))\
  $(call need,$(CONFIG_$(d)),$(d),the training config of make quality)\
  $(call need,$(PREP_CONFIG_$(d)),$(d),amtl-prep's config of the data set)\
  $(if $(filter $(SYNTHETIC),$(d)),,\
    $(if $(INPUTS_$(d)),,$(error $(d): no input files: set INPUTS_$(d)))\
    $(if $(filter tianchi-ecomm,$(d)),$(call need,bench/quality/tianchi-ecomm.py,$(d),it writes the processed CSV),\
      $(foreach f,$(INPUTS_$(d)),$(call need,$(f),$(d))))))

# The data keys of the training config (and SET) that amtl-prep gets too:
# those of PREP_KEYS that the config or SET give, as the tool reads them
# (amtl-prep --dump-overrides: KEY=VALUE lines; these values have no spaces).
ifeq ($(wildcard $(BIN)/amtl-prep),)
  $(error no $(BIN)/amtl-prep: build the tools first (make))
endif
$(foreach d,$(DATASETS),\
  $(eval PREP_SET_$(d) := $(addprefix --set ,$(shell \
      o=$$($(BIN)/amtl-prep --config '$(CONFIG_$(d))' $(foreach s,$(ALLSET),--set '$(s)') --dump-overrides) || exit; \
      printf '%s\n' "$$o" | grep -E '^($(subst $(eval) ,|,$(strip $(PREP_KEYS))))=' || :)))\
  $(if $(filter 0,$(.SHELLSTATUS)),,$(error cannot read $(CONFIG_$(d)) (see the message above))))

.DEFAULT_GOAL := all
.PHONY: all runs
.NOTPARALLEL:

RUNS :=

# $(1) data set, $(2) seed
define RUN
R_$(1)_$(2) := $(OUT)/$(1)/s$(2)
PREP_ARGS_$(1)_$(2) := --config $(PREP_CONFIG_$(1)) $(foreach s,$(ALLSET),--set '$(s)') $(PREP_SET_$(1)) --seed $(2) \
    $(if $(filter $(SYNTHETIC),$(1)),--synthetic --synthetic-kind $(1) --rows $(or $(ROWS),100000),$(if $(ROWS),--limit $(ROWS)) $(INPUTS_$(1)))
# amtl-prep's arguments, rewritten only when they change: the dataset is stale then
$$(shell mkdir -p $$(R_$(1)_$(2)) && printf '%s\n' "$$(PREP_ARGS_$(1)_$(2))" > $$(R_$(1)_$(2))/prep-args.new && \
    { cmp -s $$(R_$(1)_$(2))/prep-args.new $$(R_$(1)_$(2))/prep-args && rm -f $$(R_$(1)_$(2))/prep-args.new || \
      mv -f $$(R_$(1)_$(2))/prep-args.new $$(R_$(1)_$(2))/prep-args; })

$$(R_$(1)_$(2))/data.amtl: $$(R_$(1)_$(2))/prep-args $(PREP_CONFIG_$(1)) $(INPUTS_$(1)) $(BIN)/amtl-prep
	@printf '  %-9s %s\n' prep $$@
	@rm -f $$@.part
	@$(TIMED) $$(@D)/wall/data.amtl.seconds $(BIN)/amtl-prep $$(PREP_ARGS_$(1)_$(2)) -o $$@.part
	@mv -f $$@.part $$@

run-$(1)-$(2): $$(R_$(1)_$(2))/data.amtl
	@echo "quality: $(1), seed $(2): $$(R_$(1)_$(2))"
	@env -u MAKEFLAGS -u MFLAGS -u MAKEFILES $$(SUBMAKE) --no-print-directory -f $(PIPE)search.mk \
	    CONFIG='$(CONFIG_$(1))' DATASET='$$<' OUT='$$(R_$(1)_$(2))' BIN='$(BIN)' \
	    BASELINES='$(BASELINES)' BASELINE_OP='$(BASELINE_OP)' SET='seed=$(2) $(ALLSET)' \
	    QUIET='$(QUIET)' V='$(V)' $$(if $$(VALIDATION),$$(VAL_TARGETS:%=$$(R_$(1)_$(2))/%),$$(R_$(1)_$(2))/results.tsv paired)

.PHONY: run-$(1)-$(2)
RUNS += run-$(1)-$(2)
endef
QUIET  ?= --quiet
# not $(MAKE): the runs are makes of their own, not part of this one (no -n,
# no jobserver)
SUBMAKE := $(firstword $(MAKE))
$(foreach d,$(DATASETS),$(foreach s,$(SEEDS),$(eval $(call RUN,$(d),$(s)))))

$(OUT)/tianchi-ecomm/tianchi-ecomm.csv: bench/quality/tianchi-ecomm.py
	@printf '  %-9s %s\n' build $@
	@mkdir -p $(@D)
	@$(TIMED) $(@D)/wall/tianchi-ecomm.csv.seconds $(TIANCHI_CMD) $@.tmp
	@mv -f $@.tmp $@

# what bench/quality/candidate-choice.py reads of a run (VALIDATION=1)
VAL_TARGETS := candidates.tsv mmoe.model ple.model shared-bottom.model

runs: $(RUNS)

ifneq ($(VALIDATION),)
all: runs
	@python3 -c 'import numpy' 2>/dev/null || \
	    { echo "quality: VALIDATION=1 scores with bench/quality/candidate-choice.py, which needs numpy in python3 (Debian's python3-numpy, which make deps installs)" >&2; exit 1; }
	@python3 bench/quality/candidate-choice.py --bin '$(BIN)' \
	    $(foreach d,$(DATASETS),$(foreach s,$(SEEDS),'$(OUT)/$(d)/s$(s)'))
else
all: runs
	@python3 $(PIPE)quality.py --out '$(OUT)' --datasets '$(DATASETS)' --seeds '$(SEEDS)' \
	    --baselines '$(BASELINES)' $(foreach d,$(DATASETS),--config '$(d)=$(CONFIG_$(d))') \
	    --not-measured '$(TOO_SMALL)' \
	    $(if $(QUICK),--quick 'ROWS=$(ROWS) SET=$(strip $(QUICK_SET))') $(if $(strip $(SET)),--set '$(strip $(SET))')
	@echo
	@cat '$(OUT)/quality.md'
endif
