//! `skiff image import`: images from a `docker save` archive (classic or Docker 25+), an OCI
//! archive (a tar of an OCI layout, as `skopeo copy … oci-archive:` writes), or an OCI layout
//! directory; the archive may be gzip-compressed.
//!
//! An archive is read in one streaming pass: every file is hashed into the operation's
//! scratch dir (files named `blobs/sha256/<hex>` must hash to their name), so the order of
//! entries does not matter and stdin works. Then the images are resolved from `index.json` or
//! `manifest.json`, their layers unpacked (in parallel, verified against the config's
//! diffids) and everything committed at once.

use std::collections::HashMap;
use std::fs::{self, File};
use std::io::{self, BufRead, BufReader, Read, Write};
use std::path::{Component, Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use serde::Deserialize;

use super::digest::{Digest, HashingReader, HashingWriter};
use super::oci::{self, Compression, Document};
use super::reference::Name;
use super::store::{ImageStore, LayerRef, NewImage, Staged};
use super::unpack;
use super::{ImageError, Progress, ProgressFn, Result};
use crate::cri::Image;

/// Options of [`ImageStore::import`].
#[derive(Clone, Debug, Default)]
pub struct ImportOptions {
    /// Also name the imported image so (only for archives holding one image).
    pub tag: Option<String>,
}

const ANNOTATION_CONTAINERD_NAME: &str = "io.containerd.image.name";
const ANNOTATION_REF_NAME: &str = "org.opencontainers.image.ref.name";

/// One entry of a docker-save `manifest.json`.
#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct DockerEntry {
    config: String,
    #[serde(default)]
    repo_tags: Option<Vec<String>>,
    layers: Vec<String>,
}

/// Where blobs come from while resolving images.
enum Source<'a> {
    /// An archive, already read into the scratch dir: archive path → digest, links.
    Archive { files: HashMap<String, Digest>, links: HashMap<String, String> },
    /// An OCI layout directory, read on demand.
    Layout(&'a Path),
}

struct Fetcher<'a> {
    source: Source<'a>,
    staged: &'a mut Staged,
    origin: String,
}

impl Fetcher<'_> {
    /// The staged, verified copy of a blob.
    fn blob(&mut self, d: &Digest) -> Result<PathBuf> {
        if let Some(p) = self.staged.blobs.get(d) {
            return Ok(p.clone());
        }
        let Source::Layout(dir) = &self.source else {
            return Err(ImageError::invalid(self.origin.clone(), format!("blob {d} is missing from the archive")));
        };
        let src = dir.join("blobs/sha256").join(d.hex());
        let f = File::open(&src).map_err(ImageError::io(format!("opening {}", src.display())))?;
        let dest = self.staged.area.dir.join(format!("blob-{}", d.hex()));
        let mut r = HashingReader::new(BufReader::with_capacity(1 << 20, f));
        let mut out = File::create(&dest).map_err(ImageError::io(format!("creating {}", dest.display())))?;
        io::copy(&mut r, &mut out).map_err(ImageError::io(format!("copying {}", src.display())))?;
        r.finish().0.verify(d, &format!("blob {}", src.display()))?;
        self.staged.blobs.insert(d.clone(), dest.clone());
        Ok(dest)
    }

    /// A blob's bytes, which must match the descriptor's size and stay under `max`.
    fn read(&mut self, d: &Digest, size: Option<u64>, max: u64, what: &str) -> Result<Vec<u8>> {
        let p = self.blob(d)?;
        let len = fs::metadata(&p).map_err(ImageError::io(format!("reading {what}")))?.len();
        if let Some(want) = size
            && want != len
        {
            return Err(ImageError::SizeMismatch { what: format!("{what} {d}"), expected: want, actual: len });
        }
        if len > max {
            return Err(ImageError::invalid(what, format!("{len} bytes is more than the {max} allowed")));
        }
        fs::read(&p).map_err(ImageError::io(format!("reading {what}")))
    }

    /// The digest of an archive path (following links), for docker-save archives.
    fn path(&self, path: &str) -> Result<Digest> {
        let Source::Archive { files, links } = &self.source else {
            return Err(ImageError::invalid(self.origin.clone(), "paths only exist in archives"));
        };
        let mut p = normalize(path);
        for _ in 0..16 {
            if let Some(d) = files.get(&p) {
                return Ok(d.clone());
            }
            match links.get(&p) {
                Some(t) => p = t.clone(),
                None => break,
            }
        }
        Err(ImageError::invalid(self.origin.clone(), format!("{path} is missing from the archive")))
    }
}

/// An archive path without `./` and with `..` folded (never used to write anything: only to
/// match the names `manifest.json` refers to).
fn normalize(p: &str) -> String {
    let mut out: Vec<&str> = Vec::new();
    for c in Path::new(p).components() {
        match c {
            Component::Normal(n) => out.push(n.to_str().unwrap_or_default()),
            Component::ParentDir => {
                out.pop();
            }
            _ => {}
        }
    }
    out.join("/")
}

/// Reports how far an archive has been read (`done` is shared so the end can be reported
/// even when the tar reader stops before end of file).
struct Counting<R> {
    inner: R,
    done: Arc<AtomicU64>,
    reported: u64,
    total: Option<u64>,
    progress: Option<ProgressFn>,
}

impl<R: Read> Read for Counting<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        let done = self.done.fetch_add(n as u64, Ordering::Relaxed) + n as u64;
        if let Some(p) = &self.progress
            && done - self.reported >= 4 << 20
        {
            self.reported = done;
            p(Progress::Reading { done, total: self.total });
        }
        Ok(n)
    }
}

impl ImageStore {
    /// Import every image of a docker-save archive, an OCI archive or an OCI layout
    /// directory. Images for another platform are skipped when others remain.
    pub fn import(&self, path: &Path, opts: &ImportOptions, progress: Option<ProgressFn>) -> Result<Vec<Image>> {
        let meta = fs::metadata(path).map_err(ImageError::io(format!("reading {}", path.display())))?;
        let origin = path.display().to_string();
        if meta.is_dir() {
            if !path.join("index.json").is_file() {
                return Err(ImageError::NotAnArchive(origin, "a directory without index.json".into()));
            }
            let mut staged = self.stage()?;
            let index =
                fs::read(path.join("index.json")).map_err(ImageError::io(format!("reading {origin}/index.json")))?;
            let mut f = Fetcher { source: Source::Layout(path), staged: &mut staged, origin };
            let images = self.oci_images(&index, &mut f)?;
            return self.finish_import(staged, images, opts, progress);
        }
        let file = File::open(path).map_err(ImageError::io(format!("opening {origin}")))?;
        self.import_reader(file, Some(meta.len()), &origin, opts, progress)
    }

    /// Import from a stream (`skiff image import -` reads stdin); `total` is for progress.
    pub fn import_reader(
        &self,
        reader: impl Read,
        total: Option<u64>,
        origin: &str,
        opts: &ImportOptions,
        progress: Option<ProgressFn>,
    ) -> Result<Vec<Image>> {
        let done = Arc::new(AtomicU64::new(0));
        let counting = Counting { inner: reader, done: done.clone(), reported: 0, total, progress: progress.clone() };
        let mut buffered = BufReader::with_capacity(1 << 20, counting);
        let head = buffered.fill_buf().map_err(ImageError::io(format!("reading {origin}")))?;
        let reader: Box<dyn Read> = if head.starts_with(&[0x1f, 0x8b]) {
            Box::new(flate2::read::MultiGzDecoder::new(buffered))
        } else {
            Box::new(buffered)
        };
        let mut staged = self.stage()?;
        let (files, links) = read_archive(reader, &mut staged, origin)?;
        if let Some(p) = &progress {
            p(Progress::Reading { done: done.load(Ordering::Relaxed), total });
        }
        let kind = if files.contains_key("index.json") {
            "oci"
        } else if files.contains_key("manifest.json") {
            "docker"
        } else {
            return Err(ImageError::NotAnArchive(origin.into(), "neither index.json nor manifest.json found".into()));
        };
        let mut f = Fetcher { source: Source::Archive { files, links }, staged: &mut staged, origin: origin.into() };
        let images = if kind == "oci" {
            let d = f.path("index.json")?;
            let index = f.read(&d, None, oci::MAX_MANIFEST, "index.json")?;
            self.oci_images(&index, &mut f)?
        } else {
            docker_images(&mut f)?
        };
        self.finish_import(staged, images, opts, progress)
    }

    fn finish_import(
        &self,
        mut staged: Staged,
        mut images: Vec<NewImage>,
        opts: &ImportOptions,
        progress: Option<ProgressFn>,
    ) -> Result<Vec<Image>> {
        if let Some(tag) = &opts.tag {
            if images.len() != 1 {
                return Err(ImageError::invalid(
                    "--tag",
                    format!("the archive holds {} images, not one", images.len()),
                ));
            }
            let name = Name::parse(tag)?;
            let target = images[0].manifest.clone();
            images[0].names.push((name.key(), target));
        }
        self.unpack_all(&mut staged, &images, progress.as_ref())?;
        let out = self.commit(&mut staged, &images)?;
        if let Some(p) = &progress {
            for i in &out {
                p(Progress::Done { id: i.id.clone() });
            }
        }
        Ok(out)
    }

    /// Images of an OCI `index.json`: each entry is an image (or an index to pick this
    /// platform's image from), named by its annotations.
    fn oci_images(&self, index: &[u8], f: &mut Fetcher<'_>) -> Result<Vec<NewImage>> {
        let Document::Index(index) = oci::parse_document(index, Some(oci::OCI_INDEX), "index.json")? else {
            return Err(ImageError::invalid("index.json", "not an image index"));
        };
        let mut out = Vec::new();
        let mut platform_err = None;
        for desc in &index.manifests {
            let names = names_from_annotations(&desc.annotations)?;
            match resolve_descriptor(desc, names, f, 0) {
                Ok(img) => out.push(img),
                Err(e @ (ImageError::PlatformNotFound { .. } | ImageError::WrongPlatform { .. })) => {
                    tracing::info!(digest = %desc.digest, "skipping an image for another platform: {e}");
                    platform_err.get_or_insert(e);
                }
                Err(e) => return Err(e),
            }
        }
        if out.is_empty() {
            return Err(platform_err
                .unwrap_or_else(|| ImageError::NotAnArchive(f.origin.clone(), "index.json lists no images".into())));
        }
        Ok(out)
    }

    /// Unpack every layer not yet in the store, a few at a time.
    fn unpack_all(&self, staged: &mut Staged, images: &[NewImage], progress: Option<&ProgressFn>) -> Result<()> {
        let mut work: Vec<(Digest, LayerRef, PathBuf)> = Vec::new();
        for l in images.iter().flat_map(|i| &i.layers) {
            let diff_id = Digest::parse(&l.diff_id)?;
            if self.layer_path(&diff_id).exists()
                || staged.layers.contains_key(&diff_id)
                || work.iter().any(|(d, ..)| *d == diff_id)
            {
                continue;
            }
            let blob = Digest::parse(&l.blob)?;
            let src = match staged.blobs.get(&blob) {
                Some(p) => p.clone(),
                None => self.blob_path(&blob),
            };
            work.push((diff_id, l.clone(), src));
        }
        let threads = std::thread::available_parallelism().map_or(1, |n| n.get()).clamp(1, 4).min(work.len().max(1));
        let area = staged.area.dir.clone();
        let queue = Mutex::new(work);
        let results = Mutex::new(Vec::new());
        let first_err: Mutex<Option<ImageError>> = Mutex::new(None);
        std::thread::scope(|s| {
            for _ in 0..threads {
                s.spawn(|| {
                    loop {
                        let next = queue.lock().map(|mut q| q.pop()).unwrap_or(None);
                        let Some((diff_id, l, src)) = next else { break };
                        if first_err.lock().map(|e| e.is_some()).unwrap_or(true) {
                            break;
                        }
                        match unpack_one(&area, &diff_id, &l, &src, progress) {
                            Ok(done) => {
                                if let Ok(mut v) = results.lock() {
                                    v.push((diff_id, done));
                                }
                            }
                            Err(e) => {
                                if let Ok(mut slot) = first_err.lock() {
                                    slot.get_or_insert(e);
                                }
                            }
                        }
                    }
                });
            }
        });
        if let Some(e) = first_err.into_inner().ok().flatten() {
            return Err(e);
        }
        for (d, done) in results.into_inner().unwrap_or_default() {
            staged.layers.insert(d, done);
        }
        Ok(())
    }
}

/// Unpack one layer into the scratch dir; returns the directory and its size.
fn unpack_one(
    area: &Path,
    diff_id: &Digest,
    l: &LayerRef,
    src: &Path,
    progress: Option<&ProgressFn>,
) -> Result<(PathBuf, u64)> {
    let compression = Compression::of_media_type(&l.media_type).ok_or_else(|| ImageError::UnknownMediaType {
        what: format!("layer {}", l.blob),
        media_type: l.media_type.clone(),
    })?;
    if let Some(p) = progress {
        p(Progress::Unpacking { digest: l.blob.clone() });
    }
    let dest = area.join(format!("layer-{}", diff_id.hex()));
    let blob = Digest::parse(&l.blob)?;
    let u = unpack::unpack_layer(src, compression, &dest, Some(diff_id), Some(&blob))
        .map_err(|source| ImageError::Unpack { layer: l.blob.clone(), source })?;
    if let Some(p) = progress {
        p(Progress::Unpacked { digest: l.blob.clone(), size: u.size });
    }
    Ok((dest, u.size))
}

/// Read a whole archive into the scratch dir: regular files become blobs (by content
/// digest), symlinks and hard links are remembered for docker-save's layer references.
fn read_archive(
    reader: impl Read,
    staged: &mut Staged,
    origin: &str,
) -> Result<(HashMap<String, Digest>, HashMap<String, String>)> {
    let corrupt =
        |e: io::Error| ImageError::NotAnArchive(origin.to_string(), format!("unreadable or truncated tar ({e})"));
    let mut files = HashMap::new();
    let mut links = HashMap::new();
    let mut archive = tar::Archive::new(reader);
    for (n, entry) in archive.entries().map_err(corrupt)?.enumerate() {
        let mut entry = entry.map_err(corrupt)?;
        let raw = entry.path().map_err(corrupt)?.to_string_lossy().into_owned();
        let path = normalize(&raw);
        match entry.header().entry_type() {
            tar::EntryType::Regular | tar::EntryType::Continuous => {
                let tmp = staged.area.dir.join(format!("in-{n}"));
                let out = File::create(&tmp).map_err(ImageError::io(format!("creating {}", tmp.display())))?;
                let mut w = HashingWriter::new(io::BufWriter::with_capacity(1 << 20, out));
                // Read errors mean a bad archive, write errors a problem of the store's disk.
                let mut buf = vec![0u8; 1 << 20];
                loop {
                    let n = entry.read(&mut buf).map_err(corrupt)?;
                    if n == 0 {
                        break;
                    }
                    w.write_all(&buf[..n]).map_err(ImageError::io(format!("writing {}", tmp.display())))?;
                }
                let (d, _) = w.finish().map_err(ImageError::io(format!("writing {}", tmp.display())))?;
                if let Some(hex) = path.strip_prefix("blobs/sha256/") {
                    let named =
                        Digest::from_hex(hex).ok_or_else(|| ImageError::UnsupportedDigest(format!("sha256:{hex}")))?;
                    d.verify(&named, &format!("{path} in {origin}"))?;
                }
                if staged.blobs.contains_key(&d) {
                    let _ = fs::remove_file(&tmp);
                } else {
                    let dest = staged.area.dir.join(format!("blob-{}", d.hex()));
                    fs::rename(&tmp, &dest).map_err(ImageError::io("staging a blob"))?;
                    staged.blobs.insert(d.clone(), dest);
                }
                files.insert(path, d);
            }
            tar::EntryType::Symlink => {
                if let Some(t) = entry.link_name().map_err(corrupt)? {
                    let parent = Path::new(&path).parent().unwrap_or(Path::new(""));
                    links.insert(path.clone(), normalize(&parent.join(t).to_string_lossy()));
                }
            }
            tar::EntryType::Link => {
                if let Some(t) = entry.link_name().map_err(corrupt)? {
                    links.insert(path.clone(), normalize(&t.to_string_lossy()));
                }
            }
            _ => {}
        }
    }
    Ok((files, links))
}

/// Names from an index entry: containerd's full name, else the OCI ref name when it is a
/// full reference (a bare tag like `1.36` names nothing without a repository).
fn names_from_annotations(a: &std::collections::BTreeMap<String, String>) -> Result<Vec<String>> {
    if let Some(n) = a.get(ANNOTATION_CONTAINERD_NAME) {
        return Ok(vec![Name::parse(n)?.key()]);
    }
    match a.get(ANNOTATION_REF_NAME) {
        Some(r) if r.contains('/') || r.contains(':') => Ok(vec![Name::parse(r)?.key()]),
        _ => Ok(Vec::new()),
    }
}

/// Resolve an index entry to an image: through nested indexes (picking this platform) down
/// to a manifest, whose config and layers must all be present and well-formed.
fn resolve_descriptor(desc: &oci::Descriptor, names: Vec<String>, f: &mut Fetcher<'_>, depth: u32) -> Result<NewImage> {
    let d = desc.digest()?;
    let bytes = f.read(&d, Some(desc.size), oci::MAX_MANIFEST, "manifest")?;
    match oci::parse_document(&bytes, Some(&desc.media_type), &format!("manifest {d}"))? {
        Document::Index(idx) => {
            if depth >= 2 {
                return Err(ImageError::invalid(format!("index {d}"), "indexes nested too deeply"));
            }
            let sel = oci::select_manifest(&idx)?.clone();
            let mut img = resolve_descriptor(&sel, Vec::new(), f, depth + 1)?;
            img.names = names.into_iter().map(|n| (n, d.clone())).collect();
            Ok(img)
        }
        Document::Manifest(m, media_type) => {
            let config = m.config.digest()?;
            let config_bytes = f.read(&config, Some(m.config.size), oci::MAX_CONFIG, "image config")?;
            let cfg = oci::parse_config(&config_bytes, m.layers.len())?;
            let mut layers = Vec::new();
            for (l, diff_id) in m.layers.iter().zip(&cfg.rootfs.diff_ids) {
                let blob = l.digest()?;
                let p = f.blob(&blob)?;
                let len = fs::metadata(&p).map_err(ImageError::io("reading a layer"))?.len();
                if len != l.size {
                    return Err(ImageError::SizeMismatch {
                        what: format!("layer {blob}"),
                        expected: l.size,
                        actual: len,
                    });
                }
                layers.push(LayerRef {
                    diff_id: diff_id.clone(),
                    blob: l.digest.clone(),
                    media_type: l.media_type.clone(),
                    size: l.size,
                });
            }
            Ok(NewImage {
                manifest: d.clone(),
                manifest_media_type: media_type,
                manifest_size: bytes.len() as u64,
                config,
                config_size: config_bytes.len() as u64,
                cfg,
                layers,
                names: names.into_iter().map(|n| (n, d.clone())).collect(),
            })
        }
    }
}

/// Images of a docker-save `manifest.json`; each gets an OCI manifest written for it (layer
/// compression sniffed from the blobs, since docker does not record it).
fn docker_images(f: &mut Fetcher<'_>) -> Result<Vec<NewImage>> {
    let md = f.path("manifest.json")?;
    let bytes = f.read(&md, None, oci::MAX_MANIFEST, "manifest.json")?;
    let entries: Vec<DockerEntry> =
        serde_json::from_slice(&bytes).map_err(|e| ImageError::invalid("manifest.json", e))?;
    if entries.is_empty() {
        return Err(ImageError::NotAnArchive(f.origin.clone(), "manifest.json lists no images".into()));
    }
    let mut out = Vec::new();
    for e in entries {
        let config = f.path(&e.config)?;
        let config_bytes = f.read(&config, None, oci::MAX_CONFIG, "image config")?;
        let cfg = oci::parse_config(&config_bytes, e.layers.len())?;
        let mut layers = Vec::new();
        for (path, diff_id) in e.layers.iter().zip(&cfg.rootfs.diff_ids) {
            let blob = f.path(path)?;
            let p = f.blob(&blob)?;
            let mut head = [0u8; 8];
            let mut file = File::open(&p).map_err(ImageError::io(format!("reading {path}")))?;
            let n = file.read(&mut head).map_err(ImageError::io(format!("reading {path}")))?;
            let compression = Compression::sniff(&head[..n]).map_err(|reason| ImageError::UnknownMediaType {
                what: format!("layer {path}"),
                media_type: reason.into(),
            })?;
            let size = fs::metadata(&p).map_err(ImageError::io(format!("reading {path}")))?.len();
            layers.push(LayerRef {
                diff_id: diff_id.clone(),
                blob: blob.to_string(),
                media_type: compression.oci_media_type().to_string(),
                size,
            });
        }
        let manifest = serde_json::to_vec(&serde_json::json!({
            "schemaVersion": 2,
            "mediaType": oci::OCI_MANIFEST,
            "config": {"mediaType": oci::OCI_CONFIG, "digest": config.to_string(), "size": config_bytes.len()},
            "layers": layers.iter().map(|l| serde_json::json!({"mediaType": l.media_type, "digest": l.blob, "size": l.size})).collect::<Vec<_>>(),
        }))
        .map_err(|e| ImageError::invalid("manifest", e))?;
        let manifest_digest = f.staged.put_bytes(&manifest)?;
        let names = e
            .repo_tags
            .unwrap_or_default()
            .iter()
            .map(|t| Name::parse(t).map(|n| (n.key(), manifest_digest.clone())))
            .collect::<Result<Vec<_>>>()?;
        out.push(NewImage {
            manifest: manifest_digest,
            manifest_media_type: oci::OCI_MANIFEST.to_string(),
            manifest_size: manifest.len() as u64,
            config,
            config_size: config_bytes.len() as u64,
            cfg,
            layers,
            names,
        });
    }
    Ok(out)
}

#[cfg(test)]
mod tests;
