//! `x-kubernetes-validations`: CEL rules compiled when a CRD is validated and evaluated against
//! custom resources (upstream's `schema/cel`), on the `cel` crate (cel-rust, MIT).
//!
//! What upstream's type checker does at CRD creation is approximated on the parsed AST: fields
//! selected from `self`/`oldSelf` must exist in the schema (`undefined field 'foo'`), unknown
//! variables are refused, and a static cost estimate bounds rules by the schema's `maxItems` /
//! `maxProperties` (unbounded collections are sized by the 3 MiB request limit), with
//! upstream's limits and messages (`estimated rule cost exceeds budget by factor of …`). The
//! estimate keeps evaluation bounded, as the interpreter has no runtime cost meter.
//!
//! Values reach CEL typed by their schema: `integer` as int, `number` as double,
//! int-or-string as either, objects with properties as maps whose keys are escaped like
//! upstream (`x-y` → `x__dash__y`), and the root's and embedded resources' `metadata` as only
//! `name` and `generateName`. Not supported (reported as runtime errors): Kubernetes' CEL
//! libraries beyond cel-rust's standard, strings, lists and math extensions, and `timestamp` /
//! `duration` values (date-time strings stay strings).

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, OnceLock};

use cel::common::ast::{Expr, IdedExpr};
use cel::{Context, Env, ExecutionError, Program};
use serde_json::Value;

use super::structural::{RuleSpec, Structural};
use crate::field::{ErrorList, ErrorType, FieldError, Path};

/// Upstream's `StaticEstimatedCostLimit`: the largest estimated cost of one rule.
pub(crate) const PER_EXPRESSION_COST_LIMIT: u64 = 10_000_000;
/// Upstream's `StaticEstimatedCRDCostLimit`: the largest estimated cost of all rules of a schema.
pub(crate) const PER_CRD_COST_LIMIT: u64 = 100_000_000;
/// cel-go's default `ExpressionSizeCodePointLimit`.
const MAX_EXPRESSION_CODE_POINTS: usize = 100_000;
/// The request size limit upstream sizes unbounded collections with.
const MAX_REQUEST_BYTES: u64 = 3 * 1024 * 1024;
/// Upstream's `MaxEvaluatedMessageExpressionSizeBytes`.
const MAX_MESSAGE_BYTES: usize = 5 * 1024;

/// The reasons a rule may declare.
pub(crate) const SUPPORTED_REASONS: [&str; 4] =
    ["FieldValueDuplicate", "FieldValueForbidden", "FieldValueInvalid", "FieldValueRequired"];

/// CEL identifiers that must be escaped as `__{name}__` when they name a property.
const RESERVED: [&str; 21] = [
    "true",
    "false",
    "null",
    "in",
    "as",
    "break",
    "const",
    "continue",
    "else",
    "for",
    "function",
    "if",
    "import",
    "let",
    "loop",
    "package",
    "namespace",
    "return",
    "var",
    "void",
    "while",
];

/// Global identifiers a rule may use besides its variables (type names and extension namespaces).
const GLOBALS: [&str; 17] = [
    "int",
    "uint",
    "double",
    "bool",
    "string",
    "bytes",
    "list",
    "map",
    "null_type",
    "type",
    "dyn",
    "optional",
    "math",
    "strings",
    "lists",
    "base64",
    "google",
];

/// The shared environment: CEL's standard library plus the strings, lists and math extensions.
fn env() -> &'static Arc<Env> {
    static ENV: OnceLock<Arc<Env>> = OnceLock::new();
    ENV.get_or_init(|| {
        let mut env = Env::stdlib();
        // Each extension registers distinct overloads, so these cannot conflict; an error here
        // would only drop that extension, never the standard library.
        let _ = env.add_extension(cel::extensions::strings);
        let _ = env.add_extension(cel::extensions::lists);
        let _ = env.add_extension(cel::extensions::math);
        Arc::new(env)
    })
}

/// A rule ready to run.
#[derive(Debug)]
pub(crate) struct CompiledRule {
    pub(crate) spec: RuleSpec,
    program: Program,
    message_expression: Option<Program>,
    pub(crate) uses_old_self: bool,
    /// `fieldPath`, parsed, relative to the node the rule is on.
    field_path: Vec<String>,
}

/// Why a rule (or its message expression) does not compile.
#[derive(Debug)]
pub(crate) struct CompileError {
    /// `Required` for an empty-after-trimming rule, `Invalid` otherwise.
    pub(crate) kind: ErrorType,
    pub(crate) detail: String,
}

/// The outcome of compiling one rule for CRD validation.
pub(crate) struct CompileResult {
    pub(crate) rule: Result<CompiledRule, CompileError>,
    /// The message expression's own error, reported at `messageExpression`.
    pub(crate) message_error: Option<String>,
    /// Estimated cost of the rule, before multiplying by the node's cardinality.
    pub(crate) cost: u64,
    pub(crate) message_cost: u64,
    pub(crate) uses_old_self: bool,
}

fn parse(source: &str) -> Result<Program, String> {
    let points = source.chars().count();
    if points > MAX_EXPRESSION_CODE_POINTS {
        return Err(format!(
            "expression code point size exceeds limit: size: {points}, limit {MAX_EXPRESSION_CODE_POINTS}"
        ));
    }
    env().compile(source).map_err(|e| e.to_string())
}

/// Compiles `spec` for a node with schema `s`.
pub(crate) fn compile(spec: &RuleSpec, s: &Structural) -> CompileResult {
    let mut out =
        CompileResult { rule: Err(placeholder()), message_error: None, cost: 0, message_cost: 0, uses_old_self: false };
    let program = match parse(spec.rule.trim()) {
        Ok(p) => p,
        Err(e) => {
            out.rule = Err(CompileError { kind: ErrorType::Invalid, detail: format!("compilation failed: {e}") });
            return out;
        }
    };
    let uses_old_self = program.references().has_variable("oldSelf");
    out.uses_old_self = uses_old_self;
    if let Err(e) = check(&program, s) {
        out.rule = Err(CompileError { kind: ErrorType::Invalid, detail: format!("compilation failed: {e}") });
        return out;
    }
    out.cost = estimate(program.expression(), s);
    let mut message_expression = None;
    if !spec.message_expression.trim().is_empty() {
        match parse(spec.message_expression.trim()).and_then(|p| check(&p, s).map(|_| p)) {
            Ok(p) => {
                if p.references().has_variable("oldSelf") && !uses_old_self {
                    out.message_error = Some(
                        "messageExpression compilation failed: ERROR: undeclared reference to 'oldSelf'".to_string(),
                    );
                } else {
                    out.message_cost = estimate(p.expression(), s);
                    message_expression = Some(p);
                }
            }
            Err(e) => out.message_error = Some(format!("messageExpression compilation failed: {e}")),
        }
    }
    let field_path = parse_field_path(&spec.field_path, s, true).map(|(segs, _)| segs).unwrap_or_default();
    out.rule = Ok(CompiledRule { spec: spec.clone(), program, message_expression, uses_old_self, field_path });
    out
}

fn placeholder() -> CompileError {
    CompileError { kind: ErrorType::Internal, detail: String::new() }
}

// ---------------------------------------------------------------------------------------------
// Static checks on the AST
// ---------------------------------------------------------------------------------------------

/// What an identifier in scope refers to.
#[derive(Clone, Copy)]
enum Bound<'a> {
    /// A value whose schema is known; `resource` marks the root or an embedded resource.
    Schema(&'a Structural, bool),
    /// A value of unknown shape (anything goes).
    Dyn,
}

fn check(program: &Program, s: &Structural) -> Result<(), String> {
    let mut scope: HashMap<String, Bound<'_>> = HashMap::new();
    scope.insert("self".into(), Bound::Schema(s, s.embedded_resource));
    scope.insert("oldSelf".into(), Bound::Schema(s, s.embedded_resource));
    check_expr(program.expression(), &scope, program).map(|_| ())
}

/// Checks an expression and returns what it evaluates to, as far as the schema tells.
fn check_expr<'a>(e: &IdedExpr, scope: &HashMap<String, Bound<'a>>, program: &Program) -> Result<Bound<'a>, String> {
    match &e.expr {
        Expr::Ident(name) => match scope.get(name) {
            Some(b) => Ok(*b),
            None if name.starts_with('@') || GLOBALS.contains(&name.as_str()) => Ok(Bound::Dyn),
            None => Err(located(program, e.id, &format!("undeclared reference to '{name}' (in container '')"))),
        },
        Expr::Select(sel) => {
            let operand = check_expr(&sel.operand, scope, program)?;
            match operand {
                Bound::Schema(s, resource) => match select_field(s, resource, &sel.field) {
                    Some(b) => Ok(b),
                    None => Err(located(program, e.id, &format!("undefined field '{}'", sel.field))),
                },
                Bound::Dyn => Ok(Bound::Dyn),
            }
        }
        Expr::Call(call) => {
            if let Some(t) = &call.target {
                check_expr(t, scope, program)?;
            }
            for a in &call.args {
                check_expr(a, scope, program)?;
            }
            // Indexing a list or map yields its element schema.
            if call.func_name == "_[_]"
                && let [target, _] = call.args.as_slice()
                && let Ok(Bound::Schema(s, _)) = check_expr(target, scope, program)
                && let Some(is) = s.items.as_deref().or(s.additional_properties.as_deref())
            {
                return Ok(Bound::Schema(is, is.embedded_resource));
            }
            Ok(Bound::Dyn)
        }
        Expr::Comprehension(c) => {
            let range = check_expr(&c.iter_range, scope, program)?;
            let mut inner = scope.clone();
            let element = match range {
                Bound::Schema(s, _) => match (s.items.as_deref(), s.type_.as_str()) {
                    (Some(is), _) => Bound::Schema(is, is.embedded_resource),
                    // Iterating a map yields its keys.
                    (None, "object") => Bound::Dyn,
                    _ => Bound::Dyn,
                },
                Bound::Dyn => Bound::Dyn,
            };
            inner.insert(c.iter_var.clone(), element);
            if let Some(v2) = &c.iter_var2 {
                inner.insert(v2.clone(), Bound::Dyn);
            }
            check_expr(&c.accu_init, &inner, program)?;
            inner.insert(c.accu_var.clone(), Bound::Dyn);
            check_expr(&c.loop_cond, &inner, program)?;
            check_expr(&c.loop_step, &inner, program)?;
            check_expr(&c.result, &inner, program)?;
            Ok(Bound::Dyn)
        }
        Expr::List(l) => {
            for el in &l.elements {
                check_expr(el, scope, program)?;
            }
            Ok(Bound::Dyn)
        }
        Expr::Map(m) => {
            for entry in &m.entries {
                if let cel::common::ast::EntryExpr::MapEntry(me) = &entry.expr {
                    check_expr(&me.key, scope, program)?;
                    check_expr(&me.value, scope, program)?;
                }
            }
            Ok(Bound::Dyn)
        }
        Expr::Struct(st) => {
            for entry in &st.entries {
                if let cel::common::ast::EntryExpr::StructField(f) = &entry.expr {
                    check_expr(&f.value, scope, program)?;
                }
            }
            Ok(Bound::Dyn)
        }
        Expr::Literal(_) | Expr::Unspecified => Ok(Bound::Dyn),
    }
}

/// The schema of `field` selected on a value of schema `s`; `None` when the schema says the
/// field cannot exist.
fn select_field<'a>(s: &'a Structural, resource: bool, field: &str) -> Option<Bound<'a>> {
    if resource {
        match field {
            "apiVersion" | "kind" => return Some(Bound::Dyn),
            "metadata" => return Some(Bound::Dyn),
            _ => {}
        }
    }
    if let Some((_, p)) = s.properties.iter().find(|(k, _)| escape(k).as_deref() == Some(field)) {
        return Some(Bound::Schema(p, p.embedded_resource));
    }
    if let Some(ap) = s.additional_properties.as_deref() {
        return Some(Bound::Schema(ap, ap.embedded_resource));
    }
    if s.additional_properties_any || s.preserve_unknown_fields || s.is_untyped() || s.type_ != "object" {
        // Scalars and free-form values: leave it to runtime.
        return Some(Bound::Dyn);
    }
    None
}

fn located(program: &Program, id: u64, msg: &str) -> String {
    let info = program.source_info();
    let src = &info.source;
    let Some((start, _)) = info.offset_for(id) else {
        return format!("ERROR: <input>:1:1: {msg}");
    };
    let start = start as usize;
    let before = src.get(..start.min(src.len())).unwrap_or_default();
    let line = before.matches('\n').count() + 1;
    let col = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
    let text = src.lines().nth(line - 1).unwrap_or_default();
    format!("ERROR: <input>:{line}:{col}: {msg}\n | {text}\n | {:.>col$}", "^")
}

/// Escapes a property name for CEL field selection; `None` for names that cannot be accessed.
pub(crate) fn escape(name: &str) -> Option<String> {
    if RESERVED.contains(&name) {
        return Some(format!("__{name}__"));
    }
    let b = name.as_bytes();
    let ok_first = |c: u8| c.is_ascii_alphabetic() || b"_.-/".contains(&c);
    let ok_rest = |c: u8| c.is_ascii_alphanumeric() || b"_.-/".contains(&c);
    if b.is_empty() || !ok_first(b[0]) || !b[1..].iter().all(|&c| ok_rest(c)) {
        return None;
    }
    let mut out = String::with_capacity(name.len());
    let mut i = 0;
    while i < name.len() {
        let rest = &name[i..];
        if rest.starts_with("__") {
            out.push_str("__underscores__");
            i += 2;
            continue;
        }
        match b[i] {
            b'.' => out.push_str("__dot__"),
            b'-' => out.push_str("__dash__"),
            b'/' => out.push_str("__slash__"),
            c => out.push(c as char),
        }
        i += 1;
    }
    Some(out)
}

// ---------------------------------------------------------------------------------------------
// Cost estimation
// ---------------------------------------------------------------------------------------------

/// The largest number of elements a collection of schema `s` can have.
pub(crate) fn max_cardinality(s: &Structural) -> u64 {
    let declared = match s.type_.as_str() {
        "array" => s.vv.max_items,
        "object" => s.vv.max_properties,
        "string" => s.vv.max_length,
        _ => None,
    };
    if let Some(n) = declared {
        return n.max(0) as u64;
    }
    // Unbounded: as many of the smallest elements as fit in a request (`0,` or `"",`).
    let min_element = match s.items.as_deref().map(|i| i.type_.as_str()) {
        Some("integer" | "number" | "boolean") => 2,
        _ => 3,
    };
    MAX_REQUEST_BYTES / min_element
}

fn estimate(e: &IdedExpr, s: &Structural) -> u64 {
    let mut scope: HashMap<String, &Structural> = HashMap::new();
    scope.insert("self".into(), s);
    scope.insert("oldSelf".into(), s);
    cost(e, &scope)
}

fn schema_of<'a>(e: &IdedExpr, scope: &HashMap<String, &'a Structural>) -> Option<&'a Structural> {
    match &e.expr {
        Expr::Ident(name) => scope.get(name).copied(),
        Expr::Select(sel) if !sel.test => {
            let parent = schema_of(&sel.operand, scope)?;
            parent
                .properties
                .iter()
                .find(|(k, _)| escape(k).as_deref() == Some(sel.field.as_str()))
                .map(|(_, p)| p)
                .or(parent.additional_properties.as_deref())
        }
        _ => None,
    }
}

fn cost(e: &IdedExpr, scope: &HashMap<String, &Structural>) -> u64 {
    match &e.expr {
        Expr::Literal(_) | Expr::Unspecified => 0,
        Expr::Ident(_) => 1,
        Expr::Select(sel) => 1u64.saturating_add(cost(&sel.operand, scope)),
        Expr::Call(call) => {
            let mut c = 1u64;
            if let Some(t) = &call.target {
                c = c.saturating_add(cost(t, scope));
            }
            for a in &call.args {
                c = c.saturating_add(cost(a, scope));
            }
            // String and list scans cost their length (tenths, as cel-go's string cost factor).
            let scans = ["matches", "contains", "startsWith", "endsWith", "find", "findAll", "split", "join"];
            if scans.contains(&call.func_name.as_str())
                && let Some(target) = call.target.as_deref().or(call.args.first())
                && let Some(ts) = schema_of(target, scope)
            {
                c = c.saturating_add(max_cardinality(ts) / 10);
            }
            c
        }
        Expr::Comprehension(comp) => {
            let range_schema = schema_of(&comp.iter_range, scope);
            let n = range_schema.map_or(MAX_REQUEST_BYTES / 2, max_cardinality);
            let mut inner = scope.clone();
            if let Some(is) = range_schema.and_then(|r| r.items.as_deref()) {
                inner.insert(comp.iter_var.clone(), is);
            } else {
                inner.remove(&comp.iter_var);
            }
            let per_iteration = cost(&comp.loop_cond, &inner).saturating_add(cost(&comp.loop_step, &inner));
            cost(&comp.iter_range, scope)
                .saturating_add(cost(&comp.accu_init, scope))
                .saturating_add(n.saturating_mul(per_iteration))
                .saturating_add(cost(&comp.result, &inner))
        }
        Expr::List(l) => l.elements.iter().fold(1u64, |acc, el| acc.saturating_add(cost(el, scope))),
        Expr::Map(m) => m.entries.iter().fold(1u64, |acc, entry| match &entry.expr {
            cel::common::ast::EntryExpr::MapEntry(me) => {
                acc.saturating_add(cost(&me.key, scope)).saturating_add(cost(&me.value, scope))
            }
            cel::common::ast::EntryExpr::StructField(f) => acc.saturating_add(cost(&f.value, scope)),
        }),
        Expr::Struct(st) => st.entries.iter().fold(1u64, |acc, entry| match &entry.expr {
            cel::common::ast::EntryExpr::StructField(f) => acc.saturating_add(cost(&f.value, scope)),
            cel::common::ast::EntryExpr::MapEntry(me) => acc.saturating_add(cost(&me.value, scope)),
        }),
    }
}

/// Upstream's `getCostErrorMessage`.
pub(crate) fn cost_error_message(what: &str, cost: u64, limit: u64) -> String {
    let factor = cost as f64 / limit as f64;
    let factor = if factor > 100.0 {
        "more than 100x".to_string()
    } else if factor < 1.5 {
        format!("{factor:.6}x")
    } else {
        format!("{factor:.1}x")
    };
    format!(
        "{what} exceeds budget by factor of {factor} (try simplifying the rule, or adding maxItems, maxProperties, \
         and maxLength where arrays, maps, and strings are declared)"
    )
}

// ---------------------------------------------------------------------------------------------
// Field paths (`fieldPath` of rules, `selectableFields`)
// ---------------------------------------------------------------------------------------------

/// Parses a field path like `.spec.foo` or `.labels['a.b']` against `s`; returns its segments
/// and the schema it points at, or why it is not valid.
pub(crate) fn parse_field_path<'a>(
    path: &str,
    s: &'a Structural,
    allow_brackets: bool,
) -> Result<(Vec<String>, &'a Structural), String> {
    let mut segs = Vec::new();
    let mut cur = s;
    let mut rest = path.trim();
    if rest.is_empty() {
        return Err("must not be empty".into());
    }
    while !rest.is_empty() {
        let (seg, next) = if let Some(r) = rest.strip_prefix('.') {
            let end = r.find(['.', '[']).unwrap_or(r.len());
            if end == 0 {
                return Err(format!("does not refer to a valid field: {path}"));
            }
            (r[..end].to_string(), &r[end..])
        } else if let Some(r) = rest.strip_prefix('[') {
            if !allow_brackets {
                return Err("array notation is not allowed".into());
            }
            let quote = r.chars().next().filter(|c| *c == '\'' || *c == '"').ok_or("expected quoted key")?;
            let inner = &r[1..];
            let close = inner.find(quote).ok_or("unterminated quoted key")?;
            let after = inner[close + 1..].strip_prefix(']').ok_or("expected ]")?;
            (inner[..close].to_string(), after)
        } else {
            return Err(format!("expected [ or . at {rest}"));
        };
        cur = match cur.properties.get(&seg).or(cur.additional_properties.as_deref()) {
            Some(next_schema) => next_schema,
            None => return Err(format!("does not refer to a valid field: {seg}")),
        };
        segs.push(seg);
        rest = next;
    }
    Ok((segs, cur))
}

// ---------------------------------------------------------------------------------------------
// Runtime
// ---------------------------------------------------------------------------------------------

/// The compiled rules of a schema, mirroring its shape where rules exist.
#[derive(Debug, Default)]
pub(crate) struct RuleTree {
    rules: Vec<CompiledRule>,
    properties: BTreeMap<String, RuleTree>,
    additional: Option<Box<RuleTree>>,
    items: Option<Box<RuleTree>>,
}

impl RuleTree {
    /// Compiles every rule of `s`; rules that do not compile are left out (the CRD validation
    /// refuses them, so this only happens for CRDs stored by a laxer server).
    pub(crate) fn build(s: &Structural) -> Option<RuleTree> {
        let rules: Vec<CompiledRule> = s.rules.iter().filter_map(|r| compile(r, s).rule.ok()).collect();
        let properties: BTreeMap<String, RuleTree> =
            s.properties.iter().filter_map(|(k, p)| Some((k.clone(), RuleTree::build(p)?))).collect();
        let additional = s.additional_properties.as_deref().and_then(RuleTree::build).map(Box::new);
        let items = s.items.as_deref().and_then(RuleTree::build).map(Box::new);
        if rules.is_empty() && properties.is_empty() && additional.is_none() && items.is_none() {
            return None;
        }
        Some(RuleTree { rules, properties, additional, items })
    }
}

/// Evaluates every rule in `tree` against `v` (and, on update, the correlated `old`).
#[cfg(test)]
pub(crate) fn validate(
    v: &Value,
    old: Option<&Value>,
    s: &Structural,
    tree: &RuleTree,
    path: &Path,
    errs: &mut ErrorList,
) {
    validate_with_warnings(v, old, s, tree, path, errs, &mut Vec::new());
}

/// [`validate`], also collecting warnings: a rule calling a function Skiff's CEL environment
/// lacks (one of Kubernetes' own libraries, `timestamp`, `duration`, …) is skipped with a
/// warning rather than failing every object.
pub(crate) fn validate_with_warnings(
    v: &Value,
    old: Option<&Value>,
    s: &Structural,
    tree: &RuleTree,
    path: &Path,
    errs: &mut ErrorList,
    warnings: &mut Vec<String>,
) {
    if !tree.rules.is_empty() {
        let unchanged = old.is_some_and(|o| o == v);
        let self_val = to_cel(v, Some(s), s.embedded_resource || path.as_str().is_empty());
        let old_val = old.map(|o| to_cel(o, Some(s), s.embedded_resource || path.as_str().is_empty()));
        for rule in &tree.rules {
            // Ratcheting: a rule that does not look at oldSelf is not re-run on an unchanged value.
            if unchanged && !rule.uses_old_self {
                continue;
            }
            if rule.uses_old_self && old_val.is_none() && rule.spec.optional_old_self != Some(true) {
                continue;
            }
            evaluate(rule, &self_val, old_val.as_ref(), s, path, errs, warnings);
        }
    }
    match v {
        Value::Object(map) => {
            let old_map = old.and_then(Value::as_object).filter(|_| super::values::correlatable_map(s));
            for (k, child) in map {
                let (cs, ct) = match (s.properties.get(k), tree.properties.get(k)) {
                    (Some(cs), Some(ct)) => (cs, ct),
                    (Some(_), None) => continue,
                    (None, _) => match (s.additional_properties.as_deref(), tree.additional.as_deref()) {
                        (Some(cs), Some(ct)) => (cs, ct),
                        _ => continue,
                    },
                };
                validate_with_warnings(child, old_map.and_then(|m| m.get(k)), cs, ct, &path.child(k), errs, warnings);
            }
        }
        Value::Array(items) => {
            if let (Some(is), Some(it)) = (s.items.as_deref(), tree.items.as_deref()) {
                for (i, item) in items.iter().enumerate() {
                    let old_item = match (old, s.list_type.as_deref()) {
                        (Some(o), Some("map")) => super::values::correlate_item(s, item, o),
                        _ => None,
                    };
                    validate_with_warnings(item, old_item, is, it, &path.index(i), errs, warnings);
                }
            }
        }
        _ => {}
    }
}

fn evaluate(
    rule: &CompiledRule,
    self_val: &cel::Value,
    old_val: Option<&cel::Value>,
    s: &Structural,
    path: &Path,
    errs: &mut ErrorList,
    warnings: &mut Vec<String>,
) {
    let mut ctx = Context::with_env(Arc::clone(env()));
    ctx.add_variable_from_value("self", self_val.clone());
    match old_val {
        Some(o) if rule.spec.optional_old_self == Some(true) => ctx.add_variable_from_value(
            "oldSelf",
            cel::Value::Opaque(Arc::new(cel::objects::OptionalValue::of(o.clone()))),
        ),
        Some(o) => ctx.add_variable_from_value("oldSelf", o.clone()),
        None => {
            ctx.add_variable_from_value("oldSelf", cel::Value::Opaque(Arc::new(cel::objects::OptionalValue::none())))
        }
    }
    let type_ = s.type_.as_str();
    match rule.program.execute(&ctx) {
        Ok(cel::Value::Bool(true)) => {}
        Ok(cel::Value::Bool(false)) => {
            let mut field = path.clone();
            for seg in &rule.field_path {
                field = field.child(seg);
            }
            let detail = rule
                .message_expression
                .as_ref()
                .and_then(|m| message_from_expression(m, &ctx))
                .unwrap_or_else(|| default_message(&rule.spec));
            errs.push(error_for_reason(&field, type_, detail, rule.spec.reason.as_deref()));
        }
        Ok(other) => errs.push(FieldError::invalid(
            path,
            type_,
            format!("rule result must be a bool, got {} evaluating rule: {}", other.type_of(), rule_string(&rule.spec)),
        )),
        Err(ExecutionError::NoSuchOverload(o)) => errs.push(FieldError::invalid(
            path,
            type_,
            format!(
                "'{o}': call arguments did not match a supported operator, function or macro signature for rule: {}",
                rule_string(&rule.spec)
            ),
        )),
        Err(ExecutionError::UndeclaredReference(name)) if !["self", "oldSelf"].contains(&name.as_str()) => {
            warnings.push(format!(
                "{}: x-kubernetes-validations rule {:?} was not evaluated: {name} is not supported by Skiff's CEL \
                 environment",
                if path.as_str().is_empty() { "<root>" } else { path.as_str() },
                rule.spec.rule.trim()
            ));
        }
        Err(e) => {
            errs.push(FieldError::invalid(path, type_, format!("{e} evaluating rule: {}", rule_string(&rule.spec))))
        }
    }
}

/// The message a `messageExpression` yields; `None` (use the default) when it fails or yields
/// an empty, multi-line or over-long string, as upstream.
fn message_from_expression(m: &Program, ctx: &Context<'_, '_>) -> Option<String> {
    match m.execute(ctx) {
        Ok(cel::Value::String(s)) => {
            let t = s.trim();
            (!t.is_empty() && t.len() <= MAX_MESSAGE_BYTES && !t.contains(['\n', '\r'])).then(|| t.to_string())
        }
        _ => None,
    }
}

fn default_message(spec: &RuleSpec) -> String {
    if spec.message.trim().is_empty() {
        format!("failed rule: {}", rule_string(spec))
    } else {
        spec.message.trim().to_string()
    }
}

fn rule_string(spec: &RuleSpec) -> String {
    if spec.message.trim().is_empty() { spec.rule.trim().to_string() } else { spec.message.trim().to_string() }
}

/// Upstream's `fieldErrorForReason`.
fn error_for_reason(field: &Path, type_: &str, detail: String, reason: Option<&str>) -> FieldError {
    match reason {
        Some("FieldValueForbidden") => FieldError::forbidden(field, detail),
        Some("FieldValueRequired") => FieldError::required(field, detail),
        Some("FieldValueDuplicate") => FieldError::duplicate(field, type_),
        _ => FieldError::invalid(field, type_, detail),
    }
}

/// Converts a JSON value to CEL, typed by its schema (`s` is `None` for free-form values).
pub(crate) fn to_cel(v: &Value, s: Option<&Structural>, resource: bool) -> cel::Value {
    match v {
        Value::Null => cel::Value::Null,
        Value::Bool(b) => cel::Value::Bool(*b),
        Value::String(text) => cel::Value::String(Arc::new(text.clone())),
        Value::Number(n) => {
            let want_float = s.is_some_and(|s| s.type_ == "number");
            let want_int = s.is_some_and(|s| s.type_ == "integer");
            match (n.as_i64(), n.as_f64()) {
                (Some(i), _) if !want_float => cel::Value::Int(i),
                (_, Some(f)) if want_int && f.fract() == 0.0 && f.abs() < 9.2e18 => cel::Value::Int(f as i64),
                (_, Some(f)) => cel::Value::Float(f),
                (Some(i), None) => cel::Value::Int(i),
                (None, None) => cel::Value::Null,
            }
        }
        Value::Array(items) => {
            let is = s.and_then(|s| s.items.as_deref());
            let embedded = is.is_some_and(|i| i.embedded_resource);
            cel::Value::List(Arc::new(items.iter().map(|i| to_cel(i, is, embedded)).collect()))
        }
        Value::Object(map) => {
            let mut out: HashMap<cel::objects::Key, cel::Value> = HashMap::with_capacity(map.len());
            let structured = s.is_some_and(|s| !s.properties.is_empty());
            for (k, child) in map {
                if resource && k == "metadata" {
                    out.insert(k.clone().into(), restricted_metadata(child));
                    continue;
                }
                let cs = s.and_then(|s| s.field(k));
                let key = match s.and_then(|s| s.properties.get(k)) {
                    Some(_) if structured => match escape(k) {
                        Some(e) => e,
                        None => continue,
                    },
                    _ => k.clone(),
                };
                out.insert(key.into(), to_cel(child, cs, cs.is_some_and(|c| c.embedded_resource)));
            }
            cel::Value::Map(out.into())
        }
    }
}

/// The part of `metadata` rules may see: `name` and `generateName`.
fn restricted_metadata(meta: &Value) -> cel::Value {
    let mut out: HashMap<cel::objects::Key, cel::Value> = HashMap::new();
    for k in ["name", "generateName"] {
        if let Some(Value::String(s)) = meta.get(k) {
            out.insert(k.to_string().into(), cel::Value::String(Arc::new(s.clone())));
        }
    }
    cel::Value::Map(out.into())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn node(schema: Value) -> Structural {
        Structural::from_value(&schema)
    }

    fn rule(r: &str) -> RuleSpec {
        RuleSpec { rule: r.into(), ..Default::default() }
    }

    #[test]
    fn escaping() {
        assert_eq!(escape("foo-bar").as_deref(), Some("foo__dash__bar"));
        assert_eq!(escape("a.b/c").as_deref(), Some("a__dot__b__slash__c"));
        assert_eq!(escape("x__y").as_deref(), Some("x__underscores__y"));
        assert_eq!(escape("namespace").as_deref(), Some("__namespace__"));
        assert_eq!(escape("1abc"), None);
        assert_eq!(escape("a b"), None);
    }

    #[test]
    fn compile_checks_fields_and_variables() {
        let s = node(json!({"type": "object", "properties": {"replicas": {"type": "integer"},
            "labels": {"type": "object", "additionalProperties": {"type": "string"}}}}));
        assert!(compile(&rule("self.replicas >= 0"), &s).rule.is_ok());
        assert!(compile(&rule("self.labels.anything == 'x'"), &s).rule.is_ok());
        let err = compile(&rule("self.replica >= 0"), &s).rule.unwrap_err();
        assert!(err.detail.starts_with("compilation failed: ERROR: <input>:1:"), "{}", err.detail);
        assert!(err.detail.contains("undefined field 'replica'"), "{}", err.detail);
        let err = compile(&rule("foo > 1"), &s).rule.unwrap_err();
        assert!(err.detail.contains("undeclared reference to 'foo'"), "{}", err.detail);
        let err = compile(&rule("self.replicas >"), &s).rule.unwrap_err();
        assert!(err.detail.starts_with("compilation failed: ERROR: <input>:1:"), "{}", err.detail);
        assert!(compile(&rule("self.labels.all(k, k.startsWith('a'))"), &s).rule.is_ok());
        assert!(compile(&rule("self.replicas == oldSelf.replicas"), &s).uses_old_self);
    }

    #[test]
    fn cost_grows_with_unbounded_nesting() {
        let s = node(json!({"type": "object", "properties": {
            "a": {"type": "array", "items": {"type": "string"}},
            "b": {"type": "array", "maxItems": 10, "items": {"type": "string", "maxLength": 10}}}}));
        let single = compile(&rule("self.a.all(x, x != '')"), &s).cost;
        assert!(single < PER_EXPRESSION_COST_LIMIT, "{single}");
        let nested = compile(&rule("self.a.all(x, self.a.all(y, x != y))"), &s).cost;
        assert!(nested > 100 * PER_EXPRESSION_COST_LIMIT, "{nested}");
        let bounded = compile(&rule("self.b.all(x, self.b.all(y, x != y))"), &s).cost;
        assert!(bounded < 1000, "{bounded}");
        assert_eq!(
            cost_error_message("estimated rule cost", nested, PER_EXPRESSION_COST_LIMIT),
            "estimated rule cost exceeds budget by factor of more than 100x (try simplifying the rule, or adding \
             maxItems, maxProperties, and maxLength where arrays, maps, and strings are declared)"
        );
    }

    #[test]
    fn evaluates_with_messages_and_reasons() {
        let s = node(json!({"type": "object", "properties": {
        "min": {"type": "integer"}, "max": {"type": "integer"}, "x-y": {"type": "string"},
        "ratio": {"type": "number"}},
        "x-kubernetes-validations": [
            {"rule": "self.min <= self.max"},
            {"rule": "self.x__dash__y != 'bad'", "message": "x-y must not be bad", "reason": "FieldValueForbidden",
             "fieldPath": ".x-y"},
            {"rule": "self.ratio < 1.0", "messageExpression": "'ratio is ' + string(self.ratio)"},
        ]}));
        let tree = RuleTree::build(&s).unwrap();
        let mut errs = ErrorList::new();
        let v = json!({"min": 5, "max": 1, "x-y": "bad", "ratio": 2});
        validate(&v, None, &s, &tree, &Path::new("spec"), &mut errs);
        let msgs: Vec<String> = errs.iter().map(ToString::to_string).collect();
        assert_eq!(
            msgs,
            [
                "spec: Invalid value: \"object\": failed rule: self.min <= self.max",
                "spec.x-y: Forbidden: x-y must not be bad",
                "spec: Invalid value: \"object\": ratio is 2",
            ]
        );
    }

    #[test]
    fn transition_rules_need_old_self() {
        let s = node(json!({"type": "object", "properties": {"replicas": {"type": "integer",
            "x-kubernetes-validations": [{"rule": "self >= oldSelf", "message": "cannot scale down"}]}}}));
        let tree = RuleTree::build(&s).unwrap();
        let mut errs = ErrorList::new();
        validate(&json!({"replicas": 1}), None, &s, &tree, &Path::new("spec"), &mut errs);
        assert!(errs.is_empty());
        validate(&json!({"replicas": 1}), Some(&json!({"replicas": 3})), &s, &tree, &Path::new("spec"), &mut errs);
        assert_eq!(errs[0].to_string(), "spec.replicas: Invalid value: \"integer\": cannot scale down");
    }

    #[test]
    fn runtime_errors_are_field_errors() {
        let s = node(json!({"type": "object", "properties": {"m": {"type": "object", "additionalProperties":
            {"type": "string"}}}, "x-kubernetes-validations": [{"rule": "self.m.missing == 'x'"}]}));
        let tree = RuleTree::build(&s).unwrap();
        let mut errs = ErrorList::new();
        validate(&json!({"m": {}}), None, &s, &tree, &Path::root(), &mut errs);
        assert_eq!(errs.len(), 1);
        assert!(errs[0].detail.ends_with("evaluating rule: self.m.missing == 'x'"), "{:?}", errs[0]);
    }

    #[test]
    fn unsupported_functions_warn() {
        let s = node(json!({"type": "object", "properties": {"ip": {"type": "string"}},
            "x-kubernetes-validations": [{"rule": "isIP(self.ip)"}]}));
        let tree = RuleTree::build(&s).unwrap();
        let (mut errs, mut warnings) = (ErrorList::new(), Vec::new());
        validate_with_warnings(&json!({"ip": "x"}), None, &s, &tree, &Path::new("spec"), &mut errs, &mut warnings);
        assert!(errs.is_empty(), "{errs:?}");
        assert_eq!(warnings.len(), 1);
        assert!(
            warnings[0].starts_with("spec: x-kubernetes-validations rule \"isIP(self.ip)\" was not evaluated"),
            "{warnings:?}"
        );
    }

    #[test]
    fn field_paths() {
        let s = node(json!({"type": "object", "properties": {"spec": {"type": "object", "properties": {
            "labels": {"type": "object", "additionalProperties": {"type": "string"}}, "n": {"type": "integer"}}}}}));
        let (segs, target) = parse_field_path(".spec.labels['a.b']", &s, true).unwrap();
        assert_eq!(segs, ["spec", "labels", "a.b"]);
        assert_eq!(target.type_, "string");
        assert!(parse_field_path(".spec.nope", &s, true).is_err());
        assert!(parse_field_path(".spec.labels['a']", &s, false).is_err());
        assert!(parse_field_path("spec", &s, true).is_err());
    }
}
