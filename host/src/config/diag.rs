//! Diagnostics: every problem found in the configuration, with file, line,
//! the offending text and a hint, so one run reports all of them.

use std::fmt;

/// How bad a diagnostic is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    /// The configuration works but something is probably not what was meant.
    Warning,
    /// The configuration would not run (heartbeat refuses it too, or wasmbeat cannot run it).
    Error,
}

/// What kind of problem a diagnostic reports; stable for tests and `--json`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Code {
    /// A file could not be read.
    Unreadable,
    /// A directive name heartbeat does not know.
    UnknownDirective,
    /// A directive with no value.
    MissingValue,
    /// A value that is not a heartbeat time.
    BadDuration,
    /// A value that is not a heartbeat boolean.
    BadBoolean,
    /// A value that is not a number in range.
    BadNumber,
    /// A value outside the set the directive accepts.
    BadValue,
    /// A malformed media line (`ucast`, `mcast`, ...).
    BadMedium,
    /// A directive given more than once where only one counts.
    Repeated,
    /// No `node` directive.
    NoNodes,
    /// A node name heartbeat cannot use.
    BadNodeName,
    /// No heartbeat medium.
    NoMedia,
    /// `udpport`/`baud` after the media that should use it.
    OrderAfterMedia,
    /// Two timing directives that contradict each other.
    Timing,
    /// `crm`/`pacemaker` enabled: haresources mode is what wasmbeat runs.
    CrmEnabled,
    /// `autojoin` other than `none` (conflicts with haresources mode).
    Autojoin,
    /// Accepted for compatibility but not implemented by wasmbeat yet.
    NotImplemented,
    /// A fence device (`stonith_host`, `stonith`) that cannot be used.
    Fence,
    /// Obsolete directive (e.g. `nice_failback`).
    Obsolete,
    /// ipfail configured where it cannot act (no ping node, legacy failback).
    Ipfail,
    /// `auto_failback` missing: heartbeat falls back to legacy mode.
    LegacyFailback,
    /// This node is not among the configured nodes.
    LocalNodeMissing,
    /// A haresources line whose node is not configured in ha.cf.
    UnknownNode,
    /// A haresources line with a node and no resources.
    EmptyGroup,
    /// A malformed resource token.
    BadToken,
    /// A backslash continuation with nothing after it.
    DanglingContinuation,
    /// Two groups share a key (first resource).
    DuplicateKey,
    /// A resource name that resolves to no agent.
    UnresolvedAgent,
    /// An IPaddr/IPaddr2 argument that cannot work.
    BadIpaddrArg,
    /// An IPaddr argument heartbeat accepts but which surely means something else.
    SuspiciousIpaddrArg,
    /// authkeys: bad file permissions.
    AuthPermissions,
    /// authkeys: syntax error.
    AuthSyntax,
    /// authkeys: no usable `auth N` selection.
    AuthNoActive,
    /// authkeys: unknown or misused method.
    AuthMethod,
    /// A method only wasmbeat understands.
    WasmbeatOnly,
    /// authkeys: an unkeyed `crc` key while UDP media are configured.
    CrcOnNetwork,
    /// A network interface or device named in the files is absent on this machine.
    MissingDevice,
    /// agents.toml: a malformed section or grant.
    BadPolicy,
    /// `wasmbeat migrate`: something with no equivalent in the target.
    Untranslatable,
}

/// One problem in one file, at a line (and column where useful).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Diagnostic {
    /// Error or warning.
    pub severity: Severity,
    /// What kind of problem.
    pub code: Code,
    /// The file as the user knows it (`ha.cf`, `haresources`, `authkeys`, or a path).
    pub file: String,
    /// 1-based line; `None` for whole-file problems.
    pub line: Option<usize>,
    /// 1-based column of the offending text, where it helps.
    pub column: Option<usize>,
    /// The offending text exactly as written (may be empty).
    pub text: String,
    /// What is wrong.
    pub message: String,
    /// How to fix it.
    pub hint: Option<String>,
}

impl Diagnostic {
    /// A new error diagnostic.
    pub fn error(code: Code, file: &str, line: Option<usize>, message: impl Into<String>) -> Self {
        Self::new(Severity::Error, code, file, line, message)
    }

    /// A new warning diagnostic.
    pub fn warning(
        code: Code,
        file: &str,
        line: Option<usize>,
        message: impl Into<String>,
    ) -> Self {
        Self::new(Severity::Warning, code, file, line, message)
    }

    fn new(
        severity: Severity,
        code: Code,
        file: &str,
        line: Option<usize>,
        message: impl Into<String>,
    ) -> Self {
        Diagnostic {
            severity,
            code,
            file: file.to_string(),
            line,
            column: None,
            text: String::new(),
            message: message.into(),
            hint: None,
        }
    }

    /// Attach the offending text.
    pub fn text(mut self, text: impl Into<String>) -> Self {
        self.text = text.into();
        self
    }

    /// Attach a column.
    pub fn col(mut self, column: usize) -> Self {
        self.column = Some(column);
        self
    }

    /// Attach a hint.
    pub fn hint(mut self, hint: impl Into<String>) -> Self {
        self.hint = Some(hint.into());
        self
    }

    /// True for errors.
    pub fn is_error(&self) -> bool {
        self.severity == Severity::Error
    }
}

impl fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.file)?;
        if let Some(line) = self.line {
            write!(f, ":{line}")?;
            if let Some(col) = self.column {
                write!(f, ":{col}")?;
            }
        }
        f.write_str(": ")?;
        if self.severity == Severity::Warning {
            f.write_str("warning: ")?;
        }
        f.write_str(&self.message)?;
        if let Some(hint) = &self.hint {
            write!(f, "; {hint}")?;
        }
        Ok(())
    }
}

impl std::error::Error for Diagnostic {}

/// All diagnostics of a configuration that would not run (at least one is an error).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Diagnostics(pub Vec<Diagnostic>);

impl fmt::Display for Diagnostics {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, d) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str("\n")?;
            }
            write!(f, "{d}")?;
        }
        Ok(())
    }
}

impl std::error::Error for Diagnostics {}

/// True when any diagnostic is an error.
pub fn has_errors(diags: &[Diagnostic]) -> bool {
    diags.iter().any(Diagnostic::is_error)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn display_matches_the_documented_shape() {
        let d = Diagnostic::error(
            Code::BadDuration,
            "ha.cf",
            Some(3),
            "deadtime \"five\" is not a duration",
        )
        .hint("write e.g. \"deadtime 5\" or \"deadtime 500ms\"");
        assert_eq!(
            d.to_string(),
            "ha.cf:3: deadtime \"five\" is not a duration; write e.g. \"deadtime 5\" or \"deadtime 500ms\""
        );
        let w = Diagnostic::warning(Code::Timing, "ha.cf", Some(2), "x").col(7);
        assert_eq!(w.to_string(), "ha.cf:2:7: warning: x");
    }
}
