# wf: a merge buffer and multi-workflow toolkit for git.
#
#   make                 build lib/libwf.a and the tools in bin/
#   make check           install missing packages, build, run every test
#   make demo            install missing packages, build, run the demo
#   make bench           run the benchmarks (bench/*.sh)
#   make check-patch-long
#                        lib/patch.c against git apply over thousands of
#                        generated patches (PATCH_CASES, PATCH_SEEDS)
#   make fuzz            build the libFuzzer harnesses of tests/fuzz with
#                        clang and run each for FUZZ_TIME seconds
#   make install         install tools, man pages and hooks under $(PREFIX)
#   make SANITIZE=address,undefined check
#                        the same suite under the sanitizers

VERSION = 0.1.0

PREFIX ?= /usr/local
BINDIR ?= $(PREFIX)/bin
MANPREFIX ?= $(PREFIX)/share/man
DATADIR ?= $(PREFIX)/share/wf
DESTDIR ?=

CC ?= cc
AR ?= ar
PKG_CONFIG ?= pkg-config
INSTALL ?= install

PKGS = libgit2 sqlite3 jansson libarchive zlib libdeflate

CFLAGS ?= -O2 -g
WARNINGS = -Wall -Wextra -Wshadow -Wstrict-prototypes -Wmissing-prototypes \
	-Wpointer-arith -Wwrite-strings -Wformat=2 -Wno-format-nonliteral \
	-Wundef -Wcast-align -Wold-style-definition

ifdef SANITIZE
SAN_FLAGS = -fsanitize=$(SANITIZE) -fno-sanitize-recover=$(SANITIZE) \
	-fno-omit-frame-pointer
endif

# pkg-config is asked lazily, so "make check" can install packages first.
PKG_CFLAGS = $(shell $(PKG_CONFIG) --cflags $(PKGS))
PKG_LIBS = $(shell $(PKG_CONFIG) --libs $(PKGS))
# The packages a tool links when it needs fewer than all of them.  A
# library left out here that the tool's code does reach is a link error,
# not a silent slowdown.  wf-hooks never reads tar archives; the
# proc-receive fast path never touches libgit2.
TOOL_PKGS_wf-hooks = libgit2 sqlite3 jansson zlib
TOOL_PKGS_wf-proc-receive = sqlite3 jansson
TOOL_LIBS = $(shell $(PKG_CONFIG) --libs $(or $(TOOL_PKGS_$(1)),$(PKGS)))
CHECK_CFLAGS = $(shell $(PKG_CONFIG) --cflags check)
CHECK_LIBS = $(shell $(PKG_CONFIG) --libs check)

# Each function and object in a section of its own, and the sections no
# tool reaches dropped at link time (--gc-sections): a tool then needs
# only the libraries of the code it runs, and is linked with only those
# (see TOOL_PKGS), which keeps process start-up short (the git hooks).
ALL_CFLAGS = -std=c11 -D_POSIX_C_SOURCE=200809L -D_DEFAULT_SOURCE \
	-DWF_VERSION='"$(VERSION)"' -DWF_DATADIR='"$(DATADIR)"' -Ilib $(WARNINGS) $(SAN_FLAGS) \
	-ffunction-sections -fdata-sections \
	$(PKG_CFLAGS) $(CFLAGS) $(CPPFLAGS)
# lib/git.c's stand-in for mbedTLS's CA bundle parser must be seen by
# libgit2: exported, and so kept.
ALL_LDFLAGS = $(SAN_FLAGS) -Wl,-O1 -Wl,--gc-sections -Wl,--as-needed \
	-Wl,--export-dynamic-symbol=mbedtls_x509_crt_parse_file $(LDFLAGS)
LIBS = -lm -lpthread

LIB_SRC = $(sort $(wildcard lib/*.c))
LIB_OBJ = $(LIB_SRC:.c=.o)
TOOLS = $(patsubst cmd/%.c,%,$(filter cmd/wf-%.c,$(wildcard cmd/*.c)))
CMD_COMMON = cmd/common.o
BINS = $(addprefix bin/,$(TOOLS))
MANS = $(wildcard man/*.1)
SCHEMAS = $(wildcard schema/*.json)
HOOKS = hooks/pre-receive hooks/proc-receive hooks/pre-push
TEST_SRC = $(sort $(wildcard tests/check_*.c))
TEST_OBJ = $(TEST_SRC:.c=.o)
# Small drivers of library code for the shell tests.
TEST_HELPERS = tests/test-patch

# The fuzz harnesses (tests/fuzz/<name>.c).  make check runs each over
# its regression inputs and seeds, through tests/fuzz/driver.c and the
# normal compiler; make fuzz links them with libFuzzer, built with clang
# from a copy of the library's objects of its own (tests/fuzz/obj/).
FUZZ_NAMES = json change patch mail workflow event tar
FUZZ_COMMON = tests/fuzz/common.o
FUZZ_REGRESS = $(FUZZ_NAMES:%=tests/fuzz/regress-%)

all: lib/libwf.a $(BINS)

# Objects are rebuilt when the flags change (a SANITIZE build after a
# plain one, say).
FLAGS_FILE = .build-flags
FLAGS_NOW = $(CC) $(ALL_CFLAGS) $(ALL_LDFLAGS)
$(FLAGS_FILE): FORCE
	@echo '$(FLAGS_NOW)' | cmp -s - $@ || echo '$(FLAGS_NOW)' > $@

%.o: %.c $(FLAGS_FILE)
	$(CC) $(ALL_CFLAGS) -MMD -MP -c -o $@ $<

tests/%.o: tests/%.c $(FLAGS_FILE)
	$(CC) $(ALL_CFLAGS) $(CHECK_CFLAGS) -MMD -MP -c -o $@ $<

lib/libwf.a: $(LIB_OBJ)
	rm -f $@
	$(AR) rcs $@ $(LIB_OBJ)

bin/%: cmd/%.o $(CMD_COMMON) lib/libwf.a
	@mkdir -p bin
	$(CC) $(ALL_LDFLAGS) -o $@ $< $(CMD_COMMON) lib/libwf.a \
		$(call TOOL_LIBS,$*) $(LIBS)

tests/check_wf: $(TEST_OBJ) lib/libwf.a
	$(CC) $(ALL_LDFLAGS) -o $@ $(TEST_OBJ) lib/libwf.a $(PKG_LIBS) \
		$(CHECK_LIBS) $(LIBS)

tests/test-%: tests/test-%.o lib/libwf.a
	$(CC) $(ALL_LDFLAGS) -o $@ $< lib/libwf.a $(PKG_LIBS) $(LIBS)

tests/fuzz/regress-%: tests/fuzz/%.o tests/fuzz/driver.o $(FUZZ_COMMON) \
    lib/libwf.a
	$(CC) $(ALL_LDFLAGS) -o $@ $< tests/fuzz/driver.o $(FUZZ_COMMON) \
		lib/libwf.a $(PKG_LIBS) $(LIBS)

deps:
	@sh contrib/deps.sh

check: deps
	@$(MAKE) --no-print-directory test

test: all tests/check_wf $(TEST_HELPERS) $(FUZZ_REGRESS) bench-compiles
	./tests/check_wf
	sh tests/fuzz/regress.sh $(FUZZ_NAMES)
	WF_SANITIZE='$(SANITIZE)' sh tests/run.sh

# The benchmarks' C programs are built by their scripts; make sure the
# library has not moved from under them.
bench-compiles:
	@for c in bench/*.c; do \
		$(CC) $(ALL_CFLAGS) -fsyntax-only "$$c" || exit 1; \
	done

demo: deps
	@$(MAKE) --no-print-directory all
	@sh contrib/demo/run.sh

# Fresh random seeds each run; a failure prints its seed and case
# (rerun with PATCH_SEEDS=<seed>).
PATCH_CASES ?= 1000
PATCH_SEEDS ?= $(shell od -An -N4 -tu4 /dev/urandom) $(shell od -An -N4 -tu4 /dev/urandom) $(shell od -An -N4 -tu4 /dev/urandom)
check-patch-long: all tests/test-patch
	@for s in $(PATCH_SEEDS); do \
		python3 tests/patch-differential.py --seed $$s \
		    --cases $(PATCH_CASES) tests/test-patch || exit 1; \
	done

# make fuzz: clang's libFuzzer with ASan and UBSan, over a copy of the
# library compiled for it (coverage instrumented), never the objects of
# the normal build.  FUZZ_TIME seconds per harness, one at a time;
# FUZZ=name runs only that one.  The corpus grows in tests/fuzz/corpus/;
# crashes are written to tests/fuzz/crash/ (see tests/fuzz/README).
FUZZ_CC = /usr/bin/clang
FUZZ_TIME ?= 30
FUZZ ?= $(FUZZ_NAMES)
FUZZ_SAN = -fsanitize=address,undefined -fno-sanitize-recover=undefined \
	-fno-omit-frame-pointer
# clang also warns of the SSE2 loads of unaligned bytes (which
# _mm_loadu_si128 is for) and of SQL texts split over lines in arrays.
FUZZ_CFLAGS = -std=c11 -D_POSIX_C_SOURCE=200809L -D_DEFAULT_SOURCE \
	-DWF_VERSION='"$(VERSION)"' -DWF_DATADIR='"$(DATADIR)"' -Ilib \
	$(WARNINGS) -Wno-cast-align -Wno-string-concatenation \
	-g -O1 $(FUZZ_SAN) $(PKG_CFLAGS)
FUZZ_LIB_OBJ = $(LIB_SRC:lib/%.c=tests/fuzz/obj/lib/%.o)

FUZZ_FLAGS_FILE = tests/fuzz/obj/.build-flags
$(FUZZ_FLAGS_FILE): FORCE
	@mkdir -p tests/fuzz/obj
	@echo '$(FUZZ_CC) $(FUZZ_CFLAGS)' | cmp -s - $@ || \
		echo '$(FUZZ_CC) $(FUZZ_CFLAGS)' > $@

tests/fuzz/obj/lib/%.o: lib/%.c $(FUZZ_FLAGS_FILE)
	@mkdir -p tests/fuzz/obj/lib
	$(FUZZ_CC) $(FUZZ_CFLAGS) -fsanitize=fuzzer-no-link -MMD -MP \
		-c -o $@ $<

tests/fuzz/obj/libwf.a: $(FUZZ_LIB_OBJ)
	rm -f $@
	$(AR) rcs $@ $(FUZZ_LIB_OBJ)

tests/fuzz/obj/%.o: tests/fuzz/%.c $(FUZZ_FLAGS_FILE)
	@mkdir -p tests/fuzz/obj
	$(FUZZ_CC) $(FUZZ_CFLAGS) -fsanitize=fuzzer-no-link -MMD -MP \
		-c -o $@ $<

tests/fuzz/obj/fuzz-%: tests/fuzz/obj/%.o tests/fuzz/obj/common.o \
    tests/fuzz/obj/libwf.a
	$(FUZZ_CC) $(FUZZ_SAN) -fsanitize=fuzzer -o $@ $< \
		tests/fuzz/obj/common.o tests/fuzz/obj/libwf.a $(PKG_LIBS) \
		$(LIBS)

fuzz:
	@sh contrib/deps.sh fuzz
	@$(MAKE) --no-print-directory $(FUZZ:%=tests/fuzz/obj/fuzz-%)
	@sh tests/fuzz/run.sh $(FUZZ_TIME) $(FUZZ)

bench: all
	@for b in bench/*.sh; do sh "$$b" || exit 1; done

install: all
	$(INSTALL) -d $(DESTDIR)$(BINDIR) $(DESTDIR)$(MANPREFIX)/man1
	$(INSTALL) -m 755 $(BINS) $(DESTDIR)$(BINDIR)
	$(INSTALL) -m 644 $(MANS) $(DESTDIR)$(MANPREFIX)/man1
	$(INSTALL) -d $(DESTDIR)$(DATADIR)/schema
	$(INSTALL) -m 644 $(SCHEMAS) $(DESTDIR)$(DATADIR)/schema
	$(INSTALL) -d $(DESTDIR)$(DATADIR)/hooks
	$(INSTALL) -m 755 $(HOOKS) $(DESTDIR)$(DATADIR)/hooks
	$(INSTALL) -m 644 contrib/wf.mk $(DESTDIR)$(DATADIR)

uninstall:
	rm -f $(addprefix $(DESTDIR)$(BINDIR)/,$(TOOLS))
	rm -f $(addprefix $(DESTDIR)$(MANPREFIX)/man1/,$(notdir $(MANS)))
	rm -f $(addprefix $(DESTDIR)$(DATADIR)/schema/,$(notdir $(SCHEMAS)))
	rm -f $(addprefix $(DESTDIR)$(DATADIR)/hooks/,$(notdir $(HOOKS)))
	rm -f $(DESTDIR)$(DATADIR)/wf.mk

clean:
	rm -rf bin lib/*.o lib/*.d lib/libwf.a cmd/*.o cmd/*.d tests/*.o \
		tests/*.d tests/check_wf $(TEST_HELPERS) tests/trash.* \
		tests/fuzz/*.o tests/fuzz/*.d $(FUZZ_REGRESS) tests/fuzz/obj \
		$(FLAGS_FILE)

FORCE:

# Keep cmd/*.o: they are not throwaway intermediates.
.SECONDARY:

.PHONY: all check check-patch-long test demo bench bench-compiles fuzz install uninstall clean deps FORCE

-include $(LIB_OBJ:.o=.d) $(CMD_COMMON:.o=.d) $(TOOLS:%=cmd/%.d) \
	$(TEST_OBJ:.o=.d) $(TEST_HELPERS:=.d) \
	$(FUZZ_NAMES:%=tests/fuzz/%.d) tests/fuzz/driver.d $(FUZZ_COMMON:.o=.d) \
	$(wildcard tests/fuzz/obj/*.d tests/fuzz/obj/lib/*.d)
