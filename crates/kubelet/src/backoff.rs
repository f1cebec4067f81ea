//! Restart and image-pull back-off, upstream's `flowcontrol.Backoff` as the kubelet uses it:
//! the first retry is immediate, then 10 s doubling to 5 min; an entry idle for twice the
//! maximum (10 min: a container that ran that long) starts over.

use std::collections::HashMap;
use std::time::Duration;

use tokio::time::Instant;

pub(crate) const INITIAL: Duration = Duration::from_secs(10);
pub(crate) const MAX: Duration = Duration::from_secs(300);

#[derive(Debug, Default)]
pub(crate) struct Backoff {
    entries: HashMap<String, (Duration, Instant)>,
}

impl Backoff {
    /// The current delay of `key`, if it has one that has not expired at `now`.
    pub(crate) fn get(&self, key: &str, now: Instant) -> Option<Duration> {
        self.entries.get(key).filter(|(_, last)| now.saturating_duration_since(*last) <= MAX * 2).map(|(d, _)| *d)
    }

    /// Whether `key` must still wait at `now`, for an event (a container exit) at `since`.
    /// Upstream's `IsInBackOffSince`.
    pub(crate) fn in_backoff_since(&self, key: &str, since: Instant, now: Instant) -> bool {
        match self.entries.get(key) {
            Some((d, last)) if since.saturating_duration_since(*last) <= MAX * 2 => {
                now.saturating_duration_since(since) < *d
            }
            _ => false,
        }
    }

    /// When the back-off of `key` since its last update ends, if that is after `now`
    /// (upstream's `IsInBackOffSinceUpdate`, what image pulls use).
    pub(crate) fn backoff_until(&self, key: &str, now: Instant) -> Option<Instant> {
        let (d, last) = self.entries.get(key)?;
        let until = *last + *d;
        (now.saturating_duration_since(*last) <= MAX * 2 && now < until).then_some(until)
    }

    /// Record a retry at `at`: the delay doubles (or starts at [`INITIAL`]).
    pub(crate) fn next(&mut self, key: &str, at: Instant) {
        let e = self.entries.entry(key.to_string()).or_insert((Duration::ZERO, at));
        let expired = at.saturating_duration_since(e.1) > MAX * 2;
        e.0 = if e.0.is_zero() || expired { INITIAL } else { (e.0 * 2).min(MAX) };
        e.1 = at;
    }

    pub(crate) fn reset(&mut self, key: &str) {
        self.entries.remove(key);
    }
}

/// A Go-style duration for messages: `10s`, `1m20s`, `5m0s`.
pub(crate) fn go_duration(d: Duration) -> String {
    let s = d.as_secs();
    if s < 60 { format!("{s}s") } else { format!("{}m{}s", s / 60, s % 60) }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn doubles_to_the_maximum_then_resets_after_a_long_run() {
        let mut b = Backoff::default();
        let t0 = Instant::now();
        // First exit: no entry, restart at once.
        assert!(!b.in_backoff_since("c", t0, t0));
        b.next("c", t0);
        assert_eq!(b.get("c", t0), Some(INITIAL));
        // Second exit right away: wait 10 s from the exit.
        let t1 = t0 + Duration::from_secs(1);
        assert!(b.in_backoff_since("c", t1, t1 + Duration::from_secs(9)));
        assert!(!b.in_backoff_since("c", t1, t1 + Duration::from_secs(10)));
        let mut at = t1;
        let mut seen = vec![];
        for _ in 0..7 {
            b.next("c", at);
            seen.push(b.get("c", at).unwrap().as_secs());
            at += Duration::from_secs(1);
        }
        assert_eq!(seen, [20, 40, 80, 160, 300, 300, 300]);
        assert_eq!(go_duration(Duration::from_secs(300)), "5m0s");
        // Since the last update (image pulls): 300 s from the last `next`.
        assert_eq!(b.backoff_until("c", at), Some(at - Duration::from_secs(1) + MAX));
        assert_eq!(b.backoff_until("c", at + MAX), None);
        assert_eq!(go_duration(Duration::from_secs(80)), "1m20s");
        // A container that ran for more than 10 minutes starts over.
        let later = at + Duration::from_secs(601);
        assert!(!b.in_backoff_since("c", later, later));
        b.next("c", later);
        assert_eq!(b.get("c", later), Some(INITIAL));
    }
}
