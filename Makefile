# brnet-kit: two commands do all the set-up on a fresh machine with Python 3.11.
#   make demo   set up .venv, then run the main job on the embedded sample (data/sample)
#   make test   set up .venv, then run every test (notebooks, sync checks, tests/*.py)
# The set-up is skipped while .venv is newer than pyproject.toml.

PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.brnet-installed
# the exact torch build for this machine; the library itself only asks for ranges
TORCH  := torch==2.14.1 torchvision==0.29.1

.PHONY: all install demo test test-slow tutorials bench clean

all: test

$(STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	@$(BIN)/python -c "import shutil, sys; f = shutil.disk_usage('.').free/2**30; f < 8 and print(f'make: only {f:.1f} GB free here; the set-up (torch with its CUDA libraries, about 6.6 GB) may run out of disk', file=sys.stderr)"
	$(BIN)/python -m pip install --quiet --disable-pip-version-check $(TORCH)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -e ".[dev]"
	@touch $(STAMP)

install: $(STAMP)

demo: install
	$(BIN)/brnet demo --out runs/demo

test: install
	$(BIN)/python -m pytest -n 2 tests

# the same, with the cells and tests flagged `slow` (minutes of CPU)
test-slow: install
	BRNET_TEST_FLAGS=slow $(BIN)/python -m pytest -n 2 tests

# run each tutorial on a Jupyter kernel and save its outputs (small figures) into nbs/tutorials
tutorials: install
	$(BIN)/python tests/test_tutorials_nbclient.py
	$(BIN)/nbdev-clean --fname nbs/tutorials

clean:
	rm -rf runs _proc .pytest_cache .hypothesis build dist *.egg-info
