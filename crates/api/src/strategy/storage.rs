//! Strategies for storage.k8s.io/v1 kinds: StorageClass (reclaim and binding defaults,
//! immutable parameters), CSIDriver (its many defaults), CSINode, CSIStorageCapacity and
//! VolumeAttachment.

use std::collections::BTreeSet;

use k8s_openapi::api::storage::v1::{CSIDriver, CSINode, CSIStorageCapacity, StorageClass, VolumeAttachment};

use crate::field::{ErrorList, FieldError, Path};
use crate::strategy::KindStrategy;
use crate::strategy::common::{Raw, canonical_quantity, default_str, default_to, enum_value};
use crate::validation;

/// Upstream's `maxProvisionerParameterSize` / `maxProvisionerParameterLen`.
const MAX_PARAMETERS_SIZE: usize = 256 * 1024;
const MAX_PARAMETERS: usize = 512;

impl KindStrategy for StorageClass {
    fn default(&mut self) {
        default_str(&mut self.reclaim_policy, "Delete");
        default_str(&mut self.volume_binding_mode, "Immediate");
    }

    fn validate(&self) -> ErrorList {
        let mut errs = ErrorList::new();
        let prov = Path::new("provisioner");
        if self.provisioner.is_empty() {
            errs.push(FieldError::required(&prov, ""));
        } else {
            errs.extend(validation::invalid_each(
                &prov,
                &self.provisioner,
                validation::qualified_name(&self.provisioner.to_lowercase()),
            ));
        }
        let params = self.parameters.clone().unwrap_or_default();
        if params.len() > MAX_PARAMETERS {
            errs.push(FieldError::too_many(&Path::new("parameters"), params.len(), MAX_PARAMETERS));
        }
        let size: usize = params.iter().map(|(k, v)| k.len() + v.len()).sum();
        if size > MAX_PARAMETERS_SIZE {
            errs.push(FieldError::too_long(&Path::new("parameters"), MAX_PARAMETERS_SIZE));
        }
        for k in params.keys() {
            if k.is_empty() {
                errs.push(FieldError::invalid(&Path::new("parameters"), k, "field can not be empty."));
            }
        }
        errs.extend(enum_value(
            self.reclaim_policy.as_deref(),
            &["Delete", "Retain"],
            false,
            &Path::new("reclaimPolicy"),
        ));
        errs.extend(enum_value(
            self.volume_binding_mode.as_deref(),
            &["Immediate", "WaitForFirstConsumer"],
            true,
            &Path::new("volumeBindingMode"),
        ));
        errs
    }

    fn validate_update(&self, old: &Self) -> ErrorList {
        let mut errs = ErrorList::new();
        if self.parameters.clone().unwrap_or_default() != old.parameters.clone().unwrap_or_default() {
            errs.push(FieldError::forbidden(&Path::new("parameters"), "updates to parameters are forbidden."));
        }
        if self.provisioner != old.provisioner {
            errs.push(FieldError::forbidden(&Path::new("provisioner"), "updates to provisioner are forbidden."));
        }
        if self.reclaim_policy != old.reclaim_policy {
            errs.push(FieldError::forbidden(&Path::new("reclaimPolicy"), "updates to reclaimPolicy are forbidden."));
        }
        if self.volume_binding_mode != old.volume_binding_mode {
            errs.push(FieldError::invalid(
                &Path::new("volumeBindingMode"),
                self.volume_binding_mode.clone().unwrap_or_default(),
                validation::IMMUTABLE_MSG,
            ));
        }
        errs
    }
}

impl KindStrategy for CSIDriver {
    fn default(&mut self) {
        let spec = &mut self.spec;
        default_to(&mut spec.attach_required, true);
        default_to(&mut spec.pod_info_on_mount, false);
        default_to(&mut spec.storage_capacity, false);
        default_str(&mut spec.fs_group_policy, "ReadWriteOnceWithFSType");
        if spec.volume_lifecycle_modes.as_ref().is_none_or(Vec::is_empty) {
            spec.volume_lifecycle_modes = Some(vec!["Persistent".to_string()]);
        }
        default_to(&mut spec.requires_republish, false);
        default_to(&mut spec.se_linux_mount, false);
    }

    fn validate(&self) -> ErrorList {
        let name = self.metadata.name.clone().unwrap_or_default();
        let mut errs = crate::strategy::core::volumes::csi_driver_name(&name, &Path::new("name"));
        let spec = &self.spec;
        errs.extend(enum_value(
            spec.fs_group_policy.as_deref(),
            &["File", "None", "ReadWriteOnceWithFSType"],
            false,
            &Path::new("spec").child("fsGroupPolicy"),
        ));
        for (i, m) in spec.volume_lifecycle_modes.iter().flatten().enumerate() {
            errs.extend(enum_value(
                Some(m),
                &["Ephemeral", "Persistent"],
                true,
                &Path::new("spec").child("volumeLifecycleModes").index(i),
            ));
        }
        errs
    }

    fn validate_update(&self, old: &Self) -> ErrorList {
        let mut errs = ErrorList::new();
        let p = Path::new("spec");
        if self.spec.attach_required != old.spec.attach_required {
            errs.push(FieldError::invalid(
                &p.child("attachRequired"),
                Raw(format!("{:?}", self.spec.attach_required.unwrap_or(true))),
                validation::IMMUTABLE_MSG,
            ));
        }
        errs
    }
}

impl KindStrategy for CSINode {
    fn validate(&self) -> ErrorList {
        let mut errs = ErrorList::new();
        let mut names = BTreeSet::new();
        for (i, d) in self.spec.drivers.iter().enumerate() {
            let p = Path::new("spec").child("drivers").index(i);
            errs.extend(crate::strategy::core::volumes::csi_driver_name(&d.name, &p.child("name")));
            if !names.insert(d.name.as_str()) {
                errs.push(FieldError::duplicate(&p.child("name"), &d.name));
            }
            if d.node_id.is_empty() {
                errs.push(FieldError::required(&p.child("nodeID"), ""));
            }
        }
        errs
    }
}

impl KindStrategy for CSIStorageCapacity {
    fn default(&mut self) {
        for q in [&mut self.capacity, &mut self.maximum_volume_size].into_iter().flatten() {
            canonical_quantity(q);
        }
    }

    fn validate(&self) -> ErrorList {
        let sc = &self.storage_class_name;
        let p = Path::new("storageClassName");
        if sc.is_empty() {
            return vec![FieldError::required(&p, "")];
        }
        validation::invalid_each(&p, sc, validation::dns1123_subdomain(sc))
    }
}

impl KindStrategy for VolumeAttachment {
    fn prepare_for_create(&mut self) {
        self.status = None;
    }

    fn validate(&self) -> ErrorList {
        let mut errs = ErrorList::new();
        let p = Path::new("spec");
        errs.extend(crate::strategy::core::volumes::csi_driver_name(&self.spec.attacher, &p.child("attacher")));
        if self.spec.node_name.is_empty() {
            errs.push(FieldError::required(&p.child("nodeName"), ""));
        } else {
            errs.extend(validation::invalid_each(
                &p.child("nodeName"),
                &self.spec.node_name,
                validation::dns1123_subdomain(&self.spec.node_name),
            ));
        }
        let s = &self.spec.source;
        let n = usize::from(s.persistent_volume_name.is_some()) + usize::from(s.inline_volume_spec.is_some());
        if n != 1 {
            errs.push(FieldError::invalid(
                &p.child("source"),
                Raw("storage.VolumeAttachmentSource{...}".into()),
                "must specify exactly one of inlineVolumeSpec and persistentVolumeName",
            ));
        }
        errs
    }

    fn validate_update(&self, old: &Self) -> ErrorList {
        if self.spec != old.spec {
            return vec![FieldError::invalid(
                &Path::new("spec"),
                Raw("storage.VolumeAttachmentSpec{...}".into()),
                validation::IMMUTABLE_MSG,
            )];
        }
        Vec::new()
    }
}
