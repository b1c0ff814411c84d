# TorchServe targets for asm: `make archive`, `make serve`, `make stop`.
# Included by the main Makefile (which defines PY and VENV); also usable on its own:
#   make -f handler/serve.mk archive MODEL_STORE=/tmp/store
# Ports: `make serve PORT=9080` uses 9080..9084 (inference, management, metrics, gRPC inference,
# gRPC management); handler/launcher.py starts and stops the server, workers included.

VENV          ?= .venv
PY            ?= $(VENV)/bin/python
ARCHIVER      ?= $(VENV)/bin/torch-model-archiver
MODEL_FILE    ?= asm/weights/asm_default.pt
# its int8 twin (asm export --int8), which the handler prefers on the CPU; travels beside it if present
MODEL_INT8    = $(wildcard $(basename $(MODEL_FILE)).int8.onnx)
MODEL_CONFIG  ?= handler/model-config.yaml
MODEL_STORE   ?= model_store
SERVE_BUILD   ?= build/serve
LOG_DIR       ?= logs
SERVE_ROOT    ?= .
PORT          ?= 8080
SERVE_WAIT    ?= 180
ASM_VERSION   = $(shell $(PY) -c "import asm; print(asm.__version__)")
MAR           := $(MODEL_STORE)/asm.mar
# What the handler needs on a TorchServe host (listed in the archive, never pip-installed
# by TorchServe since install_py_dep_per_model=false).
SERVE_REQUIREMENTS := torch>=2.4 torchvision>=0.19 numpy>=1.24 pillow>=10.0 opencv-python-headless>=4.8,<5 matplotlib>=3.7 onnxruntime>=1.17
# The asm package as a zip (sources, the face detector with its licence and the compiled
# pooling kernel where it is built; the model travels as the serialized file, its int8 twin
# as an extra file beside it). asm.search.faces reads the detector from the zip; the kernel is
# copied out to the worker's cache folder once (asm/ops/kernel.py), since a library cannot be
# loaded from inside a zip.
KERNEL_LIB    = $(wildcard asm/ops/_kernel.*)
define ASM_ZIP_PY
import pathlib, sys, zipfile
with zipfile.ZipFile(sys.argv[1], "w", zipfile.ZIP_DEFLATED) as z:
    for p in sorted([*pathlib.Path("asm").rglob("*.py"), *pathlib.Path("asm/weights").glob("*.onnx"), *pathlib.Path("asm/weights").glob("*.txt"), *pathlib.Path("asm/search").glob("*.json"), *pathlib.Path("asm/ops").glob("_kernel.*")]):
        if "__pycache__" not in p.parts and not p.name.endswith(".int8.onnx"):
            z.write(p, p.as_posix())
endef
export ASM_ZIP_PY

comma := ,

.PHONY: archive serve stop

archive: $(MAR)
	@echo "archive: $(MAR) (asm $(ASM_VERSION), model $(MODEL_FILE))"

$(MAR): $(MODEL_FILE) $(MODEL_INT8) handler/asm_handler.py handler/kserve_v2.py $(MODEL_CONFIG) handler/serve.mk $(wildcard asm/*.py asm/*/*.py) $(wildcard asm/weights/*.onnx) $(wildcard asm/search/*.json) $(KERNEL_LIB)
	@mkdir -p $(MODEL_STORE) $(SERVE_BUILD)
	@rm -f $(SERVE_BUILD)/asm.zip
	$(PY) -c "$$ASM_ZIP_PY" $(SERVE_BUILD)/asm.zip
	@printf '%s\n' $(foreach r,$(SERVE_REQUIREMENTS),'$(r)') > $(SERVE_BUILD)/requirements.txt
	$(ARCHIVER) --model-name asm --version $(ASM_VERSION) \
	  --serialized-file $(MODEL_FILE) --handler handler/asm_handler.py \
	  --config-file $(MODEL_CONFIG) \
	  --extra-files $(SERVE_BUILD)/asm.zip,handler/kserve_v2.py$(if $(MODEL_INT8),$(comma)$(MODEL_INT8)) --requirements-file $(SERVE_BUILD)/requirements.txt \
	  --export-path $(MODEL_STORE) --force

serve: $(MAR)
	@java_bin="$${JAVA_HOME:+$$JAVA_HOME/bin/}java"; command -v "$$java_bin" >/dev/null 2>&1 || { \
	  echo "serve: '$$java_bin' not found. TorchServe's frontend needs Java: install a JDK 17"; \
	  echo "       (Debian/Ubuntu: sudo apt-get install openjdk-17-jdk-headless) or set JAVA_HOME."; exit 1; }
	@$(PY) -m handler.launcher start --port $(PORT) --build $(SERVE_BUILD) --model-store $(MODEL_STORE) \
	  --root $(SERVE_ROOT) --logs $(LOG_DIR) --wait $(SERVE_WAIT) --python $(PY)

stop:
	@$(PY) -m handler.launcher stop --build $(SERVE_BUILD)
