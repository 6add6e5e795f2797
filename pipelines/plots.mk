# pipelines/plots.mk — pictures of a pipeline run (make plots [RUN=results/NAME]).
#
#   RUN/plots/loss.png     training loss per epoch: the supernet's warm-up,
#                          search and frozen epochs, then the fine-tuning of
#                          the searched model, with the phases marked
#   RUN/plots/auc.png      validation AUC per task (and their mean) per epoch
#   RUN/plots/entropy.png  the search: mean entropy of softmax(alpha) over the
#                          MixedOps still mixed, and how many are left
#   RUN/plots/models.png   validation mean AUC per epoch of every model trained
#                          in the run (the searched model and the baselines)
#   RUN/plots/arch.svg     the searched architecture (Graphviz), from arch.dot
#
# Settings: RUN (results/demo), BIN (bin), FORMAT (png or svg, for the curves),
# GNUPLOT and DOT (the programs; found on PATH, empty to skip their pictures).
# The curves need gnuplot (Debian package gnuplot-nox), the architecture
# Graphviz's dot (package graphviz); without one, its pictures are skipped
# with a message saying what to install, and make still succeeds.
RUN    ?= results/demo
BIN    ?= bin
FORMAT ?= png

PIPE    := $(dir $(lastword $(MAKEFILE_LIST)))
P       := $(RUN)/plots
GNUPLOT ?= $(shell command -v gnuplot 2>/dev/null)
DOT     ?= $(shell command -v dot 2>/dev/null)
GNUPLOT := $(GNUPLOT)
DOT     := $(DOT)
CURVES  := $(if $(GNUPLOT),$(patsubst %,$(P)/%.$(FORMAT),loss auc entropy models))
ARCH    := $(if $(DOT),$(P)/arch.svg)

ifeq ($(filter $(FORMAT),png svg),)
  $(error FORMAT is png or svg, not '$(FORMAT)')
endif

.PHONY: all check
all: check $(CURVES) $(ARCH)
ifeq ($(GNUPLOT),)
	@echo "plots: gnuplot not found; install the Debian package gnuplot-nox (apt-get install gnuplot-nox); skipped the training curves"
endif
ifeq ($(DOT),)
	@echo "plots: Graphviz's dot not found; install the Debian package graphviz (apt-get install graphviz); skipped the architecture picture"
endif
	@for f in $(CURVES) $(ARCH); do echo "  picture   $$f"; done

check:
	@test -s $(RUN)/metrics.jsonl || { echo "plots: no $(RUN)/metrics.jsonl: run the pipeline first (make demo, or make -f pipelines/search.mk ... OUT=$(RUN))" >&2; exit 1; }

$(P)/phases.gp: $(wildcard $(RUN)/*.jsonl) $(PIPE)curves.py | check
	@mkdir -p $(P)
	python3 $(PIPE)curves.py $(RUN) $(P)

$(P)/%.$(FORMAT): $(P)/phases.gp $(PIPE)curves.gp
	$(GNUPLOT) -e "dir='$(P)'; which='$*'; out='$@.tmp'; term='$(FORMAT)'; title='$(notdir $(RUN))'" $(PIPE)curves.gp
	@mv -f $@.tmp $@

$(P)/arch.dot: $(RUN)/arch.amtl | check
	@mkdir -p $(P)
	$(BIN)/amtl-discretize --show --format dot $< > $@.tmp && mv -f $@.tmp $@

$(P)/arch.svg: $(P)/arch.dot
	$(DOT) -Tsvg $< > $@.tmp && mv -f $@.tmp $@

.DELETE_ON_ERROR:
