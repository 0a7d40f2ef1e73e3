# Entry points, each self-contained on a fresh machine:
#   make book   install into .venv, execute every notebook, build the HTML book
#   make test   install into .venv, lint (ruff), run the unit/property tests and every
#               notebook (fast mode)
#   make results  install into .venv, rerun the benchmarks whose tables chapter 10 reads,
#               writing results/*.csv with their provenance (about 30 minutes, 2 cores)
VENV   ?= .venv
PYTHON ?= python3
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed
export PYTHONHASHSEED = 0

.PHONY: book test install clean checkpoints results

install: $(STAMP)

$(STAMP): requirements.txt constraints.txt pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet -c constraints.txt -r requirements.txt
	$(PY) -m pip install --quiet --no-deps --no-build-isolation -e .
	$(PY) -m ipykernel install --sys-prefix --name python3 >/dev/null
	touch $@

book: $(STAMP)
	$(VENV)/bin/jupyter-book build . --warningiserror --keep-going
	@echo "Open _build/html/index.html"

test: $(STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(PY) -m pytest tests -n 2 -q
	BOOK_FAST=1 $(PY) -m pytest --nbval-lax --nbval-current-env -n 2 --dist loadfile book/

results: $(STAMP)
	OMP_NUM_THREADS=1 $(PY) benchmarks/stats_correction.py --csv results/stats_correction.csv
	OMP_NUM_THREADS=1 $(PY) benchmarks/results_table.py --csv results/results_table.csv

checkpoints: $(STAMP)
	$(PY) -m helpers.train --all

clean:
	rm -rf _build
