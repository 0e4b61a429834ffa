#!/bin/sh
# lib/patch.c against git apply --cached, over generated patches of
# every kind (tests/patch-differential.py): the same tree or both
# refuse, and the same patch id as git patch-id --stable.  The seed is
# fixed here (set WF_PATCH_SEED for another); "make check-patch-long"
# runs thousands of cases with fresh seeds.

. "$(dirname "$0")/lib.sh"

TP=$TEST_DIRECTORY/test-patch
GEN=$TEST_DIRECTORY/patch-differential.py
SEED=${WF_PATCH_SEED:-4010}

test_expect_success "generated patches: the same tree as git (seed $SEED)" '
	python3 "$GEN" --seed "$SEED" --cases 400 --keep kept "$TP" >out 2>&1 ||
	{ cat out >&2; false; } &&
	tail -n 1 out >&2
'

# wf refuses what git applies only for a path it will not write.
refused() {
	git read-tree --empty &&
	git apply --cached "$1" && git write-tree >/dev/null &&
	test_must_fail "$TP" "$(git hash-object -t tree /dev/null)" "$1" \
		2>err &&
	grep "$2" err
}

test_expect_success 'listed refusals: newline and escape in a path' '
	git init -q unsafe && cd unsafe &&
	printf "diff --git \"a/new\\\\nline\" \"b/new\\\\nline\"\nnew file mode 100644\nindex 0000000..7898192\n--- /dev/null\n+++ \"b/new\\\\nline\"\n@@ -0,0 +1 @@\n+a\n" >nl.patch &&
	refused nl.patch "control character" &&
	printf "diff --git a/esc\033x b/esc\033x\nnew file mode 100644\nindex 0000000..7898192\n--- /dev/null\n+++ b/esc\033x\n@@ -0,0 +1 @@\n+a\n" >esc.patch &&
	refused esc.patch "control character" &&
	printf "diff --git a/a\\\\.git\\\\x b/a\\\\.git\\\\x\nnew file mode 100644\nindex 0000000..7898192\n--- /dev/null\n+++ b/a\\\\.git\\\\x\n@@ -0,0 +1 @@\n+a\n" >bs.patch &&
	git read-tree --empty &&
	test_must_fail git apply --cached bs.patch &&
	test_must_fail "$TP" "$(git hash-object -t tree /dev/null)" bs.patch
'

test_done
