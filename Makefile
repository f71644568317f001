# The two commands of the README:
#   make run    install what is missing, build, start the daemon (127.0.0.1:5000)
#   make test   install what is missing, build, run the whole test suite
#               (the format check, unit + integration, the suite again under ASan+UBSan,
#               parser fuzzers briefly, then the package guard over all three builds)
# More: make check (the suite once, no sanitizers), make bench, make fuzz,
#       make conformance (every ONNX backend node test through the HTTP API, with the pass rate).
BUILD ?= build
SAN_BUILD ?= build-sanitize
FUZZ_BUILD ?= build-fuzz
FUZZ_SECONDS ?= 20
JOBS ?= $(shell nproc)

.PHONY: run test check sanitize fuzz packages format format-check bench build clean conformance \
        install

build:
	scripts/setup.sh $(BUILD)

run: build
	$(BUILD)/src/deviceopsd $(ARGS)

check: build
	cd $(BUILD) && ctest --output-on-failure -j $(JOBS)

sanitize: build
	scripts/setup.sh $(SAN_BUILD) -DDEVICEOPS_SANITIZE=ON -DDEVICEOPS_BENCH=OFF \
	  -DCMAKE_BUILD_TYPE=RelWithDebInfo "-DCMAKE_CXX_FLAGS_RELWITHDEBINFO=-O1 -g1"
	cd $(SAN_BUILD) && ASAN_OPTIONS=detect_leaks=1 UBSAN_OPTIONS=print_stacktrace=1 \
	  LSAN_OPTIONS=suppressions=$(CURDIR)/scripts/lsan.supp:print_suppressions=0 \
	  ctest --output-on-failure -j $(JOBS)

fuzz: build
	scripts/fuzz.sh $(FUZZ_BUILD) $(FUZZ_SECONDS)

# Every system header, library, Python module and program the builds, tests and scripts use
# must come from a package that scripts/setup.sh installs (scripts/packages.txt).
packages:
	scripts/check-packages.sh $(BUILD) $(wildcard $(SAN_BUILD) $(FUZZ_BUILD))

# The formatting is automatic (.clang-format): `make format` applies it, make test checks it.
FORMATTED = $(shell git ls-files 'src/*.cc' 'src/*.h' 'tests/*.cc' 'tests/*.h' 'bench/*.cc' \
              'bench/*.h' 'fuzz/*.cc' 'fuzz/*.h')
format:
	@clang-format-14 -i $(FORMATTED)

format-check: build
	@echo "clang-format-14 --dry-run -Werror ($(words $(FORMATTED)) files)"
	@clang-format-14 --dry-run -Werror $(FORMATTED)

test: format-check check sanitize fuzz
	$(MAKE) packages

bench:
	scripts/setup.sh --bench $(BUILD)
	bench/run.sh $(BUILD)

conformance: build
	cmake --build $(BUILD) --target deviceops_onnx_conformance
	$(BUILD)/tests/deviceops_onnx_conformance $(ARGS)

# Installs the daemon, the CLI, the trainer and the shell completion (cmake/install.cmake):
#   make install [PREFIX=/usr/local] [DESTDIR=/tmp/stage]
PREFIX ?= /usr/local
install: build
	DESTDIR="$(DESTDIR)" cmake --install $(BUILD) --prefix "$(PREFIX)"

clean:
	rm -rf $(BUILD) $(SAN_BUILD) $(FUZZ_BUILD)
