# The two commands (see README):  make demo   |   make test
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.setup-stamp

.PHONY: setup demo test test-all clean-runs

$(STAMP): pyproject.toml constraints.txt scripts/setup.sh $(wildcard scripts/build_kenlm.sh)
	VENV=$(VENV) bash scripts/setup.sh
	touch $(STAMP)

setup: $(STAMP)

demo: $(STAMP)
	$(VENV)/bin/w2vu demo $(ARGS)

test: $(STAMP)
	$(PY) -m pytest -q $(ARGS)

test-all: $(STAMP)
	$(PY) -m pytest -q -m "" $(ARGS)

clean-runs:
	rm -rf runs
