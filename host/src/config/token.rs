//! One haresources resource token (`IPaddr::10.0.0.1/24/eth0`, `named`,
//! `10.0.0.5`, `myagent.wasm::a`, `/opt/x/agent.wasm::a`): the grammar shared
//! by the haresources parser and `wasmbeat agent TOKEN`.

use std::fmt;
use std::path::PathBuf;

/// Which agent a token names, before resolution against the agent registry.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[serde(tag = "kind", content = "value", rename_all = "kebab-case")]
pub enum AgentRef {
    /// A bare name (`IPaddr`, `named`): built-in agent, then
    /// `<config-dir>/resource.d/NAME.wasm`, then a granted init script.
    Name(String),
    /// A token ending in `.wasm`: relative to `<config-dir>/resource.d/` or absolute.
    WasmPath(PathBuf),
}

impl AgentRef {
    /// The name the agent is known by in logs and grants (file stem for paths).
    pub fn display_name(&self) -> String {
        match self {
            AgentRef::Name(n) => n.clone(),
            AgentRef::WasmPath(p) => p
                .file_stem()
                .map(|s| s.to_string_lossy().into_owned())
                .unwrap_or_else(|| p.display().to_string()),
        }
    }
}

/// A parsed resource token: the agent and its positional arguments.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct ResourceToken {
    /// The token exactly as written (after the bare-IP expansion), e.g. `IPaddr::10.0.0.1`.
    pub text: String,
    /// The agent the token names.
    pub agent: AgentRef,
    /// Positional arguments (the `::`-separated fields after the name).
    pub args: Vec<String>,
}

/// Why a token is malformed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TokenError {
    /// The token is empty.
    #[error("empty resource token; write e.g. \"IPaddr::10.0.0.10/24\" or \"httpd\"")]
    Empty,
    /// The part before the first `::` is empty (`::10.0.0.1`).
    #[error(
        "resource token {0:?} has no agent name before \"::\"; write e.g. \"IPaddr::10.0.0.10\""
    )]
    NoName(String),
    /// An argument between `::` separators is empty (`IPaddr::::x`).
    #[error("resource token {0:?} has an empty argument (\"::::\" or a trailing \"::\"); remove the extra \"::\"")]
    EmptyArg(String),
    /// The token contains whitespace (arguments cannot, as in heartbeat).
    #[error("resource token {0:?} contains whitespace; heartbeat splits tokens on blanks, so arguments cannot contain spaces")]
    Whitespace(String),
}

/// heartbeat's "IP literal" test: the shell glob `[0-9]*.[0-9]*.[0-9]*.[0-9]*`
/// over the whole token, so `10.0.0.5/24/eth0` counts too.
pub fn looks_like_ipv4_literal(token: &str) -> bool {
    // Each remaining group is `[0-9]*` preceded by `.`; `*` may swallow dots,
    // so try every dot position (tokens are short).
    fn groups_left(rest: &str, left: usize) -> bool {
        if !rest.starts_with(|c: char| c.is_ascii_digit()) {
            return false;
        }
        if left == 1 {
            return true;
        }
        rest.match_indices('.')
            .any(|(i, _)| groups_left(&rest[i + 1..], left - 1))
    }
    groups_left(token, 4)
}

impl ResourceToken {
    /// Parse one token as heartbeat's ResourceManager reads it.
    pub fn parse(token: &str) -> Result<ResourceToken, TokenError> {
        if token.is_empty() {
            return Err(TokenError::Empty);
        }
        if token.chars().any(char::is_whitespace) {
            return Err(TokenError::Whitespace(token.to_string()));
        }
        let text = if looks_like_ipv4_literal(token) && !token.contains("::") {
            format!("IPaddr::{token}")
        } else {
            token.to_string()
        };
        let mut fields = text.split("::");
        let name = fields.next().unwrap_or_default();
        if name.is_empty() {
            return Err(TokenError::NoName(token.to_string()));
        }
        let args: Vec<String> = fields.map(str::to_string).collect();
        if args.iter().any(String::is_empty) {
            return Err(TokenError::EmptyArg(token.to_string()));
        }
        let agent = if name.ends_with(".wasm") {
            AgentRef::WasmPath(PathBuf::from(name))
        } else {
            AgentRef::Name(name.to_string())
        };
        Ok(ResourceToken { text, agent, args })
    }
}

impl fmt::Display for ResourceToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bare_ipv4_is_ipaddr_shorthand_even_with_suffixes() {
        let t = ResourceToken::parse("10.0.0.5/24/eth0").unwrap();
        assert_eq!(t.text, "IPaddr::10.0.0.5/24/eth0");
        assert_eq!(t.agent, AgentRef::Name("IPaddr".into()));
        assert_eq!(t.args, vec!["10.0.0.5/24/eth0"]);
    }

    #[test]
    fn names_args_and_wasm_paths() {
        let t = ResourceToken::parse("IPaddr::100.200.230.1/100.200.230.6").unwrap();
        assert_eq!(t.args, vec!["100.200.230.1/100.200.230.6"]);
        assert_eq!(
            ResourceToken::parse("httpd").unwrap().args,
            Vec::<String>::new()
        );
        let w = ResourceToken::parse("/opt/x/agent.wasm::a::b").unwrap();
        assert_eq!(w.agent, AgentRef::WasmPath("/opt/x/agent.wasm".into()));
        assert_eq!(w.agent.display_name(), "agent");
        assert_eq!(w.args, vec!["a", "b"]);
        let r = ResourceToken::parse("my.wasm").unwrap();
        assert_eq!(r.agent, AgentRef::WasmPath("my.wasm".into()));
    }

    #[test]
    fn malformed_tokens_are_rejected_with_a_reason() {
        assert_eq!(ResourceToken::parse(""), Err(TokenError::Empty));
        assert!(matches!(
            ResourceToken::parse("::x"),
            Err(TokenError::NoName(_))
        ));
        assert!(matches!(
            ResourceToken::parse("IPaddr::"),
            Err(TokenError::EmptyArg(_))
        ));
        assert!(matches!(
            ResourceToken::parse("a::::b"),
            Err(TokenError::EmptyArg(_))
        ));
        assert!(matches!(
            ResourceToken::parse("a b"),
            Err(TokenError::Whitespace(_))
        ));
    }

    #[test]
    fn ip_literal_glob_matches_heartbeat() {
        assert!(looks_like_ipv4_literal("1.2.3.4"));
        assert!(looks_like_ipv4_literal("1.2.3.4x"));
        assert!(!looks_like_ipv4_literal("named"));
        assert!(!looks_like_ipv4_literal("1.2.3"));
        assert!(!looks_like_ipv4_literal("fe80::1"));
        assert!(looks_like_ipv4_literal("1.a.2.3.4"));
    }
}
