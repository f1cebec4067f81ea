//! PersistentVolumes and PersistentVolumeClaims: defaults (`volumeMode: Filesystem`, reclaim
//! policy, `status.phase`) and upstream's `ValidatePersistentVolume*` essentials.

use k8s_openapi::api::core::v1::{
    PersistentVolume, PersistentVolumeClaim, PersistentVolumeClaimSpec, PersistentVolumeClaimStatus,
    PersistentVolumeSpec, PersistentVolumeStatus,
};

use crate::field::{ErrorList, FieldError, Path};
use crate::strategy::KindStrategy;
use crate::strategy::common::{
    Raw, canonical_quantity, default_str, enum_value, parse_quantity, validate_label_selector,
};
use crate::validation;

const ACCESS_MODES: &[&str] = &["ReadOnlyMany", "ReadWriteMany", "ReadWriteOnce", "ReadWriteOncePod"];
const VOLUME_MODES: &[&str] = &["Block", "Filesystem"];

/// `SetDefaults_PersistentVolumeClaimSpec`, plus canonical quantities.
pub(crate) fn default_pvc_spec(spec: &mut PersistentVolumeClaimSpec) {
    default_str(&mut spec.volume_mode, "Filesystem");
    if let Some(r) = &mut spec.resources {
        for q in r.requests.iter_mut().chain(r.limits.iter_mut()).flat_map(|m| m.values_mut()) {
            canonical_quantity(q);
        }
    }
}

/// Defaults of a full claim (also used for StatefulSet `volumeClaimTemplates`).
pub(crate) fn default_pvc(pvc: &mut PersistentVolumeClaim) {
    default_pvc_spec(pvc.spec.get_or_insert_with(Default::default));
    let status = pvc.status.get_or_insert_with(PersistentVolumeClaimStatus::default);
    default_str(&mut status.phase, "Pending");
}

fn access_modes(modes: &[String], path: &Path) -> ErrorList {
    let mut errs = ErrorList::new();
    let (mut rwop, mut other) = (false, false);
    for m in modes {
        if !ACCESS_MODES.contains(&m.as_str()) {
            errs.push(FieldError::not_supported(path, m, ACCESS_MODES));
        } else if m == "ReadWriteOncePod" {
            rwop = true;
        } else {
            other = true;
        }
    }
    if rwop && other {
        errs.push(FieldError::forbidden(path, "may not use ReadWriteOncePod with other access modes"));
    }
    errs
}

/// `ValidatePersistentVolumeClaimSpec`.
pub(crate) fn validate_pvc_spec(spec: &PersistentVolumeClaimSpec, path: &Path) -> ErrorList {
    let mut errs = ErrorList::new();
    let modes = spec.access_modes.as_deref().unwrap_or_default();
    if modes.is_empty() {
        errs.push(FieldError::required(&path.child("accessModes"), "at least 1 access mode is required"));
    }
    if let Some(s) = &spec.selector {
        errs.extend(validate_label_selector(s, &path.child("selector")));
    }
    errs.extend(access_modes(modes, &path.child("accessModes")));
    let storage_path = path.child("resources").key("storage");
    match spec.resources.as_ref().and_then(|r| r.requests.as_ref()).and_then(|r| r.get("storage")) {
        None => errs.push(FieldError::required(&storage_path, "")),
        Some(q) => {
            if let Some(v) = parse_quantity(&q.0, &storage_path, &mut errs)
                && (v.is_negative() || v.is_zero())
            {
                errs.push(FieldError::invalid(&storage_path, v.to_string(), "must be greater than zero"));
            }
        }
    }
    if let Some(sc) = spec.storage_class_name.as_deref().filter(|s| !s.is_empty()) {
        errs.extend(validation::invalid_each(&path.child("storageClassName"), sc, validation::dns1123_subdomain(sc)));
    }
    errs.extend(enum_value(spec.volume_mode.as_deref(), VOLUME_MODES, false, &path.child("volumeMode")));
    errs
}

impl KindStrategy for PersistentVolumeClaim {
    fn prepare_for_create(&mut self) {
        self.status = Some(PersistentVolumeClaimStatus::default());
    }

    fn default(&mut self) {
        default_pvc(self);
    }

    fn validate(&self) -> ErrorList {
        let empty = PersistentVolumeClaimSpec::default();
        validate_pvc_spec(self.spec.as_ref().unwrap_or(&empty), &Path::new("spec"))
    }

    fn validate_update(&self, old: &Self) -> ErrorList {
        let mut errs = ErrorList::new();
        let empty = PersistentVolumeClaimSpec::default();
        let new_spec = self.spec.as_ref().unwrap_or(&empty);
        let old_spec = old.spec.as_ref().unwrap_or(&empty);
        let mut new_c = new_spec.clone();
        let mut old_c = old_spec.clone();
        // The binder sets volumeName once.
        if old_spec.volume_name.as_deref().is_none_or(str::is_empty) {
            old_c.volume_name.clone_from(&new_c.volume_name);
        }
        // A claim created without a class may get one later.
        if old_spec.storage_class_name.is_none() && new_spec.storage_class_name.is_some() {
            new_c.storage_class_name = None;
        }
        let bound = self.status.as_ref().and_then(|s| s.phase.as_deref()) == Some("Bound");
        if bound {
            let old_storage =
                old_spec.resources.as_ref().and_then(|r| r.requests.as_ref()).and_then(|r| r.get("storage")).cloned();
            if let (Some(reqs), Some(o)) = (new_c.resources.as_mut().and_then(|r| r.requests.as_mut()), old_storage) {
                reqs.insert("storage".to_string(), o);
            }
            new_c.volume_attributes_class_name.clone_from(&old_c.volume_attributes_class_name);
        }
        if new_c != old_c {
            errs.push(FieldError::forbidden(
                &Path::new("spec"),
                "spec is immutable after creation except resources.requests and volumeAttributesClassName for bound claims",
            ));
        }
        let size = |s: &PersistentVolumeClaimSpec| {
            s.resources
                .as_ref()
                .and_then(|r| r.requests.as_ref())
                .and_then(|r| r.get("storage"))
                .and_then(|q| crate::strategy::common::Qty::parse(&q.0).ok())
        };
        let status_cap = old
            .status
            .as_ref()
            .and_then(|s| s.capacity.as_ref())
            .and_then(|c| c.get("storage"))
            .and_then(|q| crate::strategy::common::Qty::parse(&q.0).ok());
        if let (Some(n), Some(o)) = (size(new_spec), size(old_spec))
            && n < o
            && status_cap.is_none_or(|c| n <= c)
        {
            errs.push(FieldError::forbidden(
                &Path::new("spec").child("resources").child("requests").child("storage"),
                "field can not be less than status.capacity",
            ));
        }
        if new_spec.volume_mode != old_spec.volume_mode {
            errs.push(FieldError::invalid(
                &Path::new("volumeMode"),
                Raw(new_spec.volume_mode.as_deref().map_or("null".to_string(), |m| format!("{m:?}"))),
                validation::IMMUTABLE_MSG,
            ));
        }
        errs
    }
}

/// Names of the volume sources set on a PV spec.
fn pv_sources(s: &PersistentVolumeSpec) -> Vec<&'static str> {
    [
        (s.host_path.is_some(), "hostPath"),
        (s.gce_persistent_disk.is_some(), "gcePersistentDisk"),
        (s.aws_elastic_block_store.is_some(), "awsElasticBlockStore"),
        (s.glusterfs.is_some(), "glusterfs"),
        (s.flocker.is_some(), "flocker"),
        (s.nfs.is_some(), "nfs"),
        (s.rbd.is_some(), "rbd"),
        (s.quobyte.is_some(), "quobyte"),
        (s.cephfs.is_some(), "cephfs"),
        (s.iscsi.is_some(), "iscsi"),
        (s.cinder.is_some(), "cinder"),
        (s.fc.is_some(), "fc"),
        (s.flex_volume.is_some(), "flexVolume"),
        (s.azure_file.is_some(), "azureFile"),
        (s.vsphere_volume.is_some(), "vsphereVolume"),
        (s.photon_persistent_disk.is_some(), "photonPersistentDisk"),
        (s.portworx_volume.is_some(), "portworxVolume"),
        (s.azure_disk.is_some(), "azureDisk"),
        (s.scale_io.is_some(), "scaleIO"),
        (s.local.is_some(), "local"),
        (s.storageos.is_some(), "storageos"),
        (s.csi.is_some(), "csi"),
    ]
    .iter()
    .filter(|(set, _)| *set)
    .map(|(_, n)| *n)
    .collect()
}

/// The source part of a PV spec, for the immutability check.
fn pv_source_json(s: &PersistentVolumeSpec) -> serde_json::Value {
    let mut v = serde_json::to_value(s).unwrap_or_default();
    if let Some(m) = v.as_object_mut() {
        for k in [
            "accessModes",
            "capacity",
            "claimRef",
            "mountOptions",
            "nodeAffinity",
            "persistentVolumeReclaimPolicy",
            "storageClassName",
            "volumeMode",
            "volumeAttributesClassName",
        ] {
            m.remove(k);
        }
    }
    v
}

impl KindStrategy for PersistentVolume {
    fn prepare_for_create(&mut self) {
        self.status = Some(PersistentVolumeStatus::default());
    }

    fn default(&mut self) {
        let spec = self.spec.get_or_insert_with(Default::default);
        default_str(&mut spec.persistent_volume_reclaim_policy, "Retain");
        default_str(&mut spec.volume_mode, "Filesystem");
        for q in spec.capacity.iter_mut().flat_map(|m| m.values_mut()) {
            canonical_quantity(q);
        }
        if let Some(h) = &mut spec.host_path {
            crate::strategy::common::default_to(&mut h.type_, String::new());
        }
        let status = self.status.get_or_insert_with(PersistentVolumeStatus::default);
        default_str(&mut status.phase, "Pending");
    }

    fn validate(&self) -> ErrorList {
        let mut errs = ErrorList::new();
        let empty = PersistentVolumeSpec::default();
        let spec = self.spec.as_ref().unwrap_or(&empty);
        let path = Path::new("spec");
        let modes = spec.access_modes.as_deref().unwrap_or_default();
        if modes.is_empty() {
            errs.push(FieldError::required(&path.child("accessModes"), ""));
        }
        errs.extend(access_modes(modes, &path.child("accessModes")));
        let cap_path = path.child("capacity");
        let cap = spec.capacity.as_ref();
        if cap.is_none_or(|c| c.is_empty()) {
            errs.push(FieldError::required(&cap_path, ""));
        }
        if cap.is_none_or(|c| !c.contains_key("storage") || c.len() > 1) {
            let shown: Vec<String> = cap.into_iter().flatten().map(|(k, v)| format!("{k:?}:{:?}", v.0)).collect();
            errs.push(FieldError::not_supported(
                &cap_path,
                Raw(format!("core.ResourceList{{{}}}", shown.join(", "))),
                &["storage"],
            ));
        }
        for (k, q) in cap.into_iter().flatten() {
            let p = cap_path.key(k);
            if let Some(v) = parse_quantity(&q.0, &p, &mut errs)
                && (v.is_negative() || v.is_zero())
            {
                errs.push(FieldError::invalid(&p, v.to_string(), "must be greater than zero"));
            }
        }
        errs.extend(enum_value(
            spec.persistent_volume_reclaim_policy.as_deref(),
            &["Delete", "Recycle", "Retain"],
            false,
            &path.child("persistentVolumeReclaimPolicy"),
        ));
        let sources = pv_sources(spec);
        if sources.is_empty() {
            errs.push(FieldError::required(&path, "must specify a volume type"));
        }
        for extra in sources.iter().skip(1) {
            errs.push(FieldError::forbidden(&path.child(extra), "may not specify more than 1 volume type"));
        }
        if let Some(h) = &spec.host_path {
            if h.path.is_empty() {
                errs.push(FieldError::required(&path.child("hostPath").child("path"), ""));
            } else {
                errs.extend(super::volumes::no_backsteps(&h.path, &path.child("hostPath").child("path")));
            }
        }
        if let Some(l) = &spec.local {
            if l.path.is_empty() {
                errs.push(FieldError::required(&path.child("local").child("path"), ""));
            }
            if spec.node_affinity.is_none() {
                errs.push(FieldError::required(&path.child("nodeAffinity"), "Local volumes require node affinity"));
            }
        }
        if let Some(n) = &spec.nfs {
            if n.server.is_empty() {
                errs.push(FieldError::required(&path.child("nfs").child("server"), ""));
            }
            if !n.path.starts_with('/') {
                errs.push(FieldError::invalid(&path.child("nfs").child("path"), &n.path, "must be an absolute path"));
            }
        }
        if let Some(c) = &spec.csi {
            errs.extend(super::volumes::csi_driver_name(&c.driver, &path.child("csi").child("driver")));
            if c.volume_handle.is_empty() {
                errs.push(FieldError::required(&path.child("csi").child("volumeHandle"), ""));
            }
        }
        if let Some(na) = &spec.node_affinity {
            match &na.required {
                Some(r) => errs
                    .extend(super::pod_spec::validate_node_selector(r, &path.child("nodeAffinity").child("required"))),
                None => errs.push(FieldError::required(
                    &path.child("nodeAffinity").child("required"),
                    "must specify required node constraints",
                )),
            }
        }
        if let Some(sc) = spec.storage_class_name.as_deref().filter(|s| !s.is_empty()) {
            errs.extend(validation::invalid_each(
                &path.child("storageClassName"),
                sc,
                validation::dns1123_subdomain(sc),
            ));
        }
        errs.extend(enum_value(spec.volume_mode.as_deref(), VOLUME_MODES, false, &path.child("volumeMode")));
        errs
    }

    fn validate_update(&self, old: &Self) -> ErrorList {
        let mut errs = ErrorList::new();
        let empty = PersistentVolumeSpec::default();
        let n = self.spec.as_ref().unwrap_or(&empty);
        let o = old.spec.as_ref().unwrap_or(&empty);
        if pv_source_json(n) != pv_source_json(o) {
            errs.push(FieldError::forbidden(
                &Path::new("spec").child("persistentvolumesource"),
                "spec.persistentvolumesource is immutable after creation",
            ));
        }
        if n.volume_mode != o.volume_mode {
            errs.push(FieldError::invalid(
                &Path::new("volumeMode"),
                Raw(n.volume_mode.as_deref().map_or("null".to_string(), |m| format!("{m:?}"))),
                validation::IMMUTABLE_MSG,
            ));
        }
        if o.node_affinity.is_some() && n.node_affinity != o.node_affinity {
            errs.push(FieldError::invalid(
                &Path::new("spec").child("nodeAffinity"),
                Raw("core.VolumeNodeAffinity{...}".into()),
                "field is immutable, except for updating from beta label to GA",
            ));
        }
        errs
    }
}
