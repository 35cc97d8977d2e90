//! The types a parameter may declare and which text is a valid value of
//! each. Values fill the holes of command templates (`-f {config}`), so the
//! types are deliberately narrow: a path cannot carry a space, a quote or
//! a newline into a server's command line, and no value that fills a hole
//! may look like an option.

use std::fmt;
use std::net::{IpAddr, SocketAddr};

/// Longest value accepted for any parameter.
pub const MAX_VALUE_LEN: usize = 1024;

/// A parameter's declared type.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ValueType {
    /// Free text without control characters.
    String,
    /// A signed decimal integer.
    Integer,
    /// `true`/`false`, `yes`/`no`, `on`/`off`, `1`/`0`.
    Boolean,
    /// An absolute path of safe characters, without `..`.
    Path,
    /// An IPv4 or IPv6 address.
    Address,
    /// `ip:port` or `[v6]:port`.
    Endpoint,
    /// A name (user, group, server kind, DNS name): letters, digits,
    /// `.`, `_`, `-`, not starting with `-`.
    Name,
}

impl ValueType {
    /// The lower-case name used in messages and `meta-data`.
    pub fn as_str(self) -> &'static str {
        match self {
            ValueType::String => "string",
            ValueType::Integer => "integer",
            ValueType::Boolean => "boolean",
            ValueType::Path => "path",
            ValueType::Address => "address",
            ValueType::Endpoint => "endpoint",
            ValueType::Name => "name",
        }
    }

    /// What a valid value looks like, for hints.
    pub fn example(self) -> &'static str {
        match self {
            ValueType::String => "any text without control characters",
            ValueType::Integer => "a whole number such as 15",
            ValueType::Boolean => "true or false",
            ValueType::Path => "an absolute path such as /etc/app/app.conf",
            ValueType::Address => "an IP address such as 10.0.0.10",
            ValueType::Endpoint => "ip:port such as 10.0.0.10:80 or [fd77::10]:80",
            ValueType::Name => "a name such as www-data",
        }
    }
}

/// A value that is not of its parameter's type.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ValueError {
    /// The declared type.
    pub expected: ValueType,
    /// The text given (shortened for messages).
    pub value: String,
    /// What is wrong.
    pub why: &'static str,
}

impl fmt::Display for ValueError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{:?} is not a valid {} ({}; expected {})",
            self.value,
            self.expected.as_str(),
            self.why,
            self.expected.example()
        )
    }
}

impl std::error::Error for ValueError {}

/// Characters a path value may hold: no whitespace, quotes, `$`, `|`,
/// `;`, `&`, `*`, `?`, backslashes or control characters.
fn path_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || "/._-+@,=~:".contains(c)
}

fn name_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || "._-".contains(c)
}

/// Parse a boolean value.
pub fn parse_bool(text: &str) -> Option<bool> {
    match text.to_ascii_lowercase().as_str() {
        "true" | "yes" | "on" | "1" => Some(true),
        "false" | "no" | "off" | "0" => Some(false),
        _ => None,
    }
}

/// Check that `text` is a valid value of `ty`.
pub fn check(ty: ValueType, text: &str) -> Result<(), ValueError> {
    let fail = |why: &'static str| {
        let mut value: String = text.chars().take(80).collect();
        if value.len() < text.len() {
            value.push('…');
        }
        Err(ValueError {
            expected: ty,
            value,
            why,
        })
    };
    if text.len() > MAX_VALUE_LEN {
        return fail("too long");
    }
    if text.chars().any(char::is_control) {
        return fail("it holds control characters");
    }
    match ty {
        ValueType::String => Ok(()),
        ValueType::Integer => match text.parse::<i64>() {
            Ok(_) => Ok(()),
            Err(_) => fail("not a whole number"),
        },
        ValueType::Boolean => match parse_bool(text) {
            Some(_) => Ok(()),
            None => fail("not a boolean"),
        },
        ValueType::Path => {
            if !text.starts_with('/') {
                fail("not absolute")
            } else if text.split('/').any(|c| c == "..") {
                fail("it holds '..'")
            } else if !text.chars().all(path_char) {
                fail("it holds characters other than letters, digits and / . _ - + @ , = ~ :")
            } else {
                Ok(())
            }
        }
        ValueType::Address => match text.parse::<IpAddr>() {
            Ok(_) => Ok(()),
            Err(_) => fail("not an IP address"),
        },
        ValueType::Endpoint => match text.parse::<SocketAddr>() {
            Ok(_) => Ok(()),
            Err(_) => fail("not ip:port"),
        },
        ValueType::Name => {
            if text.is_empty() || text.starts_with('-') || !text.chars().all(name_char) {
                fail("names are letters, digits, '.', '_' and '-', not starting with '-'")
            } else if text.len() > 253 {
                fail("too long")
            } else {
                Ok(())
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_type_accepts_its_values_and_nothing_else() {
        let ok = |t, v| assert!(check(t, v).is_ok(), "{t:?} {v:?}");
        let bad = |t, v| assert!(check(t, v).is_err(), "{t:?} {v:?} accepted");
        ok(ValueType::Path, "/etc/apache2/apache2.conf");
        ok(ValueType::Path, "/run/mysqld/mysqld.pid");
        bad(ValueType::Path, "etc/x");
        bad(ValueType::Path, "/etc/../shadow");
        bad(ValueType::Path, "/tmp/a b");
        bad(ValueType::Path, "/tmp/a\"b");
        bad(ValueType::Path, "/tmp/x|sh");
        bad(ValueType::Path, "/tmp/$HOME");
        bad(ValueType::Path, "/tmp/x\nErrorLog");
        ok(ValueType::Name, "www-data");
        ok(ValueType::Name, "example.org");
        bad(ValueType::Name, "-rf");
        bad(ValueType::Name, "a b");
        bad(ValueType::Name, "");
        bad(ValueType::Name, "x\"y");
        ok(ValueType::Endpoint, "10.0.0.1:80");
        ok(ValueType::Endpoint, "[fd77::1]:53");
        bad(ValueType::Endpoint, "localhost:80");
        ok(ValueType::Address, "fd77::1");
        bad(ValueType::Address, "10.0.0.1/24");
        ok(ValueType::Integer, "-3");
        bad(ValueType::Integer, "3s");
        ok(ValueType::Boolean, "Yes");
        bad(ValueType::Boolean, "maybe");
        ok(ValueType::String, "daemon off;");
        bad(ValueType::String, "a\u{1b}[31m");
        bad(ValueType::String, &"x".repeat(MAX_VALUE_LEN + 1));
    }

    #[test]
    fn messages_say_what_was_expected() {
        let e = check(ValueType::Path, "relative").unwrap_err();
        assert_eq!(
            e.to_string(),
            "\"relative\" is not a valid path (not absolute; expected an absolute path such as /etc/app/app.conf)"
        );
    }
}
