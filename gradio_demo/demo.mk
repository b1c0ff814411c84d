# `make demo`: the Gradio web demo on 127.0.0.1 (included by the main Makefile, which defines PY).
#   make demo                                   # http://127.0.0.1:7860 (or the next free port)
#   make demo DEMO_PORT=8000 DEMO_ARGS="--model runs/best.pt"
#   make demo DEMO_ARGS="--backend http://127.0.0.1:8080 --token $$ASM_TOKEN"
DEMO_PORT ?=
DEMO_ARGS ?=

.PHONY: demo
demo: install
	GRADIO_ANALYTICS_ENABLED=False $(PY) -m gradio_demo.app $(if $(DEMO_PORT),--port $(DEMO_PORT)) $(DEMO_ARGS)
