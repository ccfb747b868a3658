# dbalib: `make figures` (the main job) and `make test` (the tests) are the whole set-up.
# Both create or reuse .venv and install the project (torch 2.14.1, torchvision 0.29.1, ...);
# nothing is reinstalled unless pyproject.toml changed.
#
# make figures                      execute every notebook (papermill) into build/notebooks/,
#                                   export HTML, write figures/*.pdf|png and results/*.json
# make figures SEEDS=0              any notebook parameter: SEEDS, DEVICE, or PARAMS='ROUNDS: 40'
# make -j2 figures                  two notebooks at a time (each notebook already runs its seeds and
#                                   configs in parallel processes, one per core, one thread each)

PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-stamp
SEEDS  ?= 0, 1, 2
DEVICE ?= auto
PARAMS ?=

# in order; 02 reuses the concentrated DBA runs of 01, the explorer the pretraining of all
STUDY_NOTEBOOKS := 01_single_shot_concentrated 02_single_shot_disperse 03_multi_shot_continuous \
                   04_fixed_frequency_collaborative 00_explore
EXECUTED := $(STUDY_NOTEBOOKS:%=build/notebooks/%.ipynb)
HTML     := $(EXECUTED:.ipynb=.html)
LIBRARY  := $(wildcard dbalib/*.py) matplotlibrc
PARAMETERS := build/parameters.yml

export PIP_DISABLE_PIP_VERSION_CHECK := 1
export MPLBACKEND := Agg

.PHONY: all venv data test bench figures notebooks clean distclean FORCE

all: figures

$(STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	@touch $@

venv: $(STAMP)

data: $(STAMP)
	$(BIN)/python -m dbalib data

test: data
	$(BIN)/python -m pytest -q

bench: data
	$(BIN)/python benchmarks/bench.py

# --- notebooks -------------------------------------------------------------------------------
figures: data
	@start=$$(date +%s); \
	$(MAKE) --no-print-directory notebooks && \
	echo "make figures: $$(( $$(date +%s) - start )) s; figures in figures/, key numbers in results/, HTML in build/notebooks/"

notebooks: $(HTML)

# parameters shared by all notebooks; rewritten only when they change, so a change re-runs them
$(PARAMETERS): FORCE
	@mkdir -p $(@D)
	@printf 'SEEDS: [$(SEEDS)]\nDEVICE: "$(DEVICE)"\n$(PARAMS)\n' > $@.new
	@cmp -s $@.new $@ && rm -f $@.new || mv $@.new $@

build/notebooks/%.ipynb: notebooks/%.ipynb $(LIBRARY) $(PARAMETERS) | $(STAMP)
	@mkdir -p $(@D)
	$(BIN)/papermill $< $(@D)/.$*.running.ipynb -f $(PARAMETERS) \
	  --cwd $(CURDIR) --progress-bar --log-level WARNING
	@mv $(@D)/.$*.running.ipynb $@

build/notebooks/%.html: build/notebooks/%.ipynb
	$(BIN)/jupyter nbconvert --to html --log-level WARN $<

clean:
	rm -rf build .pytest_cache

distclean: clean
	rm -rf $(VENV) runs .cache
