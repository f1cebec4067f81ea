//! Human-readable durations as kubectl shows them in `AGE`, `LAST SEEN`, `DURATION` and the
//! restart suffix (`5m`, `2d3h`, `4y120d`): apimachinery's `duration.HumanDuration` and
//! `ShortHumanDuration`, with the same thresholds and the same tolerance for clock skew.

use jiff::{SignedDuration, Timestamp};

/// `HumanDuration`: about two significant figures, e.g. `90s`, `5m30s`, `3h20m`, `2d3h`, `1y5d`.
pub fn human_duration(d: std::time::Duration) -> String {
    human_secs(i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
}

/// [`human_duration`] for a duration that may be negative (a timestamp in the future): up to a
/// second of skew prints as `0s`, more as `<invalid>`, as upstream.
pub fn human_signed_duration(d: SignedDuration) -> String {
    // `as_secs` truncates toward zero, like Go's `int(d.Seconds())`.
    human_secs(d.as_secs())
}

/// `ShortHumanDuration`: one unit only (`59s`, `5m`, `23h`, `364d`, `2y`).
pub fn short_human_duration(d: SignedDuration) -> String {
    let seconds = d.as_secs();
    if seconds < -1 {
        return "<invalid>".to_string();
    }
    if seconds < 0 {
        return "0s".to_string();
    }
    if seconds < 60 {
        return format!("{seconds}s");
    }
    let minutes = seconds / 60;
    if minutes < 60 {
        return format!("{minutes}m");
    }
    let hours = seconds / 3600;
    if hours < 24 {
        return format!("{hours}h");
    }
    if hours < 24 * 365 {
        return format!("{}d", hours / 24);
    }
    format!("{}y", hours / 24 / 365)
}

/// `translateTimestampSince`: the time from an RFC 3339 timestamp to `now` as a
/// [`human_duration`]. An unset (or Go zero) timestamp is `<unknown>`, an unparseable one
/// `<invalid>`.
pub fn translate_timestamp_since(timestamp: Option<&str>, now: Timestamp) -> String {
    let Some(raw) = timestamp.filter(|s| !s.is_empty()) else {
        return "<unknown>".to_string();
    };
    match raw.parse::<Timestamp>() {
        Ok(ts) => since(ts, now),
        Err(_) => "<invalid>".to_string(),
    }
}

/// The human duration from `ts` to `now`, `<unknown>` for Go's zero time.
pub(super) fn since(ts: Timestamp, now: Timestamp) -> String {
    if is_go_zero(ts) {
        return "<unknown>".to_string();
    }
    human_signed_duration(now.duration_since(ts))
}

/// Whether `ts` is Go's zero `time.Time` (`0001-01-01T00:00:00Z`), which upstream treats as unset.
pub(super) fn is_go_zero(ts: Timestamp) -> bool {
    ts.as_second() == -62_135_596_800 && ts.subsec_nanosecond() == 0
}

/// `HumanDuration` on whole seconds (every branch only looks at whole seconds or coarser).
fn human_secs(seconds: i64) -> String {
    // Up to a second in the future is clock skew between machines: "now".
    if seconds < -1 {
        return "<invalid>".to_string();
    }
    if seconds < 0 {
        return "0s".to_string();
    }
    if seconds < 60 * 2 {
        return format!("{seconds}s");
    }
    let minutes = seconds / 60;
    if minutes < 10 {
        let s = seconds % 60;
        return if s == 0 { format!("{minutes}m") } else { format!("{minutes}m{s}s") };
    }
    if minutes < 60 * 3 {
        return format!("{minutes}m");
    }
    let hours = seconds / 3600;
    if hours < 8 {
        let m = minutes % 60;
        return if m == 0 { format!("{hours}h") } else { format!("{hours}h{m}m") };
    }
    if hours < 48 {
        return format!("{hours}h");
    }
    if hours < 24 * 8 {
        let h = hours % 24;
        return if h == 0 { format!("{}d", hours / 24) } else { format!("{}d{h}h", hours / 24) };
    }
    if hours < 24 * 365 * 2 {
        return format!("{}d", hours / 24);
    }
    if hours < 24 * 365 * 8 {
        let dy = (hours / 24) % 365;
        return if dy == 0 { format!("{}y", hours / 24 / 365) } else { format!("{}y{dy}d", hours / 24 / 365) };
    }
    format!("{}y", hours / 24 / 365)
}
