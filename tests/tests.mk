# tests/tests.mk - unit tests (cmocka), test peers, fuzz replay.
#
# Every tests/unit/test_NAME.c becomes $(BUILD)/tests/test_NAME, linked
# with the common objects and relayd's objects (main.o excluded, so tests
# can drive registrations and sessions directly).
# Every tests/peers/NAME.c becomes $(BUILD)/tests/NAME (helper programs
# the end-to-end scripts run); every tests/peers/lib/NAME.c becomes
# $(BUILD)/tests/NAME.so (fault injectors they preload).

UNIT_SRC   := $(wildcard tests/unit/test_*.c)
UNIT_BINS  := $(patsubst tests/unit/%.c,$(BUILD)/tests/%,$(UNIT_SRC))
PEER_SRC   := $(wildcard tests/peers/*.c)
PEER_BINS  := $(patsubst tests/peers/%.c,$(BUILD)/tests/%,$(PEER_SRC))
PEER_LIB_SRC := $(wildcard tests/peers/lib/*.c)
PEER_LIBS  := $(patsubst tests/peers/lib/%.c,$(BUILD)/tests/%.so,$(PEER_LIB_SRC))
RELAYD_LIB_OBJS := $(call obj,$(filter-out relayd/main.c,$(RELAYD_SRC)) \
		   $(COMMON_SRC))

.PHONY: tests-build
tests-build: $(UNIT_BINS) $(PEER_BINS) $(PEER_LIBS)

$(BUILD)/tests/%.so: $(BUILD)/pic/tests/peers/lib/%.o
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS) -shared -o $@ $^ -ldl

$(BUILD)/tests/test_%: $(BUILD)/obj/tests/unit/test_%.o $(RELAYD_LIB_OBJS)
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS) -o $@ $^ -lcmocka $(EV_LIBS) $(THREADS) -lm

# sha256.c is checked against libsodium, which only this test links.
$(BUILD)/tests/test_sha256: $(BUILD)/obj/tests/unit/test_sha256.o \
			    $(call obj,common/sha256.c common/proto.c)
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS) -o $@ $^ -lcmocka -lsodium

$(BUILD)/tests/%: $(BUILD)/obj/tests/peers/%.o $(call obj,$(COMMON_SRC))
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS) -o $@ $^ $(EV_LIBS) $(THREADS) -lm

# Unit tests include relayd's private headers.
$(BUILD)/obj/tests/unit/%.o: override CPPFLAGS += -Irelayd
