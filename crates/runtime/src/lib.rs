//! `skiff-runtime`: runs containers for the kubelet.
//!
//! - [`cri`]: the CRI-shaped [`Runtime`] trait the kubelet talks to (see
//!   `docs/architecture.md`); every implementation (the built-in Linux runtime, the recording
//!   fake, a future CRI gRPC client) sits behind it.
//! - [`image`]: the content-addressed image store under `<data-dir>/images/` (import, pull,
//!   export, layers unpacked once for overlayfs), shared with the `skiff image` commands.

pub mod cri;
pub mod image;

pub use cri::{Runtime, RuntimeError};
pub use image::{ImageError, ImageStore};
