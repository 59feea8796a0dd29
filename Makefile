# Thin wrapper over CMake and CTest. Everything real lives in CMakeLists.txt.
#   make            build (RelWithDebInfo) into build/
#   make test       build and run every test (CTest); last line is CTest's summary
#   make bench      build and run akbench (the main job)
#   make soak DURATION=3600   the torture tests for DURATION s, watched (tests/soak.sh)
#   make install PREFIX=/usr/local
#   make clean
BUILD ?= build
PREFIX ?= /usr/local
CMAKE ?= cmake
MAKEFLAGS += --no-print-directory
JOBS ?= $(shell nproc 2>/dev/null || echo 2)
CMAKE_ARGS ?=
BENCH_ARGS ?=
DURATION ?= 3600
SOAK_INTERVAL ?= 60

.PHONY: all configure test bench soak install clean

all: configure
	$(CMAKE) --build $(BUILD) -j $(JOBS)

configure:
	@test -f $(BUILD)/CMakeCache.txt || $(CMAKE) -S . -B $(BUILD) $(CMAKE_ARGS)

test: all
	cd $(BUILD) && ctest --output-on-failure -j $(JOBS)

bench: all
	$(BUILD)/bench/akbench --svg $(BUILD)/bench --json $(BUILD)/bench/results.json $(BENCH_ARGS)

soak: all
	sh tests/soak.sh $(BUILD) $(DURATION) $(SOAK_INTERVAL)

install: all
	$(CMAKE) --install $(BUILD) --prefix $(PREFIX)

clean:
	rm -rf $(BUILD)
