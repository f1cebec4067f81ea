//! The JSON documents of the OCI image spec and their Docker schema 2 twins (descriptors,
//! manifests, indexes, image configs), the media types the store accepts, and platform
//! selection. Only the fields the store uses are modelled; the original bytes are what the
//! store keeps, so nothing is lost by parsing.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::ImageError;
use super::digest::Digest;

pub(crate) const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
pub(crate) const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";
pub(crate) const DOCKER_MANIFEST: &str = "application/vnd.docker.distribution.manifest.v2+json";
pub(crate) const DOCKER_MANIFEST_LIST: &str = "application/vnd.docker.distribution.manifest.list.v2+json";
pub(crate) const OCI_CONFIG: &str = "application/vnd.oci.image.config.v1+json";
pub(crate) const DOCKER_CONFIG: &str = "application/vnd.docker.container.image.v1+json";
pub(crate) const OCI_LAYER: &str = "application/vnd.oci.image.layer.v1.tar";
pub(crate) const OCI_LAYER_GZIP: &str = "application/vnd.oci.image.layer.v1.tar+gzip";

/// Every manifest type a registry may answer with (the `Accept` header of a pull).
pub(crate) const MANIFEST_TYPES: [&str; 4] = [OCI_INDEX, DOCKER_MANIFEST_LIST, OCI_MANIFEST, DOCKER_MANIFEST];

/// The largest manifest or index the store reads (containerd uses the same bound): more is
/// not an image but an attempt to exhaust memory.
pub(crate) const MAX_MANIFEST: u64 = 4 << 20;
/// The largest image config the store reads.
pub(crate) const MAX_CONFIG: u64 = 16 << 20;

/// How a layer blob is compressed, from its media type.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Compression {
    None,
    Gzip,
}

impl Compression {
    /// The compression of a layer media type; `None` for media types that are not layers
    /// the store can unpack (zstd, encrypted, arbitrary artifacts).
    pub(crate) fn of_media_type(media_type: &str) -> Option<Compression> {
        match media_type {
            OCI_LAYER
            | "application/vnd.oci.image.layer.nondistributable.v1.tar"
            | "application/vnd.docker.image.rootfs.diff.tar" => Some(Compression::None),
            OCI_LAYER_GZIP
            | "application/vnd.oci.image.layer.nondistributable.v1.tar+gzip"
            | "application/vnd.docker.image.rootfs.diff.tar.gzip"
            | "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip" => Some(Compression::Gzip),
            _ => None,
        }
    }

    /// Guess from the first bytes of a blob (docker-save archives do not say).
    pub(crate) fn sniff(head: &[u8]) -> Result<Compression, &'static str> {
        match head {
            [0x1f, 0x8b, ..] => Ok(Compression::Gzip),
            [0x28, 0xb5, 0x2f, 0xfd, ..] => Err("zstd-compressed layers are not supported"),
            [b'B', b'Z', b'h', ..] => Err("bzip2-compressed layers are not supported"),
            [0xfd, b'7', b'z', b'X', b'Z', 0, ..] => Err("xz-compressed layers are not supported"),
            _ => Ok(Compression::None),
        }
    }

    pub(crate) fn oci_media_type(self) -> &'static str {
        match self {
            Compression::None => OCI_LAYER,
            Compression::Gzip => OCI_LAYER_GZIP,
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct Descriptor {
    pub media_type: String,
    pub digest: String,
    pub size: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub platform: Option<Platform>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub annotations: BTreeMap<String, String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub urls: Vec<String>,
}

impl Descriptor {
    pub(crate) fn digest(&self) -> Result<Digest, ImageError> {
        Digest::parse(&self.digest)
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Platform {
    #[serde(default)]
    pub architecture: String,
    #[serde(default)]
    pub os: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub variant: Option<String>,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct Manifest {
    pub schema_version: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub media_type: Option<String>,
    pub config: Descriptor,
    #[serde(default)]
    pub layers: Vec<Descriptor>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub annotations: BTreeMap<String, String>,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct Index {
    pub schema_version: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub media_type: Option<String>,
    pub manifests: Vec<Descriptor>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub annotations: BTreeMap<String, String>,
}

/// The parts of an image config the store and the runtime use.
#[derive(Clone, Debug, Default, Deserialize)]
pub(crate) struct ImageConfig {
    #[serde(default)]
    pub architecture: String,
    #[serde(default)]
    pub os: String,
    #[serde(default)]
    pub variant: Option<String>,
    #[serde(default)]
    pub created: Option<String>,
    #[serde(default)]
    pub config: Option<RunConfig>,
    pub rootfs: RootFs,
}

/// The `config` object of an image config: how to run it.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct RunConfig {
    #[serde(rename = "User", default)]
    pub user: Option<String>,
    #[serde(rename = "Env", default)]
    pub env: Option<Vec<String>>,
    #[serde(rename = "Entrypoint", default)]
    pub entrypoint: Option<Vec<String>>,
    #[serde(rename = "Cmd", default)]
    pub cmd: Option<Vec<String>>,
    #[serde(rename = "WorkingDir", default)]
    pub working_dir: Option<String>,
    #[serde(rename = "StopSignal", default)]
    pub stop_signal: Option<String>,
}

#[derive(Clone, Debug, Default, Deserialize)]
pub(crate) struct RootFs {
    #[serde(default)]
    pub diff_ids: Vec<String>,
}

/// A manifest-typed document: an image manifest or an index of them.
pub(crate) enum Document {
    Index(Index),
    Manifest(Manifest, String),
}

/// Parse a manifest or index. The media type comes from the document, else from the
/// descriptor that pointed at it (`declared`), else from its shape (OCI allows omitting it).
pub(crate) fn parse_document(bytes: &[u8], declared: Option<&str>, what: &str) -> Result<Document, ImageError> {
    let value: serde_json::Value = serde_json::from_slice(bytes).map_err(|e| ImageError::invalid(what, e))?;
    let media_type = value
        .get("mediaType")
        .and_then(|m| m.as_str())
        .or(declared)
        .map(str::to_string)
        .unwrap_or_else(|| if value.get("manifests").is_some() { OCI_INDEX } else { OCI_MANIFEST }.to_string());
    match value.get("schemaVersion").and_then(|v| v.as_u64()) {
        Some(2) => {}
        Some(1) => {
            return Err(ImageError::UnknownMediaType {
                what: what.to_string(),
                media_type: "docker schema 1 manifest (no longer supported by registries)".to_string(),
            });
        }
        _ => return Err(ImageError::invalid(what, "schemaVersion is not 2")),
    }
    match media_type.as_str() {
        OCI_INDEX | DOCKER_MANIFEST_LIST => {
            Ok(Document::Index(serde_json::from_value(value).map_err(|e| ImageError::invalid(what, e))?))
        }
        OCI_MANIFEST | DOCKER_MANIFEST => {
            let m: Manifest = serde_json::from_value(value).map_err(|e| ImageError::invalid(what, e))?;
            validate_manifest(&m)?;
            Ok(Document::Manifest(m, media_type))
        }
        _ => Err(ImageError::UnknownMediaType { what: what.to_string(), media_type }),
    }
}

/// A manifest the store can hold: a container image config and layers it can unpack.
fn validate_manifest(m: &Manifest) -> Result<(), ImageError> {
    match m.config.media_type.as_str() {
        OCI_CONFIG | DOCKER_CONFIG => {}
        other => {
            return Err(ImageError::UnknownMediaType {
                what: "image config (not a container image)".to_string(),
                media_type: other.to_string(),
            });
        }
    }
    m.config.digest()?;
    for layer in &m.layers {
        layer.digest()?;
        if Compression::of_media_type(&layer.media_type).is_none() {
            return Err(ImageError::UnknownMediaType {
                what: format!("layer {}", layer.digest),
                media_type: layer.media_type.clone(),
            });
        }
    }
    Ok(())
}

/// Parse an image config and check it can run here.
pub(crate) fn parse_config(bytes: &[u8], layers: usize) -> Result<ImageConfig, ImageError> {
    let cfg: ImageConfig = serde_json::from_slice(bytes).map_err(|e| ImageError::invalid("image config", e))?;
    check_platform(&cfg)?;
    if cfg.rootfs.diff_ids.len() != layers {
        return Err(ImageError::invalid(
            "image config",
            format!("{} diff_ids for {} layers", cfg.rootfs.diff_ids.len(), layers),
        ));
    }
    for d in &cfg.rootfs.diff_ids {
        Digest::parse(d)?;
    }
    Ok(cfg)
}

/// This host's platform in OCI terms (`GOOS`/`GOARCH` names).
pub(crate) fn host_platform() -> (&'static str, &'static str) {
    let arch = match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        "x86" => "386",
        "powerpc64" => "ppc64le",
        "loongarch64" => "loong64",
        other => other,
    };
    ("linux", arch)
}

fn host_platform_string() -> String {
    let (os, arch) = host_platform();
    format!("{os}/{arch}")
}

/// An image config without os/architecture is accepted (some hand-made images omit them).
fn check_platform(cfg: &ImageConfig) -> Result<(), ImageError> {
    let (os, arch) = host_platform();
    if (!cfg.os.is_empty() && cfg.os != os) || (!cfg.architecture.is_empty() && cfg.architecture != arch) {
        return Err(ImageError::WrongPlatform {
            wanted: host_platform_string(),
            found: format!("{}/{}", cfg.os, cfg.architecture),
        });
    }
    Ok(())
}

/// Pick this host's manifest from an index: an exact platform match, else an entry without a
/// platform (its config is checked later). Attestations (`unknown/unknown`) never match.
pub(crate) fn select_manifest(index: &Index) -> Result<&Descriptor, ImageError> {
    let (os, arch) = host_platform();
    let exact =
        index.manifests.iter().find(|d| d.platform.as_ref().is_some_and(|p| p.os == os && p.architecture == arch));
    let untyped = || index.manifests.iter().find(|d| d.platform.is_none());
    exact.or_else(untyped).ok_or_else(|| ImageError::PlatformNotFound {
        wanted: host_platform_string(),
        available: index
            .manifests
            .iter()
            .filter_map(|d| d.platform.as_ref().map(|p| format!("{}/{}", p.os, p.architecture)))
            .collect::<Vec<_>>()
            .join(", "),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const D: &str = "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";

    fn manifest(config_type: &str, layer_type: &str) -> Vec<u8> {
        serde_json::to_vec(&serde_json::json!({
            "schemaVersion": 2,
            "mediaType": OCI_MANIFEST,
            "config": {"mediaType": config_type, "digest": D, "size": 2},
            "layers": [{"mediaType": layer_type, "digest": D, "size": 0}],
        }))
        .unwrap()
    }

    #[test]
    fn accepts_images_and_rejects_unknown_media_types() {
        assert!(matches!(parse_document(&manifest(OCI_CONFIG, OCI_LAYER_GZIP), None, "m"), Ok(Document::Manifest(..))));
        assert!(matches!(
            parse_document(&manifest(DOCKER_CONFIG, "application/vnd.docker.image.rootfs.diff.tar.gzip"), None, "m"),
            Ok(Document::Manifest(..))
        ));
        let err =
            parse_document(&manifest("application/vnd.cncf.helm.config.v1+json", OCI_LAYER), None, "m").err().unwrap();
        assert!(matches!(err, ImageError::UnknownMediaType { .. }), "{err}");
        let err = parse_document(&manifest(OCI_CONFIG, "application/vnd.oci.image.layer.v1.tar+zstd"), None, "m")
            .err()
            .unwrap();
        assert!(err.to_string().contains("tar+zstd"), "{err}");
        let doc = br#"{"schemaVersion":2,"mediaType":"application/vnd.example+json"}"#;
        assert!(matches!(parse_document(doc, None, "m"), Err(ImageError::UnknownMediaType { .. })));
        assert!(matches!(
            parse_document(br#"{"schemaVersion":1}"#, None, "m"),
            Err(ImageError::UnknownMediaType { .. })
        ));
        assert!(matches!(parse_document(b"{not json", None, "m"), Err(ImageError::InvalidContent { .. })));
        // No mediaType: an index by shape.
        let idx = br#"{"schemaVersion":2,"manifests":[]}"#;
        assert!(matches!(parse_document(idx, None, "m"), Ok(Document::Index(_))));
    }

    fn entry(os: &str, arch: &str, digest_char: char) -> Descriptor {
        Descriptor {
            media_type: OCI_MANIFEST.into(),
            digest: format!("sha256:{}", digest_char.to_string().repeat(64)),
            size: 1,
            platform: Some(Platform { architecture: arch.into(), os: os.into(), variant: None }),
            annotations: BTreeMap::new(),
            urls: vec![],
        }
    }

    #[test]
    fn selects_the_host_platform() {
        let (_, arch) = host_platform();
        let idx = Index {
            schema_version: 2,
            media_type: None,
            manifests: vec![entry("unknown", "unknown", 'a'), entry("linux", "s390x", 'b'), entry("linux", arch, 'c')],
            annotations: BTreeMap::new(),
        };
        assert!(select_manifest(&idx).unwrap().digest.ends_with('c'));
        let other = Index { manifests: vec![entry("linux", "s390x", 'b'), entry("windows", arch, 'd')], ..idx };
        let err = select_manifest(&other).unwrap_err();
        assert!(matches!(err, ImageError::PlatformNotFound { .. }), "{err}");
        assert!(err.to_string().contains("linux/s390x, windows/"), "{err}");
    }

    #[test]
    fn config_platform_and_diff_ids_are_checked() {
        let cfg = |arch: &str, n: usize| {
            serde_json::to_vec(&serde_json::json!({
                "architecture": arch, "os": "linux",
                "rootfs": {"type": "layers", "diff_ids": vec![D; n]},
            }))
            .unwrap()
        };
        let (_, arch) = host_platform();
        assert!(parse_config(&cfg(arch, 1), 1).is_ok());
        assert!(matches!(parse_config(&cfg("riscv64", 1), 1), Err(ImageError::WrongPlatform { .. })));
        assert!(matches!(parse_config(&cfg(arch, 2), 1), Err(ImageError::InvalidContent { .. })));
    }

    #[test]
    fn sniffs_compression() {
        assert_eq!(Compression::sniff(&[0x1f, 0x8b, 8]), Ok(Compression::Gzip));
        assert_eq!(Compression::sniff(b"bin/"), Ok(Compression::None));
        assert!(Compression::sniff(&[0x28, 0xb5, 0x2f, 0xfd]).is_err());
    }
}
