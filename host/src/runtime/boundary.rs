//! Size caps on what an agent passes into the host. Every string and list
//! parameter of a host import is checked here before any capability sees
//! it, so no grant check, log line or netlink message is ever built from a
//! megabyte of agent text. (The bytes an agent can copy into the host in
//! one call are bounded earlier still, by the store's hostcall fuel:
//! [`HOSTCALL_FUEL`].)

use crate::caps::CapError;

/// Bytes of one string parameter (a path, an address, a program argument).
/// Linux paths are at most 4096 bytes; nothing an agent names is longer.
pub const MAX_STRING_BYTES: usize = 4096;

/// Items of one list parameter (program arguments).
pub const MAX_LIST_ITEMS: usize = 256;

/// Bytes of all strings of one list together (Linux's own limit for one
/// argument string is 128 KiB; servers need far less).
pub const MAX_LIST_BYTES: usize = 64 * 1024;

/// Bytes an agent may copy into the host in one call, all parameters
/// together (wasmtime's hostcall fuel); past it the call traps before the
/// host allocates anything. Above every cap here plus a log line's worth.
pub const HOSTCALL_FUEL: usize = 1 << 20;

/// Check one string parameter named `what` (for the error message).
pub fn string(what: &str, value: &str) -> Result<(), CapError> {
    if value.len() > MAX_STRING_BYTES {
        return Err(CapError::InvalidArgs(format!(
            "{what} is {} bytes; at most {MAX_STRING_BYTES} are accepted",
            value.len()
        )));
    }
    Ok(())
}

/// Check an optional string parameter.
pub fn opt_string(what: &str, value: Option<&str>) -> Result<(), CapError> {
    value.map_or(Ok(()), |v| string(what, v))
}

/// Check a list-of-strings parameter: item count, each item, total bytes.
pub fn strings(what: &str, values: &[String]) -> Result<(), CapError> {
    if values.len() > MAX_LIST_ITEMS {
        return Err(CapError::InvalidArgs(format!(
            "{what} has {} items; at most {MAX_LIST_ITEMS} are accepted",
            values.len()
        )));
    }
    let mut total = 0usize;
    for (i, v) in values.iter().enumerate() {
        string(&format!("{what}[{i}]"), v)?;
        total += v.len();
    }
    if total > MAX_LIST_BYTES {
        return Err(CapError::InvalidArgs(format!(
            "{what} totals {total} bytes; at most {MAX_LIST_BYTES} are accepted"
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limits_accept_up_to_and_refuse_past_the_cap() {
        assert!(string("path", &"a".repeat(MAX_STRING_BYTES)).is_ok());
        let e = string("path", &"a".repeat(MAX_STRING_BYTES + 1)).unwrap_err();
        assert!(
            matches!(&e, CapError::InvalidArgs(m) if m.contains("path is 4097 bytes")),
            "{e}"
        );
        assert!(opt_string("label", None).is_ok());

        let ok: Vec<String> = vec!["x".into(); MAX_LIST_ITEMS];
        assert!(strings("args", &ok).is_ok());
        let many: Vec<String> = vec!["x".into(); MAX_LIST_ITEMS + 1];
        assert!(strings("args", &many).is_err());
        let long_item = vec!["y".repeat(MAX_STRING_BYTES + 1)];
        let e = strings("args", &long_item).unwrap_err();
        assert!(e.to_string().contains("args[0]"), "{e}");
        let heavy: Vec<String> = vec!["z".repeat(4000); 20];
        let e = strings("args", &heavy).unwrap_err();
        assert!(e.to_string().contains("totals 80000 bytes"), "{e}");
    }
}
