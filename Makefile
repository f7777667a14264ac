# hf_melody — every target sets up .venv itself (CPU torch first, then the package with its extras).
PYTHON ?= python3
VENV   ?= .venv
BIN     = $(VENV)/bin
# The CPU build of torch; any other spec may pull several GB of CUDA wheels (see ../shared/STACK-NOTES.md).
TORCH  ?= torch==2.13.0
STAMP   = $(VENV)/.installed-$(shell cat pyproject.toml | cksum | cut -d' ' -f1)
export TOKENIZERS_PARALLELISM = false
export HF_HUB_OFFLINE ?= 1
export MPLBACKEND = Agg

.PHONY: setup test test-slow lint docs demo web-demo soundfont browser bench cards clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q "$(TORCH)"
	$(BIN)/python -m pip install -q -e ".[corpus,dev,tensorboard,audio,score,demo,docs,live]"
	rm -f $(VENV)/.installed-*
	touch $(STAMP)

setup: $(STAMP)

# A General MIDI soundfont for WAV rendering: Debian's TimGM6mb (5 MB) when apt is available and none is found.
soundfont:
	@if ls /usr/share/sounds/sf2/*.sf2 /usr/share/sounds/sf3/*.sf3 >/dev/null 2>&1 || [ -n "$$HF_MELODY_SOUNDFONT" ]; then \
	  true; \
	elif command -v apt-get >/dev/null 2>&1 && [ "$$(id -u)" = 0 ]; then \
	  (apt-get install -y -qq timgm6mb-soundfont >/dev/null 2>&1 || \
	   (apt-get update -qq >/dev/null && apt-get install -y -qq timgm6mb-soundfont >/dev/null)) && echo "installed timgm6mb-soundfont"; \
	else \
	  echo "no soundfont found: install one (sudo apt-get install timgm6mb-soundfont) or set HF_MELODY_SOUNDFONT"; \
	fi

# Debian's chromium and its driver for the demo's browser test (the test is skipped where they are missing).
browser:
	@if command -v chromium >/dev/null 2>&1 && command -v chromedriver >/dev/null 2>&1; then \
	  true; \
	elif command -v apt-get >/dev/null 2>&1 && [ "$$(id -u)" = 0 ]; then \
	  (apt-get install -y -qq chromium chromium-driver >/dev/null 2>&1 || \
	   (apt-get update -qq >/dev/null && apt-get install -y -qq chromium chromium-driver >/dev/null)) && echo "installed chromium"; \
	else \
	  echo "no chromium found: the browser test will be skipped (sudo apt-get install chromium chromium-driver)"; \
	fi

test: setup soundfont browser
	$(BIN)/python -m pytest -q

test-slow: setup soundfont
	$(BIN)/python -m pytest -q -m slow

lint: setup
	$(BIN)/ruff check src tests recipes benchmarks examples app.py

# the API reference from the docstrings into out/site; strict: a broken reference or docstring fails
docs: setup
	NO_MKDOCS_2_WARNING=1 $(BIN)/mkdocs build --strict --quiet

demo: setup soundfont
	$(BIN)/hf-melody generate --model folk-base --num 4 --seed 0 --out out/demo

web-demo: setup soundfont
	$(BIN)/hf-melody demo

bench: setup
	$(BIN)/python benchmarks/speed/data_throughput.py
	$(BIN)/python benchmarks/speed/train_throughput.py
	$(BIN)/python benchmarks/speed/generation_speed.py

cards: setup
	$(BIN)/hf-melody evaluate --models folk-base original deeper-thinner wider-shallower --dataset essen/kinder0 --out model_cards/eval
	$(BIN)/hf-melody cards --results model_cards/eval/results.json

clean:
	rm -rf out .pytest_cache .ruff_cache
