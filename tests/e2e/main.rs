//! One test binary for everything above unit level (see STYLE.md: one integration crate).
//!
//! - `component`: the API server in process over the in-memory store;
//! - `kubectl`: the built `skiff` binary driven by real kubectl 1.32;
//! - `kube_client`: the built binary driven by kube-rs (typed API, watcher, reflector).

mod component;
mod kube_client;
mod kubectl;
