# Bridge: `make run` to try it, `make test` to test it. See README.md.
PRESET ?= release
BUILD_DIR := build/$(PRESET)
BRIDGE := $(BUILD_DIR)/bridge
DEMO_DIR ?= demo-data
DEMO_ROWS ?= 5000000
ARGS ?=

.PHONY: all build binary bootstrap configure run test bench asan-test clean

all: build

bootstrap:
	@scripts/bootstrap

$(BUILD_DIR)/build.ninja:
	cmake --preset $(PRESET)

configure: $(BUILD_DIR)/build.ninja

build: configure
	cmake --build --preset $(PRESET)

# The binary alone (what `make run` needs), without the tests and benchmarks.
binary: configure
	cmake --build --preset $(PRESET) --target bridge

$(DEMO_DIR)/.complete: | binary
	$(BRIDGE) gen-demo --out $(DEMO_DIR) --rows $(DEMO_ROWS)
	touch $@

run: bootstrap
	@$(MAKE) --no-print-directory binary
	@$(MAKE) --no-print-directory $(DEMO_DIR)/.complete
	$(BRIDGE) serve --data $(DEMO_DIR) $(ARGS)

test: bootstrap
	@$(MAKE) --no-print-directory build
	ctest --preset $(PRESET)

bench: bootstrap
	@$(MAKE) --no-print-directory build
	bench/run

clean:
	rm -rf build
