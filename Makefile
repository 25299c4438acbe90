# filpy: every target bootstraps .venv first, so a fresh clone needs only python3.11, pip, gcc and make.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
PYTEST_ARGS ?=
DEVNET_ARGS ?=

.PHONY: test devnet bench lint clean sysdeps apt-install ext

all: test

# System headers the build needs: GMP for fastecdsa (a libp2p dependency that builds from source) and
# OpenSSL for proofs/_native.c. Installed with apt-get when missing and we are root; otherwise the
# message says what to install.
sysdeps:
	@printf '#include <gmp.h>\nint main(void){return 0;}\n' | gcc -x c - -o /dev/null -lgmp 2>/dev/null \
	  || $(MAKE) --no-print-directory apt-install PKG=libgmp-dev WHY="to build fastecdsa"
	@printf '#include <openssl/sha.h>\nint main(void){return 0;}\n' | gcc -x c - -o /dev/null -lcrypto 2>/dev/null \
	  || $(MAKE) --no-print-directory apt-install PKG=libssl-dev WHY="to build the proofs extension"

apt-install:
	@echo "$(PKG) missing: installing it ($(WHY))"
	@if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	   apt-get install -y -q $(PKG) >/dev/null 2>&1 || (apt-get update -q && apt-get install -y -q $(PKG)); \
	 else echo "install $(PKG) (Debian/Ubuntu; gmp-devel/openssl-devel on Fedora) and rerun make" >&2; exit 1; fi

$(STAMP): pyproject.toml requirements.lock
	@$(MAKE) --no-print-directory sysdeps
	$(PYTHON) -c 'import sys; assert sys.version_info >= (3, 11), "filpy needs Python >= 3.11"'
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -r requirements.lock
	$(PY) -m pip install -q --no-deps --no-build-isolation -e .
	touch $(STAMP)

test: $(STAMP) ext
	$(PY) -m pytest -q $(PYTEST_ARGS)

# `make devnet DEVNET_ARGS="--reset --block-delay 1"` passes flags on to `filpy devnet`.
devnet: $(STAMP) ext
	$(VENV)/bin/filpy devnet $(DEVNET_ARGS)

# wrk drives the RPC benchmark's load (bench/bench_rpc.py; without it a slower Python load generator).
bench: $(STAMP) ext
	@command -v wrk >/dev/null || $(MAKE) --no-print-directory apt-install PKG=wrk WHY="the RPC benchmark's load generator"
	$(PY) -m bench

# The C hot loops of proofs/ (tree hashing, fr32) and the DAG-CBOR encoder of chain/encoding; each
# rebuilt only when its C source changes.
# The bytecode is written here once because environments that set PYTHONDONTWRITEBYTECODE (CI does)
# would otherwise have every daemon a test starts compile the whole package again (~0.4 s of CPU each).
ext: $(STAMP)
	$(PY) -m proofs.build_ext
	$(PY) -m chain.encoding.build_ext
	@$(PY) -m compileall -q -j 0 chain actors proofs node rpc cli >/dev/null

# ruff, mypy --strict, and the layers of docs/architecture.md (import-linter, pyproject.toml).
lint: $(STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy
	$(VENV)/bin/lint-imports

clean:
	rm -rf $(VENV) build *.egg-info proofs/_native*.so
