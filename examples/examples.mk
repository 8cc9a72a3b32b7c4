# examples/examples.mk - the example servers (included by the Makefile).
#
# Every examples/NAME_server.c becomes $(BUILD)/examples/NAME_server,
# linked with the shared relay client (examples/relay_client.c) and the
# common modules it uses.  `make examples` builds just these; `make all`
# and `make tests-build` build them too, because tests/e2e/examples.sh
# runs them.

EXAMPLE_SRC  := $(wildcard examples/*_server.c)
EXAMPLES     := $(patsubst examples/%.c,$(BUILD)/examples/%,$(EXAMPLE_SRC))
EXAMPLE_OBJS := $(call obj,examples/relay_client.c common/net.c \
		common/proto.c common/pump.c common/flags.c)

.PHONY: examples
examples: $(EXAMPLES)
all: $(EXAMPLES)
tests-build: $(EXAMPLES)

$(BUILD)/examples/%: $(BUILD)/obj/examples/%.o $(EXAMPLE_OBJS)
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS) -o $@ $^ -lev
