# pipelines/demo.mk — the whole search on the embedded synthetic data, then
# the baselines, then one results table.  Every stage is one file target, so
# make reruns only what is stale.  Run from the repository root: make demo.
BIN     ?= bin
CFG     ?= configs/demo.yaml
ROWS    ?= 20000
OUT     ?= results/demo
SET     ?=
TOOLOPT  = --config $(CFG) $(SET) --quiet
BASELINES := shared-bottom mmoe ple linear

all: $(OUT)/results.tsv
	@column -t -s '	' $(OUT)/results.tsv
	@echo
	@echo "architecture: $(OUT)/arch.amtl (view: $(BIN)/amtl-discretize --show $(OUT)/arch.amtl)"
	@echo "searched model: $(OUT)/searched.model"
	@cat $(OUT)/arch.txt

$(OUT)/data.amtl: $(CFG)
	@mkdir -p $(@D)
	$(BIN)/amtl-prep --synthetic --rows $(ROWS) --seed 1 -o $@

$(OUT)/warmup.ckpt: $(OUT)/data.amtl $(CFG)
	$(BIN)/amtl-supernet --data $< $(TOOLOPT) --phase warmup --epochs 2 --metrics $(OUT)/metrics.jsonl -o $@

$(OUT)/search.ckpt: $(OUT)/warmup.ckpt
	$(BIN)/amtl-supernet --data $(OUT)/data.amtl $(TOOLOPT) --init $< --phase search --epochs 3 --metrics $(OUT)/metrics.jsonl -o $@

$(OUT)/frozen.ckpt: $(OUT)/search.ckpt
	$(BIN)/amtl-supernet --data $(OUT)/data.amtl $(TOOLOPT) --init $< --phase finetune --epochs 1 --metrics $(OUT)/metrics.jsonl -o $@

$(OUT)/arch.amtl: $(OUT)/frozen.ckpt
	$(BIN)/amtl-discretize --export -o $@ $<

$(OUT)/arch.txt: $(OUT)/arch.amtl
	$(BIN)/amtl-discretize --show $< > $@.tmp && mv $@.tmp $@

$(OUT)/searched.model: $(OUT)/arch.amtl $(OUT)/frozen.ckpt
	$(BIN)/amtl-train --data $(OUT)/data.amtl --arch $< --init $(OUT)/frozen.ckpt $(TOOLOPT) --metrics $(OUT)/searched.jsonl -o $@

$(OUT)/%.arch: $(OUT)/data.amtl $(CFG)
	$(BIN)/amtl-discretize --baseline $* --data $< --config $(CFG) -o $@

$(OUT)/%.model: $(OUT)/%.arch
	$(BIN)/amtl-train --data $(OUT)/data.amtl --arch $< --from-scratch $(TOOLOPT) --metrics $(OUT)/$*.jsonl -o $@

$(OUT)/%.eval.json: $(OUT)/%.model
	$(BIN)/amtl-eval --model $< --data $(OUT)/data.amtl --json > $@.tmp && mv $@.tmp $@

$(OUT)/results.tsv: $(OUT)/searched.eval.json $(BASELINES:%=$(OUT)/%.eval.json) $(OUT)/arch.txt
	pipelines/table.sh $(OUT)/searched.eval.json $(BASELINES:%=$(OUT)/%.eval.json) > $@.tmp && mv $@.tmp $@

.PHONY: all
.DELETE_ON_ERROR:
.SECONDARY:
