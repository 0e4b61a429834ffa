#!/bin/sh
# Nothing hostile lands: names git refuses (each NTFS and HFS+ spelling
# of .git), names git reads as its own made links, a .gitmodules git
# fsck refuses, symbolic links that leave the checkout, through every
# kind of request and through a real push.  A bad entry among good ones
# fails alone; every tree written passes git fsck.

. "$(dirname "$0")/lib.sh"

test_expect_success 'setup: a repository with a tip to build on' '
	git init -q -b main repo &&
	(
		cd repo &&
		echo /etc >etcfile && mkdir a && echo x >a/f &&
		ln -s .. a/l && seq 1 10 >n &&
		git add . && git commit -q -m base
	)
'

# commit_with NAME MODE CONTENT: a commit on main adding one entry,
# made with git mktree, which checks nothing; prints its id.
commit_with() {
	blob=$(printf "%s" "$3" | git -C repo hash-object -w --stdin) &&
	tree=$( (git -C repo ls-tree main &&
		printf "%s blob %s\t%s\n" "$2" "$blob" "$1") |
		git -C repo mktree) &&
	git -C repo commit-tree "$tree" -p main -m "add $1"
}

# refused_commits NAME MODE CONTENT MESSAGE: queued as commits, refused
# at enqueue with MESSAGE; queue and branch as they were.
refused_commits() {
	c=$(commit_with "$1" "$2" "$3") &&
	before=$(git -C repo rev-parse main) &&
	(cd repo && test_expect_code 3 wf-enqueue --commits "main..$c" \
		--target main --id hostile) 2>err &&
	test_grep "$4" err &&
	test "$(git -C repo rev-parse main)" = "$before" &&
	(cd repo && wf-queue list) >list &&
	! grep hostile list
}

dotgit="'.git' component"

test_expect_success 'each NTFS spelling of .git git refuses is refused' '
	refused_commits ".git::\$INDEX_ALLOCATION" 100644 x "$dotgit" &&
	refused_commits ".git:stream" 100644 x "$dotgit" &&
	refused_commits "git~1 " 100644 x "$dotgit" &&
	refused_commits "GIT~1" 100644 x "$dotgit" &&
	refused_commits ".git. ." 100644 x "$dotgit" &&
	refused_commits ".GIT" 100644 x "$dotgit"
'

test_expect_success 'each HFS+ spelling of .git git refuses is refused' '
	refused_commits "$(printf ".g\342\200\214it")" 100644 x "$dotgit" &&
	refused_commits "$(printf "\357\273\277.git")" 100644 x "$dotgit" &&
	refused_commits "$(printf ".gi\342\200\217T")" 100644 x "$dotgit"
'

test_expect_success 'names git reads as its own are no links' '
	refused_commits .gitmodules 120000 a ".gitmodules. as a symbolic link" &&
	refused_commits .GITMODULES 120000 a ".gitmodules. as a symbolic link" &&
	refused_commits "gitmod~1" 120000 a ".gitmodules. as a symbolic link" &&
	refused_commits .gitattributes 120000 a "as a symbolic link" &&
	refused_commits .gitignore 120000 a "as a symbolic link" &&
	refused_commits .mailmap 120000 a "as a symbolic link"
'

test_expect_success 'a .gitmodules git fsck refuses is refused' '
	refused_commits .gitmodules 100644 "$(printf "[submodule \"x\"]\n\tpath = x\n\turl = -oProxyCommand=id\n")" \
		"url .-oProxyCommand=id. looks like an option" &&
	refused_commits .gitmodules 100644 "$(printf "[submodule \"x\"]\n\tpath = -x\n\turl = ./x\n")" \
		"path .-x. looks like an option" &&
	refused_commits .gitmodules 100644 "$(printf "[submodule \"../../x\"]\n\tpath = x\n\turl = ./x\n")" \
		"submodule name .\.\./\.\./x. is one git refuses" &&
	refused_commits .gitmodules 100644 "$(printf "[submodule \"x\"]\n\tpath = x\n\turl = ./x\n\tupdate = !sh\n")" \
		"update runs a command" &&
	refused_commits .gitmodules 100644 "$(printf "[include]\n\tpath = /etc/passwd\n")" \
		"an include section" &&
	c=$(commit_with .gitmodules 100644 "$(printf "[submodule \"x\"]\n\tpath = x\n\turl = ../x\n")") &&
	(cd repo && wf-enqueue --commits "main..$c" --target main --id fine-gm \
		--dry-run) >out &&
	test_grep "\"id\":\"fine-gm\"" out
'

test_expect_success 'names and paths a checkout cannot hold are refused' '
	long=$(printf "n%.0s" $(seq 256)) &&
	refused_commits "$long" 100644 x "name longer than 255 bytes" &&
	deep=$(printf "a/%.0s" $(seq 2000))f &&
	printf "{\"id\":\"deep\",\"target\":\"main\",\"kind\":\"files\",\"files\":[{\"path\":\"%s\",\"content\":\"eAo=\"}]}\n" "$deep" >deep.json &&
	(cd repo && test_expect_code 3 wf-enqueue <../deep.json) 2>err &&
	test_grep "path longer than 3840 bytes" err
'

test_expect_success 'links that leave the checkout: each shape, as commits' '
	refused_commits etc 120000 /etc "absolute link target" &&
	refused_commits up 120000 ../../../../etc "leaves the repository" &&
	refused_commits hooks 120000 .git/hooks "into .\.git." &&
	refused_commits esc 120000 a/l/.. "leaves the repository" &&
	refused_commits loop 120000 loop/x "too many levels" &&
	c=$(commit_with in 120000 a/l/a/f) &&
	(cd repo && wf-enqueue --commits "main..$c" --target main --id fine-link \
		--dry-run) >out &&
	test_grep "\"id\":\"fine-link\"" out
'

test_expect_success 'a file made a link as it is, and a files entry naming a link blob' '
	printf "diff --git a/etcfile b/etcfile\nold mode 100644\nnew mode 120000\n" >mode.patch &&
	(cd repo && test_expect_code 3 wf-enqueue --patch ../mode.patch \
		--target main --id mode) 2>err &&
	test_grep "symbolic link .etcfile. -> ./etc" err &&
	test_grep "absolute link target" err &&
	blob=$(git -C repo rev-parse main:etcfile) &&
	printf "{\"id\":\"fl\",\"target\":\"main\",\"kind\":\"files\",\"files\":[{\"path\":\"l2\",\"mode\":\"120000\",\"blob\":\"%s\"}]}\n" "$blob" >fl.json &&
	(cd repo && test_expect_code 3 wf-enqueue <../fl.json) 2>err &&
	test_grep "symbolic link .l2. -> ./etc" err &&
	printf "{\"id\":\"gl\",\"target\":\"main\",\"kind\":\"files\",\"files\":[{\"path\":\".gitmodules\",\"mode\":\"120000\",\"content\":\"YQ==\"}]}\n" >gl.json &&
	(cd repo && test_expect_code 3 wf-enqueue <../gl.json) 2>err &&
	test_grep ".gitmodules. as a symbolic link" err
'

test_expect_success 'a link that escapes through another is failed at landing; the rest lands' '
	(
		cd repo &&
		echo one >g1 && git add g1 && git diff --cached >../good1.patch &&
		git reset -q && rm g1 &&
		ln -s a/l/.. x && git add x && git diff --cached >../bad.patch &&
		git reset -q && rm x &&
		echo two >g2 && git add g2 && git diff --cached >../good2.patch &&
		git reset -q && rm g2 &&
		wf-enqueue --patch ../good1.patch --id good1 --target main &&
		wf-enqueue --patch ../bad.patch --id bad --target main &&
		wf-enqueue --patch ../good2.patch --id good2 --target main &&
		test_expect_code 1 wf-apply
	) >out &&
	test_grep "\"id\":\"good1\".*\"state\":\"landed\"" out &&
	test_grep "\"id\":\"good2\".*\"state\":\"landed\"" out &&
	test_grep "\"id\":\"bad\".*\"state\":\"failed\".*symbolic link .x. -> .a/l/\.\..: link leaves the repository" out &&
	! git -C repo cat-file -e main:x 2>/dev/null &&
	git clone -q --no-local --bare repo landed.git &&
	git -C landed.git fsck --strict >fsck 2>&1 &&
	! grep -v "^Checking" fsck
'

test_expect_success 'a link already on the branch is not held against a new one' '
	(
		cd repo &&
		git checkout -q -f main &&
		ln -s /usr/share old && git add old && git commit -q -m old &&
		ln -s a/f new && git add new && git diff --cached >../new.patch &&
		git reset -q && rm new &&
		wf-enqueue --patch ../new.patch --id newlink --target main &&
		wf-apply
	) >out &&
	test_grep "\"id\":\"newlink\".*\"state\":\"landed\"" out &&
	test "$(git -C repo cat-file -p main:new)" = a/f
'

test_expect_success 'a tree the checks cannot check out fails that change alone' '
	(
		cd repo &&
		git checkout -q -f main &&
		git config wf.main.check true &&
		deep=$(printf "d/%.0s" $(seq 1700))f &&
		printf "{\"id\":\"toodeep\",\"target\":\"main\",\"kind\":\"files\",\"files\":[{\"path\":\"%s\",\"content\":\"eAo=\"}]}\n" "$deep" |
			wf-enqueue &&
		echo three >g3 && git add g3 && git diff --cached >../good3.patch &&
		git reset -q && rm g3 &&
		wf-enqueue --patch ../good3.patch --id good3 --target main
	) &&
	tmp=$TRASH/$(printf "t%.0s" $(seq 250))/$(printf "u%.0s" $(seq 250))/$(printf "v%.0s" $(seq 250))/$(printf "w%.0s" $(seq 250)) &&
	mkdir -p "$tmp" &&
	(cd repo && TMPDIR=$tmp test_expect_code 1 wf-apply) >out &&
	test_grep "\"id\":\"good3\".*\"state\":\"landed\"" out &&
	test_grep "\"id\":\"toodeep\".*\"state\":\"failed\".*cannot check out" out &&
	(cd repo && wf-queue show toodeep) >show &&
	test_grep "\"attempts\":1" show &&
	git -C repo config --unset wf.main.check
'

test_expect_success 'through a real push: refused, nothing queued or moved' '
	git init -q --bare -b main srv.git &&
	git -C repo push -q ../srv.git main &&
	wf-hooks install --server -C srv.git >/dev/null &&
	git clone -q srv.git c 2>/dev/null &&
	before=$(git -C srv.git rev-parse main) &&
	(
		cd c &&
		ln -s ../../../../etc up && git add up && git commit -q -m up &&
		test_must_fail git push origin HEAD:refs/for/main
	) 2>err &&
	test_grep "symbolic link .up. -> .\.\./\.\./\.\./\.\./etc.: link leaves the repository" err &&
	(
		cd c && git reset -q --hard origin/main &&
		blob=$(echo x | git hash-object -w --stdin) &&
		tree=$( (git ls-tree HEAD && printf "100644 blob %s\t.git:stream\n" "$blob") | git mktree) &&
		c=$(git commit-tree "$tree" -p HEAD -m ads) &&
		test_must_fail git push origin "$c:refs/for/main"
	) 2>err &&
	test_grep "$dotgit" err &&
	test "$(git -C srv.git rev-parse main)" = "$before" &&
	(cd srv.git && wf-queue list) >list &&
	test ! -s list
'

test_done
