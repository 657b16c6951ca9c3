# trialmeta — `make help` lists the targets.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
OUT    ?= reports
SEED   ?= 20190101

.DEFAULT_GOAL := help
CHECK_ARGS ?= --draws 300 --tune 300 --chains 2 --allow-unconverged
.PHONY: help install test test-slow slow fuzz lint report sweep calibrate report-check bench load validate clean

help: ## list the targets
	@grep -E '^[a-zA-Z_-]+:.*?## ' $(MAKEFILE_LIST) | awk 'BEGIN {FS = ":.*?## "}; {printf "  %-12s %s\n", $$1, $$2}'

install: $(STAMP) ## create .venv and install the pinned dependencies (idempotent)

$(STAMP): requirements.lock pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check --require-hashes -r requirements.lock
	$(BIN)/python -m pip install --quiet --disable-pip-version-check --no-deps --no-build-isolation -e .
	$(BIN)/python -c "import trialmeta.analysis.sampling.kernels_curves, trialmeta.analysis.sampling.kernels_network"  # compile the numba kernels into their on-disk cache
	touch $(STAMP)

test: install ## run the test suite (fast tests plus a few small real-sampling tests)
	$(BIN)/python -m pytest -m "not slow and not fuzz" -q

test-slow: install ## run every test, including the long sampling tests
	$(BIN)/python -m pytest -m "not fuzz" -q

slow: install ## run only the long sampling tests (what make test leaves out; .ci/run runs both)
	$(BIN)/python -m pytest -m "slow" -q

fuzz: install ## Hypothesis fuzzing of record tables, claims documents and option values (a few minutes)
	$(BIN)/python -m pytest -m fuzz -q -p no:cacheprovider

lint: install ## ruff, and the layer contract of ARCHITECTURE.md (import-linter)
	$(BIN)/ruff check .
	$(BIN)/lint-imports

validate: install ## validate the bundled dataset
	$(BIN)/trialmeta validate

CACHE ?= .trialmeta-cache
SIMS  ?= 400
RULE_SIMS ?= 200

report: sweep ## analyse the bundled data; write the report (with the sweep and calibration/) to $(OUT)/
	$(BIN)/trialmeta report --out $(OUT) --seed $(SEED) --cache $(CACHE) \
		--sweep $(CACHE)/sweep/sweep.json --calibration calibration \
		--baseline-data data/snapshots/ketamine_trials-first-extraction.csv \
		--baseline-label "the first extraction (before the second)"

sweep: install ## refit every claim under one-at-a-time changes of prior, form, data, window (Dask)
	$(BIN)/trialmeta sweep --out $(CACHE)/sweep --seed $(SEED) --cache $(CACHE) --quiet

calibrate: install ## simulation-based calibration of all five families ($(SIMS) each) and the decision rule's operating characteristics ($(RULE_SIMS) per world), report settings, into calibration/
	for m in pooled-rate contrast dose-response time-course network; do \
		$(BIN)/trialmeta calibrate $$m --sims $(SIMS) --seed $(SEED) --cache $(CACHE) --out calibration --quiet || exit 1; \
	done
	$(BIN)/trialmeta calibrate decision-rule --sims $(RULE_SIMS) --seed $(SEED) --cache $(CACHE) --out calibration --quiet

report-check: install ## run the report twice from empty caches (reduced draws) and fail on any text difference (the marker holds each run's own token)
	rm -rf .check && mkdir -p .check
	$(BIN)/trialmeta report --out .check/report --cache .check/cache --seed $(SEED) $(CHECK_ARGS) --quiet
	mv .check/report .check/first && rm -rf .check/cache
	$(BIN)/trialmeta report --out .check/report --cache .check/cache --seed $(SEED) $(CHECK_ARGS) --quiet
	diff -r -x fits -x .trialmeta-report .check/first .check/report && echo "report-check: the two runs are byte-identical"
	rm -rf .check

bench: install ## benchmark: timings, ESS per second, scaling and memory (writes bench/results.json)
	$(BIN)/python bench/run_bench.py

load: install ## load runs: 2,000 studies and 50 time points per study (writes bench/load.json)
	$(BIN)/python bench/load.py

clean: ## remove the virtual environment, caches and reports
	rm -rf $(VENV) $(OUT) .pytest_cache .ruff_cache .trialmeta-cache .check
