//! Walks a protobuf message with the generated table and builds the JSON that Go's encoder would
//! write for the same Go object: keys in Go struct order, Go's zero-value omission for plain
//! `omitempty` fields, and apimachinery's own JSON forms for quantities, int-or-strings, times,
//! durations and embedded raw JSON.

use std::borrow::Cow;
use std::fmt::Write as _;

use base64::Engine as _;
use serde_json::{Map, Number, Value};

use super::ProtobufError;
use super::table::{self, Absent, Field, Kind, Label, Message, Shape};
use super::wire::{Payload, Reader, WireError};

/// How deep messages may nest. Real objects stay far below (a CRD schema nests a few levels per
/// property level); the limit keeps a hostile body from exhausting the stack.
pub(super) const MAX_DEPTH: usize = 100;

/// The JSON of one message.
pub(super) fn message(msg: &'static Message, buf: &[u8], depth: usize) -> Result<Value, ProtobufError> {
    if depth > MAX_DEPTH {
        return Err(ProtobufError::TooDeep);
    }
    match msg.shape {
        Shape::Object => object(msg, buf, depth).map(Value::Object),
        Shape::Quantity => {
            let fields = collect(msg, buf)?;
            // Go's zero Quantity prints as "0".
            Ok(Value::String(last_string(msg, &fields, 1)?.unwrap_or_else(|| "0".to_owned())))
        }
        Shape::IntOrString => {
            let fields = collect(msg, buf)?;
            // type 1 is intstr.String; anything else reads as the int, as Go's MarshalJSON does.
            if last_varint(msg, &fields, 1)? == Some(1) {
                Ok(Value::String(last_string(msg, &fields, 3)?.unwrap_or_default()))
            } else {
                // Go decodes an int32 field by truncating the varint.
                Ok(Value::from(last_varint(msg, &fields, 2)?.unwrap_or(0) as i32))
            }
        }
        Shape::Time | Shape::MicroTime => {
            // Go writes the zero time as an empty message and prints it as null.
            if buf.is_empty() {
                return Ok(Value::Null);
            }
            let fields = collect(msg, buf)?;
            let seconds = last_varint(msg, &fields, 1)?.unwrap_or(0) as i64;
            let nanos = last_varint(msg, &fields, 2)?.unwrap_or(0) as i32;
            rfc3339(seconds, nanos, msg.shape == Shape::MicroTime).map(Value::String).ok_or(ProtobufError::Value {
                tag: 1,
                message: msg.name,
                reason: "time outside the years 0000-9999",
            })
        }
        Shape::Duration => {
            let fields = collect(msg, buf)?;
            Ok(Value::String(go_duration(last_varint(msg, &fields, 1)?.unwrap_or(0) as i64)))
        }
        Shape::RawJson => {
            let fields = collect(msg, buf)?;
            match last_bytes(msg, &fields, 1)? {
                None | Some([]) => Ok(Value::Null),
                Some(raw) => serde_json::from_slice(raw).map_err(|source| ProtobufError::RawJson {
                    tag: 1,
                    message: msg.name,
                    source,
                }),
            }
        }
        Shape::Items => {
            let fields = collect(msg, buf)?;
            let items = all_bytes(msg, &fields, 1)?;
            Ok(Value::Array(
                items.into_iter().map(|b| Value::String(String::from_utf8_lossy(b).into_owned())).collect(),
            ))
        }
        Shape::SchemaOrArray | Shape::SchemaOrBool | Shape::SchemaOrStringArray => schema_or(msg, buf, depth),
    }
}

/// One slot per table field while a message is read; fields may come in any order and repeat.
enum Slot<'a> {
    Empty,
    One(Value),
    /// A singular message seen one or more times: protobuf merges repeats, which is the same as
    /// decoding the concatenation of their payloads.
    Pieces(Vec<&'a [u8]>),
    List(Vec<Value>),
    Map(Map<String, Value>),
}

fn object(msg: &'static Message, buf: &[u8], depth: usize) -> Result<Map<String, Value>, ProtobufError> {
    let mut slots: Vec<Slot<'_>> = msg.fields.iter().map(|_| Slot::Empty).collect();
    let mut reader = Reader::new(buf);
    while let Some((tag, payload)) = reader.next_field().map_err(|e| wire_error(e, msg.name))? {
        // Unknown fields (newer servers' additions) are skipped, as Go does.
        let Some(index) = msg.fields.iter().position(|f| f.tag == tag) else { continue };
        let field = &msg.fields[index];
        let slot = &mut slots[index];
        match (field.label, field.kind) {
            (Label::Opt | Label::OmitEmpty | Label::Inline, Kind::Msg(_)) => {
                let bytes = expect_bytes(field, msg, payload)?;
                match slot {
                    Slot::Pieces(pieces) => pieces.push(bytes),
                    _ => *slot = Slot::Pieces(vec![bytes]),
                }
            }
            (Label::Opt | Label::OmitEmpty | Label::Inline, kind) => {
                let value = scalar(field, msg, kind, payload)?;
                // The last occurrence wins; a zero plain value is Go's "unset".
                *slot = if field.label == Label::OmitEmpty && is_zero(&value) { Slot::Empty } else { Slot::One(value) };
            }
            (Label::Rep, kind) => {
                if !matches!(slot, Slot::List(_)) {
                    *slot = Slot::List(Vec::new());
                }
                let Slot::List(list) = slot else { continue };
                match (kind, payload) {
                    (Kind::Msg(i), _) => {
                        list.push(message(table::by_index(i), expect_bytes(field, msg, payload)?, depth + 1)?)
                    }
                    // Numbers may come packed (one length-delimited run) or one per field: proto2
                    // writes them unpacked, other encoders pack; parsers accept both.
                    (Kind::Bool | Kind::I32 | Kind::I64 | Kind::F64, Payload::Bytes(packed)) => {
                        unpack(field, msg, kind, packed, list)?
                    }
                    _ => list.push(scalar(field, msg, kind, payload)?),
                }
            }
            (Label::Map, kind) => {
                let (key, value) = map_entry(field, msg, kind, expect_bytes(field, msg, payload)?, depth)?;
                if !matches!(slot, Slot::Map(_)) {
                    *slot = Slot::Map(Map::new());
                }
                if let Slot::Map(map) = slot {
                    map.insert(key, value);
                }
            }
        }
    }

    let mut out = Map::new();
    for (field, slot) in msg.fields.iter().zip(slots) {
        let value = match slot {
            Slot::Empty => match absent(field, depth)? {
                Some(value) => value,
                None => continue,
            },
            Slot::List(list) if list.is_empty() => match absent(field, depth)? {
                Some(value) => value,
                None => continue,
            },
            Slot::One(value) => value,
            Slot::List(list) => Value::Array(list),
            Slot::Map(map) => Value::Object(map),
            Slot::Pieces(pieces) => {
                let Kind::Msg(i) = field.kind else { continue };
                let joined: Cow<'_, [u8]> =
                    if pieces.len() == 1 { Cow::Borrowed(pieces[0]) } else { Cow::Owned(pieces.concat()) };
                message(table::by_index(i), &joined, depth + 1)?
            }
        };
        if field.label == Label::Inline {
            // An embedded Go struct: its keys sit in this object, where the struct is declared.
            if let Value::Object(inner) = value {
                out.extend(inner);
            }
        } else {
            out.insert(field.json.to_owned(), value);
        }
    }
    Ok(out)
}

/// Go's JSON of a field the body does not carry, if Go prints one.
fn absent(field: &Field, depth: usize) -> Result<Option<Value>, ProtobufError> {
    Ok(match (field.absent, field.kind) {
        (Absent::Omit, _) => None,
        (Absent::Null, _) => Some(Value::Null),
        (Absent::Zero, Kind::Msg(i)) => Some(message(table::by_index(i), &[], depth + 1)?),
        (Absent::Zero, kind) => Some(zero(kind)),
    })
}

fn zero(kind: Kind) -> Value {
    match kind {
        Kind::Str | Kind::Bytes => Value::String(String::new()),
        Kind::Bool => Value::Bool(false),
        Kind::I32 | Kind::I64 | Kind::F64 | Kind::Msg(_) => Value::from(0),
    }
}

/// One `map<string, V>` entry: a message with the key as field 1 and the value as field 2. Either
/// may be missing; Go then uses the zero value.
fn map_entry(
    field: &Field,
    msg: &'static Message,
    kind: Kind,
    buf: &[u8],
    depth: usize,
) -> Result<(String, Value), ProtobufError> {
    let mut key = String::new();
    let mut value = None;
    let mut pieces: Vec<&[u8]> = Vec::new();
    let mut reader = Reader::new(buf);
    while let Some((tag, payload)) = reader.next_field().map_err(|e| entry_error(e, field, msg))? {
        match (tag, kind) {
            (1, _) => key = String::from_utf8_lossy(expect_bytes(field, msg, payload)?).into_owned(),
            (2, Kind::Msg(_)) => pieces.push(expect_bytes(field, msg, payload)?),
            (2, kind) => value = Some(scalar(field, msg, kind, payload)?),
            _ => {}
        }
    }
    let value = match (kind, value) {
        (_, Some(value)) => value,
        (Kind::Msg(i), None) => message(table::by_index(i), &pieces.concat(), depth + 1)?,
        (kind, None) => zero(kind),
    };
    Ok((key, value))
}

/// A scalar field's JSON: strings as (lossy) UTF-8, bytes as base64, numbers as JSON numbers.
fn scalar(field: &Field, msg: &'static Message, kind: Kind, payload: Payload<'_>) -> Result<Value, ProtobufError> {
    Ok(match (kind, payload) {
        // Go does not check UTF-8 when decoding and its JSON encoder replaces bad bytes with U+FFFD.
        (Kind::Str, Payload::Bytes(b)) => Value::String(String::from_utf8_lossy(b).into_owned()),
        (Kind::Bytes, Payload::Bytes(b)) => Value::String(base64::engine::general_purpose::STANDARD.encode(b)),
        (Kind::Bool, Payload::Varint(v)) => Value::Bool(v != 0),
        // int32 is sign-extended to 64 bits on the wire; Go truncates back.
        (Kind::I32, Payload::Varint(v)) => Value::from(v as i32),
        (Kind::I64, Payload::Varint(v)) => Value::from(v as i64),
        (Kind::F64, Payload::Fixed64(bits)) => double(f64::from_bits(bits)).ok_or(ProtobufError::Value {
            tag: field.tag,
            message: msg.name,
            reason: "a number that is not finite has no JSON form",
        })?,
        (kind, payload) => {
            return Err(ProtobufError::WireType {
                tag: field.tag,
                message: msg.name,
                found: payload.wire_type(),
                expected: wire_type(kind),
            });
        }
    })
}

/// The elements of a packed numeric list.
fn unpack(
    field: &Field,
    msg: &'static Message,
    kind: Kind,
    packed: &[u8],
    out: &mut Vec<Value>,
) -> Result<(), ProtobufError> {
    let truncated = || ProtobufError::Truncated { tag: field.tag, message: msg.name };
    let mut reader = Reader::new(packed);
    while !reader.is_empty() {
        let payload = if kind == Kind::F64 {
            let bytes = reader.take(8).ok_or_else(truncated)?;
            Payload::Fixed64(u64::from_le_bytes(bytes.try_into().map_err(|_| truncated())?))
        } else {
            Payload::Varint(reader.varint().ok_or_else(truncated)?)
        };
        out.push(scalar(field, msg, kind, payload)?);
    }
    Ok(())
}

fn expect_bytes<'a>(field: &Field, msg: &'static Message, payload: Payload<'a>) -> Result<&'a [u8], ProtobufError> {
    match payload {
        Payload::Bytes(b) => Ok(b),
        other => {
            Err(ProtobufError::WireType { tag: field.tag, message: msg.name, found: other.wire_type(), expected: 2 })
        }
    }
}

fn wire_type(kind: Kind) -> u8 {
    match kind {
        Kind::Bool | Kind::I32 | Kind::I64 => 0,
        Kind::F64 => 1,
        Kind::Str | Kind::Bytes | Kind::Msg(_) => 2,
    }
}

fn is_zero(value: &Value) -> bool {
    match value {
        Value::String(s) => s.is_empty(),
        Value::Bool(b) => !b,
        Value::Number(n) => n.as_f64() == Some(0.0),
        _ => false,
    }
}

/// Go prints integral floats without a fraction (`3`, not `3.0`); JSON has no NaN or infinity.
fn double(x: f64) -> Option<Value> {
    if x.is_finite() && x.fract() == 0.0 && x.abs() < 1e15 {
        return Some(Value::from(x as i64));
    }
    Number::from_f64(x).map(Value::Number)
}

pub(super) fn wire_error(e: WireError, message: &'static str) -> ProtobufError {
    match e {
        WireError::Truncated { tag } => ProtobufError::Truncated { tag, message },
        WireError::BadKey => ProtobufError::BadKey { message },
        WireError::WireType { tag, wire_type } => ProtobufError::UnsupportedWireType { tag, message, wire_type },
    }
}

/// Errors inside a map entry are reported against the map field.
fn entry_error(e: WireError, field: &Field, msg: &'static Message) -> ProtobufError {
    match e {
        WireError::Truncated { .. } | WireError::BadKey => {
            ProtobufError::Truncated { tag: field.tag, message: msg.name }
        }
        WireError::WireType { wire_type, .. } => {
            ProtobufError::UnsupportedWireType { tag: field.tag, message: msg.name, wire_type }
        }
    }
}

// ---- the special shapes read their few fields by tag ---------------------------------------------

fn collect<'a>(msg: &'static Message, buf: &'a [u8]) -> Result<Vec<(u32, Payload<'a>)>, ProtobufError> {
    let mut reader = Reader::new(buf);
    let mut fields = Vec::new();
    while let Some(field) = reader.next_field().map_err(|e| wire_error(e, msg.name))? {
        fields.push(field);
    }
    Ok(fields)
}

fn last_varint(msg: &'static Message, fields: &[(u32, Payload<'_>)], tag: u32) -> Result<Option<u64>, ProtobufError> {
    match fields.iter().rev().find(|(t, _)| *t == tag) {
        None => Ok(None),
        Some((_, Payload::Varint(v))) => Ok(Some(*v)),
        Some((_, other)) => {
            Err(ProtobufError::WireType { tag, message: msg.name, found: other.wire_type(), expected: 0 })
        }
    }
}

fn all_bytes<'a>(
    msg: &'static Message,
    fields: &[(u32, Payload<'a>)],
    tag: u32,
) -> Result<Vec<&'a [u8]>, ProtobufError> {
    fields
        .iter()
        .filter(|(t, _)| *t == tag)
        .map(|(_, p)| match p {
            Payload::Bytes(b) => Ok(*b),
            other => Err(ProtobufError::WireType { tag, message: msg.name, found: other.wire_type(), expected: 2 }),
        })
        .collect()
}

fn last_bytes<'a>(
    msg: &'static Message,
    fields: &[(u32, Payload<'a>)],
    tag: u32,
) -> Result<Option<&'a [u8]>, ProtobufError> {
    Ok(all_bytes(msg, fields, tag)?.pop())
}

fn last_string(
    msg: &'static Message,
    fields: &[(u32, Payload<'_>)],
    tag: u32,
) -> Result<Option<String>, ProtobufError> {
    Ok(last_bytes(msg, fields, tag)?.map(|b| String::from_utf8_lossy(b).into_owned()))
}

/// The apiextensions unions, printed as their Go `MarshalJSON` does: `JSONSchemaPropsOrArray` is
/// the list when it has one, else the schema; `JSONSchemaPropsOrBool` is the schema when set, else
/// the bool; `JSONSchemaPropsOrStringArray` is the strings when any, else the schema.
fn schema_or(msg: &'static Message, buf: &[u8], depth: usize) -> Result<Value, ProtobufError> {
    let fields = collect(msg, buf)?;
    let schema_tag = if msg.shape == Shape::SchemaOrBool { 2 } else { 1 };
    let schema_msg = msg.fields.iter().find_map(|f| match f.kind {
        Kind::Msg(i) if f.tag == schema_tag => Some(table::by_index(i)),
        _ => None,
    });
    let schema = |pieces: Vec<&[u8]>| -> Result<Value, ProtobufError> {
        match schema_msg {
            Some(schema_msg) if !pieces.is_empty() => message(schema_msg, &pieces.concat(), depth + 1),
            _ => Ok(Value::Null),
        }
    };
    match msg.shape {
        Shape::SchemaOrArray => {
            let list = all_bytes(msg, &fields, 2)?;
            if list.is_empty() {
                return schema(all_bytes(msg, &fields, 1)?);
            }
            let Some(schema_msg) = schema_msg else { return Ok(Value::Null) };
            list.into_iter().map(|b| message(schema_msg, b, depth + 1)).collect::<Result<_, _>>().map(Value::Array)
        }
        Shape::SchemaOrBool => {
            let pieces = all_bytes(msg, &fields, 2)?;
            if pieces.is_empty() {
                return Ok(Value::Bool(last_varint(msg, &fields, 1)?.is_some_and(|v| v != 0)));
            }
            schema(pieces)
        }
        _ => {
            let property = all_bytes(msg, &fields, 2)?;
            if property.is_empty() {
                return schema(all_bytes(msg, &fields, 1)?);
            }
            Ok(Value::Array(
                property.into_iter().map(|b| Value::String(String::from_utf8_lossy(b).into_owned())).collect(),
            ))
        }
    }
}

/// `metav1.Time` (`2026-01-02T03:04:05Z`, whole seconds) or `metav1.MicroTime`
/// (`2026-01-02T03:04:05.123456Z`, always six digits, truncated), in UTC. Nanoseconds outside
/// 0..1e9 carry into the seconds, as `time.Unix` does. `None` outside the years 0000–9999.
pub(super) fn rfc3339(seconds: i64, nanos: i32, micro: bool) -> Option<String> {
    const NANOS: i128 = 1_000_000_000;
    let total = i128::from(seconds) * NANOS + i128::from(nanos);
    let (secs, nanos) = (total.div_euclid(NANOS), total.rem_euclid(NANOS));
    let (days, second_of_day) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
    let (year, month, day) = civil_from_days(days);
    if !(0..=9999).contains(&year) {
        return None;
    }
    let (h, m, s) = (second_of_day / 3600, second_of_day / 60 % 60, second_of_day % 60);
    let mut out = format!("{year:04}-{month:02}-{day:02}T{h:02}:{m:02}:{s:02}");
    if micro {
        let _ = write!(out, ".{:06}", nanos / 1000);
    }
    out.push('Z');
    Some(out)
}

/// The proleptic Gregorian date of a day count from 1970-01-01 (the "days from civil" inverse,
/// computed in 400-year eras of 146097 days).
fn civil_from_days(days: i128) -> (i128, i128, i128) {
    let z = days + 719_468; // days from 0000-03-01
    let era = z.div_euclid(146_097);
    let day_of_era = z.rem_euclid(146_097);
    let year_of_era = (day_of_era - day_of_era / 1460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
    let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    let month_from_march = (5 * day_of_year + 2) / 153;
    let day = day_of_year - (153 * month_from_march + 2) / 5 + 1;
    let month = if month_from_march < 10 { month_from_march + 3 } else { month_from_march - 9 };
    let year = year_of_era + era * 400 + i128::from(month <= 2);
    (year, month, day)
}

/// Go's `time.Duration.String()`: `1h2m3.5s`, `2m0s`, `1.5s`, `300ms`, `1.5µs`, `10ns`, `0s`.
pub(super) fn go_duration(nanos: i64) -> String {
    const SECOND: u64 = 1_000_000_000;
    let n = nanos.unsigned_abs();
    let mut out = String::new();
    if nanos < 0 {
        out.push('-');
    }
    if n == 0 {
        return "0s".to_owned();
    }
    if n < SECOND {
        let (unit, scale) = match n {
            ..1_000 => ("ns", 1),
            1_000..1_000_000 => ("µs", 1_000),
            _ => ("ms", 1_000_000),
        };
        push_decimal(&mut out, n, scale);
        out.push_str(unit);
        return out;
    }
    let secs = n / SECOND;
    let (h, m) = (secs / 3600, secs / 60 % 60);
    if h > 0 {
        let _ = write!(out, "{h}h");
    }
    if h > 0 || m > 0 {
        let _ = write!(out, "{m}m");
    }
    push_decimal(&mut out, (secs % 60) * SECOND + n % SECOND, SECOND);
    out.push('s');
    out
}

/// `value / scale` with its fraction, trailing zeros dropped (`1500, 1000` -> `1.5`).
fn push_decimal(out: &mut String, value: u64, scale: u64) {
    let _ = write!(out, "{}", value / scale);
    let frac = value % scale;
    if frac > 0 {
        let width = scale.ilog10() as usize;
        let digits = format!("{frac:0width$}");
        let _ = write!(out, ".{}", digits.trim_end_matches('0'));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn go_durations() {
        for (nanos, want) in [
            (0, "0s"),
            (1, "1ns"),
            (1_500, "1.5µs"),
            (300_000_000, "300ms"),
            (1_000_000_000, "1s"),
            (1_500_000_000, "1.5s"),
            (60_000_000_000, "1m0s"),
            (61_000_000_000, "1m1s"),
            (3_600_000_000_000, "1h0m0s"),
            (5_430_000_000_000, "1h30m30s"),
            (3_601_000_000_001, "1h0m1.000000001s"),
            (-90_000_000_000, "-1m30s"),
            (i64::MIN, "-2562047h47m16.854775808s"),
        ] {
            assert_eq!(go_duration(nanos), want, "{nanos}");
        }
    }

    #[test]
    fn times() {
        assert_eq!(rfc3339(0, 0, false).as_deref(), Some("1970-01-01T00:00:00Z"));
        assert_eq!(rfc3339(1_767_323_045, 999_999_999, false).as_deref(), Some("2026-01-02T03:04:05Z"));
        assert_eq!(rfc3339(1_767_323_045, 123_456_789, true).as_deref(), Some("2026-01-02T03:04:05.123456Z"));
        assert_eq!(rfc3339(1_767_323_045, 0, true).as_deref(), Some("2026-01-02T03:04:05.000000Z"));
        // Leap day, end of a century, and nanoseconds carrying into the seconds like time.Unix.
        assert_eq!(rfc3339(951_782_400, 0, false).as_deref(), Some("2000-02-29T00:00:00Z"));
        assert_eq!(rfc3339(-1, 0, false).as_deref(), Some("1969-12-31T23:59:59Z"));
        assert_eq!(rfc3339(0, -1, true).as_deref(), Some("1969-12-31T23:59:59.999999Z"));
        assert_eq!(rfc3339(0, 2_000_000_000, false).as_deref(), Some("1970-01-01T00:00:02Z"));
        assert_eq!(rfc3339(-62_167_219_200, 0, false).as_deref(), Some("0000-01-01T00:00:00Z"));
        assert_eq!(rfc3339(253_402_300_799, 0, false).as_deref(), Some("9999-12-31T23:59:59Z"));
        assert_eq!(rfc3339(253_402_300_800, 0, false), None);
        assert_eq!(rfc3339(-62_167_219_201, 0, false), None);
        assert_eq!(rfc3339(i64::MAX, i32::MAX, true), None);
        assert_eq!(rfc3339(i64::MIN, i32::MIN, true), None);
    }

    #[test]
    fn times_agree_with_jiff() {
        // A spread of instants over the whole range, checked against an independent calendar.
        // jiff ends at 9999-12-30T22:00:00Z.
        let (lo, hi) = (-62_167_219_200i64, 253_402_207_200i64);
        let step = (hi - lo) / 9973;
        for i in 0..=9973 {
            let secs = (lo + i * step + i % 86_400).min(hi);
            let ts = jiff::Timestamp::new(secs, 0).expect("in jiff's range");
            let want = ts.strftime("%Y-%m-%dT%H:%M:%SZ").to_string();
            assert_eq!(rfc3339(secs, 0, false), Some(want), "{secs}");
        }
    }

    #[test]
    fn doubles_print_like_go() {
        assert_eq!(double(3.0), Some(Value::from(3)));
        assert_eq!(double(0.5), Some(serde_json::json!(0.5)));
        assert_eq!(double(f64::NAN), None);
        assert_eq!(double(f64::INFINITY), None);
    }
}
