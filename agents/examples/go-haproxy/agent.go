// haproxy-go: a wasmbeat resource agent, in Go, for Debian's haproxy
// (world service-agent: log, process, probe, files).
//
//   - start: a no-op when the pid file names a live haproxy that answers;
//     otherwise checks the configuration (`haproxy -c`, a failure is
//     not-configured with haproxy's words), spawns haproxy in the
//     foreground in master-worker mode and returns once the pid file names
//     it and an HTTP GET of `path` at `url` is answered (its monitor-uri).
//   - monitor: running when the pid file names a live haproxy and the GET
//     gets an answer below 500; failed when it lives but does not answer
//     well; not-running when the pid file names no live process.
//   - stop: SIGTERM to the master (it stops its workers), SIGKILL after
//     stop_timeout, then waits for the port to close; with no live haproxy
//     in the pid file it has nothing to do (what answers is not ours).
//
// Built by build.sh: `wit-bindgen go` generates the module around this
// file (package export_wasmbeat_agent_agent), Go 1.27 compiles it for
// wasip1 as a reactor, wasm-tools makes the component.
package export_wasmbeat_agent_agent

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	files "wit_component/wasmbeat_agent_files"
	log "wit_component/wasmbeat_agent_log"
	probe "wit_component/wasmbeat_agent_probe"
	process "wit_component/wasmbeat_agent_process"
	. "wit_component/wasmbeat_agent_types"

	witTypes "go.bytecodealliance.org/pkg/wit/types"
)

const (
	version = "0.1.0"
	haproxy = "/usr/sbin/haproxy"
	sigterm = 15
	sigkill = 9
	// One probe's timeout: a local listener answers in milliseconds.
	probeMs = 1000
	// Pause between polls while waiting for haproxy.
	poll = 50 * time.Millisecond
	// haproxy -c on a large configuration takes a while; well inside start's deadline.
	configTestMs = 5000
	// After SIGKILL the kernel needs a moment to reap the process group.
	killGrace = 5 * time.Second
	// A stopped haproxy may leave its socket in the kernel briefly.
	portGrace = 3 * time.Second
)

// witError carries the WIT error variant through Go's error returns, so
// the operations read like ordinary Go and the export hands the variant
// (not a trap) to the host.
type witError struct{ e Error }

func (w witError) Error() string {
	switch w.e.Tag() {
	case Error_Failed:
		return "failed: " + w.e.Failed()
	case Error_InvalidArgs:
		return "invalid-args: " + w.e.InvalidArgs()
	case Error_NotInstalled:
		return "not-installed: " + w.e.NotInstalled()
	case Error_NotConfigured:
		return "not-configured: " + w.e.NotConfigured()
	case Error_Denied:
		return "denied: " + w.e.Denied()
	default:
		return "timeout"
	}
}

func failed(f string, a ...any) error { return witError{MakeErrorFailed(fmt.Sprintf(f, a...))} }
func invalidArgs(f string, a ...any) error {
	return witError{MakeErrorInvalidArgs(fmt.Sprintf(f, a...))}
}
func notInstalled(f string, a ...any) error {
	return witError{MakeErrorNotInstalled(fmt.Sprintf(f, a...))}
}
func notConfigured(f string, a ...any) error {
	return witError{MakeErrorNotConfigured(fmt.Sprintf(f, a...))}
}

// call turns a host call's result into Go's (value, error).
func call[T any](r witTypes.Result[T, Error]) (T, error) {
	if r.IsErr() {
		var zero T
		return zero, witError{r.Err()}
	}
	return r.Ok(), nil
}

// tag is the WIT error tag inside err, if it holds one.
func tag(err error) (uint8, bool) {
	var w witError
	if errors.As(err, &w) {
		return w.e.Tag(), true
	}
	return 0, false
}

// toWit is what an export returns for err: its WIT variant, or failed
// with its text for an error of our own.
func toWit(err error) Error {
	var w witError
	if errors.As(err, &w) {
		return w.e
	}
	return MakeErrorFailed(err.Error())
}

// guard runs one operation; a panic becomes failed instead of a trap.
func guard[T any](op string, body func() (T, error)) (r witTypes.Result[T, Error]) {
	defer func() {
		if p := recover(); p != nil {
			log.Log(log.Level_Error, fmt.Sprintf("%s: internal error: %v", op, p))
			r = witTypes.Err[T, Error](MakeErrorFailed(fmt.Sprintf("haproxy-go internal error in %s: %v", op, p)))
		}
	}()
	v, err := body()
	if err != nil {
		return witTypes.Err[T](toWit(err))
	}
	return witTypes.Ok[T, Error](v)
}

func info(f string, a ...any) { log.Log(log.Level_Info, fmt.Sprintf(f, a...)) }
func warn(f string, a ...any) { log.Log(log.Level_Warn, fmt.Sprintf(f, a...)) }

// conf is one resource's parameters, checked.
type conf struct {
	config, pidfile, url, host, path string
	startTimeout, stopTimeout        time.Duration
}

func parse(args []witTypes.Tuple2[string, string]) (*conf, error) {
	get := func(name, fallback string) string {
		for _, a := range args {
			if a.F0 == name {
				return a.F1
			}
		}
		return fallback
	}
	seconds := func(name string) (time.Duration, error) {
		text := get(name, "10")
		n, err := strconv.Atoi(text)
		if err != nil || n < 1 || n > 15 {
			return 0, invalidArgs("%s=%s: must be an integer between 1 and 15", name, text)
		}
		return time.Duration(n) * time.Second, nil
	}
	c := &conf{
		config:  get("config", "/etc/haproxy/haproxy.cfg"),
		pidfile: get("pidfile", "/run/haproxy-wasmbeat.pid"),
		url:     get("url", ""),
		path:    get("path", "/"),
	}
	if c.url == "" {
		return nil, invalidArgs("url (ip:port of haproxy's monitor-uri) is required")
	}
	// The host checked the endpoint syntax; the Host header is its address.
	c.host = c.url[:strings.LastIndex(c.url, ":")]
	if c.host == "0.0.0.0" || c.host == "[::]" {
		return nil, invalidArgs("url %s is not an address a client can connect to", c.url)
	}
	if !strings.HasPrefix(c.path, "/") || strings.ContainsAny(c.path, " \t") {
		return nil, invalidArgs("path %q must start with / and hold no whitespace", c.path)
	}
	var err error
	if c.startTimeout, err = seconds("start_timeout"); err != nil {
		return nil, err
	}
	if c.stopTimeout, err = seconds("stop_timeout"); err != nil {
		return nil, err
	}
	return c, nil
}

// answer is the HTTP status haproxy gives path at url; a denied probe is
// an error (a grant problem the operator must see), anything else is 0.
func (c *conf) answer() (uint16, error) {
	code, err := call(probe.HttpGet(c.url, c.host, c.path, probeMs))
	if t, ok := tag(err); ok && t == Error_Denied {
		return 0, err
	}
	return code, nil
}

func (c *conf) healthy() (bool, error) {
	code, err := c.answer()
	return code != 0 && code < 500, err
}

// pid is the live haproxy master the pid file names, or 0.
func (c *conf) pid() (uint32, error) {
	p, err := call(process.PidfilePid(c.pidfile))
	if err != nil || p.IsNone() {
		return 0, err
	}
	return p.Some(), nil
}

// waitUntil polls cond every poll until it holds or d passed.
func waitUntil(d time.Duration, cond func() (bool, error)) (bool, error) {
	until := time.Now().Add(d)
	for {
		ok, err := cond()
		if ok || err != nil {
			return ok, err
		}
		if time.Now().After(until) {
			return false, nil
		}
		time.Sleep(poll)
	}
}

func stderrTail(out process.Output) string {
	var lines []string
	for _, l := range strings.Split(string(out.Stderr), "\n") {
		if l = strings.TrimSpace(l); l != "" {
			lines = append(lines, l)
		}
	}
	if len(lines) > 5 {
		lines = lines[len(lines)-5:]
	}
	tail := strings.Join(lines, " | ")
	if len(tail) > 1500 {
		tail = tail[len(tail)-1500:]
	}
	if tail == "" {
		return ""
	}
	return ": " + strings.ToValidUTF8(tail, "?")
}

func how(out process.Output) string {
	switch {
	case out.Signal.IsSome():
		return fmt.Sprintf("killed by signal %d", out.Signal.Some())
	case out.ExitCode.IsSome():
		return fmt.Sprintf("exit code %d", out.ExitCode.Some())
	}
	return "unknown status"
}

func (c *conf) validate() error {
	kind, err := call(files.Inspect(c.config))
	if err != nil {
		return err
	}
	if kind != files.PathKind_File {
		return notInstalled("haproxy configuration %s is not a file", c.config)
	}
	return nil
}

func (c *conf) monitor() (Status, error) {
	pid, err := c.pid()
	if err != nil {
		return 0, err
	}
	ok, err := c.healthy()
	if err != nil {
		return 0, err
	}
	switch {
	case pid == 0 && ok:
		warn("%s answers, but %s names no live haproxy: not this resource's", c.url, c.pidfile)
		return Status_NotRunning, nil
	case pid == 0:
		return Status_NotRunning, nil
	case ok:
		return Status_Running, nil
	}
	warn("haproxy runs as pid %d but GET %s at %s gets no good answer", pid, c.path, c.url)
	return Status_Failed, nil
}

func (c *conf) configTest() error {
	out, err := call(process.Run("config-test", configTestMs))
	if t, ok := tag(err); ok && t == Error_NotInstalled {
		return notInstalled("haproxy is not installed (%v)", err)
	}
	if err != nil {
		return err
	}
	if !out.ExitCode.IsSome() || out.ExitCode.Some() != 0 {
		return notConfigured("haproxy -c rejects %s (%s)%s", c.config, how(out), stderrTail(out))
	}
	return nil
}

func kill(pid uint32) {
	if err := call1(process.Signal(pid, sigkill)); err != nil {
		return // it exited between the check and the signal
	}
	_, _ = waitUntil(2*time.Second, func() (bool, error) { return !process.IsAlive(pid), nil })
}

// call1 is call for host calls that return nothing.
func call1(r witTypes.Result[witTypes.Unit, Error]) error {
	_, err := call(r)
	return err
}

func (c *conf) start() error {
	if err := c.validate(); err != nil {
		return err
	}
	t0 := time.Now()
	running, err := c.pid()
	if err != nil {
		return err
	}
	if running != 0 {
		// Started already, perhaps still starting.
		ok, err := waitUntil(c.startTimeout, func() (bool, error) {
			ok, err := c.healthy()
			return ok || !process.IsAlive(running), err
		})
		if err != nil {
			return err
		}
		if ok && process.IsAlive(running) {
			info("haproxy already running as pid %d, answering at %s", running, c.url)
			return nil
		}
		if !ok {
			return failed("haproxy runs as pid %d but GET %s at %s gets no good answer after %v",
				running, c.path, c.url, c.startTimeout)
		}
	}
	// A listener the pid file does not name is someone else's.
	free, err := waitUntil(min(portGrace, c.startTimeout), func() (bool, error) {
		code, err := c.answer()
		return code == 0, err
	})
	if err != nil {
		return err
	}
	if !free {
		return failed("%s already answers, but %s names no live haproxy", c.url, c.pidfile)
	}
	if err := c.configTest(); err != nil {
		return err
	}
	spawned, err := call(process.Spawn("server"))
	if t, ok := tag(err); ok && t == Error_NotInstalled {
		return notInstalled("haproxy is not installed (%v)", err)
	}
	if err != nil {
		return err
	}
	deadline := t0.Add(c.startTimeout)
	for delay := 5 * time.Millisecond; ; delay = min(poll, delay*2) {
		if out := process.SpawnedExit(spawned); out.IsSome() {
			return failed("haproxy exited during start (%s)%s", how(out.Some()), stderrTail(out.Some()))
		}
		ok, err := c.healthy()
		if err != nil {
			return err
		}
		master, err := c.pid()
		if err != nil {
			return err
		}
		if ok && master != 0 {
			info("haproxy started (master pid %d) in %v, answering at %s", master, time.Since(t0).Round(time.Millisecond), c.url)
			return nil
		}
		if time.Now().After(deadline) {
			kill(spawned)
			return failed("haproxy (pid %d) did not answer GET %s at %s with %s naming it within %v; killed it again",
				spawned, c.path, c.url, c.pidfile, c.startTimeout)
		}
		time.Sleep(delay)
	}
}

func (c *conf) stop() error {
	t0 := time.Now()
	pid, err := c.pid()
	if err != nil {
		return err
	}
	if pid == 0 {
		// Monitor calls this not-running, so stop has succeeded: a listener
		// the pid file does not name is not this resource's (on a floating
		// address it is usually the peer's copy, reached over the wire).
		code, err := c.answer()
		if err != nil {
			return err
		}
		if code == 0 {
			info("haproxy is not running (nothing answers at %s)", c.url)
		} else {
			warn("haproxy is not running here (%s names no live haproxy); what answers at %s is not this resource's", c.pidfile, c.url)
		}
		return nil
	}
	info("stopping haproxy (master pid %d) with SIGTERM", pid)
	if err := call1(process.Signal(pid, sigterm)); err != nil && process.IsAlive(pid) {
		return err
	}
	gone := func() (bool, error) { return !process.IsAlive(pid), nil }
	if ok, _ := waitUntil(c.stopTimeout, gone); !ok {
		warn("haproxy (pid %d) still running %v after SIGTERM; sending SIGKILL", pid, c.stopTimeout)
		_ = call1(process.Signal(pid, sigkill))
		if ok, _ := waitUntil(killGrace, gone); !ok {
			return failed("haproxy (pid %d) survived SIGKILL for %v", pid, killGrace)
		}
	}
	closed, err := waitUntil(portGrace, func() (bool, error) {
		code, err := c.answer()
		return code == 0, err
	})
	if err != nil {
		return err
	}
	if !closed {
		return failed("haproxy (pid %d) is gone but %s still answers (a worker left behind?)", pid, c.url)
	}
	info("haproxy (pid %d) stopped in %v", pid, time.Since(t0).Round(time.Millisecond))
	return nil
}

func param(name, desc string, t ParamType, def string, required bool) Param {
	d := witTypes.None[string]()
	if def != "" {
		d = witTypes.Some(def)
	}
	return Param{Name: name, Description: desc, Type: t, Default: d, Required: required}
}

// MetaData describes the agent, its parameters and what it needs.
func MetaData() Meta {
	// haproxy binds low ports and switches user if the configuration says so.
	caps := []string{"net-bind-service", "setuid", "setgid"}
	return Meta{
		Name:    "haproxy-go",
		Version: version,
		Description: "Debian's haproxy in the foreground (master-worker), healthy while an HTTP GET of path " +
			"at url (its monitor-uri) is answered below 500 (written in Go).",
		Params: []Param{
			param("url", "ip:port where the configuration serves path (e.g. a frontend with monitor-uri)", ParamType_Endpoint, "", true),
			param("config", "haproxy configuration file", ParamType_Path, "/etc/haproxy/haproxy.cfg", false),
			param("pidfile", "pid file haproxy writes (-p); how monitor and stop find it", ParamType_Path, "/run/haproxy-wasmbeat.pid", false),
			param("path", "HTTP path of the health probe", ParamType_String, "/", false),
			param("start_timeout", "seconds start waits for haproxy to answer (1-15)", ParamType_Integer, "10", false),
			param("stop_timeout", "seconds stop waits after SIGTERM before SIGKILL (1-15)", ParamType_Integer, "10", false),
		},
		Needs: []Needs{{
			When:        []witTypes.Tuple2[string, []string]{},
			NetlinkRead: false,
			Addresses:   []AddressParams{},
			Commands: []Command{
				{Name: "config-test", Description: "haproxy -c: check the configuration",
					Argv: []string{haproxy, "-c", "-f", "{config}"}, Capabilities: []string{}},
				{Name: "server", Description: "haproxy in the foreground, master-worker, writing the pid file",
					Argv: []string{haproxy, "-W", "-db", "-f", "{config}", "-p", "{pidfile}"}, Capabilities: caps},
			},
			Pidfiles: []string{"{pidfile}"},
			Probes:   []string{"{url}"},
			Paths:    []string{"{config}"},
		}},
	}
}

type args = []witTypes.Tuple2[string, string]

// Validate checks the arguments and that the configuration file exists.
func Validate(a args) witTypes.Result[witTypes.Unit, Error] {
	return guard("validate", func() (witTypes.Unit, error) {
		c, err := parse(a)
		if err == nil {
			err = c.validate()
		}
		return witTypes.Unit{}, err
	})
}

// Start brings haproxy up.
func Start(a args) witTypes.Result[witTypes.Unit, Error] {
	return guard("start", func() (witTypes.Unit, error) {
		c, err := parse(a)
		if err == nil {
			err = c.start()
		}
		return witTypes.Unit{}, err
	})
}

// Stop takes haproxy down.
func Stop(a args) witTypes.Result[witTypes.Unit, Error] {
	return guard("stop", func() (witTypes.Unit, error) {
		c, err := parse(a)
		if err == nil {
			err = c.stop()
		}
		return witTypes.Unit{}, err
	})
}

// Monitor reports whether haproxy runs here and answers.
func Monitor(a args) witTypes.Result[Status, Error] {
	return guard("monitor", func() (Status, error) {
		c, err := parse(a)
		if err != nil {
			return 0, err
		}
		return c.monitor()
	})
}
