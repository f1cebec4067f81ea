//! `skiff-testkit`: what tests need to exercise Skiff the way users and real clients do.
//!
//! - [`Cluster`] runs the built `skiff server` binary on a free port with its own data dir, and
//!   [`Cluster::kubectl`] runs the real kubectl 1.32 against it;
//! - [`Cluster::start_node`] runs a whole one-node cluster (node agent included) and removes
//!   its host state (`skiff reset`) when dropped;
//! - [`Agent`] joins a second node (`skiff agent`) from a network namespace of its own
//!   ([`NetNs`]), as another machine would;
//! - [`images`] builds test images from `busybox-static`;
//! - [`InProcess`] runs the API server in the test process over the in-memory store, driven
//!   through [`InProcess::request`] without a socket (component tests).

mod agent;
mod cluster;
pub mod images;
mod in_process;

pub use agent::{Agent, NetNs};
pub use cluster::{Cluster, KubectlOutput, http_get, import_image, kubectl_binary, skiff_binary};
pub use in_process::{ADMIN_TOKEN, InProcess, Reply, USER_TOKEN};
