# A unix socket listener for the wf-emit tests: bind PATH (stream, or
# datagram with --dgram), append every byte received to OUT, and create
# OUT.ready once listening.  Runs until killed, or until nothing happens
# for a minute, so a failed test leaves no listener behind.
import socket
import sys

dgram = sys.argv[1] == "--dgram"
if dgram:
    sys.argv.pop(1)
path, out = sys.argv[1], sys.argv[2]
kind = socket.SOCK_DGRAM if dgram else socket.SOCK_STREAM
s = socket.socket(socket.AF_UNIX, kind)
s.bind(path)
s.settimeout(60)
if not dgram:
    s.listen(16)
open(out + ".ready", "w").close()
with open(out, "ab", buffering=0) as f:
    while True:
        if dgram:
            f.write(s.recv(1 << 20))
            continue
        c, _ = s.accept()
        c.settimeout(60)
        while True:
            b = c.recv(65536)
            if not b:
                break
            f.write(b)
        c.close()
