//! Test builders: layer tars (including malformed and malicious ones), images made of them,
//! and the archive formats `import` reads (docker-save, OCI archive, OCI layout).

use std::io::Write;
use std::path::Path;

use serde_json::json;

use super::digest::Digest;
use super::oci;

/// Panics unless running as root: the test needs device nodes, ownership or trusted xattrs.
pub(crate) fn require_root() {
    assert!(
        rustix::process::geteuid().is_root(),
        "this test needs root (device nodes, file ownership, trusted.* xattrs, mounts); run it as root"
    );
}

/// A layer tar built entry by entry.
pub(crate) struct Layer {
    b: tar::Builder<Vec<u8>>,
}

impl Layer {
    pub(crate) fn new() -> Layer {
        Layer { b: tar::Builder::new(Vec::new()) }
    }

    fn header(kind: tar::EntryType, mode: u32, size: u64) -> tar::Header {
        let mut h = tar::Header::new_gnu();
        h.set_entry_type(kind);
        h.set_mode(mode);
        h.set_size(size);
        h.set_mtime(1_700_000_000);
        h.set_uid(0);
        h.set_gid(0);
        h
    }

    /// An entry whose path (and link target) bytes are written verbatim, bypassing the tar
    /// crate's own path checks (how a malicious layer is made).
    pub(crate) fn raw(mut self, path: &str, kind: tar::EntryType, data: &[u8], link: Option<&str>) -> Layer {
        let mut h = Self::header(kind, 0o644, data.len() as u64);
        let old = h.as_old_mut();
        old.name[..path.len()].copy_from_slice(path.as_bytes());
        if let Some(l) = link {
            old.linkname[..l.len()].copy_from_slice(l.as_bytes());
        }
        h.set_cksum();
        self.b.append(&h, data).unwrap();
        self
    }

    pub(crate) fn dir(self, path: &str, mode: u32) -> Layer {
        self.entry(path, tar::EntryType::Directory, mode, (0, 0), b"", None)
    }

    pub(crate) fn file(self, path: &str, data: &[u8]) -> Layer {
        self.entry(path, tar::EntryType::Regular, 0o644, (0, 0), data, None)
    }

    pub(crate) fn entry(
        mut self,
        path: &str,
        kind: tar::EntryType,
        mode: u32,
        (uid, gid): (u64, u64),
        data: &[u8],
        link: Option<&str>,
    ) -> Layer {
        let mut h = Self::header(kind, mode, data.len() as u64);
        h.set_uid(uid);
        h.set_gid(gid);
        h.set_path(path).unwrap();
        if let Some(l) = link {
            h.set_link_name(l).unwrap();
        }
        h.set_cksum();
        self.b.append(&h, data).unwrap();
        self
    }

    pub(crate) fn symlink(self, path: &str, target: &str) -> Layer {
        self.raw(path, tar::EntryType::Symlink, b"", Some(target))
    }

    pub(crate) fn hardlink(self, path: &str, target: &str) -> Layer {
        self.raw(path, tar::EntryType::Link, b"", Some(target))
    }

    pub(crate) fn device(mut self, path: &str, kind: tar::EntryType, major: u32, minor: u32) -> Layer {
        let mut h = Self::header(kind, 0o666, 0);
        h.set_path(path).unwrap();
        h.set_device_major(major).unwrap();
        h.set_device_minor(minor).unwrap();
        h.set_cksum();
        self.b.append(&h, &b""[..]).unwrap();
        self
    }

    /// PAX records (`SCHILY.xattr.*`, `uid`, …) for the next entry.
    pub(crate) fn pax(mut self, records: &[(&str, &[u8])]) -> Layer {
        let mut data = Vec::new();
        for (k, v) in records {
            let base = k.len() + v.len() + 3;
            let mut len = base + 1;
            while len != base + len.to_string().len() {
                len = base + len.to_string().len();
            }
            write!(data, "{len} {k}=").unwrap();
            data.extend_from_slice(v);
            data.push(b'\n');
        }
        let mut h = Self::header(tar::EntryType::XHeader, 0o644, data.len() as u64);
        h.set_path("PaxHeader").unwrap();
        h.set_cksum();
        self.b.append(&h, &data[..]).unwrap();
        self
    }

    pub(crate) fn build(self) -> Vec<u8> {
        self.b.into_inner().unwrap()
    }
}

pub(crate) fn gzip(bytes: &[u8]) -> Vec<u8> {
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    e.write_all(bytes).unwrap();
    e.finish().unwrap()
}

/// An image as blobs: layers (compressed or not), config and manifest.
pub(crate) struct TestImage {
    pub layers: Vec<Vec<u8>>,
    pub layer_types: Vec<String>,
    pub diff_ids: Vec<Digest>,
    pub config: Vec<u8>,
    pub manifest: Vec<u8>,
}

impl TestImage {
    /// An image of these uncompressed layer tars for this host's platform.
    pub(crate) fn new(tars: &[Vec<u8>], compress: bool) -> TestImage {
        let (_, arch) = oci::host_platform();
        Self::with_arch(tars, compress, arch)
    }

    pub(crate) fn with_arch(tars: &[Vec<u8>], compress: bool, arch: &str) -> TestImage {
        let diff_ids: Vec<Digest> = tars.iter().map(|t| Digest::of(t)).collect();
        let config = serde_json::to_vec(&json!({
            "architecture": arch,
            "os": "linux",
            "created": "2024-01-01T00:00:00Z",
            "config": {
                "Env": ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"],
                "Cmd": ["sh"],
                "WorkingDir": "/",
            },
            "rootfs": {"type": "layers", "diff_ids": diff_ids.iter().map(Digest::to_string).collect::<Vec<_>>()},
        }))
        .unwrap();
        let layers: Vec<Vec<u8>> = tars.iter().map(|t| if compress { gzip(t) } else { t.clone() }).collect();
        let layer_type = if compress { oci::OCI_LAYER_GZIP } else { oci::OCI_LAYER };
        let mut img = TestImage {
            layers,
            layer_types: vec![layer_type.to_string(); tars.len()],
            diff_ids,
            config,
            manifest: Vec::new(),
        };
        img.rebuild_manifest();
        img
    }

    pub(crate) fn rebuild_manifest(&mut self) {
        let layers: Vec<_> = self
            .layers
            .iter()
            .zip(&self.layer_types)
            .map(|(l, t)| json!({"mediaType": t, "digest": Digest::of(l).to_string(), "size": l.len()}))
            .collect();
        self.manifest = serde_json::to_vec(&json!({
            "schemaVersion": 2,
            "mediaType": oci::OCI_MANIFEST,
            "config": {"mediaType": oci::OCI_CONFIG, "digest": Digest::of(&self.config).to_string(), "size": self.config.len()},
            "layers": layers,
        }))
        .unwrap();
    }

    pub(crate) fn id(&self) -> String {
        Digest::of(&self.config).to_string()
    }

    pub(crate) fn manifest_digest(&self) -> String {
        Digest::of(&self.manifest).to_string()
    }

    /// Blobs of the image, `(digest, bytes)`.
    pub(crate) fn blobs(&self) -> Vec<(Digest, Vec<u8>)> {
        let mut out =
            vec![(Digest::of(&self.manifest), self.manifest.clone()), (Digest::of(&self.config), self.config.clone())];
        out.extend(self.layers.iter().map(|l| (Digest::of(l), l.clone())));
        out
    }

    /// The index.json of an OCI layout holding this image under `ref_name`.
    pub(crate) fn index_json(&self, ref_name: Option<&str>) -> Vec<u8> {
        let mut desc =
            json!({"mediaType": oci::OCI_MANIFEST, "digest": self.manifest_digest(), "size": self.manifest.len()});
        if let Some(r) = ref_name {
            desc["annotations"] = json!({"org.opencontainers.image.ref.name": r});
        }
        serde_json::to_vec(&json!({"schemaVersion": 2, "manifests": [desc]})).unwrap()
    }

    pub(crate) fn oci_archive(&self, ref_name: Option<&str>) -> Vec<u8> {
        let mut files = vec![("oci-layout".to_string(), br#"{"imageLayoutVersion":"1.0.0"}"#.to_vec())];
        for (d, bytes) in self.blobs() {
            files.push((format!("blobs/sha256/{}", d.hex()), bytes));
        }
        files.push(("index.json".into(), self.index_json(ref_name)));
        archive(&files)
    }

    pub(crate) fn write_layout(&self, dir: &Path, ref_name: Option<&str>) {
        std::fs::create_dir_all(dir.join("blobs/sha256")).unwrap();
        std::fs::write(dir.join("oci-layout"), br#"{"imageLayoutVersion":"1.0.0"}"#).unwrap();
        for (d, bytes) in self.blobs() {
            std::fs::write(dir.join("blobs/sha256").join(d.hex()), bytes).unwrap();
        }
        std::fs::write(dir.join("index.json"), self.index_json(ref_name)).unwrap();
    }

    /// A `docker save` archive (the classic layout: `<id>/layer.tar`, `<id>.json`,
    /// `manifest.json` last).
    pub(crate) fn docker_archive(&self, repo_tags: &[&str]) -> Vec<u8> {
        let id = Digest::of(&self.config);
        let mut files = Vec::new();
        let mut layer_paths = Vec::new();
        for (i, l) in self.layers.iter().enumerate() {
            let p = format!("{:064x}/layer.tar", i + 1);
            files.push((format!("{:064x}/VERSION", i + 1), b"1.0".to_vec()));
            files.push((p.clone(), l.clone()));
            layer_paths.push(p);
        }
        files.push((format!("{}.json", id.hex()), self.config.clone()));
        let manifest = json!([{"Config": format!("{}.json", id.hex()), "RepoTags": repo_tags, "Layers": layer_paths}]);
        files.push(("manifest.json".into(), serde_json::to_vec(&manifest).unwrap()));
        archive(&files)
    }
}

/// A tar of regular files.
pub(crate) fn archive(files: &[(String, Vec<u8>)]) -> Vec<u8> {
    let mut b = tar::Builder::new(Vec::new());
    for (path, data) in files {
        let mut h = tar::Header::new_gnu();
        h.set_size(data.len() as u64);
        h.set_mode(0o644);
        h.set_entry_type(tar::EntryType::Regular);
        h.set_path(path).unwrap();
        h.set_cksum();
        b.append(&h, &data[..]).unwrap();
    }
    b.into_inner().unwrap()
}

/// A small, valid layer: `/bin/hello`, `/etc/motd`.
pub(crate) fn simple_layer(motd: &str) -> Vec<u8> {
    Layer::new()
        .dir("bin", 0o755)
        .entry("bin/hello", tar::EntryType::Regular, 0o755, (0, 0), b"#!/bin/sh\necho hello\n", None)
        .dir("etc", 0o755)
        .file("etc/motd", motd.as_bytes())
        .build()
}
