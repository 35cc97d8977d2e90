// @NAME@: a wasmbeat address agent in Go (world address-agent: log,
// netlink, announce). It configures the address in its `ip` parameter:
// start adds it (the host picks interface, prefix and broadcast from the
// grant) and announces it, monitor looks for it, stop removes it. Replace
// the body of each operation with what your resource needs; keep them
// idempotent. Return the WIT error variant (MakeErrorFailed(...), ...);
// a panic traps, which the operator only sees as "agent crashed".
//
// build.sh generates the module around this file with `wit-bindgen go`
// (package export_wasmbeat_agent_agent holds the exports).
package export_wasmbeat_agent_agent

import (
	"fmt"

	announce "wit_component/wasmbeat_agent_announce"
	log "wit_component/wasmbeat_agent_log"
	netlink "wit_component/wasmbeat_agent_netlink"
	. "wit_component/wasmbeat_agent_types"

	witTypes "go.bytecodealliance.org/pkg/wit/types"
)

type args = []witTypes.Tuple2[string, string]
type unitResult = witTypes.Result[witTypes.Unit, Error]

var ok = witTypes.Ok[witTypes.Unit, Error](witTypes.Unit{})

func fail(e Error) unitResult { return witTypes.Err[witTypes.Unit](e) }

// ip is the `ip` argument (the host refuses a resource without it).
func ip(a args) (string, bool) {
	for _, kv := range a {
		if kv.F0 == "ip" {
			return kv.F1, true
		}
	}
	return "", false
}

// configured says whether the address is on this node.
func configured(addr string) (bool, *Error) {
	r := netlink.ListAddresses()
	if r.IsErr() {
		e := r.Err()
		return false, &e
	}
	for _, a := range r.Ok() {
		if a.Address == addr {
			return true, nil
		}
	}
	return false, nil
}

// MetaData describes the agent, its parameter and what it needs.
func MetaData() Meta {
	return Meta{
		Name:        "@NAME@",
		Version:     "0.1.0",
		Description: "Configures one address (a wasmbeat agent skeleton in Go).",
		Params: []Param{{Name: "ip", Description: "the address to configure",
			Type: ParamType_Address, Default: witTypes.None[string](), Required: true}},
		// What the administrator grants with `accept_declared = true`.
		Needs: []Needs{{
			When:        []witTypes.Tuple2[string, []string]{},
			NetlinkRead: true,
			Addresses: []AddressParams{{Ip: "ip", CidrNetmask: witTypes.None[string](),
				Nic: witTypes.None[string](), Broadcast: witTypes.None[string]()}},
			Commands: []Command{}, Pidfiles: []string{}, Probes: []string{}, Paths: []string{},
		}},
	}
}

// Validate checks the arguments.
func Validate(a args) unitResult {
	if _, found := ip(a); !found {
		return fail(MakeErrorInvalidArgs("ip is required"))
	}
	return ok
}

// Start adds and announces the address unless it is there.
func Start(a args) unitResult {
	addr, found := ip(a)
	if !found {
		return fail(MakeErrorInvalidArgs("ip is required"))
	}
	up, err := configured(addr)
	if err != nil {
		return fail(*err)
	}
	if up {
		return ok
	}
	r := netlink.AddAddress(addr)
	if r.IsErr() {
		return fail(r.Err())
	}
	as := r.Ok()
	log.Log(log.Level_Info, fmt.Sprintf("added %s/%d on %s", addr, as.PrefixLen, as.LinkName))
	// Neighbours learn the new owner; a refused announcement (budget) does
	// not make the address unusable.
	if r := announce.Announce(addr, 3, 200); r.IsErr() {
		log.Log(log.Level_Warn, "announcing "+addr+" was refused")
	}
	return ok
}

// Stop removes the address wherever the grant allows.
func Stop(a args) unitResult {
	addr, found := ip(a)
	if !found {
		return fail(MakeErrorInvalidArgs("ip is required"))
	}
	if r := netlink.RemoveAddress(addr); r.IsErr() {
		return fail(r.Err())
	}
	return ok
}

// Monitor says whether the address is configured here.
func Monitor(a args) witTypes.Result[Status, Error] {
	addr, found := ip(a)
	if !found {
		return witTypes.Err[Status](MakeErrorInvalidArgs("ip is required"))
	}
	up, err := configured(addr)
	if err != nil {
		return witTypes.Err[Status](*err)
	}
	if up {
		return witTypes.Ok[Status, Error](Status_Running)
	}
	return witTypes.Ok[Status, Error](Status_NotRunning)
}
