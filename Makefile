# driftlock -- PGXS build
#
#   make && make install       build and install the extension
#   make installcheck          pg_regress tests (sql/ + expected/) on a temporary instance
#   make prove                 TAP tests (test/t/*.pl) with PostgreSQL::Test::Cluster
#   make unit [SANITIZE=1]     C unit tests of the detector core (test/unit/test_*.c)
#   make bench-build           build the benchmarks (test/bench/*.c), do not run them
#   make tools                 build the test tools (test/tools/mock_kafka)
#
# PGXS's "make check" is not supported for extensions and exits 0 without
# testing anything: use installcheck (it starts its own temporary instance).

EXTENSION  = driftlock
EXTVERSION = $(shell sed -n "s/^default_version[[:space:]]*=[[:space:]]*'\([^']*\)'.*/\1/p" $(EXTENSION).control)
ifeq ($(wildcard sql/$(EXTENSION)--$(EXTVERSION).sql),)
$(error sql/$(EXTENSION)--$(EXTVERSION).sql is missing: it is the install script of default_version $(EXTVERSION) in $(EXTENSION).control)
endif

MODULE_big = $(EXTENSION)
OBJS       = $(patsubst %.c,%.o,$(sort $(wildcard src/*.c src/cbad/*.c src/message/*.c)))
DATA       = $(sort $(wildcard sql/$(EXTENSION)--*.sql))

# Every sql/*.sql that is not an install or upgrade script is a pg_regress
# test; dropping sql/foo.sql + expected/foo.out in place is enough to run it.
REGRESS      = $(sort $(filter-out $(EXTENSION)--%,$(basename $(notdir $(wildcard sql/*.sql)))))
REGRESS_OPTS = --temp-instance=tmp_check_regress --temp-config=test/regress.conf

SHLIB_LINK += -lzstd -lrdkafka
PG_CPPFLAGS += -I$(srcdir)/src
# PostgreSQL's own headers (storage/bufpage.h, lib/ilist.h) define inline
# functions with unused parameters, and every V1 function or GUC hook has
# some, so -Wunused-parameter is switched off for the glue; everything else
# -Wextra reports is an error.  The standalone builds below keep it on.
PG_CFLAGS += -Wall -Wextra -Werror -Wno-unused-parameter

EXTRA_CLEAN = tmp_check tmp_check_regress results regression.diffs regression.out \
	$(UNIT_BINS) $(BENCH_BINS) $(TOOL_BINS)

# No LLVM bitcode for JIT: not needed, and it would require clang at install time.
override with_llvm = no

PG_CONFIG ?= pg_config
PGXS := $(shell $(PG_CONFIG) --pgxs)
include $(PGXS)

# PGXS does not track header dependencies: rebuild every object when a
# header changes (a changed struct layout must never mix old and new objects).
$(OBJS): $(wildcard src/*.h src/cbad/*.h src/message/*.h)

# ---------------------------------------------------------------------------
# Standalone C: the detector core (src/cbad) builds without PostgreSQL headers.
# ---------------------------------------------------------------------------
STANDALONE_CC     ?= $(CC)
STANDALONE_CFLAGS  = -O2 -g -Wall -Wextra -Werror -Isrc
SANITIZE_FLAGS     = -fsanitize=address,undefined -fno-omit-frame-pointer
ifeq ($(SANITIZE),1)
STANDALONE_CFLAGS += $(SANITIZE_FLAGS)
endif
# Plain C without PostgreSQL headers: the detector core (src/cbad) and the
# message parsing the worker uses (src/message), unit-tested and fuzzed alone.
CBAD_SRCS  = $(sort $(wildcard src/cbad/*.c src/message/*.c))
CBAD_HDRS  = $(wildcard src/cbad/*.h src/message/*.h)
CBAD_LIBS  = -lzstd -lm

UNIT_SRCS  = $(sort $(wildcard test/unit/test_*.c))
# other .c files in test/unit are helpers linked into every unit test
UNIT_HELPERS = $(sort $(filter-out $(UNIT_SRCS),$(wildcard test/unit/*.c)))
UNIT_BINS  = $(UNIT_SRCS:.c=)
BENCH_SRCS = $(sort $(wildcard test/bench/*.c))
BENCH_BINS = $(BENCH_SRCS:.c=)
TOOL_BINS  = test/tools/mock_kafka test/tools/demo_producer test/tools/produce_raw

.PHONY: unit bench-build tools prove

# Unit tests are always rebuilt (cheap), so switching SANITIZE=1 on or off
# never runs a stale binary.  Every test runs even after a failure.
unit:
ifeq ($(strip $(UNIT_SRCS)),)
	@echo "no unit tests"
else
	@fail=0; \
	for src in $(UNIT_SRCS); do \
		bin=$${src%.c}; \
		$(STANDALONE_CC) $(STANDALONE_CFLAGS) -o $$bin $$src $(UNIT_HELPERS) $(CBAD_SRCS) $(CBAD_LIBS) || exit 1; \
		echo "== $$bin"; \
		if ./$$bin; then echo "ok   $$bin"; else echo "FAIL $$bin"; fail=1; fi; \
	done; \
	exit $$fail
endif

bench-build: $(BENCH_BINS)
	@true

test/bench/%: test/bench/%.c $(CBAD_SRCS) $(CBAD_HDRS) $(wildcard test/bench/*.h)
	$(STANDALONE_CC) $(STANDALONE_CFLAGS) -o $@ $< $(CBAD_SRCS) $(CBAD_LIBS)

tools: $(TOOL_BINS)

test/tools/mock_kafka: test/tools/mock_kafka.c
	$(STANDALONE_CC) -O2 -g -Wall -Wextra -Werror -o $@ $< -lrdkafka

test/tools/demo_producer: test/tools/demo_producer.c
	$(STANDALONE_CC) -O2 -g -Wall -Wextra -Werror -o $@ $< -lrdkafka

test/tools/produce_raw: test/tools/produce_raw.c
	$(STANDALONE_CC) -O2 -g -Wall -Wextra -Werror -o $@ $< -lrdkafka

# TAP tests.  PGXS's prove_installcheck supplies PATH, PG_REGRESS, TESTDIR and
# the include path of PostgreSQL::Test::Cluster; test/perl holds our helpers.
# They test the installed extension: run "make install" first.
prove: tools
	$(prove_installcheck)

prove: PROVE_TESTS = test/t/*.pl
prove: PG_PROVE_FLAGS += -I $(srcdir)/test/perl
