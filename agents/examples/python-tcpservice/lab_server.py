"""A small TCP server for lab.sh, run by the tcpservice agent as
`/usr/bin/python3.11 lab_server.py HOST PORT PIDFILE [MODE]`.

It writes PIDFILE, accepts and closes connections, and on SIGTERM removes
PIDFILE and exits 0. MODE makes it misbehave the ways a real server does:
  ignore-term  ignores SIGTERM (stop must escalate to SIGKILL)
  close-after  closes its listener after 1 s but keeps running (monitor: failed)
  fail         writes an error to stderr and exits 3 at once (start: failed)
Not part of the component.
"""

import os
import select
import signal
import socket
import sys
import time

host, port, pidfile = sys.argv[1], int(sys.argv[2]), sys.argv[3]
mode = sys.argv[4] if len(sys.argv) > 4 else "normal"

if mode == "fail":
    sys.stderr.write("lab_server: cannot open /etc/lab_server.conf: No such file or directory\n")
    sys.exit(3)


def term(*_):
    try:
        os.unlink(pidfile)
    except FileNotFoundError:
        pass
    sys.exit(0)


signal.signal(signal.SIGTERM, signal.SIG_IGN if mode == "ignore-term" else term)

fam = socket.AF_INET6 if ":" in host else socket.AF_INET
s = socket.socket(fam, socket.SOCK_STREAM)
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind((host, port))
s.listen(16)
with open(pidfile + ".tmp", "w") as f:
    f.write("%d\n" % os.getpid())
os.rename(pidfile + ".tmp", pidfile)

t0 = time.monotonic()
while True:
    if mode == "close-after" and s is not None and time.monotonic() - t0 > 1.0:
        s.close()
        s = None
    if s is None:
        time.sleep(0.2)
        continue
    r, _, _ = select.select([s], [], [], 0.2)
    if r:
        conn, _ = s.accept()
        conn.close()
