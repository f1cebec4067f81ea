//! The scheduling framework's shared vocabulary: plugin statuses, the per-cycle diagnosis of why
//! nodes were rejected, and the exact `FitError` message upstream puts into the `PodScheduled`
//! condition and the `FailedScheduling` event.

use std::collections::{BTreeMap, BTreeSet};

/// Upstream `NoNodeAvailableMsg`.
const NO_NODE_AVAILABLE: &str = "0/{} nodes are available";

/// Why a plugin rejected a node.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Code {
    /// Might fit after other pods go away (preemption can help).
    Unschedulable,
    /// Will not fit whatever happens to other pods (preemption cannot help).
    UnschedulableAndUnresolvable,
}

/// A plugin's rejection of one node.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Status {
    pub(crate) code: Code,
    pub(crate) reasons: Vec<String>,
    /// The plugin that rejected (drives which cluster events re-queue the pod).
    pub(crate) plugin: &'static str,
}

impl Status {
    pub(crate) fn unschedulable(plugin: &'static str, reason: impl Into<String>) -> Status {
        Status { code: Code::Unschedulable, reasons: vec![reason.into()], plugin }
    }

    pub(crate) fn unresolvable(plugin: &'static str, reason: impl Into<String>) -> Status {
        Status { code: Code::UnschedulableAndUnresolvable, reasons: vec![reason.into()], plugin }
    }
}

/// Everything learned about a failed cycle.
#[derive(Clone, Debug, Default)]
pub(crate) struct Diagnosis {
    /// The first rejecting status of each node that was evaluated.
    pub(crate) node_to_status: BTreeMap<String, Status>,
    /// The reason for nodes missing from `node_to_status` (counted when formatting the message).
    pub(crate) absent_reason: Option<String>,
    /// Set when a pre-filter rejected the pod outright (then per-node reasons are not listed).
    pub(crate) pre_filter_msg: Option<String>,
    /// The post-filter (preemption) message, already prefixed with `preemption: `.
    pub(crate) post_filter_msg: Option<String>,
}

impl Diagnosis {
    /// The plugins that rejected at least one node.
    pub(crate) fn unschedulable_plugins(&self) -> BTreeSet<&'static str> {
        self.node_to_status.values().map(|s| s.plugin).collect()
    }
}

/// Upstream `FitError.Error()`: `0/N nodes are available: <count reason>, …. <post-filter msg>`,
/// reasons counted over nodes and sorted as strings (so "10 x" sorts before "2 y", as upstream).
pub(crate) fn fit_error_message(num_all_nodes: usize, diagnosis: &Diagnosis) -> String {
    let mut msg = format!("{}:", NO_NODE_AVAILABLE.replace("{}", &num_all_nodes.to_string()));
    if let Some(pre) = &diagnosis.pre_filter_msg {
        msg.push_str(&format!(" {pre}."));
    } else {
        let mut histogram = reason_histogram(diagnosis.node_to_status.values());
        let absent = num_all_nodes.saturating_sub(diagnosis.node_to_status.len());
        if let Some(reason) = diagnosis.absent_reason.as_ref().filter(|_| absent > 0) {
            histogram.push(format!("{absent} {reason}"));
            histogram.sort();
        }
        if !histogram.is_empty() {
            msg.push_str(&format!(" {}.", histogram.join(", ")));
        }
    }
    if let Some(post) = &diagnosis.post_filter_msg {
        // Messages that already end in a period (e.g. "…preemptionPolicy=Never.") get one.
        msg.push_str(&format!(" {}.", post.trim_end_matches('.')));
    }
    msg
}

/// `"<count> <reason>"` strings, sorted.
pub(crate) fn reason_histogram<'a>(statuses: impl Iterator<Item = &'a Status>) -> Vec<String> {
    let mut counts: BTreeMap<&str, usize> = BTreeMap::new();
    for s in statuses {
        for r in &s.reasons {
            *counts.entry(r.as_str()).or_default() += 1;
        }
    }
    let mut out: Vec<String> = counts.into_iter().map(|(r, n)| format!("{n} {r}")).collect();
    out.sort();
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fit_error_format() {
        let mut d = Diagnosis::default();
        d.node_to_status.insert(
            "cp".into(),
            Status::unresolvable(
                "TaintToleration",
                "node(s) had untolerated taint {node-role.kubernetes.io/control-plane: }",
            ),
        );
        for n in ["a", "b"] {
            d.node_to_status.insert(n.into(), Status::unschedulable("NodeResourcesFit", "Insufficient cpu"));
        }
        d.node_to_status.get_mut("b").unwrap().reasons.push("Insufficient memory".into());
        d.post_filter_msg = Some(
            "preemption: 0/3 nodes are available: 1 Preemption is not helpful for scheduling, 2 No preemption victims found for incoming pod".into(),
        );
        assert_eq!(
            fit_error_message(3, &d),
            "0/3 nodes are available: 1 Insufficient memory, 1 node(s) had untolerated taint \
             {node-role.kubernetes.io/control-plane: }, 2 Insufficient cpu. preemption: 0/3 nodes are available: \
             1 Preemption is not helpful for scheduling, 2 No preemption victims found for incoming pod."
        );
        assert_eq!(
            d.unschedulable_plugins().into_iter().collect::<Vec<_>>(),
            vec!["NodeResourcesFit", "TaintToleration"]
        );
        assert_eq!(fit_error_message(0, &Diagnosis::default()), "0/0 nodes are available:");
    }
}
