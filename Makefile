# greenlight: the two commands are `make run` and `make test` (see README.md).
SHELL := /bin/bash
JOBS ?= $(shell nproc)
BUILD_DIR ?= build
TEST_BUILD_DIR ?= build-test
CONFIG ?= deploy/config/demo.yaml

.PHONY: run test deps build build-test stress bench reproduce fuzz sanitize format clean

## run: install missing packages, build Release, start greenlightd on the demo data
run: deps build
	@./scripts/run-demo.sh $(BUILD_DIR) $(CONFIG)

## test: install missing packages, build with -Werror, run every test through ctest
test: deps build-test
	cd $(TEST_BUILD_DIR) && ctest --output-on-failure -j $(JOBS) --timeout 900 -LE stress

deps:
	@./scripts/install-deps.sh

build:
	cmake -S . -B $(BUILD_DIR) -DCMAKE_BUILD_TYPE=Release -DGREENLIGHT_BENCH=ON >/dev/null
	cmake --build $(BUILD_DIR) -j $(JOBS) --target greenlightd

build-test:
	cmake -S . -B $(TEST_BUILD_DIR) -DCMAKE_BUILD_TYPE=RelWithDebInfo -DGREENLIGHT_WERROR=ON >/dev/null
	cmake --build $(TEST_BUILD_DIR) -j $(JOBS)

## stress: the long soaks (crash loops, overload), see docs/TESTING.md
stress: deps build-test
	cd $(TEST_BUILD_DIR) && GREENLIGHT_STRESS=1 ctest --output-on-failure -L stress --timeout 3600

## bench: build Release benchmarks; see bench/README.md for each command
bench: deps
	cmake -S . -B $(BUILD_DIR) -DCMAKE_BUILD_TYPE=Release -DGREENLIGHT_BENCH=ON >/dev/null
	cmake --build $(BUILD_DIR) -j $(JOBS)

## reproduce: Let's Wait Awhile (Middleware 2021) figures beside the published ones (docs/REPRODUCE.md)
reproduce: deps
	@./scripts/reproduce.sh

## fuzz: libFuzzer targets, 60 s each (clang build in build-fuzz; docs/RELIABILITY.md)
fuzz: deps
	@./scripts/fuzz.sh

## sanitize: the test suite under ASan+UBSan, concurrency tests under TSan, clang builds (docs/RELIABILITY.md)
sanitize: deps
	@./scripts/sanitize.sh all --jobs $(JOBS)

format:
	clang-format -i $$(git ls-files '*.cc' '*.h')

clean:
	rm -rf $(BUILD_DIR) $(TEST_BUILD_DIR)
