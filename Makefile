# cmpca build: `make` (release, build/release), `make asan` (ASan+UBSan,
# build/asan), `make fuzz` (libFuzzer targets, build/fuzz), `make test`.
# Sources are found by directory; adding a file needs no edit here.

PKGS     := libcrypto libssl libmicrohttpd gnutls sqlite3 libpq inih jansson libp11 libcurl
BUILD    ?= build/release
SAN      ?=
CC       ?= cc
OPT      ?= -O2

PKG_CFLAGS := $(shell pkg-config --cflags $(PKGS))
PKG_LIBS   := $(shell pkg-config --libs $(PKGS))
CMOCKA_LIBS := $(shell pkg-config --libs cmocka)

WARN     := -Wall -Wextra -Werror -Wshadow -Wformat=2 -Wno-unused-parameter
CPPFLAGS += -DCMPCA_VERSION=\"0.1.0\" -D_GNU_SOURCE -DOPENSSL_API_COMPAT=30000 -DOPENSSL_NO_DEPRECATED_3_0_IGNORE -Isrc -Iclient/include -Itests/lib -Ibench/lib $(PKG_CFLAGS)
CFLAGS   += -std=c11 $(OPT) -g $(WARN) -fno-strict-aliasing -MMD -MP
ifeq ($(FUZZ),1)
CFLAGS   += -fsanitize=fuzzer-no-link
endif
ifeq ($(SAN),1)
CFLAGS   += -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined
LDFLAGS  += -fsanitize=address,undefined
endif
LDLIBS   += $(PKG_LIBS) -lpthread -lm

LIB_SRC    := $(shell find src -name '*.c' ! -path 'src/cli/*' | sort)
CLI_SRC    := $(sort $(wildcard src/cli/*.c))
CLIENT_SRC := $(sort $(wildcard client/src/*.c))
CLIENTCLI_SRC := $(sort $(wildcard client/cli/*.c))
TEST_SRC   := $(sort $(wildcard tests/unit/test_*.c))
TESTLIB_SRC := $(sort $(wildcard tests/lib/*.c))
TOOL_SRC   := $(sort $(wildcard tests/tools/*.c))
BENCH_SRC  := $(sort $(wildcard bench/*.c))
BENCHLIB_SRC := $(sort $(wildcard bench/lib/*.c))
FUZZ_SRC   := $(sort $(wildcard tests/fuzz/fuzz_*.c))

obj = $(patsubst %.c,$(BUILD)/obj/%.o,$(1))

LIB      := $(BUILD)/libcmpca.a
CLIENTLIB := $(BUILD)/libcmpclient.a
TESTLIB  := $(BUILD)/libcmpcatest.a
BENCHLIB := $(BUILD)/libcmpcabench.a
CMPCA    := $(BUILD)/cmpca
CMPENROLL := $(BUILD)/cmpenroll
TESTS    := $(patsubst tests/unit/%.c,$(BUILD)/tests/%,$(TEST_SRC))
TOOLS    := $(patsubst tests/tools/%.c,$(BUILD)/tools/%,$(TOOL_SRC))
BENCHES  := $(patsubst bench/%.c,$(BUILD)/bench/%,$(BENCH_SRC))

.PHONY: all release asan fuzz test test-quick bench clean
all: $(CMPCA) $(CMPENROLL) $(TESTS) $(TOOLS) $(BENCHES)
release: all

asan:
	$(MAKE) BUILD=build/asan SAN=1 OPT=-O1 all

FUZZ_CC  ?= clang
fuzz:
	$(MAKE) BUILD=build/fuzz CC=$(FUZZ_CC) OPT=-O1 SAN=1 FUZZ=1 \
	  $(patsubst tests/fuzz/%.c,build/fuzz/fuzz/%,$(FUZZ_SRC))

$(BUILD)/obj/%.o: %.c
	@mkdir -p $(dir $@)
	$(CC) $(CPPFLAGS) $(CFLAGS) -c -o $@ $<

$(LIB): $(call obj,$(LIB_SRC))
	@mkdir -p $(dir $@)
	rm -f $@ && ar rcs $@ $^

$(CLIENTLIB): $(call obj,$(CLIENT_SRC))
	@mkdir -p $(dir $@)
	rm -f $@ && ar rcs $@ $^

$(TESTLIB): $(call obj,$(TESTLIB_SRC))
	@mkdir -p $(dir $@)
	rm -f $@ && ar rcs $@ $^

$(BENCHLIB): $(call obj,$(BENCHLIB_SRC))
	@mkdir -p $(dir $@)
	rm -f $@ && ar rcs $@ $^

$(CMPCA): $(call obj,$(CLI_SRC)) $(LIB) $(CLIENTLIB)
	$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS)

$(CMPENROLL): $(call obj,$(CLIENTCLI_SRC)) $(CLIENTLIB)
	$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS)

$(BUILD)/tests/%: $(BUILD)/obj/tests/unit/%.o $(TESTLIB) $(LIB) $(CLIENTLIB)
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS) $(CMOCKA_LIBS)

$(BUILD)/tools/%: $(BUILD)/obj/tests/tools/%.o $(TESTLIB) $(LIB) $(CLIENTLIB)
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS)

# LD_PRELOAD fault-injection shims for the e2e tests: shared objects,
# built without sanitizers (they load into ASan binaries too)
PRELOAD_SRC := $(sort $(wildcard tests/tools/preload/*.c))
PRELOADS := $(patsubst tests/tools/preload/%.c,$(BUILD)/tools/%.so,$(PRELOAD_SRC))
all: $(PRELOADS)

$(BUILD)/tools/%.so: tests/tools/preload/%.c
	@mkdir -p $(dir $@)
	$(CC) -std=c11 -O2 -Wall -Wextra -Werror -D_GNU_SOURCE -fPIC -shared -o $@ $<

$(BUILD)/bench/%: $(BUILD)/obj/bench/%.o $(BENCHLIB) $(TESTLIB) $(LIB) $(CLIENTLIB)
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS)

build/fuzz/fuzz/%: build/fuzz/obj/tests/fuzz/%.o $(BENCHLIB) $(TESTLIB) $(LIB) $(CLIENTLIB)
	@mkdir -p $(dir $@)
	$(CC) -fsanitize=fuzzer,address,undefined -o $@ $^ $(LDLIBS)

test:
	./scripts/test.sh

bench: all
	./bench/run.sh

clean:
	rm -rf build

-include $(shell find build -name '*.d' 2>/dev/null)
