# filpy: every target bootstraps .venv first, so a fresh clone needs only python3.11, pip, gcc and make.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
PYTEST_ARGS ?=

.PHONY: test devnet bench lint clean gmp-check ext

all: test

# fastecdsa (needed by libp2p) builds from source and links against GMP.
gmp-check:
	@printf '#include <gmp.h>\nint main(void){return 0;}\n' | gcc -x c - -o /dev/null -lgmp 2>/dev/null \
	  || { echo "GMP headers missing: installing libgmp-dev (needed to build fastecdsa)"; \
	       if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	         apt-get install -y -q libgmp-dev >/dev/null || (apt-get update -q && apt-get install -y -q libgmp-dev); \
	       else echo "install libgmp-dev (Debian/Ubuntu) or gmp-devel (Fedora) and rerun make" >&2; exit 1; fi; }

$(STAMP): pyproject.toml requirements.lock
	@$(MAKE) --no-print-directory gmp-check
	$(PYTHON) -c 'import sys; assert sys.version_info >= (3, 11), "filpy needs Python >= 3.11"'
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -r requirements.lock
	$(PY) -m pip install -q --no-deps --no-build-isolation -e .
	touch $(STAMP)

test: $(STAMP) ext
	$(PY) -m pytest -q $(PYTEST_ARGS)

devnet: $(STAMP) ext
	$(VENV)/bin/filpy devnet

bench: $(STAMP) ext
	$(PY) -m bench

# The C hot loops of proofs/ (tree hashing, fr32); rebuilt only when proofs/_native.c changes.
ext: $(STAMP)
	$(PY) -m proofs.build_ext

lint: $(STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy

clean:
	rm -rf $(VENV) build *.egg-info proofs/_native*.so
