# pipelines/search.mk — a whole search as make targets: prep, supernet warm-up,
# search and frozen epochs (one file each), export, fine-tune, evaluation, the
# baselines trained by the same tools, and one results table.
#
#   make -f pipelines/search.mk CONFIG=configs/userbehavior.yaml DATA=UserBehavior.csv
#   make -f pipelines/search.mk CONFIG=configs/synthetic.yaml ROWS=50000
#   make -f pipelines/search.mk CONFIG=configs/demo.yaml DATASET=data.amtl
#
# Settings (make variables):
#   CONFIG       the YAML config (configs/synthetic.yaml)
#   DATA         amtl-prep's input files; empty: the synthetic data
#   DATASET      a dataset file made already (amtl-prep -o); no prep stage
#                then, and DATA, DATA_SEED, ROWS and TASKS do not apply
#   NAME         the run's name (the config's file name without .yaml)
#   OUT          where every file goes (results/NAME; results/ is git-ignored)
#   BIN          where the tools are (bin)
#   SET          config overrides KEY=VALUE, space-separated, given to every
#                tool as --set (values without spaces or quotes)
#   DATA_SEED    amtl-prep's seed (default: the config's seed)
#   ROWS, TASKS  size of the synthetic data (100000 rows, 4 tasks)
#   BASELINES    shared-bottom mmoe ple single-task linear (single-task: one
#                model per task); empty for the search alone.  The tasks are
#                the config's labels, TASKS for the synthetic data, else the
#                labels of the dataset file (amtl-prep --info, read through
#                OUT/tasks.mk, which make builds first, with the dataset: so
#                even make -n or -q runs amtl-prep then)
#   BASELINE_OP  the expert op of the baselines (MLP-64)
#   QUIET        --quiet (no progress lines); empty to see the tools' progress
#   RANKS        N > 1: the training stages (amtl-supernet, amtl-train) run as
#                N data-parallel ranks under MPIRUN (amtl-supernet(1),
#                DISTRIBUTED TRAINING); empty or 1: one process each
#   MPIRUN       the launcher and its options (mpirun; add --oversubscribe
#                for more ranks than cores, -hostfile F for several machines)
#   V=1          print the tools' command lines
#
# Targets: all (the default: everything, then the table), search (the searched
# model and its evaluation), baselines, paired (the searched model against
# each baseline on the test rows), table (print results.tsv), prune
# (delete the warm-up and search checkpoints; make rebuilds them only if a
# later stage must be redone), or any file of the run.  These targets are
# phony: ask `make -q` about a file, e.g. OUT/results.tsv.
#
# Staleness.  Every stage depends on the files it reads, on the tool that
# makes it (a rebuilt tool redoes its stages) and on a stamp file
# OUT/stamps/<stage>.yaml holding only the config keys that stage reads, with
# the values the tools resolve (pipelines/stage-config asks BIN/amtl-prep:
# --dump-stage, --dump-schedule; no YAML is read here).  The stamps are
# rewritten while make reads this file, and only when their content changes:
# touching the config (or writing a value otherwise: 1e-3 for 0.001) reruns
# nothing, a training-only key (patience, epochs) reruns amtl-train and
# amtl-eval, a model key reruns from the first warm-up epoch but not amtl-prep.
# The tools still get the whole config and the overrides.
#
# Each tool writes its output under a temporary name (.part) that is renamed
# into place when the tool succeeded, so a stage killed midway leaves no file
# that make would take as done; the next make redoes that stage.
#
# Wall time.  Each tool runs under pipelines/timed: the wall-clock seconds of
# the stage that made OUT/FILE are in OUT/wall/FILE.seconds; the table sums
# them per model (search s, train s, eval s, wall s) and lists the
# supernet's stages.
#
# Schedule (DESIGN.md section 4): warmup_epochs warm-up epochs, then
# full_arch_train_epochs search epochs (each ending with discretize_ops
# PD-DARTS steps, done by amtl-supernet), one frozen epoch (--phase finetune),
# export, and fine-tuning for the rest of `epochs` (which counts every epoch,
# as the reference does); the baselines train for `epochs` epochs.  The
# export and fine-tuning run once per threshold of export_candidates, and the
# candidate with the best validation AUC is the searched model (see "export
# candidates" below; candidates.tsv lists them).  Both stop
# early after `patience` epochs without improvement.

CONFIG      ?= configs/synthetic.yaml
NAME        ?= $(basename $(notdir $(CONFIG)))
OUT         ?= results/$(NAME)
BIN         ?= bin
DATA        ?=
DATASET     ?=
SET         ?=
DATA_SEED   ?=
ROWS        ?= 100000
TASKS       ?= 4
BASELINES   ?= shared-bottom mmoe ple single-task linear
BASELINE_OP ?= MLP-64
QUIET       ?= --quiet
RANKS       ?=
MPIRUN      ?= mpirun

ifneq ($(words $(OUT))$(findstring =,$(OUT))$(findstring :,$(OUT)),1)
  $(error OUT '$(OUT)' holds a space, '=' or ':', which make cannot take in file names)
endif

ifneq ($(DATA),)
  ifneq ($(DATASET),)
    $(error give DATA (amtl-prep's inputs) or DATASET (a dataset file), not both)
  endif
endif

.DEFAULT_GOAL := all
PIPE   := $(dir $(lastword $(MAKEFILE_LIST)))
STAMPS := $(OUT)/stamps
WALL   := $(OUT)/wall
TIMED  := $(PIPE)timed

ifeq ($(V),1)
  Q :=
  say = :
else
  Q := @
  say = printf '  %-9s %s\n'
endif

# ---- the stamps, rewritten now when their keys changed ----------------------
PREP_INPUT := $(if $(DATASET),dataset $(DATASET),$(if $(DATA),files $(DATA),synthetic rows $(ROWS) tasks $(TASKS)))
STAGE_ARGS := -b '$(BIN)' $(foreach s,$(SET),-s '$(s)') $(if $(DATA_SEED),-d '$(DATA_SEED)') \
              -x 'prep:input: $(PREP_INPUT)' -x 'baseline:op: $(BASELINE_OP)'
$(shell $(PIPE)stage-config $(STAGE_ARGS) '$(CONFIG)' '$(STAMPS)' >&2)
ifneq ($(.SHELLSTATUS),0)
  $(error cannot split $(CONFIG) into stage stamps (see the message above))
endif
include $(STAMPS)/vars.mk

TOOLCFG  := --config $(CONFIG) $(foreach s,$(SET),--set '$(s)')
# the training tools, one process or RANKS ranks
RUN_TRAIN := $(if $(filter-out 0 1,$(RANKS)),$(MPIRUN) -np $(RANKS) )
D        := $(if $(DATASET),$(DATASET),$(OUT)/data.amtl)
count     = $(if $(filter-out 0,$(1)),$(shell seq 1 $(1)))

# ---- the supernet: one file per epoch ---------------------------------------
STAGES := $(addprefix warmup-,$(call count,$(WARMUP_EPOCHS))) \
          $(addprefix search-,$(call count,$(SEARCH_EPOCHS))) frozen
phase_of = $(if $(filter warmup-%,$(1)),warmup,$(if $(filter search-%,$(1)),search,finetune))
stamp_of = $(if $(filter warmup-%,$(1)),warmup,$(if $(filter search-%,$(1)),search,frozen))

# $(1) the stage, $(2) the stage it starts from (none for the first)
define SUPERNET_STAGE
$(OUT)/$(1).ckpt: $(D) $(STAMPS)/$(call stamp_of,$(1)).yaml $(if $(filter-out none,$(2)),$(OUT)/$(2).ckpt) $(BIN)/amtl-supernet
	@$$(say) supernet $$@
	@rm -f $$@.part $(OUT)/$(1).jsonl.part
	$$(Q)$(TIMED) $(WALL)/$(1).ckpt.seconds $(RUN_TRAIN)$(BIN)/amtl-supernet --data $(D) $(TOOLCFG) $(QUIET) --phase $(call phase_of,$(1)) --epochs 1 \
	    $(if $(filter-out none,$(2)),--init $(OUT)/$(2).ckpt) --metrics $(OUT)/$(1).jsonl.part -o $$@.part
	@mv -f $(OUT)/$(1).jsonl.part $(OUT)/$(1).jsonl
	@mv -f $$@.part $$@
endef
$(foreach i,$(call count,$(words $(STAGES))),$(eval $(call SUPERNET_STAGE,$(word $(i),$(STAGES)),$(word $(i),none $(STAGES)))))

# ---- baselines: names of files, kinds for amtl-discretize --------------------
# The number of tasks: the config's labels, TASKS for the synthetic data,
# else the dataset file's labels, counted by amtl-prep --info into an
# included makefile (make builds it, with the dataset, then restarts).
N_TASKS := $(if $(filter-out 0,$(N_LABELS)),$(N_LABELS),$(if $(DATA)$(DATASET),,$(TASKS)))
ifneq ($(filter single-task,$(BASELINES)),)
  ifeq ($(N_TASKS),)
    -include $(OUT)/tasks.mk
    N_TASKS := $(DATA_TASKS)
  endif
endif

$(OUT)/tasks.mk: $(D) $(BIN)/amtl-prep
	@mkdir -p $(@D)
	$(Q)$(BIN)/amtl-prep --info $(D) | \
	    awk 'NF >= 3 && $$(NF - 1) == "label" { n++ } END { print "DATA_TASKS := " n + 0 }' > $@.tmp
	@mv -f $@.tmp $@
TASK_IDS := $(if $(filter-out 0,$(N_TASKS)),$(shell seq 0 $$(($(N_TASKS) - 1))))
MODELS   := $(foreach b,$(BASELINES),$(if $(filter single-task,$(b)),$(addprefix single-task-,$(TASK_IDS)),$(b)))
kind_of   = $(if $(filter single-task-%,$(1)),single-task:$(patsubst single-task-%,%,$(1)),$(1))

# ---- targets -----------------------------------------------------------------
.PHONY: all search baselines paired table prune
all: table
	@echo
	@echo "architecture:   $(OUT)/arch.amtl  (view: $(BIN)/amtl-discretize --show $(OUT)/arch.amtl)"
	@echo "searched model: $(OUT)/searched.model"
	@echo "metrics:        $(OUT)/metrics.jsonl (supernet), $(OUT)/searched.jsonl (fine-tuning)"

search: $(OUT)/searched.eval.json $(OUT)/metrics.jsonl $(OUT)/arch.txt $(OUT)/candidates.tsv
baselines: $(MODELS:%=$(OUT)/%.eval.json)

table: $(OUT)/results.tsv $(OUT)/arch.txt
	@cat $(OUT)/arch.txt
	@echo
	@echo "export candidates (the searched model is the one marked *):"
	@column -t -s '	' $(OUT)/candidates.tsv
	@echo
	@column -t -s '	' $(OUT)/results.tsv
	@python3 $(PIPE)table.py --stages $(OUT)
	@python3 $(PIPE)table.py --floor $(OUT)/results.tsv

prune:
	rm -f $(filter-out $(OUT)/frozen.ckpt,$(STAGES:%=$(OUT)/%.ckpt))

ifeq ($(DATASET),)
$(D): $(STAMPS)/prep.yaml $(DATA) $(BIN)/amtl-prep
	@$(say) prep $@
	@mkdir -p $(@D)
	$(Q)$(TIMED) $(WALL)/$(@F).seconds $(BIN)/amtl-prep $(TOOLCFG) $(if $(DATA_SEED),--seed $(DATA_SEED)) \
	    $(if $(DATA),,--synthetic --rows $(ROWS) --tasks $(TASKS)) -o $@ $(DATA)
endif

$(OUT)/metrics.jsonl: $(STAGES:%=$(OUT)/%.ckpt)
	$(Q)cat $(STAGES:%=$(OUT)/%.jsonl) > $@.tmp && mv -f $@.tmp $@


$(OUT)/arch.txt: $(OUT)/arch.amtl
	$(Q)$(BIN)/amtl-discretize --show $< > $@.tmp && mv -f $@.tmp $@

# ---- export candidates -------------------------------------------------------
# One architecture per threshold T of export_candidates (EXPORT_THRESHOLDS):
# arch-T.amtl keeps a feature or expert when sigmoid(beta) > T; each is
# fine-tuned (searched-T.model, searched-T.jsonl) and scored on the
# validation split (searched-T.val.json).  With retrain_candidates
# (RETRAIN_CANDIDATES) each is also trained from scratch as the baselines
# are, for `epochs` epochs (candidate scratch-T: arch-scratch-T.amtl, a copy
# of arch-T.amtl, and searched-scratch-T.*).  With linear_candidate
# (LINEAR_CANDIDATE) the linear fit competes too (arch-linear.amtl,
# searched-linear.*): the search may conclude that no deep part is worth it.
# pipelines/pick-candidate copies the best by validation mean AUC to
# arch.amtl, searched.model and searched.jsonl and lists them all in
# candidates.tsv; the test split is not read.  The linear fit is the
# simplest of them: a deep candidate wins over it only by linear_margin
# paired standard errors or more (LINEAR_MARGIN).
CANDS := $(EXPORT_THRESHOLDS) $(if $(filter 1,$(RETRAIN_CANDIDATES)),$(EXPORT_THRESHOLDS:%=scratch-%)) \
         $(if $(filter 1,$(LINEAR_CANDIDATE)),linear)
ifeq ($(strip $(EXPORT_THRESHOLDS)),)
  $(error no export thresholds in $(STAMPS)/vars.mk (a $(BIN)/amtl-prep older than export_candidates?))
endif

# The linear candidate is the linear baseline itself, trained once: its
# files under the candidate's names, with its seconds (the search pays them).
copy = cp -f $(1) $(2).tmp && mv -f $(2).tmp $(2)
copy_wall = if [ -f $(WALL)/$(1).seconds ]; then $(call copy,$(WALL)/$(1).seconds,$(WALL)/$(2).seconds); \
            else rm -f $(WALL)/$(2).seconds; fi

$(OUT)/arch-linear.amtl: $(OUT)/linear.arch
	$(Q)$(call copy,$<,$@)
	$(Q)$(call copy_wall,linear.arch,$(@F))

$(OUT)/searched-linear.model: $(OUT)/linear.model
	$(Q)$(call copy,$(OUT)/linear.jsonl,$(OUT)/searched-linear.jsonl)
	$(Q)$(call copy,$<,$@)
	$(Q)$(call copy_wall,linear.model,$(@F))

# A retrained candidate's architecture is the export's (its seconds are the
# export's, counted once: the copy's are 0).
$(OUT)/arch-scratch-%.amtl: $(OUT)/arch-%.amtl
	$(Q)$(call copy,$<,$@)
	@mkdir -p $(WALL) && echo 0.000 > $(WALL)/$(@F).seconds.tmp && mv -f $(WALL)/$(@F).seconds.tmp $(WALL)/$(@F).seconds

$(OUT)/searched-scratch-%.model: $(OUT)/arch-scratch-%.amtl $(D) $(STAMPS)/train.yaml $(BIN)/amtl-train
	@$(say) train $@
	@rm -f $@.part $(OUT)/searched-scratch-$*.jsonl.part
	$(Q)$(TIMED) $(WALL)/$(@F).seconds $(RUN_TRAIN)$(BIN)/amtl-train --data $(D) --arch $< --from-scratch $(TOOLCFG) $(QUIET) \
	    --metrics $(OUT)/searched-scratch-$*.jsonl.part -o $@.part
	@mv -f $(OUT)/searched-scratch-$*.jsonl.part $(OUT)/searched-scratch-$*.jsonl
	@mv -f $@.part $@

$(OUT)/arch-%.amtl: $(OUT)/frozen.ckpt $(BIN)/amtl-discretize
	@$(say) export $@
	$(Q)$(TIMED) $(WALL)/$(@F).seconds $(BIN)/amtl-discretize --export --threshold $* -o $@ $<

$(OUT)/searched-%.model: $(OUT)/arch-%.amtl $(OUT)/frozen.ckpt $(D) $(STAMPS)/finetune.yaml $(BIN)/amtl-train
	@$(say) train $@
	@rm -f $@.part $(OUT)/searched-$*.jsonl.part
	$(Q)$(TIMED) $(WALL)/$(@F).seconds $(RUN_TRAIN)$(BIN)/amtl-train --data $(D) --arch $< --init $(OUT)/frozen.ckpt $(TOOLCFG) $(QUIET) \
	    --epochs $(FINETUNE_EPOCHS) --metrics $(OUT)/searched-$*.jsonl.part -o $@.part
	@mv -f $(OUT)/searched-$*.jsonl.part $(OUT)/searched-$*.jsonl
	@mv -f $@.part $@

# With the linear candidate, each deep candidate is also compared with the
# linear fit on the same validation rows (amtl-eval --against: the paired
# difference and its standard error, which pick-candidate weighs with
# linear_margin).
AGAINST := $(if $(filter 1,$(LINEAR_CANDIDATE)),$(OUT)/searched-linear.model)

# (the linear candidate itself is not compared with itself)
$(OUT)/searched-%.val.json: $(OUT)/searched-%.model $(AGAINST) $(D) $(BIN)/amtl-eval
	$(Q)$(TIMED) $(WALL)/$(@F).seconds $(BIN)/amtl-eval --model $< --data $(D) --split val --json \
	    $(if $(filter-out linear,$*),$(if $(AGAINST),--against $(AGAINST))) > $@.tmp
	@mv -f $@.tmp $@

$(OUT)/arch.amtl $(OUT)/searched.model $(OUT)/searched.jsonl $(OUT)/candidates.tsv &: \
		$(CANDS:%=$(OUT)/arch-%.amtl) $(CANDS:%=$(OUT)/searched-%.val.json) $(PIPE)pick-candidate \
		$(STAMPS)/choose.yaml
	@$(say) choose $(OUT)/candidates.tsv
	$(Q)$(PIPE)pick-candidate $(if $(AGAINST),--linear-margin $(LINEAR_MARGIN)) $(OUT) $(CANDS)

$(OUT)/%.arch: $(D) $(STAMPS)/baseline.yaml $(BIN)/amtl-discretize
	@$(say) baseline $@
	$(Q)$(TIMED) $(WALL)/$(@F).seconds $(BIN)/amtl-discretize --baseline $(call kind_of,$*) $(if $(filter linear,$*),,--op $(BASELINE_OP)) \
	    --data $(D) $(TOOLCFG) -o $@

$(OUT)/%.model: $(OUT)/%.arch $(D) $(STAMPS)/train.yaml $(BIN)/amtl-train
	@$(say) train $@
	@rm -f $@.part $(OUT)/$*.jsonl.part
	$(Q)$(TIMED) $(WALL)/$(@F).seconds $(RUN_TRAIN)$(BIN)/amtl-train --data $(D) --arch $< --from-scratch $(TOOLCFG) $(QUIET) \
	    --metrics $(OUT)/$*.jsonl.part -o $@.part
	@mv -f $(OUT)/$*.jsonl.part $(OUT)/$*.jsonl
	@mv -f $@.part $@

$(OUT)/%.eval.json: $(OUT)/%.model $(D) $(BIN)/amtl-eval
	@$(say) eval $@
	$(Q)$(TIMED) $(WALL)/$(@F).seconds $(BIN)/amtl-eval --model $< --data $(D) --split test --json > $@.tmp
	@mv -f $@.tmp $@

# The searched model against each baseline on the same test rows (amtl-eval
# --against): the difference of the mean test AUCs and its paired standard
# error, which make quality asks for (target paired) and reports; single-task
# is several models, not compared.  results.tsv does not need them.
PAIRED := $(filter-out single-task,$(BASELINES))
paired: $(PAIRED:%=$(OUT)/searched.vs-%.json)
$(OUT)/searched.vs-%.json: $(OUT)/searched.model $(OUT)/%.model $(D) $(BIN)/amtl-eval
	$(Q)$(BIN)/amtl-eval --model $< --against $(OUT)/$*.model --data $(D) --split test --json > $@.tmp
	@mv -f $@.tmp $@

$(OUT)/results.tsv: $(OUT)/searched.eval.json $(MODELS:%=$(OUT)/%.eval.json) $(OUT)/metrics.jsonl
	$(Q)python3 $(PIPE)table.py $(OUT) searched $(MODELS) > $@.tmp && mv -f $@.tmp $@

.DELETE_ON_ERROR:
.SECONDARY:
