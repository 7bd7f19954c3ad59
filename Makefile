# Everything runs inside .venv, which is (re)built when pyproject.toml changes.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
ARGS ?=
# One BLAS thread everywhere: the matrices here are small, and more threads
# make them slower (and fight over a 2-core machine's cores).
export OMP_NUM_THREADS := 1
export OPENBLAS_NUM_THREADS := 1
export MKL_NUM_THREADS := 1

.PHONY: test lessons report bench lint clean
.DEFAULT_GOAL := test

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

# Tests run on every core (pytest-xdist): the lesson quick runs are most of the time.
test: $(STAMP)
	$(PY) -m pytest -n auto

# make lesson-N: N is a whole number (lesson-3, lesson-03), checked before anything runs.
lesson-%: $(STAMP)
	@numbers=$$(echo $$(ls lessons | sed -n 's/^0*\([0-9][0-9]*\)_.*\.py$$/\1/p')); \
	case "$*" in ''|*[!0-9]*) \
	  echo "make lesson-N: N must be a lesson number (one of: $$numbers), not '$*'" >&2; exit 2;; esac; \
	f=$$(ls lessons/$$(printf '%02d' $$(expr $* + 0))_*.py 2>/dev/null); \
	if [ -z "$$f" ]; then echo "make lesson-N: there is no lesson $* (one of: $$numbers)" >&2; exit 2; fi; \
	echo "$(PY) $$f $(ARGS)"; $(PY) $$f $(ARGS)

# make ask-8 Q="4+4": ask the model lesson N saved in runs/lesson-N/
ask-%: $(STAMP)
	@$(PY) -m microseq.ask $* "$$Q"

lessons: $(STAMP)
	@set -e; for f in lessons/[0-9][0-9]_*.py; do echo "== $$f"; $(PY) $$f $(ARGS); done

report: $(STAMP)
	$(PY) -m microseq.report runs

bench: $(STAMP)
	$(PY) -m bench $(ARGS)

lint: $(STAMP)
	$(VENV)/bin/ruff check microseq lessons tests bench

clean:
	rm -rf $(VENV) runs .pytest_cache .hypothesis
