//! Strategies for storage/v1 kinds.

use k8s_openapi::api::storage::v1::{CSIDriver, CSINode, CSIStorageCapacity, StorageClass, VolumeAttachment};

use crate::strategy::KindStrategy;

impl KindStrategy for CSIDriver {}
impl KindStrategy for CSINode {}
impl KindStrategy for CSIStorageCapacity {}
impl KindStrategy for StorageClass {}
impl KindStrategy for VolumeAttachment {}
