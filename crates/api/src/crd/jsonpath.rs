//! The kubectl JSONPath subset printer columns use (client-go `util/jsonpath`, one expression
//! as in `{.status.conditions[?(@.type=="Ready")].status}`): fields (`.a`, `['a.b']`), `..`
//! recursive descent, `*`, indices and slices (`[0]`, `[-1]`, `[1:3]`), and filters with
//! `==`, `!=`, `<`, `<=`, `>`, `>=` or a bare existence test. Missing keys yield no result
//! (`AllowMissingKeys(true)`), never an error.

use serde_json::Value;

/// One step of a parsed path.
#[derive(Clone, Debug, PartialEq)]
enum Step {
    Field(String),
    /// Several bracketed keys (`['a','b']`).
    Fields(Vec<String>),
    Wildcard,
    Recursive,
    Index(i64),
    Slice(Option<i64>, Option<i64>, Option<i64>),
    Filter(Box<Filter>),
}

#[derive(Clone, Debug, PartialEq)]
struct Filter {
    /// The path after `@`.
    lhs: Vec<Step>,
    /// Operator and literal; `None` for an existence test.
    cmp: Option<(String, Literal)>,
}

#[derive(Clone, Debug, PartialEq)]
enum Literal {
    Str(String),
    Num(f64),
    Bool(bool),
    /// A path on the right side (`@.a == @.b`).
    Path(Vec<Step>),
}

/// A parsed JSONPath expression.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct JsonPath(Vec<Step>);

/// Nesting of filters and brackets beyond this is refused (it only guards the parser's stack).
const MAX_NESTING: usize = 32;

impl JsonPath {
    /// Parses `.spec.x`-style paths; the surrounding `{…}` is optional.
    pub(crate) fn parse(src: &str) -> Result<JsonPath, String> {
        let s = src.trim();
        let s = s.strip_prefix('{').and_then(|r| r.strip_suffix('}')).unwrap_or(s).trim();
        let s = s.strip_prefix('$').unwrap_or(s);
        let mut p = Parser { s: s.as_bytes(), src: s, pos: 0, depth: 0 };
        let steps = p.steps(false)?;
        if p.pos != p.s.len() {
            return Err(format!("unrecognized character in path at {}", p.pos));
        }
        Ok(JsonPath(steps))
    }

    /// Every value the path selects in `root`, in document order.
    pub(crate) fn find<'a>(&self, root: &'a Value) -> Vec<&'a Value> {
        eval(&self.0, vec![root])
    }
}

struct Parser<'a> {
    s: &'a [u8],
    src: &'a str,
    pos: usize,
    depth: usize,
}

impl Parser<'_> {
    fn peek(&self) -> Option<u8> {
        self.s.get(self.pos).copied()
    }

    /// Steps until the end, or (in a filter) until an operator or `)`.
    fn steps(&mut self, in_filter: bool) -> Result<Vec<Step>, String> {
        let mut out = Vec::new();
        while let Some(c) = self.peek() {
            match c {
                b'.' => {
                    self.pos += 1;
                    if self.peek() == Some(b'.') {
                        self.pos += 1;
                        out.push(Step::Recursive);
                    }
                    if self.peek() == Some(b'*') {
                        self.pos += 1;
                        out.push(Step::Wildcard);
                        continue;
                    }
                    let name = self.ident();
                    if !name.is_empty() {
                        out.push(Step::Field(name));
                    } else if !matches!(self.peek(), Some(b'[') | None) && !in_filter {
                        return Err(format!("invalid field at {}", self.pos));
                    }
                }
                b'[' => {
                    self.pos += 1;
                    self.depth += 1;
                    if self.depth > MAX_NESTING {
                        return Err("path nested too deeply".into());
                    }
                    out.push(self.bracket()?);
                    self.depth -= 1;
                }
                _ if in_filter => break,
                b' ' => break,
                _ => {
                    // A bare leading name (`spec.x`), as kubectl also accepts.
                    let name = self.ident();
                    if name.is_empty() {
                        return Err(format!("unrecognized character in path at {}", self.pos));
                    }
                    out.push(Step::Field(name));
                }
            }
        }
        Ok(out)
    }

    fn ident(&mut self) -> String {
        let start = self.pos;
        while let Some(c) = self.peek() {
            if c == b'.' || c == b'[' || c == b']' || c == b' ' || c == b')' || b"=!<>".contains(&c) {
                break;
            }
            self.pos += 1;
        }
        self.src[start..self.pos].to_string()
    }

    fn skip_ws(&mut self) {
        while self.peek() == Some(b' ') {
            self.pos += 1;
        }
    }

    fn bracket(&mut self) -> Result<Step, String> {
        self.skip_ws();
        let step = match self.peek() {
            Some(b'*') => {
                self.pos += 1;
                Step::Wildcard
            }
            Some(b'?') => {
                self.pos += 1;
                self.expect(b'(')?;
                self.skip_ws();
                self.expect(b'@')?;
                let lhs = self.steps(true)?;
                self.skip_ws();
                let cmp = if self.peek() == Some(b')') {
                    None
                } else {
                    let op = self.operator()?;
                    self.skip_ws();
                    let lit = self.literal()?;
                    Some((op, lit))
                };
                self.skip_ws();
                self.expect(b')')?;
                Step::Filter(Box::new(Filter { lhs, cmp }))
            }
            Some(b'\'' | b'"') => {
                let mut keys = vec![self.quoted()?];
                loop {
                    self.skip_ws();
                    if self.peek() != Some(b',') {
                        break;
                    }
                    self.pos += 1;
                    self.skip_ws();
                    keys.push(self.quoted()?);
                }
                if keys.len() == 1 { Step::Field(keys.remove(0)) } else { Step::Fields(keys) }
            }
            _ => {
                let start = self.pos;
                while self.peek().is_some_and(|c| c != b']') {
                    self.pos += 1;
                }
                let inner = self.src[start..self.pos].trim();
                if inner.contains(':') {
                    let parts: Vec<&str> = inner.split(':').collect();
                    if parts.len() > 3 {
                        return Err(format!("invalid slice {inner}"));
                    }
                    let num = |s: &str| -> Result<Option<i64>, String> {
                        let s = s.trim();
                        if s.is_empty() {
                            Ok(None)
                        } else {
                            s.parse().map(Some).map_err(|_| format!("invalid index {s}"))
                        }
                    };
                    Step::Slice(
                        num(parts[0])?,
                        num(parts.get(1).copied().unwrap_or(""))?,
                        num(parts.get(2).copied().unwrap_or(""))?,
                    )
                } else {
                    Step::Index(inner.parse().map_err(|_| format!("invalid array index {inner}"))?)
                }
            }
        };
        self.skip_ws();
        self.expect(b']')?;
        Ok(step)
    }

    fn expect(&mut self, c: u8) -> Result<(), String> {
        if self.peek() == Some(c) {
            self.pos += 1;
            Ok(())
        } else {
            Err(format!("expected {:?} at {}", c as char, self.pos))
        }
    }

    fn quoted(&mut self) -> Result<String, String> {
        let q = self.peek().ok_or("unterminated quote")?;
        self.pos += 1;
        let start = self.pos;
        while self.peek().is_some_and(|c| c != q) {
            self.pos += 1;
        }
        let text = self.src[start..self.pos].to_string();
        self.expect(q)?;
        Ok(text)
    }

    fn operator(&mut self) -> Result<String, String> {
        for op in ["==", "!=", "<=", ">=", "<", ">"] {
            if self.src[self.pos..].starts_with(op) {
                self.pos += op.len();
                return Ok(op.to_string());
            }
        }
        Err(format!("unrecognized filter operator at {}", self.pos))
    }

    fn literal(&mut self) -> Result<Literal, String> {
        match self.peek() {
            Some(b'\'' | b'"') => Ok(Literal::Str(self.quoted()?)),
            Some(b'@') => {
                self.pos += 1;
                Ok(Literal::Path(self.steps(true)?))
            }
            _ => {
                let start = self.pos;
                while self.peek().is_some_and(|c| c != b')' && c != b' ') {
                    self.pos += 1;
                }
                let text = &self.src[start..self.pos];
                match text {
                    "true" => Ok(Literal::Bool(true)),
                    "false" => Ok(Literal::Bool(false)),
                    _ => text.parse().map(Literal::Num).map_err(|_| format!("unrecognized literal {text}")),
                }
            }
        }
    }
}

fn eval<'a>(steps: &[Step], mut cur: Vec<&'a Value>) -> Vec<&'a Value> {
    for step in steps {
        let mut next = Vec::new();
        for v in cur {
            apply(step, v, &mut next);
        }
        cur = next;
        if cur.is_empty() {
            break;
        }
    }
    cur
}

fn apply<'a>(step: &Step, v: &'a Value, out: &mut Vec<&'a Value>) {
    match step {
        Step::Field(name) => {
            if let Some(x) = v.get(name.as_str()) {
                out.push(x);
            }
        }
        Step::Fields(names) => out.extend(names.iter().filter_map(|n| v.get(n.as_str()))),
        Step::Wildcard => match v {
            Value::Object(m) => out.extend(m.values()),
            Value::Array(a) => out.extend(a.iter()),
            _ => {}
        },
        Step::Recursive => descend(v, out),
        Step::Index(i) => {
            if let Value::Array(a) = v {
                let idx = if *i < 0 { a.len() as i64 + i } else { *i };
                if let Some(x) = usize::try_from(idx).ok().and_then(|i| a.get(i)) {
                    out.push(x);
                }
            }
        }
        Step::Slice(start, end, step) => {
            if let Value::Array(a) = v {
                let len = a.len() as i64;
                let norm = |x: i64| if x < 0 { (len + x).max(0) } else { x.min(len) };
                let s = start.map_or(0, norm);
                let e = end.map_or(len, norm);
                let st = step.unwrap_or(1).max(1) as usize;
                if s < e {
                    out.extend(a[s as usize..e as usize].iter().step_by(st));
                }
            }
        }
        Step::Filter(f) => {
            let items: Vec<&Value> = match v {
                Value::Array(a) => a.iter().collect(),
                Value::Object(m) => m.values().collect(),
                _ => Vec::new(),
            };
            out.extend(items.into_iter().filter(|item| filter_matches(f, item)));
        }
    }
}

fn descend<'a>(v: &'a Value, out: &mut Vec<&'a Value>) {
    out.push(v);
    match v {
        Value::Object(m) => m.values().for_each(|c| descend(c, out)),
        Value::Array(a) => a.iter().for_each(|c| descend(c, out)),
        _ => {}
    }
}

fn filter_matches(f: &Filter, item: &Value) -> bool {
    let lhs = eval(&f.lhs, vec![item]);
    let Some((op, lit)) = &f.cmp else {
        return !lhs.is_empty();
    };
    let rhs_values: Vec<Value> = match lit {
        Literal::Str(s) => vec![Value::String(s.clone())],
        Literal::Bool(b) => vec![Value::Bool(*b)],
        Literal::Num(n) => vec![serde_json::json!(n)],
        Literal::Path(p) => eval(p, vec![item]).into_iter().cloned().collect(),
    };
    lhs.iter().any(|l| rhs_values.iter().any(|r| compare(l, op, r)))
}

fn compare(l: &Value, op: &str, r: &Value) -> bool {
    if let (Some(a), Some(b)) = (l.as_f64().filter(|_| l.is_number()), r.as_f64().filter(|_| r.is_number())) {
        return match op {
            "==" => a == b,
            "!=" => a != b,
            "<" => a < b,
            "<=" => a <= b,
            ">" => a > b,
            ">=" => a >= b,
            _ => false,
        };
    }
    match op {
        "==" => l == r,
        "!=" => l != r,
        _ => match (l.as_str(), r.as_str()) {
            (Some(a), Some(b)) => match op {
                "<" => a < b,
                "<=" => a <= b,
                ">" => a > b,
                ">=" => a >= b,
                _ => false,
            },
            _ => false,
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn find(path: &str, v: &Value) -> Vec<Value> {
        JsonPath::parse(path).unwrap().find(v).into_iter().cloned().collect()
    }

    #[test]
    fn kubectl_paths() {
        let v = json!({
            "metadata": {"labels": {"app.kubernetes.io/name": "x"}},
            "spec": {"cronSpec": "* * * * */5", "list": [1, 2, 3]},
            "status": {"conditions": [{"type": "Synced", "status": "False"}, {"type": "Ready", "status": "True"}]},
        });
        assert_eq!(find(".spec.cronSpec", &v), [json!("* * * * */5")]);
        assert_eq!(find("{.spec.cronSpec}", &v), [json!("* * * * */5")]);
        assert_eq!(find(".status.conditions[?(@.type==\"Ready\")].status", &v), [json!("True")]);
        assert_eq!(find(".status.conditions[?(@.type != 'Ready')].type", &v), [json!("Synced")]);
        assert_eq!(find(".spec.list[0]", &v), [json!(1)]);
        assert_eq!(find(".spec.list[-1]", &v), [json!(3)]);
        assert_eq!(find(".spec.list[*]", &v), [json!(1), json!(2), json!(3)]);
        assert_eq!(find(".spec.list[0:2]", &v), [json!(1), json!(2)]);
        assert_eq!(find(".spec.list[?(@ > 1)]", &v), [json!(2), json!(3)]);
        assert_eq!(find(".metadata.labels['app.kubernetes.io/name']", &v), [json!("x")]);
        // The top-level status object and each condition's status.
        assert_eq!(find("..status", &v).len(), 3);
        assert!(find(".spec.missing.deeper", &v).is_empty());
        assert!(find(".spec.list[9]", &v).is_empty());
        assert!(JsonPath::parse(".spec[").is_err());
        assert!(JsonPath::parse(".a[?(@.b ~ 1)]").is_err());
    }
}
