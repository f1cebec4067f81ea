//! `skiff-runtime`: runs containers for the kubelet.
//!
//! - [`cri`]: the CRI-shaped [`Runtime`] trait the kubelet talks to (see
//!   `docs/architecture.md`); every implementation (the built-in Linux runtime, the recording
//!   fake, a future CRI gRPC client) sits behind it.
//! - [`image`]: the content-addressed image store under `<data-dir>/images/` (import, pull,
//!   export, layers unpacked once for overlayfs), shared with the `skiff image` commands.
//! - [`fake`]: a recording in-memory [`Runtime`] with scriptable outcomes, for kubelet tests.
//! - [`linux`]: the built-in runtime ([`LinuxRuntime`]) and its per-container supervisor.

pub mod cri;
pub mod fake;
pub mod image;
pub mod linux;

#[cfg(test)]
mod conformance;

pub use cri::{ImageConfig, ImageService, ImageSource, Runtime, RuntimeError};
pub use fake::{FakeCall, FakeRuntime, Outcome};
pub use image::{ImageError, ImageStore};
pub use linux::{LinuxRuntime, LinuxRuntimeConfig};
