"""Parameters of the tcpservice agent: declaration and parsing.

Pure Python with no import of the generated WIT bindings, so it runs (and
is unit-tested, see test_conf.py) under an ordinary CPython as well as
inside the component.
"""

import ipaddress

# The host cancels an operation after 20 s (start/stop). The bounds below
# keep the worst case of each operation under that deadline, so the agent
# always reports its own, precise error instead of the host's "timeout".
START_TIMEOUT_MAX = 15
STOP_TIMEOUT_MAX = 10

# (name, description, type, default, required), in positional order:
# haresources arguments `tcpservice.wasm::a::b` bind to these in order.
# Types are the WIT param-type names; the host checks values against them.
PARAMS = [
    ("target",
     "ip:port ([v6]:port) that accepts TCP connections when the service is up",
     "endpoint", None, True),
    ("pidfile",
     "pid file the server writes; needed to find (monitor, stop) a server "
     "started by an earlier operation or an earlier wasmbeat",
     "path", None, False),
    ("start_timeout",
     "seconds start waits for target to accept connections (1-%d)" % START_TIMEOUT_MAX,
     "integer", "10", False),
    ("stop_timeout",
     "seconds stop waits after SIGTERM before SIGKILL (1-%d)" % STOP_TIMEOUT_MAX,
     "integer", "5", False),
    # The server's command line is the administrator's (agents.toml
    # `commands.NAME = [...]`): the agent asks for it by name and passes no
    # arguments of its own, so it cannot turn the server into a shell.
    ("command",
     "name of the granted command that runs the server in the foreground "
     "(agents.toml commands.NAME)",
     "name", "server", False),
]

PARAM_NAMES = [p[0] for p in PARAMS]


class ConfError(Exception):
    """Malformed arguments (mapped to the WIT error invalid-args)."""


class Conf:
    """The parsed, checked parameters of one resource."""

    def __init__(self, target, host, port, ip, pidfile, start_timeout, stop_timeout,
                 command):
        self.target = target          # normalised "ip:port" / "[v6]:port"
        self.host = host              # the address part, as text
        self.port = port
        self.ip = ip                  # ipaddress.IPv4Address / IPv6Address
        self.pidfile = pidfile        # str or None
        self.start_timeout = start_timeout
        self.stop_timeout = stop_timeout
        self.command = command        # name of the granted command


def abs_path(name, value):
    # Grants name exact absolute paths; ".." would let a path escape the
    # directory an operator believes they granted.
    if not value.startswith("/") or ".." in value.split("/"):
        raise ConfError("parameter %s=%r must be an absolute path without '..'" % (name, value))
    return value


def parse_target(value):
    """`ip:port` or `[v6]:port` -> (normalised text, ip, port)."""
    bad = ConfError(
        "parameter target=%r is not ip:port (e.g. 10.0.0.10:80 or [fd77::10]:80)" % value)
    if value.startswith("["):
        close = value.find("]")
        if close < 0 or value[close + 1:close + 2] != ":":
            raise bad
        host, port = value[1:close], value[close + 2:]
    else:
        host, sep, port = value.rpartition(":")
        if not sep or ":" in host:
            raise bad
    try:
        ip = ipaddress.ip_address(host)
    except ValueError:
        raise bad from None
    if not port.isdigit() or not 0 < int(port) < 65536:
        raise bad
    if ip.is_unspecified or ip.is_multicast:
        raise ConfError(
            "parameter target=%r: %s is not an address a client can connect to; "
            "give the address the service listens on" % (value, ip))
    text = ("[%s]:%d" if ip.version == 6 else "%s:%d") % (ip, int(port))
    return text, ip, int(port)


def integer(name, value, lo, hi):
    v = value.strip()
    if not (v.isdigit() or (v[:1] in "+-" and v[1:].isdigit())):
        raise ConfError("parameter %s=%r is not an integer" % (name, value))
    n = int(v)
    if not lo <= n <= hi:
        raise ConfError("parameter %s=%d must be between %d and %d" % (name, n, lo, hi))
    return n


def parse(pairs):
    """Check the (name, value) pairs the host bound; raise ConfError."""
    given = {}
    for name, value in pairs:
        if name not in PARAM_NAMES:
            raise ConfError("unknown parameter %r (known: %s)" % (name, ", ".join(PARAM_NAMES)))
        if name in given:
            raise ConfError("parameter %s given twice" % name)
        given[name] = value
    for name, _, _, _, required in PARAMS:
        if required and not given.get(name):
            raise ConfError("tcpservice needs parameter %s" % name)
    target, ip, port = parse_target(given["target"])
    pidfile = given.get("pidfile") or None
    if pidfile is not None:
        abs_path("pidfile", pidfile)
    return Conf(
        target=target,
        host=str(ip),
        port=port,
        ip=ip,
        pidfile=pidfile,
        start_timeout=integer("start_timeout", given.get("start_timeout", "10"),
                              1, START_TIMEOUT_MAX),
        stop_timeout=integer("stop_timeout", given.get("stop_timeout", "5"),
                             1, STOP_TIMEOUT_MAX),
        command=command_name(given.get("command", "server")),
    )


def command_name(value):
    if not value or not all(ch.isalnum() or ch in "-_" for ch in value):
        raise ConfError("parameter command=%r is not a command name (letters, digits, - and _)"
                        % value)
    return value
