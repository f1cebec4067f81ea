//! Host cleanup for `skiff reset` and for tests: remove everything the runtime created for a
//! data dir — supervisors and containers (killed), cgroups, mounts (namespace bind mounts,
//! shm), CNI attachments, the node bridge and pod veths, and the state dir. Works from the
//! state dir alone (no running runtime needed) and is safe to run twice.

use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use super::cgroups::Cgroups;
use super::network::{NetOps, RtNetlink};
use super::runtime::{NODE_FILE, NetworkRecord, NodeRecord, ROUTES_FILE, SandboxRecord};
use super::{default_names, mountinfo, shim};

/// What [`reset`] did.
#[derive(Debug, Default)]
pub struct ResetReport {
    /// Supervisor and container processes killed.
    pub killed: usize,
    pub unmounted: Vec<PathBuf>,
    pub links_deleted: Vec<String>,
    pub cgroup_root: Option<String>,
    /// Problems met; reset carries on past each.
    pub errors: Vec<String>,
}

fn kill(pid: i32) -> bool {
    nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), nix::sys::signal::Signal::SIGKILL).is_ok()
}

/// Remove everything the runtime created under `data_dir`.
pub fn reset(data_dir: &Path) -> ResetReport {
    let mut report = ResetReport::default();
    let state = data_dir.join("runtime");
    let node: NodeRecord =
        fs::read(state.join(NODE_FILE)).ok().and_then(|b| serde_json::from_slice(&b).ok()).unwrap_or_else(|| {
            let (bridge, cgroup_root) = default_names(data_dir);
            NodeRecord { bridge, cgroup_root, pod_cidr: String::new() }
        });

    // 1. Supervisors first (so none records or restarts anything), then their containers.
    for e in fs::read_dir(state.join("containers")).into_iter().flatten().flatten() {
        if let Ok(st) = shim::read_status(&e.path()) {
            if shim::alive(st.shim_pid, st.shim_start) && kill(st.shim_pid) {
                report.killed += 1;
            }
            if shim::alive(st.pid, st.pid_start) && kill(st.pid) {
                report.killed += 1;
            }
        }
    }

    // 2. Every process left in the node's cgroups, then the groups.
    match Cgroups::detect(&node.cgroup_root) {
        Ok(cg) => {
            if cg.dirs("").iter().any(|d| d.exists()) {
                report.cgroup_root = Some(node.cgroup_root.clone());
            }
            if let Err(e) = cg.remove("") {
                report.errors.push(format!("removing cgroups: {e}"));
            }
        }
        Err(e) => report.errors.push(format!("cgroups: {e}")),
    }

    // 3. CNI attachments (their plugins clean up addresses and host links).
    let sandboxes: Vec<(String, PathBuf, SandboxRecord)> = fs::read_dir(state.join("sandboxes"))
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| {
            let rec: SandboxRecord = serde_json::from_slice(&fs::read(e.path().join("sandbox.json")).ok()?).ok()?;
            Some((rec.id.clone(), e.path(), rec))
        })
        .collect();
    let cni: Vec<_> = sandboxes
        .iter()
        .filter_map(|(id, dir, rec)| match &rec.network {
            Some(NetworkRecord::Cni(att)) => Some((id.clone(), super::network::netns_path(dir), att.clone())),
            _ => None,
        })
        .collect();
    if !cni.is_empty() {
        let errors = std::thread::spawn(move || {
            let mut errors = Vec::new();
            match tokio::runtime::Builder::new_current_thread().enable_all().build() {
                Ok(rt) => {
                    for (id, netns, att) in cni {
                        if let Err(e) = rt.block_on(super::cni::del(&id, &netns, &att)) {
                            errors.push(format!("CNI DEL for sandbox {id}: {e}"));
                        }
                    }
                }
                Err(e) => errors.push(format!("CNI: {e}")),
            }
            errors
        })
        .join()
        .unwrap_or_default();
        report.errors.extend(errors);
    }

    // 4. Mounts under the data dir, deepest first.
    match mountinfo::read() {
        Ok(mounts) => {
            let mut ours: Vec<PathBuf> =
                mounts.into_iter().map(|m| m.mountpoint).filter(|p| p.starts_with(data_dir) && p != data_dir).collect();
            ours.sort_by_key(|p| std::cmp::Reverse(p.components().count()));
            ours.dedup();
            for p in ours {
                match nix::mount::umount2(&p, nix::mount::MntFlags::MNT_DETACH) {
                    Ok(()) => report.unmounted.push(p),
                    Err(nix::errno::Errno::EINVAL) | Err(nix::errno::Errno::ENOENT) => {}
                    Err(e) => report.errors.push(format!("unmounting {}: {e}", p.display())),
                }
            }
        }
        Err(e) => report.errors.push(format!("reading mountinfo: {e}")),
    }

    // 5. Links: pod veths (normally gone with their namespaces) and the bridge.
    let mut links: Vec<String> = sandboxes
        .iter()
        .filter_map(|(_, _, rec)| match &rec.network {
            Some(NetworkRecord::Builtin(att)) => Some(att.host_veth.clone()),
            _ => None,
        })
        .collect();
    links.push(node.bridge.clone());
    links.push(super::runtime::vxlan_name(&node.bridge));
    // Routes to other nodes' pod ranges (host-gw) this node made.
    let routes: std::collections::BTreeMap<String, std::net::Ipv4Addr> =
        fs::read(state.join(ROUTES_FILE)).ok().and_then(|b| serde_json::from_slice(&b).ok()).unwrap_or_default();
    let (deleted, errors) = std::thread::spawn(move || {
        let mut deleted = Vec::new();
        let mut errors = Vec::new();
        match RtNetlink::new() {
            Ok(mut nl) => {
                for (cidr, gw) in routes {
                    let parsed = cidr.split_once('/').and_then(|(ip, len)| Some((ip.parse().ok()?, len.parse().ok()?)));
                    match parsed {
                        Some((ip, len)) => {
                            if let Err(e) = nl.delete_route(ip, len, gw) {
                                errors.push(format!("deleting route {cidr} via {gw}: {e}"));
                            }
                        }
                        None => errors.push(format!("bad recorded route {cidr:?}")),
                    }
                }
                for l in links {
                    match nl.link_exists(&l) {
                        Ok(true) => match nl.delete_link(&l) {
                            Ok(()) => deleted.push(l),
                            Err(e) => errors.push(format!("deleting link {l}: {e}")),
                        },
                        Ok(false) => {}
                        Err(e) => errors.push(format!("looking up link {l}: {e}")),
                    }
                }
            }
            Err(e) => errors.push(format!("netlink: {e}")),
        }
        (deleted, errors)
    })
    .join()
    .unwrap_or_default();
    report.links_deleted = deleted;
    report.errors.extend(errors);

    // 6. Files.
    match fs::remove_dir_all(&state) {
        Ok(()) => {}
        Err(e) if e.kind() == io::ErrorKind::NotFound => {}
        Err(e) => report.errors.push(format!("removing {}: {e}", state.display())),
    }
    report
}
