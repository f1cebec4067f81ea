//! The pod half of a simulated kubelet: one watch over all scheduled pods, filtered to our
//! nodes, and for each of ours the status writes a kubelet would make — Running once "started",
//! exits driven by annotations (crate docs), termination and final deletion when the pod is
//! deleted.
//!
//! One task ([`Engine::run`]) owns all state: a small [`PodState`] per pod (no copy of the Pod),
//! one timer heap for all exits and retries, one de-duplicated queue of pods with pending writes.
//! Writes run as short tasks, at most [`MAX_POD_WRITES`] at once. A pod changed again while its
//! write is queued is written once, with its latest state (writes coalesce), so 150,000 pods cost
//! a few hundred bytes each and no task of their own.
//!
//! Pod lifecycle here ([`Phase`]), each transition followed by a status write:
//! - new pod bound to one of our nodes → `Running` (address allocated, containers running), or
//!   `Failed` with reason `OutOfpods` when the node already runs its pod capacity (the kubelet's
//!   admission; there may be no scheduler to prevent it), or `Pending` for good, with no write,
//!   when the pending annotation says its containers never start;
//! - exit timer fires → `Running` again with `restartCount + 1` if the restart policy restarts,
//!   else `Succeeded` (code 0) / `Failed` (address released);
//! - the conditions of its `readinessGates` change → `Ready` follows them;
//! - `deletionTimestamp` set → containers terminated (`Succeeded`) → status written → deleted
//!   with `gracePeriodSeconds: 0`;
//! - the watch reports the pod gone → state dropped.

mod exit;
mod status;

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap, HashSet, VecDeque};
use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use jiff::Timestamp;
use k8s_openapi::api::core::v1::{Pod, PodSpec};
use kube::Api;
use kube::api::{DeleteParams, Patch, Preconditions};
use kube::runtime::{WatchStreamExt, watcher};
use serde_json::Value;
use tokio::task::{Id as TaskId, JoinSet};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use crate::ipam::{self, Pool};
use crate::node::SimNode;
use crate::retry::{code, is_transient};
use exit::Exit;

/// Pod writes in flight at once.
const MAX_POD_WRITES: usize = 64;
/// How long a pod whose write failed waits before it is written again.
const RETRY_AFTER: Duration = Duration::from_secs(1);
/// Re-reads after a conflict before the write is retried later instead.
const CONFLICT_ATTEMPTS: usize = 3;

/// Where a simulated pod is in its life (the kubelet's pod phase). A pod is "started" the moment
/// we see it, unless its pending annotation holds it `Pending` for good.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Phase {
    /// Never started (the pending annotation): nothing written, no address, no pod slot.
    Pending,
    /// Containers running (after any number of restarts).
    Running,
    /// All containers exited 0 and will not restart. Terminal.
    Succeeded,
    /// A container exited non-zero and will not restart. Terminal.
    Failed,
}

impl Phase {
    fn as_str(self) -> &'static str {
        match self {
            Phase::Pending => "Pending",
            Phase::Running => "Running",
            Phase::Succeeded => "Succeeded",
            Phase::Failed => "Failed",
        }
    }
}

/// The pod's `restartPolicy`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
enum RestartPolicy {
    Always,
    OnFailure,
    Never,
}

impl RestartPolicy {
    /// Whether containers that exited with `code` are started again.
    fn restarts(self, code: i32) -> bool {
        match self {
            RestartPolicy::Always => true,
            RestartPolicy::OnFailure => code != 0,
            RestartPolicy::Never => false,
        }
    }
}

/// A container as far as its status needs it.
#[derive(Debug, PartialEq, Eq, Hash)]
struct Container {
    name: Box<str>,
    image: Box<str>,
    /// An init container with `restartPolicy: Always`: runs alongside the regular ones.
    sidecar: bool,
}

/// The containers of a pod. Pods of one template have equal shapes, and share one copy.
#[derive(Debug, PartialEq, Eq, Hash)]
struct Shape {
    init: Box<[Container]>,
    containers: Box<[Container]>,
    restart: RestartPolicy,
    /// `hostNetwork`: the pod's address is the node's.
    host_network: bool,
    /// Condition types of `readinessGates`: the pod is Ready only when they are all True.
    gates: Box<[Box<str>]>,
}

impl Shape {
    fn of(spec: &PodSpec) -> Shape {
        let c = |c: &k8s_openapi::api::core::v1::Container| Container {
            name: c.name.as_str().into(),
            image: c.image.as_deref().unwrap_or_default().into(),
            sidecar: c.restart_policy.as_deref() == Some("Always"),
        };
        Shape {
            init: spec.init_containers.iter().flatten().map(c).collect(),
            containers: spec.containers.iter().map(c).collect(),
            restart: match spec.restart_policy.as_deref() {
                Some("Never") => RestartPolicy::Never,
                Some("OnFailure") => RestartPolicy::OnFailure,
                _ => RestartPolicy::Always,
            },
            host_network: spec.host_network == Some(true),
            gates: spec.readiness_gates.iter().flatten().map(|g| g.condition_type.as_str().into()).collect(),
        }
    }
}

/// The previous run of the containers (`lastState.terminated`).
#[derive(Clone, Copy, Debug)]
struct LastRun {
    code: i32,
    started: Timestamp,
    finished: Timestamp,
}

/// Everything we keep about one pod of ours.
#[derive(Debug)]
struct PodState {
    uid: Box<str>,
    /// Index of its node.
    node: u32,
    /// Host number of its address in the node's range; `None` once released, and for
    /// host-network pods.
    ip: Option<u8>,
    shape: Arc<Shape>,
    /// From the annotations: when its containers exit.
    exit: Option<Exit>,
    phase: Phase,
    /// Exit code of the final run (terminal phases).
    exit_code: i32,
    /// `status.startTime`.
    started: Timestamp,
    /// `lastTransitionTime` of `PodScheduled` (the scheduler's, if it set one).
    scheduled: Timestamp,
    /// When the current run of the containers started.
    run_started: Timestamp,
    /// When the pod finished (terminal phases).
    finished: Timestamp,
    restarts: u32,
    last: Option<LastRun>,
    /// Why readiness gates hold the pod unready (upstream's message); `None` when they do not.
    gates: Option<Box<str>>,
    /// When `gates` last changed.
    gates_changed: Timestamp,
    /// Rejected by admission because the node was full: how many pods it ran then.
    rejected: Option<u16>,
    /// Id of the pending exit timer (0: none). Ids are unique across pods, so a stale timer
    /// of a deleted pod cannot end a new pod of the same name.
    timer: u64,
    /// `deletionTimestamp` seen: terminate, then delete.
    deleting: bool,
    /// The final delete was done (or the pod is gone anyway).
    deleted: bool,
    /// The status in the API is behind this state.
    dirty: bool,
    /// In the write queue.
    queued: bool,
    /// A write of this pod is in flight.
    in_flight: bool,
}

/// The two writes a pod gets.
enum Write {
    Status(Value),
    Delete,
}

/// How a write ended.
#[derive(Debug, PartialEq, Eq)]
enum Outcome {
    Done,
    /// The pod is gone or was replaced by another of the same name.
    Gone,
    /// Try again later.
    Retry,
    /// The server refused it for good (logged).
    Refused,
}

/// A finished write: which pod, which uid, what it was, how it went.
type Finished = (Box<str>, Box<str>, bool, Outcome);

/// Timers of the heap.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Timer {
    /// The containers' run with this timer id ends.
    Exit(u64),
    /// Write the pod again after a failed write.
    Retry,
}

/// What runs on one node.
#[derive(Clone, Debug, Default)]
struct Usage {
    /// Addresses of its running pods.
    pool: Pool,
    /// Its running pods (host-network ones have no address of their own).
    running: u32,
}

impl Usage {
    /// A running pod stopped.
    fn stop(&mut self, ip: Option<u8>) {
        self.running = self.running.saturating_sub(1);
        if let Some(h) = ip {
            self.pool.release(h);
        }
    }
}

/// The pod writes in flight.
#[derive(Default)]
struct Writes {
    tasks: JoinSet<Finished>,
    /// Which pod each task writes, to recover from a panicked write.
    keys: HashMap<TaskId, Box<str>>,
}

/// The pod engine: all pods of all simulated nodes.
pub(crate) struct Engine {
    client: kube::Client,
    nodes: Arc<[SimNode]>,
    /// Node name → index, to filter the watch.
    by_name: HashMap<String, u32>,
    /// Per node: running pods and their addresses.
    usage: Vec<Usage>,
    /// The nodes' pod capacity: more running pods are rejected, as the kubelet's admission does.
    max_pods: u32,
    /// Our pods by `namespace/name`.
    pods: HashMap<Box<str>, PodState>,
    /// Interned shapes; an entry whose only other holder left is removed.
    shapes: HashSet<Arc<Shape>>,
    /// Pods whose writes are due, each at most once.
    queue: VecDeque<Box<str>>,
    timers: BinaryHeap<Reverse<(Instant, Box<str>, Timer)>>,
    /// During a re-list: the pods listed so far (the others were deleted meanwhile).
    relisting: Option<HashSet<Box<str>>>,
    /// The last exit timer id handed out.
    last_timer: u64,
}

impl Engine {
    pub(crate) fn new(client: kube::Client, nodes: Arc<[SimNode]>, max_pods: u32) -> Engine {
        let by_name = nodes.iter().enumerate().map(|(i, n)| (n.name.clone(), i as u32)).collect();
        let usage = vec![Usage::default(); nodes.len()];
        Engine {
            client,
            nodes,
            by_name,
            usage,
            max_pods,
            pods: HashMap::new(),
            shapes: HashSet::new(),
            queue: VecDeque::new(),
            timers: BinaryHeap::new(),
            relisting: None,
            last_timer: 0,
        }
    }

    /// Drives our pods until `shutdown`.
    pub(crate) async fn run(mut self, shutdown: CancellationToken) {
        let api: Api<Pod> = Api::all(self.client.clone());
        // Unscheduled pods are never ours. Lists stay paginated (no `any_semantic`): with
        // 150,000 pods one unpaginated answer would be hundreds of megabytes.
        let config = watcher::Config::default().fields("spec.nodeName!=");
        let mut events = watcher(api, config).default_backoff().boxed();
        let mut in_flight = Writes::default();
        loop {
            self.dispatch(&mut in_flight);
            let next_timer = self.timers.peek().map(|Reverse((at, _, _))| *at);
            tokio::select! {
                _ = shutdown.cancelled() => return,
                ev = events.next() => match ev {
                    Some(Ok(ev)) => self.on_event(ev),
                    // The watcher backs off and re-lists by itself.
                    Some(Err(e)) => tracing::warn!(error = %e, "watching pods failed"),
                    None => return,
                },
                Some(done) = in_flight.tasks.join_next_with_id(), if !in_flight.tasks.is_empty() => match done {
                    Ok((id, done)) => {
                        in_flight.keys.remove(&id);
                        self.on_done(done);
                    }
                    Err(e) => {
                        // Only a panic gets here (the set is never aborted while we run): write
                        // that pod again later.
                        tracing::error!(error = %e, "a pod write panicked");
                        if let Some(key) = in_flight.keys.remove(&e.id()) {
                            if let Some(st) = self.pods.get_mut(&key) {
                                st.in_flight = false;
                                st.dirty = true;
                            }
                            self.timers.push(Reverse((Instant::now() + RETRY_AFTER, key, Timer::Retry)));
                        }
                    }
                },
                _ = tokio::time::sleep_until(next_timer.unwrap_or_else(Instant::now)), if next_timer.is_some() => {
                    self.fire_timers();
                }
            }
        }
    }

    fn on_event(&mut self, ev: watcher::Event<Pod>) {
        match ev {
            watcher::Event::Init => self.relisting = Some(HashSet::new()),
            watcher::Event::InitApply(pod) => {
                if let (Some(seen), Some(key)) = (&mut self.relisting, key_of(&pod)) {
                    seen.insert(key);
                }
                self.apply(&pod);
            }
            watcher::Event::InitDone => {
                if let Some(seen) = self.relisting.take() {
                    let gone: Vec<Box<str>> = self.pods.keys().filter(|k| !seen.contains(*k)).cloned().collect();
                    for key in gone {
                        self.remove(&key);
                    }
                }
            }
            watcher::Event::Apply(pod) => self.apply(&pod),
            watcher::Event::Delete(pod) => {
                if let Some(key) = key_of(&pod)
                    && self.pods.get(&key).is_some_and(|s| Some(&*s.uid) == pod.metadata.uid.as_deref())
                {
                    self.remove(&key);
                }
            }
        }
    }

    /// A pod was added or changed.
    fn apply(&mut self, pod: &Pod) {
        let Some(node) = pod.spec.as_ref().and_then(|s| s.node_name.as_deref()).and_then(|n| self.by_name.get(n))
        else {
            return;
        };
        let node = *node;
        let (Some(key), Some(uid)) = (key_of(pod), pod.metadata.uid.as_deref()) else { return };
        if self.pods.get(&key).is_some_and(|s| &*s.uid != uid) {
            // Deleted and created again under the same name while we were not watching.
            self.remove(&key);
        }
        let deleting = pod.metadata.deletion_timestamp.is_some();
        match self.pods.get_mut(&key) {
            None => {
                if !self.adopt(pod, key.clone(), uid, node) {
                    return;
                }
            }
            // Someone (a load-balancer controller, say) changed a readiness gate's condition.
            Some(st) if st.phase == Phase::Running && !st.shape.gates.is_empty() => {
                let gates = unready_gates(&st.shape, pod);
                if gates != st.gates {
                    st.gates = gates;
                    st.gates_changed = Timestamp::now();
                    st.dirty = true;
                    self.enqueue(&key);
                }
            }
            Some(_) => {}
        }
        if deleting {
            self.start_deleting(&key);
        }
    }

    /// Starts tracking a pod; false if it cannot run here (no address left).
    fn adopt(&mut self, pod: &Pod, key: Box<str>, uid: &str, node: u32) -> bool {
        let Some(spec) = pod.spec.as_ref() else { return false };
        let status = pod.status.clone().unwrap_or_default();
        let now = Timestamp::now();
        let scheduled = status
            .conditions
            .iter()
            .flatten()
            .find(|c| c.type_ == "PodScheduled")
            .and_then(|c| c.last_transition_time.as_ref())
            .map_or(now, |t| t.0);
        let shape = self.intern(Shape::of(spec));
        let mut state = PodState {
            uid: uid.into(),
            node,
            ip: None,
            shape,
            exit: None,
            phase: Phase::Running,
            exit_code: 0,
            started: now,
            scheduled,
            run_started: now,
            finished: now,
            restarts: 0,
            last: None,
            gates: None,
            gates_changed: now,
            rejected: None,
            timer: 0,
            deleting: false,
            deleted: false,
            dirty: true,
            queued: false,
            in_flight: false,
        };
        let phase = status.phase.as_deref().unwrap_or_default();
        if matches!(phase, "Succeeded" | "Failed") {
            // Finished before we saw it (a previous run): nothing to write, nothing to hold;
            // tracked only so its deletion is finished.
            state.phase = if phase == "Succeeded" { Phase::Succeeded } else { Phase::Failed };
            state.dirty = false;
            self.pods.insert(key, state);
            return true;
        }
        if phase != "Running" && exit::stays_pending(&key, pod.metadata.annotations.as_ref()) {
            // Tracked only so its deletion is finished.
            state.phase = Phase::Pending;
            state.dirty = false;
            self.pods.insert(key, state);
            return true;
        }
        let usage = &mut self.usage[node as usize];
        let range = self.nodes[node as usize].pod_range;
        let host_network = state.shape.host_network;
        // Running from a previous run of ours: keep its address, times and restarts.
        let kept = match status.pod_ip.as_deref() {
            _ if phase != "Running" => None,
            Some(ip) if host_network => (ip == self.nodes[node as usize].address.to_string()).then_some(None),
            Some(ip) => ipam::host_in_range(range, ip).filter(|h| usage.pool.reserve(*h)).map(Some),
            None => None,
        };
        if let Some(host) = kept {
            usage.running += 1;
            state.ip = host;
            state.dirty = false;
            state.started = status.start_time.as_ref().map_or(now, |t| t.0);
            state.gates_changed = state.started;
            let first = status.container_statuses.iter().flatten().next();
            state.restarts = first.map_or(0, |c| c.restart_count.max(0) as u32);
            state.run_started = first
                .and_then(|c| c.state.as_ref()?.running.as_ref()?.started_at.as_ref())
                .map_or(state.started, |t| t.0);
        } else if usage.running >= self.max_pods {
            // No scheduler kept the node within its capacity: the kubelet's admission rejects
            // the pod for good.
            state.phase = Phase::Failed;
            state.rejected = Some(u16::try_from(usage.running).unwrap_or(u16::MAX));
            tracing::info!(pod = %key, node = %self.nodes[node as usize].name, "pod rejected: node is full");
            self.pods.insert(key.clone(), state);
            self.enqueue(&key);
            return true;
        } else if host_network {
            // The node's own address, as for any pod in the host's network namespace.
            usage.running += 1;
        } else {
            let Some(host) = usage.pool.allocate() else {
                tracing::warn!(pod = %key, node = %self.nodes[node as usize].name, "no pod address left on the node; pod left pending");
                self.release_shape(state.shape);
                return false;
            };
            usage.running += 1;
            state.ip = Some(host);
        }
        state.gates = unready_gates(&state.shape, pod);
        state.exit = exit::from_annotations(&key, pod.metadata.annotations.as_ref());
        if let Some(exit) = state.exit {
            let ran = Duration::try_from(now - state.run_started).unwrap_or_default();
            state.timer = self.schedule_exit(&key, exit.after.saturating_sub(ran));
        }
        let dirty = state.dirty;
        self.pods.insert(key.clone(), state);
        if dirty {
            self.enqueue(&key);
        }
        true
    }

    /// The pod is being deleted: its containers stop (at once: nothing runs), the final status
    /// is written, then the pod is deleted for good.
    fn start_deleting(&mut self, key: &str) {
        let Some(st) = self.pods.get_mut(key) else { return };
        if st.deleting {
            return;
        }
        st.deleting = true;
        if st.phase == Phase::Running {
            // Containers stopped by SIGTERM exit cleanly here.
            Self::finish(&mut self.usage, st, 0, Timestamp::now());
        }
        self.enqueue(key);
    }

    /// Moves a running pod to its terminal phase.
    fn finish(usage: &mut [Usage], st: &mut PodState, code: i32, now: Timestamp) {
        st.phase = if code == 0 { Phase::Succeeded } else { Phase::Failed };
        st.exit_code = code;
        st.finished = now;
        st.timer = 0;
        st.dirty = true;
        // The sandbox is gone: its address may serve another pod. The status keeps showing it.
        usage[st.node as usize].stop(st.ip);
    }

    /// Forgets a pod that is gone.
    fn remove(&mut self, key: &str) {
        let Some(st) = self.pods.remove(key) else { return };
        if st.phase == Phase::Running {
            self.usage[st.node as usize].stop(st.ip);
        }
        self.release_shape(st.shape);
    }

    fn intern(&mut self, shape: Shape) -> Arc<Shape> {
        if let Some(s) = self.shapes.get(&shape) {
            return s.clone();
        }
        let s = Arc::new(shape);
        self.shapes.insert(s.clone());
        s
    }

    fn release_shape(&mut self, shape: Arc<Shape>) {
        // Ours plus the set's: nobody else uses it any more.
        if Arc::strong_count(&shape) == 2 {
            self.shapes.remove(&shape);
        }
    }

    fn enqueue(&mut self, key: &str) {
        if let Some(st) = self.pods.get_mut(key)
            && !st.queued
        {
            st.queued = true;
            self.queue.push_back(key.into());
        }
    }

    /// Schedules the end of a run of `key`'s containers; returns the timer's id.
    fn schedule_exit(&mut self, key: &str, after: Duration) -> u64 {
        self.last_timer += 1;
        self.timers.push(Reverse((Instant::now() + after, key.into(), Timer::Exit(self.last_timer))));
        self.last_timer
    }

    fn fire_timers(&mut self) {
        let now = Instant::now();
        while let Some(Reverse((at, _, _))) = self.timers.peek() {
            if *at > now {
                break;
            }
            let Some(Reverse((_, key, timer))) = self.timers.pop() else { break };
            match timer {
                Timer::Retry => self.enqueue(&key),
                Timer::Exit(id) => self.exit(&key, id),
            }
        }
    }

    /// The containers of `key` exit (if the timer is still current).
    fn exit(&mut self, key: &str, id: u64) {
        let Some(st) = self.pods.get_mut(key) else { return };
        let Some(exit) = st.exit else { return };
        if st.timer != id || st.phase != Phase::Running || st.deleting {
            return;
        }
        let now = Timestamp::now();
        if st.shape.restart.restarts(exit.code) {
            // Restarted at once: no crash-loop back-off in a simulation.
            st.last = Some(LastRun { code: exit.code, started: st.run_started, finished: now });
            st.restarts = st.restarts.saturating_add(1);
            st.run_started = now;
            st.dirty = true;
            let id = self.schedule_exit(key, exit.after);
            if let Some(st) = self.pods.get_mut(key) {
                st.timer = id;
            }
        } else {
            Self::finish(&mut self.usage, st, exit.code, now);
        }
        self.enqueue(key);
    }

    /// Starts queued writes up to the limit.
    fn dispatch(&mut self, in_flight: &mut Writes) {
        while in_flight.tasks.len() < MAX_POD_WRITES {
            let Some(key) = self.queue.pop_front() else { return };
            let Some(st) = self.pods.get_mut(&key) else { continue };
            st.queued = false;
            if st.in_flight {
                // on_done queues it again if it still has work.
                continue;
            }
            let write = if st.dirty {
                st.dirty = false;
                Write::Status(status::patch(st, &self.nodes[st.node as usize], self.max_pods))
            } else if st.deleting && !st.deleted {
                Write::Delete
            } else {
                continue;
            };
            st.in_flight = true;
            // A task per write, not per pod: the writes (and, with the in-process client, the
            // server's work for them) spread over the runtime's threads.
            let task = in_flight.tasks.spawn(write_pod(self.client.clone(), key.clone(), st.uid.clone(), write));
            in_flight.keys.insert(task.id(), key);
        }
    }

    fn on_done(&mut self, (key, uid, was_status, outcome): Finished) {
        let Some(st) = self.pods.get_mut(&key) else { return };
        if st.uid != uid {
            return;
        }
        st.in_flight = false;
        match outcome {
            Outcome::Done if !was_status => st.deleted = true,
            Outcome::Done => {}
            Outcome::Gone => {
                // The watch will report it gone.
                st.dirty = false;
                st.deleted = true;
            }
            // A refused status write is not repeated (it would be refused again), but a pod
            // being deleted is still deleted; a refused delete is left to its deleter.
            Outcome::Refused if was_status => st.dirty = false,
            Outcome::Refused => st.deleted = true,
            Outcome::Retry => {
                if was_status {
                    st.dirty = true;
                }
                self.timers.push(Reverse((Instant::now() + RETRY_AFTER, key, Timer::Retry)));
                return;
            }
        }
        if st.dirty || (st.deleting && !st.deleted) {
            self.enqueue(&key);
        }
    }
}

/// Upstream's message for readiness gates whose conditions are missing or not True, or `None`
/// when all are True.
fn unready_gates(shape: &Shape, pod: &Pod) -> Option<Box<str>> {
    let conditions = pod.status.as_ref().and_then(|s| s.conditions.as_deref()).unwrap_or_default();
    let unready: Vec<String> = shape
        .gates
        .iter()
        .filter_map(|gate| match conditions.iter().find(|c| c.type_ == **gate) {
            None => Some(format!("corresponding condition of pod readiness gate {gate:?} does not exist.")),
            Some(c) if c.status != "True" => {
                Some(format!("the status of pod readiness gate {gate:?} is not \"True\", but {}", c.status))
            }
            Some(_) => None,
        })
        .collect();
    (!unready.is_empty()).then(|| unready.join(", ").into())
}

/// `namespace/name` of a pod.
fn key_of(pod: &Pod) -> Option<Box<str>> {
    Some(format!("{}/{}", pod.metadata.namespace.as_deref()?, pod.metadata.name.as_deref()?).into())
}

/// Performs one write. A status write that conflicts re-reads the pod and applies again while
/// it is still the same pod, so no update is lost.
async fn write_pod(client: kube::Client, key: Box<str>, uid: Box<str>, write: Write) -> Finished {
    let (ns, name) = key.split_once('/').unwrap_or_default();
    let api: Api<Pod> = Api::namespaced(client, ns);
    let outcome = match &write {
        Write::Status(patch) => write_status(&api, ns, name, &uid, patch).await,
        Write::Delete => {
            let dp = DeleteParams {
                grace_period_seconds: Some(0),
                preconditions: Some(Preconditions { uid: Some(uid.to_string()), resource_version: None }),
                ..DeleteParams::default()
            };
            match api.delete(name, &dp).await {
                Ok(_) => Outcome::Done,
                // Gone already, or the name now belongs to another pod.
                Err(e) if matches!(code(&e), Some(404 | 409)) => Outcome::Gone,
                Err(e) => classify(&key, "deleting", e),
            }
        }
    };
    (key, uid, matches!(write, Write::Status(_)), outcome)
}

async fn write_status(api: &Api<Pod>, ns: &str, name: &str, uid: &str, patch: &Value) -> Outcome {
    let patch = Patch::Strategic(patch);
    let client = api.clone().into_client();
    for _ in 0..CONFLICT_ATTEMPTS {
        match crate::retry::patch_unread::<Pod, _>(&client, Some(ns), name, Some("status"), &patch).await {
            Ok(_) => return Outcome::Done,
            Err(e) if code(&e) == Some(404) => return Outcome::Gone,
            Err(e) if code(&e) == Some(409) => match api.get_opt(name).await {
                Ok(Some(p)) if p.metadata.uid.as_deref() == Some(uid) => continue,
                Ok(_) => return Outcome::Gone,
                Err(e) => return classify(name, "re-reading", e),
            },
            Err(e) => return classify(name, "writing the status of", e),
        }
    }
    Outcome::Retry
}

fn classify(pod: &str, what: &str, e: kube::Error) -> Outcome {
    if is_transient(&e) {
        tracing::debug!(pod, error = %e, "{what} pod failed; retrying");
        Outcome::Retry
    } else {
        tracing::warn!(pod, error = %e, "{what} pod refused");
        Outcome::Refused
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn per_pod_state_stays_small() {
        // 150,000 pods: every 100 bytes here is 15 MB.
        let size = std::mem::size_of::<PodState>();
        assert!(size <= 256, "PodState is {size} bytes");
        println!("PodState: {size} bytes");
    }

    use std::sync::Mutex;

    use serde_json::json;

    /// Answers requests from a script and records them.
    struct Fake {
        answers: Mutex<VecDeque<(u16, Value)>>,
        log: Mutex<Vec<String>>,
        bodies: Mutex<Vec<Value>>,
    }

    fn fake(answers: Vec<(u16, Value)>) -> (kube::Client, Arc<Fake>) {
        let fake = Arc::new(Fake {
            answers: Mutex::new(answers.into()),
            log: Mutex::new(Vec::new()),
            bodies: Mutex::new(Vec::new()),
        });
        let f = fake.clone();
        let svc = tower::service_fn(move |req: http::Request<kube::client::Body>| {
            let f = f.clone();
            async move {
                let ct = req.headers().get("content-type").and_then(|v| v.to_str().ok()).unwrap_or_default();
                let line = format!("{} {}", req.method(), req.uri().path());
                let line = if ct.contains("patch") { format!("{line} {ct}") } else { line };
                let body =
                    http_body_util::BodyExt::collect(req.into_body()).await.map(|b| b.to_bytes()).unwrap_or_default();
                f.log.lock().expect("log").push(line);
                f.bodies.lock().expect("bodies").push(serde_json::from_slice(&body).unwrap_or(Value::Null));
                let (code, body) = f.answers.lock().expect("answers").pop_front().unwrap_or((599, json!({})));
                let body = kube::client::Body::from(serde_json::to_vec(&body).unwrap_or_default());
                let resp = http::Response::builder().status(code).header("content-type", "application/json").body(body);
                Ok::<_, std::convert::Infallible>(resp.expect("response"))
            }
        });
        (kube::Client::new(svc, "default"), fake)
    }

    fn status(code: u16, reason: &str) -> (u16, Value) {
        (
            code,
            json!({"kind": "Status", "apiVersion": "v1", "status": "Failure", "message": reason, "reason": reason, "code": code}),
        )
    }

    fn pod(uid: &str) -> (u16, Value) {
        (200, json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p", "namespace": "ns", "uid": uid}}))
    }

    async fn status_write(answers: Vec<(u16, Value)>) -> (Outcome, Vec<String>) {
        let (client, fake) = fake(answers);
        let patch = json!({"metadata": {"uid": "u1"}, "status": {"phase": "Running"}});
        let (_, _, was_status, outcome) =
            write_pod(client, "ns/p".into(), "u1".into(), Write::Status(patch.clone())).await;
        assert!(was_status);
        let log = fake.log.lock().expect("log").clone();
        // Every attempt sends the whole patch again.
        for (line, body) in log.iter().zip(fake.bodies.lock().expect("bodies").iter()) {
            if line.starts_with("PATCH") {
                assert_eq!(body, &patch);
            }
        }
        (outcome, log)
    }

    const PATCH: &str = "PATCH /api/v1/namespaces/ns/pods/p/status application/strategic-merge-patch+json";
    const GET: &str = "GET /api/v1/namespaces/ns/pods/p";

    #[tokio::test]
    async fn a_conflict_re_reads_and_applies_again() {
        let (outcome, log) = status_write(vec![status(409, "Conflict"), pod("u1"), pod("u1")]).await;
        assert_eq!(outcome, Outcome::Done);
        assert_eq!(log, [PATCH, GET, PATCH]);
    }

    #[tokio::test]
    async fn a_conflict_with_a_new_pod_of_that_name_stops() {
        let (outcome, log) = status_write(vec![status(409, "Conflict"), pod("u2")]).await;
        assert_eq!(outcome, Outcome::Gone);
        assert_eq!(log, [PATCH, GET]);
        let (outcome, _) = status_write(vec![status(409, "Conflict"), status(404, "NotFound")]).await;
        assert_eq!(outcome, Outcome::Gone);
    }

    #[tokio::test]
    async fn endless_conflicts_are_retried_later() {
        let mut answers = Vec::new();
        for _ in 0..CONFLICT_ATTEMPTS {
            answers.push(status(409, "Conflict"));
            answers.push(pod("u1"));
        }
        let (outcome, log) = status_write(answers).await;
        assert_eq!(outcome, Outcome::Retry);
        assert_eq!(log.len(), 2 * CONFLICT_ATTEMPTS);
    }

    #[tokio::test]
    async fn other_errors_are_classified() {
        assert_eq!(status_write(vec![status(404, "NotFound")]).await.0, Outcome::Gone);
        assert_eq!(status_write(vec![status(500, "InternalError")]).await.0, Outcome::Retry);
        assert_eq!(status_write(vec![status(429, "TooManyRequests")]).await.0, Outcome::Retry);
        assert_eq!(status_write(vec![status(422, "Invalid")]).await.0, Outcome::Refused);
        assert_eq!(
            status_write(vec![status(409, "Conflict"), status(503, "ServiceUnavailable")]).await.0,
            Outcome::Retry
        );
    }

    #[tokio::test]
    async fn the_final_delete_is_unconditional_in_time_but_bound_to_the_uid() {
        let (client, fake) = fake(vec![pod("u1"), status(409, "Conflict"), status(404, "NotFound"), status(500, "x")]);
        for want in [Outcome::Done, Outcome::Gone, Outcome::Gone, Outcome::Retry] {
            let (_, _, was_status, outcome) =
                write_pod(client.clone(), "ns/p".into(), "u1".into(), Write::Delete).await;
            assert!(!was_status);
            assert_eq!(outcome, want);
        }
        let log = fake.log.lock().expect("log").clone();
        assert_eq!(log, ["DELETE /api/v1/namespaces/ns/pods/p"; 4]);
        let body = fake.bodies.lock().expect("bodies")[0].clone();
        assert_eq!(body["gracePeriodSeconds"], 0);
        assert_eq!(body["preconditions"], json!({"uid": "u1"}));
    }

    #[test]
    fn restart_policies() {
        assert!(RestartPolicy::Always.restarts(0));
        assert!(RestartPolicy::Always.restarts(2));
        assert!(!RestartPolicy::OnFailure.restarts(0));
        assert!(RestartPolicy::OnFailure.restarts(2));
        assert!(!RestartPolicy::Never.restarts(0));
        assert!(!RestartPolicy::Never.restarts(2));
    }
}
