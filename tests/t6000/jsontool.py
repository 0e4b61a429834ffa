# Small JSON helpers for the wf-emit tests, independent of wf's own code.
# Each reads JSON values (one per line, or one whole document with
# "doc") on stdin and writes compact JSON Lines, keys in their order:
#
#   doc                 the one document on stdin, compact
#   del KEY...          each line without the top-level KEYs
#   set KEY JSON        each line with KEY set to the JSON value
#   get KEY             each line's value of KEY
#   canonical           each line compact with sorted keys (for ids)
#   delpath PATH        the one document without PATH (a.0.b is .a[0].b)
import json
import sys


def dump(v, sort=False):
    print(json.dumps(v, separators=(",", ":"), ensure_ascii=False,
                     sort_keys=sort))


def lines():
    for line in sys.stdin:
        if line.strip():
            yield json.loads(line)


cmd, args = sys.argv[1], sys.argv[2:]
if cmd == "doc":
    dump(json.load(sys.stdin))
elif cmd == "del":
    for v in lines():
        for k in args:
            del v[k]
        dump(v)
elif cmd == "set":
    for v in lines():
        v[args[0]] = json.loads(args[1])
        dump(v)
elif cmd == "get":
    for v in lines():
        dump(v[args[0]])
elif cmd == "canonical":
    for v in lines():
        dump(v, sort=True)
elif cmd == "delpath":
    doc = json.load(sys.stdin)
    *parents, last = args[0].split(".")
    v = doc
    for p in parents:
        v = v[int(p)] if isinstance(v, list) else v[p]
    del v[int(last) if isinstance(v, list) else last]
    dump(doc)
else:
    sys.exit("unknown command " + cmd)
