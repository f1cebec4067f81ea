//! ImageLocality: prefers nodes that already have the pod's images, scaled by how widely each
//! image is spread (so one node holding an image does not attract every pod).

use crate::cache::{NodeInfo, PodInfo, Snapshot, normalized_image_name};

const MB: i64 = 1024 * 1024;
/// Below this, images are too small to matter (upstream `minThreshold`).
const MIN_THRESHOLD: i64 = 23 * MB;
/// Per-container ceiling (upstream `maxContainerThreshold`).
const MAX_CONTAINER_THRESHOLD: i64 = 1000 * MB;

/// The pod's images, normalized once per cycle (init containers too), each with the share of
/// nodes that have it, and how many containers it has. The share is the same on every node:
/// looked up once here, not once per node scored.
pub(crate) struct PodImages {
    names: Vec<(String, f64)>,
    containers: usize,
}

impl PodImages {
    /// Whether the plugin scores 0 on every node: no node has any of the pod's images (a
    /// spread of 0), or the images are too few to pass the minimum. The cycle then skips the
    /// per-node call, which would read every node's image map only to add nothing.
    pub(crate) fn scores_nothing(&self) -> bool {
        MAX_CONTAINER_THRESHOLD * self.containers as i64 <= MIN_THRESHOLD || self.names.iter().all(|(_, s)| *s == 0.0)
    }
}

pub(crate) fn pod_images(pod: &PodInfo, snapshot: &Snapshot) -> PodImages {
    let Some(spec) = pod.pod.spec.as_ref() else { return PodImages { names: Vec::new(), containers: 0 } };
    let containers: Vec<_> = spec.init_containers.iter().flatten().chain(spec.containers.iter()).collect();
    let total_nodes = snapshot.nodes.len().max(1) as f64;
    let spread = |name: &String| snapshot.image_nodes.get(name).copied().unwrap_or(0) as f64 / total_nodes;
    PodImages {
        names: containers
            .iter()
            .filter_map(|c| c.image.as_deref())
            .map(normalized_image_name)
            .map(|n| {
                let s = spread(&n);
                (n, s)
            })
            .collect(),
        containers: containers.len(),
    }
}

pub(crate) fn score(images: &PodImages, node: &NodeInfo) -> i64 {
    let max_threshold = MAX_CONTAINER_THRESHOLD * images.containers as i64;
    // No image here: the sum is 0, clamped to the minimum, which scores 0.
    if max_threshold <= MIN_THRESHOLD || node.images.is_empty() {
        return 0;
    }
    let mut sum: i64 = 0;
    for (name, spread) in &images.names {
        if let Some(size) = node.images.get(name) {
            sum += (*size as f64 * spread) as i64;
        }
    }
    let clamped = sum.clamp(MIN_THRESHOLD, max_threshold);
    100 * (clamped - MIN_THRESHOLD) / (max_threshold - MIN_THRESHOLD)
}
