//! The built-in Linux runtime behind [`crate::Runtime`]: pod sandboxes (namespaces held by
//! bind mounts, no pause process), containers on an overlayfs rootfs in their own mount and
//! PID namespaces, cgroups v1/v2, a bridge + veth pod network (or CNI plugins), CRI logs,
//! exec/attach/port-forward — with one tiny supervisor process per container
//! ([`shim_main`], run as the hidden `skiff shim`) so containers outlive skiff.
//!
//! Layout under the data dir (`skiff reset` removes all of it, see [`reset`]):
//! ```text
//! <data>/runtime/node.json                    bridge, cgroup root and CIDR in use
//! <data>/runtime/sandboxes/<id>/              sandbox.json, ns/{net,ipc,uts} (bind mounts),
//!                                             hosts, hostname, resolv.conf, shm (tmpfs)
//! <data>/runtime/containers/<id>/             meta.json, spec.json, status.json, sock,
//!                                             upper/, work/, rootfs/ (mount point)
//! <data>/runtime/ipam/<bridge>/               allocated pod addresses
//! ```
//!
//! This is the only module of the crate allowed `unsafe` (fork, prctl, capset, seccomp,
//! ioctl), each use with a `SAFETY:` comment.
#![allow(unsafe_code)]

mod caps;
mod cgroups;
mod cni;
mod console;
pub(crate) mod cri_log;
mod exec;
mod ipam;
mod mountinfo;
mod network;
mod process;
mod reset;
mod rootfs;
mod runtime;
mod sandbox;
mod seccomp;
mod shim;
mod spec;
mod syscall;

use std::ffi::OsString;
use std::path::{Path, PathBuf};

pub use cri_log::{LogError, LogOptions, LogStream, Record, go_rfc3339_nano, parse_record, parse_rfc3339, read_logs};
pub use reset::{ResetReport, reset};
pub use runtime::{LinuxRuntime, PodNetwork, StaticImages};
pub use shim::shim_main;

/// The default data dir; its bridge is `skiff0`.
pub const DEFAULT_DATA_DIR: &str = "/var/lib/skiff";

/// How the runtime starts a supervisor: `<program> <args…> run <container dir>` (and
/// `… exec <container dir> <request>` for exec sessions).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ShimCommand {
    pub program: PathBuf,
    pub args: Vec<OsString>,
    /// Extra environment for the shim process.
    pub env: Vec<(OsString, OsString)>,
}

impl ShimCommand {
    /// The running skiff binary's hidden `shim` subcommand.
    pub fn skiff() -> Self {
        ShimCommand { program: "/proc/self/exe".into(), args: vec!["shim".into()], env: vec![] }
    }
}

/// Configuration of [`LinuxRuntime`]. [`LinuxRuntimeConfig::new`] derives everything from the
/// data dir so that several test clusters (several data dirs) can share one host.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LinuxRuntimeConfig {
    /// All host state lives below it.
    pub data_dir: PathBuf,
    /// Sandbox and container state (`<data_dir>/runtime`).
    pub state_dir: PathBuf,
    /// The node bridge (`skiff0` for the default data dir).
    pub bridge: String,
    /// This node's pod CIDR.
    pub pod_cidr: String,
    /// The node's root cgroup (like the kubelet's `kubepods`).
    pub cgroup_root: String,
    /// With both set, pods are networked by the first CNI config in `cni_conf_dir` using the
    /// plugins in `cni_bin_dir` instead of the built-in bridge.
    pub cni_bin_dir: Option<PathBuf>,
    pub cni_conf_dir: Option<PathBuf>,
    pub shim: ShimCommand,
    /// Rotate a container log when it reaches this size.
    pub log_max_size: u64,
    /// Keep this many log files per container (the current one included).
    pub log_max_files: u32,
}

/// A short stable hash of a data dir, for per-data-dir host names (bridge, cgroup root, the
/// server node's pod subnet).
pub fn data_dir_hash(dir: &Path) -> u32 {
    // FNV-1a: stable across builds and platforms (unlike std's hasher).
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in dir.as_os_str().as_encoded_bytes() {
        h ^= u64::from(*b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    h as u32
}

fn dir_hash(dir: &Path) -> String {
    format!("{:08x}", data_dir_hash(dir))
}

/// The bridge and root cgroup names for a data dir: `skiff0`/`skiff-kubepods` for the default
/// one, `skiff<hash>`/`skiff-kubepods-<hash>` otherwise.
pub fn default_names(data_dir: &Path) -> (String, String) {
    if data_dir == Path::new(DEFAULT_DATA_DIR) {
        ("skiff0".into(), "skiff-kubepods".into())
    } else {
        let h = dir_hash(data_dir);
        (format!("skiff{h}"), format!("skiff-kubepods-{h}"))
    }
}

impl LinuxRuntimeConfig {
    pub fn new(data_dir: impl Into<PathBuf>) -> Self {
        let data_dir = data_dir.into();
        let (bridge, cgroup_root) = default_names(&data_dir);
        LinuxRuntimeConfig {
            state_dir: data_dir.join("runtime"),
            data_dir,
            bridge,
            pod_cidr: "10.42.0.0/24".into(),
            cgroup_root,
            cni_bin_dir: None,
            cni_conf_dir: None,
            shim: ShimCommand::skiff(),
            log_max_size: 10 << 20,
            log_max_files: 5,
        }
    }
}

/// In test binaries, the test executable itself serves as the shim: when started with
/// `SKIFF_RUNTIME_TEST_SHIM=1` it runs [`shim_main`] from an ELF constructor — before libtest
/// starts any thread, so the shim is single-threaded like the real one — and exits.
#[cfg(test)]
pub(crate) mod test_shim {
    use std::ffi::{CStr, OsString};
    use std::os::unix::ffi::OsStringExt;

    pub(crate) const ENV: &str = "SKIFF_RUNTIME_TEST_SHIM";

    extern "C" fn hook(argc: i32, argv: *const *const libc::c_char, _envp: *const *const libc::c_char) {
        if std::env::var_os(ENV).is_none() {
            return;
        }
        let mut args = Vec::new();
        for i in 1..argc.max(0) as usize {
            // SAFETY: the loader passes `argc` valid NUL-terminated strings in `argv`.
            let arg = unsafe { CStr::from_ptr(*argv.add(i)) };
            args.push(OsString::from_vec(arg.to_bytes().to_vec()));
        }
        let code = super::shim_main(&args);
        // SAFETY: leave before libtest's main runs; nothing of ours needs unwinding.
        unsafe { libc::_exit(code) }
    }

    #[used]
    #[unsafe(link_section = ".init_array")]
    static HOOK: extern "C" fn(i32, *const *const libc::c_char, *const *const libc::c_char) = hook;

    /// A shim command running this test binary.
    pub(crate) fn command() -> super::ShimCommand {
        super::ShimCommand {
            program: std::env::current_exe().expect("test executable path"),
            args: vec![],
            env: vec![(ENV.into(), "1".into())],
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_derive_from_the_data_dir() {
        assert_eq!(default_names(Path::new("/var/lib/skiff")), ("skiff0".into(), "skiff-kubepods".into()));
        let (b, c) = default_names(Path::new("/tmp/t1"));
        assert!(b.len() <= 15 && b.starts_with("skiff"), "{b}");
        assert!(c.starts_with("skiff-kubepods-"));
        assert_ne!(default_names(Path::new("/tmp/t2")).0, b);
        let cfg = LinuxRuntimeConfig::new("/tmp/t1");
        assert_eq!(cfg.state_dir, PathBuf::from("/tmp/t1/runtime"));
        assert_eq!(cfg.pod_cidr, "10.42.0.0/24");
    }
}
