//! The kube-scheduler: watches pending pods and nodes through the API (kube-rs), picks a node for
//! each pod with upstream's default plugins, and binds it with `POST pods/{name}/binding`.
//!
//! Layout follows upstream: `queue` (active / backoff / unschedulable), `cache` (node infos with
//! assumed and nominated pods), `framework` (statuses, the FitError message), `plugins` (one file
//! per plugin), `schedule_one` (one cycle, no I/O: filter, score, preemption dry run) and
//! `scheduler` (the event loop, binding, preemption and reporting). In the request path (`docs/data-path.md`) it sits between the API server's pod
//! store and the kubelet, which starts pods once `spec.nodeName` is set.

mod cache;
mod framework;
mod labels;
mod owners;
mod plugins;
mod queue;
mod resources;
mod schedule_one;
mod scheduler;

use tokio_util::sync::CancellationToken;

/// Scheduler settings (upstream `KubeSchedulerConfiguration`, the parts we honour).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SchedulerConfig {
    /// Pods whose `spec.schedulerName` equals this are ours (`default-scheduler`); it is also the
    /// `reportingController` of our events.
    pub scheduler_name: String,
    /// Percentage of nodes to find feasible before scoring; `None` (or 0) uses upstream's
    /// adaptive default of `50 - nodes/125` percent, at least 5% and at least 100 nodes.
    pub percentage_of_nodes_to_score: Option<u32>,
}

impl Default for SchedulerConfig {
    fn default() -> Self {
        SchedulerConfig { scheduler_name: "default-scheduler".into(), percentage_of_nodes_to_score: None }
    }
}

/// Why the scheduler stopped.
#[derive(Debug, thiserror::Error)]
pub enum SchedulerError {
    /// A watch stream ended, which kube-rs watchers never do on their own.
    #[error("the {0} watch ended unexpectedly")]
    WatchEnded(&'static str),
}

/// The scheduler component; see the crate docs.
pub struct Scheduler {
    client: kube::Client,
    config: SchedulerConfig,
}

impl Scheduler {
    pub fn new(client: kube::Client, config: SchedulerConfig) -> Scheduler {
        Scheduler { client, config }
    }

    /// Runs until `shutdown` is cancelled. Watch errors are retried with backoff, so this only
    /// returns an error if a watch stream ends.
    pub async fn run(self, shutdown: CancellationToken) -> Result<(), SchedulerError> {
        scheduler::run(self.client, self.config, shutdown).await
    }
}
