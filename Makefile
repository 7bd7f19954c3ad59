# Everything runs inside .venv, which is (re)built when pyproject.toml changes.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
ARGS ?=

.PHONY: test lessons bench lint clean
.DEFAULT_GOAL := test

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

test: $(STAMP)
	$(PY) -m pytest

lesson-%: $(STAMP)
	@f=$$(ls lessons/$$(printf '%02d' $*)_*.py 2>/dev/null); \
	if [ -z "$$f" ]; then echo "no lesson $* in lessons/"; exit 2; fi; \
	echo "$(PY) $$f $(ARGS)"; $(PY) $$f $(ARGS)

lessons: $(STAMP)
	@set -e; for f in lessons/[0-9][0-9]_*.py; do echo "== $$f"; $(PY) $$f $(ARGS); done

# One BLAS thread: tiny matmuls get slower with more threads.
bench: $(STAMP)
	OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1 MKL_NUM_THREADS=1 $(PY) -m bench $(ARGS)

lint: $(STAMP)
	$(VENV)/bin/ruff check microseq lessons tests bench

clean:
	rm -rf $(VENV) runs .pytest_cache .hypothesis
