// @NAME@: a wasmbeat address agent in TypeScript (world `address-agent`:
// log, netlink, announce), built with componentize-js. It configures the
// address in its `ip` parameter: start adds it (the host picks interface,
// prefix and broadcast from the grant) and announces it, monitor looks
// for it, stop removes it. Replace the body of each operation with what
// your resource needs; keep them idempotent. Throw the WIT error variant
// (`failed(...)`, `invalidArgs(...)` from ./wasmbeat.js); `guard` turns
// anything else into `failed` instead of a trap.

import type { Args, Meta, Status } from 'wasmbeat:agent/types@0.2.0';
import { addAddress, listAddresses, removeAddress } from 'wasmbeat:agent/netlink@0.2.0';
import { announce } from 'wasmbeat:agent/announce@0.2.0';
import { arg, asWitError, describe, guard, info, invalidArgs, warn } from './wasmbeat.js';

function ip(args: Args): string {
  const v = arg(args, 'ip');
  if (v === undefined) throw invalidArgs('ip is required');
  return v;
}

const configured = (ip: string): boolean => listAddresses().some((a) => a.address === ip);

function start(ip: string): void {
  if (configured(ip)) return;
  const a = addAddress(ip);
  info(`added ${ip}/${a.prefixLen} on ${a.linkName}`);
  try {
    // Neighbours learn the new owner; a refused announcement (budget)
    // does not make the address unusable.
    announce(ip, 3, 200);
  } catch (e) {
    warn(`announcing ${ip}: ${describe(asWitError(e))}`);
  }
}

function stop(ip: string): void {
  info(`removed ${ip} (${removeAddress(ip)} interface(s))`);
}

const monitor = (ip: string): Status => (configured(ip) ? 'running' : 'not-running');

const META: Meta = {
  name: '@NAME@',
  version: '0.1.0',
  description: 'Configures one address (a wasmbeat agent skeleton in TypeScript).',
  params: [{ name: 'ip', description: 'the address to configure', type: 'address', required: true }],
  // What the administrator grants with `accept_declared = true`.
  needs: [
    {
      when: [],
      netlinkRead: true,
      addresses: [{ ip: 'ip' }],
      commands: [],
      pidfiles: [],
      probes: [],
      paths: [],
    },
  ],
};

type AgentExports = typeof import('wasmbeat:agent/agent@0.2.0');
type MaybeAsync<F> = F extends (...a: infer A) => infer R ? (...a: A) => R | Promise<R> : never;

export const agent: { [K in keyof AgentExports]: MaybeAsync<AgentExports[K]> } = {
  metaData: () => META,
  validate: (args) => guard('validate', () => void ip(args)),
  start: (args) => guard('start', () => start(ip(args))),
  stop: (args) => guard('stop', () => stop(ip(args))),
  monitor: (args) => guard('monitor', () => monitor(ip(args))),
};
