# The two commands a newcomer runs: `make demo` and `make test` (see README.md).
# Both install what they need: Debian packages (gdb, elfutils, ...) with apt-get when missing,
# and Python packages into a virtual environment in .venv.

PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
APT_PACKAGES := gdb elfutils binutils g++ libc6-dbg util-linux python3-venv dwarves bpftool lz4
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)

.PHONY: demo test lint bench system-deps clean

demo: $(VENV)/.installed
	$(PY) scripts/demo.py

test: system-deps $(VENV)/.installed-test
	$(VENV)/bin/ruff check pmdb tests bench scripts
	$(PY) tests/fixtures/make_cores.py > /dev/null
# exit 77: this machine cannot build the kernel fixture (its tests skip); never acceptable in CI
	$(PY) tests/fixtures/kernel/make_vmcores.py > /dev/null || { rc=$$?; [ $$rc = 77 ] && \
	  ! echo "$${CI:-}" | grep -qiE '^(1|true|yes)$$'; }
	$(PY) -m pytest -q

bench: system-deps $(VENV)/.installed-test
	$(PY) bench/run.py --write
	$(PY) bench/first_type.py --write
	$(PY) bench/first_line.py --write
	$(PY) bench/kernel.py --write

system-deps:
	@missing=""; \
	for p in $(APT_PACKAGES); do dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then \
	  echo "installing Debian packages:$$missing"; \
	  $(SUDO) apt-get update -q && $(SUDO) DEBIAN_FRONTEND=noninteractive apt-get install -y -q $$missing; \
	fi

$(VENV)/.installed: pyproject.toml $(shell find pmdb -name '*.py')
	@[ -x $(PY) ] || $(PYTHON) -m venv $(VENV) || { $(MAKE) system-deps && $(PYTHON) -m venv $(VENV); }
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q .
	touch $@

$(VENV)/.installed-test: $(VENV)/.installed
	$(PY) -m pip install -q '.[test]'
	touch $@

clean:
	rm -rf $(VENV) build *.egg-info
