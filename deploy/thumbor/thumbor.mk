# `make thumbor`: a real Thumbor on 127.0.0.1 whose smart crops are asm's (included by the
# main Makefile, which defines PY and VENV).
#   make thumbor                          # http://127.0.0.1:8888, signed URLs, images from examples/
#   make thumbor PORT=9000 ROOT=~/photos  # another port and image folder
#   make thumbor UNSAFE=1                 # also serve /unsafe/ URLs (local trials only)
#   make thumbor-url IMAGE=osprey.jpg SIZE=300x200   # a signed smart-crop URL for the running server
# The security key is generated into $(THUMBOR_KEY) (ignored by git) the first time.
THUMBOR_CONF ?= deploy/thumbor/thumbor.conf
THUMBOR_KEY  ?= deploy/thumbor/security.key
ROOT         ?= examples
UNSAFE       ?=
IMAGE        ?= osprey.jpg
SIZE         ?= 300x200
# PORT is shared with `make serve` (8080); Thumbor's own default is 8888
THUMBOR_PORT = $(if $(filter command line environment,$(origin PORT)),$(PORT),8888)

.PHONY: thumbor thumbor-url

$(THUMBOR_KEY):
	@umask 077 && $(PY) -c "import secrets; print(secrets.token_urlsafe(32))" > $@
	@echo "thumbor: a new security key in $@"

thumbor: install $(THUMBOR_KEY)
	@echo "thumbor: http://127.0.0.1:$(THUMBOR_PORT) (images from $(ROOT); $(if $(filter 1,$(UNSAFE)),unsafe URLs on,signed URLs only)); Ctrl-C stops it"
	PYTHONPATH="$(CURDIR)$(if $(PYTHONPATH),:$(PYTHONPATH))" ASM_THUMBOR_ROOT="$(abspath $(ROOT))" ASM_THUMBOR_UNSAFE="$(UNSAFE)" \
	  $(VENV)/bin/thumbor --ip 127.0.0.1 \
	  --port $(THUMBOR_PORT) --conf $(THUMBOR_CONF) --keyfile $(THUMBOR_KEY)

thumbor-url: $(THUMBOR_KEY)
	@$(VENV)/bin/thumbor-url --key_file $(THUMBOR_KEY) --width $(word 1,$(subst x, ,$(SIZE))) \
	  --height $(word 2,$(subst x, ,$(SIZE))) --smart $(IMAGE) | sed -n 's|^/|http://127.0.0.1:$(THUMBOR_PORT)/|p'
