//! JSON values the way structured-merge-diff's `value` package sees them: a total order (used to
//! sort set items and list-map keys), equality (integers and floats compare numerically), Go's
//! `encoding/json` text (sorted keys, HTML escaping, Go float formatting) for the `k:`/`v:` path
//! elements, and Go's `%v`/`%q` text for human-readable paths (`[name="web"]`).

use std::cmp::Ordering;
use std::fmt::Write as _;

use serde_json::{Map, Number, Value};

/// A JSON number as upstream classifies it: an integer (Go `int64`; `u64` values fit in `i128`)
/// or a float.
#[derive(Clone, Copy)]
enum Num {
    Int(i128),
    Float(f64),
}

fn num(n: &Number) -> Num {
    if let Some(i) = n.as_i64() {
        Num::Int(i128::from(i))
    } else if let Some(u) = n.as_u64() {
        Num::Int(i128::from(u))
    } else {
        Num::Float(n.as_f64().unwrap_or(0.0))
    }
}

/// Compares an integer with a float exactly (no rounding through `f64`), so that the order is
/// total and transitive even for integers beyond 2^53.
fn cmp_int_float(i: i128, f: f64) -> Ordering {
    if f.is_nan() {
        return Ordering::Less;
    }
    // i128 covers every JSON integer serde_json produces; floats outside ±2^100 are beyond them.
    const LIMIT: f64 = 1.267_650_600_228_229_4e30; // 2^100
    if f >= LIMIT {
        return Ordering::Less;
    }
    if f <= -LIMIT {
        return Ordering::Greater;
    }
    let whole = f.trunc();
    // `whole` is integral and within ±2^100, so the conversion is exact.
    let w = whole as i128;
    match i.cmp(&w) {
        Ordering::Equal => 0.0_f64.partial_cmp(&(f - whole)).unwrap_or(Ordering::Equal),
        other => other,
    }
}

fn cmp_num(a: Num, b: Num) -> Ordering {
    match (a, b) {
        (Num::Int(x), Num::Int(y)) => x.cmp(&y),
        (Num::Float(x), Num::Float(y)) => x.total_cmp(&y),
        (Num::Int(x), Num::Float(y)) => cmp_int_float(x, y),
        (Num::Float(x), Num::Int(y)) => cmp_int_float(y, x).reverse(),
    }
}

/// Upstream's type rank in `value.Compare`: numbers, strings, booleans, lists, maps, null.
fn rank(v: &Value) -> u8 {
    match v {
        Value::Number(_) => 0,
        Value::String(_) => 1,
        Value::Bool(_) => 2,
        Value::Array(_) => 3,
        Value::Object(_) => 4,
        Value::Null => 5,
    }
}

/// The total order of `value.Compare`: by type, numbers numerically (an integer equals the float
/// of the same value), strings bytewise, lists and maps (by sorted keys) lexicographically.
pub(crate) fn compare(a: &Value, b: &Value) -> Ordering {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => cmp_num(num(x), num(y)),
        (Value::String(x), Value::String(y)) => x.as_bytes().cmp(y.as_bytes()),
        (Value::Bool(x), Value::Bool(y)) => x.cmp(y),
        (Value::Array(x), Value::Array(y)) => {
            for (p, q) in x.iter().zip(y) {
                match compare(p, q) {
                    Ordering::Equal => {}
                    other => return other,
                }
            }
            x.len().cmp(&y.len())
        }
        (Value::Object(x), Value::Object(y)) => compare_maps(x, y),
        (Value::Null, Value::Null) => Ordering::Equal,
        _ => rank(a).cmp(&rank(b)),
    }
}

fn compare_maps(x: &Map<String, Value>, y: &Map<String, Value>) -> Ordering {
    let mut xs: Vec<(&String, &Value)> = x.iter().collect();
    let mut ys: Vec<(&String, &Value)> = y.iter().collect();
    xs.sort_by(|p, q| p.0.as_bytes().cmp(q.0.as_bytes()));
    ys.sort_by(|p, q| p.0.as_bytes().cmp(q.0.as_bytes()));
    for ((kx, vx), (ky, vy)) in xs.iter().zip(&ys) {
        match kx.as_bytes().cmp(ky.as_bytes()).then_with(|| compare(vx, vy)) {
            Ordering::Equal => {}
            other => return other,
        }
    }
    xs.len().cmp(&ys.len())
}

/// `value.Equals`: structural equality where key order does not matter and `1 == 1.0`.
pub(crate) fn equal(a: &Value, b: &Value) -> bool {
    compare(a, b) == Ordering::Equal
}

/// Converts every number to a float, as upstream's JSON iterator does when it reads a `k:` or
/// `v:` path element (so paths read back from `managedFields` behave and print like upstream's).
pub(crate) fn floats_only(v: Value) -> Value {
    match v {
        Value::Number(n) => match n.as_f64().and_then(Number::from_f64) {
            Some(f) => Value::Number(f),
            None => Value::Number(n),
        },
        Value::Array(items) => Value::Array(items.into_iter().map(floats_only).collect()),
        Value::Object(m) => Value::Object(m.into_iter().map(|(k, v)| (k, floats_only(v))).collect()),
        other => other,
    }
}

/// Appends `v` as Go's `encoding/json` writes an `interface{}`: map keys sorted, `<`, `>` and `&`
/// escaped, floats in Go's shortest form (`80`, `1.5`, `1e+21`).
pub(crate) fn write_go_json(v: &Value, out: &mut String) {
    match v {
        Value::Null => out.push_str("null"),
        Value::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
        Value::Number(n) => match num(n) {
            Num::Int(i) => {
                let _ = write!(out, "{i}");
            }
            Num::Float(f) => out.push_str(&go_json_float(f)),
        },
        Value::String(s) => write_go_string(s, out),
        Value::Array(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_go_json(item, out);
            }
            out.push(']');
        }
        Value::Object(m) => {
            let mut entries: Vec<(&String, &Value)> = m.iter().collect();
            entries.sort_by(|p, q| p.0.as_bytes().cmp(q.0.as_bytes()));
            out.push('{');
            for (i, (k, v)) in entries.into_iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_go_string(k, out);
                out.push(':');
                write_go_json(v, out);
            }
            out.push('}');
        }
    }
}

/// `v` as Go's `encoding/json` would write it.
pub(crate) fn go_json(v: &Value) -> String {
    let mut out = String::new();
    write_go_json(v, &mut out);
    out
}

/// A JSON string literal with Go's escaping (HTML-safe, U+2028/U+2029 escaped).
pub(crate) fn write_go_string(s: &str, out: &mut String) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '<' | '>' | '&' | '\u{2028}' | '\u{2029}' => {
                let _ = write!(out, "\\u{:04x}", u32::from(c));
            }
            c if u32::from(c) < 0x20 => {
                let _ = write!(out, "\\u{:04x}", u32::from(c));
            }
            c => out.push(c),
        }
    }
    out.push('"');
}

/// The shortest decimal digits of `f` (no sign) and its decimal exponent: `1.5` → ("15", 0),
/// `80.0` → ("8", 1), `1e-7` → ("1", -7).
fn shortest_digits(f: f64) -> (String, i32) {
    let s = format!("{:e}", f.abs());
    let (mantissa, exp) = s.split_once('e').unwrap_or((s.as_str(), "0"));
    let digits: String = mantissa.chars().filter(char::is_ascii_digit).collect();
    (digits, exp.parse().unwrap_or(0))
}

/// Go's `strconv.FormatFloat(f, 'f', -1, 64)` from shortest digits.
fn fixed(digits: &str, exp: i32) -> String {
    let nd = digits.len() as i32;
    if exp >= nd - 1 {
        let zeros = (exp - (nd - 1)) as usize;
        format!("{digits}{}", "0".repeat(zeros))
    } else if exp >= 0 {
        let (int, frac) = digits.split_at((exp + 1) as usize);
        format!("{int}.{frac}")
    } else {
        format!("0.{}{digits}", "0".repeat((-exp - 1) as usize))
    }
}

/// Go's `'e'` format with shortest digits: `1.5e+21`, `1e-07`.
fn scientific(digits: &str, exp: i32) -> String {
    let (first, rest) = digits.split_at(1.min(digits.len()));
    let mantissa = if rest.is_empty() { first.to_string() } else { format!("{first}.{rest}") };
    let sign = if exp < 0 { '-' } else { '+' };
    format!("{mantissa}e{sign}{:02}", exp.abs())
}

/// How `encoding/json` writes a float64.
fn go_json_float(f: f64) -> String {
    if f == 0.0 || !f.is_finite() {
        return "0".to_string();
    }
    let neg = if f < 0.0 { "-" } else { "" };
    let (digits, exp) = shortest_digits(f);
    let abs = f.abs();
    if !(1e-6..1e21).contains(&abs) {
        let mut s = scientific(&digits, exp);
        // encoding/json cleans up `e-07` to `e-7`.
        if let Some(pos) = s.find("e-0") {
            s.remove(pos + 2);
        }
        format!("{neg}{s}")
    } else {
        format!("{neg}{}", fixed(&digits, exp))
    }
}

/// How `fmt` prints a float64 with `%v` (shortest `%g`, exponent from 1e+06 up or below 1e-04).
fn go_v_float(f: f64) -> String {
    if f == 0.0 {
        return "0".to_string();
    }
    if !f.is_finite() {
        return if f.is_nan() {
            "NaN".into()
        } else if f > 0.0 {
            "+Inf".into()
        } else {
            "-Inf".into()
        };
    }
    let neg = if f < 0.0 { "-" } else { "" };
    let (digits, exp) = shortest_digits(f);
    if !(-4..6).contains(&exp) {
        format!("{neg}{}", scientific(&digits, exp))
    } else {
        format!("{neg}{}", fixed(&digits, exp))
    }
}

/// Go's `%q` of a string (`strconv.Quote`).
pub(crate) fn go_quote(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\u{7}' => out.push_str("\\a"),
            '\u{8}' => out.push_str("\\b"),
            '\u{c}' => out.push_str("\\f"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\u{b}' => out.push_str("\\v"),
            c if (c as u32) < 0x20 || c as u32 == 0x7f => {
                let _ = write!(out, "\\x{:02x}", c as u32);
            }
            c if c.is_control() => {
                if (c as u32) < 0x10000 {
                    let _ = write!(out, "\\u{:04x}", c as u32);
                } else {
                    let _ = write!(out, "\\U{:08x}", c as u32);
                }
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// `value.ToString`: the human-readable form used in paths (`"web"`, `80`, `true`, `[a,b]`).
pub(crate) fn to_display(v: &Value) -> String {
    match v {
        Value::Null => "null".to_string(),
        Value::Bool(b) => b.to_string(),
        Value::Number(n) => match num(n) {
            Num::Int(i) => i.to_string(),
            Num::Float(f) => go_v_float(f),
        },
        Value::String(s) => go_quote(s),
        Value::Array(items) => format!("[{}]", items.iter().map(to_display).collect::<Vec<_>>().join(",")),
        Value::Object(m) => m.iter().map(|(k, v)| format!("{k}={}", to_display(v))).collect::<String>(),
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn order_is_by_type_then_value_and_numbers_mix() {
        assert_eq!(compare(&json!(1), &json!(1.0)), Ordering::Equal);
        assert_eq!(compare(&json!(1), &json!(1.5)), Ordering::Less);
        assert_eq!(compare(&json!(2.5), &json!(2)), Ordering::Greater);
        assert_eq!(compare(&json!(9_007_199_254_740_993_i64), &json!(9_007_199_254_740_992.0)), Ordering::Greater);
        assert_eq!(compare(&json!(u64::MAX), &json!(-1)), Ordering::Greater);
        assert_eq!(compare(&json!(100), &json!("a")), Ordering::Less);
        assert_eq!(compare(&json!("b"), &json!("a")), Ordering::Greater);
        assert_eq!(compare(&json!("z"), &json!(true)), Ordering::Less);
        assert_eq!(compare(&json!(false), &json!(true)), Ordering::Less);
        assert_eq!(compare(&json!(true), &json!([])), Ordering::Less);
        assert_eq!(compare(&json!([1, 2]), &json!([1, 3])), Ordering::Less);
        assert_eq!(compare(&json!([1]), &json!([1, 0])), Ordering::Less);
        assert_eq!(compare(&json!([9]), &json!({})), Ordering::Less);
        assert_eq!(compare(&json!({"b": 1, "a": 2}), &json!({"a": 2, "b": 1})), Ordering::Equal);
        assert_eq!(compare(&json!({"a": 1}), &json!({"b": 0})), Ordering::Less);
        assert_eq!(compare(&json!({}), &Value::Null), Ordering::Less);
        assert!(equal(&json!({"x": [1, 2.0]}), &json!({"x": [1.0, 2]})));
    }

    #[test]
    fn go_json_matches_encoding_json() {
        assert_eq!(
            go_json(&json!({"b": "<a&b>", "a": [1, 2.5, null, true]})),
            r#"{"a":[1,2.5,null,true],"b":"\u003ca\u0026b\u003e"}"#
        );
        assert_eq!(go_json(&json!(80.0)), "80");
        assert_eq!(go_json(&json!(1e21)), "1e+21");
        assert_eq!(go_json(&json!(1e-7)), "1e-7");
        assert_eq!(go_json(&json!(-0.000_001_5)), "-0.0000015");
        assert_eq!(go_json(&json!(123_456_789.0)), "123456789");
        assert_eq!(go_json(&json!("tab\tnl\ncr\r\u{1}")), r#""tab\tnl\ncr\r\u0001""#);
    }

    #[test]
    fn display_matches_go_verbs() {
        assert_eq!(to_display(&json!("web")), r#""web""#);
        assert_eq!(to_display(&json!(80)), "80");
        assert_eq!(to_display(&json!(80.0)), "80");
        assert_eq!(to_display(&json!(1_000_000.0)), "1e+06");
        assert_eq!(to_display(&json!(123_456.0)), "123456");
        assert_eq!(to_display(&json!(0.000_01)), "1e-05");
        assert_eq!(to_display(&json!(0.25)), "0.25");
        assert_eq!(to_display(&json!(null)), "null");
        assert_eq!(to_display(&json!([1, "a"])), r#"[1,"a"]"#);
        assert_eq!(go_quote("a\"b\\\u{7f}é"), r#""a\"b\\\x7fé""#);
    }

    #[test]
    fn floats_only_converts_nested_numbers() {
        let v = floats_only(json!({"a": [1, {"b": 2}], "c": "3"}));
        assert!(v["a"][0].is_f64() && v["a"][1]["b"].is_f64() && v["c"].is_string());
    }
}
