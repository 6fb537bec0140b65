# Bridge: `make run` to try it, `make test` to test it. See README.md.
PRESET ?= release
BUILD_DIR := build/$(PRESET)
BRIDGE := $(BUILD_DIR)/bridge
DEMO_DIR ?= demo-data
DEMO_ROWS ?= 5000000
ARGS ?=
FUZZ_SECONDS ?= 60
FUZZ_SMOKE_SECONDS ?= 20

.PHONY: all build binary bootstrap configure run test test-asan fuzz bench clean

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

# The whole suite: unit, integration and interop tests; then the IPC decoders again under
# ASan + UBSan (every bad input), and a short fuzzing smoke run of each decoder.
test: bootstrap
	@$(MAKE) --no-print-directory build
	ctest --preset $(PRESET)
	@$(MAKE) --no-print-directory test-asan
	FUZZ_SECONDS=$(FUZZ_SMOKE_SECONDS) scripts/fuzz

ASAN_TESTS := bad_input_test reader_test golden_test http_core_test auth_test flight_data_test \
              input_test cache_test cache_key_test writer_footer_test flightsql_test
test-asan:
	cmake --preset asan >/dev/null
	cmake --build --preset asan --target $(ASAN_TESTS)
	ctest --preset asan -R 'BadInputTest|ReaderTest|ReaderGoldenTest|GoldenTest|GoldenFilesTest|ParseQuery|NegotiateFormat|PercentDecode|RequestFuzz|RowsQuery|ErrorBody|Token|Base64|UsersFile|Authenticator|Password|FlightDataCodec|FlightStatus|Ticket|QueryWithInput|WriteParquet|DescribeSchema|CacheTest|NormalizeSql|DigestKey|EntryId|WriteEncodedMessage|ReadFileFooter|OpenDataFile|ParseRange|PlanFileResponse|FilesTest|FlightSqlTest'

fuzz: bootstrap
	FUZZ_SECONDS=$(FUZZ_SECONDS) scripts/fuzz

bench: bootstrap
	@$(MAKE) --no-print-directory build
	bench/run

clean:
	rm -rf build
