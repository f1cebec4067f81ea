//! `skiff-testkit`: what tests need to exercise Skiff the way users and real clients do.
//!
//! - [`Cluster`] runs the built `skiff server` binary on a free port with its own data dir, and
//!   [`Cluster::kubectl`] runs the real kubectl 1.32 against it;
//! - [`InProcess`] runs the API server in the test process over the in-memory store, driven
//!   through [`InProcess::request`] without a socket (component tests).

mod cluster;
mod in_process;

pub use cluster::{Cluster, KubectlOutput, kubectl_binary, skiff_binary};
pub use in_process::{ADMIN_TOKEN, InProcess, Reply, USER_TOKEN};
