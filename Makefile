# Two commands on a fresh machine with only Python:
#   make run    set up .venv and run `guarded-rl run` on the embedded default model
#   make test   set up .venv, lint, and run the test suite
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
# A CPU build of torch; override elsewhere, e.g. `make test TORCH_SPEC="torch==2.9.1"`.
TORCH_SPEC ?= torch==2.13.0
STAMP := $(VENV)/.installed

export HF_HUB_OFFLINE := 1
export TOKENIZERS_PARALLELISM := false

.PHONY: setup run test lint bench model clean browser

setup: $(STAMP)

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet "$(TORCH_SPEC)"
	$(BIN)/python -m pip install --quiet -e ".[dev]"
	touch $(STAMP)

run: setup
	$(BIN)/guarded-rl run --cycles 40 --seed 0

# Two pytest workers, torch single-threaded in each: the suite is mostly process start-up and
# small models, so two workers on 2 cores take about 60% of the time one does.
test: setup browser
	$(BIN)/ruff check .
	$(BIN)/python -m compileall -q guarded_rl
	$(BIN)/mypy
	$(BIN)/lint-imports
	OMP_NUM_THREADS=1 MKL_NUM_THREADS=1 $(BIN)/python -m pytest -q -n 2 --dist worksteal

# The report's browser test renders the HTML in Debian's chromium: install it where we may
# (root with apt-get); elsewhere that test is skipped, unless GUARDED_RL_REQUIRE_BROWSER=1.
browser:
	@command -v chromium >/dev/null 2>&1 || { \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
	    echo "installing chromium (apt-get) for the report's browser test"; \
	    apt-get install -y -qq --no-install-recommends chromium >/dev/null 2>&1 || \
	    { apt-get update -qq >/dev/null 2>&1 && \
	      apt-get install -y -qq --no-install-recommends chromium >/dev/null 2>&1; } || \
	    echo "could not install chromium: the browser test will be skipped"; \
	  else echo "no chromium: the report's browser test will be skipped"; fi; }

lint: setup
	$(BIN)/ruff check .

bench: setup
	$(BIN)/python benchmarks/overhead.py
	$(BIN)/python benchmarks/audit.py
	$(BIN)/python benchmarks/safety.py
	$(BIN)/python benchmarks/feedback_store.py
	$(BIN)/python benchmarks/bias.py

# Rebuild the embedded default model from the generated corpus (about 5 minutes on 2 cores).
model: setup
	$(BIN)/python -m guarded_rl.demo.build_model --out guarded_rl/demo/model

clean:
	rm -rf $(VENV) runs .pytest_cache .ruff_cache .mypy_cache .import_linter_cache
