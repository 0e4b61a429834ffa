/*
 * Run a fuzz harness over the inputs named on the command line, without
 * libFuzzer: the regression run of make check, built with the normal
 * compiler (and its sanitizers under make SANITIZE=...).
 *
 *   regress-<harness> FILE...
 *
 * A crash, an abort of the harness (a broken contract) or a sanitizer
 * report ends the process as it would end the fuzzer; an input that
 * cannot be read is exit status 2.  Each file is named on stderr
 * before it runs with WF_FUZZ_VERBOSE set.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz.h"

/* libFuzzer calls it when a harness has one; harnesses here may not. */
__attribute__((weak)) int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc;
	(void)argv;
	return 0;
}

static unsigned char *
slurp(size_t *len, const char *path)
{
	FILE *f = fopen(path, "rb");
	unsigned char *buf = NULL, *b;
	size_t cap = 0, n = 0, got;

	if (!f)
		return NULL;
	do {
		if (cap - n < 4096) {
			cap = cap ? 2 * cap : 65536;
			if (!(b = realloc(buf, cap))) {
				free(buf);
				fclose(f);
				errno = ENOMEM;
				return NULL;
			}
			buf = b;
		}
		got = fread(buf + n, 1, cap - n, f);
		n += got;
	} while (got > 0);
	if (ferror(f)) {
		free(buf);
		fclose(f);
		return NULL;
	}
	fclose(f);
	*len = n;
	return buf;
}

int
main(int argc, char **argv)
{
	const char *verbose = getenv("WF_FUZZ_VERBOSE");
	unsigned char *data, *copy;
	size_t len;
	int i;

	LLVMFuzzerInitialize(&argc, &argv);
	for (i = 1; i < argc; i++) {
		if (!(data = slurp(&len, argv[i]))) {
			fprintf(stderr, "%s: cannot read '%s': %s\n", argv[0],
			    argv[i], strerror(errno));
			return 2;
		}
		if (verbose && *verbose)
			fprintf(stderr, "%s: %s\n", argv[0], argv[i]);
		/* Exactly the input's bytes, as libFuzzer gives them, so
		 * ASan sees a read past the end. */
		if (!(copy = malloc(len ? len : 1))) {
			fprintf(stderr, "%s: out of memory\n", argv[0]);
			return 2;
		}
		memcpy(copy, data, len);
		free(data);
		LLVMFuzzerTestOneInput(copy, len);
		free(copy);
	}
	return 0;
}
