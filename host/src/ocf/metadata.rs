//! OCF resource-agent meta-data XML generated from an agent's WIT
//! meta-data, valid against Debian's `ra-api-1.dtd` (what `ocf-tester`
//! checks with `xmllint --valid`, and what `crm ra info` / `pcs resource
//! describe` read).

use std::fmt::Write as _;
use std::time::Duration;

use crate::runtime::{Deadlines, Meta, ParamType};

/// The monitor interval advertised in meta-data and used by `wasmbeat
/// migrate pacemaker` when agents.toml sets no `monitor` for a resource:
/// Pacemaker only notices a dead service through a recurring monitor, and
/// heartbeat's users had none, so some interval must be chosen.
pub const DEFAULT_MONITOR_INTERVAL: Duration = Duration::from_secs(10);

fn xml_escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// `20s` for whole seconds, `500ms` otherwise (Pacemaker's time syntax).
pub fn ocf_time(d: Duration) -> String {
    if d.subsec_millis() == 0 {
        format!("{}s", d.as_secs())
    } else {
        format!("{}ms", d.as_millis())
    }
}

/// The OCF content type of a parameter. OCF knows string, integer and
/// boolean; the narrower wasmbeat types (path, address, ...) are strings
/// there, and the bridge still checks them before the agent runs.
pub fn ocf_type(t: ParamType) -> &'static str {
    match t {
        ParamType::Integer => "integer",
        ParamType::Boolean => "boolean",
        _ => "string",
    }
}

/// The first sentence of a description, for `<shortdesc>` (crm and pcs
/// show it in one line).
fn first_sentence(s: &str) -> &str {
    let s = s.trim();
    let end = s
        .find(". ")
        .map(|i| i + 1)
        .or_else(|| s.find('\n'))
        .unwrap_or(s.len());
    &s[..end]
}

/// The agent's meta-data as OCF resource-agent XML. Action timeouts are
/// the deadlines the bridge enforces by default (`deadlines`), so an
/// operation configured with Pacemaker's suggested timeouts never ends by
/// Pacemaker's kill before the agent's own deadline.
pub fn xml(m: &Meta, deadlines: &Deadlines) -> String {
    let mut x = String::new();
    let _ = writeln!(x, "<?xml version=\"1.0\"?>");
    // Without the DOCTYPE `xmllint --valid` has nothing to validate against.
    let _ = writeln!(x, "<!DOCTYPE resource-agent SYSTEM \"ra-api-1.dtd\">");
    let _ = writeln!(
        x,
        "<resource-agent name=\"{}\" version=\"{}\">",
        xml_escape(&m.name),
        xml_escape(&m.version)
    );
    // The OCF API version this meta-data follows, not the agent's.
    let _ = writeln!(x, "  <version>1.0</version>");
    let _ = writeln!(
        x,
        "  <longdesc lang=\"en\">{}</longdesc>",
        xml_escape(&m.description)
    );
    let _ = writeln!(
        x,
        "  <shortdesc lang=\"en\">{} (wasmbeat agent, sandboxed)</shortdesc>",
        xml_escape(&m.name)
    );
    let _ = writeln!(x, "  <parameters>");
    for p in &m.params {
        let _ = writeln!(
            x,
            "    <parameter name=\"{}\" required=\"{}\">",
            xml_escape(&p.name),
            u8::from(p.required)
        );
        let _ = writeln!(
            x,
            "      <longdesc lang=\"en\">{} (wasmbeat type: {})</longdesc>",
            xml_escape(&p.description),
            type_name(p.type_)
        );
        let _ = writeln!(
            x,
            "      <shortdesc lang=\"en\">{}</shortdesc>",
            xml_escape(first_sentence(&p.description))
        );
        let ty = ocf_type(p.type_);
        match &p.default {
            Some(d) => {
                let _ = writeln!(
                    x,
                    "      <content type=\"{ty}\" default=\"{}\"/>",
                    xml_escape(d)
                );
            }
            None => {
                let _ = writeln!(x, "      <content type=\"{ty}\"/>");
            }
        }
        let _ = writeln!(x, "    </parameter>");
    }
    let _ = writeln!(x, "  </parameters>");
    let _ = writeln!(x, "  <actions>");
    let t = |d: Duration| ocf_time(d);
    let _ = writeln!(
        x,
        "    <action name=\"start\" timeout=\"{}\"/>",
        t(deadlines.start)
    );
    let _ = writeln!(
        x,
        "    <action name=\"stop\" timeout=\"{}\"/>",
        t(deadlines.stop)
    );
    let _ = writeln!(
        x,
        "    <action name=\"monitor\" timeout=\"{}\" interval=\"{}\" depth=\"0\"/>",
        t(deadlines.monitor),
        t(DEFAULT_MONITOR_INTERVAL)
    );
    let _ = writeln!(
        x,
        "    <action name=\"status\" timeout=\"{}\"/>",
        t(deadlines.monitor)
    );
    let _ = writeln!(
        x,
        "    <action name=\"validate-all\" timeout=\"{}\"/>",
        t(deadlines.validate)
    );
    let _ = writeln!(
        x,
        "    <action name=\"meta-data\" timeout=\"{}\"/>",
        t(deadlines.meta_data)
    );
    let _ = writeln!(x, "  </actions>");
    let _ = writeln!(x, "</resource-agent>");
    x
}

fn type_name(t: ParamType) -> &'static str {
    match t {
        ParamType::String => "string",
        ParamType::Integer => "integer",
        ParamType::Boolean => "boolean",
        ParamType::Path => "path",
        ParamType::Address => "address",
        ParamType::Endpoint => "endpoint",
        ParamType::Name => "name",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::runtime::Param;

    fn meta() -> Meta {
        Meta {
            name: "demo".into(),
            version: "1.2.3".into(),
            description: "Demo <agent> & friends. Second sentence.".into(),
            params: vec![
                Param {
                    name: "ip".into(),
                    description: "The address. More words.".into(),
                    type_: ParamType::Address,
                    default: None,
                    required: true,
                },
                Param {
                    name: "count".into(),
                    description: "How many".into(),
                    type_: ParamType::Integer,
                    default: Some("5".into()),
                    required: false,
                },
            ],
            needs: vec![],
        }
    }

    #[test]
    fn xml_has_doctype_escapes_and_typed_defaults() {
        let x = xml(&meta(), &Deadlines::default());
        assert!(x.contains("<!DOCTYPE resource-agent SYSTEM \"ra-api-1.dtd\">"));
        assert!(x.contains("Demo &lt;agent&gt; &amp; friends."));
        assert!(x.contains("<parameter name=\"ip\" required=\"1\">"));
        assert!(x.contains("<shortdesc lang=\"en\">The address.</shortdesc>"));
        assert!(x.contains("(wasmbeat type: address)"));
        assert!(x.contains("<content type=\"string\"/>"));
        assert!(x.contains("<content type=\"integer\" default=\"5\"/>"));
        assert!(x.contains("<action name=\"start\" timeout=\"20s\"/>"));
        assert!(
            x.contains("<action name=\"monitor\" timeout=\"10s\" interval=\"10s\" depth=\"0\"/>")
        );
        assert!(x.contains("<action name=\"validate-all\" timeout=\"10s\"/>"));
    }

    #[test]
    fn times_in_pacemaker_syntax() {
        assert_eq!(ocf_time(Duration::from_secs(20)), "20s");
        assert_eq!(ocf_time(Duration::from_millis(1500)), "1500ms");
    }
}
