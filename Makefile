# Thin wrapper over CMake and CTest. Everything real lives in CMakeLists.txt.
#   make            build (RelWithDebInfo) into build/
#   make test       build and run every test (CTest); last line is CTest's summary
#   make bench      build and run akbench (the main job)
#   make soak DURATION=3600   the torture tests for DURATION s, watched (tests/soak.sh)
#   make bench-server  akws --sync atomkit vs --sync mutex under akload (doc/akload.md);
#                   longer: make bench-server BENCH_SERVER_ARGS="--reps 5 --window 5"
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
BENCH_SERVER_ARGS ?=

.PHONY: all configure test bench bench-server soak install clean

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

bench-server: all
	@mkdir -p $(BUILD)/bench-server
	{ $(BUILD)/tools/akbench_server --akws $(BUILD)/examples/wsserver/akws --akload $(BUILD)/tools/akload \
	  --node-modules $(BUILD)/npm/node_modules --svg $(BUILD)/bench-server \
	  --json $(BUILD)/bench-server/server.json $(BENCH_SERVER_ARGS); echo $$? > $(BUILD)/bench-server/rc; } \
	  | tee $(BUILD)/bench-server/server.txt; exit $$(cat $(BUILD)/bench-server/rc)

install: all
	$(CMAKE) --install $(BUILD) --prefix $(PREFIX)

clean:
	rm -rf $(BUILD)
