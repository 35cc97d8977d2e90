// redis-ts: a wasmbeat resource agent, in TypeScript, for Debian's
// redis-server (world `service-agent`: log, process, probe, files).
//
// - start: a no-op when the pid file names a live redis that answers;
//   otherwise spawns the declared command `server` (redis-server in the
//   foreground, bound to `target`) and returns once `target` accepts TCP
//   connections and the pid file names the spawned process. If redis
//   exits first, the error carries its exit status and stderr.
// - monitor: running when the pid file names a live redis and `target`
//   answers; failed when it lives but does not answer; not-running when
//   the pid file names no live process.
// - stop: SIGTERM (redis saves and exits), SIGKILL after stop_timeout,
//   then waits for the port to close. Stopping a stopped redis succeeds.
//
// Built by build.sh: tsc against the types `jco guest-types` generates
// from wit/, then componentize-js.

import type { Args, Meta, Status } from 'wasmbeat:agent/types@0.2.0';
import { inspect } from 'wasmbeat:agent/files@0.2.0';
import { isAlive, pidfilePid, signal, spawn, spawnedExit } from 'wasmbeat:agent/process@0.2.0';
import type { Output } from 'wasmbeat:agent/process@0.2.0';
import { tcpConnect } from 'wasmbeat:agent/probe@0.2.0';
import {
  arg,
  asWitError,
  failed,
  guard,
  info,
  intArg,
  invalidArgs,
  notConfigured,
  notInstalled,
  sleep,
  warn,
} from './wasmbeat.js';

const VERSION = '0.1.0';
const REDIS = '/usr/bin/redis-server';
const SIGTERM = 15;
const SIGKILL = 9;
/** Connect timeout of one probe: a local listener answers in microseconds. */
const PROBE_MS = 500;
/** Pause between polls while waiting for redis. */
const POLL_MS = 50;
/** After SIGKILL the kernel needs a moment to reap the process group. */
const KILL_GRACE_MS = 5000;
/** A stopped redis may leave its socket in the kernel briefly. */
const PORT_GRACE_MS = 3000;

/** One resource's parameters, checked. */
interface Conf {
  target: string;
  config: string;
  pidfile: string;
  startTimeoutMs: number;
  stopTimeoutMs: number;
}

function conf(args: Args): Conf {
  const target = arg(args, 'target');
  if (target === undefined) throw invalidArgs('target (ip:port redis listens on) is required');
  // The host checked the endpoint syntax; a wildcard cannot be probed.
  if (/^(0\.0\.0\.0|\[::\]):/.test(target)) {
    throw invalidArgs(`target ${target} is not an address a client can connect to`);
  }
  return {
    target,
    config: arg(args, 'config', '/etc/redis/redis.conf'),
    pidfile: arg(args, 'pidfile', '/run/redis-wasmbeat.pid'),
    startTimeoutMs: intArg(args, 'start_timeout', 10, 1, 15) * 1000,
    stopTimeoutMs: intArg(args, 'stop_timeout', 10, 1, 15) * 1000,
  };
}

/** Whether `target` accepts a TCP connection now; a denied probe is raised
 *  (a grant problem the operator must see), any other error is "closed". */
function answers(c: Conf): boolean {
  try {
    tcpConnect(c.target, PROBE_MS);
    return true;
  } catch (e) {
    if (asWitError(e).tag === 'denied') throw e;
    return false;
  }
}

/** Poll `cond` every POLL_MS until it holds or `ms` passed. */
async function waitUntil(ms: number, cond: () => boolean): Promise<boolean> {
  const until = Date.now() + ms;
  for (;;) {
    if (cond()) return true;
    if (Date.now() >= until) return false;
    await sleep(POLL_MS);
  }
}

function how(out: Output): string {
  if (out.signal !== undefined) return `killed by signal ${out.signal}`;
  if (out.exitCode !== undefined) return `exit code ${out.exitCode}`;
  return 'unknown status';
}

function stderrTail(out: Output): string {
  const lines = new TextDecoder()
    .decode(out.stderr)
    .split('\n')
    .map((l) => l.trim())
    .filter((l) => l !== '');
  const tail = lines.slice(-5).join(' | ');
  return tail === '' ? '' : `: ${tail.slice(-1500)}`;
}

function validate(c: Conf): void {
  const kind = inspect(c.config);
  if (kind !== 'file') {
    throw notInstalled(`redis configuration ${c.config} is ${kind === 'missing' ? 'missing' : `a ${kind}`}`);
  }
}

function monitor(c: Conf): Status {
  const pid = pidfilePid(c.pidfile);
  if (pid === undefined) {
    if (answers(c)) warn(`${c.target} answers, but ${c.pidfile} names no live redis: not this resource's`);
    return 'not-running';
  }
  if (answers(c)) return 'running';
  warn(`redis runs as pid ${pid} but ${c.target} does not answer`);
  return 'failed';
}

async function killSpawned(pid: number): Promise<void> {
  try {
    signal(pid, SIGKILL);
  } catch {
    // It exited between the check and the signal.
  }
  await waitUntil(2000, () => !isAlive(pid));
}

async function start(c: Conf): Promise<void> {
  validate(c);
  const t0 = Date.now();
  const deadline = t0 + c.startTimeoutMs;
  const running = pidfilePid(c.pidfile);
  if (running !== undefined) {
    // Already started, perhaps still loading its dataset.
    if (await waitUntil(c.startTimeoutMs, () => !isAlive(running) || answers(c))) {
      if (isAlive(running)) {
        info(`redis already running as pid ${running}, answering at ${c.target}`);
        return;
      }
    } else {
      throw failed(`redis runs as pid ${running} but ${c.target} does not answer after ${c.startTimeoutMs / 1000} s`);
    }
  }
  // A listener the pid file does not name is someone else's: start must
  // not report it as ours (a stopping redis gets a moment to close).
  if (!(await waitUntil(Math.min(PORT_GRACE_MS, c.startTimeoutMs), () => !answers(c)))) {
    throw failed(`${c.target} already accepts connections, but ${c.pidfile} names no live redis`);
  }
  let pid: number;
  try {
    pid = spawn('server');
  } catch (e) {
    const w = asWitError(e);
    if (w.tag === 'not-installed') throw notInstalled(`redis-server is not installed (${w.val})`);
    throw w;
  }
  for (let delay = 5; ; delay = Math.min(POLL_MS, delay * 2)) {
    const out = spawnedExit(pid);
    if (out !== undefined) {
      // redis refuses a bad config or a busy port by exiting at once.
      const err = `redis-server exited during start (${how(out)})${stderrTail(out)}`;
      throw /Bad directive|FATAL CONFIG/.test(err) ? notConfigured(err) : failed(err);
    }
    if (answers(c) && pidfilePid(c.pidfile) === pid) break;
    if (Date.now() >= deadline) {
      await killSpawned(pid);
      throw failed(
        `redis-server (pid ${pid}) did not answer at ${c.target} with ${c.pidfile} naming it ` +
          `within ${c.startTimeoutMs / 1000} s; killed it again`,
      );
    }
    await sleep(delay);
  }
  info(`redis-server started as pid ${pid} in ${Date.now() - t0} ms, answering at ${c.target}`);
}

async function stop(c: Conf): Promise<void> {
  const t0 = Date.now();
  const pid = pidfilePid(c.pidfile);
  if (pid === undefined) {
    // Monitor calls this not-running, so stop has succeeded: a listener the
    // pid file does not name is not this resource's (on a floating address
    // it is usually the peer's copy, reached over the wire).
    if (answers(c)) {
      warn(`redis is not running here (${c.pidfile} names no live redis); what answers at ${c.target} is not this resource's`);
    } else {
      info(`redis is not running (nothing answers at ${c.target})`);
    }
    return;
  }
  info(`stopping redis (pid ${pid}) with SIGTERM`);
  try {
    signal(pid, SIGTERM);
  } catch (e) {
    if (isAlive(pid)) throw e;
  }
  if (!(await waitUntil(c.stopTimeoutMs, () => !isAlive(pid)))) {
    warn(`redis (pid ${pid}) still running ${c.stopTimeoutMs / 1000} s after SIGTERM; sending SIGKILL`);
    try {
      signal(pid, SIGKILL);
    } catch {
      // It may exit between the check and the signal.
    }
    if (!(await waitUntil(KILL_GRACE_MS, () => !isAlive(pid)))) {
      throw failed(`redis (pid ${pid}) survived SIGKILL for ${KILL_GRACE_MS / 1000} s`);
    }
  }
  if (!(await waitUntil(PORT_GRACE_MS, () => !answers(c)))) {
    throw failed(`redis (pid ${pid}) is gone but ${c.target} still accepts connections`);
  }
  info(`redis (pid ${pid}) stopped in ${Date.now() - t0} ms`);
}

const META: Meta = {
  name: 'redis-ts',
  version: VERSION,
  description:
    "Debian's redis-server, run in the foreground on the resource's address, healthy while " +
    'its port accepts connections (written in TypeScript).',
  params: [
    { name: 'target', description: 'ip:port redis listens on (the service address)', type: 'endpoint', required: true },
    { name: 'config', description: 'redis.conf to start from', type: 'path', default: '/etc/redis/redis.conf', required: false },
    { name: 'pidfile', description: 'pid file redis writes', type: 'path', default: '/run/redis-wasmbeat.pid', required: false },
    { name: 'start_timeout', description: 'seconds start waits for redis to answer (1-15)', type: 'integer', default: '10', required: false },
    { name: 'stop_timeout', description: 'seconds stop waits after SIGTERM before SIGKILL (1-15)', type: 'integer', default: '10', required: false },
  ],
  needs: [
    {
      when: [],
      netlinkRead: false,
      addresses: [],
      commands: [
        {
          name: 'server',
          description: 'redis-server in the foreground, bound to the target only',
          // The config's daemonize/bind/port/pidfile are overridden: the
          // agent must see the server it started, on the resource's address.
          argv: [
            REDIS, '{config}', '--daemonize', 'no', '--supervised', 'no',
            '--bind', '{target:host}', '--port', '{target:port}', '--pidfile', '{pidfile}',
          ],
          capabilities: [],
        },
      ],
      pidfiles: ['{pidfile}'],
      probes: ['{target}'],
      paths: ['{config}'],
    },
  ],
};

type AgentExports = typeof import('wasmbeat:agent/agent@0.2.0');
/** The export's signature, allowed to return a promise (componentize-js
 *  runs the event loop until it settles). */
type MaybeAsync<F> = F extends (...a: infer A) => infer R ? (...a: A) => R | Promise<R> : never;

export const agent: { [K in keyof AgentExports]: MaybeAsync<AgentExports[K]> } = {
  metaData: () => META,
  validate: (args) => guard('validate', () => validate(conf(args))),
  start: (args) => guard('start', () => start(conf(args))),
  stop: (args) => guard('stop', () => stop(conf(args))),
  monitor: (args) => guard('monitor', () => monitor(conf(args))),
};
