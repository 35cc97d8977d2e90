//! Text from outside the trust boundary (agent log calls, the stderr of
//! spawned servers) made safe to put in a log line: bounded in length, and
//! with every character that could start a forged line, move the cursor or
//! recolour a terminal written as a visible escape instead.

use std::borrow::Cow;
use std::fmt::Write as _;

/// Bytes of untrusted text kept per log line; the rest is replaced by a
/// note saying how long the original was.
pub const MAX_LINE_BYTES: usize = 4096;

/// Whether `c` must not reach a log verbatim: C0 controls (newline,
/// carriage return, ESC, ...) and DEL, C1 controls (0x80-0x9f, which some
/// terminals honour as CSI), the Unicode line and paragraph separators,
/// and the bidirectional overrides that make text display in another order
/// than it reads.
fn needs_escape(c: char) -> bool {
    matches!(c,
        '\u{0}'..='\u{1f}'
        | '\u{7f}'..='\u{9f}'
        | '\u{2028}' | '\u{2029}'
        | '\u{202a}'..='\u{202e}'
        | '\u{2066}'..='\u{2069}')
}

/// `text` with control characters escaped (`\n`, `\r`, `\t`, `\x1b`,
/// `\u{2028}`) and cut to at most `max` bytes of the original, on a
/// character boundary; a cut line ends with `… [N bytes, truncated]`.
/// Borrowed when nothing had to change (the common case costs no copy).
pub fn sanitize(text: &str, max: usize) -> Cow<'_, str> {
    let cut = if text.len() > max {
        let mut end = max;
        while !text.is_char_boundary(end) {
            end -= 1;
        }
        Some(end)
    } else {
        None
    };
    let kept = &text[..cut.unwrap_or(text.len())];
    if cut.is_none() && !kept.chars().any(needs_escape) {
        return Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(kept.len() + 32);
    for c in kept.chars() {
        match c {
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if needs_escape(c) && (c as u32) < 0x100 => {
                let _ = write!(out, "\\x{:02x}", c as u32);
            }
            c if needs_escape(c) => {
                let _ = write!(out, "\\u{{{:x}}}", c as u32);
            }
            c => out.push(c),
        }
    }
    if cut.is_some() {
        let _ = write!(out, "… [{} bytes, truncated]", text.len());
    }
    Cow::Owned(out)
}

/// Like [`sanitize`] for bytes that may not be UTF-8 (a server's stderr):
/// invalid sequences become U+FFFD first.
pub fn sanitize_bytes(bytes: &[u8], max: usize) -> String {
    let text = String::from_utf8_lossy(bytes);
    sanitize(&text, max).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_text_is_untouched_and_not_copied() {
        let s = "started httpd on 10.0.0.1:80 (pid 42) — ok";
        assert!(matches!(sanitize(s, MAX_LINE_BYTES), Cow::Borrowed(x) if x == s));
    }

    #[test]
    fn forged_line_starts_and_terminal_escapes_are_visible() {
        let forged =
            "ok\n2099-01-01T00:00:00Z ERROR wasmbeat::cluster: FORGED\r\x1b[31mred\x1b[0m\u{9b}2J";
        let s = sanitize(forged, MAX_LINE_BYTES);
        assert!(!s.contains('\n') && !s.contains('\r') && !s.contains('\x1b'));
        assert!(!s.contains('\u{9b}'));
        assert_eq!(
            s,
            "ok\\n2099-01-01T00:00:00Z ERROR wasmbeat::cluster: FORGED\\r\\x1b[31mred\\x1b[0m\\x9b2J"
        );
    }

    #[test]
    fn bidi_overrides_and_separators_are_escaped() {
        assert_eq!(
            sanitize("a\u{202e}b\u{2028}c", 100),
            "a\\u{202e}b\\u{2028}c"
        );
    }

    #[test]
    fn long_text_is_cut_on_a_char_boundary_with_its_length() {
        let long = "é".repeat(5000); // 10000 bytes
        let s = sanitize(&long, MAX_LINE_BYTES);
        assert!(s.len() < MAX_LINE_BYTES + 64, "{}", s.len());
        assert!(
            s.ends_with("… [10000 bytes, truncated]"),
            "{}",
            &s[s.len() - 40..]
        );
        assert!(s.starts_with("éé"));
    }

    #[test]
    fn invalid_utf8_is_replaced() {
        assert_eq!(sanitize_bytes(b"a\xffb\n", 100), "a\u{fffd}b\\n");
    }
}
