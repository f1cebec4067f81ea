//! The store proper: layout, locking, the metadata file, committing staged content, lookup,
//! removal, pins, prune and disk-usage GC. See the module docs of [`super`] for the layout and
//! the concurrency rules.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::fs::{self, File, OpenOptions};
use std::io::{Read, Write};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use rustix::fs::FlockOperation;
use serde::{Deserialize, Serialize};

use super::digest::{Digest, HashingWriter};
use super::oci::{self, Compression, ImageConfig, RunConfig};
use super::reference::{self, Name};
use super::unpack;
use super::{ImageError, Result};
use crate::cri::Image;

const METADATA: &str = "metadata.json";

/// The image store of one data dir. Cheap to clone; every method does blocking file I/O
/// (call it from `spawn_blocking` in async code), except [`ImageStore::pull`].
#[derive(Clone, Debug)]
pub struct ImageStore {
    root: Arc<PathBuf>,
}

/// Everything the store knows, in `metadata.json`.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub(crate) struct Metadata {
    /// By image id (config digest).
    #[serde(default)]
    pub images: BTreeMap<String, ImageRecord>,
    /// By normalized name (`repo:tag` or `repo@digest`).
    #[serde(default)]
    pub names: BTreeMap<String, NameRecord>,
    /// Unpacked layers by diffid.
    #[serde(default)]
    pub layers: BTreeMap<String, LayerRecord>,
    /// Owner (a container id, …) → image id; pinned images are never removed.
    #[serde(default)]
    pub pins: BTreeMap<String, String>,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct ImageRecord {
    pub manifest: String,
    pub manifest_media_type: String,
    pub manifest_size: u64,
    pub config_size: u64,
    /// Bottom-most first, as in the manifest.
    pub layers: Vec<LayerRef>,
    pub platform: String,
    #[serde(default)]
    pub created: Option<String>,
    /// How to run it, copied from the config so listing needs no blob reads.
    #[serde(default)]
    pub run: RunConfig,
    /// Unix seconds: first committed, last pulled/imported/pinned (GC evicts the least
    /// recently used first).
    pub added: i64,
    pub last_used: i64,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct LayerRef {
    pub diff_id: String,
    pub blob: String,
    pub media_type: String,
    pub size: u64,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub(crate) struct NameRecord {
    pub image: String,
    /// What the name resolved to when stored: an index or a manifest digest (the
    /// `repo@digest` of `repoDigests`).
    pub target: String,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub(crate) struct LayerRecord {
    /// Bytes of regular files in the unpacked layer.
    pub size: u64,
}

/// `skiff image inspect`: everything about one image.
#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ImageDetails {
    pub id: String,
    pub repo_tags: Vec<String>,
    pub repo_digests: Vec<String>,
    pub manifest: String,
    pub manifest_media_type: String,
    pub platform: String,
    pub created: Option<String>,
    /// Manifest, config and layer blobs, as stored (compressed).
    pub size: u64,
    /// Bytes of files in the unpacked layers.
    pub unpacked_size: u64,
    pub layers: Vec<LayerDetails>,
    /// The image config as stored.
    pub config: serde_json::Value,
    /// Owners pinning the image.
    pub pinned_by: Vec<String>,
    pub added: i64,
    pub last_used: i64,
}

/// One layer of an image, bottom-most first in [`ImageDetails::layers`].
#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct LayerDetails {
    pub diff_id: String,
    pub blob: String,
    pub media_type: String,
    pub size: u64,
    pub unpacked_size: u64,
    /// The unpacked directory (an overlayfs lower dir).
    pub path: PathBuf,
}

/// What [`ImageStore::remove`] did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Removal {
    /// The image has other tags: only this name went.
    Untagged(String),
    /// The image and its names went; `freed` bytes of content with them.
    Deleted { id: String, freed: u64 },
}

/// What [`ImageStore::prune`] removed.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PruneReport {
    /// Dangling images: no name left, not pinned.
    pub images: Vec<String>,
    pub blobs: usize,
    pub layers: usize,
    /// Scratch dirs of operations that died.
    pub temp_dirs: usize,
    pub freed: u64,
}

/// What [`ImageStore::gc`] did.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct GcReport {
    /// Disk usage of the store's file system before, in percent.
    pub usage_pct: u64,
    /// Bytes GC wanted to free (0 below the high threshold).
    pub wanted: u64,
    pub freed: u64,
    pub removed: Vec<String>,
}

/// The run configuration of an image made with [`ImageBuilder`].
#[derive(Clone, Debug, Default)]
pub struct NewImageConfig {
    /// Names to give the image (`repo:tag`, normalized like any reference).
    pub names: Vec<String>,
    pub entrypoint: Option<Vec<String>>,
    pub cmd: Option<Vec<String>>,
    pub env: Vec<String>,
    pub working_dir: Option<String>,
    pub user: Option<String>,
}

/// Held while the store is locked (the flock goes with the file).
pub(crate) struct StoreLock(#[allow(dead_code)] File);

/// A scratch dir of one operation: `tmp/<name>/` plus `tmp/<name>.lock`, locked for the
/// operation's life so `prune` can tell live operations from dead ones. Removed on drop.
pub(crate) struct TempArea {
    pub dir: PathBuf,
    lock_path: PathBuf,
    _lock: File,
}

impl Drop for TempArea {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.dir);
        let _ = fs::remove_file(&self.lock_path);
    }
}

/// Content an operation prepared in its scratch dir, moved into the store by
/// [`ImageStore::commit`].
pub(crate) struct Staged {
    pub area: TempArea,
    /// Verified blobs, by digest.
    pub blobs: HashMap<Digest, PathBuf>,
    /// Unpacked (and diffid-verified) layers: diffid → (dir, size).
    pub layers: HashMap<Digest, (PathBuf, u64)>,
}

impl Staged {
    /// Write a small blob (manifest, config) into the scratch dir.
    pub(crate) fn put_bytes(&mut self, bytes: &[u8]) -> Result<Digest> {
        let d = Digest::of(bytes);
        if !self.blobs.contains_key(&d) {
            let p = self.area.dir.join(format!("blob-{}", d.hex()));
            fs::write(&p, bytes).map_err(ImageError::io(format!("writing {}", p.display())))?;
            self.blobs.insert(d.clone(), p);
        }
        Ok(d)
    }
}

/// An image ready to be committed: its documents are staged or already stored.
pub(crate) struct NewImage {
    pub manifest: Digest,
    pub manifest_media_type: String,
    pub manifest_size: u64,
    pub config: Digest,
    pub config_size: u64,
    pub cfg: ImageConfig,
    pub layers: Vec<LayerRef>,
    /// Names (normalized keys) and what each resolved to.
    pub names: Vec<(String, Digest)>,
}

/// Disk usage of the file system holding the store.
#[derive(Clone, Copy, Debug)]
pub(crate) struct DiskUsage {
    pub capacity: u64,
    pub available: u64,
}

fn now() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_secs() as i64).unwrap_or(0)
}

impl ImageStore {
    /// Open (creating if needed) the store of `data_dir`, at `<data_dir>/images`.
    pub fn open(data_dir: &Path) -> Result<ImageStore> {
        let root = data_dir.join("images");
        let mut b = fs::DirBuilder::new();
        b.recursive(true).mode(0o700);
        for d in [root.clone(), root.join("blobs/sha256"), root.join("layers"), root.join("tmp")] {
            b.create(&d).map_err(ImageError::io(format!("creating {}", d.display())))?;
        }
        Ok(ImageStore { root: Arc::new(root) })
    }

    /// `<data-dir>/images`.
    pub fn dir(&self) -> &Path {
        &self.root
    }

    pub(crate) fn blob_path(&self, d: &Digest) -> PathBuf {
        self.root.join("blobs/sha256").join(d.hex())
    }

    pub(crate) fn layer_path(&self, diff_id: &Digest) -> PathBuf {
        self.root.join("layers").join(diff_id.hex())
    }

    fn layer_path_str(&self, diff_id: &str) -> PathBuf {
        self.root.join("layers").join(diff_id.trim_start_matches("sha256:"))
    }

    pub(crate) fn lock(&self) -> Result<StoreLock> {
        let p = self.root.join("lock");
        let f = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .mode(0o600)
            .open(&p)
            .map_err(ImageError::io(format!("opening {}", p.display())))?;
        loop {
            match rustix::fs::flock(&f, FlockOperation::LockExclusive) {
                Ok(()) => return Ok(StoreLock(f)),
                Err(rustix::io::Errno::INTR) => continue,
                Err(e) => return Err(ImageError::Io { context: format!("locking {}", p.display()), source: e.into() }),
            }
        }
    }

    pub(crate) fn temp_area(&self) -> Result<TempArea> {
        let name = format!("{}-{:016x}", std::process::id(), rand::random::<u64>());
        let tmp = self.root.join("tmp");
        let lock_path = tmp.join(format!("{name}.lock"));
        let lock = OpenOptions::new()
            .create_new(true)
            .write(true)
            .mode(0o600)
            .open(&lock_path)
            .map_err(ImageError::io(format!("creating {}", lock_path.display())))?;
        rustix::fs::flock(&lock, FlockOperation::NonBlockingLockExclusive)
            .map_err(|e| ImageError::Io { context: format!("locking {}", lock_path.display()), source: e.into() })?;
        let dir = tmp.join(name);
        fs::DirBuilder::new()
            .mode(0o700)
            .create(&dir)
            .map_err(ImageError::io(format!("creating {}", dir.display())))?;
        Ok(TempArea { dir, lock_path, _lock: lock })
    }

    pub(crate) fn stage(&self) -> Result<Staged> {
        Ok(Staged { area: self.temp_area()?, blobs: HashMap::new(), layers: HashMap::new() })
    }

    /// The metadata as last committed (no lock needed: it is replaced by rename).
    pub(crate) fn load(&self) -> Result<Metadata> {
        let p = self.root.join(METADATA);
        match fs::read(&p) {
            Ok(b) => serde_json::from_slice(&b).map_err(|e| ImageError::invalid(p.display().to_string(), e)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Metadata::default()),
            Err(e) => Err(ImageError::Io { context: format!("reading {}", p.display()), source: e }),
        }
    }

    /// Replace the metadata atomically and durably. Call with the lock held.
    pub(crate) fn save(&self, md: &Metadata, _lock: &StoreLock) -> Result<()> {
        let p = self.root.join(METADATA);
        let tmp = self.root.join(format!("{METADATA}.tmp-{}", std::process::id()));
        let bytes = serde_json::to_vec_pretty(md).map_err(|e| ImageError::invalid("metadata", e))?;
        let write = || -> std::io::Result<()> {
            let mut f = File::create(&tmp)?;
            f.write_all(&bytes)?;
            f.sync_all()?;
            fs::rename(&tmp, &p)?;
            File::open(&*self.root)?.sync_all()
        };
        write().map_err(ImageError::io(format!("writing {}", p.display())))
    }

    /// Move staged content into place and record the images (the last step of import, pull
    /// and build). Content already in the store is reused; content that was expected in the
    /// store but is gone (removed by another process since) is [`ImageError::ContentVanished`],
    /// except unpacked layers, which are re-made from their blob.
    pub(crate) fn commit(&self, staged: &mut Staged, images: &[NewImage]) -> Result<Vec<Image>> {
        let lock = self.lock()?;
        let mut new_layers: Vec<(String, u64)> = Vec::new();
        for img in images {
            let mut blobs = vec![&img.manifest, &img.config];
            blobs.extend(img.names.iter().map(|(_, t)| t));
            let layer_blobs: Vec<Digest> = img.layers.iter().map(|l| Digest::parse(&l.blob)).collect::<Result<_>>()?;
            blobs.extend(layer_blobs.iter());
            for d in blobs {
                self.place_blob(staged, d)?;
            }
            for (l, blob) in img.layers.iter().zip(&layer_blobs) {
                let diff_id = Digest::parse(&l.diff_id)?;
                let dest = self.layer_path(&diff_id);
                if dest.exists() {
                    continue;
                }
                let (dir, size) = match staged.layers.remove(&diff_id) {
                    Some(s) => s,
                    None => {
                        let compression =
                            Compression::of_media_type(&l.media_type).ok_or_else(|| ImageError::UnknownMediaType {
                                what: format!("layer {}", l.blob),
                                media_type: l.media_type.clone(),
                            })?;
                        let dir = staged.area.dir.join(format!("relayer-{}", diff_id.hex()));
                        let u = unpack::unpack_layer(&self.blob_path(blob), compression, &dir, Some(&diff_id), None)
                            .map_err(|source| ImageError::Unpack { layer: l.blob.clone(), source })?;
                        (dir, u.size)
                    }
                };
                fs::rename(&dir, &dest).map_err(ImageError::io(format!("moving layer into {}", dest.display())))?;
                new_layers.push((diff_id.to_string(), size));
            }
        }
        // Content must be on disk before metadata that points to it.
        let root = File::open(&*self.root).map_err(ImageError::io("opening the store"))?;
        rustix::fs::syncfs(&root)
            .map_err(|e| ImageError::Io { context: "syncing the store".into(), source: e.into() })?;

        let mut md = self.load()?;
        for (diff_id, size) in new_layers {
            md.layers.insert(diff_id, LayerRecord { size });
        }
        let t = now();
        let mut ids = Vec::new();
        for img in images {
            let id = img.config.to_string();
            let (os, arch) = (img.cfg.os.clone(), img.cfg.architecture.clone());
            let record = ImageRecord {
                manifest: img.manifest.to_string(),
                manifest_media_type: img.manifest_media_type.clone(),
                manifest_size: img.manifest_size,
                config_size: img.config_size,
                layers: img.layers.clone(),
                platform: match &img.cfg.variant {
                    Some(v) => format!("{os}/{arch}/{v}"),
                    None => format!("{os}/{arch}"),
                },
                created: img.cfg.created.clone(),
                run: img.cfg.config.clone().unwrap_or_default(),
                added: md.images.get(&id).map_or(t, |r| r.added),
                last_used: t,
            };
            md.images.insert(id.clone(), record);
            for (key, target) in &img.names {
                md.names.insert(key.clone(), NameRecord { image: id.clone(), target: target.to_string() });
            }
            ids.push(id);
        }
        self.save(&md, &lock)?;
        Ok(ids.iter().filter_map(|id| md.images.get(id).map(|r| to_image(&md, id, r))).collect())
    }

    fn place_blob(&self, staged: &mut Staged, d: &Digest) -> Result<()> {
        let dest = self.blob_path(d);
        if dest.exists() {
            return Ok(());
        }
        match staged.blobs.remove(d) {
            Some(p) => fs::rename(&p, &dest).map_err(ImageError::io(format!("moving blob into {}", dest.display()))),
            None => Err(ImageError::ContentVanished(format!("blob {d}"))),
        }
    }

    /// All images, sorted by their first name (untagged ones last, by id).
    pub fn list(&self) -> Result<Vec<Image>> {
        let md = self.load()?;
        let mut out: Vec<Image> = md.images.iter().map(|(id, r)| to_image(&md, id, r)).collect();
        out.sort_by(|a, b| {
            (a.repo_tags.is_empty(), &a.repo_tags, &a.id).cmp(&(b.repo_tags.is_empty(), &b.repo_tags, &b.id))
        });
        Ok(out)
    }

    /// The image a reference names, if present: a name (`busybox`, `repo:tag`,
    /// `repo@sha256:…`), an image id (`sha256:…`) or a unique id prefix.
    pub fn status(&self, reference: &str) -> Result<Option<Image>> {
        let md = self.load()?;
        match resolve(&md, reference) {
            Ok((id, _)) => Ok(md.images.get(&id).map(|r| to_image(&md, &id, r))),
            Err(ImageError::NotFound(_)) => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// The image id a reference names.
    pub fn resolve(&self, reference: &str) -> Result<String> {
        resolve(&self.load()?, reference).map(|(id, _)| id)
    }

    pub fn inspect(&self, reference: &str) -> Result<ImageDetails> {
        let md = self.load()?;
        let (id, _) = resolve(&md, reference)?;
        let rec = md.images.get(&id).ok_or_else(|| ImageError::NotFound(reference.to_string()))?;
        let cfg_path = self.blob_path(&Digest::parse(&id)?);
        let config = fs::read(&cfg_path)
            .map_err(ImageError::io(format!("reading {}", cfg_path.display())))
            .and_then(|b| serde_json::from_slice(&b).map_err(|e| ImageError::invalid("image config", e)))?;
        let img = to_image(&md, &id, rec);
        let layers: Vec<LayerDetails> = rec
            .layers
            .iter()
            .map(|l| LayerDetails {
                diff_id: l.diff_id.clone(),
                blob: l.blob.clone(),
                media_type: l.media_type.clone(),
                size: l.size,
                unpacked_size: md.layers.get(&l.diff_id).map_or(0, |r| r.size),
                path: self.layer_path_str(&l.diff_id),
            })
            .collect();
        Ok(ImageDetails {
            id: id.clone(),
            repo_tags: img.repo_tags,
            repo_digests: img.repo_digests,
            manifest: rec.manifest.clone(),
            manifest_media_type: rec.manifest_media_type.clone(),
            platform: rec.platform.clone(),
            created: rec.created.clone(),
            size: img.size,
            unpacked_size: layers.iter().map(|l| l.unpacked_size).sum(),
            layers,
            config,
            pinned_by: md.pins.iter().filter(|(_, i)| **i == id).map(|(o, _)| o.clone()).collect(),
            added: rec.added,
            last_used: rec.last_used,
        })
    }

    /// The overlayfs lower dirs of an image, top-most first (`lowerdir=` order). A layer
    /// that appears twice is listed once, at its top-most place (same file system result).
    /// A layer dir that has gone missing is unpacked again from its blob.
    pub fn rootfs_layers(&self, image: &str) -> Result<Vec<PathBuf>> {
        let md = self.load()?;
        let (id, _) = resolve(&md, image)?;
        let rec = md.images.get(&id).ok_or_else(|| ImageError::NotFound(image.to_string()))?;
        let mut seen = HashSet::new();
        let mut out = Vec::new();
        let mut missing = false;
        for l in rec.layers.iter().rev() {
            if seen.insert(&l.diff_id) {
                let p = self.layer_path_str(&l.diff_id);
                missing |= !p.is_dir();
                out.push(p);
            }
        }
        if missing {
            self.repair_layers(&id, rec)?;
        }
        Ok(out)
    }

    fn repair_layers(&self, id: &str, rec: &ImageRecord) -> Result<()> {
        tracing::warn!(image = id, "unpacked layers missing; unpacking them again");
        let mut staged = self.stage()?;
        let img = NewImage {
            manifest: Digest::parse(&rec.manifest)?,
            manifest_media_type: rec.manifest_media_type.clone(),
            manifest_size: rec.manifest_size,
            config: Digest::parse(id)?,
            config_size: rec.config_size,
            cfg: self.read_config(id, rec.layers.len())?,
            layers: rec.layers.clone(),
            names: Vec::new(),
        };
        self.commit(&mut staged, &[img]).map(|_| ())
    }

    pub(crate) fn read_config(&self, id: &str, layers: usize) -> Result<ImageConfig> {
        let p = self.blob_path(&Digest::parse(id)?);
        let bytes = fs::read(&p).map_err(|_| ImageError::ContentVanished(format!("config {id}")))?;
        oci::parse_config(&bytes, layers)
    }

    /// Give an image another name (`skiff image tag`).
    pub fn tag(&self, source: &str, target: &str) -> Result<()> {
        let name = Name::parse(target)?;
        if name.digest.is_some() {
            return Err(ImageError::InvalidReference {
                reference: target.into(),
                reason: "a tag cannot contain a digest".into(),
            });
        }
        let lock = self.lock()?;
        let mut md = self.load()?;
        let (id, _) = resolve(&md, source)?;
        let target_digest = md.images.get(&id).map(|r| r.manifest.clone()).unwrap_or_default();
        md.names.insert(name.key(), NameRecord { image: id, target: target_digest });
        self.save(&md, &lock)
    }

    /// Remove a name, or the image. A tag of an image with other tags is only untagged (like
    /// `docker rmi`); removing the last tag, or by id, removes the image with all its names,
    /// then every blob and layer no other image uses. A pinned image is not removed.
    pub fn remove(&self, reference: &str) -> Result<Removal> {
        let lock = self.lock()?;
        let mut md = self.load()?;
        let (id, matched) = resolve(&md, reference)?;
        if let Some(key) = matched {
            let other_tags =
                md.names.iter().filter(|(k, n)| n.image == id && **k != key && reference::is_tag_key(k)).count();
            if other_tags > 0 {
                md.names.remove(&key);
                self.save(&md, &lock)?;
                return Ok(Removal::Untagged(key));
            }
        }
        if let Some((owner, _)) = md.pins.iter().find(|(_, i)| **i == id) {
            return Err(ImageError::InUse { image: id, owner: owner.clone() });
        }
        drop_image(&mut md, &id);
        let freed = self.sweep_after_save(md, &lock)?.freed;
        Ok(Removal::Deleted { id, freed })
    }

    /// Remove dangling images (no names, not pinned), content no image references, and
    /// scratch dirs of operations that died.
    pub fn prune(&self) -> Result<PruneReport> {
        let lock = self.lock()?;
        let mut md = self.load()?;
        let pinned: HashSet<&String> = md.pins.values().collect();
        let named: HashSet<&String> = md.names.values().map(|n| &n.image).collect();
        let dangling: Vec<String> =
            md.images.keys().filter(|id| !named.contains(id) && !pinned.contains(id)).cloned().collect();
        for id in &dangling {
            drop_image(&mut md, id);
        }
        let mut report = self.sweep_after_save(md, &lock)?;
        report.images = dangling;
        report.temp_dirs = self.sweep_temp()?;
        Ok(report)
    }

    /// Drop metadata entries of layers no image uses, save, then delete every blob and layer
    /// dir the metadata does not reference (the deletion comes second: a crash in between
    /// leaves orphans for the next prune, never dangling references).
    fn sweep_after_save(&self, mut md: Metadata, lock: &StoreLock) -> Result<PruneReport> {
        let (blobs, layers) = referenced(&md);
        let old_sizes: HashMap<String, u64> =
            md.layers.iter().map(|(d, r)| (d.trim_start_matches("sha256:").to_string(), r.size)).collect();
        md.layers.retain(|d, _| layers.contains(d.trim_start_matches("sha256:")));
        self.save(&md, lock)?;

        let mut report = PruneReport::default();
        let blob_dir = self.root.join("blobs/sha256");
        for e in fs::read_dir(&blob_dir).map_err(ImageError::io(format!("listing {}", blob_dir.display())))? {
            let e = e.map_err(ImageError::io("listing blobs"))?;
            let name = e.file_name().to_string_lossy().into_owned();
            if !blobs.contains(&name) {
                let len = e.metadata().map(|m| m.len()).unwrap_or(0);
                if fs::remove_file(e.path()).is_ok() {
                    report.blobs += 1;
                    report.freed += len;
                }
            }
        }
        let layer_dir = self.root.join("layers");
        let mut trash: Option<TempArea> = None;
        for e in fs::read_dir(&layer_dir).map_err(ImageError::io(format!("listing {}", layer_dir.display())))? {
            let e = e.map_err(ImageError::io("listing layers"))?;
            let name = e.file_name().to_string_lossy().into_owned();
            if layers.contains(&name) {
                continue;
            }
            // Rename first so the layer disappears at once, then delete at leisure.
            if trash.is_none() {
                trash = Some(self.temp_area()?);
            }
            let Some(t) = &trash else { continue };
            let dest = t.dir.join(&name);
            if fs::rename(e.path(), &dest).is_ok() {
                report.layers += 1;
                report.freed += old_sizes.get(&name).copied().unwrap_or(0);
            }
        }
        drop(trash);
        Ok(report)
    }

    /// Remove scratch dirs (and lock files) whose operation is gone: not locked, and older
    /// than a minute (an operation creates its lock file a moment before it locks it).
    fn sweep_temp(&self) -> Result<usize> {
        let tmp = self.root.join("tmp");
        let mut removed = 0;
        for e in fs::read_dir(&tmp).map_err(ImageError::io(format!("listing {}", tmp.display())))? {
            let Ok(e) = e else { continue };
            let path = e.path();
            let young = e
                .metadata()
                .and_then(|m| m.modified())
                .is_ok_and(|t| t.elapsed().is_ok_and(|age| age < std::time::Duration::from_secs(60)));
            if young {
                continue;
            }
            let name = e.file_name().to_string_lossy().into_owned();
            let (base, is_lock) = match name.strip_suffix(".lock") {
                Some(b) => (b.to_string(), true),
                None => (name.clone(), false),
            };
            let lock_path = tmp.join(format!("{base}.lock"));
            let alive = match File::open(&lock_path) {
                Ok(f) => rustix::fs::flock(&f, FlockOperation::NonBlockingLockShared).is_err(),
                Err(_) => false,
            };
            if alive {
                continue;
            }
            let ok = if is_lock {
                !tmp.join(&base).exists() && fs::remove_file(&path).is_ok()
            } else {
                let ok = fs::remove_dir_all(&path).is_ok();
                let _ = fs::remove_file(&lock_path);
                ok
            };
            removed += usize::from(ok && !is_lock);
        }
        Ok(removed)
    }

    /// Record that `owner` (a container) uses the image, so no removal or GC takes it; also
    /// marks it used now for GC's least-recently-used order. Returns the image id.
    pub fn pin(&self, image: &str, owner: &str) -> Result<String> {
        let lock = self.lock()?;
        let mut md = self.load()?;
        let (id, _) = resolve(&md, image)?;
        md.pins.insert(owner.to_string(), id.clone());
        if let Some(r) = md.images.get_mut(&id) {
            r.last_used = now();
        }
        self.save(&md, &lock)?;
        Ok(id)
    }

    /// Release `owner`'s pin; false if it had none.
    pub fn unpin(&self, owner: &str) -> Result<bool> {
        let lock = self.lock()?;
        let mut md = self.load()?;
        let had = md.pins.remove(owner).is_some();
        if had {
            self.save(&md, &lock)?;
        }
        Ok(had)
    }

    /// Every pin, owner → image id (the runtime reconciles them with its containers after a
    /// restart).
    pub fn pins(&self) -> Result<BTreeMap<String, String>> {
        Ok(self.load()?.pins)
    }

    /// Image GC by disk usage, like the kubelet's: when the store's file system is at least
    /// `high_pct` full, remove images — least recently used first, never one in `in_use` (ids
    /// or names) or pinned — until usage would drop to `low_pct`.
    pub fn gc(&self, high_pct: u8, low_pct: u8, in_use: &HashSet<String>) -> Result<GcReport> {
        let st = rustix::fs::statvfs(&*self.root)
            .map_err(|e| ImageError::Io { context: "statvfs of the image store".into(), source: e.into() })?;
        let usage = DiskUsage { capacity: st.f_blocks * st.f_frsize, available: st.f_bavail * st.f_frsize };
        self.gc_with_usage(usage, high_pct, low_pct, in_use)
    }

    pub(crate) fn gc_with_usage(
        &self,
        usage: DiskUsage,
        high_pct: u8,
        low_pct: u8,
        in_use: &HashSet<String>,
    ) -> Result<GcReport> {
        if high_pct > 100 || low_pct > high_pct {
            return Err(ImageError::invalid(
                "gc thresholds",
                format!("need low ({low_pct}) <= high ({high_pct}) <= 100"),
            ));
        }
        if usage.capacity == 0 {
            return Ok(GcReport::default());
        }
        let used = usage.capacity.saturating_sub(usage.available);
        let usage_pct = used * 100 / usage.capacity;
        let mut report = GcReport { usage_pct, ..GcReport::default() };
        if usage_pct < u64::from(high_pct) {
            return Ok(report);
        }
        report.wanted = used.saturating_sub(usage.capacity / 100 * u64::from(low_pct));

        let lock = self.lock()?;
        let mut md = self.load()?;
        let mut keep: HashSet<String> = md.pins.values().cloned().collect();
        for r in in_use {
            match resolve(&md, r) {
                Ok((id, _)) => {
                    keep.insert(id);
                }
                Err(_) => {
                    keep.insert(r.clone());
                }
            }
        }
        let mut candidates: Vec<(i64, i64, String)> = md
            .images
            .iter()
            .filter(|(id, _)| !keep.contains(*id))
            .map(|(id, r)| (r.last_used, r.added, id.clone()))
            .collect();
        candidates.sort();
        let mut freed = 0;
        for (_, _, id) in candidates {
            if freed >= report.wanted {
                break;
            }
            let before = content_sizes(&md);
            drop_image(&mut md, &id);
            let after = content_sizes(&md);
            freed += before.iter().filter(|(k, _)| !after.contains_key(*k)).map(|(_, v)| v).sum::<u64>();
            report.removed.push(id);
        }
        if !report.removed.is_empty() {
            report.freed = self.sweep_after_save(md, &lock)?.freed;
        }
        Ok(report)
    }

    /// Start building an image from layers added one by one (for `skiff build`).
    pub fn builder(&self) -> Result<ImageBuilder> {
        Ok(ImageBuilder { store: self.clone(), staged: self.stage()?, layers: Vec::new(), base: None })
    }
}

/// Remove an image and its names from the metadata.
fn drop_image(md: &mut Metadata, id: &str) {
    md.images.remove(id);
    md.names.retain(|_, n| n.image != id);
}

/// Hex names of referenced blobs and layer dirs.
fn referenced(md: &Metadata) -> (HashSet<String>, HashSet<String>) {
    let hex = |s: &str| s.trim_start_matches("sha256:").to_string();
    let mut blobs = HashSet::new();
    let mut layers = HashSet::new();
    for (id, r) in &md.images {
        blobs.insert(hex(id));
        blobs.insert(hex(&r.manifest));
        for l in &r.layers {
            blobs.insert(hex(&l.blob));
            layers.insert(hex(&l.diff_id));
        }
    }
    for n in md.names.values() {
        blobs.insert(hex(&n.target));
    }
    (blobs, layers)
}

/// Sizes of referenced content (for GC's estimate of what a removal frees).
fn content_sizes(md: &Metadata) -> HashMap<String, u64> {
    let mut out = HashMap::new();
    for (id, r) in &md.images {
        out.insert(id.clone(), r.config_size);
        out.insert(r.manifest.clone(), r.manifest_size);
        for l in &r.layers {
            out.insert(l.blob.clone(), l.size);
            out.insert(format!("layer:{}", l.diff_id), md.layers.get(&l.diff_id).map_or(0, |x| x.size));
        }
    }
    out
}

/// Resolve a reference to an image id, and the name key it matched (if by name).
pub(crate) fn resolve(md: &Metadata, reference: &str) -> Result<(String, Option<String>)> {
    let not_found = || ImageError::NotFound(reference.to_string());
    if let Some(hex) = reference.strip_prefix("sha256:") {
        if md.images.contains_key(reference) {
            return Ok((reference.to_string(), None));
        }
        // A manifest digest names its image too.
        if let Some((id, _)) = md.images.iter().find(|(_, r)| r.manifest == reference) {
            return Ok((id.clone(), None));
        }
        return id_prefix(md, hex).ok_or_else(not_found)?;
    }
    let parsed = Name::parse(reference);
    if let Ok(name) = &parsed {
        let key = name.key();
        if let Some(n) = md.names.get(&key) {
            return Ok((n.image.clone(), Some(key)));
        }
        if let Some(d) = &name.digest {
            let repo = name.repo();
            let by_target = md.names.iter().find(|(k, n)| n.target == d.as_str() && reference::repo_of_key(k) == repo);
            if let Some((_, n)) = by_target {
                return Ok((n.image.clone(), None));
            }
        }
    }
    if reference.len() >= 3
        && reference.bytes().all(|b| b.is_ascii_hexdigit())
        && let Some(r) = id_prefix(md, reference)
    {
        return r;
    }
    match parsed {
        Ok(_) => Err(not_found()),
        Err(e) => Err(e),
    }
}

fn id_prefix(md: &Metadata, prefix: &str) -> Option<Result<(String, Option<String>)>> {
    let mut hits = md.images.keys().filter(|id| id["sha256:".len()..].starts_with(prefix));
    let first = hits.next()?;
    if hits.next().is_some() {
        return Some(Err(ImageError::Ambiguous(prefix.to_string())));
    }
    Some(Ok((first.clone(), None)))
}

/// The CRI view of an image record.
fn to_image(md: &Metadata, id: &str, r: &ImageRecord) -> Image {
    let names: Vec<(&String, &NameRecord)> = md.names.iter().filter(|(_, n)| n.image == id).collect();
    let repo_tags = names.iter().filter(|(k, _)| reference::is_tag_key(k)).map(|(k, _)| (*k).clone()).collect();
    let repo_digests: BTreeSet<String> =
        names.iter().map(|(k, n)| format!("{}@{}", reference::repo_of_key(k), n.target)).collect();
    let run = &r.run;
    Image {
        id: id.to_string(),
        repo_tags,
        repo_digests: repo_digests.into_iter().collect(),
        size: r.manifest_size + r.config_size + r.layers.iter().map(|l| l.size).sum::<u64>(),
        entrypoint: run.entrypoint.clone().unwrap_or_default(),
        cmd: run.cmd.clone().unwrap_or_default(),
        env: run.env.clone().unwrap_or_default(),
        working_dir: run.working_dir.clone().filter(|w| !w.is_empty()),
        user: run.user.clone().filter(|u| !u.is_empty()),
    }
}

/// Builds an image from layers added one at a time — what `skiff build` will use: each step's
/// filesystem diff becomes a layer (stored gzip-compressed, unpacked once, shared with every
/// other image that has it), then [`ImageBuilder::commit`] writes config and manifest.
/// Nothing is visible to other processes before the commit.
pub struct ImageBuilder {
    store: ImageStore,
    staged: Staged,
    layers: Vec<LayerRef>,
    /// The base image's run config, inherited by the new image.
    base: Option<RunConfig>,
}

impl ImageBuilder {
    /// Start from an existing image: its layers come first, its run config is the default.
    pub fn from_image(&mut self, image: &str) -> Result<()> {
        let md = self.store.load()?;
        let (id, _) = resolve(&md, image)?;
        let rec = md.images.get(&id).ok_or_else(|| ImageError::NotFound(image.to_string()))?;
        self.layers = rec.layers.clone();
        self.base = Some(rec.run.clone());
        Ok(())
    }

    /// Add a layer from an uncompressed tar stream (a filesystem diff with OCI whiteouts).
    /// Returns its diffid.
    pub fn add_layer(&mut self, tar: impl Read) -> Result<String> {
        let area = self.staged.area.dir.clone();
        let n = self.layers.len();
        let blob_tmp = area.join(format!("build-blob-{n}"));
        let dir_tmp = area.join(format!("build-layer-{n}"));
        let file = File::create(&blob_tmp).map_err(ImageError::io(format!("creating {}", blob_tmp.display())))?;
        let gz = flate2::write::GzEncoder::new(HashingWriter::new(file), flate2::Compression::fast());
        let mut tee = Tee { inner: tar, out: gz, err: None };
        let unpacked = unpack::unpack_stream(&mut tee, &dir_tmp, None);
        if let Some(e) = tee.err.take() {
            return Err(ImageError::Io { context: "compressing layer".into(), source: e });
        }
        let unpacked = unpacked.map_err(|source| ImageError::Unpack { layer: format!("#{n}"), source })?;
        let hw = tee.out.finish().map_err(ImageError::io("compressing layer"))?;
        let (blob, size) = hw.finish().map_err(ImageError::io("writing layer blob"))?;
        let blob_path = area.join(format!("blob-{}", blob.hex()));
        fs::rename(&blob_tmp, &blob_path).map_err(ImageError::io("staging layer blob"))?;
        self.staged.blobs.insert(blob.clone(), blob_path);
        self.staged.layers.insert(unpacked.diff_id.clone(), (dir_tmp, unpacked.size));
        self.layers.push(LayerRef {
            diff_id: unpacked.diff_id.to_string(),
            blob: blob.to_string(),
            media_type: oci::OCI_LAYER_GZIP.to_string(),
            size,
        });
        Ok(unpacked.diff_id.to_string())
    }

    /// Write config and manifest and commit the image with its names.
    pub fn commit(mut self, cfg: NewImageConfig) -> Result<Image> {
        let (os, arch) = oci::host_platform();
        let base = self.base.clone().unwrap_or_default();
        let mut env = base.env.clone().unwrap_or_default();
        for e in &cfg.env {
            let key = e.split('=').next().unwrap_or_default();
            env.retain(|x| x.split('=').next() != Some(key));
            env.push(e.clone());
        }
        let run = RunConfig {
            user: cfg.user.clone().or(base.user),
            env: Some(env),
            entrypoint: cfg.entrypoint.clone().or(base.entrypoint),
            cmd: cfg.cmd.clone().or(base.cmd),
            working_dir: cfg.working_dir.clone().or(base.working_dir),
            stop_signal: base.stop_signal,
        };
        let config_json = serde_json::json!({
            "architecture": arch,
            "os": os,
            "config": run,
            "rootfs": {"type": "layers", "diff_ids": self.layers.iter().map(|l| l.diff_id.clone()).collect::<Vec<_>>()},
        });
        let config_bytes = serde_json::to_vec(&config_json).map_err(|e| ImageError::invalid("image config", e))?;
        let config = self.staged.put_bytes(&config_bytes)?;
        let manifest_json = serde_json::json!({
            "schemaVersion": 2,
            "mediaType": oci::OCI_MANIFEST,
            "config": {"mediaType": oci::OCI_CONFIG, "digest": config.to_string(), "size": config_bytes.len()},
            "layers": self.layers.iter().map(|l| serde_json::json!({"mediaType": l.media_type, "digest": l.blob, "size": l.size})).collect::<Vec<_>>(),
        });
        let manifest_bytes = serde_json::to_vec(&manifest_json).map_err(|e| ImageError::invalid("manifest", e))?;
        let manifest = self.staged.put_bytes(&manifest_bytes)?;
        let names = cfg
            .names
            .iter()
            .map(|n| Name::parse(n).map(|n| (n.key(), manifest.clone())))
            .collect::<Result<Vec<_>>>()?;
        let img = NewImage {
            manifest,
            manifest_media_type: oci::OCI_MANIFEST.to_string(),
            manifest_size: manifest_bytes.len() as u64,
            config,
            config_size: config_bytes.len() as u64,
            cfg: oci::parse_config(&config_bytes, self.layers.len())?,
            layers: self.layers.clone(),
            names,
        };
        let mut images = self.store.commit(&mut self.staged, &[img])?;
        images.pop().ok_or_else(|| ImageError::invalid("build", "nothing committed"))
    }
}

/// Copies what is read from `inner` into `out` (remembering the first write error, since a
/// `Read` cannot report a failure of its side channel).
struct Tee<R, W> {
    inner: R,
    out: W,
    err: Option<std::io::Error>,
}

impl<R: Read, W: Write> Read for Tee<R, W> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        if self.err.is_none()
            && let Err(e) = self.out.write_all(&buf[..n])
        {
            self.err = Some(e);
        }
        Ok(n)
    }
}

#[cfg(test)]
mod tests;
