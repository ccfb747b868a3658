# dbalib: `make figures` (the main job) and `make test` (the tests) are the whole set-up.
# Both create or reuse .venv and install the project (torch 2.14.1, torchvision 0.29.1, ...);
# nothing is reinstalled unless pyproject.toml changed.

PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-stamp
SEEDS  ?= 0,1,2

export PIP_DISABLE_PIP_VERSION_CHECK := 1
export MPLBACKEND := Agg

.PHONY: all venv data test bench figures presets clean distclean

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

# Until the notebooks land: run the study's presets and print their summaries.
presets: data
	@for p in single_shot_dba single_shot_cba single_shot_disperse_dba multi_shot_dba multi_shot_cba \
	          collaborative_dba collaborative_cba; do \
	  $(BIN)/python -m dbalib run $$p --seeds $(SEEDS) || exit 1; done

figures: presets

clean:
	rm -rf build .pytest_cache

distclean: clean
	rm -rf $(VENV) runs .cache
