//! Kubernetes resource quantities (`500m`, `1.5Gi`, `1e3`): parsing, comparison and the
//! canonical form upstream's `resource.Quantity.String()` prints.
//!
//! A quantity is kept exactly as `m × 10^e` (i128 mantissa); binary suffixes are multiplied out.
//! Like upstream, precision below 10⁻⁹ is rounded up (away from zero).

use std::cmp::Ordering;
use std::collections::BTreeMap;
use std::fmt;

use k8s_openapi::api::core::v1::{Container, Pod};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;

/// Upstream's parse error, shown when a quantity does not match its grammar.
pub(crate) const QUANTITY_FORMAT_MSG: &str =
    "quantities must match the regular expression '^([+-]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)$'";

/// How a quantity was written, which decides how it is printed back.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Format {
    /// `k`, `M`, `m`, … or no suffix.
    DecimalSI,
    /// `Ki`, `Mi`, …
    BinarySI,
    /// `1e3`.
    DecimalExponent,
}

/// An exact quantity.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Qty {
    m: i128,
    e: i32,
    format: Format,
}

impl Qty {
    /// Parse upstream's quantity grammar; `Err` carries the message to show the user.
    pub(crate) fn parse(s: &str) -> Result<Qty, &'static str> {
        let s = s.trim_matches(' ');
        let bytes = s.as_bytes();
        let mut i = 0;
        let negative = match bytes.first() {
            Some(b'-') => {
                i = 1;
                true
            }
            Some(b'+') => {
                i = 1;
                false
            }
            _ => false,
        };
        let num_start = i;
        while i < bytes.len() && (bytes[i].is_ascii_digit() || bytes[i] == b'.') {
            i += 1;
        }
        let number = &s[num_start..i];
        let suffix = &s[i..];
        if number.is_empty() || number.matches('.').count() > 1 || number == "." {
            return Err(QUANTITY_FORMAT_MSG);
        }
        let (int_part, frac_part) = number.split_once('.').unwrap_or((number, ""));
        let digits = format!("{int_part}{frac_part}");
        let digits = digits.trim_start_matches('0');
        if digits.len() > 36 {
            return Err("quantity is too large");
        }
        let mut m: i128 = if digits.is_empty() { 0 } else { digits.parse().map_err(|_| QUANTITY_FORMAT_MSG)? };
        let mut e: i32 = -(frac_part.len() as i32);
        let format = match suffix {
            "" => Format::DecimalSI,
            "n" | "u" | "m" | "k" | "M" | "G" | "T" | "P" | "E" => {
                e += match suffix {
                    "n" => -9,
                    "u" => -6,
                    "m" => -3,
                    "k" => 3,
                    "M" => 6,
                    "G" => 9,
                    "T" => 12,
                    "P" => 15,
                    _ => 18,
                };
                Format::DecimalSI
            }
            "Ki" | "Mi" | "Gi" | "Ti" | "Pi" | "Ei" => {
                let power = match suffix {
                    "Ki" => 1,
                    "Mi" => 2,
                    "Gi" => 3,
                    "Ti" => 4,
                    "Pi" => 5,
                    _ => 6,
                };
                m = m.checked_mul(1024i128.pow(power)).ok_or("quantity is too large")?;
                Format::BinarySI
            }
            _ => {
                let exp = suffix.strip_prefix('e').or_else(|| suffix.strip_prefix('E')).ok_or(QUANTITY_FORMAT_MSG)?;
                let unsigned = exp.strip_prefix(['+', '-']).unwrap_or(exp);
                if unsigned.is_empty() || !unsigned.bytes().all(|c| c.is_ascii_digit()) {
                    return Err(QUANTITY_FORMAT_MSG);
                }
                let exp: i32 = exp.parse().map_err(|_| "quantity is too large")?;
                if exp.abs() > 100 {
                    return Err("quantity is too large");
                }
                e += exp;
                Format::DecimalExponent
            }
        };
        if negative {
            m = -m;
        }
        let mut q = Qty { m, e, format };
        q.normalize();
        // Upstream keeps at most nano precision and rounds up.
        if q.e < -9 {
            let shift = (-9 - q.e) as u32;
            let div = 10i128.checked_pow(shift).ok_or(QUANTITY_FORMAT_MSG)?;
            let (quot, rem) = (q.m / div, q.m % div);
            q.m = if rem == 0 { quot } else { quot + q.m.signum() };
            q.e = -9;
            q.normalize();
        }
        if q.e > 0 && q.m != 0 && q.m.unsigned_abs().checked_mul(10u128.pow(q.e.min(38) as u32)).is_none() {
            return Err("quantity is too large");
        }
        Ok(q)
    }

    fn normalize(&mut self) {
        if self.m == 0 {
            self.e = 0;
            return;
        }
        while self.m % 10 == 0 {
            self.m /= 10;
            self.e += 1;
        }
    }

    pub(crate) fn is_negative(&self) -> bool {
        self.m < 0
    }

    pub(crate) fn is_zero(&self) -> bool {
        self.m == 0
    }

    /// Whether the value is a whole number.
    pub(crate) fn is_integer(&self) -> bool {
        self.e >= 0 || self.m == 0
    }

    /// The value scaled to milli-units, saturating (used for QoS and ratio checks).
    pub(crate) fn milli(&self) -> i128 {
        let e = self.e + 3;
        if e >= 0 {
            10i128.checked_pow(e as u32).and_then(|p| self.m.checked_mul(p)).unwrap_or(if self.m < 0 {
                i128::MIN
            } else {
                i128::MAX
            })
        } else {
            let div = 10i128.checked_pow((-e) as u32).unwrap_or(i128::MAX);
            // ceil, like upstream's MilliValue rounding up
            let q = self.m / div;
            if self.m % div != 0 && self.m > 0 { q + 1 } else { q }
        }
    }

    /// The value in nano-units, exact (parsing keeps at most nano precision), saturating.
    fn nano(&self) -> i128 {
        // `parse` leaves e >= -9.
        let e = (self.e + 9).max(0) as u32;
        10i128.checked_pow(e).and_then(|p| self.m.checked_mul(p)).unwrap_or(if self.m < 0 {
            i128::MIN
        } else {
            i128::MAX
        })
    }

    fn cmp_value(&self, other: &Qty) -> Ordering {
        if self.m.signum() != other.m.signum() || self.m == 0 {
            return self.m.signum().cmp(&other.m.signum());
        }
        let emin = self.e.min(other.e);
        let scale =
            |q: &Qty| -> Option<i128> { 10i128.checked_pow((q.e - emin) as u32).and_then(|p| q.m.checked_mul(p)) };
        match (scale(self), scale(other)) {
            (Some(a), Some(b)) => a.cmp(&b),
            // One side overflowed: it is the one with the larger magnitude.
            (None, _) if self.e > other.e => self.m.signum().cmp(&0),
            (_, None) if other.e > self.e => 0.cmp(&other.m.signum()),
            _ => Ordering::Equal,
        }
    }

    fn decimal_parts(&self) -> (i128, i32) {
        let (mut m, mut e) = (self.m, self.e);
        let r = e.rem_euclid(3);
        if r != 0 {
            m = m.saturating_mul(10i128.pow(r as u32));
            e -= r;
        }
        (m, e)
    }
}

impl PartialEq for Qty {
    fn eq(&self, other: &Self) -> bool {
        self.cmp_value(other) == Ordering::Equal
    }
}

impl PartialOrd for Qty {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp_value(other))
    }
}

impl fmt::Display for Qty {
    /// Upstream's canonical form (`CanonicalizeBytes`).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut format = self.format;
        if format == Format::BinarySI && (self.m.unsigned_abs() < 1024 && self.e == 0 || !self.is_integer()) {
            format = Format::DecimalSI;
        }
        if format == Format::BinarySI && self.e > 0 {
            // |value| >= 1024 here unless the exponent makes it so.
            if self.e > 30 {
                format = Format::DecimalSI;
            }
        }
        match format {
            Format::BinarySI => {
                let mut v = self.m.saturating_mul(10i128.pow(self.e as u32));
                if v.unsigned_abs() < 1024 {
                    return write!(f, "{v}");
                }
                let mut exp = 0;
                while v != 0 && v % 1024 == 0 && exp < 6 {
                    v /= 1024;
                    exp += 1;
                }
                let suffix = ["", "Ki", "Mi", "Gi", "Ti", "Pi", "Ei"][exp];
                write!(f, "{v}{suffix}")
            }
            Format::DecimalSI => {
                let (m, e) = self.decimal_parts();
                let suffix = match e {
                    -9 => "n",
                    -6 => "u",
                    -3 => "m",
                    0 => "",
                    3 => "k",
                    6 => "M",
                    9 => "G",
                    12 => "T",
                    15 => "P",
                    18 => "E",
                    _ => return write!(f, "{m}e{e}"),
                };
                write!(f, "{m}{suffix}")
            }
            Format::DecimalExponent => {
                let (m, e) = self.decimal_parts();
                if e == 0 { write!(f, "{m}") } else { write!(f, "{m}e{e}") }
            }
        }
    }
}

/// A quantity in milli-units (`"500m"` → 500, `"1Gi"` → 1073741824000), for admission's
/// arithmetic; `None` if it does not parse.
pub fn milli_value(s: &str) -> Option<i128> {
    Qty::parse(s).ok().map(|q| q.milli())
}

/// Milli-units written back as a quantity: whole units plainly, else with the `m` suffix
/// (upstream prints CPU that way; byte counts are always whole).
pub fn format_milli(m: i128) -> String {
    if m % 1000 == 0 { (m / 1000).to_string() } else { format!("{m}m") }
}

/// What a pod counts against a quota: `pods`, and requests/limits of cpu, memory and
/// ephemeral-storage (with the bare `cpu`/`memory` names meaning requests). Finished pods count
/// nothing.
pub fn pod_usage(pod: &serde_json::Value) -> std::collections::BTreeMap<String, i128> {
    let mut u = std::collections::BTreeMap::new();
    if matches!(pod.pointer("/status/phase").and_then(serde_json::Value::as_str), Some("Succeeded" | "Failed")) {
        return u;
    }
    u.insert("pods".to_string(), 1000);
    let sum = |field: &str, res: &str| -> i128 {
        let get = |c: &serde_json::Value| {
            c.pointer(&format!("/resources/{field}/{res}")).and_then(serde_json::Value::as_str).and_then(milli_value)
        };
        let regular: i128 = pod
            .pointer("/spec/containers")
            .and_then(serde_json::Value::as_array)
            .into_iter()
            .flatten()
            .filter_map(get)
            .sum();
        let init = pod
            .pointer("/spec/initContainers")
            .and_then(serde_json::Value::as_array)
            .into_iter()
            .flatten()
            .filter_map(get)
            .max()
            .unwrap_or(0);
        regular.max(init)
    };
    for res in ["cpu", "memory", "ephemeral-storage"] {
        let (req, lim) = (sum("requests", res), sum("limits", res));
        u.insert(format!("requests.{res}"), req);
        u.insert(format!("limits.{res}"), lim);
        if res != "ephemeral-storage" {
            u.insert(res.to_string(), req);
        }
    }
    u
}

/// A pod's effective resource requests, as upstream's `resource.PodRequests` computes them for
/// the scheduler's fit check and the kubelet's admission: regular containers and sidecars
/// (restartable init containers) run together, so their requests add up; a classic init
/// container runs alone beside the sidecars started before it, so the pod needs at least the
/// largest of those; `spec.overhead` comes on top.
///
/// Amounts are summed exactly, then rounded up the way upstream's scheduler framework reads
/// them: `cpu` in millicores (`MilliValue()`), every other resource in whole units
/// (`Value()`). A quantity that does not parse counts as zero (the API server validated it).
pub fn pod_requests(pod: &Pod) -> BTreeMap<String, i128> {
    /// Exact amounts in nano-units, by resource name.
    type Nanos = BTreeMap<String, i128>;
    fn of(list: Option<&BTreeMap<String, Quantity>>) -> Nanos {
        list.into_iter().flatten().map(|(k, q)| (k.clone(), Qty::parse(&q.0).map(|q| q.nano()).unwrap_or(0))).collect()
    }
    fn add(into: &mut Nanos, from: &Nanos) {
        for (k, v) in from {
            let e = into.entry(k.clone()).or_default();
            *e = e.saturating_add(*v);
        }
    }
    fn max(into: &mut Nanos, from: &Nanos) {
        for (k, v) in from {
            let e = into.entry(k.clone()).or_insert(*v);
            *e = (*e).max(*v);
        }
    }
    let Some(spec) = pod.spec.as_ref() else { return BTreeMap::new() };
    let requests = |c: &Container| of(c.resources.as_ref().and_then(|r| r.requests.as_ref()));
    let mut reqs = Nanos::new();
    for c in &spec.containers {
        add(&mut reqs, &requests(c));
    }
    // What each init container needs while it runs: itself plus the sidecars started before it
    // (a sidecar's own entry is the running total of sidecars, itself included).
    let mut sidecars = Nanos::new();
    let mut init_peak = Nanos::new();
    for c in spec.init_containers.iter().flatten() {
        let mut r = requests(c);
        if c.restart_policy.as_deref() == Some("Always") {
            add(&mut reqs, &r);
            add(&mut sidecars, &r);
            r = sidecars.clone();
        } else {
            add(&mut r, &sidecars);
        }
        max(&mut init_peak, &r);
    }
    max(&mut reqs, &init_peak);
    add(&mut reqs, &of(spec.overhead.as_ref()));
    let ceil_div = |n: i128, d: i128| if n % d > 0 { n / d + 1 } else { n / d };
    reqs.into_iter()
        .map(|(k, n)| {
            let v = if k == "cpu" { ceil_div(n, 1_000_000) } else { ceil_div(n, 1_000_000_000) };
            (k, v)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn canon(s: &str) -> String {
        Qty::parse(s).unwrap().to_string()
    }

    #[test]
    fn canonical_forms_match_upstream() {
        assert_eq!(canon("0.5"), "500m");
        assert_eq!(canon("1000m"), "1");
        assert_eq!(canon("100m"), "100m");
        assert_eq!(canon("1500"), "1500");
        assert_eq!(canon("2000"), "2k");
        assert_eq!(canon("1Gi"), "1Gi");
        assert_eq!(canon("1.5Gi"), "1536Mi");
        assert_eq!(canon("0.5Ki"), "512");
        assert_eq!(canon("128974848"), "128974848");
        assert_eq!(canon("129e6"), "129e6");
        assert_eq!(canon("123Mi"), "123Mi");
        assert_eq!(canon("0"), "0");
        assert_eq!(canon("-1"), "-1");
        assert_eq!(canon("0.0000000001"), "1n");
        assert_eq!(canon("1.2345m"), "1234500n");
    }

    #[test]
    fn compare_and_reject() {
        assert!(Qty::parse("500m").unwrap() < Qty::parse("1").unwrap());
        assert!(Qty::parse("1Gi").unwrap() > Qty::parse("1G").unwrap());
        assert!(Qty::parse("1000m").unwrap() == Qty::parse("1").unwrap());
        assert!(Qty::parse("-1").unwrap().is_negative());
        for bad in ["", "abc", "1.2.3", "1Zi", "--1", "1e", "."] {
            assert!(Qty::parse(bad).is_err(), "{bad}");
        }
        assert_eq!(Qty::parse("1.5").unwrap().milli(), 1500);
        assert!(!Qty::parse("1.5").unwrap().is_integer());
    }
}
