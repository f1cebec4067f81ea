//! The image store: OCI images kept content-addressed under `<data-dir>/images/`, used by the
//! built-in runtime (which mounts an image's unpacked layers with overlayfs, see
//! [`ImageStore::rootfs_layers`]) and by the `skiff image` commands — possibly by both at once,
//! from different processes.
//!
//! On disk (`<data-dir>/images/`, mode 0700 so host users cannot reach set-uid binaries in
//! unpacked layers):
//!
//! ```text
//! lock                      flock'd (exclusive) by every writer of metadata or content
//! metadata.json             images, names, layer sizes, pins; replaced atomically (rename)
//! blobs/sha256/<hex>        manifests, indexes, configs, layer blobs as fetched (compressed)
//! layers/<hex of diffid>/   each layer unpacked once, whiteouts in overlayfs form
//! tmp/<pid>-<rand>/         one scratch dir per running operation, with its own held lock
//! ```
//!
//! Writers download and unpack into their scratch dir without the store lock, then *commit*:
//! under the lock they rename blobs and layer dirs into place (never replacing existing ones),
//! `syncfs`, and rewrite `metadata.json`. Deletion rewrites the metadata first and removes
//! content afterwards, so a crash leaves at worst unreferenced content, which `prune` removes.
//! Readers read `metadata.json` without the lock. Images in use by containers are *pinned*
//! (recorded in the metadata, so other processes see it): they are never removed.
//!
//! Layers are keyed by diffid (the digest of the uncompressed tar) so an image built locally
//! (`skiff build`, later) adds layers with [`ImageStore::add_layer`] and images with
//! [`ImageStore::create_image`] next to pulled ones, sharing identical layers.

mod digest;
mod export;
mod import;
mod oci;
mod pull;
mod reference;
mod service;
mod store;
#[cfg(test)]
pub(crate) mod testutil;
mod unpack;

use std::sync::Arc;

pub use import::ImportOptions;
pub use pull::PullOptions;
pub use service::ImageService;
pub use store::{GcReport, ImageBuilder, ImageDetails, ImageStore, LayerDetails, NewImageConfig, PruneReport, Removal};
pub use unpack::UnpackError;

/// The registry an image reference names, as docker normalizes it (`busybox` → `docker.io`,
/// `127.0.0.1:5000/x` → `127.0.0.1:5000`); `None` for an invalid reference.
pub fn registry_of(reference: &str) -> Option<String> {
    reference::Name::parse(reference).ok().map(|n| n.registry)
}

use crate::cri::RuntimeError;

/// What a long operation (pull, import) reports while it runs; the CLI draws progress bars
/// from these, the kubelet ignores them. Layers are named by their blob digest.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Progress {
    /// The reference was resolved to a manifest with this many layers.
    Resolved { digest: String, layers: usize },
    /// The layer (blob and unpacked dir) is already in the store: nothing to do.
    LayerExists { digest: String, size: u64 },
    /// Bytes of a layer blob downloaded so far.
    Downloading { digest: String, done: u64, total: u64 },
    /// The blob is complete and verified; unpacking starts.
    Unpacking { digest: String },
    /// The layer is unpacked (`size`: bytes of regular files).
    Unpacked { digest: String, size: u64 },
    /// Bytes of an archive read so far (`total` when the size is known).
    Reading { done: u64, total: Option<u64> },
    /// The image is committed to the store.
    Done { id: String },
}

/// A progress callback; called from any thread, so it must be cheap and thread-safe.
pub type ProgressFn = Arc<dyn Fn(Progress) + Send + Sync>;

/// Why an image operation failed. Every failure leaves the store consistent: partial work
/// lives only in the operation's scratch dir, which is removed.
#[derive(Debug, thiserror::Error)]
pub enum ImageError {
    /// The string is not an image reference (docker syntax: `[registry/]repo[:tag][@digest]`).
    #[error("invalid image reference {reference:?}: {reason}")]
    InvalidReference { reference: String, reason: String },
    /// No image matches the reference.
    #[error("image {0:?} not found")]
    NotFound(String),
    /// A short id matches more than one image.
    #[error("image id prefix {0:?} is ambiguous")]
    Ambiguous(String),
    /// The image is pinned by a container (or another owner) and cannot be removed.
    #[error("image {image} is in use by {owner}")]
    InUse { image: String, owner: String },
    /// Content does not hash to the digest that names it.
    #[error("digest mismatch for {what}: expected {expected}, got {actual}")]
    DigestMismatch { what: String, expected: String, actual: String },
    /// A blob is longer or shorter than its descriptor says.
    #[error("size mismatch for {what}: expected {expected} bytes, got {actual}")]
    SizeMismatch { what: String, expected: u64, actual: u64 },
    /// A digest uses an algorithm other than sha256, or is malformed.
    #[error("unsupported or malformed digest {0:?}")]
    UnsupportedDigest(String),
    /// A manifest, config or layer has a media type the store does not understand.
    #[error("unknown media type {media_type:?} for {what}")]
    UnknownMediaType { what: String, media_type: String },
    /// An index has no manifest for this host's platform.
    #[error("no manifest for platform {wanted} (the image has: {available})")]
    PlatformNotFound { wanted: String, available: String },
    /// The image's config is for another platform.
    #[error("image is for platform {found}, this host runs {wanted}")]
    WrongPlatform { wanted: String, found: String },
    /// A document is malformed or inconsistent (bad JSON, layer and diffid counts differ, …).
    #[error("invalid {what}: {reason}")]
    InvalidContent { what: String, reason: String },
    /// A file given to `import` is neither a docker-save archive nor an OCI archive/layout.
    #[error("{0} is not an image archive: {1}")]
    NotAnArchive(String, String),
    /// A layer could not be unpacked (corrupt, truncated, path traversal, …).
    #[error("unpacking layer {layer}")]
    Unpack {
        layer: String,
        #[source]
        source: UnpackError,
    },
    /// The registry refused or failed (network, auth, missing manifest).
    #[error("registry request for {reference} failed")]
    Registry {
        reference: String,
        #[source]
        source: Box<oci_client::errors::OciDistributionError>,
    },
    /// Content the operation relied on was removed by another process meanwhile; retry.
    #[error("store content removed concurrently: {0}")]
    ContentVanished(String),
    /// A file-system operation on the store failed.
    #[error("{context}")]
    Io {
        context: String,
        #[source]
        source: std::io::Error,
    },
}

pub type Result<T, E = ImageError> = std::result::Result<T, E>;

impl ImageError {
    pub(crate) fn io(context: impl Into<String>) -> impl FnOnce(std::io::Error) -> ImageError {
        let context = context.into();
        move |source| ImageError::Io { context, source }
    }

    pub(crate) fn invalid(what: impl Into<String>, reason: impl ToString) -> ImageError {
        ImageError::InvalidContent { what: what.into(), reason: reason.to_string() }
    }

    /// The message with every cause, `outer: inner: …` (for errors that cross into plain
    /// strings, like the CRI's).
    pub fn full_message(&self) -> String {
        let mut msg = self.to_string();
        let mut cause = std::error::Error::source(self);
        while let Some(c) = cause {
            msg.push_str(": ");
            msg.push_str(&c.to_string());
            cause = c.source();
        }
        msg
    }

    /// The CRI error for a failed operation on `image` (`pulling` picks `ImagePull` for
    /// content and registry problems, which the kubelet reports as `ErrImagePull`).
    pub fn into_runtime_error(self, image: &str, pulling: bool) -> RuntimeError {
        let msg = self.full_message();
        match self {
            ImageError::NotFound(_) if !pulling => RuntimeError::NotFound { kind: "image", id: image.to_string() },
            ImageError::InvalidReference { .. } | ImageError::Ambiguous(_) | ImageError::InUse { .. } => {
                RuntimeError::InvalidArgument(msg)
            }
            _ if pulling => RuntimeError::ImagePull { image: image.to_string(), reason: msg },
            _ => RuntimeError::Internal(msg),
        }
    }
}
