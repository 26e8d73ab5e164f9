# netspec developer tasks. `make test` and `make demo` set everything up on a
# fresh clone of a fresh machine, then run; each step is stamped, so a second
# run installs nothing.
#
#   .venv       CPU torch from the machine's local wheel, then `pip install -e '.[dev]'`
#   dot         Debian's graphviz (apt-get when root, else a message and a failure)
#   shells      zsh, which the completion tests press TAB in (apt-get when root, like dot)
#   editors     VS Code's TextMate engine (npm ci in editors/vscode), which the
#               highlighting tests run the grammar with (Node.js and npm from apt-get when root)
#   .venv-ref   torch 2.14.1 + torchvision 0.29.1 (a 5.5 GB CUDA build), only to
#               dump torchvision's models into .cache/ref for the parity tests;
#               created only when that cache is missing or out of date

SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := test

PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
# "+cpu" pins the wheel on local disk: plain "torch" would resolve to PyPI's
# multi-GB CUDA build.
TORCH ?= torch==2.13.0+cpu
PIP_FLAGS := --no-input --progress-bar off

REF_VENV ?= .venv-ref
REF_PY := $(REF_VENV)/bin/python
REF_PACKAGES ?= torch==2.14.1 torchvision==0.29.1 numpy safetensors
REF_CACHE ?= .cache/ref

STAMP := $(VENV)/.netspec-installed
EDITOR_STAMP := editors/vscode/node_modules/.package-lock.json
REF_STAMP := $(REF_VENV)/.netspec-installed

PYTEST_ARGS ?=

.PHONY: test demo setup dot shells editors browser ref clean-ref

# `python -m pytest` puts the repo root on sys.path, so tests import
# `tests.reference.*` wherever they live.
test: setup ref browser
	$(PY) -m pytest -q $(PYTEST_ARGS)

demo: setup
	$(PY) -m netspec.demo

setup: $(STAMP) dot shells editors

editors: $(EDITOR_STAMP)

$(EDITOR_STAMP): editors/vscode/package.json editors/vscode/package-lock.json
	@if ! command -v npm >/dev/null 2>&1; then \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
	    echo "installing Node.js and npm with apt-get"; \
	    export DEBIAN_FRONTEND=noninteractive; \
	    apt-get install -y -q nodejs npm || { apt-get update -q && apt-get install -y -q nodejs npm; }; \
	  else \
	    echo "error: npm (Node.js 18+) is not installed; the TextMate grammar is tested with VS Code's" \
	         "engine. Install it as root ('apt-get install nodejs npm'), then re-run make." >&2; \
	    exit 1; \
	  fi; \
	fi; \
	npm ci --prefix editors/vscode --no-audit --no-fund --loglevel=error

$(STAMP): pyproject.toml
	@start=$$(date +%s); \
	if [ ! -x $(PY) ]; then $(PYTHON) -m venv $(VENV); fi; \
	$(PY) -m pip install $(PIP_FLAGS) '$(TORCH)' || { \
	  echo "error: could not install $(TORCH). It is a CPU wheel expected on local disk" \
	       "(pip's find-links); install a CPU build of torch 2.13.0 into $(VENV) by hand," \
	       "never plain 'torch' (that is the multi-GB CUDA build)." >&2; exit 1; }; \
	$(PY) -m pip install $(PIP_FLAGS) -e '.[dev]'; \
	$(PY) -c 'import torch, sys; v = torch.__version__; sys.exit(0 if v.startswith("2.13.0") else f"error: {v} replaced the CPU torch 2.13.0 in $(VENV)")'; \
	touch $@; \
	echo "setup: $(VENV) ready in $$(( $$(date +%s) - start ))s"

# DOT names the program to look for (override it to test the install path).
DOT ?= dot
dot:
	@if ! command -v $(DOT) >/dev/null 2>&1; then \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
	    echo "installing graphviz (dot) with apt-get"; \
	    export DEBIAN_FRONTEND=noninteractive; \
	    apt-get install -y -q graphviz || { apt-get update -q && apt-get install -y -q graphviz; }; \
	    dot -V; \
	  else \
	    echo "error: graphviz's 'dot' is not installed. Install it as root:" \
	         "'apt-get install graphviz' (Debian/Ubuntu; 'brew install graphviz' on macOS), then re-run make." >&2; \
	    exit 1; \
	  fi; \
	fi

# zsh: `netspec completion zsh` is tested in a real zsh (bash is always there).
shells:
	@if ! command -v zsh >/dev/null 2>&1; then \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
	    echo "installing zsh with apt-get"; \
	    export DEBIAN_FRONTEND=noninteractive; \
	    apt-get install -y -q zsh || { apt-get update -q && apt-get install -y -q zsh; }; \
	  else \
	    echo "error: zsh is not installed; the completion tests run it. Install it as root:" \
	         "'apt-get install zsh' (Debian/Ubuntu), then re-run make." >&2; \
	    exit 1; \
	  fi; \
	fi

# Debian's chromium and chromedriver: the headless browser of the `netspec serve` page
# tests (selenium drives it; no browser is downloaded by anything else). Quick when present.
CHROMIUM ?= chromium
browser:
	@if ! command -v $(CHROMIUM) >/dev/null 2>&1 || ! command -v chromedriver >/dev/null 2>&1; then \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
	    echo "installing chromium and chromium-driver with apt-get"; \
	    export DEBIAN_FRONTEND=noninteractive; \
	    apt-get install -y -q chromium chromium-driver || { apt-get update -q && apt-get install -y -q chromium chromium-driver; }; \
	  else \
	    echo "error: the page tests need chromium and its driver. Install them as root:" \
	         "'apt-get install chromium chromium-driver' (Debian/Ubuntu), then re-run make." >&2; \
	    exit 1; \
	  fi; \
	fi

ref: $(REF_CACHE)/stamp

# The dump script writes the stamp after its last model. The venv is made
# from inside the recipe, not as a prerequisite, so an up-to-date cache
# needs no .venv-ref at all.
$(REF_CACHE)/stamp: tests/reference/dump_torchvision.py
	@$(MAKE) --no-print-directory $(REF_STAMP)
	@start=$$(date +%s); \
	$(REF_PY) tests/reference/dump_torchvision.py --out $(REF_CACHE); \
	echo "ref: dumped torchvision references into $(REF_CACHE) in $$(( $$(date +%s) - start ))s"

$(REF_STAMP):
	@start=$$(date +%s); \
	if [ ! -x $(REF_PY) ]; then $(PYTHON) -m venv $(REF_VENV); fi; \
	$(REF_PY) -m pip install $(PIP_FLAGS) $(REF_PACKAGES); \
	touch $@; \
	echo "ref: $(REF_VENV) ready in $$(( $$(date +%s) - start ))s"

# Frees the 5.5 GB of .venv-ref; the dumps in .cache/ref stay usable.
clean-ref:
	rm -rf $(REF_VENV)
