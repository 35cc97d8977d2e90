/*
 * nginx-c: a wasmbeat resource agent written in C that runs nginx in the
 * foreground and judges it by an HTTP request.
 *
 * It is an example of an agent in a language other than Rust: the bindings
 * come from `wit-bindgen c` for the world `resource-agent` (wit/agent.wit),
 * the core module is built with clang + wasi-libc and turned into a
 * component with `wasm-tools component new` and the WASI preview1 reactor
 * adapter (see build.sh beside this file).
 *
 * Life cycle:
 *   start    pid file names a live nginx that answers: nothing to do.
 *            Otherwise the command `config-test` (`nginx -t`; a broken
 *            configuration is not-configured with nginx's own message), then
 *            the command `server`,
 *            `nginx -c CONFIG -e stderr -g "daemon off; pid PIDFILE;"`:
 *            foreground, so the host owns the process and keeps its stderr;
 *            the pid directive is forced so monitor and stop find it again.
 *            The agent declares both command lines in its meta-data; the
 *            host fills them from the resource's parameters (after the
 *            administrator accepts them in agents.toml) and the agent only
 *            asks for them by name.
 *            Start returns once GET PATH at URL answers and the pid file
 *            names the spawned master, or fails with the reason.
 *   monitor  running: live process + HTTP answer below 500; not-running: no
 *            live process behind the pid file; failed: alive, not answering.
 *   stop     SIGQUIT (nginx's graceful shutdown), bounded wait, SIGKILL to
 *            the process group; stopping a stopped nginx succeeds.
 *
 * Memory ownership (from the generated resource_agent.h/.c):
 *   - export arguments belong to the export, which frees them;
 *   - export results (meta-data, error strings) are freed by the generated
 *     cabi_post_* functions after the host copied them, so every string
 *     put into them is heap-allocated;
 *   - import results (outputs, errors) belong to the caller, import
 *     arguments stay the caller's.
 */
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "resource_agent.h"

typedef resource_agent_string_t str_t;
typedef wasmbeat_agent_types_error_t error_t;

#define AGENT_NAME "nginx-c"
#define AGENT_VERSION "0.2.0"

/* Signal numbers of Linux (the host's), not of WASI. */
#define SIG_KILL 9
#define SIG_QUIT 3

/*
 * Time limits. The host gives start and stop 20 s each (its default
 * deadlines); these leave room so the agent, not the host's deadline,
 * reports what went wrong.
 */
#define CONFIG_TEST_MS 8000   /* nginx -t */
#define START_MS 12000        /* spawn until the HTTP probe answers */
#define PIDFILE_MS 2000       /* answer until the pid file names the master */
#define QUIT_MS 10000         /* graceful shutdown before SIGKILL */
#define KILL_MS 4000          /* process gone after SIGKILL */
#define PORT_MS 3000          /* listening socket closed once it is gone */
#define PROBE_MS 2000         /* one HTTP probe */
#define POLL_MS 100           /* pause between polls */

/* ---------------------------------------------------------------- utils */

static int64_t now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void sleep_ms(int ms) {
  struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
  nanosleep(&ts, NULL);
}

/* A NUL-terminated heap copy of a component-model string. */
static char *cstr(const str_t *s) {
  char *p = malloc(s->len + 1);
  if (!p) abort();
  memcpy(p, s->ptr, s->len);
  p[s->len] = '\0';
  return p;
}

/* printf into a heap buffer. */
__attribute__((format(printf, 1, 0))) static char *vfmt(const char *f, va_list ap) {
  va_list ap2;
  va_copy(ap2, ap);
  int n = vsnprintf(NULL, 0, f, ap2);
  va_end(ap2);
  if (n < 0) n = 0;
  char *p = malloc((size_t)n + 1);
  if (!p) abort();
  vsnprintf(p, (size_t)n + 1, f, ap);
  return p;
}

__attribute__((format(printf, 1, 2))) static char *fmt(const char *f, ...) {
  va_list ap;
  va_start(ap, f);
  char *p = vfmt(f, ap);
  va_end(ap);
  return p;
}

__attribute__((format(printf, 2, 3))) static void say(wasmbeat_agent_log_level_t level, const char *f, ...) {
  va_list ap;
  va_start(ap, f);
  char *msg = vfmt(f, ap);
  va_end(ap);
  str_t s;
  resource_agent_string_set(&s, msg); /* borrowed by the import */
  wasmbeat_agent_log_log(level, &s);
  free(msg);
}

#define LOG_INFO WASMBEAT_AGENT_LOG_LEVEL_INFO
#define LOG_WARN WASMBEAT_AGENT_LOG_LEVEL_WARN
#define LOG_ERROR WASMBEAT_AGENT_LOG_LEVEL_ERROR

/*
 * Fill an export error: every variant but timeout carries a string, and
 * all those strings sit at the same place in the union. The message is
 * heap memory that the generated post-return function frees.
 */
__attribute__((format(printf, 3, 4))) static bool fail(error_t *err, uint8_t tag, const char *f, ...) {
  va_list ap;
  va_start(ap, f);
  char *msg = vfmt(f, ap);
  va_end(ap);
  err->tag = tag;
  if (tag == WASMBEAT_AGENT_TYPES_ERROR_TIMEOUT) {
    free(msg);
    return false;
  }
  err->val.failed.ptr = (uint8_t *)msg;
  err->val.failed.len = strlen(msg);
  return false;
}

#define E_ARGS WASMBEAT_AGENT_TYPES_ERROR_INVALID_ARGS
#define E_INSTALLED WASMBEAT_AGENT_TYPES_ERROR_NOT_INSTALLED
#define E_CONFIGURED WASMBEAT_AGENT_TYPES_ERROR_NOT_CONFIGURED
#define E_DENIED WASMBEAT_AGENT_TYPES_ERROR_DENIED
#define E_TIMEOUT WASMBEAT_AGENT_TYPES_ERROR_TIMEOUT
#define E_FAILED WASMBEAT_AGENT_TYPES_ERROR_FAILED

static const char *error_name(uint8_t tag) {
  switch (tag) {
  case E_ARGS: return "invalid-args";
  case E_INSTALLED: return "not-installed";
  case E_CONFIGURED: return "not-configured";
  case E_DENIED: return "denied";
  case E_TIMEOUT: return "timeout";
  default: return "failed";
  }
}

/* The text of a capability error, as a heap string (for messages). */
static char *error_text(const error_t *e) {
  if (e->tag == E_TIMEOUT) return fmt("timeout");
  return fmt("%s: %.*s", error_name(e->tag), (int)e->val.failed.len, (const char *)e->val.failed.ptr);
}

/*
 * Pass a capability error on as the operation's error, keeping its variant
 * (a denied call stays denied, so the OCF code says "grant missing") and
 * prefixing what the agent was doing. Takes ownership of `cap`.
 */
static bool forward(error_t *err, error_t *cap, const char *doing) {
  uint8_t tag = cap->tag;
  if (tag == E_TIMEOUT) {
    err->tag = E_TIMEOUT;
    return false;
  }
  fail(err, tag, "%s: %.*s", doing, (int)cap->val.failed.len, (const char *)cap->val.failed.ptr);
  wasmbeat_agent_types_error_free(cap);
  return false;
}

/*
 * The last lines of what a program wrote to stderr, on one line, for an
 * error message: nginx prints the reason last ("[emerg] bind() to ...").
 * Bytes outside printable ASCII become '?': a component-model string must
 * be valid UTF-8, and a cut could split a multi-byte character.
 */
static char *stderr_tail(const resource_agent_list_u8_t *out, int max_lines) {
  size_t end = out->len;
  while (end > 0 && (out->ptr[end - 1] == '\n' || out->ptr[end - 1] == ' ' || out->ptr[end - 1] == '\r')) end--;
  size_t start = end;
  int lines = 0;
  while (start > 0) {
    if (out->ptr[start - 1] == '\n' && ++lines == max_lines) break;
    start--;
  }
  if (end - start > 800) start = end - 800;
  char *s = malloc(2 * (end - start) + 1); /* "\n" becomes "; " */
  if (!s) abort();
  size_t n = 0;
  for (size_t i = start; i < end; i++) {
    uint8_t c = out->ptr[i];
    if (c == '\n') {
      s[n++] = ';';
      s[n++] = ' ';
    } else {
      s[n++] = (c < 0x20 || c >= 0x7f) ? '?' : (char)c;
    }
  }
  s[n] = '\0';
  return s;
}

/* ------------------------------------------------------------ arguments */

struct conf {
  char *config;  /* nginx.conf */
  char *pidfile; /* pid file forced with -g "pid ...;" */
  char *url;     /* ip:port probed */
  char *host;    /* Host header: the ip part of url */
  char *path;    /* HTTP path probed */
  char *binary;  /* nginx */
  char *globals; /* the -g argument */
};

static void conf_free(struct conf *c) {
  free(c->config);
  free(c->pidfile);
  free(c->url);
  free(c->host);
  free(c->path);
  free(c->binary);
  free(c->globals);
  memset(c, 0, sizeof *c);
}

static const char *const PARAMS[] = {"config", "pidfile", "url", "path", "binary"};

/* The value of `name`, a heap copy, or NULL when absent. */
static char *arg(const wasmbeat_agent_types_args_t *args, const char *name) {
  for (size_t i = 0; i < args->len; i++) {
    const str_t *k = &args->ptr[i].f0;
    if (k->len == strlen(name) && memcmp(k->ptr, name, k->len) == 0) return cstr(&args->ptr[i].f1);
  }
  return NULL;
}

/*
 * An absolute path without "..", and without the characters that would
 * break out of the `pid PATH;` directive passed to nginx (whitespace,
 * quotes, ';', braces, '$', '\', control characters). Refusing them is
 * simpler and safer than quoting for nginx's configuration parser.
 */
static bool abs_path(error_t *err, const char *name, const char *v) {
  if (v[0] != '/') return fail(err, E_ARGS, "parameter %s=\"%s\" must be an absolute path", name, v);
  if (strstr(v, "/../") || (strlen(v) >= 3 && strcmp(v + strlen(v) - 3, "/..") == 0))
    return fail(err, E_ARGS, "parameter %s=\"%s\" must not contain '..'", name, v);
  for (const char *p = v; *p; p++) {
    unsigned char c = (unsigned char)*p;
    if (c <= 0x20 || c == 0x7f || strchr("\"';{}$\\", c))
      return fail(err, E_ARGS, "parameter %s=\"%s\": character '%c' is not allowed in a path here", name, v,
                  c > 0x20 && c != 0x7f ? c : '?');
  }
  return true;
}

static bool parse_port(const char *p) {
  if (!*p || strlen(p) > 5) return false;
  long v = 0;
  for (; *p; p++) {
    if (*p < '0' || *p > '9') return false;
    v = v * 10 + (*p - '0');
  }
  return v >= 1 && v <= 65535;
}

static bool parse_ipv4(const char *s, size_t len) {
  int parts = 0, digits = 0, val = 0;
  for (size_t i = 0; i <= len; i++) {
    if (i == len || s[i] == '.') {
      if (digits == 0 || val > 255) return false;
      parts++;
      digits = val = 0;
    } else if (s[i] >= '0' && s[i] <= '9') {
      if (digits == 1 && val == 0) return false; /* no leading zeros */
      val = val * 10 + (s[i] - '0');
      if (++digits > 3) return false;
    } else {
      return false;
    }
  }
  return parts == 4;
}

/* A loose check of IPv6 text; the host parses the target exactly. */
static bool parse_ipv6(const char *s, size_t len) {
  if (len < 2 || len > 45) return false;
  int colons = 0;
  for (size_t i = 0; i < len; i++) {
    char c = s[i];
    if (c == ':') colons++;
    else if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F') || c == '.'))
      return false;
  }
  return colons >= 2;
}

/* url = ip:port or [v6]:port; sets the Host header value. */
static bool parse_url(error_t *err, struct conf *c) {
  const char *u = c->url;
  const char *colon;
  bool ok;
  if (u[0] == '[') {
    const char *rb = strchr(u, ']');
    ok = rb && rb[1] == ':' && parse_ipv6(u + 1, (size_t)(rb - u - 1)) && parse_port(rb + 2);
    colon = rb ? rb + 1 : NULL;
  } else {
    colon = strrchr(u, ':');
    ok = colon && parse_ipv4(u, (size_t)(colon - u)) && parse_port(colon + 1);
  }
  if (!ok)
    return fail(err, E_ARGS, "parameter url=\"%s\" is not ip:port (e.g. 10.0.0.10:80 or [fd77::10]:80)", u);
  /* HTTP wants an IPv6 literal in brackets in Host, as in the url. */
  c->host = fmt("%.*s", (int)(colon - u), u);
  return true;
}

static bool parse_conf(const wasmbeat_agent_types_args_t *args, struct conf *c, error_t *err) {
  memset(c, 0, sizeof *c);
  for (size_t i = 0; i < args->len; i++) {
    const str_t *k = &args->ptr[i].f0;
    bool known = false;
    for (size_t j = 0; j < sizeof PARAMS / sizeof PARAMS[0]; j++)
      known |= k->len == strlen(PARAMS[j]) && memcmp(k->ptr, PARAMS[j], k->len) == 0;
    if (!known)
      return fail(err, E_ARGS, "unknown parameter \"%.*s\" (parameters: config, pidfile, url, path, binary)",
                  (int)k->len, (const char *)k->ptr);
  }
  c->config = arg(args, "config");
  c->pidfile = arg(args, "pidfile");
  c->url = arg(args, "url");
  c->path = arg(args, "path");
  c->binary = arg(args, "binary");
  if (!c->config || !*c->config)
    return fail(err, E_ARGS, "parameter config (absolute path of nginx.conf) is required");
  if (!c->pidfile) c->pidfile = fmt("/run/nginx.pid");
  if (!c->url) c->url = fmt("127.0.0.1:80");
  if (!c->path) c->path = fmt("/");
  if (!c->binary) c->binary = fmt("/usr/sbin/nginx");
  if (!abs_path(err, "config", c->config) || !abs_path(err, "pidfile", c->pidfile) ||
      !abs_path(err, "binary", c->binary) || !parse_url(err, c))
    return false;
  if (c->path[0] != '/')
    return fail(err, E_ARGS, "parameter path=\"%s\" must start with '/'", c->path);
  for (const char *p = c->path; *p; p++)
    if ((unsigned char)*p <= 0x20 || *p == 0x7f)
      return fail(err, E_ARGS, "parameter path=\"%s\" must not contain whitespace or control characters", c->path);
  /* daemon off: nginx stays the process the host spawned (and keeps its
   * stderr); pid: the agent, not the configuration, decides the pid file. */
  c->globals = fmt("daemon off; pid %s;", c->pidfile);
  return true;
}

/* ---------------------------------------------------------- capabilities */

/* The pid of the live nginx named by the pid file (0: none). */
static bool running_pid(const struct conf *c, uint32_t *pid, error_t *err) {
  str_t pf;
  resource_agent_string_set(&pf, c->pidfile);
  resource_agent_option_u32_t r;
  error_t e;
  if (!wasmbeat_agent_process_pidfile_pid(&pf, &r, &e)) {
    char *doing = fmt("reading pid file %s", c->pidfile);
    forward(err, &e, doing);
    free(doing);
    return false;
  }
  *pid = r.is_some ? r.val : 0;
  return true;
}

static bool is_alive(uint32_t pid) { return wasmbeat_agent_process_is_alive(pid); }

static bool send_signal(uint32_t pid, int sig, error_t *err) {
  error_t e;
  if (wasmbeat_agent_process_signal(pid, sig, &e)) return true;
  if (err) {
    char *doing = fmt("sending signal %d to nginx pid %u", sig, (unsigned)pid);
    forward(err, &e, doing);
    free(doing);
  } else {
    wasmbeat_agent_types_error_free(&e);
  }
  return false;
}

/*
 * One HTTP probe. Healthy: any answer below 500 (a 404 still proves nginx
 * serves; a 5xx means it cannot serve this path). On return *why holds a
 * heap string describing the outcome.
 */
static bool http_ok(const struct conf *c, char **why) {
  str_t target, host, path;
  resource_agent_string_set(&target, c->url);
  resource_agent_string_set(&host, c->host);
  resource_agent_string_set(&path, c->path);
  uint16_t code;
  error_t e;
  if (!wasmbeat_agent_probe_http_get(&target, &host, &path, PROBE_MS, &code, &e)) {
    char *t = error_text(&e);
    wasmbeat_agent_types_error_free(&e);
    *why = fmt("GET %s at %s: %s", c->path, c->url, t);
    free(t);
    return false;
  }
  *why = fmt("GET %s at %s answered %u", c->path, c->url, (unsigned)code);
  return code < 500;
}

/* Whether anything accepts TCP connections at url. */
static bool port_open(const struct conf *c) {
  str_t target;
  resource_agent_string_set(&target, c->url);
  uint64_t us;
  error_t e;
  if (wasmbeat_agent_probe_tcp_connect(&target, 500, &us, &e)) return true;
  wasmbeat_agent_types_error_free(&e);
  return false;
}

/* Pauses of a wait: 5, 10, 20, 40, 80, 100, 100 ... ms. nginx usually
 * starts or exits within tens of ms, and failover time is what an HA
 * cluster is judged by. */
static void backoff(int *pause) {
  sleep_ms(*pause);
  *pause = *pause * 2 < POLL_MS ? *pause * 2 : POLL_MS;
}

static bool wait_gone(uint32_t pid, int ms) {
  int64_t until = now_ms() + ms;
  int pause = 5;
  while (is_alive(pid)) {
    if (now_ms() >= until) return false;
    backoff(&pause);
  }
  return true;
}

static bool wait_port_closed(const struct conf *c, int ms) {
  int64_t until = now_ms() + ms;
  int pause = 5;
  while (port_open(c)) {
    if (now_ms() >= until) return false;
    backoff(&pause);
  }
  return true;
}

/*
 * What is at a granted path: kind, or -1 when the path is not granted
 * (files.inspect is optional; without the grant the agent simply does not
 * look), or -2 with *err set on any other failure.
 */
static int inspect(const char *path, error_t *err) {
  str_t p;
  resource_agent_string_set(&p, path);
  wasmbeat_agent_files_path_kind_t kind;
  error_t e;
  if (wasmbeat_agent_files_inspect(&p, &kind, &e)) return kind;
  if (e.tag == E_DENIED) {
    wasmbeat_agent_types_error_free(&e);
    return -1;
  }
  char *doing = fmt("inspecting %s", path);
  forward(err, &e, doing);
  free(doing);
  return -2;
}

/* Configuration file present (when the grant lets the agent look). */
static bool check_config_file(const struct conf *c, error_t *err) {
  int k = inspect(c->config, err);
  if (k == -2) return false;
  if (k == -1) {
    say(LOG_INFO, "config %s is not in the resource's paths grant; not checked before start", c->config);
    return true;
  }
  if (k == WASMBEAT_AGENT_FILES_PATH_KIND_MISSING)
    return fail(err, E_INSTALLED, "nginx configuration %s does not exist", c->config);
  if (k != WASMBEAT_AGENT_FILES_PATH_KIND_FILE)
    return fail(err, E_CONFIGURED, "nginx configuration %s is not a regular file", c->config);
  return true;
}

static bool installed_error(error_t *err, error_t *e, const struct conf *c) {
  if (e->tag == E_INSTALLED) {
    char *t = error_text(e);
    wasmbeat_agent_types_error_free(e);
    fail(err, E_INSTALLED, "nginx binary %s is not installed (%s); install the Debian package nginx-light or set binary=",
         c->binary, t);
    free(t);
    return false;
  }
  char *doing = fmt("running %s", c->binary);
  forward(err, e, doing);
  free(doing);
  return false;
}

/* The command `config-test`: `nginx -t` with the arguments start uses. */
static bool config_test(const struct conf *c, error_t *err) {
  str_t name;
  resource_agent_string_set(&name, "config-test");
  wasmbeat_agent_process_output_t out;
  error_t e;
  if (!wasmbeat_agent_process_run(&name, CONFIG_TEST_MS, &out, &e)) return installed_error(err, &e, c);
  bool ok = out.exit_code.is_some && out.exit_code.val == 0;
  if (!ok) {
    char *tail = stderr_tail(&out.stderr_, 3);
    const char *hint = strstr(tail, "is duplicate")
                           ? " (the agent sets pid and daemon itself with -g: remove those directives)"
                           : "";
    fail(err, E_CONFIGURED, "nginx -t -c %s failed (%s %d): %s%s", c->config,
         out.exit_code.is_some ? "exit" : "signal", out.exit_code.is_some ? out.exit_code.val : out.signal.val,
         tail, hint);
    free(tail);
  }
  wasmbeat_agent_process_output_free(&out);
  return ok;
}

/* Stop what this start spawned, after a failed start. */
static void kill_spawned(uint32_t pid) {
  send_signal(pid, SIG_QUIT, NULL);
  if (!wait_gone(pid, 3000)) {
    send_signal(pid, SIG_KILL, NULL);
    wait_gone(pid, KILL_MS);
  }
}

/* ------------------------------------------------------------ operations */

static bool do_start(const struct conf *c, error_t *err) {
  int64_t t0 = now_ms();
  uint32_t pid;
  char *why = NULL;
  if (!running_pid(c, &pid, err)) return false;
  if (pid) {
    /* Already running, maybe still starting: give it the start time. */
    int64_t until = t0 + START_MS;
    for (;;) {
      free(why);
      why = NULL;
      if (http_ok(c, &why)) {
        say(LOG_INFO, "nginx already running as pid %u: %s", (unsigned)pid, why);
        free(why);
        return true;
      }
      if (!is_alive(pid) || now_ms() >= until) break;
      sleep_ms(POLL_MS);
    }
    if (is_alive(pid)) {
      fail(err, E_FAILED, "nginx runs as pid %u (from %s) but does not answer: %s", (unsigned)pid, c->pidfile, why);
      free(why);
      return false;
    }
    say(LOG_WARN, "nginx pid %u died while being checked; starting a new one", (unsigned)pid);
    free(why);
    why = NULL;
  }
  /* A server that just stopped may hold the port a moment; anything else
   * there would make nginx fail with "address in use" (or, worse, answer
   * the probe for us). */
  if (!wait_port_closed(c, PORT_MS))
    return fail(err, E_FAILED,
                "nginx is not running according to %s, but something already listens at %s; another server "
                "(or another node) uses that address",
                c->pidfile, c->url);
  if (!check_config_file(c, err) || !config_test(c, err)) return false;

  str_t name;
  resource_agent_string_set(&name, "server");
  error_t e;
  say(LOG_INFO, "starting %s -c %s -e stderr -g \"%s\" (command server)", c->binary, c->config, c->globals);
  if (!wasmbeat_agent_process_spawn(&name, &pid, &e)) return installed_error(err, &e, c);

  int64_t until = now_ms() + START_MS;
  /* A refused connection costs nothing: poll fast first. */
  int pause = 5;
  for (;;) {
    wasmbeat_agent_process_output_t out;
    if (wasmbeat_agent_process_spawned_exit(pid, &out)) {
      char *tail = stderr_tail(&out.stderr_, 2);
      fail(err, E_FAILED, "nginx exited during start (%s %d): %s", out.exit_code.is_some ? "exit" : "signal",
           out.exit_code.is_some ? out.exit_code.val : out.signal.val, *tail ? tail : "(no output)");
      free(tail);
      wasmbeat_agent_process_output_free(&out);
      free(why);
      return false;
    }
    free(why);
    why = NULL;
    if (http_ok(c, &why)) break;
    if (now_ms() >= until) {
      kill_spawned(pid);
      fail(err, E_FAILED, "nginx (pid %u) did not answer within %d ms (last probe: %s); stopped it again",
           (unsigned)pid, START_MS, why);
      free(why);
      return false;
    }
    backoff(&pause);
  }
  /* Monitor and stop find nginx through the pid file only; nginx writes it
   * before it accepts, but make sure rather than orphan a server. */
  int64_t pf_until = now_ms() + PIDFILE_MS;
  uint32_t named = 0;
  for (;;) {
    if (!running_pid(c, &named, err)) {
      kill_spawned(pid);
      free(why);
      return false;
    }
    if (named == pid || now_ms() >= pf_until) break;
    sleep_ms(POLL_MS);
  }
  if (named != pid) {
    kill_spawned(pid);
    fail(err, E_CONFIGURED, "nginx (pid %u) answers but %s names %s; stopped it again", (unsigned)pid, c->pidfile,
         named ? "another process" : "no live nginx");
    free(why);
    return false;
  }
  say(LOG_INFO, "nginx started as pid %u in %lld ms: %s", (unsigned)pid, (long long)(now_ms() - t0), why);
  free(why);
  return true;
}

static bool do_stop(const struct conf *c, error_t *err) {
  int64_t t0 = now_ms();
  uint32_t pid;
  if (!running_pid(c, &pid, err)) return false;
  if (!pid) {
    if (port_open(c))
      say(LOG_WARN, "nginx is not running according to %s, yet something listens at %s; not ours to stop",
           c->pidfile, c->url);
    else
      say(LOG_INFO, "nginx is not running according to %s", c->pidfile);
    return true;
  }
  say(LOG_INFO, "stopping nginx pid %u with SIGQUIT (graceful)", (unsigned)pid);
  if (!send_signal(pid, SIG_QUIT, err)) {
    /* It may have exited between the pid file read and the signal. */
    if (is_alive(pid)) return false;
    wasmbeat_agent_types_error_free(err);
  }
  if (!wait_gone(pid, QUIT_MS)) {
    say(LOG_WARN, "nginx pid %u still running %d ms after SIGQUIT; sending SIGKILL", (unsigned)pid, QUIT_MS);
    send_signal(pid, SIG_KILL, NULL); /* it may exit meanwhile */
    if (!wait_gone(pid, KILL_MS))
      return fail(err, E_FAILED, "nginx pid %u survived SIGKILL for %d ms", (unsigned)pid, KILL_MS);
  }
  /* Workers of a killed master could still hold the socket. */
  if (!wait_port_closed(c, PORT_MS))
    return fail(err, E_FAILED, "nginx pid %u is gone but %s still accepts connections (leftover workers?)",
                (unsigned)pid, c->url);
  say(LOG_INFO, "nginx stopped in %lld ms", (long long)(now_ms() - t0));
  return true;
}

static bool do_monitor(const struct conf *c, wasmbeat_agent_types_status_t *st, error_t *err) {
  uint32_t pid;
  if (!running_pid(c, &pid, err)) return false;
  if (!pid) {
    *st = WASMBEAT_AGENT_TYPES_STATUS_NOT_RUNNING;
    return true;
  }
  char *why = NULL;
  if (http_ok(c, &why)) {
    *st = WASMBEAT_AGENT_TYPES_STATUS_RUNNING;
  } else {
    say(LOG_WARN, "nginx runs as pid %u but is not healthy: %s", (unsigned)pid, why);
    *st = WASMBEAT_AGENT_TYPES_STATUS_FAILED;
  }
  free(why);
  return true;
}

static bool do_validate(const struct conf *c, error_t *err) {
  if (!check_config_file(c, err)) return false;
  /* The binary too, when the grant lets the agent look at it. */
  int k = inspect(c->binary, err);
  if (k == -2) return false;
  if (k == WASMBEAT_AGENT_FILES_PATH_KIND_MISSING)
    return fail(err, E_INSTALLED, "nginx binary %s is not installed; install the Debian package nginx-light or set binary=",
                c->binary);
  return true;
}

/* -------------------------------------------------------------- exports */

static void set_str(str_t *s, const char *v) { resource_agent_string_dup(s, v); }

/* A heap list of heap copies of `v`. */
static void strings(resource_agent_list_string_t *l, const char *const *v, size_t n) {
  l->ptr = calloc(n, sizeof *l->ptr);
  if (!l->ptr) abort();
  for (size_t i = 0; i < n; i++) set_str(&l->ptr[i], v[i]);
  l->len = n;
}

static void command(wasmbeat_agent_types_command_t *c, const char *name, const char *desc, const char *const *argv,
                    size_t argc, const char *const *caps, size_t ncaps) {
  set_str(&c->name, name);
  set_str(&c->description, desc);
  strings(&c->argv, argv, argc);
  strings(&c->capabilities, caps, ncaps);
}

static void param(wasmbeat_agent_types_param_t *p, const char *name, const char *desc,
                  wasmbeat_agent_types_param_type_t type, const char *def, bool required) {
  set_str(&p->name, name);
  set_str(&p->description, desc);
  p->type = type;
  p->default_.is_some = def != NULL;
  if (def) set_str(&p->default_.val, def);
  p->required = required;
}

void exports_wasmbeat_agent_agent_meta_data(exports_wasmbeat_agent_agent_meta_t *ret) {
  set_str(&ret->name, AGENT_NAME);
  set_str(&ret->version, AGENT_VERSION);
  set_str(&ret->description,
          "nginx run in the foreground (nginx -c config -e stderr -g \"daemon off; pid PIDFILE;\"), written in C. "
          "Start checks the configuration with nginx -t first; healthy when GET path at url gets an HTTP answer "
          "below 500; stop is SIGQUIT (graceful), then SIGKILL. Its needs (two commands, its pid file, its "
          "probe target and config) are granted with accept_declared = true in agents.toml.");
  size_t n = 5;
  wasmbeat_agent_types_param_t *ps = calloc(n, sizeof *ps);
  if (!ps) abort();
  param(&ps[0], "config",
        "absolute path of nginx.conf; it must not set pid or daemon (the agent passes both with -g)",
        WASMBEAT_AGENT_TYPES_PARAM_TYPE_PATH, NULL, true);
  param(&ps[1], "pidfile", "pid file nginx is told to write (-g \"pid ...;\"); how monitor and stop find it",
        WASMBEAT_AGENT_TYPES_PARAM_TYPE_PATH, "/run/nginx.pid", false);
  param(&ps[2], "url", "ip:port probed with HTTP (must be where the configuration listens)",
        WASMBEAT_AGENT_TYPES_PARAM_TYPE_ENDPOINT, "127.0.0.1:80", false);
  param(&ps[3], "path", "HTTP path requested by the health probe", WASMBEAT_AGENT_TYPES_PARAM_TYPE_STRING, "/",
        false);
  param(&ps[4], "binary", "nginx binary", WASMBEAT_AGENT_TYPES_PARAM_TYPE_PATH, "/usr/sbin/nginx", false);
  ret->params.ptr = ps;
  ret->params.len = n;

  /* What the host runs for it: both command lines as templates ({name} is
   * the resource's parameter), nginx keeping the capabilities to bind its
   * port and run its workers as another user. */
  static const char *const test_argv[] = {"{binary}", "-t", "-q", "-c", "{config}", "-e", "stderr",
                                          "-g", "daemon off; pid {pidfile};"};
  static const char *const server_argv[] = {"{binary}", "-c", "{config}", "-e", "stderr",
                                            "-g", "daemon off; pid {pidfile};"};
  static const char *const caps[] = {"net-bind-service", "setuid", "setgid", "kill", "chown", "dac-override"};
  wasmbeat_agent_types_needs_t *nd = calloc(1, sizeof *nd);
  wasmbeat_agent_types_command_t *cmds = calloc(2, sizeof *cmds);
  if (!nd || !cmds) abort();
  command(&cmds[0], "config-test", "nginx -t with the arguments start uses", test_argv,
          sizeof test_argv / sizeof test_argv[0], caps, sizeof caps / sizeof caps[0]);
  command(&cmds[1], "server", "nginx in the foreground", server_argv, sizeof server_argv / sizeof server_argv[0],
          caps, sizeof caps / sizeof caps[0]);
  nd->commands.ptr = cmds;
  nd->commands.len = 2;
  static const char *const pidfiles[] = {"{pidfile}"}, *const probes[] = {"{url}"}, *const paths[] = {"{config}"};
  strings(&nd->pidfiles, pidfiles, 1);
  strings(&nd->probes, probes, 1);
  strings(&nd->paths, paths, 1);
  ret->needs.ptr = nd;
  ret->needs.len = 1;
}

/* Parse the arguments, run one operation, free what the export owns. */
#define WITH_CONF(args, err, call)                                                                                     \
  do {                                                                                                                 \
    struct conf c;                                                                                                     \
    bool ok_ = parse_conf(args, &c, err) && (call);                                                                    \
    conf_free(&c);                                                                                                     \
    exports_wasmbeat_agent_agent_args_free(args);                                                                      \
    return ok_;                                                                                                        \
  } while (0)

bool exports_wasmbeat_agent_agent_validate(exports_wasmbeat_agent_agent_args_t *args,
                                           exports_wasmbeat_agent_agent_error_t *err) {
  WITH_CONF(args, err, do_validate(&c, err));
}

bool exports_wasmbeat_agent_agent_start(exports_wasmbeat_agent_agent_args_t *args,
                                        exports_wasmbeat_agent_agent_error_t *err) {
  WITH_CONF(args, err, do_start(&c, err));
}

bool exports_wasmbeat_agent_agent_stop(exports_wasmbeat_agent_agent_args_t *args,
                                       exports_wasmbeat_agent_agent_error_t *err) {
  WITH_CONF(args, err, do_stop(&c, err));
}

bool exports_wasmbeat_agent_agent_monitor(exports_wasmbeat_agent_agent_args_t *args,
                                          exports_wasmbeat_agent_agent_status_t *ret,
                                          exports_wasmbeat_agent_agent_error_t *err) {
  WITH_CONF(args, err, do_monitor(&c, ret, err));
}
