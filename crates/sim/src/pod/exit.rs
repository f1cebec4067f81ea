//! The annotations that make a simulated pod's containers exit, or never start (see the crate
//! docs), and Go's duration syntax they use (`time.ParseDuration`: `300ms`, `1.5h`, `2h45m`).

use std::collections::BTreeMap;
use std::time::Duration;

use crate::{EXIT_AFTER_ANNOTATION, EXIT_CODE_ANNOTATION, PENDING_ANNOTATION};

/// When and how the containers of a pod exit.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Exit {
    /// How long each run of the containers lasts.
    pub(crate) after: Duration,
    /// The exit code of each run.
    pub(crate) code: i32,
}

/// Reads the exit annotations; invalid values are logged and the pod runs forever (a typo
/// must not make pods fail).
pub(crate) fn from_annotations(pod: &str, annotations: Option<&BTreeMap<String, String>>) -> Option<Exit> {
    let a = annotations?;
    let after = a.get(EXIT_AFTER_ANNOTATION)?;
    let Some(after) = parse_duration(after) else {
        tracing::warn!(pod, value = %after, "invalid {EXIT_AFTER_ANNOTATION} annotation; ignored");
        return None;
    };
    let code = match a.get(EXIT_CODE_ANNOTATION) {
        None => 0,
        Some(v) => match v.trim().parse::<i32>() {
            Ok(c) => c,
            Err(_) => {
                tracing::warn!(pod, value = %v, "invalid {EXIT_CODE_ANNOTATION} annotation; using 0");
                0
            }
        },
    };
    Some(Exit { after, code })
}

/// Whether the pending annotation holds the pod's containers back for good; any value but
/// `true` or `false` is logged and read as `false` (a typo must not leave pods pending).
pub(crate) fn stays_pending(pod: &str, annotations: Option<&BTreeMap<String, String>>) -> bool {
    match annotations.and_then(|a| a.get(PENDING_ANNOTATION)).map(|v| v.trim()) {
        None | Some("false") => false,
        Some("true") => true,
        Some(v) => {
            tracing::warn!(pod, value = %v, "invalid {PENDING_ANNOTATION} annotation (true or false); ignored");
            false
        }
    }
}

/// Parses a non-negative Go duration: a sequence of decimal numbers, each with a unit
/// (`ns`, `us`, `µs`, `ms`, `s`, `m`, `h`); `0` alone is allowed.
pub(crate) fn parse_duration(s: &str) -> Option<Duration> {
    let s = s.trim();
    if s == "0" {
        return Some(Duration::ZERO);
    }
    let mut rest = s.strip_prefix('+').unwrap_or(s);
    if rest.is_empty() {
        return None;
    }
    let mut total = 0f64;
    while !rest.is_empty() {
        let num_len = rest.find(|c: char| !(c.is_ascii_digit() || c == '.')).unwrap_or(rest.len());
        let (num, tail) = rest.split_at(num_len);
        if num.is_empty() || num == "." {
            return None;
        }
        let value: f64 = num.parse().ok()?;
        let unit_len = tail.find(|c: char| c.is_ascii_digit() || c == '.').unwrap_or(tail.len());
        let (unit, tail) = tail.split_at(unit_len);
        let nanos = match unit {
            "ns" => 1.0,
            "us" | "µs" | "μs" => 1e3,
            "ms" => 1e6,
            "s" => 1e9,
            "m" => 60e9,
            "h" => 3600e9,
            _ => return None,
        };
        total += value * nanos;
        rest = tail;
    }
    // Go limits durations to ~290 years; so do we, which also keeps the cast exact enough.
    (total.is_finite() && total < 9.2e18).then(|| Duration::from_nanos(total as u64))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn go_durations() {
        assert_eq!(parse_duration("5s"), Some(Duration::from_secs(5)));
        assert_eq!(parse_duration("1m30s"), Some(Duration::from_secs(90)));
        assert_eq!(parse_duration("250ms"), Some(Duration::from_millis(250)));
        assert_eq!(parse_duration("1.5h"), Some(Duration::from_secs(5400)));
        assert_eq!(parse_duration("2h45m"), Some(Duration::from_secs(9900)));
        assert_eq!(parse_duration("10us"), Some(Duration::from_micros(10)));
        assert_eq!(parse_duration("0"), Some(Duration::ZERO));
        assert_eq!(parse_duration("0s"), Some(Duration::ZERO));
        for bad in ["", "5", "s", "-5s", "5x", "1.2.3s", "5 s", ".s", "1e3s"] {
            assert_eq!(parse_duration(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn annotations() {
        let map = |pairs: &[(&str, &str)]| -> BTreeMap<String, String> {
            pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
        };
        assert_eq!(from_annotations("p", None), None);
        assert_eq!(from_annotations("p", Some(&map(&[(EXIT_CODE_ANNOTATION, "3")]))), None);
        assert_eq!(
            from_annotations("p", Some(&map(&[(EXIT_AFTER_ANNOTATION, "5s")]))),
            Some(Exit { after: Duration::from_secs(5), code: 0 })
        );
        assert_eq!(
            from_annotations("p", Some(&map(&[(EXIT_AFTER_ANNOTATION, "1s"), (EXIT_CODE_ANNOTATION, "42")]))),
            Some(Exit { after: Duration::from_secs(1), code: 42 })
        );
        assert_eq!(
            from_annotations("p", Some(&map(&[(EXIT_AFTER_ANNOTATION, "1s"), (EXIT_CODE_ANNOTATION, "x")]))),
            Some(Exit { after: Duration::from_secs(1), code: 0 })
        );
        assert_eq!(from_annotations("p", Some(&map(&[(EXIT_AFTER_ANNOTATION, "soon")]))), None);
    }
}
