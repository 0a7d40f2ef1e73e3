# Two entry points, both self-contained on a fresh machine:
#   make book   install into .venv, execute every notebook, build the HTML book
#   make test   install into .venv, run the unit/property tests and every notebook (fast mode)
VENV   ?= .venv
PYTHON ?= python3
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed
export PYTHONHASHSEED = 0

.PHONY: book test install clean checkpoints

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
	$(PY) -m pytest tests -n 2 -q
	BOOK_FAST=1 $(PY) -m pytest --nbval-lax --nbval-current-env -n 2 --dist loadfile book/

checkpoints: $(STAMP)
	$(PY) -m helpers.train --all

clean:
	rm -rf _build
