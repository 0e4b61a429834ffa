#!/usr/bin/env python3
"""Differential test of lib/patch.c against git apply --cached.

    patch-differential.py [--seed N] [--cases N] [--keep DIR] TEST-PATCH

Builds random trees (text, binary, empty, executable files, symbolic
links, submodules; names with spaces, quotes, tabs, backslashes,
UTF-8 and bytes that are not UTF-8, deep paths), changes them in every
way git diff writes (modifications, additions, deletions, mode and
type changes, renames and copies with and without edits, a directory
replaced by a file and back, swaps, a path deleted and added again),
writes the patch as git diff (with random -M -C -B --binary --text
--full-index -U), git format-patch or plain diff -u, and checks that
"git apply --cached" + "git write-tree" and TEST-PATCH give the same
tree, or both refuse, and (for every third case) that git patch-id
--stable and TEST-PATCH --id give the same id.  Prints one line per failure (with the seed and
case to reproduce it) and a summary; exits 1 on any difference.
"""
import hashlib
import os
import random
import shutil
import subprocess
import sys
import tempfile
import zlib

NAMES = [b"a", b"b", b"file.txt", b"with space", b"two  spaces",
         b"quote\"d", b"tab\there", b"back\\slash", b"caf\xc3\xa9",
         b"latin\xe9", b"-dash", b"x.orig", b"sp ace.c", b"UPPER",
         b"a b c", b"\xe2\x82\xac", b"trailing "]
DIRS = [b"", b"d/", b"d/e/", b"dir with space/", b"deep/a/b/c/d/",
        b"caf\xc3\xa9/", b"q\"d/"]
WORDS = [b"alpha", b"beta", b"gamma", b"delta", b"", b"  indented",
         b"tab\tin", b"x" * 70, b"-- x", b"--- y", b"+++ z", b"@@ -1 +1 @@",
         b"\\ backslash"]


def git(repo, *args, inp=None, env=None, check=True):
    e = dict(os.environ)
    if env:
        e.update(env)
    r = subprocess.run(["git", "-C", repo] + list(args), input=inp,
                       stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=e)
    if check and r.returncode != 0:
        raise RuntimeError("git %s: %s" % (" ".join(args), r.stderr))
    return r


class Store:
    """Writes loose objects straight into the repository."""

    def __init__(self, repo):
        self.dir = os.path.join(repo, ".git", "objects")

    def put(self, kind, data):
        raw = b"%s %d\0" % (kind, len(data)) + data
        sha = hashlib.sha1(raw).hexdigest()
        d = os.path.join(self.dir, sha[:2])
        p = os.path.join(d, sha[2:])
        if not os.path.exists(p):
            os.makedirs(d, exist_ok=True)
            with open(p + ".tmp", "wb") as f:
                f.write(zlib.compress(raw, 1))
            os.rename(p + ".tmp", p)
        return sha

    def tree(self, files):
        """files: path -> (mode, content bytes or commit sha)."""
        top = {}
        for path, (mode, data) in files.items():
            parts = path.split(b"/")
            node = top
            for part in parts[:-1]:
                node = node.setdefault(part, {})
            node[parts[-1]] = (mode, data)
        return self._tree(top)

    def _tree(self, node):
        ents = []
        for name, v in node.items():
            if isinstance(v, dict):
                ents.append((name + b"/", b"40000", name, self._tree(v)))
            else:
                mode, data = v
                sha = data if mode == "160000" else self.put(b"blob", data)
                ents.append((name, mode.encode(), name, sha))
        ents.sort(key=lambda e: e[0])
        body = b"".join(m + b" " + n + b"\0" + bytes.fromhex(s)
                        for _, m, n, s in ents)
        return self.put(b"tree", body)


def text(rng, n=None):
    n = rng.randint(0, 12) if n is None else n
    lines = [rng.choice(WORDS) + (b" %d" % rng.randint(0, 99))
             for _ in range(n)]
    body = b"".join(l + b"\n" for l in lines)
    r = rng.random()
    if r < 0.1 and body:
        body = body[:-1]                      # no newline at the end
    elif r < 0.2:
        body = body.replace(b"\n", b"\r\n")   # CRLF
    return body


def content(rng):
    r = rng.random()
    if r < 0.08:
        return b""
    if r < 0.18:
        return bytes(rng.randrange(256) for _ in range(rng.randint(1, 300)))
    if r < 0.24:
        return text(rng) + b"nul\0byte\n" + text(rng)
    return text(rng)


def rand_path(rng, files):
    for _ in range(50):
        p = rng.choice(DIRS) + rng.choice(NAMES)
        if ok_path(files, p):
            return p
    return None


def ok_path(files, p):
    """p can be added: not there, no file on its way, no files below."""
    if p in files:
        return False
    parts = p.split(b"/")
    for i in range(1, len(parts)):
        if b"/".join(parts[:i]) in files:
            return False
    pre = p + b"/"
    return not any(f.startswith(pre) for f in files)


def rand_sha(rng):
    return "%040x" % rng.getrandbits(160)


def new_entry(rng):
    r = rng.random()
    if r < 0.08:
        return ("120000", rng.choice([b"a", b"d/e", b"../x", b"target"]))
    if r < 0.14:
        return ("160000", rand_sha(rng))
    if r < 0.3:
        return ("100755", content(rng))
    return ("100644", content(rng))


def base_tree(rng):
    files = {}
    for _ in range(rng.randint(1, 8)):
        p = rand_path(rng, files)
        if p:
            files[p] = new_entry(rng)
    return files


def edit_text(rng, data):
    lines = data.split(b"\n")
    for _ in range(rng.randint(1, 3)):
        r = rng.random()
        i = rng.randint(0, len(lines))
        if r < 0.4 and lines:
            lines[min(i, len(lines) - 1)] = rng.choice(WORDS) + b" edit"
        elif r < 0.7:
            lines.insert(i, rng.choice(WORDS) + b" new")
        elif lines:
            del lines[min(i, len(lines) - 1)]
    return b"\n".join(lines)


def mutate(rng, files):
    """A changed copy of files, with a word for what changed."""
    f = dict(files)
    kinds = []
    for _ in range(rng.randint(1, 4)):
        paths = sorted(f)
        r = rng.random()
        if not paths or r < 0.12:
            p = rand_path(rng, f)
            if p:
                f[p] = new_entry(rng)
                kinds.append("add")
            continue
        p = rng.choice(paths)
        mode, data = f[p]
        if r < 0.35:
            if mode == "160000":
                f[p] = (mode, rand_sha(rng))
            elif mode == "120000":
                f[p] = (mode, data + b"x")
            elif b"\0" in data and rng.random() < 0.5:
                f[p] = (mode, bytes(rng.randrange(256) for _ in range(40)))
            else:
                f[p] = (mode, edit_text(rng, data))
            kinds.append("modify")
        elif r < 0.45:
            del f[p]
            kinds.append("delete")
        elif r < 0.52 and mode in ("100644", "100755"):
            f[p] = ("100755" if mode == "100644" else "100644", data)
            if rng.random() < 0.5:
                f[p] = (f[p][0], edit_text(rng, data))
            kinds.append("mode")
        elif r < 0.68:
            del f[p]
            q = rand_path(rng, f)
            if q:
                f[q] = (mode, edit_text(rng, data) if rng.random() < 0.4
                        and mode[:3] == "100" else data)
                kinds.append("rename")
            else:
                f[p] = (mode, data)
        elif r < 0.76:
            q = rand_path(rng, f)
            if q:
                f[q] = (mode, data if rng.random() < 0.6 or mode[:3] != "100"
                        else edit_text(rng, data))
                kinds.append("copy")
        elif r < 0.82:
            # A type change: file <-> symbolic link.
            if mode == "120000":
                f[p] = ("100644", data + b"\n")
            else:
                f[p] = ("120000", b"target")
            kinds.append("type")
        elif r < 0.88:
            # A file replaced by a directory, or a directory by a file.
            parts = p.split(b"/")
            if len(parts) > 1 and rng.random() < 0.5:
                d = b"/".join(parts[:-1])
                for q in [q for q in f if q.startswith(d + b"/")]:
                    del f[q]
                f[d] = new_entry(rng)
                kinds.append("dir-to-file")
            else:
                del f[p]
                f[p + b"/" + rng.choice(NAMES)] = new_entry(rng)
                kinds.append("file-to-dir")
        elif r < 0.94 and len(paths) > 1:
            q = rng.choice([x for x in paths if x != p])
            if f[q][0][:3] == "100" and mode[:3] == "100":
                f[p], f[q] = f[q], f[p]
                kinds.append("swap")
        else:
            f[p] = (mode, content(rng)) if mode[:3] == "100" else f[p]
            kinds.append("rewrite")
    return f, kinds


def diff_flags(rng):
    flags = []
    if rng.random() < 0.75:
        flags.append("--binary")
    if rng.random() < 0.5:
        flags.append("-M")
    if rng.random() < 0.3:
        flags += ["-C", "-C"] if rng.random() < 0.5 else ["-C"]
    if rng.random() < 0.2:
        flags.append("-B")
    if rng.random() < 0.2:
        flags.append("--text")
    if rng.random() < 0.3:
        flags.append("--full-index")
    if rng.random() < 0.25:
        flags.append("-U%d" % rng.choice([0, 1, 2, 5]))
    return flags


def plain_diff(rng, tmp, old, new):
    """GNU diff -ruN of two trees of regular files, or None."""
    a, b = os.path.join(tmp, "a"), os.path.join(tmp, "b")
    for d, fs in ((a, old), (b, new)):
        shutil.rmtree(d, ignore_errors=True)
        os.makedirs(d)
        for p, (mode, data) in fs.items():
            if mode[:3] != "100" or b"\t" in p or b"\0" in data:
                return None
            full = os.path.join(os.fsencode(d), p)
            os.makedirs(os.path.dirname(full), exist_ok=True)
            with open(full, "wb") as f:
                f.write(data)
    changed = [p for p in set(old) | set(new) if old.get(p) != new.get(p)]
    env = dict(os.environ, TZ="UTC", LC_ALL="C")
    if len(changed) == 1 and changed[0] in old and changed[0] in new and \
            rng.random() < 0.5:
        # diff -u f.orig f, names without a directory.
        p = changed[0]
        d = os.path.join(tmp, "one")
        shutil.rmtree(d, ignore_errors=True)
        os.makedirs(d)
        base = os.path.basename(p)
        with open(os.path.join(os.fsencode(d), base + b".orig"), "wb") as f:
            f.write(old[p][1])
        with open(os.path.join(os.fsencode(d), base), "wb") as f:
            f.write(new[p][1])
        r = subprocess.run(["diff", "-u", base + b".orig", base],
                           cwd=d, stdout=subprocess.PIPE, env=env)
        return ("p0", p, r.stdout)
    r = subprocess.run(["diff", "-ruN", "a", "b"], cwd=tmp,
                       stdout=subprocess.PIPE, env=env)
    if r.returncode > 1:
        return None
    return ("tree", None, r.stdout)


def run_case(rng, repo, store, tmp, tp, case):
    old = base_tree(rng)
    new, kinds = mutate(rng, old)
    chained = rng.random() < 0.15
    if chained:
        # Two diffs in one patch, the second over the result of the
        # first (no renames: those read the original tree).
        new2, kinds2 = mutate(rng, new)
        kinds += ["then"] + kinds2
    t_old = store.tree(old)
    t_new = store.tree(new)
    r = rng.random()
    form = "diff"
    if chained:
        t_new2 = store.tree(new2)
        flags = [f for f in diff_flags(rng) if f not in ("-M", "-C", "-B")]
        patch = git(repo, "diff-tree", "-p", *flags, t_old, t_new).stdout + \
            git(repo, "diff-tree", "-p", *flags, t_new, t_new2).stdout
        form = "chained"
    elif r < 0.12:
        c1 = git(repo, "commit-tree", t_old, "-m", "base",
                 env=ENV).stdout.strip().decode()
        c2 = git(repo, "commit-tree", t_new, "-p", c1, "-m", "change",
                 env=ENV).stdout.strip().decode()
        flags = ["-M"] if rng.random() < 0.5 else []
        patch = git(repo, "format-patch", "--stdout", *flags,
                    "%s..%s" % (c1, c2), env=ENV).stdout
        form = "format-patch"
    elif r < 0.22:
        pd = plain_diff(rng, tmp, old, new)
        if pd is None:
            return None
        form = "diff-u-" + pd[0]
        patch = pd[2]
        if pd[0] == "p0":
            # git applies "diff -u f.orig f" to f at the top.
            p = pd[1]
            top = os.path.basename(p)
            old = {top: old[p]}
            t_old = store.tree(old)
    else:
        flags = diff_flags(rng)
        patch = git(repo, "diff-tree", "-p", *flags, t_old, t_new).stdout
        form = "diff " + " ".join(flags)
    if not patch.strip():
        return None
    base = t_old
    if rng.random() < 0.2:
        # Shift some files so hunks land elsewhere (or not at all).
        shifted = {}
        for p, (mode, data) in old.items():
            if mode[:3] == "100" and rng.random() < 0.5 and b"\0" not in data:
                data = b"shift 1\nshift 2\n" + data
            shifted[p] = (mode, data)
        base = store.tree(shifted)
        form += " shifted"
    pf = os.path.join(tmp, "patch")
    with open(pf, "wb") as f:
        f.write(patch)
    idx = os.path.join(tmp, "index")
    if os.path.exists(idx):
        os.unlink(idx)
    ienv = dict(ENV, GIT_INDEX_FILE=idx)
    git(repo, "read-tree", base, env=ienv)
    g = git(repo, "apply", "--cached", pf, env=ienv, check=False)
    want = git(repo, "write-tree", env=ienv).stdout.strip().decode() \
        if g.returncode == 0 else "fail"
    w = subprocess.run([tp, base, pf], cwd=repo, stdout=subprocess.PIPE,
                       stderr=subprocess.PIPE)
    if w.returncode == 0:
        got = w.stdout.strip().decode()
    elif w.returncode in (1, 3):
        got = "fail"
    else:
        got = "crash %d: %s" % (w.returncode, w.stderr.decode("utf-8",
                                                             "replace"))
    if case % 3 == 0:
        # The patch id, as git patch-id --stable gives it.
        gi = subprocess.run(["git", "-C", repo, "patch-id", "--stable"],
                            input=patch, stdout=subprocess.PIPE)
        gid = gi.stdout.split()[0].decode() if gi.stdout.strip() else ""
        wi = subprocess.run([tp, "--id", pf], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE)
        wid = wi.stdout.strip().decode() if wi.returncode == 0 else ""
        if gid != wid:
            return ("patch-id " + gid, "patch-id " + wid, form, kinds,
                    patch, b"", wi.stderr)
    return (want, got, form, kinds, patch, g.stderr, w.stderr)


ENV = {}


def main():
    seed, cases, keep, args = None, 300, None, sys.argv[1:]
    while args and args[0].startswith("--"):
        if args[0] == "--seed":
            seed = int(args[1])
        elif args[0] == "--cases":
            cases = int(args[1])
        elif args[0] == "--keep":
            keep = args[1]
        args = args[2:]
    if len(args) != 1:
        sys.stderr.write(__doc__)
        return 2
    tp = os.path.abspath(args[0])
    if seed is None:
        seed = int.from_bytes(os.urandom(4), "big")
    tmp = tempfile.mkdtemp(prefix="patchdiff.")
    repo = os.path.join(tmp, "repo")
    subprocess.run(["git", "init", "-q", repo], check=True)
    git(repo, "config", "core.quotepath", "true")
    ENV.update(GIT_AUTHOR_NAME="A", GIT_AUTHOR_EMAIL="a@example.com",
               GIT_COMMITTER_NAME="C", GIT_COMMITTER_EMAIL="c@example.com",
               GIT_AUTHOR_DATE="1700000000 +0000",
               GIT_COMMITTER_DATE="1700000000 +0000")
    store = Store(repo)
    bad = ran = same_fail = 0
    for case in range(cases):
        rng = random.Random("%d/%d" % (seed, case))
        res = run_case(rng, repo, store, tmp, tp, case)
        if res is None:
            continue
        ran += 1
        want, got, form, kinds, patch, gerr, werr = res
        if want == got:
            same_fail += want == "fail"
            continue
        bad += 1
        print("DIFFERENT seed %d case %d (%s; %s): git %s, wf %s" %
              (seed, case, form, " ".join(kinds), want, got))
        print("  git: %s" % gerr.decode("utf-8", "replace").strip())
        print("  wf: %s" % werr.decode("utf-8", "replace").strip())
        if keep:
            os.makedirs(keep, exist_ok=True)
            with open(os.path.join(keep, "case-%d-%d.patch" % (seed, case)),
                      "wb") as f:
                f.write(patch)
    shutil.rmtree(tmp)
    print("seed %d: %d cases, %d differ, %d refused by both" %
          (seed, ran, bad, same_fail))
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
