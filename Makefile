# SPDX-License-Identifier: BSD-2-Clause
# Makefile - a thin driver over CMake (the build itself is CMakeLists.txt).
#
#   make deps      install the Debian packages the project needs (tools/install-deps.sh)
#   make build     RelWithDebInfo build in build/
#   make test      build and ctest four configurations: build/ (plain),
#                  build-tsan/ (-DCHM_SANITIZE=thread), build-asan/ (-DCHM_SANITIZE=address),
#                  and build-torture/ (-DCHM_VALIDATE=ON: yield points in every critical window,
#                  src/torture.h), which runs only the concurrency suites (TORTURE_TESTS)
#   make stress    long runs, 20-60 minutes, progress on stdout: build-torture/ with
#                  CHM_TORTURE=heavy, STRESS_ROUNDS (default 5) rounds of the concurrency suites
#                  (CHM_TEST_SCALE=STRESS_TORTURE_SCALE, default 0.5) plus
#                  test_linearizability --stress; then build-torture-tsan/ (TSan + yield
#                  points, CHM_TORTURE=light) with the suites at CHM_TEST_SCALE=1 (TSan's
#                  default is 0.3). Logs in <dir>/stress-<suite>-<round>.log.
#   make bench     Release build in build-release/, then the default comparison with chmbench
#                  (docs/harness.md, "make bench"): mix over every backend and both peers (reads
#                  100,99,90,50 x keys 1000,1000000 x threads 1,2), falseshare and memory, about
#                  5 minutes on 2 cores; the JMH tables on stdout, results/<benchmark>-<time>.json
#                  and PNG charts (tools/plot_results.py) in results/, with <name>-latest links.
#                  chm_sweep (the quick sweep) and chm_gbench (Google Benchmark) are built too.
#   make compare   Release build in build-release/, then the default comparison with the originals
#                  (docs/harness.md, "make compare"): mix over the five backends, the Java and Go
#                  originals (java:chm, java:sync, java:rwlock, go:syncmap, go:rwmutex, go:map)
#                  and the peers (cuckoo, tbb, ck_ht, lfht) in one chmbench run (reads
#                  100,99,90,50 x keys 1000,1000000 x threads 1,2), about 12 minutes on 2 cores,
#                  progress on stderr; the JMH table on stdout, results/compare-<time>.json, its
#                  charts (compare-mix-<time>.png) and goals table, with compare-*-latest links.
#   make findings  rerun every measurement of docs/findings.md (tools/findings.sh, about 15
#                  minutes on 2 cores, on an idle machine): tables, JSON and charts regenerated
#                  in FINDINGS_OUT (default docs/findings/)
#   make install   build/ installed into PREFIX (default /usr/local; DESTDIR is honoured); as
#                  root without DESTDIR it runs ldconfig, so the README example runs as shown
#   make format    clang-format -i every C/C++ source (format-check: report only)
#   make clean     remove the build directories
#   make fuzz      differential fuzzing (tests/fuzz/fuzz_chm.c) with libFuzzer, ASan and UBSan:
#                  clang build in build-fuzz/ (-DCHM_FUZZ=ON), run on build-fuzz/corpus (a copy
#                  of tests/fuzz/corpus: new inputs never dirty the repository) until Ctrl-C, or
#                  FUZZ_TIME=N seconds. Findings land in build-fuzz/crashes/; reproduce one with
#                  `build-fuzz/tests/fuzz/fuzz_chm FILE` (FUZZ_CHM_TRACE=1 prints each operation).
#                  Parallel: FUZZ_ARGS='-jobs=4 -workers=2' (4 runs on 2 processes, logs in
#                  build-fuzz/fuzz-N.log; FUZZ_TIME then bounds each run). Every `make test`
#                  configuration replays the committed corpus (ctest -R fuzz). An input runs
#                  in well under a second; -timeout=120 reports hangs without false alarms on
#                  a loaded machine.
#
# Variables: CC, CXX (`make test CC=clang`), PREFIX, BUILD_TYPE, JOBS, CMAKE_FLAGS (extra -D
# options for every configuration), CTEST_FLAGS, BENCH_ARGS (more chmbench options for every
# benchmark of make bench and for make compare, given last so they override, e.g.
# BENCH_ARGS='-f 3 -i 10'),
# BENCHMARKS (default "mix falseshare memory"; BENCHMARKS=churn runs the churn benchmark instead:
# one 60 s run per backend, about 3 minutes), RESULTS (default results), PYTHON (/usr/bin/python3),
# BENCH_BUILD (make bench's build directory, default build-release),
# FUZZ_CC (default clang), FUZZ_TIME (default 0: no limit), FUZZ_ARGS (more libFuzzer flags).

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
TORTURE_FLAGS := -DCMAKE_BUILD_TYPE=$(BUILD_TYPE) -DCHM_VALIDATE=ON -DCHM_BUILD_BENCH=OFF
TORTURE_TSAN_FLAGS := $(TORTURE_FLAGS) -DCHM_SANITIZE=thread
# The suites the torture build runs (a ctest -R regex; a suite added later under one of these
# names is picked up).
TORTURE_TESTS := ^test_(concurrency|smr_torture|iteration|linearizability|torture_hits|rwlock_lock)$$
RELEASE_FLAGS := -DCMAKE_BUILD_TYPE=Release -DCHM_BUILD_TESTS=OFF -DCHM_BUILD_BENCH=ON

FORMAT_DIRS := include src variants tests bench
FORMAT_FILES = $(shell find $(FORMAT_DIRS) -type f \( -name '*.c' -o -name '*.h' -o -name '*.cc' \
                 -o -name '*.cpp' -o -name '*.hpp' \) 2>/dev/null | sort)

.PHONY: all deps build test stress bench compare findings fuzz install format format-check clean

all: build

deps:
	@sh tools/install-deps.sh

build: deps
	@$(call fresh_if_new_compiler,build)
	$(call configure,build,$(BUILD_FLAGS))
	$(BUILD) build -j$(JOBS)

# Each configuration is configured, built and tested even if an earlier one failed, so one run
# shows every failure; the summary's last line is "N passed, M failed" (tests; a configuration
# that does not build counts as one failure) and any failure fails make. An entry is
# "dir:kind:ctest -R filter (empty = every test):cmake flags".
test: deps
	@summary=(); failed_tests=(); total_pass=0; total_fail=0; t0=$$(date +%s); \
	for cfg in "build:plain::$(BUILD_FLAGS)" "build-tsan:thread::$(TSAN_FLAGS)" \
	           "build-asan:address::$(ASAN_FLAGS)" \
	           "build-torture:torture:$(TORTURE_TESTS):$(TORTURE_FLAGS)"; do \
	  dir=$${cfg%%:*}; rest=$${cfg#*:}; kind=$${rest%%:*}; rest=$${rest#*:}; \
	  filter=$${rest%%:*}; flags=$${rest#*:}; \
	  echo; echo "==== $$dir ($$kind): configure + build"; \
	  $(call fresh_if_new_compiler,$$dir); \
	  if ! $(CMAKE) -S . -B "$$dir" $(COMPILERS) $(CMAKE_FLAGS) $$flags \
	     || ! $(BUILD) "$$dir" -j$(JOBS); then \
	    summary+=("$$(printf '%-13s %-8s BUILD FAILED' "$$dir" "$$kind")"); \
	    total_fail=$$((total_fail + 1)); continue; \
	  fi; \
	  echo "==== $$dir ($$kind): ctest"; \
	  rc=0; $(CTEST) --test-dir "$$dir" --output-on-failure --no-tests=error -j$(JOBS) \
	    $${filter:+-R "$$filter"} $(CTEST_FLAGS) 2>&1 | tee "$$dir/ctest.log" || rc=$$?; \
	  line=$$(grep -E 'tests passed, [0-9]+ tests? failed out of [0-9]+' "$$dir/ctest.log" | tail -n 1 || true); \
	  if [[ $$line =~ ([0-9]+)\ tests?\ failed\ out\ of\ ([0-9]+) ]]; then \
	    nfail=$${BASH_REMATCH[1]}; ntot=$${BASH_REMATCH[2]}; \
	  else \
	    nfail=1; ntot=1; \
	  fi; \
	  if [ $$rc -ne 0 ] && [ $$nfail -eq 0 ]; then nfail=1; ntot=$$((ntot + 1)); fi; \
	  total_pass=$$((total_pass + ntot - nfail)); total_fail=$$((total_fail + nfail)); \
	  if [ $$nfail -eq 0 ]; then status=ok; else status=FAILED; fi; \
	  while read -r name; do \
	    failed_tests+=("$$(printf '%-13s %-24s ctest --test-dir %s -R %s --output-on-failure' \
	      "$$dir" "$$name" "$$dir" "'^$$name\$$'")"); \
	  done < <(sed -n '/The following tests FAILED:/,$$s/^[[:space:]]*[0-9]* - \([^ ]*\) .*/\1/p' "$$dir/ctest.log"); \
	  if grep -q 'No tests were found' "$$dir/ctest.log"; then \
	    summary+=("$$(printf '%-13s %-8s NO TESTS FOUND (counted as 1 failure)' "$$dir" "$$kind")"); \
	  else \
	    summary+=("$$(printf '%-13s %-8s %3d tests, %d failed  %s' "$$dir" "$$kind" "$$ntot" "$$nfail" "$$status")"); \
	  fi; \
	done; \
	echo; echo "==== make test summary (CC=$(CC), $$(( $$(date +%s) - t0 )) s)"; \
	for s in "$${summary[@]}"; do echo "  $$s"; done; \
	if [ $${#failed_tests[@]} -gt 0 ]; then \
	  echo "failed tests, and the command that reruns one alone:"; \
	  for f in "$${failed_tests[@]}"; do echo "  $$f"; done; \
	fi; \
	echo "$$total_pass passed, $$total_fail failed"; \
	[ $$total_fail -eq 0 ]

# make stress (see the header): STRESS_ROUNDS rounds of the concurrency suites in build-torture/
# under CHM_TORTURE=$(STRESS_MODE), then test_linearizability --stress there, then one round in
# build-torture-tsan/ at CHM_TEST_SCALE=$(STRESS_SCALE). Every run goes on after a failure (its
# log's tail is printed); any failure fails make.
STRESS_ROUNDS ?= 5
STRESS_MODE ?= heavy
STRESS_SCALE ?= 1
# Heavy yields stretch each operation: half the operations keep every suite inside its 280 s
# watchdog on a loaded two-core machine; the rounds make up the length.
STRESS_TORTURE_SCALE ?= 0.5
STRESS_SUITES := test_concurrency test_iteration test_smr_torture test_torture_hits

stress: deps
	@fail=0; step=0; t0=$$(date +%s); total=$$(( $(STRESS_ROUNDS) * 4 + 6 )); \
	run() { local log=$$1; shift; step=$$((step + 1)); local s=$$(date +%s); \
	  printf '[stress %2d/%d, %5d s] %s ... ' $$step $$total $$((s - t0)) "$$*"; \
	  if env "$$@" > "$$log" 2>&1; then echo "ok ($$(( $$(date +%s) - s )) s)"; \
	  else echo "FAILED ($$(( $$(date +%s) - s )) s), log: $$log"; tail -n 30 "$$log"; \
	    fail=$$((fail + 1)); fi; }; \
	for cfg in "build-torture:$(TORTURE_FLAGS)" "build-torture-tsan:$(TORTURE_TSAN_FLAGS)"; do \
	  dir=$${cfg%%:*}; flags=$${cfg#*:}; \
	  echo "==== $$dir: configure + build"; \
	  $(call fresh_if_new_compiler,$$dir); \
	  $(CMAKE) -S . -B "$$dir" $(COMPILERS) $(CMAKE_FLAGS) $$flags; \
	  $(BUILD) "$$dir" -j$(JOBS); \
	  lin=$$dir/tests/test_linearizability; \
	  if [ $$dir = build-torture ]; then \
	    for r in $$(seq 1 $(STRESS_ROUNDS)); do \
	      for t in $(STRESS_SUITES); do \
	        run $$dir/stress-$$t-$$r.log CHM_TORTURE=$(STRESS_MODE) \
	          CHM_TEST_SCALE=$(STRESS_TORTURE_SCALE) $$dir/tests/$$t; \
	      done; \
	    done; \
	    if [ -x $$lin ]; then run $$dir/stress-lin.log CHM_TORTURE=light $$lin --stress; \
	    else step=$$((step + 1)); echo "[stress $$step/$$total] no $$lin: skipped"; fi; \
	  else \
	    export TSAN_OPTIONS=halt_on_error=1:allocator_may_return_null=1:second_deadlock_stack=1:suppressions=$(CURDIR)/tests/tsan.supp; \
	    for t in $(STRESS_SUITES) test_linearizability; do \
	      if [ -x $$dir/tests/$$t ]; then \
	        run $$dir/stress-$$t.log CHM_TORTURE=light CHM_TEST_SCALE=$(STRESS_SCALE) $$dir/tests/$$t; \
	      else step=$$((step + 1)); echo "[stress $$step/$$total] no $$dir/tests/$$t: skipped"; fi; \
	    done; \
	  fi; \
	done; \
	echo; echo "==== make stress: $$((step - fail)) runs passed, $$fail failed in $$(( $$(date +%s) - t0 )) s"; \
	[ $$fail -eq 0 ]

# make bench: one fork, 1 x 0.2 s warm-up and 5 x 0.2 s measurement per trial, so that the 104
# mix trials (half of them prefilling 10^6 keys per fork) fit the 5-minute budget; for numbers
# to publish, add e.g. BENCH_ARGS='-f 3 -wi 3 -w 1 -i 5 -r 1' on an idle machine. A -p that a
# benchmark lacks is an error: restrict BENCHMARKS then.
BENCH_BUILD ?= build-release
BENCHMARKS ?= mix falseshare memory
RESULTS ?= results
PYTHON ?= /usr/bin/python3
BENCH_RUN := -f 1 -wi 1 -w 0.2 -i 5 -r 0.2
BENCH_MIX := -p backend=unsafe,rwlock,segmented,binlock,readmostly,ck_ht,lfht \
  -p reads=100,99,90,50 -p keys=1000,1000000 -p dist=uniform -t 1,2
BENCH_FALSESHARE := -t 2 -p subject=counters,segmented,binlock,readmostly
BENCH_MEMORY := -wi 0 -i 1 -p presize=yes
# churn is not in the default BENCHMARKS: one run of 60 s per backend (-wi/-i do not apply)
BENCH_CHURN := -p backend=segmented,binlock,readmostly -t 2

bench: deps
	@$(call fresh_if_new_compiler,$(BENCH_BUILD))
	$(call configure,$(BENCH_BUILD),$(RELEASE_FLAGS))
	$(BUILD) $(BENCH_BUILD) -j$(JOBS)
	@exe=$(BENCH_BUILD)/bench/chmbench; ts=$$(date +%Y%m%d-%H%M%S); files=(); \
	mkdir -p $(RESULTS); \
	for b in $(BENCHMARKS); do \
	  if ! $$exe -l | grep -q "^  $$b "; then echo "# $$b: not in this chmbench, skipped"; continue; fi; \
	  case $$b in \
	    mix) args="$(BENCH_MIX)";; \
	    falseshare) args="$(BENCH_FALSESHARE)";; \
	    memory) args="$(BENCH_MEMORY)";; \
	    churn) args="$(BENCH_CHURN)";; \
	    *) args=;; \
	  esac; \
	  out=$(RESULTS)/$$b-$$ts.json; \
	  echo; echo "==== $$exe $(BENCH_RUN) $$args $(BENCH_ARGS) -rf json -rff $$out $$b"; \
	  $$exe $(BENCH_RUN) $$args $(BENCH_ARGS) -rf json -rff $$out $$b; \
	  ln -sfn $$b-$$ts.json $(RESULTS)/$$b-latest.json; \
	  files+=("$$out"); \
	done; \
	[ $${#files[@]} -gt 0 ] || { echo "make bench: no benchmark ran" >&2; exit 1; }; \
	echo; echo "==== $(PYTHON) tools/plot_results.py -o $(RESULTS) --suffix=-$$ts $${files[*]}"; \
	pngs=$$($(PYTHON) tools/plot_results.py -o $(RESULTS) --suffix=-$$ts "$${files[@]}"); \
	for p in $$pngs; do n=$$(basename "$$p"); ln -sfn "$$n" "$(RESULTS)/$${n%-$$ts.png}-latest.png"; done; \
	echo; echo "==== performance goals (docs/benchmarks.md), as ratios of this run's Scores"; \
	$(PYTHON) tools/bench_summary.py "$${files[@]}" | tee $(RESULTS)/summary-$$ts.md; \
	ln -sfn summary-$$ts.md $(RESULTS)/summary-latest.md; \
	echo; echo "results (the *-latest.* links point at this run):"; \
	for f in "$${files[@]}" $$pngs $(RESULTS)/summary-$$ts.md; do echo "  $$f"; done; \
	echo "Google Benchmark view: $(BENCH_BUILD)/bench/gbench/chm_gbench (--help; docs/harness.md)"

# make compare: the five backends against every original and peer, mix only, in one chmbench run
# (224 trials: go:map and unsafe run at one thread). A warm-up of 1 s lets the JVM's C2 compile
# the originals' loops before measuring (docs/harness.md, "The originals": how that was
# checked); 5 x 0.3 s measured. About 3.2 s per trial with the forks, JVM starts and 10^6-key
# prefills: about 12 minutes here. For numbers to publish, on an idle machine:
# make compare BENCH_ARGS='-f 3 -wi 3 -w 1 -i 5 -r 1' (about an hour).
COMPARE_RUN := -f 1 -wi 1 -w 1 -i 5 -r 0.3
COMPARE_ORIGINALS := java:chm,java:sync,java:rwlock,go:syncmap,go:rwmutex,go:map
COMPARE_BACKENDS := unsafe,rwlock,segmented,binlock,readmostly,$(COMPARE_ORIGINALS),cuckoo,tbb,ck_ht,lfht
COMPARE_MIX := -p backend=$(COMPARE_BACKENDS) -p reads=100,99,90,50 -p keys=1000,1000000 \
  -p dist=uniform -t 1,2

compare: deps
	@$(call fresh_if_new_compiler,$(BENCH_BUILD))
	$(call configure,$(BENCH_BUILD),$(RELEASE_FLAGS))
	$(BUILD) $(BENCH_BUILD) -j$(JOBS)
	@exe=$(BENCH_BUILD)/bench/chmbench; ts=$$(date +%Y%m%d-%H%M%S); mkdir -p $(RESULTS); \
	out=$(RESULTS)/compare-$$ts.json; \
	echo; echo "==== $$exe $(COMPARE_RUN) $(COMPARE_MIX) $(BENCH_ARGS) -rf json -rff $$out mix"; \
	echo "# about 12 minutes with the default settings; a progress line per trial follows"; \
	$$exe $(COMPARE_RUN) $(COMPARE_MIX) $(BENCH_ARGS) -rf json -rff $$out mix; \
	ln -sfn compare-$$ts.json $(RESULTS)/compare-latest.json; \
	echo; echo "==== $(PYTHON) tools/plot_results.py -o $(RESULTS) --prefix compare- --suffix=-$$ts $$out"; \
	pngs=$$($(PYTHON) tools/plot_results.py -o $(RESULTS) --prefix compare- --suffix=-$$ts "$$out"); \
	for p in $$pngs; do n=$$(basename "$$p"); ln -sfn "$$n" "$(RESULTS)/$${n%-$$ts.png}-latest.png"; done; \
	echo; echo "==== performance goals (docs/benchmarks.md), as ratios of this run's Scores"; \
	$(PYTHON) tools/bench_summary.py "$$out" | tee $(RESULTS)/compare-summary-$$ts.md; \
	ln -sfn compare-summary-$$ts.md $(RESULTS)/compare-summary-latest.md; \
	echo; echo "results (the compare-*-latest.* links point at this run):"; \
	for f in "$$out" $$pngs $(RESULTS)/compare-summary-$$ts.md; do echo "  $$f"; done

FINDINGS_OUT ?= docs/findings
findings: deps
	@$(call fresh_if_new_compiler,$(BENCH_BUILD))
	$(call configure,$(BENCH_BUILD),$(RELEASE_FLAGS))
	$(BUILD) $(BENCH_BUILD) -j$(JOBS)
	PYTHON=$(PYTHON) tools/findings.sh $(BENCH_BUILD) $(FINDINGS_OUT)

# libFuzzer comes with clang only: build-fuzz always uses FUZZ_CC, whatever CC says.
FUZZ_CC ?= clang
FUZZ_TIME ?= 0
FUZZ_ARGS ?=
FUZZ_CC_PATH := $(shell command -v $(FUZZ_CC) 2>/dev/null || echo $(FUZZ_CC))
FUZZ_CXX_PATH := $(shell command -v $(subst clang,clang++,$(FUZZ_CC)) 2>/dev/null || \
                   echo $(subst clang,clang++,$(FUZZ_CC)))
FUZZ_FLAGS := -DCMAKE_BUILD_TYPE=RelWithDebInfo -DCHM_SANITIZE=address -DCHM_FUZZ=ON \
              -DCHM_BUILD_BENCH=OFF

fuzz: deps
	@cache=build-fuzz/CMakeCache.txt; \
	if [ -f $$cache ] && [ "$$(sed -n 's/^CMAKE_C_COMPILER:[A-Z]*=//p' $$cache)" != "$(FUZZ_CC_PATH)" ]; then \
	  rm -rf build-fuzz/CMakeCache.txt build-fuzz/CMakeFiles; \
	fi
	$(CMAKE) -S . -B build-fuzz -DCMAKE_C_COMPILER=$(FUZZ_CC_PATH) \
	  -DCMAKE_CXX_COMPILER=$(FUZZ_CXX_PATH) $(CMAKE_FLAGS) $(FUZZ_FLAGS)
	$(BUILD) build-fuzz -j$(JOBS) --target fuzz_chm
	mkdir -p build-fuzz/corpus build-fuzz/crashes
	cp tests/fuzz/corpus/* build-fuzz/corpus/
	cd build-fuzz && ./tests/fuzz/fuzz_chm -artifact_prefix=crashes/ -timeout=120 \
	  -max_total_time=$(FUZZ_TIME) -print_final_stats=1 $(FUZZ_ARGS) corpus

# Installing into the system (no DESTDIR) as root refreshes the loader's cache (ldconfig), so a
# program linked with `pkg-config --libs chm` runs without LD_LIBRARY_PATH; a library directory
# that the loader does not search is named, with the two ways to fix it.
install: build
	$(CMAKE) --install build --prefix "$(PREFIX)"
	@libdir=$$(dirname "$$(grep -m1 '/libchm\.so\.[0-9]*$$' build/install_manifest.txt)"); \
	if [ -n "$${DESTDIR:-}" ]; then exit 0; fi; \
	if [ "$$(id -u)" -eq 0 ] && command -v ldconfig >/dev/null; then ldconfig; fi; \
	if ! /sbin/ldconfig -p 2>/dev/null | grep -q " => $$libdir/libchm\.so\.[0-9]*$$"; then \
	  echo "note: the loader does not search $$libdir: programs linked with libchm.so need"; \
	  echo "      LD_LIBRARY_PATH=$$libdir, or (as root) $$libdir in /etc/ld.so.conf.d/ and ldconfig"; \
	fi

format:
	@command -v $(CLANG_FORMAT) >/dev/null || { echo "no $(CLANG_FORMAT): tools/install-deps.sh clang-format" >&2; exit 1; }
	$(CLANG_FORMAT) -i $(FORMAT_FILES)

format-check:
	@command -v $(CLANG_FORMAT) >/dev/null || { echo "no $(CLANG_FORMAT): tools/install-deps.sh clang-format" >&2; exit 1; }
	$(CLANG_FORMAT) --dry-run -Werror $(FORMAT_FILES)

clean:
	rm -rf build build-tsan build-asan build-release build-fuzz build-torture build-torture-tsan
