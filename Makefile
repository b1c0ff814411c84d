# asm: the two commands are `make install` and `make test`.
PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
PIP    := $(VENV)/bin/pip
# torch/torchvision pair known to work together here (pyproject pins ranges, not this pair)
TORCH_PIN ?= torch==2.14.1 torchvision==0.29.1

.PHONY: install test test-unit fuzz bench docs archive serve stop demo train train-human3 eval clean

install: $(VENV)/.installed

# (setup.py builds the pooling kernel, asm/ops/pool.c: a change to either reinstalls)
$(VENV)/.installed: pyproject.toml setup.py asm/ops/pool.c
	test -d $(VENV) || $(PYTHON) -m venv $(VENV)
	$(PIP) install -q --upgrade pip
	$(PIP) install -q $(TORCH_PIN)
	$(PIP) install -q -e ".[dev]" $(TORCH_PIN)
	touch $@

test: install
	$(PY) -m pytest -q

test-unit: install
	$(PY) -m pytest -q -m "not integration"

# the fuzz harnesses of tests/fuzz/, each for FUZZ_SECONDS (make test runs them as a short smoke)
FUZZ_SECONDS ?= 300
fuzz: install
	ASM_FUZZ_SECONDS=$(FUZZ_SECONDS) $(PY) -m pytest -q -p no:cacheprovider -m fuzz tests/fuzz

bench: install
	for b in benchmarks/bench_*.py; do echo "== $$b"; $(PY) $$b || exit 1; done

docs: install
	$(PY) tools/docs.py

clean:
	rm -rf build dist *.egg-info .pytest_cache

# the default model: see the model card in README.md
train: install
	test -f runs/gaze-pack.pkl || $(PY) -m asm.cli train --config configs/default.json --data gaze --write-pack runs/gaze-pack.pkl
	$(PY) -m asm.cli train --config configs/default.json
	test -f runs/gaze-pack-768.pkl || $(PY) -m asm.cli train --config configs/default.json --store-side 768 --data gaze --write-pack runs/gaze-pack-768.pkl
	$(PY) -m asm.cli train --config configs/finetune.json
	@echo "the shipped model: cp runs/finetune/final.pt asm/weights/asm_default.pt && $(PY) -m asm.cli export --int8"

# stage 3 on the three human fixation sets (measured, not shipped: benchmarks/results/ablation.md)
train-human3: install
	test -f runs/gaze3-pack-768.pkl || $(PY) -m asm.cli train --config configs/finetune.json --data gaze --store-side 768 --write-pack runs/gaze3-pack-768.pkl
	test -f runs/previous.pt || git show 865b64b:asm/weights/asm_default.pt > runs/previous.pt
	$(PY) -m asm.cli train --config configs/human3.json
	@echo "to evaluate it: $(PY) -m asm.cli export --int8 --model runs/human3/final.pt && $(PY) tools/fit_framing.py bias --model runs/human3/final.pt && $(PY) -m asm.cli eval --model runs/human3/final.pt --fixations"

eval: install
	$(PY) -m asm.cli eval --fixations --sheet docs/comparison.png --placements docs/placements.png --out benchmarks/results/eval.md

-include handler/serve.mk
-include gradio_demo/demo.mk
-include deploy/kserve/kserve.mk
-include deploy/thumbor/thumbor.mk
