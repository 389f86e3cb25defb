# Entry points; the real build is CMake. Every target installs missing Debian packages first.
BUILD    ?= build
BUILD_SAN ?= build-san
JOBS     ?= $(shell nproc)
CMAKE_FLAGS ?=

.PHONY: all deps deps-test build run test test-fast test-san bench fuzz clean

all: build

deps:
	@sh scripts/install-deps.sh

deps-test:
	@sh scripts/install-deps.sh --test

build: deps
	@cmake -S . -B $(BUILD) -DCMAKE_BUILD_TYPE=RelWithDebInfo $(CMAKE_FLAGS) >/dev/null
	@cmake --build $(BUILD) -j $(JOBS)

# The main job: start omnid on the embedded default and use it (scripts/demo.sh).
run: build
	@sh scripts/demo.sh $(BUILD)

# The whole suite: normal build, then the ASan+UBSan build.
test: test-fast test-san

test-fast: deps-test build
	@cd $(BUILD) && ctest --output-on-failure -j $(JOBS) --timeout 600

test-san: deps-test
	@cmake -S . -B $(BUILD_SAN) -DCMAKE_BUILD_TYPE=Debug -DOMNID_SANITIZE=ON $(CMAKE_FLAGS) >/dev/null
	@cmake --build $(BUILD_SAN) -j $(JOBS)
	@cd $(BUILD_SAN) && ctest --output-on-failure -j $(JOBS) --timeout 900 -LE nosan

bench: build
	@sh scripts/bench.sh $(BUILD)

fuzz: deps
	@CC=clang cmake -S . -B build-fuzz -DOMNID_FUZZ=ON >/dev/null
	@cmake --build build-fuzz -j $(JOBS)
	@sh scripts/fuzz.sh build-fuzz

clean:
	rm -rf $(BUILD) $(BUILD_SAN) build-fuzz
