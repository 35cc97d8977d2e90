//! @NAME@: a wasmbeat address agent (world `address-agent`: log, netlink,
//! announce). It configures the address in its `ip` parameter: start adds
//! it (the host picks interface, prefix and broadcast from the grant) and
//! announces it, monitor looks for it, stop removes it. Replace the body of
//! each operation with what your resource needs; keep them idempotent.

wit_bindgen::generate!({
    path: "wit",
    world: "address-agent",
});

use exports::wasmbeat::agent::agent::Guest;
use wasmbeat::agent::announce::announce;
use wasmbeat::agent::log::{log, Level};
use wasmbeat::agent::netlink::{add_address, list_addresses, remove_address};
use wasmbeat::agent::types::{AddressParams, Error, Meta, Needs, Param, ParamType, Status};

type Args = Vec<(String, String)>;

struct Agent;

/// The `ip` argument (required: the host refuses a resource without it).
fn ip(args: &Args) -> Result<String, Error> {
    args.iter()
        .find(|(k, _)| k == "ip")
        .map(|(_, v)| v.clone())
        .ok_or_else(|| Error::InvalidArgs("ip is required".into()))
}

/// Whether the address is configured on this node.
fn configured(ip: &str) -> Result<bool, Error> {
    Ok(list_addresses()?.iter().any(|a| a.address == ip))
}

impl Guest for Agent {
    fn meta_data() -> Meta {
        Meta {
            name: "@NAME@".into(),
            version: "0.1.0".into(),
            description: "Configures one address (a wasmbeat agent skeleton in Rust).".into(),
            params: vec![Param {
                name: "ip".into(),
                description: "the address to configure".into(),
                type_: ParamType::Address,
                default: None,
                required: true,
            }],
            // What the administrator grants with `accept_declared = true`.
            needs: vec![Needs {
                when: vec![],
                netlink_read: true,
                addresses: vec![AddressParams {
                    ip: "ip".into(),
                    cidr_netmask: None,
                    nic: None,
                    broadcast: None,
                }],
                commands: vec![],
                pidfiles: vec![],
                probes: vec![],
                paths: vec![],
            }],
        }
    }
    fn validate(args: Args) -> Result<(), Error> {
        ip(&args).map(|_| ())
    }
    fn start(args: Args) -> Result<(), Error> {
        let ip = ip(&args)?;
        if configured(&ip)? {
            return Ok(());
        }
        let a = add_address(&ip)?;
        log(Level::Info, &format!("added {ip}/{} on {}", a.prefix_len, a.link_name));
        // Neighbours learn the new owner; a refused announcement (budget)
        // does not make the address unusable.
        if let Err(e) = announce(&ip, 3, 200) {
            log(Level::Warn, &format!("announcing {ip}: {e:?}"));
        }
        Ok(())
    }
    fn stop(args: Args) -> Result<(), Error> {
        let ip = ip(&args)?;
        let n = remove_address(&ip)?;
        log(Level::Info, &format!("removed {ip} ({n} interface(s))"));
        Ok(())
    }
    fn monitor(args: Args) -> Result<Status, Error> {
        Ok(if configured(&ip(&args)?)? {
            Status::Running
        } else {
            Status::NotRunning
        })
    }
}

export!(Agent);
