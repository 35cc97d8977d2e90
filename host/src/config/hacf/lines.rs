//! Reading ha.cf one line at a time, as heartbeat's `parse_config` does:
//! find the line's directive in the table, split its values the way
//! heartbeat does, check each against the directive's grammar and apply it.

use super::super::diag::Code;
use super::super::duration::{parse_duration, DurationError};
use super::directives::{Apply, Directive, Repeat, Support, DIRECTIVES};
use super::parse_bool;
use super::reader::{diagnostic, tokens, At, Reader, Tok};

/// Read line `no` (1-based) of ha.cf.
pub(super) fn read_line(r: &mut Reader, no: usize, raw: &str) {
    let content = raw.split('#').next().unwrap_or_default();
    let content = content.trim_end_matches(['\r', '\n']);
    let toks = tokens(content, false);
    let Some(&(dcol, name)) = toks.first() else {
        return;
    };
    let Some(d) = Directive::find(name) else {
        unknown(r, no, dcol, name);
        return;
    };
    let at = At {
        line: no,
        col: dcol,
        name: d.name,
        text: d.name,
        example: d.example,
    };
    if let Support::NotHonoured(why) = d.support {
        // Once per directive: a file with ten stonith_host lines needs
        // one warning, not ten.
        if !r.warned.contains(&d.name) {
            r.warned.push(d.name);
            let msg = format!("\"{name}\" is accepted but not acted on: {why}");
            r.warn(Code::NotImplemented, at, msg, "");
        }
    }
    let rest_start = dcol - 1 + name.len();
    let rest = &content[rest_start..];
    let vals: Vec<Tok<'_>> = tokens(rest, !d.whole_line())
        .into_iter()
        .map(|(c, t)| (c + rest_start, t))
        .collect();
    if vals.is_empty() {
        missing(r, d, at);
        return;
    }
    if d.whole_line() {
        value(
            r,
            d,
            At {
                text: rest.trim(),
                ..at
            },
            &vals,
        );
        return;
    }
    if vals.len() > 1 && !matches!(d.apply, Apply::Words(_)) {
        let (col, text) = vals[1];
        r.warn(
            Code::Repeated,
            At { col, text, ..at },
            format!(
                "{name} takes one value but {} were given; heartbeat applies each in turn, so only \"{}\" counts",
                vals.len(),
                vals[vals.len() - 1].1
            ),
            "keep a single value",
        );
    }
    for &(col, text) in &vals {
        value(r, d, At { col, text, ..at }, &[]);
    }
}

/// A line with the directive alone.
fn missing(r: &mut Reader, d: &Directive, at: At<'_>) {
    let (name, example) = (d.name, d.example);
    if d.whole_line() {
        let msg = format!("{name} needs a value");
        r.err(
            Code::MissingValue,
            at,
            msg,
            &format!("write e.g. \"{example}\""),
        );
    } else {
        // heartbeat calls the handler once per value, so with none the
        // line does nothing at all.
        r.warn(
            Code::MissingValue,
            at,
            format!("{name} has no value, so the line does nothing (heartbeat ignores it too)"),
            &format!("write e.g. \"{example}\" or remove the line"),
        );
    }
}

/// One value (or a whole-line directive's fields): the repeat rule, the
/// grammar, then the directive's `apply`. A value that raised no error
/// took effect and becomes the setting's latest line.
fn value(r: &mut Reader, d: &Directive, at: At<'_>, fields: &[Tok<'_>]) {
    let name = d.name;
    match (d.repeat, r.set_at.get(d.setting).copied()) {
        (Repeat::LastWins, Some(prev)) if prev != at.line => r.warn(
            Code::Repeated,
            at,
            format!("{name} is set again (first on line {prev}); the last value counts, as in heartbeat"),
            "remove one of the lines",
        ),
        (Repeat::Once, Some(prev)) => {
            r.err(
                Code::Repeated,
                at,
                format!("{name} is set again (first on line {prev}); heartbeat allows it only once"),
                "remove one of the lines",
            );
            return;
        }
        _ => {}
    }
    let errors = r.errors();
    let passed = match d.apply {
        Apply::Time(apply) => duration(r, at).map(|v| apply(r, at, v)).is_some(),
        Apply::Bool(apply) => boolean(r, at).map(|v| apply(r, at, v)).is_some(),
        Apply::Number {
            min,
            max,
            range,
            apply,
        } => number(r, at, (min, max), range)
            .map(|v| apply(r, at, v))
            .is_some(),
        Apply::Keyword { words, apply } => keyword(r, at, words).map(|v| apply(r, at, v)).is_some(),
        Apply::Word(apply) | Apply::Words(apply) => {
            apply(r, at);
            true
        }
        Apply::Line(apply) => {
            apply(r, at, fields);
            true
        }
    };
    if passed && r.errors() == errors {
        r.set_at.insert(d.setting, at.line);
        // heartbeat records one-value directives as written for its
        // client API (hbparameter); lists and whole lines it does not.
        if !matches!(d.apply, Apply::Words(_) | Apply::Line(_)) {
            r.cf.written.insert(d.name.to_string(), at.text.to_string());
        }
    }
}

fn duration(r: &mut Reader, at: At<'_>) -> Option<std::time::Duration> {
    let (name, v) = (at.name, at.text);
    match parse_duration(v) {
        Ok(d) => Some(d),
        Err(e) => {
            let seconds_suffix = matches!(&e, DurationError::BadUnit(_, u) if u.eq_ignore_ascii_case("s") || u.eq_ignore_ascii_case("sec"));
            let extra = if seconds_suffix {
                " (heartbeat has no \"s\" suffix: plain numbers are seconds)"
            } else {
                ""
            };
            r.err(
                Code::BadDuration,
                at,
                format!("{name} {v:?} is not a duration{extra}"),
                &format!("write e.g. \"{name} 5\" or \"{name} 500ms\""),
            );
            None
        }
    }
}

fn boolean(r: &mut Reader, at: At<'_>) -> Option<bool> {
    let (name, v) = (at.name, at.text);
    let b = parse_bool(v);
    if b.is_none() {
        r.err(
            Code::BadBoolean,
            at,
            format!("{name} {v:?} is not a boolean"),
            &format!("write \"{name} on\" or \"{name} off\" (also true/false, yes/no, y/n, 1/0)"),
        );
    }
    b
}

/// A whole number in `min..=max`, with Rust's integer syntax (a leading
/// `+` is fine; a `-` only where negative numbers are allowed).
fn number(r: &mut Reader, at: At<'_>, (min, max): (i64, i64), range: &str) -> Option<i64> {
    let (name, v) = (at.name, at.text);
    let n = if min >= 0 {
        v.parse::<u64>().ok().and_then(|n| i64::try_from(n).ok())
    } else {
        v.parse::<i64>().ok()
    };
    match n {
        Some(n) if (min..=max).contains(&n) => Some(n),
        _ => {
            r.err(
                Code::BadNumber,
                at,
                format!("{name} {v:?} is not a whole number in {range}"),
                &Reader::example_hint(at),
            );
            None
        }
    }
}

/// The index of `at.text` among `words`, compared without case.
fn keyword(r: &mut Reader, at: At<'_>, words: &[&str]) -> Option<usize> {
    let (name, v) = (at.name, at.text);
    let found = words.iter().position(|w| w.eq_ignore_ascii_case(v));
    if found.is_none() {
        r.err(
            Code::BadValue,
            at,
            format!("{name} {v:?} is not one of {}", words.join(", ")),
            &format!("write e.g. \"{name} {}\"", words[0]),
        );
    }
    found
}

/// Directives heartbeat 3.0.6's source names but Debian's heartbeat
/// refuses whatever their value (checked against the installed binary by
/// tests/config_vs_heartbeat.rs): why, and what to write instead. A near
/// name would be the wrong hint for these.
const REFUSED_BY_HEARTBEAT: &[(&str, &str, &str)] = &[
    (
        "normalpoll",
        "Debian builds heartbeat without ALLOWPOLLCHOICE, so it answers \"Illegal directive\"",
        "remove the line: heartbeat always uses poll(2), and wasmbeat has no such choice",
    ),
    (
        "hbaping",
        "it needs heartbeat's hbaping (Fibre Channel) plugin, which Debian does not ship, so it answers \"Illegal directive\"",
        "remove the line; for a ping node write e.g. \"ping 10.0.0.254\" (accepted, not acted on yet)",
    ),
    (
        "crm_daemon_dir",
        "its check is inverted (config.c set_crm_daemon_dir fails when fail_if_after_pacemaker succeeds), so every such line is a configuration error; it only locates Pacemaker's daemons anyway",
        "remove the line: wasmbeat runs haresources mode, without Pacemaker",
    ),
];

/// A directive heartbeat does not know, with the nearest known name.
fn unknown(r: &mut Reader, no: usize, col: usize, name: &str) {
    let at = At {
        line: no,
        col,
        name: "",
        text: name,
        example: "",
    };
    if let Some((_, why, fix)) = REFUSED_BY_HEARTBEAT.iter().find(|(n, ..)| *n == name) {
        r.diags.push(diagnostic(
            true,
            Code::UnknownDirective,
            at,
            format!("\"{name}\" is refused by Debian's heartbeat 3.0.6: {why}"),
            fix,
        ));
        return;
    }
    let lower = name.to_ascii_lowercase();
    let chars = lower.chars().count();
    // Only names within two edits are suggested, and the distance is at
    // least the difference in length: skipping the others keeps a long
    // garbage line from costing its length times every directive.
    let best = DIRECTIVES
        .iter()
        .filter(|d| d.name.len().abs_diff(chars) <= 2)
        .filter_map(|d| Some((edit_distance_at_most(&lower, d.name, 2)?, d.name)))
        .min();
    let hint = match best {
        Some((_, n)) => format!("did you mean \"{n}\"? (directive names are case-sensitive)"),
        None => "see ha.cf(5) for the directives heartbeat accepts".to_string(),
    };
    r.diags.push(diagnostic(
        true,
        Code::UnknownDirective,
        at,
        format!("unknown directive \"{name}\" (heartbeat: \"Illegal directive\")"),
        &hint,
    ));
}

/// The edit distance of `a` and `b` if it is at most `max`. Only the band
/// of cells within `max` of the diagonal can stay within `max`, so each row
/// costs 2 × max + 1 cells instead of `b`'s length, and a row whose every
/// cell exceeds `max` ends the search.
fn edit_distance_at_most(a: &str, b: &str, max: usize) -> Option<usize> {
    let a: Vec<char> = a.chars().collect();
    let b: Vec<char> = b.chars().collect();
    if a.len().abs_diff(b.len()) > max {
        return None;
    }
    let over = max + 1;
    let mut prev: Vec<usize> = (0..=b.len()).map(|j| j.min(over)).collect();
    let mut cur = vec![over; b.len() + 1];
    for i in 1..=a.len() {
        let lo = i.saturating_sub(max).max(1);
        let hi = (i + max).min(b.len());
        // The cells just outside the band are read by this row or the next.
        cur[lo - 1] = if lo == 1 { i.min(over) } else { over };
        if hi < b.len() {
            cur[hi + 1] = over;
        }
        let mut row_min = cur[lo - 1];
        for j in lo..=hi {
            let sub = prev[j - 1] + usize::from(a[i - 1] != b[j - 1]);
            cur[j] = sub.min(prev[j] + 1).min(cur[j - 1] + 1).min(over);
            row_min = row_min.min(cur[j]);
        }
        if row_min > max {
            return None;
        }
        std::mem::swap(&mut prev, &mut cur);
    }
    Some(prev[b.len()]).filter(|d| *d <= max)
}

#[cfg(test)]
mod tests {
    use super::edit_distance_at_most;
    use proptest::prelude::*;

    /// The textbook full table, to check the banded one against.
    fn edit_distance(a: &str, b: &str) -> usize {
        let (a, b): (Vec<char>, Vec<char>) = (a.chars().collect(), b.chars().collect());
        let mut prev: Vec<usize> = (0..=b.len()).collect();
        for i in 1..=a.len() {
            let mut cur = vec![i; b.len() + 1];
            for j in 1..=b.len() {
                let sub = prev[j - 1] + usize::from(a[i - 1] != b[j - 1]);
                cur[j] = sub.min(prev[j] + 1).min(cur[j - 1] + 1);
            }
            prev = cur;
        }
        prev[b.len()]
    }

    #[test]
    fn banded_distance_examples() {
        assert_eq!(edit_distance_at_most("keepalive", "keepalive", 2), Some(0));
        assert_eq!(edit_distance_at_most("keepaliv", "keepalive", 2), Some(1));
        assert_eq!(edit_distance_at_most("kepalvie", "keepalive", 2), None);
        assert_eq!(edit_distance_at_most("", "ab", 2), Some(2));
        assert_eq!(edit_distance_at_most("abc", "", 2), None);
        assert_eq!(edit_distance_at_most("deadtiem", "deadtime", 2), Some(2));
    }

    proptest! {
        #[test]
        fn banded_distance_agrees_with_the_full_table(
            a in "[a-dé_]{0,12}",
            b in "[a-dé_]{0,12}",
            max in 0usize..4,
        ) {
            let full = edit_distance(&a, &b);
            let want = (full <= max).then_some(full);
            prop_assert_eq!(edit_distance_at_most(&a, &b, max), want);
        }
    }
}
