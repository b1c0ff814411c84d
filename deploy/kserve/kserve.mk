# `make kserve`: the model-store layout KServe's TorchServe runtime expects, built from the archive:
#   $(KSERVE_DIR)/config/config.properties  $(KSERVE_DIR)/model-store/asm.mar
# Upload $(KSERVE_DIR) to the storageUri of deploy/kserve/inferenceservice.yaml.
KSERVE_DIR ?= build/kserve

.PHONY: kserve

kserve: $(MAR) deploy/kserve/config.properties
	@mkdir -p $(KSERVE_DIR)/config $(KSERVE_DIR)/model-store
	cp $(MAR) $(KSERVE_DIR)/model-store/asm.mar
	sed 's/@ASM_VERSION@/$(ASM_VERSION)/g' deploy/kserve/config.properties > $(KSERVE_DIR)/config/config.properties
	@echo "kserve: $(KSERVE_DIR)/ (config/config.properties, model-store/asm.mar); upload it to the storageUri"
