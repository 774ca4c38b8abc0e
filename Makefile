# Yilian: `make run` and `make test` do all set-up on a fresh Debian 12 machine (as root).
JOBS      ?= $(shell nproc)
BUILD     ?= build
ASAN      ?= build-asan
DATA      ?= ./data
DEMO_DATA ?= ./demo-data
CMAKE_GEN ?=
# Warnings are errors in the project's own test builds only; users' builds (make run) take them
# as warnings.
WERROR    ?= OFF

.PHONY: deps build build-asan run demo test test-normal test-asan bench fuzz format format-check clean ecg-model

SOURCES = find common storage identity pacs reading ecg teleconsult viewer edge lab pathology app net tests bench fuzz \( -name '*.cpp' -o -name '*.h' \)

deps:
	scripts/install-deps.sh

# ccache (when installed) shares compiled objects between clones of the project on one
# machine: paths are hashed relative to the clone.
export CCACHE_BASEDIR := $(CURDIR)
export CCACHE_NOHASHDIR := 1

# Optimised, with line tables for backtraces (-g1: full debug information costs a third of
# the build time).
build: deps
	cmake -S . -B $(BUILD) -DCMAKE_BUILD_TYPE=RelWithDebInfo \
	  -DCMAKE_CXX_FLAGS_RELWITHDEBINFO="-O2 -g1 -DNDEBUG" -DYILIAN_WERROR=$(WERROR) $(CMAKE_GEN)
	cmake --build $(BUILD) -j $(JOBS)

# AddressSanitizer and UndefinedBehaviorSanitizer, with clang: a second compiler's warnings,
# and half the compile time of GCC's sanitizer instrumentation. Debug (assertions on) at -O1,
# as the sanitizers' authors advise: the instrumented suite runs several times faster than at -O0.
build-asan: deps
	CC=clang CXX=clang++ cmake -S . -B $(ASAN) -DCMAKE_BUILD_TYPE=Debug -DYILIAN_SANITIZE=ON \
	  -DCMAKE_C_FLAGS_DEBUG="-O1 -g" -DCMAKE_CXX_FLAGS_DEBUG="-O1 -g" \
	  -DYILIAN_BENCH=OFF -DYILIAN_WERROR=$(WERROR) $(CMAKE_GEN)
	cmake --build $(ASAN) -j $(JOBS)

run: build
	$(BUILD)/yilian serve --data $(DATA)

# The beat classifier trained again from the MIT-BIH development records (ecg/model/beats.yml,
# built into the library; `yilian ecg eval --classes --db $(ECG_DB)` scores it by record).
ECG_DB ?= ../shared/data/mitdb
ecg-model: build
	$(BUILD)/yilian ecg train --db $(ECG_DB) -o ecg/model/beats.yml
	cmake --build $(BUILD) -j $(JOBS)

# A demo consortium with studies, users and cases in ./demo-data (kept between runs).
demo: build
	$(BUILD)/yilian demo --data $(DEMO_DATA)

test-normal: build
	cd $(BUILD) && ctest --output-on-failure -j $(JOBS)

test-asan: build-asan
	cd $(ASAN) && ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
	  ctest --output-on-failure -j $(JOBS)

test: WERROR = ON
test-normal test-asan build-asan: WERROR = ON
test: format-check test-normal test-asan

bench: build
	YILIAN_BENCH_DEPS=1 scripts/install-deps.sh
	bench/ingest/run.sh
	bench/queue/run.sh
	bench/dicomweb/run.sh
	bench/ecg/run.sh
	bench/ws/run.sh
	bench/cluster/run.sh
	bench/edge/run.sh
	bench/wsi/run.sh

# libFuzzer targets for every parser of outside bytes, FUZZ_SECONDS each (default 60).
fuzz: deps
	scripts/fuzz.sh

WEB       = viewer/web
WEB_FILES = 'src/**/*.{ts,tsx,css}' 'e2e/*.mjs' build.mjs tsconfig.json package.json index.html ../ohif/install.mjs ../ohif/package.json

$(WEB)/node_modules/.package-lock.json: $(WEB)/package.json $(WEB)/package-lock.json
	cd $(WEB) && npm ci --no-audit --no-fund --loglevel=error

format: $(WEB)/node_modules/.package-lock.json
	$(SOURCES) | xargs clang-format -i
	cd $(WEB) && npx prettier --log-level warn --write $(WEB_FILES)

format-check: deps $(WEB)/node_modules/.package-lock.json
	$(SOURCES) | xargs clang-format --dry-run -Werror
	cd $(WEB) && npx prettier --check $(WEB_FILES)

clean:
	rm -rf $(BUILD) $(ASAN)
