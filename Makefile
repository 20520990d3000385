# make run   : install missing Debian packages, build Release, start one node on 127.0.0.1:6969
# make test  : install missing Debian packages, build, run every test (unit, sim, e2e)
# make bench : side-by-side benchmarks against Debian's opentracker (not part of the tests)

BUILD       ?= build/release
BUILD_TEST  ?= build/test
BUILD_ASAN  ?= build/asan
JOBS        ?= $(shell nproc)
CMAKE_FLAGS ?=
ifeq ($(CI),true)
CMAKE_FLAGS += -DRT_WERROR=ON
endif

.PHONY: deps build run test test-asan bench clean

deps:
	@bash .ci/install-deps

build: deps
	cmake -S . -B $(BUILD) -DCMAKE_BUILD_TYPE=Release $(CMAKE_FLAGS) >/dev/null
	cmake --build $(BUILD) -j $(JOBS)

run: build
	@echo "announce URLs: http://127.0.0.1:6969/announce  udp://127.0.0.1:6969/announce"
	$(BUILD)/tracker/ringtracker --config conf/ringtracker.toml

test: deps
	cmake -S . -B $(BUILD_TEST) -DCMAKE_BUILD_TYPE=RelWithDebInfo $(CMAKE_FLAGS) >/dev/null
	cmake --build $(BUILD_TEST) -j $(JOBS)
	cd $(BUILD_TEST) && ctest --output-on-failure -j $(JOBS)
	$(MAKE) test-asan

# ASan+UBSan build of the unit and sim tests (e2e runs against the optimised build above).
test-asan: deps
	cmake -S . -B $(BUILD_ASAN) -DCMAKE_BUILD_TYPE=Debug -DRT_SANITIZE=ON $(CMAKE_FLAGS) >/dev/null
	cmake --build $(BUILD_ASAN) -j $(JOBS)
	cd $(BUILD_ASAN) && ctest --output-on-failure -j $(JOBS) -L 'unit|sim'

bench: build
	bash bench/compare.sh

clean:
	rm -rf build
