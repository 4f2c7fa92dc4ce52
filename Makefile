# Set-up and checks. Every target creates .venv when it is missing and installs into it.
PYTHON ?= python3
VENV ?= .venv
# torch is only read-side here (official checkpoints, parity tests). 2.13.0 is the CPU build this
# project's machines carry; elsewhere pass e.g. TORCH="torch --index-url https://download.pytorch.org/whl/cpu".
TORCH ?= torch==2.13.0
PY := $(VENV)/bin/python
STAMP := $(VENV)/.stargan_tf-installed

.PHONY: test demo install clean

$(STAMP): pyproject.toml setup.py
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet $(TORCH)
	$(PY) -m pip install --quiet -e ".[torch,test]"
	touch $(STAMP)

install: $(STAMP)

test: $(STAMP)
	$(PY) -m pytest -q tests

demo: $(STAMP)
	@echo "make demo: not yet available: training on the built-in demo dataset lands with the training issue."
	@echo "What works today: converting official checkpoints (see README.md)."

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache
