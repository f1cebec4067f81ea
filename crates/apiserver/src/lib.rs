//! `skiff-apiserver`: the Kubernetes API server.
//!
//! A request goes (see `docs/data-path.md`): [`serve`] (TLS, HTTP/1.1 + HTTP/2) →
//! [`ApiServer::handle`] (authn → authz → routing) → `handlers` (decode, negotiate) →
//! `registry` (the generic REST store: metadata, strategy, admission, store CAS) →
//! the store → `watch_cache` (lists, gets and watches are served from memory).

mod admission;
mod allocator;
pub mod auth;
mod body;
mod bootstrap;
mod client;
mod conversion;
mod crds;
mod discovery;
mod eviction;
mod handlers;
mod maintenance;
mod metrics;
mod namespace_lifecycle;
mod openapi;
pub mod pki;
mod proxy;
mod registry;
mod request;
mod reviews;
mod serve;
mod shallow;
mod status;
mod table;
mod watch;
pub mod watch_cache;
#[cfg(test)]
mod write_bench;

use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr};
use std::sync::Arc;

use axum::body::Body;
use http::{Request, Response};
use skiff_api::{Resource, ResourceInfo};
use skiff_store::Store;
use tokio_util::sync::CancellationToken;

pub use allocator::Cidr;
pub use auth::{
    Authenticator, Authorizer, BOOTSTRAPPERS_GROUP, DefaultAuthorizer, MastersAuthorizer, PeerCertificate, UserInfo,
};
pub use metrics::Metrics;
pub use proxy::{KubeletClient, ProxyError};
pub use serve::{serve, tls_config};
pub use status::ApiError;

use watch_cache::WatchCache;

/// The Kubernetes version Skiff reports (its API types are Kubernetes 1.33's).
pub const KUBERNETES_VERSION: &str = "v1.33.0";

/// Configuration of the API server (validated by the caller before anything binds).
#[derive(Clone, Debug)]
pub struct Config {
    /// Where Services get their ClusterIPs; the first address goes to the `kubernetes` Service.
    pub service_cidr: Cidr,
    /// NodePorts are handed out from this inclusive range.
    pub node_port_range: (u16, u16),
    /// The address the `kubernetes` Service's endpoints point at.
    pub advertise_address: IpAddr,
    /// The port the `kubernetes` Service's endpoints point at.
    pub advertise_port: u16,
    /// Skiff's own version, reported next to the Kubernetes version.
    pub skiff_version: String,
    /// How often store history is compacted (upstream's `--etcd-compaction-interval`); zero
    /// disables compaction.
    pub compaction_interval: std::time::Duration,
    /// How long Events live after their last update (upstream's `--event-ttl`); zero keeps
    /// them forever.
    pub event_ttl: std::time::Duration,
    /// The cluster CA (PEM), served at `/cacerts` for joining agents; empty: not served.
    pub ca_cert_pem: String,
    /// How many past events each resource keeps for watches that resume or lag.
    pub watch_history: watch_cache::WatchHistory,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            service_cidr: Cidr::parse("10.43.0.0/16").unwrap_or(Cidr { base: Ipv4Addr::new(10, 43, 0, 0), prefix: 16 }),
            node_port_range: (30000, 32767),
            advertise_address: IpAddr::V4(Ipv4Addr::LOCALHOST),
            advertise_port: 6443,
            skiff_version: env!("CARGO_PKG_VERSION").to_string(),
            compaction_interval: std::time::Duration::from_secs(300),
            event_ttl: std::time::Duration::from_secs(3600),
            ca_cert_pem: String::new(),
            watch_history: watch_cache::WatchHistory::default(),
        }
    }
}

/// How the server finds resources: an immutable snapshot, replaced as a whole when custom
/// resources come and go, so a request sees one consistent set from start to end.
pub(crate) struct Resources {
    pub all: Vec<Arc<Resource>>,
    by_path: HashMap<(String, String, String), usize>,
    /// For each storage, the resource whose version is stored.
    storage_version: HashMap<String, usize>,
}

impl Resources {
    fn new(all: Vec<Arc<Resource>>) -> Self {
        let mut by_path = HashMap::new();
        let mut storage_version = HashMap::new();
        for (i, r) in all.iter().enumerate() {
            by_path.insert((r.info.group.to_string(), r.info.version.to_string(), r.info.plural.to_string()), i);
            // The first resource listed for a storage is its storage version; reviews have none.
            if !r.info.ephemeral {
                storage_version.entry(storage_name(&r.info)).or_insert(i);
            }
        }
        Resources { all, by_path, storage_version }
    }

    pub(crate) fn find(&self, group: &str, version: &str, plural: &str) -> Option<Arc<Resource>> {
        self.by_path.get(&(group.to_string(), version.to_string(), plural.to_string())).map(|&i| self.all[i].clone())
    }

    /// The resource whose version is stored for `info`'s storage.
    pub(crate) fn storage_resource(&self, info: &ResourceInfo) -> Arc<Resource> {
        let i = self.storage_version.get(&storage_name(info)).copied().unwrap_or(0);
        self.all[i].clone()
    }

    /// The resources as plain values (for code that takes a slice of them).
    pub(crate) fn plain(&self) -> Vec<Resource> {
        self.all.iter().map(|r| (**r).clone()).collect()
    }

    /// Every storage with the resource whose version it stores.
    pub(crate) fn storages(&self) -> Vec<(String, Arc<Resource>)> {
        self.storage_version.iter().map(|(s, &i)| (s.clone(), self.all[i].clone())).collect()
    }
}

/// `core/pods`, `apps/deployments`: the storage of a resource, which names its key prefix.
pub(crate) fn storage_name(info: &ResourceInfo) -> String {
    let s = info.storage.trim_start_matches('/');
    if info.storage.starts_with('/') { format!("core/{s}") } else { s.to_string() }
}

/// The API server: resources, store, caches, and the request pipeline.
pub struct ApiServer {
    pub(crate) config: Config,
    resources: std::sync::RwLock<Arc<Resources>>,
    /// The built-in resources (the snapshot is these plus the served custom resources).
    builtin: Vec<Arc<Resource>>,
    /// Custom resource definitions being served.
    pub(crate) crds: std::sync::Mutex<crds::CrdState>,
    /// Bumped whenever the resource set changes (OpenAPI documents depend on it).
    pub(crate) resources_generation: std::sync::atomic::AtomicU64,
    pub(crate) store: Arc<dyn Store>,
    pub(crate) cache: Arc<WatchCache>,
    pub(crate) authn: Authenticator,
    pub(crate) authz: Box<dyn Authorizer>,
    pub(crate) metrics: Metrics,
    pub(crate) openapi: openapi::OpenApi,
    pub(crate) allocator: allocator::Allocators,
    pub(crate) shutdown: CancellationToken,
    ready: std::sync::atomic::AtomicBool,
    /// How to reach kubelets for logs, exec, attach, port-forward and `nodes/proxy`; until
    /// set ([`ApiServer::set_kubelet_client`]) those answer 503.
    pub(crate) kubelet_client: std::sync::RwLock<Option<KubeletClient>>,
}

impl ApiServer {
    /// Build the server over `store`: fill the watch cache, create the default namespaces and
    /// the `kubernetes` Service, and start background loops (namespace lifecycle). Runs until
    /// `shutdown` is cancelled.
    pub async fn start(
        config: Config,
        store: Arc<dyn Store>,
        authn: Authenticator,
        authz: Box<dyn Authorizer>,
        shutdown: CancellationToken,
    ) -> Result<Arc<ApiServer>, ApiError> {
        let builtin: Vec<Arc<Resource>> = skiff_api::resources::builtin().into_iter().map(Arc::new).collect();
        let resources = Resources::new(builtin.clone());
        let mut field_fns: HashMap<String, watch_cache::FieldFn> = HashMap::new();
        for (storage, r) in resources.storages() {
            let (group, kind) = (r.info.group, r.info.kind);
            field_fns.insert(
                storage.clone(),
                watch_cache::FieldFn::new(skiff_api::selector::Keep::for_selectors(group, kind), move |v| {
                    skiff_api::selector::field_attributes(group, kind, v)
                }),
            );
        }
        let cache = WatchCache::start(store.clone(), field_fns, config.watch_history, shutdown.clone()).await?;
        let allocator = allocator::Allocators::new(&config);
        let server = Arc::new(ApiServer {
            config,
            resources: std::sync::RwLock::new(Arc::new(resources)),
            builtin,
            crds: std::sync::Mutex::default(),
            resources_generation: std::sync::atomic::AtomicU64::new(0),
            store,
            cache,
            authn,
            authz,
            metrics: Metrics::new(),
            openapi: openapi::OpenApi::default(),
            allocator,
            shutdown: shutdown.clone(),
            ready: std::sync::atomic::AtomicBool::new(false),
            kubelet_client: std::sync::RwLock::new(None),
        });
        bootstrap::run(&server).await?;
        namespace_lifecycle::spawn(server.clone());
        allocator::spawn_repair(server.clone());
        maintenance::spawn(server.clone());
        crds::spawn(server.clone());
        server.ready.store(true, std::sync::atomic::Ordering::Release);
        Ok(server)
    }

    /// Serve one request (the whole pipeline, without a socket: component tests call this).
    pub async fn handle(self: &Arc<Self>, req: Request<Body>) -> Response<Body> {
        handlers::handle(self, req).await
    }

    pub fn is_ready(&self) -> bool {
        self.ready.load(std::sync::atomic::Ordering::Acquire)
    }

    /// The current set of resources.
    pub(crate) fn resources(&self) -> Arc<Resources> {
        self.resources.read().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// Publish a new resource snapshot: the built-ins plus every served custom resource.
    pub(crate) fn rebuild_resources(&self) {
        let mut all = self.builtin.clone();
        {
            let state = self.crds.lock().unwrap_or_else(|e| e.into_inner());
            let mut names: Vec<&String> = state.served.keys().collect();
            names.sort();
            for n in names {
                all.extend(state.served[n].resources.iter().cloned());
            }
        }
        *self.resources.write().unwrap_or_else(|e| e.into_inner()) = Arc::new(Resources::new(all));
        self.resources_generation.fetch_add(1, std::sync::atomic::Ordering::AcqRel);
        self.openapi.invalidate();
    }

    /// Use `client` to reach kubelets (see [`KubeletClient::from_pki`]).
    pub fn set_kubelet_client(&self, client: KubeletClient) {
        *self.kubelet_client.write().unwrap_or_else(|e| e.into_inner()) = Some(client);
    }

    /// The metrics registry (for tests and embedding).
    pub fn metrics(&self) -> &Metrics {
        &self.metrics
    }
}
