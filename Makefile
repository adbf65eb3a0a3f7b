# MOSS top-level commands. Every target first installs missing Debian packages (idempotent).
BUILD_DIR ?= build
JOBS ?= $(shell nproc)
CMAKE_FLAGS ?=
ifeq ($(CI),true)
CMAKE_FLAGS += -DMOSS_WERROR=ON
endif

.PHONY: all deps configure build test demo bench clean fuzz

all: build

deps:
	@tools/install-deps.sh

configure: deps
	@cmake -S . -B $(BUILD_DIR) -DCMAKE_BUILD_TYPE=Release $(CMAKE_FLAGS) > /dev/null

build: configure
	@cmake --build $(BUILD_DIR) -j $(JOBS)

test: build
	@cd $(BUILD_DIR) && ctest --output-on-failure -j $(JOBS) --timeout 900

demo: build
	@tools/demo.sh $(BUILD_DIR)/bin

# The benches' JSON output (bench/out/<bench>.json) feeds bench/plot_results.py, which redraws the
# SVGs docs/benchmarks.md, docs/performance.md and docs/worker.md embed (docs/img/); the engine
# plot when bench/engine/compare_ort.py wrote bench/out/engine/summary.json.
bench: build
	@mkdir -p bench/out
	@bash -o pipefail -c 'bench/run_all.sh $(BUILD_DIR)/bin bench/out | tee bench/out/run_all.log'
	@/usr/bin/python3 bench/plot_results.py --in bench/out --out docs/img

# libFuzzer targets with AddressSanitizer and UBSan (clang), in their own build tree.
# FUZZ_SECONDS=0 (default): build, then replay each target's seed corpus once (seconds);
# FUZZ_SECONDS=N: build, then fuzz every target for N seconds, one after the other.
FUZZ_SECONDS ?= 0
fuzz: deps
	@CC=clang CXX=clang++ cmake -S . -B build-fuzz -DMOSS_FUZZ=ON -DMOSS_SANITIZE=ON \
	  -DMOSS_TESTS=OFF -DMOSS_BENCH=OFF -DCMAKE_BUILD_TYPE=RelWithDebInfo > /dev/null
	@cmake --build build-fuzz -j $(JOBS) --target moss_fuzz_targets
	@tools/run-fuzz.sh build-fuzz/fuzz $(FUZZ_SECONDS)

clean:
	rm -rf $(BUILD_DIR) build-fuzz
