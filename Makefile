# dbalib: `make figures` (the main job) and `make test` (the tests) are the whole set-up.
# Both create or reuse .venv and install the project (torch 2.14.1, torchvision 0.29.1, ...);
# nothing is reinstalled unless pyproject.toml changed.
#
# make figures                      execute every notebook (papermill) into build/notebooks/,
#                                   export HTML, write figures/*.pdf|png and results/*.json
# make figures SEEDS=0              any notebook parameter: SEEDS, DEVICE, or PARAMS='ROUNDS: 40'
#                                   (unset: each notebook's own defaults); a run with any of them
#                                   writes build/figures/ and build/results/, not the tracked folders
# make figures ... PUBLISH=1        write the tracked figures/ and results/ anyway (PUBLISH=0: never)
# make paper                        refuses results/*.json made with non-default notebook parameters
#                                   (ALLOW_NONDEFAULT=1 builds it anyway)
# make test-fast                    the tests that train nothing for long (about a minute)
# make lab                          the explorer notebook in JupyterLab, on 127.0.0.1 (prints its URL)
# make figures JOBS=1               one notebook at a time (default 2: while one notebook waits for
#                                   its last run, the other keeps the second core busy; each notebook
#                                   runs its seeds and configs in parallel processes, one thread each)

PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-stamp
SEEDS  ?=
DEVICE ?=
PARAMS ?=
JOBS   ?= 2
PUBLISH ?=
ALLOW_NONDEFAULT ?=
# notebooks write the tracked figures/ and results/ only for a run with their defaults, or when asked
PUBLISHING := $(if $(PUBLISH),$(filter-out 0 no false,$(PUBLISH)),$(if $(SEEDS)$(DEVICE)$(PARAMS),,1))
OUTPUTS := $(if $(PUBLISHING),figures/ and results/,build/figures/ and build/results/)

# in order; 02 reuses the concentrated DBA runs of 01, the explorer the pretraining of all.
# `make figures NOTEBOOKS="01_single_shot_concentrated 03_multi_shot_continuous"` runs a subset.
NOTEBOOKS ?= 01_single_shot_concentrated 02_single_shot_disperse 03_multi_shot_continuous \
             04_fixed_frequency_collaborative 05_defenses 09_robustness_claim 07_round10_convergence \
             08_persistence_sensitivity 06_trigger_factors 00_explore
EXECUTED := $(NOTEBOOKS:%=build/notebooks/%.ipynb)
HTML     := $(EXECUTED:.ipynb=.html)
LIBRARY  := $(wildcard dbalib/*.py dbalib/core/*.py dbalib/study/*.py) matplotlibrc
PARAMETERS := build/parameters.yml
PUBLISH_STAMP := build/publish

export PIP_DISABLE_PIP_VERSION_CHECK := 1

.PHONY: all venv data runs-restore test test-fast pytest bench figures notebooks paper paper-numbers check-results latex-tools \
        browser-tools lab clean distclean FORCE

all: figures paper

$(STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	@touch $@

venv: $(STAMP)

data: $(STAMP)
	$(BIN)/python -m dbalib data

test: paper pytest

# the browser test drives JupyterLab in Debian's Chromium (installed here if missing); under
# `make test` it fails rather than skips when the browser cannot start
pytest: data browser-tools
	DBALIB_BROWSER_REQUIRED=1 $(BIN)/python -m pytest -q

# no end-to-end training (tests marked slow) and no browser: about a minute
test-fast: data
	$(BIN)/python -m pytest -q -m "not slow and not browser"

# the explorer in JupyterLab, on this machine only
lab: data
	$(BIN)/jupyter lab --ServerApp.ip=127.0.0.1 $(if $(filter 0,$(shell id -u)),--allow-root) notebooks/00_explore.ipynb

bench: data
	$(BIN)/python benchmarks/bench.py

# --- notebooks -------------------------------------------------------------------------------
# results/runs.tar.gz holds the per-round results of the runs behind the tracked results (made on
# an H200, see benchmarks/NOTES.md); they seed the result cache, never overwrite a seed already
# there, and are simply not found once the simulator's code changes (keys hold its fingerprint)
runs-restore:
	@mkdir -p $${DBALIB_RUNS:-runs} && tar xzf results/runs.tar.gz -C $${DBALIB_RUNS:-runs} --skip-old-files

figures: data runs-restore
	@start=$$(date +%s); \
	$(MAKE) --no-print-directory -j$(JOBS) notebooks && \
	echo "make figures: $$(( $$(date +%s) - start )) s; figures and key numbers in $(OUTPUTS), HTML in build/notebooks/"

notebooks: $(HTML)

# executed notebooks are results too: keep them (make would delete them as intermediate files)
.SECONDARY: $(EXECUTED)

# parameters shared by all notebooks; rewritten only when they change, so a change re-runs them
$(PARAMETERS): FORCE
	@mkdir -p $(@D)
	@{ $(if $(SEEDS),printf 'SEEDS: [$(SEEDS)]\n';) $(if $(DEVICE),printf 'DEVICE: "$(DEVICE)"\n';) \
	   $(if $(PARAMS),printf '$(PARAMS)\n';) true; } > $@.new
	@cmp -s $@.new $@ && rm -f $@.new || mv $@.new $@

# whether the notebooks publish; rewritten only when it changes, so a change re-runs them
$(PUBLISH_STAMP): FORCE
	@mkdir -p $(@D)
	@echo "$(if $(PUBLISHING),1,0)" > $@.new
	@cmp -s $@.new $@ && rm -f $@.new || mv $@.new $@

build/notebooks/%.ipynb: notebooks/%.ipynb $(LIBRARY) $(PARAMETERS) $(PUBLISH_STAMP) | $(STAMP)
	@mkdir -p $(@D)
	DBALIB_PUBLISH=$(if $(PUBLISHING),1,0) $(BIN)/papermill $< $(@D)/.$*.running.ipynb \
	  $$([ -s $(PARAMETERS) ] && echo -f $(PARAMETERS)) --cwd $(CURDIR) --progress-bar --log-level WARNING
	@mv $(@D)/.$*.running.ipynb $@

build/notebooks/%.html: build/notebooks/%.ipynb
	$(BIN)/jupyter nbconvert --to html --log-level WARN $<

# --- paper -----------------------------------------------------------------------------------------
# make paper builds paper/main.pdf from the tracked figures/ and results/ (it never re-runs
# experiments); LaTeX errors, undefined references or citations, numbers that were not
# generated (\val{...}) and results made with other than the notebooks' default parameters
# (unless ALLOW_NONDEFAULT=1) all fail the build.
LATEX_PACKAGES := latexmk texlive-latex-recommended texlive-fonts-recommended texlive-latex-extra

paper: paper/main.pdf

paper-numbers paper/generated/numbers.tex: $(wildcard results/*.json) $(wildcard results/SUPERSEDED) $(wildcard benchmarks/results.json) \
		$(wildcard dbalib/study/*.py) dbalib/core/config.py dbalib/core/presets.py \
		paper/main.tex $(wildcard paper/sections/*.tex) | data check-results  # the text is checked against the verdicts
	$(BIN)/python -m dbalib paper-numbers

check-results: | $(STAMP)
	@$(BIN)/python -m dbalib check-results $(if $(filter-out 0 no false,$(ALLOW_NONDEFAULT)),--allow-nondefault)

paper/main.pdf: paper/main.tex paper/references.bib paper/generated/numbers.tex $(wildcard paper/sections/*.tex) $(wildcard figures/*.pdf) \
		| latex-tools check-results
	cd paper && latexmk -pdf -interaction=nonstopmode -halt-on-error -file-line-error main.tex > latexmk.out 2>&1 \
	  || { tail -40 latexmk.out; exit 1; }
	@if grep -E "(Reference|Citation).*undefined|There were undefined|Label\(s\) may have changed" paper/main.log; then \
	  echo "paper: undefined references or citations (see paper/main.log)"; exit 1; fi
	@echo "paper/main.pdf: $$(pdfinfo paper/main.pdf 2>/dev/null | awk '/^Pages/ {print $$2}') pages"

latex-tools:
	@command -v latexmk >/dev/null 2>&1 && command -v pdflatex >/dev/null 2>&1 || { \
	  echo "LaTeX is missing: installing Debian's $(LATEX_PACKAGES)"; \
	  if [ "$$(id -u)" = 0 ]; then SUDO=; elif command -v sudo >/dev/null; then SUDO=sudo; else \
	    echo "run: sudo apt-get install -y --no-install-recommends $(LATEX_PACKAGES)"; exit 1; fi; \
	  $$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq \
	    --no-install-recommends $(LATEX_PACKAGES) poppler-utils > /dev/null; }

# Debian's Chromium for the browser test (Playwright drives it; no browser is downloaded)
browser-tools:
	@command -v chromium >/dev/null 2>&1 || { \
	  echo "Chromium is missing: installing Debian's chromium"; \
	  if [ "$$(id -u)" = 0 ]; then SUDO=; elif command -v sudo >/dev/null; then SUDO=sudo; else \
	    echo "run: sudo apt-get install -y --no-install-recommends chromium"; exit 1; fi; \
	  $$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq \
	    --no-install-recommends chromium > /dev/null; }

clean:
	rm -rf build .pytest_cache
	cd paper && latexmk -C main.tex >/dev/null 2>&1 || true

# the default pretraining cache, as dbalib.core.paths.cache_dir() (only that folder: the data stays)
PRETRAIN_CACHE = $${DBALIB_CACHE:-$${XDG_CACHE_HOME:-$$HOME/.cache}/dbalib/cache}

distclean: clean
	rm -rf $(VENV) runs .cache
	rm -rf "$(PRETRAIN_CACHE)"
