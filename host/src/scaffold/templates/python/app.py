"""@NAME@: a wasmbeat address agent (world `address-agent`: log, netlink,
announce), built with componentize-py. It configures the address in its
`ip` parameter: start adds it (the host picks interface, prefix and
broadcast from the grant) and announces it, monitor looks for it, stop
removes it. Replace the body of each operation with what your resource
needs; keep them idempotent.
"""

from componentize_py_types import Err
from wit_world import exports
from wit_world.imports import announce, log, netlink, types


def ip(args):
    for k, v in args:
        if k == "ip":
            return v
    raise Err(types.Error_InvalidArgs("ip is required"))


def configured(addr):
    return any(a.address == addr for a in netlink.list_addresses())


class Agent(exports.Agent):
    def meta_data(self):
        return types.Meta(
            name="@NAME@",
            version="0.1.0",
            description="Configures one address (a wasmbeat agent skeleton in Python).",
            params=[types.Param(name="ip", description="the address to configure",
                                type=types.ParamType.ADDRESS, default=None, required=True)],
            # What the administrator grants with `accept_declared = true`.
            needs=[types.Needs(when=[], netlink_read=True,
                               addresses=[types.AddressParams(ip="ip", cidr_netmask=None,
                                                              nic=None, broadcast=None)],
                               commands=[], pidfiles=[], probes=[], paths=[])])

    def validate(self, args):
        ip(args)

    def start(self, args):
        addr = ip(args)
        if configured(addr):
            return
        a = netlink.add_address(addr)
        log.log(log.Level.INFO, "added %s/%d on %s" % (addr, a.prefix_len, a.link_name))
        try:
            # Neighbours learn the new owner; a refused announcement
            # (budget) does not make the address unusable.
            announce.announce(addr, 3, 200)
        except Err as e:
            log.log(log.Level.WARN, "announcing %s: %r" % (addr, e.value))

    def stop(self, args):
        addr = ip(args)
        n = netlink.remove_address(addr)
        log.log(log.Level.INFO, "removed %s (%d interface(s))" % (addr, n))

    def monitor(self, args):
        return types.Status.RUNNING if configured(ip(args)) else types.Status.NOT_RUNNING
