//! One test binary for everything above unit level (see STYLE.md: one integration crate).
//!
//! - `apply`: server-side apply, diff, dry-run and prune with kubectl;
//! - `cli`: the skiff command line (kubeconfig merge, reset, tokens, TLS SANs);
//! - `component`: the API server in process over the in-memory store;
//! - `controllers`: the controller manager in process against it, with a stand-in kubelet;
//! - `kubectl`: the built `skiff` binary driven by real kubectl 1.32;
//! - `sim`: workloads, scheduling, drain and events on `--simulate-nodes` with kubectl;
//! - `crd`: custom resource definitions with kubectl;
//! - `kube_client`: the built binary driven by kube-rs (typed API, watcher, reflector);
//! - `image`: `skiff image` with real archives, registries, skopeo and overlayfs;
//! - `node`: whole one-node clusters running real containers, driven by kubectl (logs, exec,
//!   attach, cp, port-forward, restarts, probes, volumes, termination, fail-static).

mod apply;
mod cli;
mod component;
mod controllers;
mod crd;
mod image;
mod join;
mod kube_client;
mod kubectl;
mod node;
mod services;
mod sim;
