//! `skiff-runtime`: runs containers for the kubelet.
//!
//! - [`cri`]: the CRI-shaped [`Runtime`] trait the kubelet talks to (see
//!   `docs/architecture.md`); every implementation (the built-in Linux runtime, the recording
//!   fake, a future CRI gRPC client) sits behind it.

pub mod cri;

pub use cri::{Runtime, RuntimeError};
