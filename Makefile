# relayd + librelayshim - plain make, no configure step.
#
#   make                 build everything into build/
#   make check           install test dependencies, build, run every test
#   make check SANITIZE=1  the same under ASan+UBSan (into build-san/)
#   make install PREFIX=/usr/local DESTDIR=
#
# Local overrides (CC, CFLAGS, ...) may go in config.mak.
-include config.mak

VERSION    := 0.1.0
CC         ?= cc
PREFIX     ?= /usr/local
DESTDIR    ?=
BINDIR     ?= $(PREFIX)/bin
LIBDIR     ?= $(PREFIX)/lib
MANDIR     ?= $(PREFIX)/share/man
UNITDIR    ?= $(PREFIX)/lib/systemd/system
WERROR     ?= 1
SANITIZE   ?= 0

ifeq ($(SANITIZE),1)
BUILD      ?= build-san
SAN_FLAGS  := -fsanitize=address,undefined -fno-sanitize-recover=all \
              -fno-omit-frame-pointer
else
BUILD      ?= build
SAN_FLAGS  :=
endif

WARN := -Wall -Wextra -Wstrict-prototypes -Wmissing-prototypes \
	-Wmissing-declarations -Wshadow -Wpointer-arith -Wcast-qual \
	-Wwrite-strings -Wformat=2 -Wundef -Wvla -Wnull-dereference
ifeq ($(WERROR),1)
WARN += -Werror
endif

OPT      ?= -O2 -g
# "override": flags given on the command line (make CFLAGS=...) are kept,
# and these still added: the standard, the warnings, the dependency files.
# Optimisation is OPT (make OPT=-O0).
override CPPFLAGS += -D_GNU_SOURCE -DRELAY_VERSION='"$(VERSION)"' -Icommon
override CFLAGS   += -std=c11 $(OPT) $(WARN) $(SAN_FLAGS) \
		     -fstack-protector-strong -D_FORTIFY_SOURCE=2 -MMD -MP
override LDFLAGS  += $(SAN_FLAGS) -Wl,-z,relro,-z,now
EV_LIBS  := -lev
THREADS  := -pthread

COMMON_SRC := common/log.c common/proto.c common/net.c common/pump.c \
	      common/auth.c common/sha256.c common/proxyproto.c common/flags.c \
	      common/fdpass.c common/accept_pause.c common/linger.c
RELAYD_SRC := $(wildcard relayd/*.c)
HELPER_SRC := shim/helper.c shim/client.c shim/wake.c shim/standalone.c
SHIM_SRC   := shim/shim.c

obj = $(patsubst %.c,$(BUILD)/obj/%.o,$(1))
pic = $(patsubst %.c,$(BUILD)/pic/%.o,$(1))

RELAYD   := $(BUILD)/bin/relayd
HELPER   := $(BUILD)/bin/relayshim
SHIMLIB  := $(BUILD)/lib/librelayshim.so
PROGRAMS := $(RELAYD) $(if $(wildcard $(HELPER_SRC)),$(HELPER)) \
	    $(if $(wildcard $(SHIM_SRC)),$(SHIMLIB))

.PHONY: all check demo install uninstall clean deps lint format fuzz bench
all: $(PROGRAMS)

$(BUILD)/obj/%.o: %.c
	@mkdir -p $(dir $@)
	$(CC) $(CPPFLAGS) $(CFLAGS) -c $< -o $@

$(BUILD)/pic/%.o: %.c
	@mkdir -p $(dir $@)
	$(CC) $(CPPFLAGS) $(CFLAGS) -fPIC -fvisibility=hidden -c $< -o $@

$(RELAYD): $(call obj,$(RELAYD_SRC) $(COMMON_SRC))
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS) -o $@ $^ $(EV_LIBS) $(THREADS) -lm

$(HELPER): $(call obj,$(HELPER_SRC) $(COMMON_SRC))
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS) -o $@ $^ $(EV_LIBS) $(THREADS) -lm

# The shim runs inside other people's servers: only libc and libdl, and
# only its hooks exported (-fvisibility=hidden above).
$(SHIMLIB): $(call pic,$(SHIM_SRC) common/proto.c common/flags.c \
		    common/fdpass.c)
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS) -shared -o $@ $^ -ldl $(THREADS)

# Objects of programs built in one step are never deleted as intermediates.
.SECONDARY:

# Tests, examples, fuzzers and benchmarks each own a fragment.
-include $(wildcard tests/*.mk examples/*.mk bench/*.mk)

deps:
	@scripts/install-deps.sh

demo:
	@scripts/install-deps.sh demo
	@$(MAKE) --no-print-directory all
	@BUILD=$(BUILD) scripts/demo.sh

check: deps
	@$(MAKE) --no-print-directory all tests-build
	@BUILD=$(BUILD) SANITIZE=$(SANITIZE) tests/run.sh

install: all
	install -d $(DESTDIR)$(BINDIR) $(DESTDIR)$(LIBDIR) \
	    $(DESTDIR)$(MANDIR)/man8 $(DESTDIR)$(MANDIR)/man7 \
	    $(DESTDIR)$(MANDIR)/man1
	install -m 755 $(RELAYD) $(DESTDIR)$(BINDIR)/relayd
	$(if $(wildcard $(HELPER)),install -m 755 $(HELPER) $(DESTDIR)$(BINDIR)/relayshim)
	$(if $(wildcard $(SHIMLIB)),install -m 755 $(SHIMLIB) $(DESTDIR)$(LIBDIR)/librelayshim.so)
	for m in $(wildcard man/*.8); do install -m 644 $$m $(DESTDIR)$(MANDIR)/man8/; done
	for m in $(wildcard man/*.7); do install -m 644 $$m $(DESTDIR)$(MANDIR)/man7/; done
	for m in $(wildcard man/*.1); do install -m 644 $$m $(DESTDIR)$(MANDIR)/man1/; done
	$(if $(wildcard scripts/relay-run),install -m 755 scripts/relay-run $(DESTDIR)$(BINDIR)/relay-run)
	$(if $(wildcard scripts/relayctl),install -m 755 scripts/relayctl $(DESTDIR)$(BINDIR)/relayctl)
	$(if $(wildcard scripts/relayd.service),install -d $(DESTDIR)$(UNITDIR) && \
	    sed 's|@BINDIR@|$(BINDIR)|g' scripts/relayd.service > $(DESTDIR)$(UNITDIR)/relayd.service)

uninstall:
	rm -f $(DESTDIR)$(BINDIR)/relayd $(DESTDIR)$(BINDIR)/relayshim \
	    $(DESTDIR)$(LIBDIR)/librelayshim.so $(DESTDIR)$(BINDIR)/relay-run \
	    $(DESTDIR)$(BINDIR)/relayctl $(DESTDIR)$(UNITDIR)/relayd.service
	rm -f $(addprefix $(DESTDIR)$(MANDIR)/man8/,$(notdir $(wildcard man/*.8)))
	rm -f $(addprefix $(DESTDIR)$(MANDIR)/man7/,$(notdir $(wildcard man/*.7)))
	rm -f $(addprefix $(DESTDIR)$(MANDIR)/man1/,$(notdir $(wildcard man/*.1)))

lint:
	cppcheck --quiet --error-exitcode=1 --enable=warning,portability \
	    --std=c11 --library=posix -D_GNU_SOURCE -Icommon \
	    --suppress=missingIncludeSystem \
	    --suppress=readdirCalled \
	    common relayd shim examples
	@command -v mandoc >/dev/null && mandoc -Tlint -Wwarning man/* || true

format:
	clang-format -i $(wildcard common/*.[ch] relayd/*.[ch] shim/*.[ch])

clean:
	rm -rf build build-san

-include $(shell find $(BUILD) -name '*.d' 2>/dev/null)
