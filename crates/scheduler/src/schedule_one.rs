//! One scheduling cycle over a [`Snapshot`], with no I/O: pre-filter, filter the nodes (stopping
//! once upstream's adaptive number of feasible nodes is found), score, and pick the best node with
//! random tie-breaking; on failure, the diagnosis and the preemption dry run that make up the
//! `FitError` message. The async side ([`crate::scheduler`]) assumes, binds and reports.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock};

use rand::Rng;

use crate::cache::{NodeInfo, PodInfo, Snapshot};
use crate::framework::{Code, Diagnosis, Status, fit_error_message};
use crate::plugins::{
    balanced_allocation, image_locality, inter_pod_affinity, node_affinity, node_name, node_ports, node_resources_fit,
    node_unschedulable, pod_topology_spread, taint_toleration,
};

/// Upstream `minFeasibleNodesToFind`: below this many nodes, every node is checked.
const MIN_FEASIBLE_NODES_TO_FIND: usize = 100;
/// Upstream `minFeasibleNodesPercentageToFind`.
const MIN_FEASIBLE_NODES_PERCENTAGE: usize = 5;

/// The preemption plugin's name, in its statuses.
const PREEMPTION: &str = "DefaultPreemption";

/// From this many candidate nodes on, filtering may run on several threads.
const PARALLEL_FILTER_THRESHOLD: usize = 256;
/// Upstream's default `parallelism`.
const MAX_FILTER_THREADS: usize = 16;
/// Below this many CPUs, filtering stays on the scheduling thread: the API server and the
/// controllers share the machine, and on 2 CPUs handing 500 nodes to a second thread cost
/// more than it saved (82 µs a cycle on one thread, 94 µs on two, at 5,000 nodes).
const MIN_CPUS_FOR_PARALLEL_FILTER: usize = 4;

/// Threads to filter on: upstream parallelizes over 16 goroutines; we do on machines with
/// enough CPUs to spare. Asked once: the answer reads cgroup files, and rayon's pool is only
/// started where it will be used.
fn filter_threads() -> usize {
    static THREADS: OnceLock<usize> = OnceLock::new();
    *THREADS.get_or_init(|| {
        let cpus = std::thread::available_parallelism().map_or(1, |n| n.get());
        if cpus >= MIN_CPUS_FOR_PARALLEL_FILTER { rayon::current_num_threads().min(MAX_FILTER_THREADS) } else { 1 }
    })
}

/// Message when the cluster has no nodes at all (upstream `ErrNoNodesAvailable`).
pub(crate) const NO_NODES_MESSAGE: &str = "no nodes available to schedule pods";

/// Upstream `numFeasibleNodesToFind`: how many feasible nodes are enough to stop filtering.
pub(crate) fn num_feasible_nodes_to_find(percentage: Option<u32>, num_all_nodes: usize) -> usize {
    if num_all_nodes < MIN_FEASIBLE_NODES_TO_FIND {
        return num_all_nodes;
    }
    let percentage = match percentage.map(|p| p as usize) {
        Some(p) if p > 0 => p.min(100),
        _ => (50usize.saturating_sub(num_all_nodes / 125)).max(MIN_FEASIBLE_NODES_PERCENTAGE),
    };
    (num_all_nodes * percentage / 100).max(MIN_FEASIBLE_NODES_TO_FIND)
}

/// Pre-filter results reused by every node's filter.
pub(crate) struct CycleState {
    spread: pod_topology_spread::FilterState,
    affinity: inter_pod_affinity::FilterState,
}

pub(crate) fn pre_filter(pod: &PodInfo, snapshot: &Snapshot) -> CycleState {
    CycleState {
        spread: pod_topology_spread::pre_filter(pod, snapshot),
        affinity: inter_pod_affinity::pre_filter(pod, snapshot),
    }
}

/// Runs the filters in upstream's default order; the first rejection wins.
pub(crate) fn run_filters(state: &CycleState, pod: &PodInfo, node: &NodeInfo, snapshot: &Snapshot) -> Option<Status> {
    node_unschedulable::filter(pod, node)
        .or_else(|| node_name::filter(pod, node))
        .or_else(|| taint_toleration::filter(pod, node))
        .or_else(|| node_affinity::filter(pod, node))
        .or_else(|| node_ports::filter(pod, node))
        .or_else(|| node_resources_fit::filter(pod, node))
        .or_else(|| pod_topology_spread::filter(&state.spread, pod, node))
        .or_else(|| inter_pod_affinity::filter(&state.affinity, pod, node, snapshot))
}

/// Upstream `RunFilterPluginsWithNominatedPods`: pods nominated to this node with at least our
/// priority count as if already there (so a preemptor keeps the room it freed); the node must
/// also pass without them, since affinity may depend on their absence.
pub(crate) fn run_filters_with_nominated(
    state: &CycleState,
    pod: &PodInfo,
    node: &NodeInfo,
    snapshot: &Snapshot,
) -> Option<Status> {
    // Nearly always none: no lookup (a hash of the node's name) per node then.
    if snapshot.nominated.is_empty() {
        return run_filters(state, pod, node, snapshot);
    }
    let nominated: Vec<_> = snapshot
        .nominated
        .get(&node.name)
        .into_iter()
        .flatten()
        .filter(|p| p.key != pod.key && p.priority >= pod.priority)
        .collect();
    if !nominated.is_empty() {
        let mut with = node.clone();
        for p in nominated {
            with.add_pod(p.clone());
        }
        if let Some(status) = run_filters(state, pod, &with, snapshot) {
            return Some(status);
        }
    }
    run_filters(state, pod, node, snapshot)
}

/// Upstream `DefaultNormalizeScore`: scale to 0..=100 by the maximum, optionally reversed.
fn default_normalize(scores: &mut [i64], reverse: bool) {
    let max = scores.iter().copied().max().unwrap_or(0);
    for s in scores.iter_mut() {
        if max == 0 {
            *s = if reverse { 100 } else { 0 };
        } else {
            let v = 100 * *s / max;
            *s = if reverse { 100 - v } else { v };
        }
    }
}

/// Total weighted score per feasible node (same order as `feasible`), using upstream's default
/// weights: TaintToleration 3, NodeAffinity 2, PodTopologySpread 2, InterPodAffinity 2,
/// NodeResourcesFit 1, NodeResourcesBalancedAllocation 1, ImageLocality 1.
pub(crate) fn score_nodes(pod: &PodInfo, feasible: &[&NodeInfo], snapshot: &Snapshot) -> Vec<i64> {
    let mut taints: Vec<i64> = feasible.iter().map(|n| taint_toleration::score(pod, n)).collect();
    default_normalize(&mut taints, true);
    let mut affinity: Vec<i64> = feasible.iter().map(|n| node_affinity::score(pod, n)).collect();
    default_normalize(&mut affinity, false);
    let spread_state = pod_topology_spread::pre_score(pod, feasible, snapshot);
    let raw: Vec<Option<i64>> = feasible.iter().map(|n| pod_topology_spread::score(&spread_state, pod, n)).collect();
    let spread = pod_topology_spread::normalize(&spread_state, &raw);
    let ipa_state = inter_pod_affinity::pre_score(pod, snapshot);
    let mut ipa: Vec<i64> = feasible.iter().map(|n| inter_pod_affinity::score(&ipa_state, n)).collect();
    inter_pod_affinity::normalize(&mut ipa);
    let images = image_locality::pod_images(pod, snapshot);
    let images = (!images.scores_nothing()).then_some(images);
    feasible
        .iter()
        .enumerate()
        .map(|(i, n)| {
            3 * taints[i]
                + 2 * affinity[i]
                + 2 * spread[i]
                + 2 * ipa[i]
                + node_resources_fit::score(pod, n)
                + balanced_allocation::score(pod, n)
                + images.as_ref().map_or(0, |images| image_locality::score(images, n))
        })
        .collect()
}

/// Picks a highest-scoring node, uniformly among ties (reservoir sampling, as upstream).
pub(crate) fn select_host<T: Copy>(scored: &[(T, i64)], rng: &mut impl Rng) -> Option<T> {
    let mut best: Option<(T, i64)> = None;
    let mut ties = 0u32;
    for &(name, score) in scored {
        match best {
            Some((_, b)) if score < b => {}
            Some((_, b)) if score == b => {
                ties += 1;
                if rng.random_range(0..ties) == 0 {
                    best = Some((name, score));
                }
            }
            _ => {
                best = Some((name, score));
                ties = 1;
            }
        }
    }
    best.map(|(n, _)| n)
}

/// A successful cycle.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ScheduleResult {
    pub(crate) node: String,
    pub(crate) evaluated_nodes: usize,
    pub(crate) feasible_nodes: usize,
}

/// A failed cycle.
#[derive(Debug, Clone)]
pub(crate) enum ScheduleFailure {
    /// The cluster has no nodes.
    NoNodes,
    /// No node passed the filters.
    Unfit { num_all_nodes: usize, diagnosis: Diagnosis },
}

impl ScheduleFailure {
    pub(crate) fn message(&self) -> String {
        match self {
            ScheduleFailure::NoNodes => NO_NODES_MESSAGE.to_string(),
            ScheduleFailure::Unfit { num_all_nodes, diagnosis } => fit_error_message(*num_all_nodes, diagnosis),
        }
    }
}

/// Filters and scores `pod` over the snapshot. `next_start` rotates the node where filtering
/// starts, so that stopping early does not always favour the same nodes.
pub(crate) fn schedule_pod(
    pod: &PodInfo,
    snapshot: &Snapshot,
    percentage: Option<u32>,
    next_start: &mut usize,
    rng: &mut impl Rng,
) -> Result<ScheduleResult, ScheduleFailure> {
    let n = snapshot.nodes.len();
    if n == 0 {
        return Err(ScheduleFailure::NoNodes);
    }
    if plain(pod, snapshot) {
        return schedule_plain(pod, snapshot, percentage, next_start, rng);
    }
    let mut diagnosis = Diagnosis::default();
    let candidates: Vec<&NodeInfo> = match node_affinity::pre_filter(pod) {
        Err(status) => {
            diagnosis.pre_filter_msg = Some(status.reasons.join(", "));
            for node in &snapshot.nodes {
                diagnosis.node_to_status.insert(node.name.clone(), status.clone());
            }
            return Err(ScheduleFailure::Unfit { num_all_nodes: n, diagnosis });
        }
        Ok(None) => snapshot.nodes.iter().map(AsRef::as_ref).collect(),
        Ok(Some(names)) => {
            let skipped = Status::unresolvable(
                node_affinity::NAME,
                format!("node(s) didn't satisfy plugin(s) [{}]", node_affinity::NAME),
            );
            for node in snapshot.nodes.iter().filter(|n| !names.contains(&n.name)) {
                diagnosis.node_to_status.insert(node.name.clone(), skipped.clone());
            }
            snapshot.nodes.iter().filter(|n| names.contains(&n.name)).map(AsRef::as_ref).collect()
        }
    };
    let state = pre_filter(pod, snapshot);
    // A pod that preempted others tries its nominated node first.
    let nominated = pod.pod.status.as_ref().and_then(|s| s.nominated_node_name.as_deref());
    if let Some(node) = candidates.iter().find(|n| Some(n.name.as_str()) == nominated)
        && run_filters_with_nominated(&state, pod, node, snapshot).is_none()
    {
        return Ok(ScheduleResult { node: node.name.clone(), evaluated_nodes: 1, feasible_nodes: 1 });
    }
    let want = num_feasible_nodes_to_find(percentage, candidates.len());
    let mut feasible: Vec<&NodeInfo> = Vec::new();
    let results = filter_candidates(&state, pod, &candidates, *next_start, want, snapshot, filter_threads());
    let processed = results.len();
    for (i, result) in results.into_iter().enumerate() {
        let node = candidates[(*next_start + i) % candidates.len()];
        match result {
            None => feasible.push(node),
            Some(status) => {
                diagnosis.node_to_status.insert(node.name.clone(), status);
            }
        }
    }
    *next_start = (*next_start + processed) % n;
    if feasible.is_empty() {
        return Err(ScheduleFailure::Unfit { num_all_nodes: n, diagnosis });
    }
    let node = if feasible.len() == 1 {
        feasible[0].name.clone()
    } else {
        let scores = score_nodes(pod, &feasible, snapshot);
        let scored: Vec<(&str, i64)> = feasible.iter().map(|n| n.name.as_str()).zip(scores).collect();
        select_host(&scored, rng).unwrap_or(feasible[0].name.as_str()).to_string()
    };
    Ok(ScheduleResult { node, evaluated_nodes: processed, feasible_nodes: feasible.len() })
}

/// Whether only its resources, cordons and taints can keep `pod` off a node: no node
/// selection, host ports, extended resources, hard spreading or pod (anti-)affinity of its
/// own, no pod in the cluster with required anti-affinity, no nominations to honour. Such a
/// pod (most pods) is filtered from the snapshot's [`crate::cache::NodeFit`]s.
pub(crate) fn plain(pod: &PodInfo, snapshot: &Snapshot) -> bool {
    let spec = pod.pod.spec.as_ref();
    snapshot.has_fits()
        && snapshot.nominated.is_empty()
        && pod.host_ports.is_empty()
        && pod.requests.scalar.is_empty()
        && spec.and_then(|s| s.node_name.as_deref()).is_none_or(str::is_empty)
        && pod.pod.status.as_ref().and_then(|s| s.nominated_node_name.as_deref()).is_none_or(str::is_empty)
        && node_affinity::filter_passes_all(pod)
        && pod_topology_spread::filter_passes_all(pod)
        && inter_pod_affinity::filter_passes_all(pod, snapshot)
}

/// [`schedule_pod`] for a [`plain`] pod, with the same result. An open node (neither
/// cordoned nor tainted) that has room is feasible without running the filters; any other
/// node goes through them, for its status or because a toleration may let the pod in. When
/// every feasible node is open and no plugin but the resource ones can tell nodes apart,
/// the scores come from the fits too: the others would add the same amount to every node.
fn schedule_plain(
    pod: &PodInfo,
    snapshot: &Snapshot,
    percentage: Option<u32>,
    next_start: &mut usize,
    rng: &mut impl Rng,
) -> Result<ScheduleResult, ScheduleFailure> {
    let n = snapshot.nodes.len();
    let fits = snapshot.fits.as_slice();
    let state = pre_filter(pod, snapshot);
    let want = num_feasible_nodes_to_find(percentage, n);
    let mut diagnosis = Diagnosis::default();
    let mut feasible: Vec<usize> = Vec::with_capacity(want.min(n));
    let mut all_open = true;
    let mut processed = 0;
    while processed < n && feasible.len() < want {
        let i = (*next_start + processed) % n;
        processed += 1;
        let fit = &fits[i];
        if fit.open && node_resources_fit::fits(pod, fit) {
            feasible.push(i);
            continue;
        }
        let node = &snapshot.nodes[i];
        match run_filters(&state, pod, node, snapshot) {
            None => {
                all_open &= fit.open;
                feasible.push(i);
            }
            Some(status) => {
                diagnosis.node_to_status.insert(node.name.clone(), status);
            }
        }
    }
    *next_start = (*next_start + processed) % n;
    let name = |i: usize| snapshot.nodes[i].name.clone();
    let chosen = match feasible.as_slice() {
        [] => return Err(ScheduleFailure::Unfit { num_all_nodes: n, diagnosis }),
        [only] => *only,
        _ => {
            let images = image_locality::pod_images(pod, snapshot);
            let by_fits = all_open
                && node_affinity::scores_nothing(pod)
                && pod_topology_spread::scores_nothing(pod)
                && inter_pod_affinity::scores_nothing(pod, snapshot)
                && images.scores_nothing();
            let scored: Vec<(usize, i64)> = if by_fits {
                feasible
                    .iter()
                    .map(|&i| {
                        let fit = &fits[i];
                        (i, node_resources_fit::score_fit(pod, fit) + balanced_allocation::score_fit(pod, fit))
                    })
                    .collect()
            } else {
                let nodes: Vec<&NodeInfo> = feasible.iter().map(|&i| snapshot.nodes[i].as_ref()).collect();
                feasible.iter().copied().zip(score_nodes(pod, &nodes, snapshot)).collect()
            };
            select_host(&scored, rng).unwrap_or(feasible[0])
        }
    };
    Ok(ScheduleResult { node: name(chosen), evaluated_nodes: processed, feasible_nodes: feasible.len() })
}

/// Filters `candidates` starting at `start` (wrapping), stopping once `want` nodes passed.
/// Returns the filter result of each processed node, in processing order. Large clusters are
/// filtered on `threads` threads of rayon's pool when there are several; the result is the
/// same as filtering one node after another.
fn filter_candidates(
    state: &CycleState,
    pod: &PodInfo,
    candidates: &[&NodeInfo],
    start: usize,
    want: usize,
    snapshot: &Snapshot,
    threads: usize,
) -> Vec<Option<Status>> {
    let len = candidates.len();
    let eval = |i: usize| run_filters_with_nominated(state, pod, candidates[(start + i) % len], snapshot);
    if len < PARALLEL_FILTER_THRESHOLD || threads < 2 {
        // Nearly every node fits in the usual cluster: about `want` are evaluated.
        let mut results = Vec::with_capacity(want.min(len));
        let mut found = 0;
        for i in 0..len {
            let r = eval(i);
            found += usize::from(r.is_none());
            results.push(r);
            if found >= want {
                break;
            }
        }
        return results;
    }
    // Workers claim chunks in order, so every chunk below the highest claimed one is
    // evaluated: the evaluated set is a prefix, cut below at the `want`-th feasible node.
    let chunk = (len / (threads * 4)).clamp(16, 256);
    let next = AtomicUsize::new(0);
    let found = AtomicUsize::new(0);
    let done: Mutex<Vec<(usize, Vec<Option<Status>>)>> = Mutex::new(Vec::new());
    rayon::scope(|scope| {
        for _ in 0..threads {
            scope.spawn(|_| {
                let mut mine = Vec::new();
                while found.load(Ordering::Relaxed) < want {
                    let from = next.fetch_add(chunk, Ordering::Relaxed);
                    if from >= len {
                        break;
                    }
                    let part: Vec<Option<Status>> = (from..(from + chunk).min(len)).map(eval).collect();
                    found.fetch_add(part.iter().filter(|r| r.is_none()).count(), Ordering::Relaxed);
                    mine.push((from, part));
                }
                done.lock().unwrap_or_else(|e| e.into_inner()).extend(mine);
            });
        }
    });
    let mut done = done.into_inner().unwrap_or_else(|e| e.into_inner());
    done.sort_unstable_by_key(|(from, _)| *from);
    let mut results = Vec::with_capacity(want.min(len));
    let mut feasible = 0;
    for r in done.into_iter().flat_map(|(_, part)| part) {
        feasible += usize::from(r.is_none());
        results.push(r);
        if feasible >= want {
            break;
        }
    }
    results
}

/// A node where evicting lower-priority pods would let the pod fit.
#[derive(Debug, Clone)]
pub(crate) struct PreemptionCandidate {
    pub(crate) node: String,
    /// Pods to evict, highest priority first.
    pub(crate) victims: Vec<Arc<PodInfo>>,
}

/// What the preemption (post-filter) step concluded.
#[derive(Debug, Clone, Default)]
pub(crate) struct PostFilterResult {
    /// The `preemption: …` message for the FitError, when preemption cannot help.
    pub(crate) message: Option<String>,
    /// The chosen node and victims, when it can.
    pub(crate) candidate: Option<PreemptionCandidate>,
}

/// Upstream DefaultPreemption's dry run: on every node rejected only *resolvably*, remove all
/// lower-priority pods and re-run the filters; then keep back as many victims as still fit.
pub(crate) fn post_filter(pod: &PodInfo, snapshot: &Snapshot, diagnosis: &Diagnosis) -> PostFilterResult {
    let with_prefix = |msg: &str| PostFilterResult { message: Some(format!("preemption: {msg}")), candidate: None };
    let policy = pod.pod.spec.as_ref().and_then(|s| s.preemption_policy.as_deref());
    if policy == Some("Never") {
        return with_prefix("not eligible due to preemptionPolicy=Never.");
    }
    // While victims of an earlier preemption are still terminating on the nominated node, wait
    // for them instead of evicting more pods.
    let nominated = pod.pod.status.as_ref().and_then(|s| s.nominated_node_name.as_deref()).filter(|n| !n.is_empty());
    if let Some(nominated) = nominated {
        let resolvable = diagnosis.node_to_status.get(nominated).is_none_or(|s| s.code == Code::Unschedulable);
        let terminating = snapshot
            .nodes
            .iter()
            .find(|n| n.name == nominated)
            .is_some_and(|n| n.pods.iter().any(|p| p.terminating && p.priority < pod.priority));
        if resolvable && terminating {
            return with_prefix("not eligible due to a terminating pod on the nominated node.");
        }
    }
    let mut statuses: BTreeMap<String, Status> = BTreeMap::new();
    let mut candidates = Vec::new();
    for (i, node) in snapshot.nodes.iter().enumerate() {
        let helps = diagnosis.node_to_status.get(&node.name).is_some_and(|s| s.code == Code::Unschedulable);
        if !helps {
            continue;
        }
        match select_victims(pod, snapshot, i) {
            Ok(victims) => candidates.push(PreemptionCandidate { node: node.name.clone(), victims }),
            Err(status) => {
                statuses.insert(node.name.clone(), status);
            }
        }
    }
    if let Some(best) = pick_candidate(candidates) {
        return PostFilterResult { message: None, candidate: Some(best) };
    }
    let d = Diagnosis {
        node_to_status: statuses,
        // Nodes where preemption was not even tried.
        absent_reason: Some("Preemption is not helpful for scheduling".into()),
        ..Diagnosis::default()
    };
    let msg = fit_error_message(snapshot.nodes.len(), &d);
    with_prefix(msg.trim_end_matches('.'))
}

/// Victims on node `index`, or why preemption cannot help there.
fn select_victims(pod: &PodInfo, snapshot: &Snapshot, index: usize) -> Result<Vec<Arc<PodInfo>>, Status> {
    let node = &snapshot.nodes[index];
    let mut lower: Vec<Arc<PodInfo>> = node.pods.iter().filter(|p| p.priority < pod.priority).cloned().collect();
    if lower.is_empty() {
        return Err(Status::unresolvable(PREEMPTION, "No preemption victims found for incoming pod"));
    }
    let mut trial = snapshot.trial();
    for v in &lower {
        trial.change_node(index, |n| n.remove_pod(&v.key));
    }
    let fits = |trial: &Snapshot| {
        let state = pre_filter(pod, trial);
        run_filters(&state, pod, &trial.nodes[index], trial)
    };
    if let Some(status) = fits(&trial) {
        return Err(status);
    }
    // Reprieve as many victims as possible, most important first.
    lower.sort_by(|a, b| b.priority.cmp(&a.priority).then_with(|| a.key.cmp(&b.key)));
    let mut victims = Vec::new();
    for v in lower {
        trial.change_node(index, |n| n.add_pod(v.clone()));
        if fits(&trial).is_some() {
            trial.change_node(index, |n| n.remove_pod(&v.key));
            victims.push(v);
        }
    }
    Ok(victims)
}

/// Upstream `pickOneNodeForPreemption`, without PDBs: lowest highest-victim priority, then
/// lowest sum of victim priorities, then fewest victims, then the first.
fn pick_candidate(candidates: Vec<PreemptionCandidate>) -> Option<PreemptionCandidate> {
    let key = |c: &PreemptionCandidate| {
        let highest = c.victims.iter().map(|v| i64::from(v.priority)).max().unwrap_or(i64::MIN);
        // Upstream adds MaxInt32+1 to each priority so negative priorities sum sensibly.
        let sum: i64 = c.victims.iter().map(|v| i64::from(v.priority) + i64::from(i32::MAX) + 1).sum();
        (highest, sum, c.victims.len())
    };
    candidates.into_iter().enumerate().min_by_key(|(i, c)| (key(c), *i)).map(|(_, c)| c)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parallel_filtering_matches_one_thread() {
        use crate::plugins::tests::{node, pod};
        use serde_json::json;
        // Every third node is too small for the pod: the feasible ones are spread out.
        let nodes: Vec<NodeInfo> = (0..1000)
            .map(|i| node(&format!("n{i}"), if i % 3 == 0 { "100m" } else { "4" }, "8Gi", json!({})))
            .collect();
        let snapshot = Snapshot::new(nodes);
        let candidates: Vec<&NodeInfo> = snapshot.nodes.iter().map(AsRef::as_ref).collect();
        let p = pod("p", json!({"spec": {"containers": [{"name": "c", "resources": {"requests": {"cpu": "1"}}}]}}));
        let state = pre_filter(&p, &snapshot);
        for (start, want) in [(0, 100), (990, 100), (500, 420), (0, 1000), (7, 1)] {
            let one = filter_candidates(&state, &p, &candidates, start, want, &snapshot, 1);
            let many = filter_candidates(&state, &p, &candidates, start, want, &snapshot, 3);
            assert_eq!(one, many, "start {start}, want {want}");
            assert_eq!(one.iter().filter(|r| r.is_none()).count(), want.min(666));
        }
    }

    #[test]
    fn feasible_nodes_to_find() {
        assert_eq!(num_feasible_nodes_to_find(None, 0), 0);
        assert_eq!(num_feasible_nodes_to_find(None, 99), 99);
        // 50 - 1000/125 = 42% of 1000
        assert_eq!(num_feasible_nodes_to_find(None, 1000), 420);
        // 50 - 5000/125 = 10% of 5000
        assert_eq!(num_feasible_nodes_to_find(None, 5000), 500);
        // floor of 5%
        assert_eq!(num_feasible_nodes_to_find(None, 10000), 500);
        // never below 100
        assert_eq!(num_feasible_nodes_to_find(Some(1), 200), 100);
        assert_eq!(num_feasible_nodes_to_find(Some(100), 5000), 5000);
        assert_eq!(num_feasible_nodes_to_find(Some(0), 1000), 420);
    }

    #[test]
    fn select_host_breaks_ties_randomly() {
        let mut rng = rand::rng();
        let scored = [("a", 10), ("b", 30), ("c", 30), ("d", 5)];
        let mut seen = std::collections::BTreeSet::new();
        for _ in 0..200 {
            seen.insert(select_host(&scored, &mut rng).unwrap());
        }
        assert_eq!(seen.into_iter().collect::<Vec<_>>(), vec!["b", "c"]);
        assert_eq!(select_host::<&str>(&[], &mut rng), None);
    }
}

/// A measurement, not a test (so ignored): the cost of one cycle of SchedulingBasic's shape,
/// 5,000 nodes and 100m/500Mi pods, scheduler alone. Run with
/// `cargo test --release -p skiff-scheduler --lib cycle_time -- --ignored --nocapture`.
#[cfg(test)]
mod timing {
    use super::*;
    use crate::cache::Cache;
    use k8s_openapi::api::core::v1::{Node, Pod};
    use serde_json::json;

    #[test]
    #[ignore]
    fn cycle_time_5000_nodes() {
        let mut cache = Cache::default();
        for i in 0..5000 {
            let n: Node = serde_json::from_value(json!({
                "metadata": {"name": format!("sim-{i}"), "labels": {"kubernetes.io/hostname": format!("sim-{i}"), "type": "skiff-sim"}},
                "status": {"allocatable": {"cpu": "4", "memory": "32Gi", "pods": "110"}}
            })).unwrap();
            cache.set_node(Arc::new(n));
        }
        let pod = |i: usize| -> Pod {
            serde_json::from_value(json!({
                "metadata": {"name": format!("p-{i}"), "namespace": "sched-0", "uid": format!("u{i}")},
                "spec": {"containers": [{"name": "c", "image": "registry.k8s.io/pause:3.10",
                    "resources": {"requests": {"cpu": "100m", "memory": "500Mi"}}}]}
            }))
            .unwrap()
        };
        let mut next_start = 0;
        let mut rng = rand::rng();
        for i in 0..1000 {
            let p = pod(i);
            let info = PodInfo::new(Arc::new(p));
            let r = schedule_pod(&info, cache.snapshot(), None, &mut next_start, &mut rng).unwrap();
            cache.assume(info, &r.node);
        }
        let t = std::time::Instant::now();
        let (mut cycles, mut assumes) = (std::time::Duration::ZERO, std::time::Duration::ZERO);
        for i in 1000..6000 {
            let p = pod(i);
            let info = PodInfo::new(Arc::new(p));
            let t0 = std::time::Instant::now();
            let r = schedule_pod(&info, cache.snapshot(), None, &mut next_start, &mut rng).unwrap();
            let t1 = std::time::Instant::now();
            cache.assume(info, &r.node);
            cycles += t1 - t0;
            assumes += t1.elapsed();
        }
        let e = t.elapsed();
        eprintln!(
            "5000 cycles after 1000 pods: {e:?} ({:.0} pods/s); cycles {cycles:?}, assume {assumes:?}",
            5000.0 / e.as_secs_f64()
        );
    }
}
