#!/bin/sh
# wf-enqueue --mbox: git format-patch output lands as git am lands it.

. "$(dirname "$0")/lib.sh"

# What a commit is, for comparing with git am: tree, author, date and
# message, without the Queue-Id trailer wf adds.
describe() {
	git -C "$1" log --reverse --format='%H' "$2" | while read -r c; do
		git -C "$1" log -1 --format='tree %T%nauthor %an <%ae> %ad' \
			--date=raw "$c"
		git -C "$1" log -1 --format=%B "$c" |
			grep -v '^Queue-Id: ' | sed -e :a -e '/^\n*$/{$d;N;ba' -e '}'
		echo "--"
	done
}

test_expect_success 'setup: a history with the kinds of message git am sees' '
	git init -q src &&
	(
		cd src &&
		printf "one\ntwo\nthree\n" >f && git add f &&
		git commit -q -m "base" &&
		git tag base &&
		echo four >>f && git commit -q -a -m "add four" \
			-m "A body that says why,
over two lines." &&
		echo new >g && git add g &&
		GIT_AUTHOR_NAME="Émile Zoë" GIT_AUTHOR_EMAIL=emile@example.com \
		GIT_AUTHOR_DATE="1600000000 +0530" \
			git commit -q -m "[RFC] café: a UTF-8 author and subject" &&
		sed -i s/two/2/ f &&
		git commit -q -a -m "a subject long enough that format-patch has to fold it over more than one header line" \
			-m "Signed-off-by: A U Thor <author@example.com>" &&
		printf "r\xe9sum\xe9\n" >latin1.txt && git add latin1.txt &&
		printf "Latin-1 r\xe9sum\xe9\n\nBody in Latin-1: \xe0 la carte.\n" |
			git -c i18n.commitEncoding=ISO-8859-1 commit -q -F - &&
		git rm -q g && git commit -q -m "remove g" &&
		git mv f renamed && git commit -q -m "rename f"
	) &&
	git -C src format-patch -q --stdout base..main >series.mbox &&
	test $(grep -c "^From [0-9a-f]\{40\} " series.mbox) -eq 6
'

test_expect_success 'git am and wf land the same trees, authors, dates and messages' '
	git clone -q src am && git -C am checkout -q -B main base &&
	git -C am am -q ../series.mbox &&
	git clone -q src wf && git -C wf checkout -q -B main base &&
	(cd wf && wf-enqueue --mbox ../series.mbox --target main) >out &&
	test $(wc -l <out) -eq 6 &&
	(cd wf && wf-apply --once) >landed &&
	test $(grep -c "\"state\":\"landed\"" landed) -eq 6 &&
	describe am base..main >expect &&
	describe wf base..main >actual &&
	test_cmp expect actual
'

test_expect_success 'a series is one stream: later mails build on earlier ones' '
	(cd wf && wf-queue list) >list &&
	test_grep "\"depends_on\":\\[\"mail/" list
'

test_expect_success 'the ids are the mails: the same mbox gives the same ids' '
	git clone -q src ids2 && git -C ids2 checkout -q -B main base &&
	(cd ids2 && wf-enqueue --dry-run --mbox ../series.mbox \
		--target main) >again &&
	sed -e "s/,\"queue_id.*//" out >expect &&
	sed -e "s/,\"kind.*//" again >actual &&
	test_cmp expect actual
'

test_expect_success '--id names the mails ID/1, ID/2, ...; --mbox - reads stdin' '
	git clone -q src ids && git -C ids checkout -q -B main base &&
	(cd ids && wf-enqueue --dry-run --mbox - --id fix --target main \
		<../series.mbox) >out &&
	test_grep "^\\{\"id\":\"fix/1\"" out &&
	test_grep "^\\{\"id\":\"fix/6\"" out
'

test_expect_success 'quoted-printable bodies and RFC 2047 headers are decoded as git am does' '
	cat >qp.mbox <<-\EOF &&
	From 0000000000000000000000000000000000000000 Mon Sep 17 00:00:00 2001
	From: =?ISO-8859-1?Q?Ren=E9_?= =?UTF-8?B?TcO8bGxlcg==?= <rene@example.com>
	Date: Tue, 14 Nov 2023 22:13:20 +0100
	Subject: [PATCH v2 1/1] Re: =?UTF-8?Q?na=C3=AFve_?=
	 fix
	MIME-Version: 1.0
	Content-Type: text/plain; charset=UTF-8
	Content-Transfer-Encoding: quoted-printable

	A body with a soft=
	 break and =C3=A9.
	---
	 f | 2 +-
	 1 file changed, 1 insertion(+), 1 deletion(-)

	diff --git a/f b/f
	index 4cb29ea..d1c0e46 100644
	--- a/f
	+++ b/f
	@@ -1,3 +1,3 @@
	 one
	-two
	+deux=3D2
	 three
	--=20
	2.39.5
	EOF
	git clone -q src qam && git -C qam checkout -q -B main base &&
	git -C qam am -q ../qp.mbox &&
	git clone -q src qwf && git -C qwf checkout -q -B main base &&
	(cd qwf && wf-enqueue --mbox ../qp.mbox --target main &&
		wf-apply --once) >/dev/null &&
	describe qam base..main >expect &&
	describe qwf base..main >actual &&
	test_cmp expect actual
'

test_expect_success 'a mail without a patch, or no mail at all, is refused (3)' '
	printf "From: a <a@b>\nSubject: hello\n\nno patch here\n" >nopatch.mbox &&
	(cd wf && test_expect_code 3 wf-enqueue --mbox ../nopatch.mbox \
		--target main) 2>err &&
	test_grep "mail 1: the mail hello holds no patch" err &&
	: >empty.mbox &&
	(cd wf && test_expect_code 3 wf-enqueue --mbox ../empty.mbox \
		--target main) 2>err &&
	test_grep "no mail in it" err &&
	(cd wf && test_expect_code 2 wf-enqueue --mbox ../series.mbox) 2>err &&
	test_grep "target is required" err
'

test_done
