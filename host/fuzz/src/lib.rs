//! Properties every configuration fuzz target checks on the diagnostics a
//! parser returns, whatever the input.

use wasmbeat::config::Diagnostic;

/// Physical lines of `text` as the parsers count them (`str::lines`).
pub fn line_count(text: &str) -> usize {
    text.lines().count()
}

/// Every diagnostic names a line of the input (or none, for whole-file
/// problems), a column of at least 1, and says something.
pub fn check_diagnostics(text: &str, diags: &[Diagnostic]) {
    let lines = line_count(text);
    for d in diags {
        if let Some(line) = d.line {
            assert!(
                (1..=lines).contains(&line),
                "{d:?} names line {line} of a {lines}-line input"
            );
        }
        if let Some(col) = d.column {
            assert!(col >= 1, "{d:?} has column 0");
        }
        assert!(!d.message.trim().is_empty(), "{d:?} has no message");
        if let Some(hint) = &d.hint {
            assert!(!hint.trim().is_empty(), "{d:?} has an empty hint");
        }
        // Rendering must not panic and must hold the message.
        assert!(d.to_string().contains(&d.message));
    }
}
