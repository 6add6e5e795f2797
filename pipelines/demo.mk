# pipelines/demo.mk — the demo (make demo): the whole search on the embedded
# synthetic data, the baselines trained by the same tools, one results table.
# It is pipelines/search.mk with the demo's settings; any of them, and OUT,
# BIN or SET, can be given on the command line.
CONFIG    ?= configs/demo.yaml
NAME      ?= demo
ROWS      ?= 100000
TASKS     ?= 4
DATA_SEED ?= 1
include $(dir $(lastword $(MAKEFILE_LIST)))search.mk
