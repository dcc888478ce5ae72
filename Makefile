# The two commands of the README: `make demo` and `make test`. Each installs what it needs
# (system libraries, .venv, the package) and is safe to run again.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
PIP := $(PY) -m pip --disable-pip-version-check -q
BUILD_TOOLS := "scikit-build-core>=0.10" "pybind11>=2.12" "cmake>=3.18" ninja
# Formatters are pinned so that every machine formats alike (clang-format 14 formatted the tree).
LINT_TOOLS := "ruff==0.17.6" "mypy>=1.10" "clang-format==14.0.6"
CXX_SOURCES = $(shell git ls-files 'csrc/*.cpp' 'csrc/*.h' 2>/dev/null)
SOURCES := $(shell find csrc python cmake -type f -not -name '*.so' -not -path '*/__pycache__/*' 2>/dev/null) \
           CMakeLists.txt pyproject.toml

.PHONY: demo test ctest pytest install sysdeps inplace dev-test lint format clean

# Trains a small segmentation model on a synthetic VOC set (about 1.5 CPU-minutes on a 2-core
# machine), printing val_mIoU after each epoch and leaving
# lightning_logs/version_N/checkpoints/*.ckpt; `conveyor fit --help` lists every option.
demo: install
	$(VENV)/bin/conveyor fit

test: ctest pytest

sysdeps:
	@scripts/ensure_system_deps.sh $(PYTHON)

$(VENV)/.created: | sysdeps
	$(PYTHON) -m venv $(VENV)
	$(PIP) install --upgrade pip
	touch $@

$(VENV)/.build-tools: $(VENV)/.created Makefile
	$(PIP) install $(BUILD_TOOLS)
	touch $@

# The package and its runtime and test dependencies; rebuilt incrementally in build/wheel.
$(VENV)/.installed: $(VENV)/.build-tools $(SOURCES)
	$(PIP) install --no-build-isolation -Cbuild-dir=build/wheel ".[test]"
	touch $@

install: sysdeps $(VENV)/.installed

ctest: sysdeps $(VENV)/.build-tools
	$(VENV)/bin/cmake -S . -B build/ctest -G Ninja -DCMAKE_MAKE_PROGRAM=$(abspath $(VENV)/bin/ninja) \
		-DCONVEYOR_BUILD_TESTS=ON -DCONVEYOR_BUILD_PYTHON=OFF >/dev/null
	$(VENV)/bin/cmake --build build/ctest
	$(VENV)/bin/ctest --test-dir build/ctest --output-on-failure

pytest: install
	$(PY) -m pytest

# Developer loop: rebuild only the extension into python/conveyor and test the source tree.
inplace: $(VENV)/.build-tools
	$(VENV)/bin/cmake -S . -B build/inplace -G Ninja -DCMAKE_MAKE_PROGRAM=$(abspath $(VENV)/bin/ninja) \
		-DPython_EXECUTABLE=$(abspath $(PY)) -Dpybind11_DIR=$$($(PY) -m pybind11 --cmakedir) >/dev/null
	$(VENV)/bin/cmake --build build/inplace

dev-test: inplace
	PYTHONPATH=python $(PY) -m pytest $(ARGS)

$(VENV)/.lint-tools: $(VENV)/.created Makefile
	$(PIP) install $(LINT_TOOLS)
	touch $@

# ruff (lint + format check, 100 columns), mypy (strict on the loader), clang-format on csrc/.
lint: $(VENV)/.lint-tools $(VENV)/.installed
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy
	$(VENV)/bin/clang-format --dry-run -Werror $(CXX_SOURCES)

format: $(VENV)/.lint-tools
	$(VENV)/bin/ruff check --fix-only -q .
	$(VENV)/bin/ruff format -q .
	$(VENV)/bin/clang-format -i $(CXX_SOURCES)

clean:
	rm -rf build python/conveyor/_core*.so
