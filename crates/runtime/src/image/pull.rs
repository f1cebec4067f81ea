//! Pulling from an OCI distribution registry (`skiff image pull`, the runtime's
//! `pull_image`) with `oci-client`: the tag is resolved to a manifest (through an index, for
//! this platform), then the layers are fetched several at a time, each verified while it
//! streams into the scratch dir and unpacked as soon as it is complete, and the whole image
//! is committed at once. Layers already in the store are neither downloaded nor unpacked.
//!
//! Auth: anonymous, basic (sent directly, or traded for a token when the registry asks for
//! bearer auth — oci-client follows the `WWW-Authenticate` challenge), or a bearer token.
//! Plain HTTP is used only for loopback registries and those listed as insecure.

use std::time::Duration;

use futures::{StreamExt, TryStreamExt};
use oci_client::client::{ClientConfig, ClientProtocol};
use oci_client::secrets::RegistryAuth;
use oci_client::{Client, Reference};
use sha2::{Digest as _, Sha256};
use tokio::io::AsyncWriteExt;

use super::digest::Digest;
use super::oci::{self, Compression, Document};
use super::reference::{self, Name};
use super::store::{ImageStore, LayerRef, NewImage, Staged};
use super::unpack;
use super::{ImageError, Progress, ProgressFn, Result};
use crate::cri::{AuthConfig, Image};

/// Options of [`ImageStore::pull`].
#[derive(Clone, Debug, Default)]
pub struct PullOptions {
    /// Credentials (from `imagePullSecrets` or the command line).
    pub auth: Option<AuthConfig>,
    /// Registries (`host` or `host:port`) that may be reached over plain HTTP besides
    /// loopback ones.
    pub insecure_registries: Vec<String>,
    /// Layers downloaded at once (0: 3, like docker).
    pub max_concurrent_downloads: usize,
}

/// What every layer job of one pull shares.
struct Ctx<'a> {
    client: &'a Client,
    oref: &'a Reference,
    /// The pull's scratch dir.
    area: &'a std::path::Path,
    progress: Option<&'a ProgressFn>,
}

/// A layer fetched into the scratch dir (or found in the store).
struct Fetched {
    diff_id: Digest,
    blob: Option<(Digest, std::path::PathBuf)>,
    layer: Option<(std::path::PathBuf, u64)>,
}

impl ImageStore {
    /// Pull `reference` (always contacting the registry: `imagePullPolicy: Always`
    /// semantics; use [`ImageStore::status`] for `IfNotPresent`) and return the image.
    pub async fn pull(&self, reference: &str, opts: &PullOptions, progress: Option<ProgressFn>) -> Result<Image> {
        let name = Name::parse(reference)?;
        // reqwest is built without a default crypto provider (no aws-lc): use ring.
        let _ = rustls::crypto::ring::default_provider().install_default();
        let plain = reference::plain_http_allowed(&name.registry, &opts.insecure_registries);
        let client = Client::new(ClientConfig {
            protocol: if plain { ClientProtocol::Http } else { ClientProtocol::Https },
            connect_timeout: Some(Duration::from_secs(30)),
            read_timeout: Some(Duration::from_secs(120)),
            platform_resolver: None,
            ..ClientConfig::default()
        });
        let auth = match &opts.auth {
            Some(a) if a.identity_token.as_deref().is_some_and(|t| !t.is_empty()) => {
                RegistryAuth::Bearer(a.identity_token.clone().unwrap_or_default())
            }
            Some(a) if !a.username.is_empty() => RegistryAuth::Basic(a.username.clone(), a.password.clone()),
            _ => RegistryAuth::Anonymous,
        };
        let concurrency = if opts.max_concurrent_downloads == 0 { 3 } else { opts.max_concurrent_downloads };
        // Content found in the store may be removed by another process before the commit;
        // then the second attempt fetches it.
        match self.pull_once(&name, &client, &auth, concurrency, progress.as_ref()).await {
            Err(ImageError::ContentVanished(what)) => {
                tracing::info!(image = reference, %what, "content removed during the pull; pulling again");
                self.pull_once(&name, &client, &auth, concurrency, progress.as_ref()).await
            }
            r => r,
        }
    }

    async fn pull_once(
        &self,
        name: &Name,
        client: &Client,
        auth: &RegistryAuth,
        concurrency: usize,
        progress: Option<&ProgressFn>,
    ) -> Result<Image> {
        let oref = name.to_oci();
        let registry_err = |source| ImageError::Registry { reference: name.key(), source: Box::new(source) };
        let (top, _) = client.pull_manifest_raw(&oref, auth, &oci::MANIFEST_TYPES).await.map_err(registry_err)?;
        if top.len() as u64 > oci::MAX_MANIFEST {
            return Err(ImageError::invalid("manifest", "larger than 4 MiB"));
        }
        let top_digest = Digest::of(&top);
        if let Some(want) = &name.digest {
            top_digest.verify(want, "manifest")?;
        }
        let mut staged = self.stage()?;
        staged.put_bytes(&top)?;
        let (manifest, manifest_bytes, manifest_digest, media_type) = match oci::parse_document(&top, None, "manifest")?
        {
            Document::Manifest(m, mt) => (m, top.to_vec(), top_digest.clone(), mt),
            Document::Index(idx) => {
                let sel = oci::select_manifest(&idx)?;
                let d = sel.digest()?;
                let r = Reference::with_digest(name.registry.clone(), name.repository.clone(), d.to_string());
                let (bytes, _) =
                    client.pull_manifest_raw(&r, auth, &oci::MANIFEST_TYPES).await.map_err(registry_err)?;
                Digest::of(&bytes).verify(&d, "platform manifest")?;
                staged.put_bytes(&bytes)?;
                match oci::parse_document(&bytes, Some(&sel.media_type), "platform manifest")? {
                    Document::Manifest(m, mt) => (m, bytes.to_vec(), d, mt),
                    Document::Index(_) => {
                        return Err(ImageError::invalid("platform manifest", "an index inside an index"));
                    }
                }
            }
        };
        if let Some(p) = progress {
            p(Progress::Resolved { digest: manifest_digest.to_string(), layers: manifest.layers.len() });
        }

        let config_digest = manifest.config.digest()?;
        if manifest.config.size > oci::MAX_CONFIG {
            return Err(ImageError::invalid("image config", "larger than 16 MiB"));
        }
        let mut config_bytes = Vec::new();
        client.pull_blob(&oref, manifest.config.digest.as_str(), &mut config_bytes).await.map_err(registry_err)?;
        Digest::of(&config_bytes).verify(&config_digest, "image config")?;
        let cfg = oci::parse_config(&config_bytes, manifest.layers.len())?;
        staged.put_bytes(&config_bytes)?;

        let mut layers = Vec::new();
        let mut jobs: Vec<(oci::Descriptor, Digest, bool)> = Vec::new();
        for (desc, diff_id) in manifest.layers.iter().zip(&cfg.rootfs.diff_ids) {
            layers.push(LayerRef {
                diff_id: diff_id.clone(),
                blob: desc.digest.clone(),
                media_type: desc.media_type.clone(),
                size: desc.size,
            });
            // A blob listed twice is fetched once; a diffid is unpacked once.
            let d = Digest::parse(diff_id)?;
            if jobs.iter().any(|(j, _, _)| j.digest == desc.digest) {
                continue;
            }
            let unpack = !jobs.iter().any(|(_, jd, u)| *u && *jd == d);
            jobs.push((desc.clone(), d, unpack));
        }
        let area = staged.area.dir.clone();
        let ctx = Ctx { client, oref: &oref, area: &area, progress };
        let fetched: Vec<Fetched> = futures::stream::iter(jobs)
            .map(|(desc, diff_id, unpack)| self.fetch_layer(&ctx, desc, diff_id, unpack))
            .buffer_unordered(concurrency.max(1))
            .try_collect()
            .await?;
        for f in fetched {
            if let Some((d, p)) = f.blob {
                staged.blobs.insert(d, p);
            }
            if let Some(l) = f.layer {
                staged.layers.insert(f.diff_id, l);
            }
        }
        let img = NewImage {
            manifest: manifest_digest.clone(),
            manifest_media_type: media_type,
            manifest_size: manifest_bytes.len() as u64,
            config: config_digest,
            config_size: config_bytes.len() as u64,
            cfg,
            layers,
            names: vec![(name.key(), top_digest)],
        };
        let store = self.clone();
        let image = tokio::task::spawn_blocking(move || commit_owned(&store, staged, img)).await.map_err(|e| {
            ImageError::Io { context: "committing the image".into(), source: std::io::Error::other(e) }
        })??;
        if let Some(p) = progress {
            p(Progress::Done { id: image.id.clone() });
        }
        Ok(image)
    }

    /// Download (unless present) and unpack (unless present or `!unpack`) one layer.
    async fn fetch_layer(
        &self,
        ctx: &Ctx<'_>,
        desc: oci::Descriptor,
        diff_id: Digest,
        unpack: bool,
    ) -> Result<Fetched> {
        let progress = ctx.progress;
        let blob = desc.digest()?;
        let compression = Compression::of_media_type(&desc.media_type).ok_or_else(|| ImageError::UnknownMediaType {
            what: format!("layer {blob}"),
            media_type: desc.media_type.clone(),
        })?;
        let stored_blob = self.blob_path(&blob);
        let have_blob = stored_blob.is_file();
        // Another job unpacks this diffid (the same layer, compressed differently).
        let have_layer = !unpack || self.layer_path(&diff_id).is_dir();
        if have_blob && have_layer {
            if let Some(p) = progress {
                p(Progress::LayerExists { digest: blob.to_string(), size: desc.size });
            }
            return Ok(Fetched { diff_id, blob: None, layer: None });
        }
        let mut out = Fetched { diff_id: diff_id.clone(), blob: None, layer: None };
        let src = if have_blob {
            stored_blob
        } else {
            let p = ctx.area.join(format!("blob-{}", blob.hex()));
            self.download(ctx, &desc, &blob, &p).await?;
            out.blob = Some((blob.clone(), p.clone()));
            p
        };
        if !have_layer {
            if let Some(p) = progress {
                p(Progress::Unpacking { digest: blob.to_string() });
            }
            let dest = ctx.area.join(format!("layer-{}", diff_id.hex()));
            let (d2, dest2, b2) = (diff_id.clone(), dest.clone(), blob.clone());
            let u = tokio::task::spawn_blocking(move || {
                unpack::unpack_layer(&src, compression, &dest2, Some(&d2), Some(&b2))
            })
            .await
            .map_err(|e| ImageError::Io { context: "unpacking".into(), source: std::io::Error::other(e) })?
            .map_err(|source| ImageError::Unpack { layer: blob.to_string(), source })?;
            if let Some(p) = progress {
                p(Progress::Unpacked { digest: blob.to_string(), size: u.size });
            }
            out.layer = Some((dest, u.size));
        }
        Ok(out)
    }

    /// Stream a blob into `dest`, checking its length as it comes and its digest at the end.
    async fn download(
        &self,
        ctx: &Ctx<'_>,
        desc: &oci::Descriptor,
        blob: &Digest,
        dest: &std::path::Path,
    ) -> Result<()> {
        let (client, oref, progress) = (ctx.client, ctx.oref, ctx.progress);
        let registry_err = |source| ImageError::Registry { reference: oref.whole(), source: Box::new(source) };
        let mut stream = client.pull_blob_stream(oref, desc.digest.as_str()).await.map_err(registry_err)?;
        let file =
            tokio::fs::File::create(dest).await.map_err(ImageError::io(format!("creating {}", dest.display())))?;
        let mut file = tokio::io::BufWriter::with_capacity(1 << 20, file);
        let mut hasher = Sha256::new();
        let mut done = 0u64;
        let mut reported = 0u64;
        if let Some(p) = progress {
            p(Progress::Downloading { digest: blob.to_string(), done: 0, total: desc.size });
        }
        let mismatch = |hasher: Sha256| Digest::from_hasher(hasher).verify(blob, &format!("layer {blob}"));
        while let Some(chunk) = stream.next().await {
            let chunk = match chunk {
                Ok(c) => c,
                // oci-client's own verification fails the stream's end; say what failed.
                Err(e) if done == desc.size => {
                    mismatch(hasher)?;
                    return Err(ImageError::Io { context: format!("downloading {blob}"), source: e });
                }
                Err(e) => return Err(ImageError::Io { context: format!("downloading {blob}"), source: e }),
            };
            done += chunk.len() as u64;
            if done > desc.size {
                return Err(ImageError::SizeMismatch {
                    what: format!("layer {blob}"),
                    expected: desc.size,
                    actual: done,
                });
            }
            hasher.update(&chunk);
            file.write_all(&chunk).await.map_err(ImageError::io(format!("writing {}", dest.display())))?;
            if let Some(p) = progress
                && (done - reported >= 256 << 10 || done == desc.size)
            {
                reported = done;
                p(Progress::Downloading { digest: blob.to_string(), done, total: desc.size });
            }
        }
        file.flush().await.map_err(ImageError::io(format!("writing {}", dest.display())))?;
        if done != desc.size {
            return Err(ImageError::SizeMismatch { what: format!("layer {blob}"), expected: desc.size, actual: done });
        }
        mismatch(hasher)
    }
}

fn commit_owned(store: &ImageStore, mut staged: Staged, img: NewImage) -> Result<Image> {
    let mut images = store.commit(&mut staged, &[img])?;
    images.pop().ok_or_else(|| ImageError::invalid("pull", "nothing committed"))
}

#[cfg(test)]
mod tests;
