# Set-up and everyday commands. `make demo` and `make test` work on a fresh machine.
PYTHON ?= python3
VENV ?= .venv
# Installed before the project so that pip does not pull a CUDA build; override for a GPU machine,
# e.g. `make test TORCH="torch==2.13.0 --index-url https://download.pytorch.org/whl/cu128"`.
TORCH ?= torch==2.13.0
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: install test lint format demo demo-meanflow docs clean

$(STAMP): pyproject.toml examples/gen-example-plugin/pyproject.toml examples/gen-process-plugin/pyproject.toml Makefile
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q $(TORCH)
	$(BIN)/python -m pip install -q -e '.[dev,docs,tensorboard,wandb,ode,latent]'
	# The example third-party plugin, installed the way a user would install one (tests exercise it).
	$(BIN)/python -m pip install -q --no-deps -e examples/gen-example-plugin
	# The example third-party process (vp_cosine and its sampler vp_ddim), installed the same way.
	$(BIN)/python -m pip install -q --no-deps -e examples/gen-process-plugin
	# The report's browser test (tests/core/report) renders in Debian's chromium, installed here where it
	# is missing (apt, as root; playwright never downloads a browser). Elsewhere that test is skipped.
	command -v chromium >/dev/null || ! command -v apt-get >/dev/null || (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium) \
		|| echo 'warning: chromium could not be installed (apt-get needs root): the report browser test will be skipped'
	touch $(STAMP)

install: $(STAMP)

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

format: install
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

# NO_MKDOCS_2_WARNING only hides Material's end-of-life banner.
docs: install
	NO_MKDOCS_2_WARNING=1 $(BIN)/mkdocs build --strict -q -d site

# The suite on every core the process may use (nproc) plus one, each worker on one torch thread: small
# tensors run faster so than on two threads in one process, and a worker that waits on a subprocess
# (torchrun, the CLI, a benchmark script) leaves its core to the spare one. The docs step has just built
# site/ strictly: tests/test_docs.py reads it instead of building again (GEN_BUILT_SITE).
TEST_WORKERS ?= $(shell echo $$(( $$(nproc) + 1 )))
test: lint docs
	GEN_BUILT_SITE=site OMP_NUM_THREADS=1 $(BIN)/pytest -q -n $(TEST_WORKERS) \
		tests examples/gen-example-plugin/tests examples/gen-process-plugin/tests

# Run again, it continues (or, when finished, redraws the grid and the score) instead of failing; it ends
# by writing runs/demo/report.html (curves, scores, sample grids: open it in a browser).
demo: install
	$(BIN)/gen train recipes/demo.toml --run-dir runs/demo $$(test -d runs/demo/checkpoints && echo --resume)
	$(BIN)/gen report runs/demo

# The demo fine-tuned into a one-step MeanFlow (docs/one_step.md); trains the demo first if needed.
demo-meanflow: demo
	$(BIN)/gen train recipes/demo_meanflow.toml --run-dir runs/demo_meanflow $$(test -d runs/demo_meanflow/checkpoints && echo --resume)

clean:
	rm -rf $(VENV) site .pytest_cache .ruff_cache
