//! cgroups for pods and containers, v1 (one hierarchy per controller) or v2 (unified):
//! creating the node's `kubepods`-like root (with `besteffort` and `burstable` sub-trees) and
//! pod and container groups below it, writing cpu/memory/pids limits, reading usage for
//! `container_stats`, telling OOM kills, and removing groups (killing what is left in them).
//!
//! Paths handed around are *relative* to the node root (`burstable/pod<uid>/<container>`),
//! so one relative path names a group in every v1 hierarchy at once.

use std::fs;
use std::io;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use super::syscall::Syscall;
use crate::cri::Resources;

/// The v1 controllers we use (each may be co-mounted with others).
const V1_CONTROLLERS: &[&str] = &["cpu", "cpuacct", "memory", "pids"];
/// What v2 groups enable for their children.
const V2_CONTROLLERS: &[&str] = &["cpu", "memory", "pids"];

#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Hierarchy {
    /// (controller, mount point) for each v1 controller we use.
    V1(Vec<(String, PathBuf)>),
    /// The cgroup2 mount point.
    V2(PathBuf),
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Cgroups {
    pub(crate) hierarchy: Hierarchy,
    /// The node's root group name (like the kubelet's `kubepods`).
    pub(crate) root: String,
}

/// CPU shares (v1, 2..262144) to weight (v2, 1..10000), as the kubelet and runc convert.
pub(crate) fn shares_to_weight(shares: u64) -> u64 {
    if shares == 0 {
        return 100;
    }
    let shares = shares.clamp(2, 262_144);
    1 + ((shares - 2) * 9999) / 262_142
}

impl Cgroups {
    /// Find the hierarchies from `/proc/self/mountinfo`.
    pub(crate) fn detect(root: &str) -> io::Result<Self> {
        let text = fs::read_to_string("/proc/self/mountinfo")?;
        Self::from_mountinfo(&text, root)
            .ok_or_else(|| io::Error::new(io::ErrorKind::NotFound, "no usable cgroup hierarchy is mounted"))
    }

    /// v1 when the controllers we need are mounted as v1 hierarchies (also on a "hybrid" host
    /// where a controller-less cgroup2 sits at /sys/fs/cgroup/unified), else v2.
    pub(crate) fn from_mountinfo(text: &str, root: &str) -> Option<Self> {
        let mut v1: Vec<(String, PathBuf)> = Vec::new();
        let mut v2: Option<PathBuf> = None;
        for m in super::mountinfo::parse(text) {
            match m.fstype.as_str() {
                "cgroup" => {
                    for c in m.super_options.split(',') {
                        if V1_CONTROLLERS.contains(&c) && !v1.iter().any(|(n, _)| n == c) {
                            v1.push((c.to_string(), m.mountpoint.clone()));
                        }
                    }
                }
                "cgroup2" if v2.is_none() => v2 = Some(m.mountpoint.clone()),
                _ => {}
            }
        }
        let hierarchy = if v1.iter().any(|(c, _)| c == "memory") {
            v1.sort();
            Hierarchy::V1(v1)
        } else {
            Hierarchy::V2(v2?)
        };
        Some(Self { hierarchy, root: root.to_string() })
    }

    pub(crate) fn is_v2(&self) -> bool {
        matches!(self.hierarchy, Hierarchy::V2(_))
    }

    /// The distinct directories of group `rel` (one per mounted hierarchy).
    pub(crate) fn dirs(&self, rel: &str) -> Vec<PathBuf> {
        let rel = rel.trim_matches('/');
        let mut out: Vec<PathBuf> = Vec::new();
        let mut push = |mount: &Path| {
            let mut p = mount.join(&self.root);
            if !rel.is_empty() {
                p = p.join(rel);
            }
            if !out.contains(&p) {
                out.push(p);
            }
        };
        match &self.hierarchy {
            Hierarchy::V1(list) => list.iter().for_each(|(_, m)| push(m)),
            Hierarchy::V2(m) => push(m),
        }
        out
    }

    fn controller_dir(&self, controller: &str, rel: &str) -> Option<PathBuf> {
        let rel = rel.trim_matches('/');
        let mount = match &self.hierarchy {
            Hierarchy::V1(list) => list.iter().find(|(c, _)| c == controller).map(|(_, m)| m)?,
            Hierarchy::V2(m) => m,
        };
        let p = mount.join(&self.root);
        Some(if rel.is_empty() { p } else { p.join(rel) })
    }

    /// The node root and its QoS sub-trees.
    pub(crate) fn ensure_node(&self, sys: &dyn Syscall) -> io::Result<()> {
        for sub in ["", "besteffort", "burstable"] {
            self.create(sys, sub, None)?;
        }
        Ok(())
    }

    /// Create group `rel` (and its parents) in every hierarchy and apply `res`.
    pub(crate) fn create(&self, sys: &dyn Syscall, rel: &str, res: Option<&Resources>) -> io::Result<()> {
        if let Hierarchy::V2(mount) = &self.hierarchy {
            // Controllers must be enabled in every ancestor's subtree_control.
            let mut dir = mount.clone();
            let parts: Vec<&str> =
                std::iter::once(self.root.as_str()).chain(rel.split('/').filter(|s| !s.is_empty())).collect();
            for part in parts {
                for c in V2_CONTROLLERS {
                    // A controller the kernel lacks is not fatal.
                    let _ = sys.write_file(&dir.join("cgroup.subtree_control"), format!("+{c}").as_bytes());
                }
                dir = dir.join(part);
                sys.mkdir_all(&dir, 0o755)?;
            }
        } else {
            for d in self.dirs(rel) {
                sys.mkdir_all(&d, 0o755)?;
            }
        }
        if let Some(res) = res {
            self.apply(sys, rel, res)?;
        }
        Ok(())
    }

    /// Write the limits of `res` into group `rel`.
    pub(crate) fn apply(&self, sys: &dyn Syscall, rel: &str, res: &Resources) -> io::Result<()> {
        let write = |controller: &str, file: &str, value: String| -> io::Result<()> {
            match self.controller_dir(controller, rel) {
                Some(d) => sys.write_file(&d.join(file), value.as_bytes()),
                None => Ok(()),
            }
        };
        if self.is_v2() {
            if let Some(s) = res.cpu_shares {
                write("cpu", "cpu.weight", shares_to_weight(s).to_string())?;
            }
            if res.cpu_quota.is_some() || res.cpu_period.is_some() {
                let period = res.cpu_period.unwrap_or(100_000);
                let quota = match res.cpu_quota {
                    Some(q) if q > 0 => q.to_string(),
                    _ => "max".to_string(),
                };
                write("cpu", "cpu.max", format!("{quota} {period}"))?;
            }
            if let Some(m) = res.memory_limit.filter(|m| *m > 0) {
                write("memory", "memory.max", m.to_string())?;
                // Kill the whole container on OOM, as the kubelet asks on v2.
                let _ = write("memory", "memory.oom.group", "1".into());
            }
            if let Some(p) = res.pids_limit.filter(|p| *p > 0) {
                write("pids", "pids.max", p.to_string())?;
            }
        } else {
            if let Some(s) = res.cpu_shares {
                write("cpu", "cpu.shares", s.to_string())?;
            }
            if let Some(p) = res.cpu_period {
                write("cpu", "cpu.cfs_period_us", p.to_string())?;
            }
            if let Some(q) = res.cpu_quota {
                write("cpu", "cpu.cfs_quota_us", if q > 0 { q.to_string() } else { "-1".into() })?;
            }
            if let Some(m) = res.memory_limit.filter(|m| *m > 0) {
                write("memory", "memory.limit_in_bytes", m.to_string())?;
            }
            if let Some(p) = res.pids_limit.filter(|p| *p > 0) {
                write("pids", "pids.max", p.to_string())?;
            }
        }
        Ok(())
    }

    /// The `cgroup.procs` files a process joins group `rel` through.
    pub(crate) fn procs_files(&self, rel: &str) -> Vec<PathBuf> {
        self.dirs(rel).into_iter().map(|d| d.join("cgroup.procs")).collect()
    }

    /// The file whose `oom_kill` counter grows when the kernel OOM-kills in group `rel`.
    pub(crate) fn oom_events(&self, rel: &str) -> Option<PathBuf> {
        let d = self.controller_dir("memory", rel)?;
        Some(d.join(if self.is_v2() { "memory.events" } else { "memory.oom_control" }))
    }

    /// CPU time (ns), working set and RSS (bytes) of group `rel`.
    pub(crate) fn stats(&self, rel: &str) -> io::Result<(u64, u64, u64)> {
        let read = |c: &str, f: &str| -> io::Result<String> {
            let d = self
                .controller_dir(c, rel)
                .ok_or_else(|| io::Error::new(io::ErrorKind::NotFound, format!("no {c} controller")))?;
            fs::read_to_string(d.join(f))
        };
        let num = |s: &str| s.trim().parse::<u64>().unwrap_or(0);
        if self.is_v2() {
            let cpu = stat_field(&read("cpu", "cpu.stat")?, "usage_usec") * 1000;
            let usage = num(&read("memory", "memory.current")?);
            let stat = read("memory", "memory.stat")?;
            let ws = usage.saturating_sub(stat_field(&stat, "inactive_file"));
            Ok((cpu, ws, stat_field(&stat, "anon")))
        } else {
            let cpu = num(&read("cpuacct", "cpuacct.usage")?);
            let usage = num(&read("memory", "memory.usage_in_bytes")?);
            let stat = read("memory", "memory.stat")?;
            let ws = usage.saturating_sub(stat_field(&stat, "total_inactive_file"));
            Ok((cpu, ws, stat_field(&stat, "total_rss")))
        }
    }

    /// Remove group `rel` and everything below it, killing remaining processes first.
    /// Missing groups are fine (idempotent).
    pub(crate) fn remove(&self, rel: &str) -> io::Result<()> {
        let mut first_err = None;
        for d in self.dirs(rel) {
            if let Err(e) = remove_tree(&d)
                && first_err.is_none()
            {
                first_err = Some(e);
            }
        }
        first_err.map_or(Ok(()), Err)
    }
}

/// A `key value` line's value in a cgroup stat file.
pub(crate) fn stat_field(text: &str, key: &str) -> u64 {
    text.lines()
        .find_map(|l| {
            let (k, v) = l.split_once(' ')?;
            (k == key).then(|| v.trim().parse().ok()).flatten()
        })
        .unwrap_or(0)
}

/// `oom_kill` count from a v1 memory.oom_control or v2 memory.events file (0 if unreadable).
pub(crate) fn oom_kill_count(file: &Path) -> u64 {
    fs::read_to_string(file).map(|t| stat_field(&t, "oom_kill")).unwrap_or(0)
}

fn remove_tree(dir: &Path) -> io::Result<()> {
    let entries = match fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(e),
    };
    for e in entries.flatten() {
        if e.file_type().map(|t| t.is_dir()).unwrap_or(false) {
            remove_tree(&e.path())?;
        }
    }
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        kill_all(dir);
        match fs::remove_dir(dir) {
            Ok(()) => return Ok(()),
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
            Err(e) if Instant::now() >= deadline => {
                return Err(io::Error::new(e.kind(), format!("removing cgroup {}: {e}", dir.display())));
            }
            Err(_) => std::thread::sleep(Duration::from_millis(10)),
        }
    }
}

/// SIGKILL every process in one group.
pub(crate) fn kill_all(dir: &Path) {
    if let Ok(procs) = fs::read_to_string(dir.join("cgroup.procs")) {
        for pid in procs.lines().filter_map(|l| l.trim().parse::<i32>().ok()) {
            let _ = nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), nix::sys::signal::Signal::SIGKILL);
        }
    }
}

#[cfg(test)]
mod tests;
