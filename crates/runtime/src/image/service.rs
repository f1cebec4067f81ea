//! The CRI image service on top of the store: what a `Runtime` implementation delegates
//! `pull_image`, `image_status`, `list_images` and `remove_image` to. It moves blocking store
//! calls off the tokio workers, answers with CRI errors, follows CRI semantics (removal is by
//! image, idempotent) and runs concurrent pulls of one image one after the other, so the
//! second finds the layers the first fetched.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};

use super::store::{GcReport, ImageStore};
use super::{ImageError, PullOptions};
use crate::cri::{self, AuthConfig, Image, RuntimeError};

/// The image half of the CRI, for the kubelet.
pub struct ImageService {
    store: ImageStore,
    /// Registries reachable over plain HTTP besides loopback ones.
    insecure_registries: Vec<String>,
    /// One lock per image being pulled.
    pulls: Mutex<HashMap<String, Arc<tokio::sync::Mutex<()>>>>,
}

impl ImageService {
    pub fn new(store: ImageStore, insecure_registries: Vec<String>) -> ImageService {
        ImageService { store, insecure_registries, pulls: Mutex::new(HashMap::new()) }
    }

    /// The store, for what the CRI does not cover (pins, `rootfs_layers`).
    pub fn store(&self) -> &ImageStore {
        &self.store
    }

    async fn blocking<T: Send + 'static>(
        &self,
        image: &str,
        f: impl FnOnce(ImageStore) -> Result<T, ImageError> + Send + 'static,
    ) -> cri::Result<T> {
        let store = self.store.clone();
        tokio::task::spawn_blocking(move || f(store))
            .await
            .map_err(|e| RuntimeError::Internal(format!("image store task: {e}")))?
            .map_err(|e| e.into_runtime_error(image, false))
    }

    /// `PullImage`: always contacts the registry; returns the image id.
    pub async fn pull_image(&self, image: &str, auth: Option<&AuthConfig>) -> cri::Result<String> {
        let lock = {
            let mut pulls = self.pulls.lock().map_err(|_| RuntimeError::Internal("pull table poisoned".into()))?;
            pulls.entry(image.to_string()).or_default().clone()
        };
        let result = {
            let _one_at_a_time = lock.lock().await;
            let opts = PullOptions {
                auth: auth.cloned(),
                insecure_registries: self.insecure_registries.clone(),
                max_concurrent_downloads: 0,
            };
            self.store.pull(image, &opts, None).await
        };
        if let Ok(mut pulls) = self.pulls.lock()
            && pulls.get(image).is_some_and(|l| Arc::strong_count(l) <= 2)
        {
            pulls.remove(image);
        }
        result.map(|i| i.id).map_err(|e| e.into_runtime_error(image, true))
    }

    /// `ImageStatus`: the image if present (for `imagePullPolicy: IfNotPresent`/`Never`).
    pub async fn image_status(&self, image: &str) -> cri::Result<Option<Image>> {
        let r = image.to_string();
        self.blocking(image, move |s| s.status(&r)).await
    }

    pub async fn list_images(&self) -> cri::Result<Vec<Image>> {
        self.blocking("", |s| s.list()).await
    }

    /// `RemoveImage`: removes the image with all its names (whatever name it is given by);
    /// an image already gone is not an error; a pinned one is.
    pub async fn remove_image(&self, image: &str) -> cri::Result<()> {
        let r = image.to_string();
        self.blocking(image, move |s| match s.resolve(&r) {
            Ok(id) => s.remove(&id).map(|_| ()),
            Err(ImageError::NotFound(_)) => Ok(()),
            Err(e) => Err(e),
        })
        .await
    }

    /// Image GC by disk usage; never removes `in_use` (ids or names) or pinned images.
    pub async fn gc(&self, high_pct: u8, low_pct: u8, in_use: HashSet<String>) -> cri::Result<GcReport> {
        self.blocking("", move |s| s.gc(high_pct, low_pct, &in_use)).await
    }

    /// Pin the image for a container (`owner`: its id) so it is never removed while the
    /// container exists; returns the image id.
    pub async fn pin(&self, image: &str, owner: &str) -> cri::Result<String> {
        let (r, o) = (image.to_string(), owner.to_string());
        self.blocking(image, move |s| s.pin(&r, &o)).await
    }

    pub async fn unpin(&self, owner: &str) -> cri::Result<()> {
        let o = owner.to_string();
        self.blocking(owner, move |s| s.unpin(&o).map(|_| ())).await
    }
}

#[async_trait::async_trait]
impl cri::ImageService for ImageService {
    async fn pull_image(&self, image: &str, auth: Option<&AuthConfig>) -> cri::Result<String> {
        ImageService::pull_image(self, image, auth).await
    }
    async fn image_status(&self, image: &str) -> cri::Result<Option<Image>> {
        ImageService::image_status(self, image).await
    }
    async fn list_images(&self) -> cri::Result<Vec<Image>> {
        ImageService::list_images(self).await
    }
    async fn remove_image(&self, image: &str) -> cri::Result<()> {
        ImageService::remove_image(self, image).await
    }
}

/// The store is what the runtime builds container root filesystems from. Calls are blocking
/// (local disk and the store lock); the runtime makes them off the tokio workers.
impl cri::ImageSource for ImageStore {
    fn rootfs_layers(&self, image: &str) -> cri::Result<Vec<std::path::PathBuf>> {
        ImageStore::rootfs_layers(self, image).map_err(|e| e.into_runtime_error(image, false))
    }
    fn config(&self, image: &str) -> cri::Result<cri::ImageConfig> {
        let c = self
            .status(image)
            .map_err(|e| e.into_runtime_error(image, false))?
            .ok_or_else(|| RuntimeError::NotFound { kind: "image", id: image.to_string() })?;
        Ok(cri::ImageConfig {
            entrypoint: c.entrypoint,
            cmd: c.cmd,
            env: c.env,
            working_dir: c.working_dir,
            user: c.user,
        })
    }
    fn image_id(&self, image: &str) -> cri::Result<String> {
        self.resolve(image).map_err(|e| e.into_runtime_error(image, false))
    }
    fn pin(&self, image: &str, owner: &str) -> cri::Result<String> {
        ImageStore::pin(self, image, owner).map_err(|e| e.into_runtime_error(image, false))
    }
    fn unpin(&self, owner: &str) -> cri::Result<()> {
        ImageStore::unpin(self, owner).map(drop).map_err(|e| e.into_runtime_error(owner, false))
    }
    fn retain_pins(&self, containers: &HashSet<String>) -> cri::Result<()> {
        let pins = self.pins().map_err(|e| e.into_runtime_error("", false))?;
        for owner in pins.keys().filter(|o| !containers.contains(*o)) {
            tracing::info!(container = %owner, "releasing the image pin of a container that is gone");
            ImageStore::unpin(self, owner).map_err(|e| e.into_runtime_error(owner, false))?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::image::ImportOptions;
    use crate::image::testutil::{Registry, TestImage, require_root, simple_layer};

    fn service() -> (tempfile::TempDir, ImageService) {
        require_root();
        let dir = tempfile::tempdir().unwrap();
        let store = ImageStore::open(dir.path()).unwrap();
        (dir, ImageService::new(store, Vec::new()))
    }

    #[tokio::test]
    async fn cri_semantics() {
        let (_d, svc) = service();
        let img = TestImage::new(&[simple_layer("a")], false);
        svc.store()
            .import_reader(&img.docker_archive(&["a:1", "a:2"])[..], None, "t", &ImportOptions::default(), None)
            .unwrap();
        assert_eq!(svc.image_status("a:1").await.unwrap().unwrap().id, img.id());
        assert!(svc.image_status("b:1").await.unwrap().is_none());
        assert_eq!(svc.list_images().await.unwrap().len(), 1);
        assert!(matches!(svc.image_status("Not Valid").await, Err(RuntimeError::InvalidArgument(_))));

        svc.pin("a:2", "ctr-1").await.unwrap();
        assert!(svc.remove_image("a:1").await.is_err(), "pinned");
        svc.unpin("ctr-1").await.unwrap();
        // By one name: the whole image goes, both names with it.
        svc.remove_image("a:1").await.unwrap();
        assert!(svc.image_status("a:2").await.unwrap().is_none());
        svc.remove_image("a:1").await.unwrap();
        svc.remove_image(&img.id()).await.unwrap();
        assert_eq!(svc.gc(90, 80, HashSet::new()).await.unwrap().removed.len(), 0);
    }

    #[tokio::test]
    async fn concurrent_pulls_of_one_image() {
        let (_d, svc) = service();
        let reg = Registry::start(None);
        let img = TestImage::new(&[simple_layer("p1"), simple_layer("p2")], true);
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("img.tar");
        std::fs::write(&path, img.oci_archive(None)).unwrap();
        reg.push(&format!("oci-archive:{}", path.display()), "p:1", None, false);
        let r = format!("{}/p:1", reg.addr);
        let (a, b, c) = tokio::join!(svc.pull_image(&r, None), svc.pull_image(&r, None), svc.pull_image(&r, None));
        assert_eq!((a.unwrap(), b.unwrap(), c.unwrap()), (img.id(), img.id(), img.id()));
        assert!(svc.pulls.lock().unwrap().is_empty());
        let err = svc.pull_image(&format!("{}/nope:1", reg.addr), None).await.unwrap_err();
        assert!(matches!(err, RuntimeError::ImagePull { .. }), "{err}");
    }
}
