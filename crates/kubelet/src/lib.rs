//! `skiff-kubelet`: the node agent. One per node, in `skiff server` and in `skiff agent`.
//!
//! - [`server`]: the kubelet API (HTTPS on 10250): container logs, exec, attach,
//!   port-forward, `/pods`, `/healthz`, stats — what the API server proxies `pods/log`,
//!   `pods/exec`, `pods/attach` and `pods/portforward` to.
//! - [`volumes`] and [`env`]: a pod's volumes on the host and its containers' environment,
//!   from the pod spec and the ConfigMaps, Secrets and Services it refers to.
//! - [`probe`]: liveness, readiness and startup probes and lifecycle hooks.

pub mod env;
pub mod probe;
pub mod server;
pub mod volumes;
