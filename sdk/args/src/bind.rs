//! Binding a resource's haresources arguments to the parameters its agent
//! declares, heartbeat-style positionally (`IPaddr::10.0.0.1::eth0` binds
//! `ip`, then `cidr_netmask`, ...) or OCF-style by name (`nic=eth0`).

use std::fmt;

/// One parameter as the agent declared it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Declared<'a> {
    /// Its name.
    pub name: &'a str,
    /// Whether binding fails without it.
    pub required: bool,
    /// One line for messages.
    pub description: &'a str,
}

/// Why arguments do not fit the declared parameters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BindError {
    /// `name=value` given twice for one parameter.
    Duplicate(String),
    /// More arguments than parameters.
    TooMany {
        /// Agent name.
        agent: String,
        /// The declared names, in order.
        names: Vec<String>,
        /// The first argument with no parameter left.
        extra: String,
    },
    /// A required parameter has no value.
    Missing {
        /// Agent name.
        agent: String,
        /// The parameter.
        name: String,
        /// Its description.
        description: String,
    },
}

impl fmt::Display for BindError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            BindError::Duplicate(k) => write!(f, "parameter {k} given twice"),
            BindError::TooMany {
                agent,
                names,
                extra,
            } => write!(
                f,
                "{agent} takes at most {} argument(s) ({}); extra argument {extra:?}",
                names.len(),
                names.join(", ")
            ),
            BindError::Missing {
                agent,
                name,
                description,
            } => write!(f, "{agent} needs parameter {name} ({description})"),
        }
    }
}

impl std::error::Error for BindError {}

/// Bind `args` to `params`, left to right: an argument `name=value` naming
/// a declared parameter binds by name; any other argument binds to the next
/// declared parameter not yet bound. A name bound twice (also once
/// positionally, once by name) is an error, never a silent shift.
pub fn bind(
    agent: &str,
    params: &[Declared<'_>],
    args: &[String],
) -> Result<Vec<(String, String)>, BindError> {
    let mut bound: Vec<(String, String)> = Vec::new();
    let is_bound = |bound: &[(String, String)], n: &str| bound.iter().any(|(k, _)| k == n);
    let mut next = 0usize;
    for a in args {
        if let Some((k, v)) = a.split_once('=') {
            if params.iter().any(|p| p.name == k) {
                if is_bound(&bound, k) {
                    return Err(BindError::Duplicate(k.to_string()));
                }
                bound.push((k.to_string(), v.to_string()));
                continue;
            }
        }
        while next < params.len() && is_bound(&bound, params[next].name) {
            next += 1;
        }
        let Some(p) = params.get(next) else {
            return Err(BindError::TooMany {
                agent: agent.to_string(),
                names: params.iter().map(|p| p.name.to_string()).collect(),
                extra: a.clone(),
            });
        };
        bound.push((p.name.to_string(), a.clone()));
        next += 1;
    }
    if let Some(p) = params
        .iter()
        .find(|p| p.required && !is_bound(&bound, p.name))
    {
        return Err(BindError::Missing {
            agent: agent.to_string(),
            name: p.name.to_string(),
            description: p.description.to_string(),
        });
    }
    Ok(bound)
}

#[cfg(test)]
mod tests {
    use super::*;

    const PARAMS: [Declared<'static>; 3] = [
        Declared {
            name: "ip",
            required: true,
            description: "the ip",
        },
        Declared {
            name: "nic",
            required: false,
            description: "the nic",
        },
        Declared {
            name: "count",
            required: false,
            description: "the count",
        },
    ];

    fn s(v: &[&str]) -> Vec<String> {
        v.iter().map(|x| x.to_string()).collect()
    }

    fn pairs(v: &[(&str, &str)]) -> Vec<(String, String)> {
        v.iter()
            .map(|(a, b)| (a.to_string(), b.to_string()))
            .collect()
    }

    #[test]
    fn positional_then_named() {
        assert_eq!(
            bind("X", &PARAMS, &s(&["10.0.0.1", "eth0"])).unwrap(),
            pairs(&[("ip", "10.0.0.1"), ("nic", "eth0")])
        );
        // A named argument takes its parameter out of the positional order.
        assert_eq!(
            bind("X", &PARAMS, &s(&["count=3", "10.0.0.1", "eth0"])).unwrap(),
            pairs(&[("count", "3"), ("ip", "10.0.0.1"), ("nic", "eth0")])
        );
        assert_eq!(
            bind("X", &PARAMS, &s(&["10.0.0.1", "nic=eth1", "7"])).unwrap(),
            pairs(&[("ip", "10.0.0.1"), ("nic", "eth1"), ("count", "7")])
        );
        // `=` in a value that names no parameter is positional.
        assert_eq!(
            bind("X", &PARAMS, &s(&["a=b"])).unwrap(),
            pairs(&[("ip", "a=b")])
        );
    }

    #[test]
    fn errors() {
        assert!(matches!(
            bind("X", &PARAMS, &s(&["a", "b", "c", "d"])),
            Err(BindError::TooMany { extra, .. }) if extra == "d"
        ));
        assert!(matches!(
            bind("X", &PARAMS, &s(&[])),
            Err(BindError::Missing { name, .. }) if name == "ip"
        ));
        assert_eq!(
            bind("X", &PARAMS, &s(&["ip=1", "ip=2"])),
            Err(BindError::Duplicate("ip".into()))
        );
        // Positionally bound, then named again: an error, not a shift.
        assert_eq!(
            bind("X", &PARAMS, &s(&["10.0.0.1", "ip=2"])),
            Err(BindError::Duplicate("ip".into()))
        );
        let e = bind("X", &PARAMS, &s(&["a", "b", "c", "d"])).unwrap_err();
        assert_eq!(
            e.to_string(),
            "X takes at most 3 argument(s) (ip, nic, count); extra argument \"d\""
        );
    }
}
