"""tcpservice: a wasmbeat resource agent, written in Python, for any TCP
server program that runs in the foreground.

Built with componentize-py against wit/agent.wit (world resource-agent);
see build.sh. Like every agent it has no ambient authority: it runs the
command `server`, reads `pidfile`, probes `target` and inspects paths only
as far as the resource's grant in agents.toml allows. The server's command
line is the administrator's (`commands.server = [...]` in agents.toml);
the agent only asks for it by name.

- start: a no-op when the service is already up; otherwise spawns the
  command `server` and returns once `target` accepts TCP connections (and,
  with a pidfile, once the pidfile names the spawned process). If the
  program exits first, the error carries its exit status and stderr tail.
- monitor: running when `target` answers and the server process (when one
  can be known: pidfile) is alive; failed when the process lives but
  `target` does not answer; not-running otherwise.
- stop: SIGTERM to the server, SIGKILL after stop_timeout, then waits for
  `target` to stop answering. Stopping a stopped service succeeds.
"""

import time

from componentize_py_types import Err
from wit_world import exports
from wit_world.imports import log, netlink, probe, process, types

import conf as conf_mod

VERSION = "0.2.0"

# What messages call the server (its program is the administrator's choice).
SERVER = "the server"

SIGTERM = 15
SIGKILL = 9

# Pause between polls while waiting for the server.
POLL_S = 0.1
# Connect timeout of one probe. A local listener answers in microseconds;
# a longer wait only delays the "does not answer" verdict.
PROBE_MS = 500
# After SIGKILL the kernel needs a moment to reap the process group.
KILL_GRACE_S = 5.0
# A server that just exited may leave workers holding its port briefly.
PORT_GRACE_S = 3.0
# How much of a failed server's stderr goes into the error message.
STDERR_TAIL_LINES = 5
STDERR_TAIL_CHARS = 1500


def _log(level, msg):
    log.log(level, msg)


def info(msg):
    _log(log.Level.INFO, msg)


def warn(msg):
    _log(log.Level.WARN, msg)


def debug(msg):
    _log(log.Level.DEBUG, msg)


def fail(msg):
    return Err(types.Error_Failed(msg))


def wait_until(limit_s, cond):
    """Poll cond() every POLL_S until it holds or limit_s passed (bounded)."""
    t0 = time.monotonic()
    while True:
        if cond():
            return True
        if time.monotonic() - t0 >= limit_s:
            return False
        time.sleep(POLL_S)


def error_kind(e):
    """The WIT error inside a capability exception, as text for messages."""
    v = e.value
    return "%s: %s" % (type(v).__name__.replace("Error_", ""), getattr(v, "value", ""))


class Service:
    """One resource: its parameters and what the host lets it see."""

    def __init__(self, c):
        self.c = c
        self._local = None

    # -- evidence ---------------------------------------------------------

    def port_open(self):
        """Whether target accepts a TCP connection right now.

        A denied probe is a grant problem, not a closed port: it is raised
        so the operator sees which line of agents.toml is missing.
        """
        try:
            probe.tcp_connect(self.c.target, PROBE_MS)
            return True
        except Err as e:
            if isinstance(e.value, types.Error_Denied):
                raise
            return False

    def probe_detail(self):
        try:
            us = probe.tcp_connect(self.c.target, PROBE_MS)
            return True, "connected in %d us" % us
        except Err as e:
            if isinstance(e.value, types.Error_Denied):
                raise
            return False, error_kind(e)

    def target_local(self):
        """Whether target's address is configured on this node.

        A target on a floating (service) address answers from the other
        node when the address is there: a connect that succeeds then proves
        nothing about this node. The check needs `netlink_read = true` in
        the grant; without it the agent cannot tell and trusts the port
        (None). Loopback addresses are always local.
        """
        if self._local is not None:
            return self._local
        if self.c.ip.is_loopback:
            self._local = True
            return True
        try:
            addrs = netlink.list_addresses()
        except Err as e:
            debug("cannot list addresses (%s); grant netlink_read = true to let "
                  "tcpservice tell a local target from one on another node" % error_kind(e))
            return None
        ip = str(self.c.ip)
        self._local = any(a.address == ip for a in addrs)
        return self._local

    def port_open_here(self):
        """The port answers, and not merely from another node."""
        return self.target_local() is not False and self.port_open()

    def known_pid(self):
        """The live server the pidfile names (None without a pidfile)."""
        if self.c.pidfile is None:
            return None
        return process.pidfile_pid(self.c.pidfile)

    # -- operations -------------------------------------------------------

    def monitor(self):
        c = self.c
        pid = self.known_pid()
        if pid is None:
            if c.pidfile is not None:
                # The pidfile is the server's identity: a listener it does
                # not name is not ours (start refuses to take it over).
                if self.port_open_here():
                    warn("%s answers, but %s names no live %s: not this resource's server"
                         % (c.target, c.pidfile, SERVER))
                return types.Status.NOT_RUNNING
            # No pidfile: the port is the only evidence there is.
            return types.Status.RUNNING if self.port_open_here() else types.Status.NOT_RUNNING
        ok, detail = self.probe_detail()
        if ok:
            return types.Status.RUNNING
        warn("%s runs as pid %d but %s does not answer: %s" % (SERVER, pid, c.target, detail))
        return types.Status.FAILED

    def start(self):
        c = self.c
        t0 = time.monotonic()
        deadline = t0 + c.start_timeout
        local = self.target_local()
        if local is False:
            # The server could not bind it, and a connect would reach
            # whatever node holds the address now.
            raise Err(types.Error_NotConfigured(
                "target address %s is not configured on this node; start the "
                "IPaddr resource for it before tcpservice (list it first in the "
                "haresources group)" % c.host))
        pid = self.known_pid()
        if pid is not None:
            # Running already, perhaps still starting: give it the start timeout.
            while process.is_alive(pid):
                ok, detail = self.probe_detail()
                if ok:
                    info("%s already running as pid %d and answering at %s"
                         % (SERVER, pid, c.target))
                    return
                if time.monotonic() >= deadline:
                    raise fail("%s runs as pid %d (from %s) but %s does not answer after "
                               "%d s: %s" % (SERVER, pid, c.pidfile, c.target,
                                             c.start_timeout, detail))
                time.sleep(POLL_S)
            info("pid %d from %s exited while start waited for it; starting anew"
                 % (pid, c.pidfile))
        if c.pidfile is None:
            if self.port_open():
                # Nothing tells whose listener this is; healthy is what start
                # promises, and a second server could not bind anyway.
                info("%s already answers; no pidfile to tell which process serves it, "
                     "taken as running" % c.target)
                return
        else:
            # Not running according to the pidfile. A server that just died
            # may leave workers on its port for a moment; anything that stays
            # is someone else's server, which start must not hide.
            grace = min(PORT_GRACE_S, max(0.0, deadline - time.monotonic()))
            if not wait_until(grace, lambda: not self.port_open()):
                raise fail("%s already accepts connections, but %s names no live %s: "
                           "another server (or another node) uses that address"
                           % (c.target, c.pidfile, SERVER))

        info("starting the command %s" % c.command)
        try:
            pid = process.spawn(c.command)
        except Err as e:
            if isinstance(e.value, types.Error_NotInstalled):
                raise Err(types.Error_NotInstalled(
                    "the server program is not installed (%s)" % e.value.value))
            raise
        last = "no probe yet"
        # Most servers listen within tens of milliseconds: poll fast first
        # (10, 20, 40, 80 ms), then every POLL_S, so start returns as soon
        # as the port opens without busy-probing a slow server.
        delay = 0.01
        while True:
            out = process.spawned_exit(pid)
            if out is not None:
                # Exit 0 before the port opened is the classic daemonizing
                # server: its child lives on where no operation can see it.
                hint = ("; it must run in the foreground (give it its no-daemon/foreground "
                        "option in the command line)" if out.exit_code == 0 else "")
                raise fail("%s exited during start (%s)%s%s"
                           % (SERVER, how(out), stderr_tail(out.stderr), hint))
            ok, detail = self.probe_detail()
            if ok:
                break
            last = detail
            if time.monotonic() >= deadline:
                self.kill_spawned(pid)
                raise fail("%s (pid %d) did not accept connections at %s within %d s "
                           "(last probe: %s); killed it again%s"
                           % (SERVER, pid, c.target, c.start_timeout, last,
                              self.exit_note(pid)))
            time.sleep(delay)
            delay = min(POLL_S, delay * 2)

        if c.pidfile is not None:
            # monitor and stop of later operations find the server only
            # through its pidfile: one written elsewhere would be orphaned.
            rest = max(1.0, deadline - time.monotonic())
            if not wait_until(rest, lambda: self.known_pid() == pid):
                self.kill_spawned(pid)
                raise Err(types.Error_NotConfigured(
                    "%s answers at %s but %s does not name it (pid %d) after %d s; "
                    "pidfile must be the file the program writes; killed it again"
                    % (SERVER, c.target, c.pidfile, pid, c.start_timeout)))
        else:
            warn("no pidfile: a later stop cannot find pid %d; set pidfile= "
                 "(and grant it) so wasmbeat can stop this server" % pid)
        info("%s started as pid %d in %.2f s: %s at %s"
             % (SERVER, pid, time.monotonic() - t0, detail, c.target))

    def kill_spawned(self, pid):
        """Remove a server that never became healthy: no clean shutdown is
        owed, and the start deadline leaves no time for one. SIGKILL goes
        to its whole process group."""
        try:
            process.signal(pid, SIGKILL)
        except Err:
            pass  # it exited between the check and the signal
        wait_until(2.0, lambda: not process.is_alive(pid))

    def exit_note(self, pid):
        out = process.spawned_exit(pid)
        return "" if out is None else stderr_tail(out.stderr)

    def stop(self):
        c = self.c
        t0 = time.monotonic()
        pid = self.known_pid()
        if pid is None:
            if not self.port_open_here():
                info("%s is not running (nothing answers at %s)" % (SERVER, c.target))
                return
            if c.pidfile is not None:
                # Not ours to kill (same identity rule as monitor and start),
                # but stop promises that target is no longer served here;
                # saying so while it answers would hide a second server.
                raise fail("%s still accepts connections, but %s names no live %s, so stop "
                           "has no process to signal: either another server holds the "
                           "address, or the granted command's program is not the executable "
                           "that runs (the host matches the pid file's process by its cgroup, "
                           "or by /proc/PID/exe against the command's program)"
                           % (c.target, c.pidfile, SERVER))
            raise fail("%s still accepts connections, but without a pidfile no operation "
                       "after start can find the server's process; set pidfile= (and "
                       "grant it in agents.toml) so stop can signal it" % c.target)
        info("stopping %s (pid %d) with SIGTERM" % (SERVER, pid))
        try:
            process.signal(pid, SIGTERM)
        except Err as e:
            if process.is_alive(pid):
                raise
            debug("pid %d exited before SIGTERM: %s" % (pid, error_kind(e)))
        if not wait_until(c.stop_timeout, lambda: not process.is_alive(pid)):
            warn("%s (pid %d) still running %d s after SIGTERM; sending SIGKILL"
                 % (SERVER, pid, c.stop_timeout))
            try:
                process.signal(pid, SIGKILL)
            except Err:
                pass  # it may exit between the check and the signal
            if not wait_until(KILL_GRACE_S, lambda: not process.is_alive(pid)):
                raise fail("%s (pid %d) survived SIGKILL for %d s" % (SERVER, pid, KILL_GRACE_S))
        if not wait_until(PORT_GRACE_S, lambda: not self.port_open()):
            raise fail("%s (pid %d) is gone but %s still accepts connections "
                       "(a child process left holding the port?)" % (SERVER, pid, c.target))
        info("%s (pid %d) stopped in %.2f s" % (SERVER, pid, time.monotonic() - t0))

    def validate(self):
        """Arguments were parsed already (the host checked their types); a
        missing pidfile is only worth a warning."""
        c = self.c
        if c.pidfile is None:
            warn("no pidfile: stop can only stop a server started in the same operation; "
                 "set pidfile= if %s can write one" % SERVER)


def how(out):
    if out.signal is not None:
        return "killed by signal %d" % out.signal
    if out.exit_code is not None:
        return "exit code %d" % out.exit_code
    return "unknown status"


def stderr_tail(data):
    text = bytes(data).decode("utf-8", "replace")
    lines = [ln.rstrip() for ln in text.splitlines() if ln.strip()]
    tail = " | ".join(lines[-STDERR_TAIL_LINES:])
    if len(tail) > STDERR_TAIL_CHARS:
        tail = "..." + tail[-STDERR_TAIL_CHARS:]
    return ": " + tail if tail else ""


def service(args):
    try:
        return Service(conf_mod.parse(args))
    except conf_mod.ConfError as e:
        raise Err(types.Error_InvalidArgs(str(e))) from None


def guarded(fn):
    """Turn a Python bug (an exception that is not a WIT error) into
    `failed` with its text, instead of a trap with a lost message."""
    def run(self, *a):
        try:
            return fn(self, *a)
        except Err:
            raise
        except Exception as e:  # noqa: BLE001 - reported, not swallowed
            _log(log.Level.ERROR, "tcpservice internal error: %r" % (e,))
            raise fail("tcpservice internal error in %s: %s: %s"
                       % (fn.__name__, type(e).__name__, e)) from None
    run.__name__ = fn.__name__
    return run


PTYPE = {
    "string": types.ParamType.STRING,
    "integer": types.ParamType.INTEGER,
    "boolean": types.ParamType.BOOLEAN,
    "path": types.ParamType.PATH,
    "endpoint": types.ParamType.ENDPOINT,
    "name": types.ParamType.NAME,
}

# What the agent asks of the host, shown by `wasmbeat check`. Its server
# command is not declared: the program is the administrator's choice (often
# an interpreter, which only an administrator may grant), written as
# `commands.server = [...]` in agents.toml.
NEEDS = [types.Needs(when=[], netlink_read=True, addresses=[], commands=[],
                     pidfiles=["{pidfile}"], probes=["{target}"], paths=[])]


class Agent(exports.Agent):
    def meta_data(self):
        return types.Meta(
            name="tcpservice",
            version=VERSION,
            description=(
                "Any TCP server program run in the foreground (written in Python). "
                "Healthy when target accepts TCP connections and, with a pidfile, "
                "the process the pidfile names is alive. stop sends SIGTERM, then "
                "SIGKILL after stop_timeout, and waits for target to close."),
            params=[types.Param(name=n, description=d, type=PTYPE[t], default=dft,
                                required=req)
                    for n, d, t, dft, req in conf_mod.PARAMS],
            needs=NEEDS,
        )

    @guarded
    def validate(self, args):
        service(args).validate()

    @guarded
    def start(self, args):
        service(args).start()

    @guarded
    def stop(self, args):
        service(args).stop()

    @guarded
    def monitor(self, args):
        return service(args).monitor()
