# Set-up and checks. Every target creates .venv when it is missing and installs into it.
PYTHON ?= python3
VENV ?= .venv
# torch is only read-side here (official checkpoints, parity tests). 2.13.0 is the CPU build this
# project's machines carry; elsewhere pass e.g. TORCH="torch --index-url https://download.pytorch.org/whl/cpu".
TORCH ?= torch==2.13.0
PY := $(VENV)/bin/python
STAMP := $(VENV)/.stargan_tf-installed

.PHONY: test test-train test-slow test-demo test-faults test-exports test-all durations demo install clean lint format

$(STAMP): pyproject.toml setup.py
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet $(TORCH)
	$(PY) -m pip install --quiet -e ".[torch,tfds,test,lint,app,onnx,litert]"
	touch $(STAMP)

install: $(STAMP)

# The one formatter and the linter (ruff; rules in pyproject.toml), checked, not applied: `make
# format` applies the formatter. .ci/run runs `make lint` before the tests.
LINTED = stargan_tf tests tools setup.py
lint: $(STAMP)
	$(VENV)/bin/ruff format --check $(LINTED)
	$(VENV)/bin/ruff check $(LINTED)

format: $(STAMP)
	$(VENV)/bin/ruff format $(LINTED)

# make test: the suite (at most 12 minutes on the idle 2-core CI machine), without the longer
# checks of the named targets below (markers demo_accuracy, faults, packaging, slow, exports,
# training). -rfEP: what the
# passing tests printed too (measured margins, parity errors) after the failures and errors.
# Two pytest workers (pytest-xdist), a test file each at a time: many tests wait on subprocesses
# and TensorFlow start-up, so two share the 2-core CI machine well. TEST_WORKERS=0: one process.
# Files go out in collection order (--no-loadscope-reorder): tests/conftest.py collects the
# longest first, by the durations of the last run (pytest's cache, else tests/durations.json).
TEST_WORKERS ?= 2
XDIST = -n $(TEST_WORKERS) --dist loadfile --no-loadscope-reorder
NAMED = demo_accuracy or faults or packaging or slow or exports or training
test: $(STAMP)
	$(PY) -m pytest -q -rfEP --durations=15 $(XDIST) -m "not ($(NAMED))" tests

# End-to-end training runs (~13 minutes; CI runs it after make test): the demo's first 1,200
# iterations judged by the shape classifier, fine-tuning from a workdir and from converted
# official files, 2 replicas and a localhost cluster against one device and exact resume,
# SIGTERM and a NaN mid-run, a face model's training step, train-then-resume from the CLI.
test-train: $(STAMP)
	$(PY) -m pytest -q -rfEP --durations=10 $(XDIST) -m training tests

# Fault injection in full (~12 minutes): 10 kill -9 trials at random times, a damaged latest
# checkpoint, a full disk, and SIGTERM to one worker of a localhost cluster.
# Two workers, a test each at a time: the kill -9 trials (one test, ~6 minutes) on one, the rest
# on the other.
test-faults: $(STAMP)
	STARGAN_KILL_TRIALS=10 $(PY) -m pytest -q -rA -n $(TEST_WORKERS) --dist load -m faults \
		tests/test_faults.py tests/test_distributed.py

# The demo's acceptance check (~22 minutes): trains configs/demo.cfg in full, deterministically,
# with adain, with modconv and with adain in bf16 (~7 minutes each alone on an idle 2-core
# machine, ~14 side by side),
# then a classifier of the demo's shapes must see the target shape in >= 70% of the
# translations. One run: make test-demo DEMO_TESTS="-k adain" (or modconv, bf16).
# Two workers, a run (one test) each at a time: two runs go side by side, a core each.
test-demo: $(STAMP)
	$(PY) -m pytest -q -rA -n $(TEST_WORKERS) --dist load -m demo_accuracy tests/test_demo.py \
		$(DEMO_TESTS)

# Training steps that trace or compile for minutes (~3 minutes): the XLA step, uint8 vs float32
# vs device-augmented batches (three trainers), the benchmark tool on a tiny model.
test-slow: $(STAMP)
	$(PY) -m pytest -q -rA $(XDIST) -m slow tests

# ONNX and LiteRT exports of a face model (FAN masks inside) and a modconv model against the Keras
# networks (~10 minutes: each conversion takes minutes on 2 cores); make test runs the converted
# official fixture's.
test-exports: $(STAMP)
	$(PY) -m pytest -q -rA $(XDIST) -m exports tests/test_portable_export.py

# Every check: make test and every named target.
test-all: test test-train test-slow test-demo test-faults test-packaging test-exports

# tests/durations.json from the last run's recorded durations (run `make test` first): the
# order in which a fresh clone's `make test` hands out the test files.
durations: $(STAMP)
	$(PY) -c "import sys; sys.path.insert(0, 'tests'); import conftest; conftest.write_durations()"

# The built-in demo: coloured shapes (stargan_tf/data/demo.py), trained with configs/demo.cfg.
# Running it again resumes the run in .demo/run (or does nothing when it has finished).
DEMO ?= .demo
demo: $(STAMP)
	$(VENV)/bin/stargan-tf-demo --output_dir $(DEMO)/data
	$(VENV)/bin/stargan-tf-train --recipe=demo --train_data=$(DEMO)/data/train \
		--val_data=$(DEMO)/data/val --workdir=$(DEMO)/run
	@echo "Sample grids: $(DEMO)/run/samples/*.png (the last one is the final model)."
	@echo "TensorBoard:  $(VENV)/bin/tensorboard --logdir $(DEMO)/run"

clean:
	rm -rf $(VENV) $(MIN_VENV) $(DEMO) build dist *.egg-info .pytest_cache

# The product a `pip install` gives (tests/test_packaging.py): builds the wheel, installs it into
# a fresh venv (TensorFlow etc. from pip, torch==2.13.0 for the torch extra) and runs every console
# script from outside the checkout: --help, convert, make-tfrecords, 3 training steps of the demo
# recipe, export, translate (several minutes; the install dominates).
.PHONY: test-packaging
test-packaging: $(STAMP)
	$(PY) -m pytest -q -s -m packaging tests/test_packaging.py

# The declared minimum TensorFlow, Keras and NumPy (tests/min_deps.txt): the installed wheel's
# commands (as test-packaging) and a subset (parity, losses, conversion, REST serving, model
# cards, training steps) in $(MIN_VENV), an editable install pinned to them (~15 minutes).
MIN_VENV ?= .venv-min
MIN_TESTS ?= tests/test_parity.py tests/test_losses.py tests/test_convert.py \
	tests/test_serving_rest.py tests/test_model_card.py tests/test_train_step.py
.PHONY: test-min-deps
test-min-deps: $(STAMP)
	STARGAN_PACKAGING_CONSTRAINTS=tests/min_deps.txt $(PY) -m pytest -q -s -m packaging \
		tests/test_packaging.py::test_installed_wheel_runs_every_command
	test -x $(MIN_VENV)/bin/python || $(PYTHON) -m venv $(MIN_VENV)
	$(MIN_VENV)/bin/python -m pip install --quiet -c tests/min_deps.txt $(TORCH) -e ".[torch,tfds,test]"
	$(MIN_VENV)/bin/python -m pytest -q -p no:cacheprovider $(MIN_TESTS)
