//! Test images built here, never pulled from the internet: Debian's `busybox-static` with its
//! applet links, as a classic `docker save` archive that `skiff image import` loads.

use std::path::PathBuf;

use serde_json::json;
use sha2::{Digest, Sha256};

/// The applets linked in the busybox test image (what the e2e tests run).
const APPLETS: &[&str] = &[
    "sh", "ls", "cat", "echo", "true", "false", "id", "wc", "sleep", "httpd", "wget", "nc", "env", "hostname", "mkdir",
    "touch", "tar", "ps", "kill", "date", "head", "tail", "grep", "sed", "printf", "test", "[", "nslookup", "rm", "cp",
    "mv", "stat", "find", "uname", "exit", "tee", "yes", "seq", "dd", "timeout",
];

/// `sha256:<hex>` of `b`.
pub fn sha256(b: &[u8]) -> String {
    format!("sha256:{}", hex::encode(Sha256::digest(b)))
}

/// Where `busybox` is; panics with the package to install when it is missing.
pub fn busybox_path() -> PathBuf {
    let found = std::env::var_os("PATH")
        .and_then(|paths| std::env::split_paths(&paths).map(|p| p.join("busybox")).find(|p| p.is_file()));
    found.unwrap_or_else(|| panic!("this test needs `busybox`: apt-get install busybox-static (scripts/test.sh does)"))
}

/// Append one entry to a tar being built.
pub fn tar_entry(
    b: &mut tar::Builder<Vec<u8>>,
    path: &str,
    kind: tar::EntryType,
    mode: u32,
    data: &[u8],
    link: Option<&str>,
) {
    let mut h = tar::Header::new_gnu();
    h.set_entry_type(kind);
    h.set_mode(mode);
    h.set_size(data.len() as u64);
    h.set_mtime(1_700_000_000);
    h.set_uid(0);
    h.set_gid(0);
    h.set_path(path).expect("tar path");
    if let Some(l) = link {
        h.set_link_name(l).expect("tar link");
    }
    h.set_cksum();
    b.append(&h, data).expect("tar append");
}

/// One layer: busybox-static, its applet links, `/etc/passwd` and `/etc/group`, `/www`.
pub fn busybox_layer() -> Vec<u8> {
    let busybox = std::fs::read(busybox_path()).expect("reading busybox");
    let mut b = tar::Builder::new(Vec::new());
    for d in ["bin", "etc", "tmp", "var", "www", "root"] {
        tar_entry(&mut b, d, tar::EntryType::Directory, if d == "tmp" { 0o1777 } else { 0o755 }, b"", None);
    }
    tar_entry(&mut b, "bin/busybox", tar::EntryType::Regular, 0o755, &busybox, None);
    for applet in APPLETS {
        tar_entry(&mut b, &format!("bin/{applet}"), tar::EntryType::Symlink, 0o777, b"", Some("busybox"));
    }
    tar_entry(
        &mut b,
        "etc/passwd",
        tar::EntryType::Regular,
        0o644,
        b"root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/:/bin/false\n",
        None,
    );
    tar_entry(&mut b, "etc/group", tar::EntryType::Regular, 0o644, b"root:x:0:\nnogroup:x:65534:\n", None);
    tar_entry(&mut b, "www/index.html", tar::EntryType::Regular, 0o644, b"hello from skiff\n", None);
    b.into_inner().expect("tar")
}

/// A classic `docker save` archive of these (uncompressed) layers.
pub fn docker_archive(layers: &[Vec<u8>], tags: &[&str], cmd: &[&str]) -> Vec<u8> {
    let diff_ids: Vec<String> = layers.iter().map(|l| sha256(l)).collect();
    docker_archive_with(layers, &diff_ids, tags, cmd)
}

/// The same with layer blobs that may be compressed (their diff ids given).
pub fn docker_archive_with(layers: &[Vec<u8>], diff_ids: &[String], tags: &[&str], cmd: &[&str]) -> Vec<u8> {
    let config = serde_json::to_vec(&json!({
        "architecture": "amd64", "os": "linux",
        "config": {"Cmd": cmd, "Env": ["PATH=/bin"], "WorkingDir": "/"},
        "rootfs": {"type": "layers", "diff_ids": diff_ids},
    }))
    .expect("config json");
    let config_name = format!("{}.json", &sha256(&config)[7..]);
    let mut b = tar::Builder::new(Vec::new());
    let mut paths = Vec::new();
    for (i, l) in layers.iter().enumerate() {
        let p = format!("layer{i}/layer.tar");
        tar_entry(&mut b, &p, tar::EntryType::Regular, 0o644, l, None);
        paths.push(p);
    }
    tar_entry(&mut b, &config_name, tar::EntryType::Regular, 0o644, &config, None);
    let manifest =
        serde_json::to_vec(&json!([{"Config": config_name, "RepoTags": tags, "Layers": paths}])).expect("manifest");
    tar_entry(&mut b, "manifest.json", tar::EntryType::Regular, 0o644, &manifest, None);
    b.into_inner().expect("tar")
}

/// The busybox test image (`CMD ["sh"]`) tagged `tags`.
pub fn busybox_archive(tags: &[&str]) -> Vec<u8> {
    docker_archive(&[busybox_layer()], tags, &["sh"])
}
