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

.PHONY: demo test ctest ctest-asan ctest-tsan pytest install sysdeps inplace dev-test lint format clean

# Trains a small segmentation model on a synthetic VOC set (about 1.5 CPU-minutes on a 2-core
# machine), printing val_mIoU after each epoch and leaving
# lightning_logs/version_N/checkpoints/*.ckpt; `conveyor fit --help` lists every option.
demo: install
	$(VENV)/bin/conveyor fit

test: ctest ctest-asan ctest-tsan pytest

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

# Sanitizer builds of the C++ tests (CONVEYOR_SANITIZE, cmake/Sanitizers.cmake), each in its own
# build dir; quiet unless something fails. ctest-asan: every test under ASan+UBSan (the fuzz
# drivers for 1 s each). ctest-tsan: the tests whose threads share state, under TSan.
SANITIZED_CTEST = $(VENV)/bin/cmake -S . -B $(1) -G Ninja -DCMAKE_MAKE_PROGRAM=$(abspath $(VENV)/bin/ninja) \
		-DCMAKE_BUILD_TYPE=Debug -DCONVEYOR_BUILD_TESTS=ON -DCONVEYOR_BUILD_PYTHON=OFF \
		-DCONVEYOR_SANITIZE=$(2) >$(1).log 2>&1 \
	&& $(VENV)/bin/cmake --build $(1) $(3) >>$(1).log 2>&1 \
	&& $(4) $(VENV)/bin/ctest --test-dir $(1) --output-on-failure $(5) >>$(1).log 2>&1 \
	|| { cat $(1).log; exit 1; }
SANITIZER_ENV := ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1 \
	TSAN_OPTIONS=halt_on_error=1:second_deadlock_stack=1 CONVEYOR_FUZZ_SECONDS=1
ASAN_CHECKS := address,undefined
TSAN_TESTS := test_engine test_sampling
TSAN_REGEX := ^(test_engine|test_sampling)$$

ctest-asan: sysdeps $(VENV)/.build-tools
	@mkdir -p build
	@$(call SANITIZED_CTEST,build/ctest-asan,$(ASAN_CHECKS),,$(SANITIZER_ENV),)
	@echo "ctest-asan: all C++ tests pass under ASan+UBSan"

ctest-tsan: sysdeps $(VENV)/.build-tools
	@mkdir -p build
	@$(call SANITIZED_CTEST,build/ctest-tsan,thread,--target $(TSAN_TESTS),$(SANITIZER_ENV),-R '$(TSAN_REGEX)')
	@echo "ctest-tsan: $(TSAN_TESTS) pass under TSan"

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
	@if git grep -nE '^(<<<<<<<|>>>>>>>)( |$$)'; then echo "lint: merge conflict markers left in the lines above"; exit 1; fi

format: $(VENV)/.lint-tools
	$(VENV)/bin/ruff check --fix-only -q .
	$(VENV)/bin/ruff format -q .
	$(VENV)/bin/clang-format -i $(CXX_SOURCES)

clean:
	rm -rf build python/conveyor/_core*.so
