//! ImageLocality: prefers nodes that already have the pod's images, scaled by how widely each
//! image is spread (so one node holding an image does not attract every pod).

use crate::cache::{NodeInfo, PodInfo, Snapshot, normalized_image_name};

const MB: i64 = 1024 * 1024;
/// Below this, images are too small to matter (upstream `minThreshold`).
const MIN_THRESHOLD: i64 = 23 * MB;
/// Per-container ceiling (upstream `maxContainerThreshold`).
const MAX_CONTAINER_THRESHOLD: i64 = 1000 * MB;

pub(crate) fn score(pod: &PodInfo, node: &NodeInfo, snapshot: &Snapshot) -> i64 {
    let Some(spec) = pod.pod.spec.as_ref() else { return 0 };
    let total_nodes = snapshot.nodes.len().max(1) as f64;
    let containers: Vec<_> = spec.init_containers.iter().flatten().chain(spec.containers.iter()).collect();
    let mut sum: i64 = 0;
    for c in &containers {
        let Some(image) = c.image.as_deref() else { continue };
        let name = normalized_image_name(image);
        if let Some(size) = node.images.get(&name) {
            let spread = snapshot.image_nodes.get(&name).copied().unwrap_or(0) as f64 / total_nodes;
            sum += (*size as f64 * spread) as i64;
        }
    }
    let max_threshold = MAX_CONTAINER_THRESHOLD * containers.len() as i64;
    let clamped = sum.clamp(MIN_THRESHOLD, max_threshold.max(MIN_THRESHOLD));
    if max_threshold <= MIN_THRESHOLD {
        return 0;
    }
    100 * (clamped - MIN_THRESHOLD) / (max_threshold - MIN_THRESHOLD)
}
