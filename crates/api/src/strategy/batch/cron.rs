//! Cron schedules as upstream checks them (`robfig/cron/v3` `ParseStandard`): five fields or a
//! `@descriptor`; errors carry that library's wording, which users see in `kubectl` output.

/// A field's minimum, maximum and optional names (with the value of the first name).
type FieldBounds<'a> = (u32, u32, Option<(&'a [&'a str], u32)>);

/// Check a schedule; `Err` is the parser's message.
pub(crate) fn parse_standard(spec: &str) -> Result<(), String> {
    let spec = spec.trim();
    if spec.is_empty() {
        return Err("empty spec string".to_string());
    }
    let mut rest = spec;
    if let Some(tz) = rest.strip_prefix("TZ=").or_else(|| rest.strip_prefix("CRON_TZ=")) {
        let (_, after) = tz.split_once(' ').unwrap_or((tz, ""));
        rest = after.trim();
    }
    if let Some(desc) = rest.strip_prefix('@') {
        return match desc {
            "yearly" | "annually" | "monthly" | "weekly" | "daily" | "midnight" | "hourly" => Ok(()),
            d if d.starts_with("every ") => {
                let dur = d["every ".len()..].trim();
                if parse_go_duration(dur) {
                    Ok(())
                } else {
                    Err(format!("failed to parse duration @{d}: time: invalid duration {dur:?}"))
                }
            }
            _ => Err(format!("unrecognized descriptor: @{desc}")),
        };
    }
    let fields: Vec<&str> = rest.split_whitespace().collect();
    if fields.len() != 5 {
        return Err(format!("expected exactly 5 fields, found {}: [{}]", fields.len(), fields.join(" ")));
    }
    const MONTHS: &[&str] = &["jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec"];
    const DOWS: &[&str] = &["sun", "mon", "tue", "wed", "thu", "fri", "sat"];
    let bounds: [FieldBounds<'_>; 5] =
        [(0, 59, None), (0, 23, None), (1, 31, None), (1, 12, Some((MONTHS, 1))), (0, 6, Some((DOWS, 0)))];
    for (field, (min, max, names)) in fields.iter().zip(bounds) {
        for expr in field.split(',') {
            parse_range(expr, min, max, names)?;
        }
    }
    Ok(())
}

fn parse_range(expr: &str, min: u32, max: u32, names: Option<(&[&str], u32)>) -> Result<(), String> {
    let slash: Vec<&str> = expr.split('/').collect();
    if slash.len() > 2 {
        return Err(format!("too many slashes: {expr}"));
    }
    let range: Vec<&str> = slash[0].split('-').collect();
    if range.len() > 2 {
        return Err(format!("too many hyphens: {expr}"));
    }
    let (start, end) = if range[0] == "*" || range[0] == "?" {
        (min, max)
    } else {
        let start = parse_value(range[0], names)?;
        let end = if range.len() == 2 { parse_value(range[1], names)? } else { start };
        (start, end)
    };
    if slash.len() == 2 {
        let step: u32 = slash[1].parse().map_err(|_| atoi_error(slash[1]))?;
        if step == 0 {
            return Err(format!("step of range should be a positive number: {expr}"));
        }
    }
    if start < min {
        return Err(format!("beginning of range ({start}) below minimum ({min}): {expr}"));
    }
    if end > max {
        return Err(format!("end of range ({end}) above maximum ({max}): {expr}"));
    }
    if start > end {
        return Err(format!("beginning of range ({start}) beyond end of range ({end}): {expr}"));
    }
    Ok(())
}

fn parse_value(s: &str, names: Option<(&[&str], u32)>) -> Result<u32, String> {
    if let Some((list, base)) = names
        && let Some(i) = list.iter().position(|n| n.eq_ignore_ascii_case(s))
    {
        return Ok(i as u32 + base);
    }
    s.parse::<u32>().map_err(|_| atoi_error(s))
}

fn atoi_error(s: &str) -> String {
    format!("failed to parse int from {s}: strconv.Atoi: parsing {s:?}: invalid syntax")
}

/// Go's `time.ParseDuration` grammar: `1h30m`, `90s`, `1.5h`.
fn parse_go_duration(s: &str) -> bool {
    let mut rest = s.strip_prefix(['+', '-']).unwrap_or(s);
    if rest == "0" {
        return true;
    }
    if rest.is_empty() {
        return false;
    }
    while !rest.is_empty() {
        let num_len = rest.find(|c: char| !c.is_ascii_digit() && c != '.').unwrap_or(rest.len());
        if num_len == 0 {
            return false;
        }
        rest = &rest[num_len..];
        let unit =
            ["ns", "us", "µs", "ms", "s", "m", "h"].iter().filter(|u| rest.starts_with(**u)).max_by_key(|u| u.len());
        match unit {
            Some(u) => rest = &rest[u.len()..],
            None => return false,
        }
    }
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn schedules() {
        for ok in ["*/5 * * * *", "0 0 * * sun", "0 9-17 * jan-mar 1-5", "@hourly", "@every 1h30m", "15,45 * ? * *"] {
            assert_eq!(parse_standard(ok), Ok(()), "{ok}");
        }
        assert_eq!(parse_standard("foo").unwrap_err(), "expected exactly 5 fields, found 1: [foo]");
        assert_eq!(parse_standard("61 * * * *").unwrap_err(), "end of range (61) above maximum (59): 61");
        assert_eq!(
            parse_standard("x * * * *").unwrap_err(),
            "failed to parse int from x: strconv.Atoi: parsing \"x\": invalid syntax"
        );
        assert!(parse_standard("@often").is_err());
        assert!(parse_standard("5-2 * * * *").is_err());
    }
}
