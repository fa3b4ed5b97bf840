# Two commands for a fresh machine: `make demo` and `make test`. Both create .venv first.
VENV ?= .venv
PY := $(VENV)/bin/python
PIP := $(PY) -m pip
# An unpinned torch pulls a multi-GB CUDA build; this pin installs the CPU build where no torch is present.
TORCH ?= torch==2.13.0

.PHONY: setup demo test test-min lock lint bench clean

setup: $(VENV)/.installed

# Installs go through the lock (constraints.txt), so a new release of a dependency cannot break a
# fresh clone; `make lock` refreshes it after running the suite on what pip resolves today.
$(VENV)/.installed: pyproject.toml constraints.txt Makefile
	test -x $(PY) || python3 -m venv $(VENV)
	$(PIP) install -q --upgrade pip
	$(PY) -c "import torch" 2>/dev/null || $(PIP) install -q $(TORCH)
	$(PIP) install -q -c constraints.txt -e ".[dev]"
	touch $@

lock:
	scripts/lock.sh

# The lower bounds of pyproject.toml, proven: the runtime dependencies at their oldest allowed
# versions (scripts/lowest.py), the dev tools as pip resolves them, then the whole suite, with a
# model cache of its own so that the GGUF conversion is proven on those versions too.
MIN_VENV := .venv-min
test-min:
	test -x $(MIN_VENV)/bin/python || python3 -m venv $(MIN_VENV)
	$(MIN_VENV)/bin/pip install -q --upgrade pip
	$(MIN_VENV)/bin/python scripts/lowest.py > $(MIN_VENV)/lowest.txt
	$(MIN_VENV)/bin/pip install -q -c $(MIN_VENV)/lowest.txt -e ".[dev]"
	$(MIN_VENV)/bin/pip list 2>/dev/null | grep -iE '^(torch|transformers|tokenizers|numpy|pydantic|accelerate|gguf) '
	CONDPRED_CACHE=$(abspath $(MIN_VENV))/cache $(MIN_VENV)/bin/pytest -q -p no:cacheprovider

demo: setup
	$(VENV)/bin/condpred predict examples/alignment-paper-2031.yaml -n 3 --max-tokens 80 --seed 0

test: setup
	$(VENV)/bin/ruff check
	$(VENV)/bin/pytest -q

lint: setup
	$(VENV)/bin/ruff check
	$(VENV)/bin/ruff format --check

# lm-evaluation-harness, the benchmark's baseline, lives in its own venv, installed from a lock of its
# own (bench/constraints-lmeval.txt: lm-eval 0.4.13 with accelerate, which it imports, and condpred's
# transformers). If the venv cannot be built, `make bench` still runs: score_prefix.py records that
# baseline as failed, with its error, next to every other result.
LMEVAL_VENV := bench/.venv-lmeval
$(LMEVAL_VENV)/.installed: bench/constraints-lmeval.txt
	test -x $(LMEVAL_VENV)/bin/python || python3 -m venv $(LMEVAL_VENV)
	$(LMEVAL_VENV)/bin/pip install -q --upgrade pip
	$(LMEVAL_VENV)/bin/python -c "import torch" 2>/dev/null || $(LMEVAL_VENV)/bin/pip install -q $(TORCH)
	$(LMEVAL_VENV)/bin/pip install -q -c bench/constraints-lmeval.txt lm-eval==0.4.13 accelerate transformers
	touch $@

bench: setup
	-$(MAKE) $(LMEVAL_VENV)/.installed
	$(PY) bench/score_prefix.py; status=$$?; $(PY) bench/sample.py && exit $$status

clean:
	rm -rf $(VENV) $(MIN_VENV) build *.egg-info
