//! `OCF_RESKEY_*` environment variables bound to an agent's declared
//! parameters, and the resource's identity under Pacemaker.

use crate::config::token::ResourceToken;
use crate::grant::Policy;
use crate::runtime::{bind_args, Meta};

/// Prefix of the variables Pacemaker passes resource parameters in.
pub const RESKEY_PREFIX: &str = "OCF_RESKEY_";

/// Pacemaker's own attributes (`OCF_RESKEY_CRM_meta_timeout`, ...): never
/// agent parameters, always present under Pacemaker and ocf-tester.
const CRM_META: &str = "CRM_meta_";

/// Pacemaker's CRM feature set, which its controller adds to every
/// operation's parameters (`OCF_RESKEY_crm_feature_set=3.16.1`): not an
/// agent parameter either. ocf-tester does not set it; a real cluster
/// always does (found by `tests/pacemaker_lab.rs`).
const CRM_FEATURE_SET: &str = "crm_feature_set";

/// Parameters an agent receives that do not fit its meta-data.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ParamError {
    /// `OCF_RESKEY_NAME` for a parameter the agent does not declare: a
    /// typo in the CIB that would otherwise be silently ignored.
    #[error(
        "unknown parameter {name:?} (OCF_RESKEY_{name}): agent {agent} declares {}; \
         fix the resource's parameters (crm configure edit / pcs resource update)",
        if declared.is_empty() { "no parameters".to_string() } else { declared.join(", ") }
    )]
    Unknown {
        /// The agent.
        agent: String,
        /// The undeclared name.
        name: String,
        /// What it declares, in order.
        declared: Vec<String>,
    },
}

/// The agent's arguments from the environment: one `name=value` per
/// declared parameter that has an `OCF_RESKEY_name`, in declared order
/// (the binding the daemon uses for haresources' `name=value` form).
/// Any other `OCF_RESKEY_*` except Pacemaker's own (`CRM_meta_*`,
/// `crm_feature_set`) is an error.
pub fn from_env<I, K, V>(meta: &Meta, env: I) -> Result<Vec<String>, ParamError>
where
    I: IntoIterator<Item = (K, V)>,
    K: AsRef<str>,
    V: AsRef<str>,
{
    let mut given: Vec<(String, String)> = Vec::new();
    for (k, v) in env {
        let Some(name) = k.as_ref().strip_prefix(RESKEY_PREFIX) else {
            continue;
        };
        if name.starts_with(CRM_META) || name == CRM_FEATURE_SET {
            continue;
        }
        if !meta.params.iter().any(|p| p.name == name) {
            return Err(ParamError::Unknown {
                agent: meta.name.clone(),
                name: name.to_string(),
                declared: meta.params.iter().map(|p| p.name.clone()).collect(),
            });
        }
        given.push((name.to_string(), v.as_ref().to_string()));
    }
    Ok(meta
        .params
        .iter()
        .filter_map(|p| {
            given
                .iter()
                .find(|(n, _)| *n == p.name)
                .map(|(n, v)| format!("{n}={v}"))
        })
        .collect())
}

/// The name the resource runs under (its cgroup, log tag and the
/// `[resource."TOKEN"]` section of agents.toml that applies). A
/// `[resource."TOKEN"]` section whose token names this agent and binds to
/// the same parameter values is the same resource the daemon ran, so its
/// grant follows it to Pacemaker unchanged; otherwise the canonical
/// `AGENT::name=value::...` in declared order, identical for every
/// operation of one Pacemaker resource.
pub fn resource_text(meta: &Meta, agent: &str, args: &[String], policy: &Policy) -> String {
    let sorted = |mut v: Vec<(String, String)>| {
        v.sort();
        v
    };
    if let Ok(bound) = bind_args(meta, args) {
        let ours = sorted(bound);
        for key in policy.resources.keys() {
            let Ok(t) = ResourceToken::parse(key) else {
                continue;
            };
            if t.agent.display_name() != agent {
                continue;
            }
            if bind_args(meta, &t.args).map(sorted).as_ref() == Ok(&ours) {
                return key.clone();
            }
        }
    }
    std::iter::once(agent.to_string())
        .chain(args.iter().cloned())
        .collect::<Vec<_>>()
        .join("::")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn meta() -> Meta {
        crate::runtime::test_meta(
            "IPaddr",
            &[("ip", true), ("cidr_netmask", false), ("nic", false)],
        )
    }

    #[test]
    fn declared_order_and_crm_meta_ignored() {
        let env = [
            ("OCF_RESKEY_nic", "eth0"),
            ("PATH", "/bin"),
            ("OCF_RESKEY_CRM_meta_timeout", "20000"),
            ("OCF_RESKEY_crm_feature_set", "3.16.1"),
            ("OCF_RESKEY_ip", "10.0.0.1"),
        ];
        assert_eq!(
            from_env(&meta(), env).unwrap(),
            vec!["ip=10.0.0.1", "nic=eth0"]
        );
    }

    #[test]
    fn unknown_parameter_names_what_is_declared() {
        let e = from_env(&meta(), [("OCF_RESKEY_netmask", "24")]).unwrap_err();
        let text = e.to_string();
        assert!(text.contains("\"netmask\""), "{text}");
        assert!(text.contains("ip, cidr_netmask, nic"), "{text}");
    }

    #[test]
    fn a_policy_resource_with_the_same_binding_is_the_same_resource() {
        let (policy, d) = Policy::parse(
            "[resource.\"IPaddr::10.0.0.1::24\"]\npids_max = 4\n[resource.\"IPaddr::10.0.0.2\"]\npids_max = 4\n",
        );
        assert!(d.is_empty(), "{d:?}");
        let args = vec!["ip=10.0.0.1".to_string(), "cidr_netmask=24".to_string()];
        assert_eq!(
            resource_text(&meta(), "IPaddr", &args, &policy),
            "IPaddr::10.0.0.1::24"
        );
        let other = vec!["ip=10.0.0.3".to_string()];
        assert_eq!(
            resource_text(&meta(), "IPaddr", &other, &policy),
            "IPaddr::ip=10.0.0.3"
        );
    }
}
