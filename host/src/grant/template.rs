//! Argument templates: the text of a granted command, pid file, probe
//! target or path, with holes the host fills from the resource's own
//! parameters. `{name}` is the parameter's value (or its declared default),
//! `{name|text}` falls back to `text`, and an element that is exactly
//! `{name?}` is dropped when the parameter has no value. A filter takes a
//! part of a value: `{name:dir}` the directory of a path, `{name:host}` and
//! `{name:port}` the two halves of an `ip:port` (`{name:dir|text}` with a
//! fallback). Each value is
//! checked against its parameter's type and may not start with `-`, so an
//! administrator's value can never turn into an option, a second argument
//! or a shell fragment.

use std::fmt;

use wasmbeat_args::value::{self, ValueType};

/// One piece of a template.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Piece {
    Text(String),
    Hole {
        name: String,
        fallback: Option<String>,
        optional: bool,
        filter: Option<Filter>,
    },
}

/// The part of a value a hole takes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Filter {
    /// The directory of a path.
    Dir,
    /// The IP of an endpoint (no brackets).
    Host,
    /// The port of an endpoint.
    Port,
}

impl Filter {
    fn parse(text: &str) -> Option<Filter> {
        match text {
            "dir" => Some(Filter::Dir),
            "host" => Some(Filter::Host),
            "port" => Some(Filter::Port),
            _ => None,
        }
    }

    /// The type the parameter must have.
    fn input(self) -> ValueType {
        match self {
            Filter::Dir => ValueType::Path,
            Filter::Host | Filter::Port => ValueType::Endpoint,
        }
    }

    /// Apply to a value already checked to be of [`Filter::input`] type.
    fn apply(self, v: &str) -> String {
        match self {
            Filter::Dir => match v.rfind('/') {
                Some(0) | None => "/".to_string(),
                Some(i) => v[..i].to_string(),
            },
            Filter::Host => v
                .parse::<std::net::SocketAddr>()
                .map(|a| a.ip().to_string())
                .unwrap_or_default(),
            Filter::Port => v
                .parse::<std::net::SocketAddr>()
                .map(|a| a.port().to_string())
                .unwrap_or_default(),
        }
    }
}

/// A parsed template.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Template {
    source: String,
    pieces: Vec<Piece>,
}

/// A malformed template (found when agents.toml or meta-data is read).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SyntaxError {
    /// `{` without `}`.
    #[error("{0:?}: '{{' without a closing '}}'")]
    Unclosed(String),
    /// `}` without `{`.
    #[error("{0:?}: '}}' without an opening '{{'")]
    Unopened(String),
    /// `{}` or a name that is not a parameter name.
    #[error("{0:?}: {1:?} is not a parameter name (letters, digits, '_')")]
    BadName(String, String),
    /// `{name?}` inside a larger element.
    #[error("{0:?}: an optional hole {{name?}} must be the whole element")]
    OptionalInside(String),
    /// A filter other than `:dir`, `:host`, `:port`.
    #[error("{0:?}: unknown filter {1:?} (filters are :dir, :host and :port)")]
    BadFilter(String, String),
}

/// Why a template cannot be filled for a resource.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FillError {
    /// The hole names a parameter the agent does not declare.
    #[error("{template:?} uses {{{name}}}, which is not a parameter of this agent")]
    Unknown {
        /// The template.
        template: String,
        /// The parameter.
        name: String,
    },
    /// The parameter has no value, no default and the hole no fallback.
    #[error("{template:?} needs parameter {name}, which has no value and no default")]
    NoValue {
        /// The template.
        template: String,
        /// The parameter.
        name: String,
    },
    /// The value is not of the parameter's type.
    #[error("{template:?}: parameter {name}: {error}")]
    Value {
        /// The template.
        template: String,
        /// The parameter.
        name: String,
        /// What is wrong.
        error: value::ValueError,
    },
    /// A filter on a parameter of another type (`:dir` of a name).
    #[error("{template:?}: the filter on {{{name}}} needs a parameter of type {needs}")]
    FilterType {
        /// The template.
        template: String,
        /// The parameter.
        name: String,
        /// The type the filter needs.
        needs: &'static str,
    },
    /// The value would read as an option.
    #[error(
        "{template:?}: parameter {name}={value:?} starts with '-' and would read as an option"
    )]
    Dash {
        /// The template.
        template: String,
        /// The parameter.
        name: String,
        /// The value.
        value: String,
    },
}

/// The resource's parameters as templates see them.
pub trait Values {
    /// The declared type of `name`, None if the agent does not declare it.
    fn declared(&self, name: &str) -> Option<ValueType>;
    /// The value of `name`: the one given, else the declared default.
    fn value(&self, name: &str) -> Option<&str>;
}

fn valid_name(n: &str) -> bool {
    !n.is_empty() && n.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
}

impl Template {
    /// Parse template text.
    pub fn parse(text: &str) -> Result<Template, SyntaxError> {
        let mut pieces = Vec::new();
        let mut rest = text;
        while !rest.is_empty() {
            match (rest.find('{'), rest.find('}')) {
                (None, None) => {
                    pieces.push(Piece::Text(rest.to_string()));
                    break;
                }
                (None, Some(_)) => return Err(SyntaxError::Unopened(text.to_string())),
                (Some(o), Some(c)) if c < o => return Err(SyntaxError::Unopened(text.to_string())),
                (Some(_), None) => return Err(SyntaxError::Unclosed(text.to_string())),
                (Some(o), Some(c)) => {
                    if o > 0 {
                        pieces.push(Piece::Text(rest[..o].to_string()));
                    }
                    let inner = &rest[o + 1..c];
                    if inner.contains('{') {
                        return Err(SyntaxError::Unclosed(text.to_string()));
                    }
                    let (head, fallback, optional) = match inner.split_once('|') {
                        Some((n, f)) => (n, Some(f.to_string()), false),
                        None => match inner.strip_suffix('?') {
                            Some(n) => (n, None, true),
                            None => (inner, None, false),
                        },
                    };
                    let (name, filter) = match head.split_once(':') {
                        Some((n, f)) => match Filter::parse(f) {
                            Some(f) => (n, Some(f)),
                            None => {
                                return Err(SyntaxError::BadFilter(text.to_string(), f.to_string()))
                            }
                        },
                        None => (head, None),
                    };
                    if !valid_name(name) {
                        return Err(SyntaxError::BadName(text.to_string(), name.to_string()));
                    }
                    pieces.push(Piece::Hole {
                        name: name.to_string(),
                        fallback,
                        optional,
                        filter,
                    });
                    rest = &rest[c + 1..];
                }
            }
        }
        let optional_inside = pieces.len() > 1
            && pieces
                .iter()
                .any(|p| matches!(p, Piece::Hole { optional: true, .. }));
        if optional_inside {
            return Err(SyntaxError::OptionalInside(text.to_string()));
        }
        Ok(Template {
            source: text.to_string(),
            pieces,
        })
    }

    /// The text as written.
    pub fn source(&self) -> &str {
        &self.source
    }

    /// Whether the template has holes (is not fixed text).
    pub fn has_holes(&self) -> bool {
        self.pieces.iter().any(|p| matches!(p, Piece::Hole { .. }))
    }

    /// The parameters it names.
    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.pieces.iter().filter_map(|p| match p {
            Piece::Hole { name, .. } => Some(name.as_str()),
            Piece::Text(_) => None,
        })
    }

    /// Fill the holes; `Ok(None)` for an optional element whose parameter
    /// has no value.
    pub fn fill(&self, values: &dyn Values) -> Result<Option<String>, FillError> {
        let mut out = String::new();
        for p in &self.pieces {
            match p {
                Piece::Text(t) => out.push_str(t),
                Piece::Hole {
                    name,
                    fallback,
                    optional,
                    filter,
                } => {
                    let ty = values.declared(name).ok_or_else(|| FillError::Unknown {
                        template: self.source.clone(),
                        name: name.clone(),
                    })?;
                    if let Some(f) = filter.filter(|f| f.input() != ty) {
                        return Err(FillError::FilterType {
                            template: self.source.clone(),
                            name: name.clone(),
                            needs: f.input().as_str(),
                        });
                    }
                    let v = match (values.value(name), fallback) {
                        (Some(v), _) => v,
                        (None, Some(f)) => f.as_str(),
                        (None, None) if *optional => return Ok(None),
                        (None, None) => {
                            return Err(FillError::NoValue {
                                template: self.source.clone(),
                                name: name.clone(),
                            })
                        }
                    };
                    value::check(ty, v).map_err(|error| FillError::Value {
                        template: self.source.clone(),
                        name: name.clone(),
                        error,
                    })?;
                    if v.starts_with('-') {
                        return Err(FillError::Dash {
                            template: self.source.clone(),
                            name: name.clone(),
                            value: v.to_string(),
                        });
                    }
                    match filter {
                        Some(f) => out.push_str(&f.apply(v)),
                        None => out.push_str(v),
                    }
                }
            }
        }
        Ok(Some(out))
    }

    /// Fill a template that must yield a value (not an optional element).
    pub fn fill_required(&self, values: &dyn Values) -> Result<String, FillError> {
        self.fill(values)?.ok_or_else(|| FillError::NoValue {
            template: self.source.clone(),
            name: self.names().next().unwrap_or_default().to_string(),
        })
    }
}

impl fmt::Display for Template {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.source)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    struct V(Vec<(&'static str, ValueType, Option<&'static str>)>);

    impl Values for V {
        fn declared(&self, name: &str) -> Option<ValueType> {
            self.0.iter().find(|(n, ..)| *n == name).map(|(_, t, _)| *t)
        }
        fn value(&self, name: &str) -> Option<&str> {
            self.0
                .iter()
                .find(|(n, ..)| *n == name)
                .and_then(|(.., v)| *v)
        }
    }

    fn values() -> V {
        V(vec![
            ("config", ValueType::Path, Some("/etc/app.conf")),
            ("user", ValueType::Name, Some("www-data")),
            ("pid_file", ValueType::Path, None),
            ("arg1", ValueType::String, None),
            ("evil", ValueType::String, Some("-C")),
            ("spacey", ValueType::Path, Some("/tmp/a b")),
            ("listen", ValueType::Endpoint, Some("[fd77::1]:3306")),
        ])
    }

    fn fill(t: &str) -> Result<Option<String>, FillError> {
        Template::parse(t).unwrap().fill(&values())
    }

    #[test]
    fn holes_are_filled_from_typed_values() {
        assert_eq!(fill("-f").unwrap().as_deref(), Some("-f"));
        assert_eq!(fill("{config}").unwrap().as_deref(), Some("/etc/app.conf"));
        assert_eq!(
            fill("Define APACHE_RUN_USER {user}").unwrap().as_deref(),
            Some("Define APACHE_RUN_USER www-data")
        );
        assert_eq!(
            fill("--pid-file={pid_file|/run/app.pid}")
                .unwrap()
                .as_deref(),
            Some("--pid-file=/run/app.pid")
        );
        assert_eq!(fill("{arg1?}").unwrap(), None);
        assert_eq!(
            fill("Define APACHE_RUN_DIR {pid_file:dir|/run/apache2/apache2.pid}")
                .unwrap()
                .as_deref(),
            Some("Define APACHE_RUN_DIR /run/apache2")
        );
        assert_eq!(fill("{config:dir}").unwrap().as_deref(), Some("/etc"));
        assert_eq!(
            fill("--bind-address={listen:host}").unwrap().as_deref(),
            Some("--bind-address=fd77::1")
        );
        assert_eq!(
            fill("--port={listen:port}").unwrap().as_deref(),
            Some("--port=3306")
        );
    }

    #[test]
    fn values_cannot_bend_the_command_line() {
        assert!(matches!(fill("{pid_file}"), Err(FillError::NoValue { .. })));
        assert!(matches!(fill("{nosuch}"), Err(FillError::Unknown { .. })));
        assert!(matches!(fill("{evil}"), Err(FillError::Dash { .. })));
        assert!(matches!(
            fill("{user:dir}"),
            Err(FillError::FilterType { .. })
        ));
        assert!(matches!(
            fill("{config:port}"),
            Err(FillError::FilterType { .. })
        ));
        assert!(matches!(
            fill("PidFile {spacey}"),
            Err(FillError::Value { .. })
        ));
        // A fallback is checked like a value.
        assert!(matches!(
            fill("{pid_file|relative}"),
            Err(FillError::Value { .. })
        ));
    }

    #[test]
    fn syntax() {
        assert!(matches!(
            Template::parse("{a"),
            Err(SyntaxError::Unclosed(_))
        ));
        assert!(matches!(
            Template::parse("a}"),
            Err(SyntaxError::Unopened(_))
        ));
        assert!(matches!(
            Template::parse("{}"),
            Err(SyntaxError::BadName(..))
        ));
        assert!(matches!(
            Template::parse("{a b}"),
            Err(SyntaxError::BadName(..))
        ));
        assert!(matches!(
            Template::parse("x{a?}"),
            Err(SyntaxError::OptionalInside(_))
        ));
        assert!(matches!(
            Template::parse("{{a}}"),
            Err(SyntaxError::Unclosed(_))
        ));
        assert!(matches!(
            Template::parse("{a:base}"),
            Err(SyntaxError::BadFilter(..))
        ));
        let t = Template::parse("--x={a}/{b|c}").unwrap();
        assert_eq!(t.names().collect::<Vec<_>>(), ["a", "b"]);
        assert!(t.has_holes() && !Template::parse("/bin/x").unwrap().has_holes());
    }
}
