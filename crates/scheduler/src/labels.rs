//! Matching helpers shared by the plugins: label selectors (pod affinity, topology spread), node
//! selector terms (node affinity) and taint tolerations, with upstream's semantics.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{Node, NodeSelectorRequirement, NodeSelectorTerm, Taint, Toleration};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector;

/// A compiled `metav1.LabelSelector`. `None` in the source means "matches nothing"
/// (upstream `LabelSelectorAsSelector(nil)`), an empty selector matches everything.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Selector {
    Nothing,
    Requirements(Vec<Requirement>),
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Requirement {
    key: String,
    op: SelectorOp,
    values: Vec<String>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum SelectorOp {
    In,
    NotIn,
    Exists,
    DoesNotExist,
}

impl Selector {
    /// Compiles a selector; an unknown operator makes it match nothing (the API server rejects
    /// such objects, so this is only defensive).
    pub(crate) fn new(sel: Option<&LabelSelector>) -> Selector {
        let Some(sel) = sel else { return Selector::Nothing };
        let mut reqs = Vec::new();
        for (k, v) in sel.match_labels.iter().flatten() {
            reqs.push(Requirement { key: k.clone(), op: SelectorOp::In, values: vec![v.clone()] });
        }
        for e in sel.match_expressions.iter().flatten() {
            let op = match e.operator.as_str() {
                "In" => SelectorOp::In,
                "NotIn" => SelectorOp::NotIn,
                "Exists" => SelectorOp::Exists,
                "DoesNotExist" => SelectorOp::DoesNotExist,
                _ => return Selector::Nothing,
            };
            reqs.push(Requirement { key: e.key.clone(), op, values: e.values.clone().unwrap_or_default() });
        }
        Selector::Requirements(reqs)
    }

    /// Adds `key in (value)` requirements (used for `matchLabelKeys`).
    pub(crate) fn with_label(mut self, key: &str, value: &str) -> Selector {
        if let Selector::Requirements(reqs) = &mut self {
            reqs.push(Requirement { key: key.to_string(), op: SelectorOp::In, values: vec![value.to_string()] });
        }
        self
    }

    /// Adds a `key notin (value)` requirement (used for `mismatchLabelKeys`).
    pub(crate) fn without_label(mut self, key: &str, value: &str) -> Selector {
        if let Selector::Requirements(reqs) = &mut self {
            reqs.push(Requirement { key: key.to_string(), op: SelectorOp::NotIn, values: vec![value.to_string()] });
        }
        self
    }

    pub(crate) fn matches(&self, labels: &BTreeMap<String, String>) -> bool {
        match self {
            Selector::Nothing => false,
            Selector::Requirements(reqs) => reqs.iter().all(|r| {
                let v = labels.get(&r.key);
                match r.op {
                    SelectorOp::In => v.is_some_and(|v| r.values.contains(v)),
                    SelectorOp::NotIn => v.is_none_or(|v| !r.values.contains(v)),
                    SelectorOp::Exists => v.is_some(),
                    SelectorOp::DoesNotExist => v.is_none(),
                }
            }),
        }
    }
}

/// Whether a node selector term matches: all expressions and all fields must hold, and a term
/// with neither matches nothing (upstream `nodeaffinity.NewNodeSelector`).
pub(crate) fn node_selector_term_matches(term: &NodeSelectorTerm, node: &Node) -> bool {
    let exprs = term.match_expressions.as_deref().unwrap_or_default();
    let fields = term.match_fields.as_deref().unwrap_or_default();
    if exprs.is_empty() && fields.is_empty() {
        return false;
    }
    // Borrowed, not copied: this runs for every node a pod with node affinity is filtered
    // against (a copy of the labels per node was most of NodeAffinity's scheduling cost).
    let labels = node.metadata.labels.as_ref();
    if !exprs.iter().all(|r| node_requirement_matches(r, labels.and_then(|l| l.get(&r.key)).map(String::as_str))) {
        return false;
    }
    let name = node.metadata.name.as_deref().unwrap_or_default();
    fields.iter().all(|r| {
        // Only metadata.name is a supported field; validation rejects others.
        r.key == "metadata.name"
            && matches!(r.operator.as_str(), "In" | "NotIn")
            && node_requirement_matches(r, Some(name))
    })
}

fn node_requirement_matches(r: &NodeSelectorRequirement, value: Option<&str>) -> bool {
    let values = r.values.as_deref().unwrap_or_default();
    match r.operator.as_str() {
        "In" => value.is_some_and(|v| values.iter().any(|x| x == v)),
        "NotIn" => value.is_none_or(|v| !values.iter().any(|x| x == v)),
        "Exists" => value.is_some(),
        "DoesNotExist" => value.is_none(),
        "Gt" | "Lt" => {
            let (Some(v), [bound]) = (value, values) else { return false };
            let (Ok(v), Ok(bound)) = (v.parse::<i64>(), bound.parse::<i64>()) else { return false };
            if r.operator == "Gt" { v > bound } else { v < bound }
        }
        _ => false,
    }
}

/// Upstream `Toleration.ToleratesTaint`.
pub(crate) fn tolerates(t: &Toleration, taint: &Taint) -> bool {
    if let Some(effect) = t.effect.as_deref().filter(|e| !e.is_empty())
        && effect != taint.effect
    {
        return false;
    }
    if let Some(key) = t.key.as_deref().filter(|k| !k.is_empty())
        && key != taint.key
    {
        return false;
    }
    match t.operator.as_deref().unwrap_or("Equal") {
        "Equal" | "" => t.value.as_deref().unwrap_or("") == taint.value.as_deref().unwrap_or(""),
        "Exists" => true,
        _ => false,
    }
}

/// The first taint (in node order) with an effect from `effects` that no toleration tolerates.
pub(crate) fn first_untolerated<'a>(
    taints: &'a [Taint],
    tolerations: &[Toleration],
    effects: &[&str],
) -> Option<&'a Taint> {
    taints
        .iter()
        .filter(|t| effects.contains(&t.effect.as_str()))
        .find(|t| !tolerations.iter().any(|tol| tolerates(tol, t)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn labels(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
    }

    #[test]
    fn selectors() {
        let sel: LabelSelector = serde_json::from_value(json!({
            "matchLabels": {"app": "web"},
            "matchExpressions": [{"key": "tier", "operator": "NotIn", "values": ["db"]}]
        }))
        .unwrap();
        let s = Selector::new(Some(&sel));
        assert!(s.matches(&labels(&[("app", "web")])));
        assert!(s.matches(&labels(&[("app", "web"), ("tier", "fe")])));
        assert!(!s.matches(&labels(&[("app", "web"), ("tier", "db")])));
        assert!(!s.matches(&labels(&[("app", "api")])));
        assert!(!Selector::new(None).matches(&labels(&[])));
        assert!(Selector::new(Some(&LabelSelector::default())).matches(&labels(&[("x", "y")])));
        let bad: LabelSelector =
            serde_json::from_value(json!({"matchExpressions": [{"key": "a", "operator": "Bogus"}]})).unwrap();
        assert_eq!(Selector::new(Some(&bad)), Selector::Nothing);
    }

    #[test]
    fn node_selector_terms() {
        let node: Node = serde_json::from_value(json!({
            "metadata": {"name": "n1", "labels": {"zone": "a", "cores": "8"}}
        }))
        .unwrap();
        let term = |v: serde_json::Value| -> NodeSelectorTerm { serde_json::from_value(v).unwrap() };
        let e =
            |op: &str, vals: &[&str]| json!({"matchExpressions": [{"key": "cores", "operator": op, "values": vals}]});
        assert!(node_selector_term_matches(&term(e("Gt", &["4"])), &node));
        assert!(!node_selector_term_matches(&term(e("Gt", &["8"])), &node));
        assert!(node_selector_term_matches(&term(e("Lt", &["9"])), &node));
        assert!(!node_selector_term_matches(&term(e("Lt", &["x"])), &node));
        assert!(node_selector_term_matches(&term(e("In", &["8", "16"])), &node));
        assert!(!node_selector_term_matches(&term(e("NotIn", &["8"])), &node));
        assert!(node_selector_term_matches(&term(e("Exists", &[])), &node));
        assert!(!node_selector_term_matches(&term(e("DoesNotExist", &[])), &node));
        assert!(node_selector_term_matches(
            &term(json!({"matchExpressions": [{"key": "gpu", "operator": "DoesNotExist"}]})),
            &node
        ));
        assert!(node_selector_term_matches(
            &term(json!({"matchFields": [{"key": "metadata.name", "operator": "In", "values": ["n1"]}]})),
            &node
        ));
        assert!(!node_selector_term_matches(
            &term(json!({"matchFields": [{"key": "metadata.name", "operator": "NotIn", "values": ["n1"]}]})),
            &node
        ));
        assert!(!node_selector_term_matches(&term(json!({})), &node));
    }

    #[test]
    fn tolerations() {
        let taint: Taint = serde_json::from_value(json!({"key": "k", "value": "v", "effect": "NoSchedule"})).unwrap();
        let tol = |v: serde_json::Value| -> Toleration { serde_json::from_value(v).unwrap() };
        assert!(tolerates(&tol(json!({"key": "k", "value": "v"})), &taint));
        assert!(tolerates(&tol(json!({"key": "k", "operator": "Exists", "effect": "NoSchedule"})), &taint));
        assert!(tolerates(&tol(json!({"operator": "Exists"})), &taint));
        assert!(!tolerates(&tol(json!({"key": "k", "value": "w"})), &taint));
        assert!(!tolerates(&tol(json!({"key": "k", "operator": "Exists", "effect": "NoExecute"})), &taint));
        assert!(!tolerates(&tol(json!({"key": "other", "operator": "Exists"})), &taint));
    }
}
