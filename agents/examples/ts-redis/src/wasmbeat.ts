// A small SDK for wasmbeat agents in TypeScript (componentize-js).
//
// Why it exists: componentize-js turns an export's thrown value into the
// WIT `error` variant only when the value *is* that variant
// (`{ tag: 'failed', val: '...' }`); anything else, a plain `Error`
// included, traps, and the operator reads "agent crashed" instead of the
// reason. `guard` wraps each export so every failure leaves as the
// variant, and the constructors below make throwing the right one short.

import type {
  Args,
  Error as WitError,
} from 'wasmbeat:agent/types@0.2.0';
import { log } from 'wasmbeat:agent/log@0.2.0';

export type { WitError };

/** `failed(msg)`: the operation failed (OCF 1). */
export const failed = (val: string): WitError => ({ tag: 'failed', val });
/** `invalid-args(msg)`: the arguments are wrong (OCF 2). */
export const invalidArgs = (val: string): WitError => ({ tag: 'invalid-args', val });
/** `not-installed(msg)`: a program or file it needs is missing (OCF 5). */
export const notInstalled = (val: string): WitError => ({ tag: 'not-installed', val });
/** `not-configured(msg)`: the configuration cannot work here (OCF 6). */
export const notConfigured = (val: string): WitError => ({ tag: 'not-configured', val });

const TAGS = new Set([
  'invalid-args',
  'not-installed',
  'not-configured',
  'denied',
  'timeout',
  'failed',
]);

/** Whether `v` is already the WIT `error` variant. */
export function isWitError(v: unknown): v is WitError {
  return typeof v === 'object' && v !== null && TAGS.has((v as { tag?: unknown }).tag as string);
}

/**
 * The WIT error inside anything a host call or our own code threw. A
 * host import that returns `err(e)` throws an object carrying `e` as
 * `payload`; a bug throws an `Error`, which becomes `failed` with its text.
 */
export function asWitError(e: unknown): WitError {
  if (isWitError(e)) return e;
  const payload = (e as { payload?: unknown } | null)?.payload;
  if (isWitError(payload)) return payload;
  const text = e instanceof Error ? `${e.name}: ${e.message}` : String(e);
  return failed(`internal error: ${text}`);
}

/** The message of a WIT error, for log lines and other errors. */
export function describe(e: WitError): string {
  return e.tag === 'timeout' ? 'timeout' : `${e.tag}: ${e.val}`;
}

/** Run one export; whatever it throws leaves as the WIT variant. */
export async function guard<T>(op: string, body: () => T | Promise<T>): Promise<T> {
  try {
    return await body();
  } catch (e) {
    const w = asWitError(e);
    if (!isWitError(e) && (e as { payload?: unknown } | null)?.payload === undefined) {
      // Our own bug, not a refusal: worth the daemon's error log too.
      log('error', `${op}: ${describe(w)}`);
    }
    throw w;
  }
}

/** Wait `ms` milliseconds without spinning (the host's clock pollable). */
export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** Log at info level. */
export const info = (msg: string): void => log('info', msg);
/** Log at warn level. */
export const warn = (msg: string): void => log('warn', msg);

/** The value of parameter `name`, or `fallback` (the declared default). */
export function arg(args: Args, name: string, fallback: string): string;
export function arg(args: Args, name: string): string | undefined;
export function arg(args: Args, name: string, fallback?: string): string | undefined {
  const hit = args.find(([k]) => k === name);
  return hit ? hit[1] : fallback;
}

/** An integer parameter within `[min, max]`, else `invalid-args`. */
export function intArg(args: Args, name: string, fallback: number, min: number, max: number): number {
  const text = arg(args, name, String(fallback));
  const n = Number(text);
  if (!Number.isInteger(n) || n < min || n > max) {
    throw invalidArgs(`${name}=${text}: must be an integer between ${min} and ${max}`);
  }
  return n;
}
