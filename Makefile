# driftlock -- PGXS build
#
#   make && make install       build and install the extension
#   make installcheck          pg_regress tests (sql/ + expected/) on a temporary instance
#   make prove                 TAP tests (test/t/*.pl) with PostgreSQL::Test::Cluster
#   make unit [SANITIZE=1]     C unit tests of the detector core (test/unit/test_*.c)
#   make bench-build           build the benchmarks (test/bench/*.c), do not run them
#   make tools                 build the test tools (test/tools/mock_kafka, otlp_gen, ...)
#   make check-fast            the edit-test loop, about a minute: unit tests, the
#                              static checks, pg_regress and two worker TAP tests
#                              (after make install, as a user other than root)
#
# PGXS's "make check" is not supported for extensions and exits 0 without
# testing anything: use installcheck (it starts its own temporary instance).

# the rules for sql/ below come before PGXS's: keep its `all` the default
.DEFAULT_GOAL := all

EXTENSION  = driftlock
EXTVERSION = $(shell sed -n "s/^default_version[[:space:]]*=[[:space:]]*'\([^']*\)'.*/\1/p" $(EXTENSION).control)
ifeq ($(wildcard sql/parts/$(EXTVERSION).sql),)
$(error sql/parts/$(EXTVERSION).sql is missing: it holds the changes of default_version $(EXTVERSION) in $(EXTENSION).control)
endif

MODULE_big = $(EXTENSION)
OBJS       = $(patsubst %.c,%.o,$(sort $(wildcard src/*.c src/cbad/*.c src/message/*.c)))

# Install and upgrade scripts.  A released version's install script is kept
# as it was (sql/driftlock--0.1.0.sql); each later version's changes are
# written once, in sql/parts/<version>.sql, with the privileges on what it
# adds in sql/parts/<version>-privileges.sql, and both scripts are built
# from them:
#   upgrade = the version's changes + their privileges
#   install = 0.1.0's install script + the upgrade
# so a new database is an updated one by construction (test/t/050_upgrade.pl
# compares the two all the same).
DATA       = sql/$(EXTENSION)--0.1.0.sql
DATA_built = sql/$(EXTENSION)--$(EXTVERSION).sql sql/$(EXTENSION)--0.1.0--$(EXTVERSION).sql
UPGRADE_PARTS = sql/parts/$(EXTVERSION).sql sql/parts/$(EXTVERSION)-privileges.sql

sql/$(EXTENSION)--$(EXTVERSION).sql: sql/$(EXTENSION)--0.1.0.sql $(UPGRADE_PARTS)
	{ echo '/* $(EXTENSION)--$(EXTVERSION).sql: built by the Makefile, do not edit */'; \
	  echo; \
	  echo '-- complain if script is sourced in psql, rather than via CREATE EXTENSION'; \
	  printf '%s\n' '\echo Use "CREATE EXTENSION $(EXTENSION)" to load this file. \quit'; \
	  echo; sed '/^-- complain if script is sourced/d; /^\\echo Use /d' sql/$(EXTENSION)--0.1.0.sql; \
	  for f in $(UPGRADE_PARTS); do echo; cat $$f; done; } > $@

sql/$(EXTENSION)--0.1.0--$(EXTVERSION).sql: $(UPGRADE_PARTS)
	{ echo '/* $(EXTENSION)--0.1.0--$(EXTVERSION).sql: built by the Makefile, do not edit */'; \
	  echo; \
	  echo '-- complain if script is sourced in psql, rather than via ALTER EXTENSION'; \
	  printf '%s\n' '\echo Use "ALTER EXTENSION $(EXTENSION) UPDATE" to load this file. \quit'; \
	  for f in $^; do echo; cat $$f; done; } > $@

# Every sql/*.sql that is not an install or upgrade script is a pg_regress
# test; dropping sql/foo.sql + expected/foo.out in place is enough to run it.
REGRESS      = $(sort $(filter-out $(EXTENSION)--%,$(basename $(notdir $(wildcard sql/*.sql)))))
REGRESS_OPTS = --temp-instance=tmp_check_regress --temp-config=test/regress.conf

SHLIB_LINK += -lzstd -lrdkafka
PG_CPPFLAGS += -I$(srcdir)/src -DDRIFTLOCK_VERSION='"$(EXTVERSION)"'
# PostgreSQL's own headers (storage/bufpage.h, lib/ilist.h) define inline
# functions with unused parameters, and every V1 function or GUC hook has
# some, so -Wunused-parameter is switched off for the glue; everything else
# -Wextra reports is an error.  The standalone builds below keep it on.
PG_CFLAGS += -Wall -Wextra -Werror -Wno-unused-parameter
# Export only PostgreSQL's entry points (see DRIFTLOCK_SQL_FUNCTION in
# src/driftlock.h; test/check_exports.sh checks).  PostgreSQL 16's PGXS does
# the same and defines PGDLLEXPORT this way; before, it was empty.
PG_CFLAGS += -fvisibility=hidden
PG_CPPFLAGS += '-DPGDLLEXPORT=__attribute__((visibility("default")))'

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
SANITIZE_FLAGS     = -fsanitize=address,undefined -fno-sanitize-recover=all -fno-omit-frame-pointer
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
# where "make unit" puts the test binaries (a prefix), and what runs them
UNIT_DIR   =
UNIT_RUN   =
BENCH_SRCS = $(sort $(wildcard test/bench/*.c))
BENCH_BINS = $(BENCH_SRCS:.c=)
TOOL_BINS  = test/tools/mock_kafka test/tools/demo_producer test/tools/produce_raw \
             test/tools/kafka_committed test/tools/otlp_gen test/tools/otlp_render

.PHONY: unit bench-build tools prove check-fast

# The fast tier: what an edit most likely breaks, in about a minute (the
# full suite is test/run_all.sh).  010 covers the worker's path end to end,
# 013 exactly-once across kill -9 with checkpoints and replay.
CHECK_FAST_TAP = test/t/010_worker_basic.pl test/t/013_worker_crash.pl
check-fast: all tools
	$(MAKE) --no-print-directory unit
	$(srcdir)/test/check_spi_parameterised.sh
	$(srcdir)/test/check_exports.sh
	$(MAKE) --no-print-directory installcheck
	$(MAKE) --no-print-directory prove PROVE_TESTS="$(CHECK_FAST_TAP)" PROVE_FLAGS=-j2

# Unit tests are always rebuilt (cheap), so switching SANITIZE=1 on or off
# never runs a stale binary.  Every test runs even after a failure.
unit:
ifeq ($(strip $(UNIT_SRCS)),)
	@echo "no unit tests"
else
	@fail=0; \
	for src in $(UNIT_SRCS); do \
		bin=$(UNIT_DIR)$${src%.c}; \
		mkdir -p "$$(dirname $$bin)" || exit 1; \
		$(STANDALONE_CC) $(STANDALONE_CFLAGS) -o $$bin $$src $(UNIT_HELPERS) $(CBAD_SRCS) $(CBAD_LIBS) || exit 1; \
		echo "== $$bin"; \
		start=$$(date +%s); \
		if $(UNIT_RUN) ./$$bin; then r="ok  "; else r="FAIL"; fail=1; fi; \
		echo "$$r $$bin$(if $(UNIT_RUN), under $(firstword $(UNIT_RUN))) ($$(( $$(date +%s) - start )) s)"; \
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

test/tools/kafka_committed: test/tools/kafka_committed.c
	$(STANDALONE_CC) -O2 -g -Wall -Wextra -Werror -o $@ $< -lrdkafka

test/tools/otlp_gen: test/tools/otlp_gen.c
	$(STANDALONE_CC) -O2 -g -Wall -Wextra -Werror -o $@ $<

# the worker's decoder (src/message), as the unit tests and benchmarks link it
test/tools/otlp_render: test/tools/otlp_render.c $(CBAD_SRCS) $(CBAD_HDRS)
	$(STANDALONE_CC) $(STANDALONE_CFLAGS) -o $@ $< $(CBAD_SRCS) $(CBAD_LIBS)

# TAP tests.  PGXS's prove_installcheck supplies PATH, PG_REGRESS, TESTDIR and
# the include path of PostgreSQL::Test::Cluster; test/perl holds our helpers.
# They test the installed extension: run "make install" first.
prove: tools
	$(prove_installcheck)

prove: PROVE_TESTS = test/t/*.pl
prove: PG_PROVE_FLAGS += -I $(srcdir)/test/perl

# ---------------------------------------------------------------------------
# Fuzzing (libFuzzer) of the plain C: test/fuzz/fuzz_*.c, one target each,
# built with clang against CBAD_SRCS.  See docs/testing.md.
#
#   make fuzz [FUZZ_SECONDS=20]     build every target and run each in turn for
#                                   FUZZ_SECONDS on a scratch copy of its seeds
#                                   (test/fuzz/corpus/<target>); fails on any
#                                   crash, leak, timeout or out-of-memory
#   make fuzz FUZZ_TARGETS=fuzz_detector    run only some targets
#   make fuzz-build                 only build them
#   make fuzz-seeds                 rewrite the binary seeds of fuzz_state
#
# Work files, logs and crash reproducers go to FUZZ_DIR/<target>/, never into
# the tree.  FUZZ_FLAGS passes more libFuzzer options (e.g. -dict=FILE).
# ---------------------------------------------------------------------------
FUZZ_CC       ?= clang
FUZZ_SECONDS  ?= 20
FUZZ_RSS_MB   ?= 2048
FUZZ_TIMEOUT  ?= 30
# per user: a root run's directory must not stop another user's run
FUZZ_DIR      ?= $(or $(TMPDIR),/tmp)/driftlock-fuzz-$(shell id -u)
FUZZ_FLAGS    ?=
FUZZ_CFLAGS    = -g -O1 -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=all \
	-fno-omit-frame-pointer -Wall -Wextra -Werror -Isrc
FUZZ_SRCS      = $(sort $(wildcard test/fuzz/fuzz_*.c))
FUZZ_BINS      = $(FUZZ_SRCS:.c=)
FUZZ_TARGETS  ?= $(notdir $(FUZZ_BINS))
# Longest input per target (-max_len; 4096 when not listed): room for a
# detector state or a few hundred events, for JSON nested past
# JSON_PATH_MAX_DEPTH, for a kafka_properties entry over its 4095 bytes, and
# for OTLP batches of a few dozen records.
FUZZ_MAX_LEN_fuzz_detector         = 65536
FUZZ_MAX_LEN_fuzz_state            = 65536
FUZZ_MAX_LEN_fuzz_json_path        = 32768
FUZZ_MAX_LEN_fuzz_kafka_properties = 16384
FUZZ_MAX_LEN_fuzz_mask             = 4096
FUZZ_MAX_LEN_fuzz_otlp_logs        = 16384

EXTRA_CLEAN += $(FUZZ_BINS) test/fuzz/gen_state_seeds

.PHONY: fuzz fuzz-build fuzz-seeds

fuzz-build: $(FUZZ_BINS)
	@true

test/fuzz/fuzz_%: test/fuzz/fuzz_%.c $(wildcard test/fuzz/*.h) $(CBAD_SRCS) $(CBAD_HDRS)
	$(FUZZ_CC) $(FUZZ_CFLAGS) -o $@ $< $(CBAD_SRCS) $(CBAD_LIBS)

test/fuzz/gen_state_seeds: test/fuzz/gen_state_seeds.c $(CBAD_SRCS) $(CBAD_HDRS)
	$(STANDALONE_CC) $(STANDALONE_CFLAGS) -o $@ $< $(CBAD_SRCS) $(CBAD_LIBS)

fuzz-seeds: test/fuzz/gen_state_seeds
	mkdir -p test/fuzz/corpus/fuzz_state
	./test/fuzz/gen_state_seeds test/fuzz/corpus/fuzz_state

# One target at a time (they share the machine with everything else).  The
# line printed per target comes from libFuzzer's final statistics.
fuzz: fuzz-build
	@fail=0; \
	for tl in $(foreach t,$(FUZZ_TARGETS),$(t):$(or $(FUZZ_MAX_LEN_$(t)),4096)); do \
		t=$${tl%%:*}; len=$${tl##*:}; work="$(FUZZ_DIR)/$$t"; \
		rm -rf "$$work" && mkdir -p "$$work/corpus" "$$work/crashes" || exit 1; \
		if [ -d test/fuzz/corpus/$$t ]; then cp -R test/fuzz/corpus/$$t/. "$$work/corpus/" || exit 1; fi; \
		echo "fuzz $$t: running for $(FUZZ_SECONDS) s (-max_len=$$len), log in $$work/log"; \
		start=$$(date +%s); \
		./test/fuzz/$$t -max_total_time=$(FUZZ_SECONDS) -max_len=$$len \
			-rss_limit_mb=$(FUZZ_RSS_MB) -timeout=$(FUZZ_TIMEOUT) -print_final_stats=1 \
			-artifact_prefix="$$work/crashes/" $(FUZZ_FLAGS) "$$work/corpus" >"$$work/log" 2>&1; \
		rc=$$?; \
		runs=$$(sed -n 's/^stat::number_of_executed_units: *\([0-9][0-9]*\).*/\1/p' "$$work/log" | tail -n 1); \
		[ -n "$$runs" ] || runs=$$(sed -n 's/^Done \([0-9][0-9]*\) runs.*/\1/p' "$$work/log" | tail -n 1); \
		secs=$$(sed -n 's/^Done [0-9][0-9]* runs in \([0-9][0-9]*\) second.*/\1/p' "$$work/log" | tail -n 1); \
		[ -n "$$secs" ] || secs=$$(( $$(date +%s) - start )); \
		found=$$(ls "$$work/crashes" | wc -l); \
		if [ $$rc -eq 0 ] && [ $$found -eq 0 ] && [ -n "$$runs" ]; then \
			echo "fuzz $$t: $$runs executions in $$secs s, 0 crashes"; \
		else \
			tail -n 60 "$$work/log"; \
			echo "fuzz $$t: FAILED (exit $$rc) after $${runs:-?} executions in $$secs s, $$found reproducer(s) in $$work/crashes/:"; \
			ls "$$work/crashes" | sed "s|^|    $$work/crashes/|"; \
			fail=1; \
		fi; \
	done; \
	exit $$fail

# ---------------------------------------------------------------------------
# Memory checkers (see docs/testing.md, "Valgrind" and "Sanitizers").
#
#   make valgrind        the unit tests (test/unit/test_*.c), built without
#                        sanitizers, each under valgrind memcheck; fails on
#                        any memcheck error or definite/indirect leak
#   make sanitize-sql    the pg_regress tests against driftlock built with
#                        ASan and UBSan (test/sanitize_sql.sh), in a scratch
#                        copy of the tree and of PostgreSQL: the installed
#                        extension is not touched
#   make sanitize-tap    the same sanitized build and copy, running TAP tests
#                        (make prove) instead: SANITIZE_TAP_TESTS, by default
#                        "worker" (010, 011, 018, 019 and 034: the Kafka
#                        worker, the bad-input corpora included), about 1 min; "all"
#                        is every test/t/*.pl that kills no server process,
#                        about 4 min; or a list of test files
#
# The valgrind binaries go to VALGRIND_DIR, so that they never mix with the
# (possibly sanitized) ones of "make unit".
# ---------------------------------------------------------------------------
VALGRIND        ?= valgrind
VALGRIND_FLAGS  ?= -q --error-exitcode=1 --leak-check=full \
	--errors-for-leak-kinds=definite,indirect --show-leak-kinds=definite,indirect \
	--track-origins=yes --num-callers=30
VALGRIND_DIR     = tmp_check_valgrind

EXTRA_CLEAN += $(VALGRIND_DIR)

SANITIZE_TAP_TESTS ?= worker

.PHONY: valgrind sanitize-sql sanitize-tap

# "make unit" without sanitizers (valgrind and ASan do not mix), its
# binaries in VALGRIND_DIR, each run under valgrind.
valgrind:
	@command -v $(VALGRIND) >/dev/null 2>&1 || { echo "$(VALGRIND) not found (apt-get install valgrind)"; exit 1; }
	@$(MAKE) --no-print-directory unit SANITIZE= UNIT_DIR=$(VALGRIND_DIR)/ UNIT_RUN="$(VALGRIND) $(VALGRIND_FLAGS)"

sanitize-sql:
	PG_CONFIG="$(PG_CONFIG)" $(srcdir)/test/sanitize_sql.sh

sanitize-tap:
	PG_CONFIG="$(PG_CONFIG)" $(srcdir)/test/sanitize_sql.sh --no-regress --tap "$(SANITIZE_TAP_TESTS)"
