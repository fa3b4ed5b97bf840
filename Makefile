# Two commands for a fresh machine: `make demo` and `make test`. Both create .venv first.
VENV ?= .venv
PY := $(VENV)/bin/python
PIP := $(PY) -m pip
# An unpinned torch pulls a multi-GB CUDA build; this pin installs the CPU build where no torch is present.
TORCH ?= torch==2.13.0

.PHONY: setup demo test lint bench clean

setup: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml Makefile
	test -x $(PY) || python3 -m venv $(VENV)
	$(PIP) install -q --upgrade pip
	$(PY) -c "import torch" 2>/dev/null || $(PIP) install -q $(TORCH)
	$(PIP) install -q -e ".[dev]"
	touch $@

demo: setup
	$(VENV)/bin/condpred predict examples/alignment-paper-2031.yaml -n 3 --max-tokens 80 --seed 0

test: setup
	$(VENV)/bin/ruff check
	$(VENV)/bin/pytest -q

lint: setup
	$(VENV)/bin/ruff check
	$(VENV)/bin/ruff format --check

# lm-evaluation-harness, the benchmark's baseline, lives in its own venv with our torch and transformers.
LMEVAL_VENV := bench/.venv-lmeval
$(LMEVAL_VENV)/.installed: $(VENV)/.installed
	test -x $(LMEVAL_VENV)/bin/python || python3 -m venv $(LMEVAL_VENV)
	$(LMEVAL_VENV)/bin/pip install -q $(TORCH) lm-eval==0.4.13 \
		"transformers==$$($(PY) -c 'import transformers; print(transformers.__version__)')"
	touch $@

bench: setup $(LMEVAL_VENV)/.installed
	$(PY) bench/score_prefix.py

clean:
	rm -rf $(VENV) build *.egg-info
