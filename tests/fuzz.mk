# tests/fuzz.mk - libFuzzer targets, and the replay of their corpus.
#
# A target NAME is tests/fuzz/fuzz_NAME.c (one LLVMFuzzerTestOneInput)
# with a seed corpus in tests/fuzz/corpus/NAME/ and an optional
# dictionary tests/fuzz/NAME.dict.  Adding one is one line below:
#
#   $(eval $(call fuzz_target,NAME,the sources it links))
#
# make check builds $(BUILD)/fuzz/replay_NAME with the normal compiler
# (and ASan+UBSan under SANITIZE=1), which tests/e2e/fuzz_replay.sh runs
# over the committed corpus.  make fuzz builds with clang's libFuzzer and
# fuzzes each target for FUZZ_SECONDS; new inputs go to
# $(FUZZ_BUILD)/corpus/NAME, crashes to $(FUZZ_BUILD)/crash-NAME-*.
# make fuzz-merge adds the new inputs that raise coverage to the
# committed corpus.

FUZZ_CC      ?= clang
FUZZ_BUILD   ?= build-fuzz
FUZZ_SECONDS ?= 60
FUZZ_FLAGS   ?= -max_len=512 -timeout=10
FUZZ_CFLAGS  := -std=c11 -g -O1 -D_GNU_SOURCE -Icommon -Itests/fuzz \
		-fsanitize=fuzzer,address,undefined \
		-fno-sanitize-recover=undefined -fno-omit-frame-pointer

FUZZ_TARGETS :=
FUZZ_REPLAYS :=

# fuzz_target NAME, SOURCES: the replay binary for make check, and the
# libFuzzer binary with its run and merge steps for make fuzz.
define fuzz_target
FUZZ_TARGETS += $(1)
FUZZ_REPLAYS += $$(BUILD)/fuzz/replay_$(1)

$$(BUILD)/fuzz/replay_$(1): $$(call obj,tests/fuzz/fuzz_$(1).c \
    tests/fuzz/replay.c $(2))
	@mkdir -p $$(dir $$@)
	$$(CC) $$(LDFLAGS) -o $$@ $$^

$$(FUZZ_BUILD)/fuzz_$(1): tests/fuzz/fuzz_$(1).c $(2) \
    $$(wildcard common/*.h tests/fuzz/*.h)
	@mkdir -p $$(dir $$@)
	$$(FUZZ_CC) $$(FUZZ_CFLAGS) -o $$@ tests/fuzz/fuzz_$(1).c $(2)

.PHONY: fuzz-run-$(1) fuzz-merge-$(1)
fuzz-run-$(1): $$(FUZZ_BUILD)/fuzz_$(1)
	@mkdir -p $$(FUZZ_BUILD)/corpus/$(1)
	$$(FUZZ_BUILD)/fuzz_$(1) $$(FUZZ_FLAGS) \
	    -max_total_time=$$(FUZZ_SECONDS) \
	    -artifact_prefix=$$(FUZZ_BUILD)/crash-$(1)- \
	    $$(if $$(wildcard tests/fuzz/$(1).dict),-dict=tests/fuzz/$(1).dict) \
	    $$(FUZZ_BUILD)/corpus/$(1) tests/fuzz/corpus/$(1)

fuzz-merge-$(1): $$(FUZZ_BUILD)/fuzz_$(1)
	$$(FUZZ_BUILD)/fuzz_$(1) -merge=1 $$(FUZZ_FLAGS) \
	    tests/fuzz/corpus/$(1) $$(FUZZ_BUILD)/corpus/$(1)
endef

$(eval $(call fuzz_target,proto,common/proto.c))
$(eval $(call fuzz_target,addr,common/proto.c common/net.c common/flags.c))
$(eval $(call fuzz_target,flags,common/flags.c))

# The fuzz objects see the fuzz header.
$(BUILD)/obj/tests/fuzz/%.o: override CPPFLAGS += -Itests/fuzz

tests-build: $(FUZZ_REPLAYS)

.PHONY: fuzz fuzz-build fuzz-merge
fuzz-build: $(addprefix $(FUZZ_BUILD)/fuzz_,$(FUZZ_TARGETS))
fuzz: fuzz-deps $(addprefix fuzz-run-,$(FUZZ_TARGETS))

.PHONY: fuzz-deps
fuzz-deps:
	@scripts/install-deps.sh fuzz
fuzz-merge: $(addprefix fuzz-merge-,$(FUZZ_TARGETS))

.PHONY: clean-fuzz
clean: clean-fuzz
clean-fuzz:
	rm -rf $(FUZZ_BUILD)
