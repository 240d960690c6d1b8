# unum — plain GNU Makefile. Targets: all (default), check, check-long, bench, fuzz,
# guest-tests, format, clean. SAN=1 builds with ASan+UBSan into build-san/.
MAKEFLAGS += --no-builtin-rules
CC      ?= gcc
ifeq ($(CC),cc)
CC      := gcc
endif
SAN     ?= 0
ifeq ($(SAN),1)
BUILD   ?= build-san
OPT     := -O1 -fno-omit-frame-pointer -fsanitize=address,undefined -fno-sanitize-recover=undefined
LDSAN   := -fsanitize=address,undefined
else
BUILD   ?= build
OPT     := -O2
LDSAN   :=
endif
CFLAGS  := -std=gnu11 $(OPT) -g -Wall -Wextra -Werror -Wno-unused-parameter \
           -fno-strict-aliasing -pthread -Isrc -MMD -MP
LDFLAGS := -pthread $(LDSAN)
LDLIBS  := -lz -lm -lucp -lucs -lsodium -lcrypto

LIB_SRC  := $(filter-out src/cli/main.c,$(wildcard src/*/*.c src/*/*/*.c))
LIB_OBJ  := $(LIB_SRC:%.c=$(BUILD)/obj/%.o)
UNIT_SRC := $(wildcard tests/unit/test_*.c)
UNIT_BIN := $(UNIT_SRC:tests/unit/%.c=$(BUILD)/tests/%)
DIFF_SRC := $(wildcard tests/difftest/*.c)
DIFF_OBJ := $(DIFF_SRC:%.c=$(BUILD)/obj/%.o)
GUEST_S  := $(wildcard guest/tests/*.S)
GUEST_BIN:= $(GUEST_S:guest/tests/%.S=$(BUILD)/guest-tests/%.bin)

.PHONY: all check check-long bench fuzz guest-tests format clean deps
all: $(BUILD)/unum $(GUEST_BIN) guest

$(BUILD)/obj/%.o: %.c
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -c $< -o $@

$(BUILD)/libunum.a: $(LIB_OBJ)
	@rm -f $@
	ar rcs $@ $^

$(BUILD)/unum: $(BUILD)/obj/src/cli/main.o $(BUILD)/libunum.a
	$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS)

TEST_COMMON := $(wildcard tests/common/*.c)
$(BUILD)/tests/%: tests/unit/%.c $(TEST_COMMON) $(BUILD)/libunum.a
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -Itests -o $@ $< $(TEST_COMMON) $(BUILD)/libunum.a $(LDFLAGS) -lcmocka $(LDLIBS)

# Differential tester: runs instruction forms natively and in the emulator.
$(BUILD)/difftest: $(DIFF_OBJ) $(BUILD)/libunum.a
	$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS)

# Freestanding test guests: flat binaries loaded at 1 MiB, entered in 32-bit protected mode.
GUEST_CFLAGS := -ffreestanding -nostdlib -static -fno-pic -no-pie -fno-asynchronous-unwind-tables
$(BUILD)/guest-tests/%.bin: guest/tests/%.S guest/tests/guest.ld guest/tests/common.h
	@mkdir -p $(dir $@)
	$(CC) $(GUEST_CFLAGS) -Iguest/tests -Wl,-T,guest/tests/guest.ld -Wl,--build-id=none -o $(@:.bin=.elf) $<
	objcopy -O binary $(@:.bin=.elf) $@

$(BUILD)/guest-tests/dsm_read_miss.bin $(BUILD)/guest-tests/dsm_write_miss.bin: guest/tests/dsm_miss.h

guest-tests: $(GUEST_BIN)

CHECK_DEPS := $(BUILD)/unum $(UNIT_BIN) $(GUEST_BIN) $(if $(DIFF_SRC),$(BUILD)/difftest) guest
check: $(CHECK_DEPS)
	@BUILD=$(BUILD) scripts/check.sh

check-long: $(CHECK_DEPS)
	@BUILD=$(BUILD) UNUM_LONG=1 scripts/check.sh

# The CPU benchmark program is freestanding so the same binary runs natively and
# under bench/emurun (the emulator with a minimal system-call layer).
$(BUILD)/bench/cpubench: bench/cpubench.c
	@mkdir -p $(dir $@)
	$(CC) -std=gnu11 -O2 -static -nostdlib -fno-math-errno -fno-tree-loop-distribute-patterns \
	    -fno-stack-protector -fno-pie -no-pie -o $@ $<

$(BUILD)/bench/emurun: bench/emurun.c $(BUILD)/libunum.a
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -o $@ $< $(BUILD)/libunum.a $(LDFLAGS) $(LDLIBS)

# Cluster transport round trips between two node processes (UCX_TLS choices as arguments).
$(BUILD)/bench/transport_rtt: bench/transport_rtt.c $(BUILD)/libunum.a
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -o $@ $< $(BUILD)/libunum.a $(LDFLAGS) $(LDLIBS)

bench: $(BUILD)/unum $(BUILD)/bench/cpubench $(BUILD)/bench/emurun $(BUILD)/bench/transport_rtt $(GUEST_BIN) guest
	@BUILD=$(BUILD) scripts/bench.sh
	@BUILD=$(BUILD) bench/boot.sh
	@BUILD=$(BUILD) bench/cluster.sh

# Coverage-guided fuzzing with libFuzzer (clang). FUZZ_TIME seconds per target.
FUZZ_TIME ?= 60
FUZZ_CFLAGS := -std=gnu11 -O1 -g -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined \
               -fno-strict-aliasing -pthread -Isrc -Itests -Wall -Wno-unused-parameter
build-fuzz/fuzz_exec: fuzz/fuzz_exec.c $(TEST_COMMON) $(LIB_SRC)
	@command -v clang >/dev/null || { echo "make fuzz needs clang and libclang-rt-14-dev (apt-get install clang libclang-rt-14-dev)"; exit 1; }
	@mkdir -p build-fuzz
	clang $(FUZZ_CFLAGS) -o $@ $^ $(LDLIBS)

build-fuzz/fuzz_platform: fuzz/fuzz_platform.c $(TEST_COMMON) $(LIB_SRC)
	@command -v clang >/dev/null || { echo "make fuzz needs clang and libclang-rt-14-dev (apt-get install clang libclang-rt-14-dev)"; exit 1; }
	@mkdir -p build-fuzz
	clang $(FUZZ_CFLAGS) -o $@ $^ $(LDLIBS)

build-fuzz/fuzz_wire: fuzz/fuzz_wire.c src/cluster/wire.c src/cluster/wire.h
	@command -v clang >/dev/null || { echo "make fuzz needs clang and libclang-rt-14-dev (apt-get install clang libclang-rt-14-dev)"; exit 1; }
	@mkdir -p build-fuzz
	clang $(FUZZ_CFLAGS) -o $@ fuzz/fuzz_wire.c src/cluster/wire.c -lsodium -lcrypto

fuzz: build-fuzz/fuzz_exec build-fuzz/fuzz_platform build-fuzz/fuzz_wire
	@mkdir -p build-fuzz/corpus-exec build-fuzz/corpus-platform build-fuzz/corpus-wire
	build-fuzz/fuzz_exec -max_total_time=$(FUZZ_TIME) -max_len=512 build-fuzz/corpus-exec
	build-fuzz/fuzz_platform -max_total_time=$(FUZZ_TIME) -max_len=4096 build-fuzz/corpus-platform
	build-fuzz/fuzz_wire -max_total_time=$(FUZZ_TIME) -max_len=8400 build-fuzz/corpus-wire

deps:
	scripts/install-deps.sh

format:
	clang-format -i $$(git ls-files '*.c' '*.h' | grep -v '^guest/tests/') # guest/tests: assembler headers

clean:
	rm -rf build build-san build-fuzz

-include $(shell find $(BUILD)/obj -name '*.d' 2>/dev/null)

# Default guest (guest/README.md): Debian's cloud kernel, busybox, the virtio modules and
# the programs in guest/programs/, in build/guest/. The kernel is resolved from Debian's
# archive when the script runs; the .debs are cached in build/guest/cache/.
GUEST_DIR    := build/guest
GUEST_ASSETS := $(GUEST_DIR)/vmlinuz $(GUEST_DIR)/initrd.cpio $(GUEST_DIR)/initrd.cpio.gz \
                $(GUEST_DIR)/kernel-version
GUEST_INPUTS := scripts/build-guest.sh scripts/gen-cpio.py guest/init \
                $(wildcard guest/programs/*.c guest/programs/*.h) \
                bench/cpubench.c
.PHONY: guest
$(GUEST_ASSETS) &: $(GUEST_INPUTS)
	@GUEST_DIR=$(GUEST_DIR) scripts/build-guest.sh

guest: $(GUEST_ASSETS) $(if $(filter-out build,$(BUILD)),$(BUILD)/guest)

# Other build directories (SAN=1) share the guest assets: unum finds them next to itself.
$(BUILD)/guest: | $(GUEST_ASSETS)
	@mkdir -p $(BUILD)
	ln -sfn ../$(GUEST_DIR) $@
