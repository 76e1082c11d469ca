# mmdflow: build the book and run the tests. Two commands do all the set-up on a fresh machine:
#   make book      # creates .venv from environment.yml if missing, executes every chapter, builds the HTML
#   make test      # unit tests + quick-profile chapters re-executed by nbval + site build + headless-browser check
# Options: PROFILE=book|quick|paper (book; quick: a preview of a few minutes), NB=<chapter> PARAMS="-p name value ..." (chapter), VENV=.venv

SHELL := /bin/bash
.SHELLFLAGS := -eo pipefail -c
.DEFAULT_GOAL := help
.PHONY: help venv mathjax chromium chapters chapter book test unit clean

PROFILE ?= book
# SCHEDULER=tcp://host:8786: the Dask cluster of the chapters' sweeps (default $MMDFLOW_SCHEDULER, else local workers)
export MMDFLOW_SCHEDULER := $(or $(SCHEDULER),$(MMDFLOW_SCHEDULER))
# JOBS: chapters (and test files) executed at the same time; with JOBS > 1 each process uses one thread.
JOBS ?= 2
ifeq ($(strip $(JOBS)),1)
PARALLEL_TESTS :=
else
PARALLEL_TESTS := OMP_NUM_THREADS=1 PYTEST_ADDOPTS="-n $(strip $(JOBS)) --dist loadfile"
endif
VENV ?= .venv
PY := $(VENV)/bin/python
BIN := $(abspath $(VENV)/bin)
export PATH := $(BIN):$(PATH)
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)

# Data directory for MNIST: an existing MMDFLOW_DATA wins; else the project's copy of the test split (data/mnist).
ifeq ($(MMDFLOW_DATA),)
export MMDFLOW_DATA := $(abspath data)
endif

help:
	@echo "make book [PROFILE=book|quick|paper]   execute every chapter and build the website (_build/html);"
	@echo "                                  book (default): the website's settings, quick: a preview of a few minutes"
	@echo "make test                         unit tests, nbval re-execution, site build and browser check"
	@echo "make chapter NB=02_dirac_flows PARAMS='-p seed 3' [PROFILE=...]   rerun one chapter with overrides"
	@echo "                                  (they stay in later make book runs; without PARAMS: back to the defaults)"

venv: $(VENV)/.installed
$(VENV)/.installed: environment.yml lib/pyproject.toml scripts/requirements.sh
	@test -x $(PY) || { echo "creating $(VENV) from environment.yml"; python3 -m venv $(VENV); }
	$(PY) -m pip install -q --upgrade pip
	scripts/requirements.sh environment.yml > $(VENV)/requirements.txt
	$(PY) -m pip install -q -r $(VENV)/requirements.txt
	$(PY) -m pip install -q --no-deps --no-build-isolation -e lib
	touch $@

# Offline MathJax (the website must render math without a CDN).
MATHJAX := build/mathjax/tex-mml-chtml.js
mathjax: $(MATHJAX)
$(MATHJAX):
	npm install --silent --no-audit --no-fund --prefix build/npm mathjax@3.2.2
	mkdir -p build/mathjax/output/chtml
	cp build/npm/node_modules/mathjax/es5/tex-mml-chtml.js build/mathjax/
	cp -r build/npm/node_modules/mathjax/es5/output/chtml/fonts build/mathjax/output/chtml/

chromium:
	@command -v chromium >/dev/null || { echo "installing chromium (Debian package) for the browser check"; \
	  $(SUDO) apt-get update -q && $(SUDO) apt-get install -y -q chromium; }

chapters: venv
	$(PY) scripts/run_chapters.py --profile $(PROFILE) --jobs $(JOBS) $(PARAMS)

chapter: venv
	@test -n "$(NB)" || { echo "usage: make chapter NB=<name> [PARAMS='-p name value'] [PROFILE=book|quick|paper]"; exit 2; }
	$(PY) scripts/run_chapters.py --profile $(PROFILE) --chapters $(NB) --force $(PARAMS)

# $(1): profile whose executed chapters to use, $(2): output folder (the site lands in $(2)/_build/html)
# A site whose inputs (book/, the executed chapters and their records, the chapter sources, the library and scripts,
# _config.yml, MathJax, the commit and uncommitted changes: the downloads carry the source) have not changed since its
# last build is not rebuilt: a rerun of make book with nothing changed takes seconds.
define build_site
	@h=$$( { cat $$(find book build/executed/$(1) notebooks _config.yml $(MATHJAX) LICENSE CITATION.cff -type f; \
	  find lib/mmdflow scripts benchmarks/results build/records/$(1) -name '*.py' -o -name '*.json' -o -name '*.toml' \
	  | LC_ALL=C sort); git rev-parse HEAD 2>/dev/null; git diff HEAD 2>/dev/null; } | sha256sum | cut -c1-16); \
	if [ -f $(2)/_build/html/index.html ] && [ "$$(cat $(2)/_build/.inputs 2>/dev/null)" = "$$h" ]; then \
	  echo "site up to date ($(2)/_build/html)"; else $(MAKE) --no-print-directory site-$(1) SITE_OUT=$(2) SITE_HASH=$$h; fi
endef

# site-<profile> (not .PHONY: make skips pattern rules for phony targets) builds the site of build/executed/<profile>.
# Quiet: one line per stage; jupyter-book's own output goes to build/site-src/<profile>.log and is printed only when
# the build fails (-W: any warning fails it). pykeops' notice that this machine has no CUDA is not shown.
site-%:
	@echo "site ($*): staging book/, the executed chapters, the downloads, parameter tables and reference pages"
	@rm -rf build/site-src/$* && mkdir -p build/site-src/$*/_extra
	@cp -r book/. build/site-src/$*/
	@cp -r build/executed/$* build/site-src/$*/_executed
	@cp notebooks/*.py build/site-src/$*/_executed/     # the chapters' Jupytext sources, offered as downloads
	@cp -r build/mathjax build/site-src/$*/_extra/mathjax
	@PYTHONPATH=$(abspath lib) $(PY) scripts/stage_site.py $* build/site-src/$* 2>&1 | sed '/^\[KeOps\] Warning : CUDA libraries not found/d'
	@echo "site ($*): jupyter-book build (log: build/site-src/$*.log)"
	@rm -rf $(SITE_OUT)/_build/html/_downloads     # downloads of earlier builds (another commit's archive)
	@PYTHONPATH=$(abspath lib) $(BIN)/jupyter-book build build/site-src/$* --config _config.yml --path-output $(SITE_OUT) \
	  -W --keep-going -q > build/site-src/$*.log 2>&1 || { sed 's/\x1b\[[0-9;]*m//g' build/site-src/$*.log; exit 1; }
	@$(PY) scripts/check_site.py $(SITE_OUT)/_build/html
	@echo $(SITE_HASH) > $(SITE_OUT)/_build/.inputs

book: venv mathjax chapters
	$(call build_site,$(PROFILE),.)
	@echo "The book is at $(abspath _build/html/index.html)"

test: venv mathjax chromium
	@# KeOps compiles each formula on first use into a shared cache that two test workers must not write at once:
	@# its tests run first in one process (seconds once the cache is warm)
	$(PY) -m pytest tests -q -k keops -p no:cacheprovider
	$(PY) scripts/run_chapters.py --profile quick --jobs $(JOBS)
	$(call build_site,quick,build/test-site)
	MMDFLOW_SITE=build/test-site/_build/html MMDFLOW_REQUIRE_SITE=1 $(PARALLEL_TESTS) \
	  $(PY) -m pytest tests build/executed/quick/*.ipynb --nbval-lax --nbval-current-env --durations=15

unit: venv
	$(PY) -m pytest tests -m "not site"

clean:
	rm -rf build _build
