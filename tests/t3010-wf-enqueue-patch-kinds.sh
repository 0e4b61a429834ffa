#!/bin/sh
# wf-enqueue --patch takes every kind of patch git apply --index takes,
# and wf-apply lands the tree git would write, NUL bytes of a --text
# patch included.

. "$(dirname "$0")/lib.sh"

test_expect_success 'setup: files of every kind, and a clone to compare' '
	git init -q repo && cd repo &&
	printf "#!/bin/sh\necho hi\n" >run && chmod +x run &&
	cp run run2 &&
	echo "spaced" >"with space" &&
	mkdir d && echo x >d/x &&
	echo "to link" >tl &&
	echo a >swap-a && echo "b b" >swap-b &&
	echo old >again &&
	echo c >"caf$(printf "\303\251")" &&
	echo bs >"back\\slash" &&
	printf "1\n2\n" >dos && printf "1\r\n2\r\n" >crlf &&
	printf "no newline" >nonl &&
	git add . &&
	git update-index --add --cacheinfo \
		160000,1111111111111111111111111111111111111111,sub &&
	git commit -q -m base && cd .. &&
	git clone -q repo ref
'

# mk NAME CMDS: the patch CMDS make in the clone (git diff flags in $F).
mk() {
	(cd ref && git checkout -q -f main && git reset -q --hard origin/main &&
	 eval "$2" && git add -A && git diff --cached -M $F --binary \
		>"../$1.patch")
}

test_expect_success 'patches of every kind' '
	F= mk exec "echo more >>run" &&
	F= mk exec-index "echo more >>run2" &&
	sed -i "s/^index \([0-9a-f]*\)\.\.\([0-9a-f]*\) 100755/index \1..\2 100644/" \
		exec-index.patch &&
	F= mk rename-space "git mv \"with space\" \"new name\"" &&
	F= mk mode-space "chmod +x \"with space\"" &&
	F= mk dir-to-file "git rm -q d/x && echo file >d" &&
	F= mk type "rm tl && ln -s run tl" &&
	F=-B mk swap "git mv swap-a t && git mv swap-b swap-a && git mv t swap-b" &&
	F= mk quoted "echo more >>caf$(printf "\303\251")" &&
	F= mk backslash "echo more >>\"back\\\\slash\"" &&
	F= mk sub "git update-index --cacheinfo \
		160000,2222222222222222222222222222222222222222,sub" &&
	F= mk sub2-rename "git update-index --force-remove sub &&
		git update-index --add --cacheinfo \
		160000,1111111111111111111111111111111111111111,sub2 &&
		mkdir -p sub2" &&
	grep "^rename from sub$" sub2-rename.patch &&
	F= mk crlf "printf \"1\r\nzwei\r\n\" >crlf" &&
	F= mk nonl "printf \"no newline!\" >nonl" &&
	(cd ref && git checkout -q -f main && git reset -q --hard origin/main &&
	 git rm -q again && git diff --cached >../again.patch &&
	 git commit -q -m del && echo new >again && git add again &&
	 git diff --cached >>../again.patch && git reset -q --hard origin/main) &&
	(cd ref && cp dos dos.orig && printf "1\n3\n" >dos &&
	 { diff -u dos.orig dos >../plain.patch; test $? -eq 1; } &&
	 rm dos.orig && git checkout -q dos) &&
	ls *.patch >list && test $(wc -l <list) -eq 15
'

test_expect_success 'wf-enqueue takes each of them' '
	n=0 &&
	for p in $(cat list); do
		n=$((n + 1)) &&
		(cd repo && wf-enqueue --patch "../$p" --id "k/$n" \
			--target main) >>out || { echo "refused: $p" >&2; false; } ||
		return 1
	done &&
	test $(grep -c "\"state\":\"queued\"" out) -eq 15
'

test_expect_success 'wf-apply lands them as git apply --index would' '
	(cd repo && wf-apply) >out &&
	test $(grep -c "\"state\":\"landed\"" out) -eq 15 &&
	(cd ref && git checkout -q -f main && git reset -q --hard origin/main &&
	 for p in $(cat ../list); do
		git apply --index "../$p" || { echo "git: $p" >&2; exit 1; }
	 done && git write-tree) >want &&
	git -C repo rev-parse "main^{tree}" >got &&
	test_cmp want got
'

test_expect_success 'a --text patch with NUL bytes lands with them, from a file and as JSON' '
	(cd ref && git checkout -q -f main && git reset -q --hard origin/main &&
	 printf "a\0b\n" >nul && printf "c\0d\n" >nul2 &&
	 git add nul nul2 && git diff --cached --text -- nul >../nul.patch &&
	 git diff --cached --text -- nul2 >../nul2.patch &&
	 git reset -q --hard origin/main) &&
	grep -c "^+a" nul.patch &&
	printf "{\"id\": \"n/2\", \"target\": \"main\", \"kind\": \"patch\", \"patch_base64\": \"%s\"}\n" \
		"$(base64 -w0 <nul2.patch)" >nul2.json &&
	(cd repo && wf-enqueue --patch ../nul.patch --id n/1 --target main &&
	 wf-enqueue ../nul2.json && wf-apply) >out &&
	test $(grep -c "\"state\":\"landed\"" out) -eq 2 &&
	git -C repo cat-file blob main:nul >got && printf "a\0b\n" >want &&
	cmp want got &&
	git -C repo cat-file blob main:nul2 >got && printf "c\0d\n" >want &&
	cmp want got
'

test_done
