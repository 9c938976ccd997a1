# The whole set-up on a fresh machine: `make demo` and `make test`.
# Both create .venv if missing, install the project, register its Jupyter kernel,
# and do nothing more when nothing changed.

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
INSTALLED := $(VENV)/.installed
KERNEL := $(VENV)/share/jupyter/kernels/diagnostic/kernel.json
CHROMIUM := /usr/bin/chromium
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
OUTPUT ?= outputs

.PHONY: demo test lab clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

$(INSTALLED): pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e ".[dev]"
	touch $@

$(KERNEL): $(INSTALLED)
	$(BIN)/python -m ipykernel install --sys-prefix --name diagnostic --display-name "Diagnostic territorial (diagnostic)"

$(CHROMIUM):
	$(SUDO) apt-get update -qq
	DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq chromium

demo: $(KERNEL) $(CHROMIUM)
	$(BIN)/diagnostic data check --catalog data/demo/catalogue.yaml
	$(BIN)/diagnostic run --catalog data/demo/catalogue.yaml --commune 99101 --output $(OUTPUT)
	@echo "Rapport de démonstration (données fictives) : $(OUTPUT)/99101/rapport.html"

# The test files are shared between TEST_WORKERS processes (pytest-xdist), each file's tests on one of them.
TEST_WORKERS ?= 2
test: $(KERNEL) $(CHROMIUM)
	$(BIN)/python -m pytest -n $(TEST_WORKERS) --dist loadfile

# JupyterLab on the project's kernel with the notebooks (diagnostic/resources/notebooks/) open, on 127.0.0.1
# only, behind a fresh random token: given through the environment (not the command line `ps` shows) and printed once here.
LAB_PORT ?= 8888
lab: $(KERNEL)
	@export JUPYTER_TOKEN=$$($(BIN)/python -c 'import secrets; print(secrets.token_hex(16))'); \
	echo "JupyterLab : http://127.0.0.1:$(LAB_PORT)/lab/tree/explorateur.ipynb?token=$$JUPYTER_TOKEN"; \
	exec $(BIN)/jupyter lab --no-browser --ServerApp.ip=127.0.0.1 --ServerApp.port=$(LAB_PORT) \
		--ServerApp.port_retries=0 --ServerApp.root_dir=diagnostic/resources/notebooks $$([ "$$(id -u)" = 0 ] && echo --allow-root)

clean:
	rm -rf $(OUTPUT) .pytest_cache
