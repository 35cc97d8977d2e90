//! The time a daemon's log line was written, in one spelling for both daemons:
//! `YYYY-MM-DDTHH:MM:SS` (UTC), so lines of a window can be picked by string
//! comparison.

/// The stamp of `line`, or `None` for a line without one (a continuation).
/// wasmbeat writes RFC 3339; heartbeat 3.0.6 writes `Dec 06 12:10:00 node2
/// heartbeat: ...` for its own lines (no year: `year` is used) and
/// `2026/12/06_12:10:04  harc(default)[959]: ...` for its scripts'.
pub fn stamp(line: &str, year: &str) -> Option<String> {
    let b = line.as_bytes();
    let digits = |r: std::ops::Range<usize>| {
        b.get(r.clone())
            .is_some_and(|s| s.iter().all(u8::is_ascii_digit))
    };
    if digits(0..4) && b.get(4) == Some(&b'-') && b.get(10) == Some(&b'T') && line.len() >= 19 {
        return Some(line[..19].to_string());
    }
    if digits(0..4) && b.get(4) == Some(&b'/') && b.get(10) == Some(&b'_') && line.len() >= 19 {
        return Some(format!(
            "{}-{}-{}T{}",
            &line[0..4],
            &line[5..7],
            &line[8..10],
            &line[11..19]
        ));
    }
    const MONTHS: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    let month = MONTHS.iter().position(|m| line.starts_with(m))?;
    if b.get(3) == Some(&b' ') && digits(4..6) && b.get(6) == Some(&b' ') && line.len() >= 15 {
        return Some(format!(
            "{year}-{:02}-{}T{}",
            month + 1,
            &line[4..6],
            &line[7..15]
        ));
    }
    None
}

#[cfg(test)]
mod tests {
    use super::stamp;

    #[test]
    fn each_daemons_stamp_reads_the_same() {
        let want = Some("2026-12-06T12:10:04".to_string());
        assert_eq!(
            stamp(
                "2026-12-06T12:10:04.869235Z  WARN wasmbeat::daemon: late",
                "2026"
            ),
            want
        );
        assert_eq!(
            stamp(
                "Dec 06 12:10:04 node2 heartbeat: [670]: CRIT: Cluster node",
                "2026"
            ),
            want
        );
        assert_eq!(
            stamp(
                "2026/12/06_12:10:04  harc(default)[959]:    info: Running",
                "2026"
            ),
            want
        );
        assert_eq!(
            stamp("  continuation of a multi-line message", "2026"),
            None
        );
        assert_eq!(stamp("Decoy 1 line", "2026"), None);
    }
}
