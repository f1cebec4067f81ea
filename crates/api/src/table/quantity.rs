//! Canonical `resource.Quantity` strings. Upstream prints quantities through
//! `Quantity.String()`, which re-renders them canonically (`1000m` → `1`, `2048Mi` → `2Gi`,
//! `0.5` → `500m`); stored objects may still hold what the user wrote, so the printers
//! canonicalize before showing capacities, quota usage and metric targets.

/// How a quantity is written, which decides how it is rendered back.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Format {
    /// `1e3`, `5E-2`.
    DecimalExponent,
    /// Powers of 1024: `Ki`, `Mi`, … `Ei`.
    BinarySi,
    /// Powers of 1000 and plain numbers: `n`, `u`, `m`, ``, `k`, `M`, … `E`.
    DecimalSi,
}

/// An exact value `mantissa × 10^scale` and the format it was written in.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Parsed {
    mantissa: i128,
    scale: i32,
    format: Format,
}

/// The canonical form of a quantity string as `Quantity.String()` renders it, or `None` when
/// `s` is not a valid quantity.
pub fn canonical_quantity(s: &str) -> Option<String> {
    let q = parse(s)?;
    Some(render(q))
}

fn parse(s: &str) -> Option<Parsed> {
    let (negative, rest) = match s.as_bytes().first()? {
        b'-' => (true, &s[1..]),
        b'+' => (false, &s[1..]),
        _ => (false, s),
    };
    let num_end = rest.find(|c: char| !c.is_ascii_digit() && c != '.').unwrap_or(rest.len());
    let (number, suffix) = rest.split_at(num_end);
    let (whole, fraction) = match number.split_once('.') {
        Some((w, f)) => (w, f),
        None => (number, ""),
    };
    if (whole.is_empty() && fraction.is_empty()) || fraction.contains('.') {
        return None;
    }
    let digits = format!("{whole}{fraction}");
    // More digits than an i128 holds is far outside anything a Kubernetes object carries.
    if digits.len() > 36 {
        return None;
    }
    let mut mantissa: i128 = digits.parse().ok()?;
    let mut scale = -i32::try_from(fraction.len()).ok()?;
    let format = match suffix {
        "" => Format::DecimalSi,
        "Ki" | "Mi" | "Gi" | "Ti" | "Pi" | "Ei" => {
            let power = match suffix {
                "Ki" => 1,
                "Mi" => 2,
                "Gi" => 3,
                "Ti" => 4,
                "Pi" => 5,
                _ => 6,
            };
            mantissa = mantissa.checked_mul(1024_i128.checked_pow(power)?)?;
            Format::BinarySi
        }
        "n" | "u" | "m" | "k" | "M" | "G" | "T" | "P" | "E" => {
            scale += match suffix {
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
            Format::DecimalSi
        }
        _ => {
            let exponent = suffix.strip_prefix(['e', 'E'])?;
            let exponent: i32 = exponent.parse().ok()?;
            scale = scale.checked_add(exponent)?;
            Format::DecimalExponent
        }
    };
    if negative {
        mantissa = -mantissa;
    }
    // Upstream keeps nano precision and rounds anything finer away from zero.
    if scale < -9 {
        let divisor = 10_i128.checked_pow(u32::try_from(-9 - scale).ok()?)?;
        let rounded = mantissa / divisor + i128::from(mantissa % divisor != 0) * mantissa.signum();
        mantissa = rounded;
        scale = -9;
    }
    Some(Parsed { mantissa, scale, format })
}

fn render(q: Parsed) -> String {
    if q.mantissa == 0 {
        return "0".to_string();
    }
    let mut format = q.format;
    if format == Format::BinarySi {
        // Small or fractional binary values are shown in decimal rather than rounded.
        let integral = integral_value(q);
        match integral {
            Some(v) if !(-1024 < v && v < 1024) => return render_binary(v),
            _ => format = Format::DecimalSi,
        }
    }
    let (mut mantissa, mut exponent) = (q.mantissa, q.scale);
    while mantissa % 10 == 0 {
        mantissa /= 10;
        exponent += 1;
    }
    // SI suffixes step by 10^3, so bring the exponent down to a multiple of three.
    match exponent % 3 {
        1 | -2 => {
            mantissa *= 10;
            exponent -= 1;
        }
        2 | -1 => {
            mantissa *= 100;
            exponent -= 2;
        }
        _ => {}
    }
    let suffix = match format {
        Format::DecimalExponent if exponent == 0 => String::new(),
        Format::DecimalExponent => format!("e{exponent}"),
        _ => match exponent {
            -9 => "n".to_string(),
            -6 => "u".to_string(),
            -3 => "m".to_string(),
            0 => String::new(),
            3 => "k".to_string(),
            6 => "M".to_string(),
            9 => "G".to_string(),
            12 => "T".to_string(),
            15 => "P".to_string(),
            18 => "E".to_string(),
            // Beyond the SI table upstream falls back to the exponent form.
            e => format!("e{e}"),
        },
    };
    format!("{mantissa}{suffix}")
}

/// The value as an integer, when it is one.
fn integral_value(q: Parsed) -> Option<i128> {
    if q.scale >= 0 {
        q.mantissa.checked_mul(10_i128.checked_pow(u32::try_from(q.scale).ok()?)?)
    } else {
        let divisor = 10_i128.checked_pow(u32::try_from(-q.scale).ok()?)?;
        (q.mantissa % divisor == 0).then_some(q.mantissa / divisor)
    }
}

fn render_binary(value: i128) -> String {
    let (mut amount, mut power) = (value, 0);
    while power < 6 && amount % 1024 == 0 {
        amount /= 1024;
        power += 1;
    }
    let suffix = ["", "Ki", "Mi", "Gi", "Ti", "Pi", "Ei"][power];
    format!("{amount}{suffix}")
}
