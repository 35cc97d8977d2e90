/*
 * @NAME@: a wasmbeat address agent in C (world `address-agent`: log,
 * netlink, announce). It configures the address in its `ip` parameter:
 * start adds it (the host picks interface, prefix and broadcast from the
 * grant) and announces it, monitor looks for it, stop removes it. Replace
 * the body of each operation with what your resource needs; keep them
 * idempotent.
 *
 * Ownership (see the generated address_agent.h): an export owns its
 * `args` and frees them; strings and lists handed back to the host are
 * heap allocations the generated post-return code frees.
 */
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "address_agent.h"

typedef address_agent_string_t str_t;
typedef wasmbeat_agent_types_error_t error_t;

static void say(wasmbeat_agent_log_level_t level, const char *msg) {
  str_t s;
  address_agent_string_set(&s, msg); /* borrowed by the import */
  wasmbeat_agent_log_log(level, &s);
}

/* Set `err` to invalid-args / failed with a heap copy of `msg`. */
static bool fail(error_t *err, uint8_t tag, const char *msg) {
  err->tag = tag;
  address_agent_string_dup(&err->val.failed, msg);
  return false;
}

/* The `ip` argument (borrowed from args), or NULL. */
static const str_t *ip_arg(const wasmbeat_agent_types_args_t *args) {
  for (size_t i = 0; i < args->len; i++) {
    const str_t *k = &args->ptr[i].f0;
    if (k->len == 2 && memcmp(k->ptr, "ip", 2) == 0) return &args->ptr[i].f1;
  }
  return NULL;
}

/* Whether `ip` is configured here; false with `err` set on an error. */
static bool configured(const str_t *ip, bool *yes, error_t *err) {
  wasmbeat_agent_netlink_list_address_t addrs;
  if (!wasmbeat_agent_netlink_list_addresses(&addrs, err)) return false;
  *yes = false;
  for (size_t i = 0; i < addrs.len; i++) {
    const str_t *a = &addrs.ptr[i].address;
    if (a->len == ip->len && memcmp(a->ptr, ip->ptr, ip->len) == 0) *yes = true;
  }
  wasmbeat_agent_netlink_list_address_free(&addrs);
  return true;
}

static bool do_start(const str_t *ip, error_t *err) {
  bool up;
  if (!configured(ip, &up, err)) return false;
  if (up) return true;
  wasmbeat_agent_netlink_assignment_t a;
  if (!wasmbeat_agent_netlink_add_address((str_t *)ip, &a, err)) return false;
  wasmbeat_agent_netlink_assignment_free(&a);
  say(WASMBEAT_AGENT_LOG_LEVEL_INFO, "address added");
  /* Neighbours learn the new owner; a refused announcement (budget) does
   * not make the address unusable. */
  error_t e;
  if (!wasmbeat_agent_announce_announce((str_t *)ip, 3, 200, &e)) {
    say(WASMBEAT_AGENT_LOG_LEVEL_WARN, "announcing the address was refused");
    wasmbeat_agent_types_error_free(&e);
  }
  return true;
}

static bool do_stop(const str_t *ip, error_t *err) {
  uint32_t n;
  return wasmbeat_agent_netlink_remove_address((str_t *)ip, &n, err);
}

static void set_str(str_t *s, const char *v) { address_agent_string_dup(s, v); }

void exports_wasmbeat_agent_agent_meta_data(exports_wasmbeat_agent_agent_meta_t *ret) {
  memset(ret, 0, sizeof *ret);
  set_str(&ret->name, "@NAME@");
  set_str(&ret->version, "0.1.0");
  set_str(&ret->description, "Configures one address (a wasmbeat agent skeleton in C).");
  wasmbeat_agent_types_param_t *p = calloc(1, sizeof *p);
  wasmbeat_agent_types_needs_t *nd = calloc(1, sizeof *nd);
  wasmbeat_agent_types_address_params_t *ap = calloc(1, sizeof *ap);
  if (!p || !nd || !ap) abort();
  set_str(&p->name, "ip");
  set_str(&p->description, "the address to configure");
  p->type = WASMBEAT_AGENT_TYPES_PARAM_TYPE_ADDRESS;
  p->required = true;
  ret->params.ptr = p;
  ret->params.len = 1;
  /* What the administrator grants with `accept_declared = true`. */
  set_str(&ap->ip, "ip");
  nd->netlink_read = true;
  nd->addresses.ptr = ap;
  nd->addresses.len = 1;
  ret->needs.ptr = nd;
  ret->needs.len = 1;
}

/* Find `ip`, run one operation, free what the export owns. */
#define WITH_IP(args, err, call)                                                                   \
  do {                                                                                             \
    const str_t *ip = ip_arg(args);                                                                \
    bool ok_ = ip ? (call) : fail(err, WASMBEAT_AGENT_TYPES_ERROR_INVALID_ARGS, "ip is required"); \
    exports_wasmbeat_agent_agent_args_free(args);                                                  \
    return ok_;                                                                                    \
  } while (0)

bool exports_wasmbeat_agent_agent_validate(exports_wasmbeat_agent_agent_args_t *args,
                                           exports_wasmbeat_agent_agent_error_t *err) {
  WITH_IP(args, err, true);
}

bool exports_wasmbeat_agent_agent_start(exports_wasmbeat_agent_agent_args_t *args,
                                        exports_wasmbeat_agent_agent_error_t *err) {
  WITH_IP(args, err, do_start(ip, err));
}

bool exports_wasmbeat_agent_agent_stop(exports_wasmbeat_agent_agent_args_t *args,
                                       exports_wasmbeat_agent_agent_error_t *err) {
  WITH_IP(args, err, do_stop(ip, err));
}

bool exports_wasmbeat_agent_agent_monitor(exports_wasmbeat_agent_agent_args_t *args,
                                          exports_wasmbeat_agent_agent_status_t *ret,
                                          exports_wasmbeat_agent_agent_error_t *err) {
  bool up = false;
  WITH_IP(args, err,
          configured(ip, &up, err) &&
              (*ret = up ? WASMBEAT_AGENT_TYPES_STATUS_RUNNING : WASMBEAT_AGENT_TYPES_STATUS_NOT_RUNNING, true));
}
