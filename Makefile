# Entry points, each self-contained on a fresh machine:
#   make book   install into .venv, execute every notebook, build the HTML book
#   make test   install into .venv, lint (ruff), run the unit/property tests and every
#               notebook (fast mode)
#   make results  install into .venv, rerun the five benchmarks (stats_correction,
#               gauges, results_table, compress_vgg, compress_lenet), writing
#               results/*.csv with their provenance (wall time included);
#               chapters 8 and 10 read them (hours on a CPU: compress_vgg
#               fine-tunes every compressed VGG for several epochs)
#   make memory  check that compress() peaks below twice the model's size
VENV   ?= .venv
PYTHON ?= python3
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed
export PYTHONHASHSEED = 0

.PHONY: book test install clean checkpoints results results-stats results-table memory

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

# Two streams of one-thread benchmarks, one per core; their progress lines interleave.
results: $(STAMP)
	$(MAKE) --no-print-directory -j2 results-stats results-table
	@ls -l results/

BENCH := OMP_NUM_THREADS=1 $(PY)

results-stats: $(STAMP)
	$(BENCH) benchmarks/stats_correction.py --csv results/stats_correction.csv
	$(BENCH) benchmarks/gauges.py --csv results/gauges.csv

results-table: $(STAMP)
	$(BENCH) benchmarks/results_table.py --csv results/results_table.csv
	$(BENCH) benchmarks/compress_lenet.py --csv results/compress_lenet.csv
	$(BENCH) benchmarks/compress_vgg.py --csv results/compress_vgg

# Peak memory of one compress() call on VGG-16-BN, at most 2x the model's size.
memory: $(STAMP)
	$(PY) benchmarks/compress_memory.py --max-multiple 2

checkpoints: $(STAMP)
	$(PY) -m helpers.train --all

clean:
	rm -rf _build
