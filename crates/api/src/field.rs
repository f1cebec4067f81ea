//! Field paths and field errors, shaped like upstream's `k8s.io/apimachinery/pkg/util/validation/field`.
//!
//! Validation produces an [`ErrorList`]; the API server turns it into one `422 Invalid` `Status`
//! whose `details.causes[]` carry each error's reason, message and field path, exactly as
//! kube-apiserver does (see `docs/data-path.md`, "validate").

use std::fmt;

/// A path to a field inside an object, printed as upstream prints it:
/// `spec.containers[0].ports[1].containerPort`, `metadata.labels[app]`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Path(String);

impl Path {
    /// A path starting at the named top-level field, e.g. `Path::new("spec")`.
    pub fn new(root: &str) -> Self {
        Path(root.to_string())
    }

    /// The empty path (an error about the whole object).
    pub fn root() -> Self {
        Path(String::new())
    }

    /// `self.name`
    pub fn child(&self, name: &str) -> Self {
        if self.0.is_empty() { Path(name.to_string()) } else { Path(format!("{}.{name}", self.0)) }
    }

    /// `self[i]`
    pub fn index(&self, i: usize) -> Self {
        Path(format!("{}[{i}]", self.0))
    }

    /// `self[key]` (map entries; upstream prints the key unquoted).
    pub fn key(&self, key: &str) -> Self {
        Path(format!("{}[{key}]", self.0))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Path {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// The kinds of field error upstream defines; each maps to a `StatusCause.reason`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ErrorType {
    /// A reference to something that does not exist.
    NotFound,
    /// A required field is empty or missing.
    Required,
    /// A value that must be unique is repeated.
    Duplicate,
    /// A value is malformed or out of range.
    Invalid,
    /// A value is not one of the supported enumerated values.
    NotSupported,
    /// A field may not be set or changed (e.g. immutable fields).
    Forbidden,
    /// A string or list is longer than allowed.
    TooLong,
    /// A list has more items than allowed.
    TooMany,
    /// Something went wrong that is not the user's fault.
    Internal,
    /// A value has the wrong JSON type.
    TypeInvalid,
}

impl ErrorType {
    /// The `StatusCause.reason` (`metav1.CauseType`) upstream uses.
    pub fn reason(self) -> &'static str {
        match self {
            ErrorType::NotFound => "FieldValueNotFound",
            ErrorType::Required => "FieldValueRequired",
            ErrorType::Duplicate => "FieldValueDuplicate",
            ErrorType::Invalid => "FieldValueInvalid",
            ErrorType::NotSupported => "FieldValueNotSupported",
            ErrorType::Forbidden => "FieldValueForbidden",
            ErrorType::TooLong => "FieldValueTooLong",
            ErrorType::TooMany => "FieldValueTooMany",
            ErrorType::Internal => "InternalError",
            ErrorType::TypeInvalid => "FieldValueTypeInvalid",
        }
    }

    /// The human-readable name upstream prints.
    pub fn message(self) -> &'static str {
        match self {
            ErrorType::NotFound => "Not found",
            ErrorType::Required => "Required value",
            ErrorType::Duplicate => "Duplicate value",
            ErrorType::Invalid => "Invalid value",
            ErrorType::NotSupported => "Unsupported value",
            ErrorType::Forbidden => "Forbidden",
            ErrorType::TooLong => "Too long",
            ErrorType::TooMany => "Too many",
            ErrorType::Internal => "Internal error",
            ErrorType::TypeInvalid => "Invalid value",
        }
    }
}

/// One validation failure at one field.
#[derive(Clone, Debug, PartialEq)]
pub struct FieldError {
    pub kind: ErrorType,
    pub field: Path,
    /// The offending value, already formatted as upstream does (`"abc"` quoted for strings,
    /// bare for numbers). `None` when upstream omits it.
    pub bad_value: Option<String>,
    pub detail: String,
}

impl FieldError {
    fn new(kind: ErrorType, field: &Path, bad_value: Option<String>, detail: impl Into<String>) -> Self {
        FieldError { kind, field: field.clone(), bad_value, detail: detail.into() }
    }

    pub fn required(field: &Path, detail: impl Into<String>) -> Self {
        Self::new(ErrorType::Required, field, None, detail)
    }

    pub fn invalid(field: &Path, value: impl BadValue, detail: impl Into<String>) -> Self {
        Self::new(ErrorType::Invalid, field, Some(value.format()), detail)
    }

    pub fn not_supported<S: AsRef<str>>(field: &Path, value: impl BadValue, supported: &[S]) -> Self {
        let detail = if supported.is_empty() {
            String::new()
        } else {
            let quoted: Vec<String> = supported.iter().map(|s| format!("{:?}", s.as_ref())).collect();
            format!("supported values: {}", quoted.join(", "))
        };
        Self::new(ErrorType::NotSupported, field, Some(value.format()), detail)
    }

    pub fn duplicate(field: &Path, value: impl BadValue) -> Self {
        Self::new(ErrorType::Duplicate, field, Some(value.format()), "")
    }

    pub fn forbidden(field: &Path, detail: impl Into<String>) -> Self {
        Self::new(ErrorType::Forbidden, field, None, detail)
    }

    pub fn not_found(field: &Path, value: impl BadValue) -> Self {
        Self::new(ErrorType::NotFound, field, Some(value.format()), "")
    }

    /// `Too long: may not be more than N bytes` (upstream's `field.TooLong`).
    pub fn too_long(field: &Path, max: usize) -> Self {
        Self::new(ErrorType::TooLong, field, None, format!("may not be more than {max} bytes"))
    }

    pub fn too_many(field: &Path, actual: usize, max: usize) -> Self {
        Self::new(ErrorType::TooMany, field, Some(actual.to_string()), format!("must have at most {max} items"))
    }

    pub fn internal(field: &Path, detail: impl Into<String>) -> Self {
        Self::new(ErrorType::Internal, field, None, detail)
    }

    /// The message without the field path (upstream's `ErrorBody`): what goes into
    /// `StatusCause.message`.
    pub fn body(&self) -> String {
        let mut s = match (&self.kind, &self.bad_value) {
            (ErrorType::Required | ErrorType::Forbidden | ErrorType::TooLong | ErrorType::Internal, _) => {
                self.kind.message().to_string()
            }
            (_, None) => self.kind.message().to_string(),
            (_, Some(v)) => format!("{}: {v}", self.kind.message()),
        };
        if !self.detail.is_empty() {
            s.push_str(": ");
            s.push_str(&self.detail);
        }
        s
    }
}

impl fmt::Display for FieldError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.field.as_str().is_empty() {
            f.write_str(&self.body())
        } else {
            write!(f, "{}: {}", self.field, self.body())
        }
    }
}

/// What validation returns: empty means valid.
pub type ErrorList = Vec<FieldError>;

/// Formats an [`ErrorList`] as upstream's `utilerrors.NewAggregate(errs).Error()` does:
/// one error plainly, several as `[a, b]`.
pub fn aggregate(errs: &[FieldError]) -> String {
    match errs {
        [] => String::new(),
        [one] => one.to_string(),
        many => {
            let parts: Vec<String> = many.iter().map(|e| e.to_string()).collect();
            format!("[{}]", parts.join(", "))
        }
    }
}

/// A value as it appears in an error message: strings quoted Go-style, numbers bare.
pub trait BadValue {
    fn format(&self) -> String;
}

impl BadValue for &str {
    fn format(&self) -> String {
        go_quote(self)
    }
}

impl BadValue for String {
    fn format(&self) -> String {
        go_quote(self)
    }
}

impl BadValue for &String {
    fn format(&self) -> String {
        go_quote(self)
    }
}

macro_rules! bad_value_display {
    ($($t:ty),*) => {$(
        impl BadValue for $t {
            fn format(&self) -> String {
                self.to_string()
            }
        }
    )*};
}
bad_value_display!(i32, i64, u32, u64, usize, bool, f64);

impl BadValue for &serde_json::Value {
    fn format(&self) -> String {
        match self {
            serde_json::Value::String(s) => go_quote(s),
            serde_json::Value::Null => "null".to_string(),
            other => other.to_string(),
        }
    }
}

/// Quote a string the way Go's `%q` does for the characters that matter in messages.
pub fn go_quote(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            '\r' => out.push_str("\\r"),
            '\x07' => out.push_str("\\a"),
            '\x08' => out.push_str("\\b"),
            '\x0c' => out.push_str("\\f"),
            '\x0b' => out.push_str("\\v"),
            c if (c as u32) < 0x20 || c as u32 == 0x7f => out.push_str(&format!("\\x{:02x}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_print_like_upstream() {
        let p = Path::new("spec").child("containers").index(0).child("ports").index(1).child("containerPort");
        assert_eq!(p.as_str(), "spec.containers[0].ports[1].containerPort");
        assert_eq!(Path::new("metadata").child("labels").key("app").as_str(), "metadata.labels[app]");
    }

    #[test]
    fn messages_match_upstream_format() {
        let p = Path::new("spec").child("containers").index(0).child("image");
        assert_eq!(FieldError::required(&p, "").to_string(), "spec.containers[0].image: Required value");
        let e = FieldError::invalid(&Path::new("metadata").child("name"), "Bad_Name", "a lowercase RFC 1123 subdomain");
        assert_eq!(e.body(), "Invalid value: \"Bad_Name\": a lowercase RFC 1123 subdomain");
        let e = FieldError::not_supported(&Path::new("spec").child("restartPolicy"), "Sometimes", &["Always", "Never"]);
        assert_eq!(
            e.to_string(),
            "spec.restartPolicy: Unsupported value: \"Sometimes\": supported values: \"Always\", \"Never\""
        );
        assert_eq!(
            aggregate(&[FieldError::required(&Path::new("a"), ""), FieldError::forbidden(&Path::new("b"), "no")]),
            "[a: Required value, b: Forbidden: no]"
        );
    }
}
