//! Pod volumes: upstream's `SetDefaults_Volume*` and `ValidateVolumes` / `validateVolumeSource`
//! (the sources Skiff can run are checked field by field; the cloud-provider ones are only
//! counted, so "one source per volume" still holds for them).

use std::collections::{BTreeMap, BTreeSet};

use k8s_openapi::api::core::v1::{
    DownwardAPIVolumeFile, EmptyDirVolumeSource, KeyToPath, ObjectFieldSelector, Volume, VolumeProjection,
};

use crate::field::{ErrorList, FieldError, Path};
use crate::strategy::common::{default_to, enum_value, parse_quantity};
use crate::validation;

/// Upstream's `fileModeErrorMsg`.
const FILE_MODE_MSG: &str = "must be a number between 0 and 0777 (octal), both inclusive";
/// 0644.
const DEFAULT_MODE: i32 = 0o644;

/// `SetDefaults_Volume` and the per-source defaults users see in `-o yaml`.
pub(crate) fn default_volume(v: &mut Volume) {
    if no_source(v) {
        v.empty_dir = Some(EmptyDirVolumeSource::default());
    }
    if let Some(s) = &mut v.secret {
        default_to(&mut s.default_mode, DEFAULT_MODE);
    }
    if let Some(c) = &mut v.config_map {
        default_to(&mut c.default_mode, DEFAULT_MODE);
    }
    if let Some(d) = &mut v.downward_api {
        default_to(&mut d.default_mode, DEFAULT_MODE);
        for item in d.items.iter_mut().flatten() {
            default_downward_file(item);
        }
    }
    if let Some(p) = &mut v.projected {
        default_to(&mut p.default_mode, DEFAULT_MODE);
        for src in p.sources.iter_mut().flatten() {
            default_projection(src);
        }
    }
    if let Some(h) = &mut v.host_path {
        default_to(&mut h.type_, String::new());
    }
    if let Some(e) = &mut v.empty_dir
        && let Some(q) = &mut e.size_limit
    {
        crate::strategy::common::canonical_quantity(q);
    }
    if let Some(i) = &mut v.iscsi {
        default_to(&mut i.iscsi_interface, "default".to_string());
    }
    if let Some(r) = &mut v.rbd {
        default_to(&mut r.pool, "rbd".to_string());
        default_to(&mut r.user, "admin".to_string());
        default_to(&mut r.keyring, "/etc/ceph/keyring".to_string());
    }
    if let Some(a) = &mut v.azure_disk {
        default_to(&mut a.caching_mode, "ReadWrite".to_string());
        default_to(&mut a.kind, "Shared".to_string());
        default_to(&mut a.fs_type, "ext4".to_string());
        default_to(&mut a.read_only, false);
    }
    if let Some(s) = &mut v.scale_io {
        default_to(&mut s.storage_mode, "ThinProvisioned".to_string());
        default_to(&mut s.fs_type, "xfs".to_string());
    }
    if let Some(e) = &mut v.ephemeral
        && let Some(t) = &mut e.volume_claim_template
    {
        super::storage::default_pvc_spec(&mut t.spec);
    }
}

fn default_downward_file(f: &mut DownwardAPIVolumeFile) {
    if let Some(r) = &mut f.field_ref {
        default_field_selector(r);
    }
}

/// `SetDefaults_ObjectFieldSelector`: `apiVersion: v1`.
pub(crate) fn default_field_selector(r: &mut ObjectFieldSelector) {
    if r.api_version.as_deref().is_none_or(str::is_empty) {
        r.api_version = Some("v1".to_string());
    }
}

fn default_projection(p: &mut VolumeProjection) {
    if let Some(d) = &mut p.downward_api {
        for item in d.items.iter_mut().flatten() {
            default_downward_file(item);
        }
    }
    if let Some(t) = &mut p.service_account_token {
        default_to(&mut t.expiration_seconds, 3600);
    }
}

fn no_source(v: &Volume) -> bool {
    source_names(v).is_empty()
}

/// The sources set on a volume, in upstream's checking order (with its field names).
fn source_names(v: &Volume) -> Vec<&'static str> {
    let present = [
        (v.empty_dir.is_some(), "emptyDir"),
        (v.host_path.is_some(), "hostPath"),
        (v.git_repo.is_some(), "gitRepo"),
        (v.gce_persistent_disk.is_some(), "gcePersistentDisk"),
        (v.aws_elastic_block_store.is_some(), "awsElasticBlockStore"),
        (v.secret.is_some(), "secret"),
        (v.nfs.is_some(), "nfs"),
        (v.iscsi.is_some(), "iscsi"),
        (v.glusterfs.is_some(), "glusterfs"),
        (v.flocker.is_some(), "flocker"),
        (v.persistent_volume_claim.is_some(), "persistentVolumeClaim"),
        (v.rbd.is_some(), "rbd"),
        (v.cinder.is_some(), "cinder"),
        (v.cephfs.is_some(), "cephFS"),
        (v.quobyte.is_some(), "quobyte"),
        // sic: upstream reports this one under a misspelt path
        (v.downward_api.is_some(), "downwarAPI"),
        (v.fc.is_some(), "fc"),
        (v.flex_volume.is_some(), "flexVolume"),
        (v.config_map.is_some(), "configMap"),
        (v.azure_file.is_some(), "azureFile"),
        (v.vsphere_volume.is_some(), "vsphereVolume"),
        (v.photon_persistent_disk.is_some(), "photonPersistentDisk"),
        (v.portworx_volume.is_some(), "portworxVolume"),
        (v.azure_disk.is_some(), "azureDisk"),
        (v.storageos.is_some(), "storageos"),
        (v.projected.is_some(), "projected"),
        (v.scale_io.is_some(), "scaleIO"),
        (v.csi.is_some(), "csi"),
        (v.ephemeral.is_some(), "ephemeral"),
        (v.image.is_some(), "image"),
    ];
    present.iter().filter(|(set, _)| *set).map(|(_, name)| *name).collect()
}

/// What containers may refer to: volume name → whether it is claim-backed (for volumeDevices).
pub(crate) type VolumeIndex = BTreeMap<String, VolumeKind>;

/// The facts about a volume that container validation needs.
#[derive(Clone, Copy, Debug)]
pub(crate) struct VolumeKind {
    pub(crate) claim: bool,
    pub(crate) image: bool,
}

/// Upstream's `ValidateVolumes`: returns the valid volumes by name, and the errors.
pub(crate) fn validate_volumes(
    volumes: &[Volume],
    pod_name: Option<&str>,
    is_pod: bool,
    path: &Path,
) -> (VolumeIndex, ErrorList) {
    let mut errs = ErrorList::new();
    let mut index = VolumeIndex::new();
    let created_pvcs: BTreeSet<String> = match pod_name {
        Some(p) if !p.is_empty() => {
            volumes.iter().filter(|v| v.ephemeral.is_some()).map(|v| format!("{p}-{}", v.name)).collect()
        }
        _ => BTreeSet::new(),
    };
    for (i, vol) in volumes.iter().enumerate() {
        let ipath = path.index(i);
        let name_path = ipath.child("name");
        let mut el = validate_source(vol, &ipath, pod_name, is_pod);
        if vol.name.is_empty() {
            el.push(FieldError::required(&name_path, ""));
        } else {
            el.extend(validation::invalid_each(&name_path, &vol.name, validation::dns1123_label(&vol.name)));
        }
        if index.contains_key(&vol.name) {
            el.push(FieldError::duplicate(&name_path, &vol.name));
        }
        if el.is_empty() {
            index.insert(
                vol.name.clone(),
                VolumeKind {
                    claim: vol.persistent_volume_claim.is_some() || vol.ephemeral.is_some(),
                    image: vol.image.is_some(),
                },
            );
        } else {
            errs.extend(el);
        }
        if let Some(pvc) = &vol.persistent_volume_claim
            && created_pvcs.contains(&pvc.claim_name)
        {
            errs.push(FieldError::invalid(
                &ipath.child("persistentVolumeClaim").child("claimName"),
                &pvc.claim_name,
                "must not reference a PVC that gets created for an ephemeral volume",
            ));
        }
    }
    (index, errs)
}

fn validate_source(v: &Volume, path: &Path, pod_name: Option<&str>, is_pod: bool) -> ErrorList {
    let mut errs = ErrorList::new();
    let names = source_names(v);
    if names.is_empty() {
        errs.push(FieldError::required(path, "must specify a volume type"));
        return errs;
    }
    for extra in &names[1..] {
        errs.push(FieldError::forbidden(&path.child(extra), "may not specify more than 1 volume type"));
    }
    // Only the first source is validated, as upstream does.
    match names[0] {
        "emptyDir" => {
            if let Some(q) = v.empty_dir.as_ref().and_then(|e| e.size_limit.as_ref()) {
                let mut perrs = ErrorList::new();
                let p = path.child("emptyDir").child("sizeLimit");
                if parse_quantity(&q.0, &p, &mut perrs).is_some_and(|q| q.is_negative()) {
                    errs.push(FieldError::forbidden(&p, "SizeLimit field must be a valid resource quantity"));
                }
                errs.extend(perrs);
            }
        }
        "hostPath" => {
            if let Some(h) = &v.host_path {
                let p = path.child("hostPath");
                if h.path.is_empty() {
                    errs.push(FieldError::required(&p.child("path"), ""));
                } else {
                    errs.extend(no_backsteps(&h.path, &p.child("path")));
                    errs.extend(enum_value(
                        h.type_.as_deref().filter(|t| !t.is_empty()),
                        &[
                            "",
                            "BlockDevice",
                            "CharDevice",
                            "Directory",
                            "DirectoryOrCreate",
                            "File",
                            "FileOrCreate",
                            "Socket",
                        ],
                        false,
                        &p.child("type"),
                    ));
                }
            }
        }
        "secret" => {
            if let Some(s) = &v.secret {
                let p = path.child("secret");
                if s.secret_name.as_deref().is_none_or(str::is_empty) {
                    errs.push(FieldError::required(&p.child("secretName"), ""));
                }
                errs.extend(file_mode(s.default_mode, &p.child("defaultMode")));
                for (i, kp) in s.items.iter().flatten().enumerate() {
                    errs.extend(key_to_path(kp, &p.child("items").index(i)));
                }
            }
        }
        "configMap" => {
            if let Some(c) = &v.config_map {
                let p = path.child("configMap");
                if c.name.is_empty() {
                    errs.push(FieldError::required(&p.child("name"), ""));
                }
                errs.extend(file_mode(c.default_mode, &p.child("defaultMode")));
                for (i, kp) in c.items.iter().flatten().enumerate() {
                    errs.extend(key_to_path(kp, &p.child("items").index(i)));
                }
            }
        }
        "persistentVolumeClaim" if v.persistent_volume_claim.as_ref().is_some_and(|c| c.claim_name.is_empty()) => {
            errs.push(FieldError::required(&path.child("persistentVolumeClaim").child("claimName"), ""));
        }
        "nfs" => {
            if let Some(n) = &v.nfs {
                let p = path.child("nfs");
                if n.server.is_empty() {
                    errs.push(FieldError::required(&p.child("server"), ""));
                }
                if n.path.is_empty() {
                    errs.push(FieldError::required(&p.child("path"), ""));
                }
                if !n.path.starts_with('/') {
                    errs.push(FieldError::invalid(&p.child("path"), &n.path, "must be an absolute path"));
                }
            }
        }
        "downwarAPI" => {
            if let Some(d) = &v.downward_api {
                let p = path.child("downwardAPI");
                errs.extend(file_mode(d.default_mode, &p.child("defaultMode")));
                for f in d.items.iter().flatten() {
                    errs.extend(downward_file(f, &p));
                }
            }
        }
        "projected" => {
            if let Some(pr) = &v.projected {
                let p = path.child("projected");
                errs.extend(file_mode(pr.default_mode, &p.child("defaultMode")));
                errs.extend(projection_sources(pr.sources.as_deref().unwrap_or_default(), &p));
            }
        }
        "csi" => {
            if let Some(c) = &v.csi {
                errs.extend(csi_driver_name(&c.driver, &path.child("csi").child("driver")));
            }
        }
        "ephemeral" => {
            if let Some(e) = &v.ephemeral {
                let p = path.child("ephemeral");
                match &e.volume_claim_template {
                    None => errs.push(FieldError::required(&p.child("volumeClaimTemplate"), "")),
                    Some(t) => {
                        errs.extend(super::storage::validate_pvc_spec(
                            &t.spec,
                            &p.child("volumeClaimTemplate").child("spec"),
                        ));
                        if let Some(pod) = pod_name.filter(|p| !p.is_empty())
                            && !v.name.is_empty()
                        {
                            let pvc = format!("{pod}-{}", v.name);
                            for msg in validation::dns1123_subdomain(&pvc) {
                                errs.push(FieldError::invalid(
                                    &path.child("name"),
                                    &v.name,
                                    format!("PVC name {pvc:?}: {msg}"),
                                ));
                            }
                        }
                    }
                }
            }
        }
        "image" => {
            if let Some(img) = &v.image {
                let p = path.child("image");
                if is_pod && img.reference.as_deref().is_none_or(str::is_empty) {
                    errs.push(FieldError::required(&p.child("reference"), ""));
                }
                errs.extend(super::pod_spec::pull_policy(img.pull_policy.as_deref(), &p.child("pullPolicy")));
            }
        }
        "gitRepo" => {
            if let Some(g) = &v.git_repo {
                let p = path.child("gitRepo");
                if g.repository.is_empty() {
                    errs.push(FieldError::required(&p.child("repository"), ""));
                }
                errs.extend(local_descending_path(g.directory.as_deref().unwrap_or_default(), &p.child("directory")));
            }
        }
        "iscsi" => {
            if let Some(i) = &v.iscsi {
                let p = path.child("iscsi");
                if i.target_portal.is_empty() {
                    errs.push(FieldError::required(&p.child("targetPortal"), ""));
                }
                if i.iqn.is_empty() {
                    errs.push(FieldError::required(&p.child("iqn"), ""));
                }
                if !(0..=255).contains(&i.lun) {
                    errs.push(FieldError::invalid(&p.child("lun"), i.lun, validation::inclusive_range_msg(0, 255)));
                }
            }
        }
        _ => {}
    }
    errs
}

/// `ValidateCSIDriverName`.
pub(crate) fn csi_driver_name(name: &str, path: &Path) -> ErrorList {
    let mut errs = ErrorList::new();
    if name.is_empty() {
        errs.push(FieldError::required(path, ""));
    }
    if name.len() > 63 {
        errs.push(FieldError::too_long(path, 63));
    }
    errs.extend(validation::invalid_each(path, name, validation::dns1123_subdomain(&name.to_lowercase())));
    errs
}

fn file_mode(mode: Option<i32>, path: &Path) -> ErrorList {
    match mode {
        Some(m) if !(0..=0o777).contains(&m) => vec![FieldError::invalid(path, m, FILE_MODE_MSG)],
        _ => Vec::new(),
    }
}

fn key_to_path(kp: &KeyToPath, path: &Path) -> ErrorList {
    let mut errs = ErrorList::new();
    if kp.key.is_empty() {
        errs.push(FieldError::required(&path.child("key"), ""));
    }
    if kp.path.is_empty() {
        errs.push(FieldError::required(&path.child("path"), ""));
    }
    errs.extend(local_non_reserved_path(&kp.path, &path.child("path")));
    errs.extend(file_mode(kp.mode, &path.child("mode")));
    errs
}

const VOLUME_FIELD_PATHS: &[&str] =
    &["metadata.annotations", "metadata.labels", "metadata.name", "metadata.namespace", "metadata.uid"];

fn downward_file(f: &DownwardAPIVolumeFile, path: &Path) -> ErrorList {
    let mut errs = ErrorList::new();
    if f.path.is_empty() {
        errs.push(FieldError::required(&path.child("path"), ""));
    }
    errs.extend(local_non_reserved_path(&f.path, &path.child("path")));
    match (&f.field_ref, &f.resource_field_ref) {
        (Some(r), other) => {
            errs.extend(super::pod_spec::object_field_selector(r, VOLUME_FIELD_PATHS, &path.child("fieldRef")));
            if other.is_some() {
                errs.push(FieldError::invalid(
                    path,
                    "resource",
                    "fieldRef and resourceFieldRef can not be specified simultaneously",
                ));
            }
        }
        (None, Some(r)) => {
            errs.extend(super::pod_spec::resource_field_selector(r, true, &path.child("resourceFieldRef")))
        }
        (None, None) => errs.push(FieldError::required(path, "one of fieldRef and resourceFieldRef is required")),
    }
    errs.extend(file_mode(f.mode, &path.child("mode")));
    errs
}

fn projection_sources(sources: &[VolumeProjection], path: &Path) -> ErrorList {
    let mut errs = ErrorList::new();
    let mut paths = BTreeSet::new();
    let mut seen = |p: &str, bad: &str, errs: &mut ErrorList| {
        if !p.is_empty() && !paths.insert(p.to_string()) {
            errs.push(FieldError::invalid(path, bad, "conflicting duplicate paths"));
        }
    };
    for (i, src) in sources.iter().enumerate() {
        let spath = path.child("sources").index(i);
        let mut n = 0;
        if let Some(s) = &src.secret {
            n += 1;
            let p = spath.child("secret");
            if s.name.is_empty() {
                errs.push(FieldError::required(&p.child("name"), ""));
            }
            for (j, kp) in s.items.iter().flatten().enumerate() {
                errs.extend(key_to_path(kp, &p.child("items").index(j)));
                seen(&kp.path, &s.name, &mut errs);
            }
        }
        if let Some(c) = &src.config_map {
            n += 1;
            let p = spath.child("configMap");
            if c.name.is_empty() {
                errs.push(FieldError::required(&p.child("name"), ""));
            }
            for (j, kp) in c.items.iter().flatten().enumerate() {
                errs.extend(key_to_path(kp, &p.child("items").index(j)));
                seen(&kp.path, &c.name, &mut errs);
            }
        }
        if let Some(d) = &src.downward_api {
            n += 1;
            let p = spath.child("downwardAPI");
            for f in d.items.iter().flatten() {
                errs.extend(downward_file(f, &p));
                seen(&f.path, &f.path, &mut errs);
            }
        }
        if let Some(t) = &src.service_account_token {
            n += 1;
            let p = spath.child("serviceAccountToken");
            let exp = t.expiration_seconds.unwrap_or(3600);
            if exp < 600 {
                errs.push(FieldError::invalid(
                    &p.child("expirationSeconds"),
                    exp,
                    "may not specify a duration less than 10 minutes",
                ));
            }
            if exp > 1 << 32 {
                errs.push(FieldError::invalid(
                    &p.child("expirationSeconds"),
                    exp,
                    "may not specify a duration larger than 2^32 seconds",
                ));
            }
            if t.path.is_empty() {
                errs.push(FieldError::required(&path.child("path"), ""));
            } else {
                errs.extend(local_non_reserved_path(&t.path, &path.child("path")));
            }
        }
        if src.cluster_trust_bundle.is_some() {
            n += 1;
        }
        if n > 1 {
            errs.push(FieldError::forbidden(&spath, "may not specify more than 1 volume type per source"));
        }
    }
    errs
}

/// `validatePathNoBacksteps`.
pub(crate) fn no_backsteps(target: &str, path: &Path) -> ErrorList {
    if target.replace('\\', "/").split('/').any(|p| p == "..") {
        vec![FieldError::invalid(path, target, "must not contain '..'")]
    } else {
        Vec::new()
    }
}

/// `validateLocalDescendingPath`: relative, no `..` elements.
pub(crate) fn local_descending_path(target: &str, path: &Path) -> ErrorList {
    let mut errs = ErrorList::new();
    if target.starts_with('/') {
        errs.push(FieldError::invalid(path, target, "must be a relative path"));
    }
    errs.extend(no_backsteps(target, path));
    errs
}

/// `ValidateLocalNonReservedPath`: also may not start with `..`.
pub(crate) fn local_non_reserved_path(target: &str, path: &Path) -> ErrorList {
    let mut errs = local_descending_path(target, path);
    if target.starts_with("..") && !target.starts_with("../") {
        errs.push(FieldError::invalid(path, target, "must not start with '..'"));
    }
    errs
}
