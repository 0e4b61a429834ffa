#ifndef WF_FUZZ_H
#define WF_FUZZ_H

/*
 * What the fuzz harnesses share.  Each harness (tests/fuzz/<name>.c)
 * defines LLVMFuzzerTestOneInput(); it is linked either with libFuzzer
 * (make fuzz, clang) or with tests/fuzz/driver.c, which runs it over
 * the files it is given (the regression inputs of make check).
 */
#include <stddef.h>
#include <stdint.h>

#include <git2.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerInitialize(int *argc, char ***argv);

/*
 * A harness found a result the code's contract rules out: print it on
 * stderr and abort, which libFuzzer and the driver report as a crash.
 */
void fuzz_fail(const char *fmt, ...)
	__attribute__((format(printf, 1, 2), noreturn));

/*
 * With WF_FUZZ_VERBOSE set, say on stderr what an input did (a request
 * refused, and why): to see what a seed reaches.
 */
void fuzz_note(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/*
 * wf_json_fast_parse() of s[0..len) gives up (NULL) or gives what
 * jansson gives, having read as many bytes; aborts when not.
 */
void fuzz_check_fast(const char *s, size_t len);

/*
 * A descriptor reading data[0..size) from its start: a memory file,
 * rewritten at each call (so one per process, not to be closed).
 * fuzz_path() names it for functions that open a path.
 */
int fuzz_fd(const uint8_t *data, size_t size);
const char *fuzz_path(void);

/*
 * With WF_FUZZ_VERBOSE set, say on stderr what an input did (a request
 * refused, and why): to see what a seed reaches.
 */
void fuzz_note(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/*
 * A descriptor reading data[0..size) through a pipe that a thread fills
 * a few bytes at a time (each write's size taken from `seed`), so a
 * reader sees its input cut at many places.  Close it, then call
 * fuzz_pipe_join() before the next call.
 */
int fuzz_pipe(const uint8_t *data, size_t size, uint32_t seed);
void fuzz_pipe_join(void);

/*
 * A bare repository in a new temporary directory (removed at exit),
 * made once per process:
 *
 *   main  commit fuzz_base: f (the lines 1 to 10), x ("a\nb\nc\n"),
 *         e (empty), dir/y, dir/sub/w, run (mode 100755), l (a link
 *         to x), crlf (CRLF ends), nonl (no newline at the end), bin
 *         (binary), rep (six equal lines), mod (a submodule, mode
 *         160000)
 *         then commit fuzz_tip: x changed, z added
 *   next  at fuzz_base
 *
 * The harnesses' seeds name these commits and files.  Returns the
 * repository (borrowed); aborts when it cannot be made.
 */
git_repository *fuzz_repo(void);
extern git_oid fuzz_base, fuzz_tip;
git_tree *fuzz_base_tree(void);

#endif
