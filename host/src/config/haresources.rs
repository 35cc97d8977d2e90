//! `haresources`: one resource group per logical line, normalised the way
//! heartbeat's ResourceManager does (comments, `\` continuation, blanks,
//! lowercased node name), each resource parsed by [`super::token`].

use std::fmt;

use super::diag::{Code, Diagnostic};
use super::token::ResourceToken;

/// The name diagnostics use for this file.
pub const FILE: &str = "haresources";

/// One resource group: started left to right on its node, stopped right to left.
/// Equality ignores where the group was written (`line`, `positions`).
#[derive(Debug, Clone, Eq, serde::Serialize)]
pub struct ResourceGroup {
    /// The node that normally holds the group (lowercased).
    pub preferred_node: String,
    /// The group key: the first resource exactly as written (heartbeat's
    /// name for the group in logs, standby and its messages).
    pub key: String,
    /// Resources in start order.
    pub resources: Vec<ResourceToken>,
    /// 1-based line where the group starts.
    pub line: usize,
    /// (line, column) of each resource, for diagnostics.
    #[serde(skip)]
    pub positions: Vec<(usize, usize)>,
}

impl PartialEq for ResourceGroup {
    fn eq(&self, other: &Self) -> bool {
        self.preferred_node == other.preferred_node
            && self.key == other.key
            && self.resources == other.resources
    }
}

/// All resource groups of the file, in file order.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct Haresources {
    /// The groups.
    pub groups: Vec<ResourceGroup>,
}

/// A character of a logical line with where it came from.
struct Logical {
    text: String,
    /// (line, column) of each byte of `text`.
    origin: Vec<(usize, usize)>,
    first_line: usize,
}

fn logical_lines(text: &str, diags: &mut Vec<Diagnostic>) -> Vec<Logical> {
    let physical: Vec<&str> = text.lines().collect();
    let mut out = Vec::new();
    let mut cur: Option<Logical> = None;
    for (idx, raw) in physical.iter().enumerate() {
        let no = idx + 1;
        let raw = raw.trim_end_matches('\r');
        let (content, comment) = match raw.find('#') {
            Some(i) => (&raw[..i], true),
            None => (raw, false),
        };
        if comment && cur.is_some() && !content.trim().is_empty() {
            // ResourceManager strips comments before joining and never
            // again, so a comment on a continued line reaches heartbeat as
            // resources named "#", "web", ... wasmbeat drops it, but warns.
            diags.push(
                Diagnostic::warning(
                    Code::BadToken,
                    FILE,
                    Some(no),
                    "a comment on a continuation line: heartbeat's ResourceManager does not strip it and would run its words as resources",
                )
                .col(raw.find('#').unwrap_or(0) + 1)
                .hint("move the comment to its own line"),
            );
        }
        let continued = content.ends_with('\\');
        let body = if continued {
            &content[..content.len() - 1]
        } else {
            content
        };
        let l = cur.get_or_insert_with(|| Logical {
            text: String::new(),
            origin: Vec::new(),
            first_line: no,
        });
        if !l.text.is_empty()
            && !l.text.ends_with([' ', '\t'])
            && body.starts_with(|c: char| !c.is_whitespace())
        {
            diags.push(
                Diagnostic::warning(
                    Code::BadToken,
                    FILE,
                    Some(no),
                    "this line continues the previous one without a blank in between, so the two words are joined into one (as heartbeat does)",
                )
                .col(1)
                .hint("put a blank before the trailing backslash"),
            );
        }
        for (i, _) in body.char_indices() {
            l.origin.push((no, i + 1));
        }
        // origin is indexed by byte; pad multi-byte characters.
        l.text.push_str(body);
        while l.origin.len() < l.text.len() {
            let last = *l.origin.last().unwrap_or(&(no, 1));
            l.origin.push(last);
        }
        if continued {
            if no == physical.len() {
                diags.push(
                    Diagnostic::error(
                        Code::DanglingContinuation,
                        FILE,
                        Some(no),
                        "the last line ends with a continuation backslash but nothing follows",
                    )
                    .col(content.len())
                    .text("\\")
                    .hint("remove the trailing backslash or add the rest of the group"),
                );
            }
            continue;
        }
        if let Some(l) = cur.take() {
            out.push(l);
        }
    }
    if let Some(l) = cur.take() {
        out.push(l);
    }
    out
}

impl Haresources {
    /// Parse haresources text into groups, reporting every malformed line.
    pub fn parse(text: &str) -> (Haresources, Vec<Diagnostic>) {
        let mut diags = Vec::new();
        let mut groups: Vec<ResourceGroup> = Vec::new();
        for l in logical_lines(text, &mut diags) {
            let mut toks = Vec::new();
            let mut start = None;
            for (i, c) in l.text.char_indices() {
                match (c == ' ' || c == '\t', start) {
                    (true, Some(s)) => {
                        toks.push((s, &l.text[s..i]));
                        start = None;
                    }
                    (false, None) => start = Some(i),
                    _ => {}
                }
            }
            if let Some(s) = start {
                toks.push((s, &l.text[s..]));
            }
            let Some(&(_, node)) = toks.first() else {
                continue;
            };
            let pos = |byte: usize| l.origin.get(byte).copied().unwrap_or((l.first_line, 1));
            if toks.len() == 1 {
                diags.push(
                    Diagnostic::warning(
                        Code::EmptyGroup,
                        FILE,
                        Some(l.first_line),
                        format!("line names node {node:?} but no resources, so it is ignored (heartbeat accepts it too)"),
                    )
                    .text(node)
                    .col(pos(toks[0].0).1)
                    .hint(
                        "list the group's resources after the node, e.g. \"node1 10.0.0.10 httpd\"",
                    ),
                );
                continue;
            }
            let mut resources = Vec::new();
            let mut positions = Vec::new();
            let mut ok = true;
            for &(byte, t) in &toks[1..] {
                let (line, col) = pos(byte);
                if t.contains('\\') {
                    diags.push(
                        Diagnostic::error(
                            Code::BadToken,
                            FILE,
                            Some(line),
                            format!("resource {t:?} contains a backslash; a continuation backslash must be the very last character of the line"),
                        )
                        .text(t)
                        .col(col)
                        .hint("remove the blanks after the backslash"),
                    );
                    ok = false;
                    continue;
                }
                match ResourceToken::parse(t) {
                    Ok(r) => {
                        resources.push(r);
                        positions.push((line, col));
                    }
                    Err(e) => {
                        diags.push(
                            Diagnostic::error(Code::BadToken, FILE, Some(line), e.to_string())
                                .text(t)
                                .col(col),
                        );
                        ok = false;
                    }
                }
            }
            if !ok {
                continue;
            }
            let key = toks[1].1.to_string();
            if let Some(prev) = groups.iter().find(|g| g.key == key) {
                let (line, col) = pos(toks[1].0);
                diags.push(
                    Diagnostic::error(
                        Code::DuplicateKey,
                        FILE,
                        Some(line),
                        format!(
                            "{key:?} already starts the group on line {}; the first resource names the group and must be unique (heartbeat starts with this, then acquires and releases the wrong resources)",
                            prev.line
                        ),
                    )
                    .text(key.clone())
                    .col(col)
                    .hint("reorder the resources so each line starts with a different one"),
                );
                continue;
            }
            groups.push(ResourceGroup {
                preferred_node: node.to_lowercase(),
                key,
                resources,
                line: l.first_line,
                positions,
            });
        }
        (Haresources { groups }, diags)
    }

    /// Every group's node must be a configured node (heartbeat: "Bad nodename in haresources").
    pub fn check_nodes(&self, nodes: &[String]) -> Vec<Diagnostic> {
        self.groups
            .iter()
            .filter(|g| !nodes.contains(&g.preferred_node))
            .map(|g| {
                Diagnostic::error(
                    Code::UnknownNode,
                    FILE,
                    Some(g.line),
                    format!(
                        "group {:?} prefers node {:?}, which is not a node in ha.cf (heartbeat: \"Bad nodename in haresources\")",
                        g.key, g.preferred_node
                    ),
                )
                .text(g.preferred_node.clone())
                .col(1)
                .hint(format!(
                    "use one of the ha.cf nodes ({}) or add \"node {}\" to ha.cf",
                    nodes.join(", "),
                    g.preferred_node
                ))
            })
            .collect()
    }
}

/// Prints valid haresources text, one group per line.
impl fmt::Display for Haresources {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for g in &self.groups {
            f.write_str(&g.preferred_node)?;
            for (i, r) in g.resources.iter().enumerate() {
                // Keep the key exactly as written (a bare IP stays bare).
                let t = if i == 0 {
                    g.key.as_str()
                } else {
                    r.text.as_str()
                };
                write!(f, " {t}")?;
            }
            writeln!(f)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::token::AgentRef;

    #[test]
    fn recipe_and_continuations() {
        let text = "# comment\nNode1 IPaddr::100.200.230.1/100.200.230.6 named httpd mysqld\n\n\
                    node2\t10.0.0.1 \\\n   10.0.0.2 \\\n   httpd\n";
        let (h, d) = Haresources::parse(text);
        assert!(d.is_empty(), "{d:?}");
        assert_eq!(h.groups.len(), 2);
        let g = &h.groups[0];
        assert_eq!(g.preferred_node, "node1");
        assert_eq!(g.key, "IPaddr::100.200.230.1/100.200.230.6");
        assert_eq!(g.resources.len(), 4);
        assert_eq!(g.line, 2);
        let g = &h.groups[1];
        assert_eq!(g.line, 4);
        assert_eq!(g.key, "10.0.0.1");
        assert_eq!(g.resources[1].text, "IPaddr::10.0.0.2");
        assert_eq!(g.resources[2].agent, AgentRef::Name("httpd".into()));
        assert_eq!(g.positions[2], (6, 4));

        // ResourceManager does not strip comments from continued lines.
        let (_, d) = Haresources::parse("node1 a \\\n  b # web\n");
        assert_eq!(d.len(), 1);
        assert_eq!((d[0].line, d[0].column), (Some(2), Some(5)));
    }

    #[test]
    fn errors_carry_lines() {
        let (_, d) = Haresources::parse("node1 IPaddr:: httpd\nnode2\nnode1 a \\");
        let codes: Vec<_> = d.iter().map(|x| (x.code, x.line)).collect();
        assert!(codes.contains(&(Code::BadToken, Some(1))), "{codes:?}");
        assert!(codes.contains(&(Code::EmptyGroup, Some(2))), "{codes:?}");
        assert!(
            codes.contains(&(Code::DanglingContinuation, Some(3))),
            "{codes:?}"
        );
        let bad = d.iter().find(|x| x.code == Code::BadToken).unwrap();
        assert_eq!(bad.column, Some(7));
    }

    #[test]
    fn duplicate_keys_and_unknown_nodes() {
        let (h, d) = Haresources::parse("node1 10.0.0.1 a\nnode2 10.0.0.1 b\nnode3 x\n");
        assert_eq!(d.len(), 1);
        assert_eq!(d[0].code, Code::DuplicateKey);
        let d = h.check_nodes(&["node1".into(), "node2".into()]);
        assert_eq!(d.len(), 1);
        assert_eq!(d[0].line, Some(3));
    }

    #[test]
    fn display_round_trips() {
        let (h, _) =
            Haresources::parse("node1 10.0.0.1 IPaddr2::10.0.0.2/24/eth0 httpd\nnode2 x::a::b\n");
        let (h2, d) = Haresources::parse(&h.to_string());
        assert!(d.is_empty());
        assert_eq!(h, h2);
    }
}
