//! The proxier: watch Services and EndpointSlices (kube-rs reflectors), and after every
//! change render and apply the whole desired state — upstream's informers →
//! `syncProxyRules`, without partial syncs.
//!
//! ```text
//!  watcher(Service) ──► reflector store ─┐            ┌─ nftables: render → nft -f -
//!  watcher(EndpointSlice) ► store ───────┼─ changed ─► sync ─┤
//!                                        │ (debounce)  └─ userspace: link + listeners
//! ```
//!
//! Syncs start once both initial lists are in (a sync from half a list would drop live
//! Services), are debounced (changes arriving within [`QUIET`] of each other are batched,
//! but no change waits longer than [`MAX_DELAY`]), retried with back-off after a failure,
//! and repeated every [`RESYNC`] so a table flushed by hand comes back. The data plane runs
//! on its own task — or, with [`ProxyConfig::netns`], on a thread inside that namespace —
//! and decides its mode on the first sync: nftables, or userspace when `nft` is missing.
//! On shutdown the rules stay (fail-static, like kube-proxy); [`crate::cleanup`] removes them.

use std::fmt::Debug;
use std::io;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use k8s_openapi::api::core::v1::{Namespace, Pod, Service};
use k8s_openapi::api::discovery::v1::EndpointSlice;
use k8s_openapi::api::networking::v1::NetworkPolicy;
use kube::api::Api;
use kube::runtime::reflector::{self, store::Writer};
use kube::runtime::{WatchStreamExt, watcher};
use kube::{Resource, ResourceExt as _};
use serde::de::DeserializeOwned;
use tokio::sync::{Notify, mpsc, oneshot, watch};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use crate::config::{ConfigError, NodeFacts, ProxyConfig};
use crate::conntrack::{Conntrack, stale_flows};
use crate::netpol::{Policies, resolve};
use crate::nftables::{Nft, NftError};
use crate::render::{CarriedAffinity, render_ports};
use crate::service_port::{ServicePort, service_ports};
use crate::userspace::link::{DummyLink, link_name};
use crate::userspace::{UDP_IDLE_TIMEOUT, Userspace};
use crate::{Error, host};

/// Changes closer together than this are applied together.
const QUIET: Duration = Duration::from_millis(10);
/// No change waits longer than this for its sync, however busy the watch is.
const MAX_DELAY: Duration = Duration::from_millis(100);
/// Full re-sync even without changes (upstream's `--iptables-sync-period` is 30 s).
const RESYNC: Duration = Duration::from_secs(60);
/// Back-off after failed syncs: doubles from the first to the last.
const RETRY_FIRST: Duration = Duration::from_millis(500);
const RETRY_MAX: Duration = Duration::from_secs(30);

/// How Services are served.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    /// Rules in `table inet <table>`, applied with `nft`.
    Nftables,
    /// Forwarded by the proxy's own sockets (no `nft` on this host).
    Userspace,
}

/// What the proxier has done so far; see [`Proxier::status`].
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Status {
    /// The data-plane mode, once the first sync decided it.
    pub mode: Option<Mode>,
    /// Successful syncs so far.
    pub syncs: u64,
    /// The last sync's error, if it failed.
    pub last_error: Option<String>,
}

/// The per-node service proxy.
pub struct Proxier {
    /// Reads Services and EndpointSlices (cluster-wide).
    client: kube::Client,
    /// Table, `nft` binary and namespace for the data plane.
    config: ProxyConfig,
    /// The validated config, shared with the data plane.
    facts: Arc<NodeFacts>,
    /// Progress for [`Proxier::status`] subscribers (tests, health checks).
    status: watch::Sender<Status>,
}

impl Proxier {
    /// A proxier for `config`, validated before anything is watched or changed.
    pub fn new(client: kube::Client, config: ProxyConfig) -> Result<Proxier, ConfigError> {
        let facts = Arc::new(config.node_facts()?);
        Ok(Proxier { client, config, facts, status: watch::Sender::new(Status::default()) })
    }

    /// Follow the proxier's progress (mode, syncs, last error).
    pub fn status(&self) -> watch::Receiver<Status> {
        self.status.subscribe()
    }

    /// Watch and sync until `shutdown`. Leaves the rules in place when it returns.
    pub async fn run(self, shutdown: CancellationToken) -> Result<(), Error> {
        let changed = Arc::new(Notify::new());
        let watches = shutdown.child_token();
        let (services, svc_writer) = reflector::store::<Service>();
        let (slices, eps_writer) = reflector::store::<EndpointSlice>();
        let (pods, pod_writer) = reflector::store::<Pod>();
        let (namespaces, ns_writer) = reflector::store::<Namespace>();
        let (netpols, netpol_writer) = reflector::store::<NetworkPolicy>();
        tokio::spawn(reflect(Api::all(self.client.clone()), svc_writer, changed.clone(), watches.clone()));
        tokio::spawn(reflect(Api::all(self.client.clone()), eps_writer, changed.clone(), watches.clone()));
        tokio::spawn(reflect(Api::all(self.client.clone()), pod_writer, changed.clone(), watches.clone()));
        tokio::spawn(reflect(Api::all(self.client.clone()), ns_writer, changed.clone(), watches.clone()));
        tokio::spawn(reflect(Api::all(self.client.clone()), netpol_writer, changed.clone(), watches.clone()));
        let _stop_watches = watches.drop_guard();

        let plane = DataPlane::start(&self.config, self.facts.clone()).await?;
        let synced = async {
            let _ = services.wait_until_ready().await;
            let _ = slices.wait_until_ready().await;
            let _ = pods.wait_until_ready().await;
            let _ = namespaces.wait_until_ready().await;
            let _ = netpols.wait_until_ready().await;
        };
        tokio::select! {
            _ = shutdown.cancelled() => {
                plane.stop().await;
                return Ok(());
            }
            _ = synced => {}
        }

        let mut retry: Option<Duration> = None;
        // What the last successful sync applied: a change that leaves it the same (a pod's
        // status, a Service's annotation) needs no sync; the periodic resync always runs.
        let mut applied: Option<Arc<Desired>> = None;
        let mut resync = true;
        loop {
            let node = &self.facts.node_name;
            let desired = Arc::new(Desired {
                ports: service_ports(&services.state(), &slices.state(), node),
                policies: resolve(&pods.state(), &namespaces.state(), &netpols.state(), node),
            });
            let unchanged = applied.as_ref().is_some_and(|a| **a == *desired);
            let result = if resync || !unchanged { Some(plane.sync(desired.clone()).await) } else { None };
            match result {
                None => {}
                Some(Ok(mode)) => {
                    retry = None;
                    applied = Some(desired);
                    self.status.send_modify(|s| {
                        s.mode = Some(mode);
                        s.syncs += 1;
                        s.last_error = None;
                    });
                }
                Some(Err(e)) => {
                    applied = None;
                    let next = retry.map_or(RETRY_FIRST, |d| (d * 2).min(RETRY_MAX));
                    tracing::warn!(error = %e, retry_in = ?next, "service proxy: sync failed");
                    retry = Some(next);
                    self.status.send_modify(|s| s.last_error = Some(e.to_string()));
                }
            }
            resync = tokio::select! {
                _ = shutdown.cancelled() => break,
                _ = changed.notified() => {
                    debounce(&changed).await;
                    false
                }
                _ = tokio::time::sleep(retry.unwrap_or(RESYNC)) => true,
            };
        }
        plane.stop().await;
        Ok(())
    }
}

/// Wait until changes pause for [`QUIET`], or [`MAX_DELAY`] after the first.
async fn debounce(changed: &Notify) {
    let deadline = Instant::now() + MAX_DELAY;
    loop {
        tokio::select! {
            _ = tokio::time::sleep_until(deadline) => return,
            _ = tokio::time::sleep(QUIET) => return,
            _ = changed.notified() => {}
        }
    }
}

/// Keep `writer`'s store current and signal every change after the initial list.
async fn reflect<K>(api: Api<K>, writer: Writer<K>, changed: Arc<Notify>, shutdown: CancellationToken)
where
    K: Resource<DynamicType = ()> + Clone + DeserializeOwned + Debug + Send + Sync + 'static,
{
    let stream = reflector::reflector(writer, watcher(api, watcher::Config::default()).default_backoff());
    let mut stream = std::pin::pin!(stream);
    loop {
        let event = tokio::select! {
            _ = shutdown.cancelled() => return,
            e = stream.next() => e,
        };
        match event {
            None => return,
            // The store only swaps in a relisted state at InitDone; syncing in between
            // would render the old state again.
            Some(Ok(watcher::Event::Init | watcher::Event::InitApply(_))) => {}
            Some(Ok(watcher::Event::Apply(o) | watcher::Event::Delete(o))) => {
                tracing::trace!(kind = %K::kind(&()), name = %o.name_any(), "service proxy: change");
                changed.notify_one();
            }
            Some(Ok(watcher::Event::InitDone)) => changed.notify_one(),
            Some(Err(e)) => tracing::debug!(kind = %K::kind(&()), error = %e, "service proxy: watch failed; retrying"),
        }
    }
}

/// Everything the data plane serves.
#[derive(Debug, PartialEq, Eq)]
struct Desired {
    ports: Vec<ServicePort>,
    policies: Policies,
}

/// A sync for the data plane, with where to send its outcome.
struct SyncRequest {
    /// The whole desired state.
    desired: Arc<Desired>,
    reply: oneshot::Sender<Result<Mode, Error>>,
}

/// The data plane's task or thread.
struct DataPlane {
    /// Closing it stops the data plane.
    requests: mpsc::Sender<SyncRequest>,
    /// Fires when the data plane has stopped (its sockets are closed).
    done: oneshot::Receiver<()>,
}

impl DataPlane {
    async fn start(config: &ProxyConfig, facts: Arc<NodeFacts>) -> Result<DataPlane, Error> {
        let (requests, rx) = mpsc::channel(1);
        let (done_tx, done) = oneshot::channel();
        let backend = Backend::new(config, facts);
        match &config.netns {
            None => {
                tokio::spawn(async move {
                    backend.serve(rx).await;
                    let _ = done_tx.send(());
                });
            }
            Some(path) => {
                let path = path.clone();
                let (ready_tx, ready) = oneshot::channel::<io::Result<()>>();
                std::thread::Builder::new()
                    .name("skiff-proxy".into())
                    .spawn(move || {
                        let rt = host::enter_netns(&path)
                            .and_then(|()| tokio::runtime::Builder::new_current_thread().enable_all().build());
                        let rt = match rt {
                            Ok(rt) => rt,
                            Err(e) => {
                                let _ = ready_tx.send(Err(e));
                                return;
                            }
                        };
                        let _ = ready_tx.send(Ok(()));
                        rt.block_on(backend.serve(rx));
                        // Dropping the runtime drops the forwarders' sockets.
                        drop(rt);
                        let _ = done_tx.send(());
                    })
                    .map_err(Error::Netns)?;
                ready
                    .await
                    .map_err(|_| Error::Netns(io::Error::other("data-plane thread died")))?
                    .map_err(Error::Netns)?;
            }
        }
        Ok(DataPlane { requests, done })
    }

    async fn sync(&self, desired: Arc<Desired>) -> Result<Mode, Error> {
        let (reply, rx) = oneshot::channel();
        let gone = || Error::Netns(io::Error::other("the data plane stopped"));
        self.requests.send(SyncRequest { desired, reply }).await.map_err(|_| gone())?;
        rx.await.map_err(|_| gone())?
    }

    async fn stop(self) {
        drop(self.requests);
        let _ = self.done.await;
    }
}

/// The data plane's state: undecided until a first sync succeeds, then one mode for good.
///
/// `Undecided` → `Nftables` when `nft` applies the table; `Undecided` → `Userspace` when
/// `nft` is missing or the kernel lacks nf_tables; other failures stay `Undecided` and the
/// next sync tries nftables again.
enum State {
    /// Nothing applied yet.
    Undecided,
    /// The table is ours; every sync replaces it.
    Nftables,
    /// Forwarders and their interface; every sync reconciles them.
    Userspace(Userspace<DummyLink>),
}

/// Runs on the data-plane task or thread; owns everything that touches the network.
struct Backend {
    /// `table inet <table>`, and the stem of the userspace interface's name.
    table: String,
    /// The configured binary, for the log line naming what is missing.
    nft_path: PathBuf,
    nft: Nft,
    facts: Arc<NodeFacts>,
    state: State,
    /// Userspace even if nftables would work.
    force_userspace: bool,
    /// The userspace mode has said that NetworkPolicies exist and are not enforced.
    warned_policies: bool,
    /// Deletes stale UDP flows after nftables syncs.
    conntrack: Conntrack,
    /// What the last nftables sync applied (stale flows are relative to it).
    applied: Option<Arc<Desired>>,
}

impl Backend {
    fn new(config: &ProxyConfig, facts: Arc<NodeFacts>) -> Backend {
        Backend {
            table: config.table.clone(),
            nft_path: config.nft.clone(),
            nft: Nft::new(&config.nft, &config.table),
            facts,
            state: State::Undecided,
            force_userspace: config.force_userspace,
            warned_policies: false,
            conntrack: Conntrack::new(config.conntrack.clone()),
            applied: None,
        }
    }

    async fn serve(mut self, mut rx: mpsc::Receiver<SyncRequest>) {
        host::enable_bridge_netfilter();
        while let Some(req) = rx.recv().await {
            let result = self.sync(req.desired).await;
            let _ = req.reply.send(result);
        }
    }

    async fn sync(&mut self, desired: Arc<Desired>) -> Result<Mode, Error> {
        let ports = &desired.ports;
        if let State::Undecided = self.state {
            if self.force_userspace {
                tracing::info!("service proxy: userspace mode (as configured)");
            } else {
                match self.sync_nftables(&desired).await {
                    Ok(()) => {
                        self.applied = Some(desired.clone());
                        tracing::info!("service proxy: nftables mode, table inet {}", self.table);
                        host::check_ip_forward();
                        // A userspace run before nft was installed left its interface behind.
                        let link = link_name(&self.table);
                        if let Err(e) = crate::userspace::link::remove(&link).await {
                            tracing::warn!(link, error = %e, "service proxy: could not remove the userspace-mode interface");
                        }
                        self.state = State::Nftables;
                        return Ok(Mode::Nftables);
                    }
                    Err(NftError::NotInstalled { .. }) => {
                        tracing::warn!("service proxy: userspace mode: nft not found ({})", self.nft_path.display());
                    }
                    Err(e) if e.nftables_unusable() => {
                        tracing::warn!(error = %e, "service proxy: userspace mode: nftables is not usable");
                    }
                    Err(e) => return Err(Error::Nft(e)),
                }
            }
            let link = DummyLink::new(link_name(&self.table));
            self.state = State::Userspace(Userspace::new(self.facts.clone(), link, UDP_IDLE_TIMEOUT));
        }
        match &mut self.state {
            State::Undecided => unreachable!("decided above"),
            State::Nftables => {
                self.sync_nftables(&desired).await.map_err(Error::Nft)?;
                if let Some(old) = self.applied.replace(desired.clone()) {
                    let stale = stale_flows(&old.ports, &desired.ports);
                    self.conntrack.delete(&stale).await;
                }
                Ok(Mode::Nftables)
            }
            State::Userspace(proxy) => {
                let policies = desired.policies.count;
                if policies > 0 && !self.warned_policies {
                    tracing::warn!(
                        policies,
                        "service proxy: NetworkPolicy is not enforced in userspace mode (install nftables)"
                    );
                }
                self.warned_policies = policies > 0;
                proxy.sync(ports).await.map(|()| Mode::Userspace).map_err(Error::Userspace)
            }
        }
    }

    async fn sync_nftables(&self, desired: &Desired) -> Result<(), NftError> {
        let ports = &desired.ports;
        let carried = if ports.iter().any(|p| p.affinity_timeout.is_some()) {
            self.nft.affinity().await.unwrap_or_else(|e| {
                tracing::warn!(error = %e, "service proxy: could not read ClientIP affinity; clients may move to another endpoint");
                CarriedAffinity::new()
            })
        } else {
            CarriedAffinity::new()
        };
        let rules = render_ports(&self.table, &self.facts, ports, &desired.policies, &carried);
        self.nft.apply(&rules).await
    }
}
