//! Go's `fmt` rendering of decoded JSON (`%v`, `%s`, `reflect.TypeOf`), so strategic merge patch
//! errors read like kube-apiserver's: `map: map[image:nginx] does not contain declared merge key:
//! name`. Only error messages use this; results are never formatted.

use std::fmt::Write;

use serde_json::{Number, Value};

/// `reflect.TypeOf(x).String()` for `map[string]interface{}` values.
pub(super) const GO_MAP: &str = "map[string]interface {}";
/// `reflect.TypeOf(x).String()` for `[]interface{}` values.
pub(super) const GO_SLICE: &str = "[]interface {}";

/// The Go type apimachinery's JSON decoder gives a value (`int64` for integral numbers that fit,
/// `float64` otherwise), as `reflect.TypeOf` prints it.
pub(super) fn go_type(v: &Value) -> &'static str {
    match v {
        Value::Null => "<nil>",
        Value::Bool(_) => "bool",
        Value::Number(n) if n.as_i64().is_some() => "int64",
        Value::Number(_) => "float64",
        Value::String(_) => "string",
        Value::Array(_) => GO_SLICE,
        Value::Object(_) => GO_MAP,
    }
}

/// `fmt.Sprintf("%v", v)`: maps as `map[k:v ...]` with sorted keys, slices as `[a b]`, strings
/// unquoted, null as `<nil>`.
pub(super) fn go_value(v: &Value) -> String {
    let mut out = String::new();
    write_value(&mut out, v);
    out
}

/// `fmt.Sprintf("%v", list)` for a `[]interface{}`.
pub(super) fn go_list(items: &[Value]) -> String {
    let mut out = String::new();
    write_list(&mut out, items.iter());
    out
}

/// `fmt.Sprint(lists)` for a `[][]interface{}`, as in upstream's "list element types are not
/// identical" error.
pub(super) fn go_lists(lists: &[&[Value]]) -> String {
    let mut out = String::from("[");
    for (i, list) in lists.iter().enumerate() {
        if i > 0 {
            out.push(' ');
        }
        write_list(&mut out, list.iter());
    }
    out.push(']');
    out
}

/// `fmt.Sprintf("%s", v)`: like `%v` for strings and composites, `%!s(type=value)` otherwise.
pub(super) fn go_string_verb(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Array(_) | Value::Object(_) => go_value(v),
        Value::Null => "%!s(<nil>)".to_string(),
        other => format!("%!s({}={})", go_type(other), go_value(other)),
    }
}

fn write_value(out: &mut String, v: &Value) {
    match v {
        Value::Null => out.push_str("<nil>"),
        Value::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
        Value::Number(n) => out.push_str(&go_number(n)),
        Value::String(s) => out.push_str(s),
        Value::Array(items) => write_list(out, items.iter()),
        Value::Object(map) => {
            let mut keys: Vec<&String> = map.keys().collect();
            keys.sort();
            out.push_str("map[");
            for (i, k) in keys.into_iter().enumerate() {
                if i > 0 {
                    out.push(' ');
                }
                out.push_str(k);
                out.push(':');
                if let Some(value) = map.get(k) {
                    write_value(out, value);
                }
            }
            out.push(']');
        }
    }
}

fn write_list<'v>(out: &mut String, items: impl Iterator<Item = &'v Value>) {
    out.push('[');
    for (i, item) in items.enumerate() {
        if i > 0 {
            out.push(' ');
        }
        write_value(out, item);
    }
    out.push(']');
}

fn go_number(n: &Number) -> String {
    if let Some(i) = n.as_i64() {
        return i.to_string();
    }
    n.as_f64().map(go_float).unwrap_or_else(|| n.to_string())
}

/// `strconv.FormatFloat(f, 'g', -1, 64)`, which `%v` uses: the shortest digits that round-trip,
/// in exponent form when the decimal exponent is below -4 or at least 6 (`1e+06`, `1.5e-07`).
fn go_float(f: f64) -> String {
    if f.is_nan() {
        return "NaN".to_string();
    }
    if f.is_infinite() {
        return if f > 0.0 { "+Inf" } else { "-Inf" }.to_string();
    }
    if f == 0.0 {
        return if f.is_sign_negative() { "-0" } else { "0" }.to_string();
    }
    // Rust's `{:e}` gives the same shortest round-trip digits: "-1.2345e6", "5e-7".
    let sci = format!("{f:e}");
    let Some((mantissa, exp)) = sci.split_once('e') else {
        return sci;
    };
    let Ok(exp) = exp.parse::<i32>() else {
        return sci;
    };
    let (sign, mantissa) = match mantissa.strip_prefix('-') {
        Some(rest) => ("-", rest),
        None => ("", mantissa),
    };
    let digits: String = mantissa.chars().filter(char::is_ascii_digit).collect();
    let mut out = String::from(sign);
    if !(-4..6).contains(&exp) {
        out.push_str(&digits[..1]);
        if digits.len() > 1 {
            out.push('.');
            out.push_str(&digits[1..]);
        }
        let exp_sign = if exp < 0 { '-' } else { '+' };
        let _ = write!(out, "e{exp_sign}{:02}", exp.unsigned_abs());
    } else if exp < 0 {
        out.push_str("0.");
        for _ in 0..(-exp - 1) {
            out.push('0');
        }
        out.push_str(&digits);
    } else {
        // The decimal point sits after exp+1 digits; pad with zeros when there are fewer.
        let int_len = usize::try_from(exp).unwrap_or(0) + 1;
        if digits.len() <= int_len {
            out.push_str(&digits);
            for _ in digits.len()..int_len {
                out.push('0');
            }
        } else {
            out.push_str(&digits[..int_len]);
            out.push('.');
            out.push_str(&digits[int_len..]);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn formats_like_go_percent_v() {
        assert_eq!(
            go_value(&json!({"value": "b", "name": 1, "x": null, "l": [1, "a", true]})),
            "map[l:[1 a true] name:1 value:b x:<nil>]"
        );
        assert_eq!(go_value(&json!(1000000.0)), "1e+06");
        assert_eq!(go_value(&json!(123456.0)), "123456");
        assert_eq!(go_value(&json!(1.5)), "1.5");
        assert_eq!(go_value(&json!(-0.00015)), "-0.00015");
        assert_eq!(go_value(&json!(0.000015)), "1.5e-05");
        assert_eq!(go_value(&json!(1234567.5)), "1.2345675e+06");
        assert_eq!(go_value(&json!(0.0)), "0");
        assert_eq!(go_value(&json!(u64::MAX)), "1.8446744073709552e+19");
        assert_eq!(go_value(&json!(-7)), "-7");
        assert_eq!(go_lists(&[&[json!(1)], &[json!("a")]]), "[[1] [a]]");
        assert_eq!(go_list(&[]), "[]");
    }

    #[test]
    fn go_types_and_string_verb() {
        assert_eq!(go_type(&json!(1)), "int64");
        assert_eq!(go_type(&json!(1.5)), "float64");
        assert_eq!(go_type(&json!({})), GO_MAP);
        assert_eq!(go_type(&json!([])), GO_SLICE);
        assert_eq!(go_type(&json!(null)), "<nil>");
        assert_eq!(go_string_verb(&json!("merge")), "merge");
        assert_eq!(go_string_verb(&json!(true)), "%!s(bool=true)");
        assert_eq!(go_string_verb(&json!(null)), "%!s(<nil>)");
    }
}
