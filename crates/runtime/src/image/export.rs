//! `skiff image export`: images as an OCI archive — a tar of an OCI layout (`oci-layout`,
//! `index.json`, `blobs/sha256/…`) that skopeo, umoci, containerd and podman read — with a
//! docker-style `manifest.json` too, so `docker load` takes it as well (as Docker 25+ writes).
//!
//! Each name of an exported image gets its own `index.json` entry, annotated like
//! containerd does (`io.containerd.image.name` = full name, `org.opencontainers.image.ref.name`
//! = tag), so `skopeo copy oci-archive:x.tar:<tag>` finds it.

use std::collections::BTreeSet;
use std::fs::File;
use std::io::{BufReader, Write};

use serde_json::json;

use super::digest::Digest;
use super::reference;
use super::store::{ImageStore, resolve};
use super::{ImageError, Result};

const OCI_LAYOUT: &[u8] = br#"{"imageLayoutVersion":"1.0.0"}"#;

impl ImageStore {
    /// Write the images `references` name as an OCI archive to `out`.
    pub fn export(&self, references: &[&str], out: impl Write) -> Result<()> {
        let md = self.load()?;
        let mut descriptors = Vec::new();
        let mut docker = Vec::new();
        let mut blobs: BTreeSet<Digest> = BTreeSet::new();
        for r in references {
            let (id, matched) = resolve(&md, r)?;
            let rec = md.images.get(&id).ok_or_else(|| ImageError::NotFound(r.to_string()))?;
            // By name: that name; by id: every tag of the image.
            let names: Vec<String> = match matched {
                Some(k) if reference::is_tag_key(&k) => vec![k],
                _ => md
                    .names
                    .iter()
                    .filter(|(k, n)| n.image == id && reference::is_tag_key(k))
                    .map(|(k, _)| k.clone())
                    .collect(),
            };
            let manifest_desc =
                json!({"mediaType": rec.manifest_media_type, "digest": rec.manifest, "size": rec.manifest_size});
            if names.is_empty() {
                descriptors.push(manifest_desc.clone());
            }
            for n in &names {
                let mut d = manifest_desc.clone();
                let tag = n.rsplit_once(':').map(|(_, t)| t).unwrap_or("latest");
                d["annotations"] = json!({"io.containerd.image.name": n, "org.opencontainers.image.ref.name": tag});
                descriptors.push(d);
            }
            blobs.insert(Digest::parse(&rec.manifest)?);
            blobs.insert(Digest::parse(&id)?);
            let mut layer_paths = Vec::new();
            for l in &rec.layers {
                let d = Digest::parse(&l.blob)?;
                layer_paths.push(format!("blobs/sha256/{}", d.hex()));
                blobs.insert(d);
            }
            docker.push(json!({
                "Config": format!("blobs/sha256/{}", Digest::parse(&id)?.hex()),
                "RepoTags": names,
                "Layers": layer_paths,
            }));
        }
        // Open every blob before writing anything: an open file survives a concurrent
        // removal, so the archive is complete or the export fails up front.
        let mut files = Vec::new();
        for d in &blobs {
            let p = self.blob_path(d);
            let f = File::open(&p).map_err(|_| ImageError::ContentVanished(format!("blob {d}")))?;
            let len = f.metadata().map_err(ImageError::io(format!("reading {}", p.display())))?.len();
            files.push((d, f, len));
        }
        let index = json!({"schemaVersion": 2, "mediaType": super::oci::OCI_INDEX, "manifests": descriptors});
        let write_err = ImageError::io;
        let mut tar = tar::Builder::new(out);
        append(&mut tar, "oci-layout", OCI_LAYOUT, OCI_LAYOUT.len() as u64)
            .map_err(write_err("writing the archive"))?;
        for (d, f, len) in files {
            append(&mut tar, &format!("blobs/sha256/{}", d.hex()), BufReader::with_capacity(1 << 20, f), len)
                .map_err(write_err("writing the archive"))?;
        }
        let index = serde_json::to_vec(&index).map_err(|e| ImageError::invalid("index.json", e))?;
        append(&mut tar, "index.json", index.as_slice(), index.len() as u64)
            .map_err(write_err("writing the archive"))?;
        let docker = serde_json::to_vec(&docker).map_err(|e| ImageError::invalid("manifest.json", e))?;
        append(&mut tar, "manifest.json", docker.as_slice(), docker.len() as u64)
            .map_err(write_err("writing the archive"))?;
        tar.into_inner().and_then(|mut w| w.flush()).map_err(write_err("writing the archive"))
    }
}

/// A regular file entry with fixed metadata (reproducible archives).
fn append<W: Write>(tar: &mut tar::Builder<W>, path: &str, data: impl std::io::Read, len: u64) -> std::io::Result<()> {
    let mut h = tar::Header::new_ustar();
    h.set_entry_type(tar::EntryType::Regular);
    h.set_mode(0o644);
    h.set_size(len);
    h.set_mtime(0);
    h.set_uid(0);
    h.set_gid(0);
    tar.append_data(&mut h, path, data)
}
