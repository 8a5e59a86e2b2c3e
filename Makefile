# Makefile - a thin driver over CMake (the build itself is CMakeLists.txt).
#
#   make deps      install the Debian packages the project needs (tools/install-deps.sh)
#   make build     RelWithDebInfo build in build/
#   make test      build and ctest three configurations: build/ (plain),
#                  build-tsan/ (-DCHM_SANITIZE=thread), build-asan/ (-DCHM_SANITIZE=address)
#   make bench     Release build in build-release/, then run build-release/bench/chm_sweep
#   make install   build/ installed into PREFIX (default /usr/local; DESTDIR is honoured)
#   make format    clang-format -i every C/C++ source (format-check: report only)
#   make clean     remove the build directories
#
# Variables: CC, CXX (`make test CC=clang`), PREFIX, BUILD_TYPE, JOBS, CMAKE_FLAGS (extra -D
# options for every configuration), CTEST_FLAGS, BENCH_ARGS (arguments for chm_sweep).

SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c

CMAKE ?= cmake
CTEST ?= ctest
JOBS ?= 2
PREFIX ?= /usr/local
BUILD_TYPE ?= RelWithDebInfo
CMAKE_FLAGS ?=
CTEST_FLAGS ?=
BENCH_ARGS ?=
CLANG_FORMAT ?= clang-format

# `make CC=clang` picks the matching C++ compiler unless CXX is given too.
ifeq ($(origin CXX),default)
  ifneq ($(findstring clang,$(CC)),)
    CXX := $(subst clang,clang++,$(CC))
  else ifneq ($(findstring gcc,$(CC)),)
    CXX := $(subst gcc,g++,$(CC))
  endif
endif

CC_PATH := $(shell command -v $(CC) 2>/dev/null || echo $(CC))
CXX_PATH := $(shell command -v $(CXX) 2>/dev/null || echo $(CXX))
COMPILERS := -DCMAKE_C_COMPILER=$(CC_PATH) -DCMAKE_CXX_COMPILER=$(CXX_PATH)
# CMake answers a compiler change by deleting its cache and configuring again *without* the -D
# options of that command line (a sanitizer dir would silently become a plain build), so a
# build dir configured with other compilers is cleared first.
fresh_if_new_compiler = cache=$(1)/CMakeCache.txt; \
  if [ -f $$cache ] && { [ "$$(sed -n 's/^CMAKE_C_COMPILER:[A-Z]*=//p' $$cache)" != "$(CC_PATH)" ] || \
                         [ "$$(sed -n 's/^CMAKE_CXX_COMPILER:[A-Z]*=//p' $$cache)" != "$(CXX_PATH)" ]; }; then \
    echo "$(1): other compilers than $(CC_PATH) / $(CXX_PATH): configuring from scratch"; \
    rm -rf $(1)/CMakeCache.txt $(1)/CMakeFiles; \
  fi
# configure DIR FLAGS...: (re)configure a build directory (cheap when nothing changed)
configure = $(CMAKE) -S . -B $(1) $(COMPILERS) $(CMAKE_FLAGS) $(2)
# cmake --build runs its own make: keep this make's flags (-w, jobserver) out of it
BUILD := env -u MAKEFLAGS -u MFLAGS -u MAKELEVEL $(CMAKE) --build

BUILD_FLAGS := -DCMAKE_BUILD_TYPE=$(BUILD_TYPE) -DCMAKE_INSTALL_PREFIX=$(PREFIX)
TSAN_FLAGS := -DCMAKE_BUILD_TYPE=$(BUILD_TYPE) -DCHM_SANITIZE=thread -DCHM_BUILD_BENCH=OFF
ASAN_FLAGS := -DCMAKE_BUILD_TYPE=$(BUILD_TYPE) -DCHM_SANITIZE=address -DCHM_BUILD_BENCH=OFF
RELEASE_FLAGS := -DCMAKE_BUILD_TYPE=Release -DCHM_BUILD_TESTS=OFF -DCHM_BUILD_BENCH=ON

FORMAT_DIRS := include src variants tests bench
FORMAT_FILES = $(shell find $(FORMAT_DIRS) -type f \( -name '*.c' -o -name '*.h' -o -name '*.cc' \
                 -o -name '*.cpp' -o -name '*.hpp' \) 2>/dev/null | sort)

.PHONY: all deps build test bench install format format-check clean

all: build

deps:
	@sh tools/install-deps.sh

build:
	@$(call fresh_if_new_compiler,build)
	$(call configure,build,$(BUILD_FLAGS))
	$(BUILD) build -j$(JOBS)

# Each configuration is configured, built and tested even if an earlier one failed, so one run
# shows every failure; the summary's last line is "N passed, M failed" (tests; a configuration
# that does not build counts as one failure) and any failure fails make.
test: deps
	@summary=(); total_pass=0; total_fail=0; \
	for cfg in "build:plain:$(BUILD_FLAGS)" "build-tsan:thread:$(TSAN_FLAGS)" \
	           "build-asan:address:$(ASAN_FLAGS)"; do \
	  dir=$${cfg%%:*}; rest=$${cfg#*:}; kind=$${rest%%:*}; flags=$${rest#*:}; \
	  echo; echo "==== $$dir ($$kind): configure + build"; \
	  $(call fresh_if_new_compiler,$$dir); \
	  if ! $(CMAKE) -S . -B "$$dir" $(COMPILERS) $(CMAKE_FLAGS) $$flags \
	     || ! $(BUILD) "$$dir" -j$(JOBS); then \
	    summary+=("$$(printf '%-11s %-8s BUILD FAILED' "$$dir" "$$kind")"); \
	    total_fail=$$((total_fail + 1)); continue; \
	  fi; \
	  echo "==== $$dir ($$kind): ctest"; \
	  rc=0; $(CTEST) --test-dir "$$dir" --output-on-failure --no-tests=error -j$(JOBS) \
	    $(CTEST_FLAGS) 2>&1 | tee "$$dir/ctest.log" || rc=$$?; \
	  line=$$(grep -E 'tests passed, [0-9]+ tests? failed out of [0-9]+' "$$dir/ctest.log" | tail -n 1 || true); \
	  if [[ $$line =~ ([0-9]+)\ tests?\ failed\ out\ of\ ([0-9]+) ]]; then \
	    nfail=$${BASH_REMATCH[1]}; ntot=$${BASH_REMATCH[2]}; \
	  else \
	    nfail=1; ntot=1; \
	  fi; \
	  if [ $$rc -ne 0 ] && [ $$nfail -eq 0 ]; then nfail=1; ntot=$$((ntot + 1)); fi; \
	  total_pass=$$((total_pass + ntot - nfail)); total_fail=$$((total_fail + nfail)); \
	  if [ $$nfail -eq 0 ]; then status=ok; else status=FAILED; fi; \
	  if grep -q 'No tests were found' "$$dir/ctest.log"; then \
	    summary+=("$$(printf '%-11s %-8s NO TESTS FOUND (counted as 1 failure)' "$$dir" "$$kind")"); \
	  else \
	    summary+=("$$(printf '%-11s %-8s %3d tests, %d failed  %s' "$$dir" "$$kind" "$$ntot" "$$nfail" "$$status")"); \
	  fi; \
	done; \
	echo; echo "==== make test summary (CC=$(CC))"; \
	for s in "$${summary[@]}"; do echo "  $$s"; done; \
	echo "$$total_pass passed, $$total_fail failed"; \
	[ $$total_fail -eq 0 ]

bench: deps
	@$(call fresh_if_new_compiler,build-release)
	$(call configure,build-release,$(RELEASE_FLAGS))
	$(BUILD) build-release -j$(JOBS)
	build-release/bench/chm_sweep $(BENCH_ARGS)

install: build
	$(CMAKE) --install build --prefix "$(PREFIX)"

format:
	@command -v $(CLANG_FORMAT) >/dev/null || { echo "no $(CLANG_FORMAT): tools/install-deps.sh clang-format" >&2; exit 1; }
	$(CLANG_FORMAT) -i $(FORMAT_FILES)

format-check:
	@command -v $(CLANG_FORMAT) >/dev/null || { echo "no $(CLANG_FORMAT): tools/install-deps.sh clang-format" >&2; exit 1; }
	$(CLANG_FORMAT) --dry-run -Werror $(FORMAT_FILES)

clean:
	rm -rf build build-tsan build-asan build-release
