# dbalib: `make figures` (the main job) and `make test` (the tests) are the whole set-up.
# Both create or reuse .venv and install the project (torch 2.14.1, torchvision 0.29.1, ...);
# nothing is reinstalled unless pyproject.toml changed.
#
# make figures                      execute every notebook (papermill) into build/notebooks/,
#                                   export HTML, write figures/*.pdf|png and results/*.json
# make figures SEEDS=0              any notebook parameter: SEEDS, DEVICE, or PARAMS='ROUNDS: 40'
#                                   (unset: each notebook's own defaults)
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

# in order; 02 reuses the concentrated DBA runs of 01, the explorer the pretraining of all.
# `make figures NOTEBOOKS="01_single_shot_concentrated 03_multi_shot_continuous"` runs a subset.
NOTEBOOKS ?= 01_single_shot_concentrated 02_single_shot_disperse 03_multi_shot_continuous \
             04_fixed_frequency_collaborative 07_round10_convergence 05_defenses 06_trigger_factors 00_explore
EXECUTED := $(NOTEBOOKS:%=build/notebooks/%.ipynb)
HTML     := $(EXECUTED:.ipynb=.html)
LIBRARY  := $(wildcard dbalib/*.py) matplotlibrc
PARAMETERS := build/parameters.yml

export PIP_DISABLE_PIP_VERSION_CHECK := 1

.PHONY: all venv data test pytest bench figures notebooks paper paper-numbers latex-tools clean distclean FORCE

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

pytest: data
	$(BIN)/python -m pytest -q

bench: data
	$(BIN)/python benchmarks/bench.py

# --- notebooks -------------------------------------------------------------------------------
figures: data
	@start=$$(date +%s); \
	$(MAKE) --no-print-directory -j$(JOBS) notebooks && \
	echo "make figures: $$(( $$(date +%s) - start )) s; figures in figures/, key numbers in results/, HTML in build/notebooks/"

notebooks: $(HTML)

# executed notebooks are results too: keep them (make would delete them as intermediate files)
.SECONDARY: $(EXECUTED)

# parameters shared by all notebooks; rewritten only when they change, so a change re-runs them
$(PARAMETERS): FORCE
	@mkdir -p $(@D)
	@{ $(if $(SEEDS),printf 'SEEDS: [$(SEEDS)]\n';) $(if $(DEVICE),printf 'DEVICE: "$(DEVICE)"\n';) \
	   $(if $(PARAMS),printf '$(PARAMS)\n';) true; } > $@.new
	@cmp -s $@.new $@ && rm -f $@.new || mv $@.new $@

build/notebooks/%.ipynb: notebooks/%.ipynb $(LIBRARY) $(PARAMETERS) | $(STAMP)
	@mkdir -p $(@D)
	$(BIN)/papermill $< $(@D)/.$*.running.ipynb $$([ -s $(PARAMETERS) ] && echo -f $(PARAMETERS)) \
	  --cwd $(CURDIR) --progress-bar --log-level WARNING
	@mv $(@D)/.$*.running.ipynb $@

build/notebooks/%.html: build/notebooks/%.ipynb
	$(BIN)/jupyter nbconvert --to html --log-level WARN $<

# --- paper -----------------------------------------------------------------------------------------
# make paper builds paper/main.pdf from the tracked figures/ and results/ (it never re-runs
# experiments); LaTeX errors, undefined references or citations, and numbers that were not
# generated (\val{...}) all fail the build.
LATEX_PACKAGES := latexmk texlive-latex-recommended texlive-fonts-recommended texlive-latex-extra

paper: paper/main.pdf

paper-numbers paper/generated/numbers.tex: $(wildcard results/*.json) $(wildcard benchmarks/results.json) \
		dbalib/paper.py dbalib/config.py dbalib/presets.py | data
	$(BIN)/python -m dbalib paper-numbers

paper/main.pdf: paper/main.tex paper/references.bib paper/generated/numbers.tex $(wildcard figures/*.pdf) | latex-tools
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

clean:
	rm -rf build .pytest_cache
	cd paper && latexmk -C main.tex >/dev/null 2>&1 || true

# the default pretraining cache, as dbalib.paths.cache_dir() (only that folder: the data stays)
PRETRAIN_CACHE = $${DBALIB_CACHE:-$${XDG_CACHE_HOME:-$$HOME/.cache}/dbalib/cache}

distclean: clean
	rm -rf $(VENV) runs .cache
	rm -rf "$(PRETRAIN_CACHE)"
