# SPDX-License-Identifier: BSD-2-Clause
# Makefile - the project's commands, each a thin target over a script. The build is
# CMakeLists.txt; its configurations (build directories and cache options) are CMakePresets.json;
# which tests each runs, tests/CMakeLists.txt (CTest labels); the steps, tools/make_*.sh, whose
# headers give every detail and variable.
#
#   make deps      install the Debian packages the project needs (tools/install-deps.sh); every
#                  target below that builds or runs something does this first
#   make build     RelWithDebInfo build in build/ (tools/make_build.sh)
#   make test      configure, build and ctest build/ (plain), build-tsan/, build-asan/ (ASan +
#                  UBSan) and build-torture/ (yield points; the tests labelled torture); ends
#                  with "N passed, M failed" and the command that reruns each failed test
#                  (tools/make_test.sh)
#   make stress    long runs, 20-60 minutes: the torture suites in rounds in build-torture/ and
#                  once in build-torture-tsan/ (tools/make_stress.sh)
#   make bench     Release build in build-release/, then the default comparison, about 5 minutes
#                  on 2 cores: JMH tables, results/*.json, PNG charts, the goals table
#                  (tools/make_bench.sh; docs/harness.md, "make bench")
#   make compare   the backends against the Java and Go originals and every peer
#                  (tools/make_bench.sh compare, whose header says how long; docs/harness.md,
#                  "make compare")
#   make findings  Release build, then every measurement of docs/findings.md again, on an idle
#                  machine, into FINDINGS_OUT (default docs/findings/) (tools/make_bench.sh
#                  findings; tools/findings.sh, whose header says how long)
#   make install   build/ installed into PREFIX (default /usr/local; DESTDIR is honoured); as
#                  root without DESTDIR it runs ldconfig (tools/make_install.sh)
#   make fuzz      libFuzzer differential fuzzing in build-fuzz/ until Ctrl-C or FUZZ_TIME
#                  seconds (tools/make_fuzz.sh)
#   make format    clang-format -i every C/C++ source (format-check: report only)
#   make clean     remove the build directories of CMakePresets.json
#
# Variables go to the scripts through the environment: CC, CXX (`make test CC=clang`), JOBS,
# CMAKE_FLAGS (more -D options for every configuration), BUILD_TYPE, PREFIX, CTEST_FLAGS,
# BENCHMARKS, BENCH_ARGS, RESULTS, BENCH_BUILD, PYTHON, FINDINGS_OUT, STRESS_*, FUZZ_*: see each
# script.

SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c

CLANG_FORMAT ?= clang-format
FORMAT_DIRS := include src variants tests bench
FORMAT_FILES = $(shell find $(FORMAT_DIRS) -type f \( -name '*.c' -o -name '*.h' -o -name '*.cc' \
                 -o -name '*.cpp' -o -name '*.hpp' \) 2>/dev/null | sort)

.PHONY: all deps build test stress bench compare findings fuzz install format format-check clean

all: build

deps:
	@sh tools/install-deps.sh

build: deps
	tools/make_build.sh

test: deps
	@tools/make_test.sh

stress: deps
	@tools/make_stress.sh

bench: deps
	@tools/make_bench.sh bench

compare: deps
	@tools/make_bench.sh compare

findings: deps
	@tools/make_bench.sh findings

fuzz: deps
	@tools/make_fuzz.sh

install: build
	@tools/make_install.sh

format:
	@command -v $(CLANG_FORMAT) >/dev/null || { echo "no $(CLANG_FORMAT): tools/install-deps.sh clang-format" >&2; exit 1; }
	$(CLANG_FORMAT) -i $(FORMAT_FILES)

format-check:
	@command -v $(CLANG_FORMAT) >/dev/null || { echo "no $(CLANG_FORMAT): tools/install-deps.sh clang-format" >&2; exit 1; }
	$(CLANG_FORMAT) --dry-run -Werror $(FORMAT_FILES)

clean:
	rm -rf $$(sed -n 's|.*"binaryDir": *"$${sourceDir}/\([^"]*\)".*|\1|p' CMakePresets.json)
