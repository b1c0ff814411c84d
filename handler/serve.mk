# TorchServe targets for asm: `make archive`, `make serve`, `make stop`.
# Included by the main Makefile (which defines PY and VENV); also usable on its own:
#   make -f handler/serve.mk archive MODEL_STORE=/tmp/store
# Ports: `make serve PORT=9080` (management PORT+1, metrics PORT+2 unless given).

VENV          ?= .venv
PY            ?= $(VENV)/bin/python
TORCHSERVE    ?= $(VENV)/bin/torchserve
ARCHIVER      ?= $(VENV)/bin/torch-model-archiver
MODEL_FILE    ?= asm/weights/asm_default.pt
MODEL_CONFIG  ?= handler/model-config.yaml
MODEL_STORE   ?= model_store
SERVE_BUILD   ?= build/serve
LOG_DIR       ?= logs
PORT          ?= 8080
MGMT_PORT     ?= $(shell echo $$(( $(PORT) + 1 )))
METRICS_PORT  ?= $(shell echo $$(( $(PORT) + 2 )))
SERVE_WAIT    ?= 180
ASM_VERSION   := $(shell sed -n 's/^__version__ = "\(.*\)"/\1/p' asm/__init__.py)
MAR           := $(MODEL_STORE)/asm.mar
# What the handler needs on a TorchServe host (listed in the archive, never pip-installed
# by TorchServe since install_py_dep_per_model=false).
SERVE_REQUIREMENTS := torch>=2.4 torchvision>=0.19 numpy>=1.24 pillow>=10.0 opencv-python-headless>=4.8 matplotlib>=3.7
# TorchServe keeps its pid file, worker sockets and unpacked models in the temp dir:
# a private one lets this server run next to other TorchServe instances.
SERVE_TMP      = $(abspath $(SERVE_BUILD))/tmp
SERVE_ENV      = TMPDIR=$(SERVE_TMP) TEMP=$(SERVE_TMP) LOG_LOCATION=$(abspath $(LOG_DIR)) METRICS_LOCATION=$(abspath $(LOG_DIR))
KEY            = $(PY) -c 'import json, sys; print(json.load(open("key_file.json"))[sys.argv[1]]["key"])'
KEY_HOWTO      = $(PY) -c 'import json; print(json.load(open(\"key_file.json\"))[\"inference\"][\"key\"])'

# The asm package as a zip (sources only: the model travels as the serialized file).
define ASM_ZIP_PY
import pathlib, sys, zipfile
with zipfile.ZipFile(sys.argv[1], "w", zipfile.ZIP_DEFLATED) as z:
    for p in sorted(pathlib.Path("asm").rglob("*.py")):
        if "__pycache__" not in p.parts:
            z.write(p, p.as_posix())
endef
export ASM_ZIP_PY

.PHONY: archive serve stop

archive: $(MAR)
	@echo "archive: $(MAR) (asm $(ASM_VERSION), model $(MODEL_FILE))"

$(MAR): $(MODEL_FILE) handler/asm_handler.py $(MODEL_CONFIG) handler/serve.mk $(wildcard asm/*.py)
	@mkdir -p $(MODEL_STORE) $(SERVE_BUILD)
	@rm -f $(SERVE_BUILD)/asm.zip
	$(PY) -c "$$ASM_ZIP_PY" $(SERVE_BUILD)/asm.zip
	@printf '%s\n' $(foreach r,$(SERVE_REQUIREMENTS),'$(r)') > $(SERVE_BUILD)/requirements.txt
	$(ARCHIVER) --model-name asm --version $(ASM_VERSION) \
	  --serialized-file $(MODEL_FILE) --handler handler/asm_handler.py \
	  --config-file $(MODEL_CONFIG) \
	  --extra-files $(SERVE_BUILD)/asm.zip --requirements-file $(SERVE_BUILD)/requirements.txt \
	  --export-path $(MODEL_STORE) --force

serve: $(MAR)
	@java_bin="$${JAVA_HOME:+$$JAVA_HOME/bin/}java"; command -v "$$java_bin" >/dev/null 2>&1 || { \
	  echo "serve: '$$java_bin' not found. TorchServe's frontend needs Java: install a JDK 17"; \
	  echo "       (Debian/Ubuntu: sudo apt-get install openjdk-17-jdk-headless) or set JAVA_HOME."; exit 1; }
	@mkdir -p $(SERVE_TMP) $(LOG_DIR)
	@sed -e 's#^inference_address=.*#inference_address=http://127.0.0.1:$(PORT)#' \
	     -e 's#^management_address=.*#management_address=http://127.0.0.1:$(MGMT_PORT)#' \
	     -e 's#^metrics_address=.*#metrics_address=http://127.0.0.1:$(METRICS_PORT)#' \
	     handler/config.properties > $(SERVE_BUILD)/config.properties
	@$(SERVE_ENV) $(TORCHSERVE) --start --ncs --ts-config $(SERVE_BUILD)/config.properties \
	  --model-store $(MODEL_STORE) --models asm=asm.mar > $(LOG_DIR)/torchserve.out 2>&1 || { \
	  cat $(LOG_DIR)/torchserve.out; exit 1; }
	@echo "serve: starting TorchServe on 127.0.0.1:$(PORT) (logs in $(LOG_DIR)/), waiting for the model..."
	@pid=$$(cat $(SERVE_TMP)/.model_server.pid 2>/dev/null); ready=; \
	for i in $$(seq 1 $(SERVE_WAIT)); do \
	  if ! kill -0 $$pid 2>/dev/null; then echo "serve: TorchServe exited; see $(LOG_DIR)/"; tail -n 20 $(LOG_DIR)/torchserve.out; exit 1; fi; \
	  if [ -f key_file.json ] && curl -sf -H "Authorization: Bearer $$($(KEY) inference 2>/dev/null)" http://127.0.0.1:$(PORT)/ping 2>/dev/null | grep -q Healthy && \
	     curl -sf -H "Authorization: Bearer $$($(KEY) management 2>/dev/null)" http://127.0.0.1:$(MGMT_PORT)/models/asm 2>/dev/null \
	       | grep -q '"status": "READY"'; then ready=1; break; fi; \
	  sleep 1; \
	done; \
	if [ -z "$$ready" ]; then echo "serve: the model was not ready after $(SERVE_WAIT) s; see $(LOG_DIR)/ (make stop to stop)"; exit 1; fi; \
	echo "serve: ready. Token authorization is on: the keys are in key_file.json; read the inference key with"; \
	echo "  $(KEY_HOWTO)"; \
	echo "  curl -H \"Authorization: Bearer $$($(KEY) inference)\" --data-binary @photo.jpg -H 'Content-Type: image/jpeg' http://127.0.0.1:$(PORT)/predictions/asm"; \
	echo "  options: -F data=@photo.jpg -F aspect=16:9 -F top_k=3 -F heatmap=true (multipart) or a JSON body {\"image\": \"<base64>\", ...}"; \
	echo "  metrics: curl http://127.0.0.1:$(METRICS_PORT)/metrics   stop: make stop"

stop:
	@if [ -f $(SERVE_TMP)/.model_server.pid ]; then \
	  $(SERVE_ENV) $(TORCHSERVE) --stop --foreground && echo "stop: TorchServe stopped"; \
	else echo "stop: no TorchServe started by make serve is running"; fi
