//! Pod sandboxes without a pause process: the network, IPC and UTS namespaces are created on
//! a short-lived dedicated thread (`unshare` affects only that thread), given the pod's
//! hostname and namespaced sysctls there, and held open by bind-mounting
//! `/proc/thread-self/ns/*` onto files in the sandbox's state dir. Containers join them by
//! path. Also the pod's `/etc/hosts`, `/etc/hostname`, `/etc/resolv.conf` and its shared
//! `/dev/shm`.

use std::collections::BTreeMap;
use std::io;
use std::net::IpAddr;
use std::path::{Path, PathBuf};

use nix::mount::{MntFlags, MsFlags};
use nix::sched::CloneFlags;
use serde::{Deserialize, Serialize};

use super::syscall::Syscall;
use crate::cri::{DnsConfig, PodSandboxConfig};

/// Which namespaces a sandbox gets of its own.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct OwnNamespaces {
    pub(crate) net: bool,
    pub(crate) ipc: bool,
    pub(crate) uts: bool,
}

impl OwnNamespaces {
    /// hostNetwork pods also use the host's UTS namespace (their hostname is the node's), as
    /// in Kubernetes.
    pub(crate) fn of(config: &PodSandboxConfig) -> Self {
        let host_net = config.namespaces.host_network;
        OwnNamespaces { net: !host_net, ipc: !config.namespaces.host_ipc, uts: !host_net }
    }
}

pub(crate) fn ns_dir(sandbox_dir: &Path) -> PathBuf {
    sandbox_dir.join("ns")
}

/// Whether a sysctl may be set per pod, and in which namespace (`None`: not namespaced).
pub(crate) fn sysctl_namespace(name: &str) -> Option<CloneFlags> {
    let name = name.replace('/', ".");
    if name.split('.').any(|c| c.is_empty() || c == "..") {
        return None;
    }
    if name.starts_with("net.") {
        Some(CloneFlags::CLONE_NEWNET)
    } else if name.starts_with("kernel.shm")
        || name.starts_with("kernel.msg")
        || name == "kernel.sem"
        || name.starts_with("fs.mqueue.")
    {
        Some(CloneFlags::CLONE_NEWIPC)
    } else {
        None
    }
}

/// Check the pod's sysctls against the namespaces it owns.
pub(crate) fn validate_sysctls(sysctls: &BTreeMap<String, String>, own: OwnNamespaces) -> Result<(), String> {
    for name in sysctls.keys() {
        match sysctl_namespace(name) {
            None => return Err(format!("sysctl {name:?} is not namespaced")),
            Some(CloneFlags::CLONE_NEWNET) if !own.net => {
                return Err(format!("sysctl {name:?} needs the pod's own network namespace"));
            }
            Some(CloneFlags::CLONE_NEWIPC) if !own.ipc => {
                return Err(format!("sysctl {name:?} needs the pod's own IPC namespace"));
            }
            _ => {}
        }
    }
    Ok(())
}

/// On the calling (dedicated, about to exit) thread: unshare the namespaces, set hostname and
/// sysctls, bind the namespaces to `<sandbox dir>/ns/<net|ipc|uts>`. On failure, unmounts what
/// it bound.
pub(crate) fn create_namespaces(
    sys: &dyn Syscall,
    sandbox_dir: &Path,
    own: OwnNamespaces,
    hostname: &str,
    sysctls: &BTreeMap<String, String>,
) -> io::Result<()> {
    let mut flags = CloneFlags::empty();
    if own.net {
        flags |= CloneFlags::CLONE_NEWNET;
    }
    if own.ipc {
        flags |= CloneFlags::CLONE_NEWIPC;
    }
    if own.uts {
        flags |= CloneFlags::CLONE_NEWUTS;
    }
    if flags.is_empty() {
        return Ok(());
    }
    sys.unshare(flags).map_err(|e| io::Error::new(e.kind(), format!("unshare: {e}")))?;
    if own.uts && !hostname.is_empty() {
        sys.sethostname(hostname).map_err(|e| io::Error::new(e.kind(), format!("sethostname {hostname:?}: {e}")))?;
    }
    for (name, value) in sysctls {
        let path = PathBuf::from("/proc/sys").join(name.replace('.', "/"));
        sys.write_file(&path, value.as_bytes())?;
    }
    let dir = ns_dir(sandbox_dir);
    sys.mkdir_all(&dir, 0o700)?;
    let mut bound: Vec<PathBuf> = Vec::new();
    for (own, name) in [(own.net, "net"), (own.ipc, "ipc"), (own.uts, "uts")] {
        if !own {
            continue;
        }
        let target = dir.join(name);
        let r = sys.touch(&target).and_then(|()| {
            sys.mount(Some(&PathBuf::from("/proc/thread-self/ns").join(name)), &target, None, MsFlags::MS_BIND, None)
        });
        if let Err(e) = r {
            for t in bound {
                let _ = sys.umount(&t, MntFlags::MNT_DETACH);
            }
            return Err(io::Error::new(e.kind(), format!("binding the {name} namespace: {e}")));
        }
        bound.push(target);
    }
    Ok(())
}

/// Run [`create_namespaces`] on a fresh std thread (never a tokio worker: the thread ends up
/// in the pod's namespaces).
pub(crate) async fn create_namespaces_on_thread(
    sandbox_dir: PathBuf,
    own: OwnNamespaces,
    hostname: String,
    sysctls: BTreeMap<String, String>,
) -> io::Result<()> {
    let (tx, rx) = tokio::sync::oneshot::channel();
    std::thread::spawn(move || {
        let r = create_namespaces(&super::syscall::LinuxSyscall, &sandbox_dir, own, &hostname, &sysctls);
        let _ = tx.send(r);
    });
    rx.await.map_err(|_| io::Error::other("namespace thread died"))?
}

/// `/etc/hosts` of a pod: the standard entries, the pod's own address and its host aliases.
pub(crate) fn hosts_file(hostname: &str, ips: &[IpAddr], aliases: &[(IpAddr, Vec<String>)]) -> String {
    let mut s = String::from(
        "# Kubernetes-managed hosts file.\n\
         127.0.0.1\tlocalhost\n\
         ::1\tlocalhost ip6-localhost ip6-loopback\n\
         fe00::0\tip6-localnet\n\
         fe00::0\tip6-mcastprefix\n\
         fe00::1\tip6-allnodes\n\
         fe00::2\tip6-allrouters\n",
    );
    for ip in ips {
        s.push_str(&format!("{ip}\t{hostname}\n"));
    }
    if !aliases.is_empty() {
        s.push_str("\n# Entries added by HostAliases.\n");
        for (ip, names) in aliases {
            s.push_str(&format!("{ip}\t{}\n", names.join("\t")));
        }
    }
    s
}

/// `/etc/resolv.conf` from the pod's DNS config; `None` when it has none (use the host's).
pub(crate) fn resolv_conf(dns: &DnsConfig) -> Option<String> {
    if dns.servers.is_empty() && dns.searches.is_empty() && dns.options.is_empty() {
        return None;
    }
    let mut s = String::new();
    for server in &dns.servers {
        s.push_str(&format!("nameserver {server}\n"));
    }
    if !dns.searches.is_empty() {
        s.push_str(&format!("search {}\n", dns.searches.join(" ")));
    }
    if !dns.options.is_empty() {
        s.push_str(&format!("options {}\n", dns.options.join(" ")));
    }
    Some(s)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cri::NamespaceOptions;
    use crate::linux::syscall::{Call, RecordingSyscall};

    #[test]
    fn namespaces_are_unshared_named_and_bound() {
        let sys = RecordingSyscall::default();
        let sysctls: BTreeMap<String, String> =
            [("net.ipv4.ip_unprivileged_port_start".to_string(), "0".to_string())].into();
        let own = OwnNamespaces { net: true, ipc: true, uts: true };
        create_namespaces(&sys, Path::new("/s/sb1"), own, "web-0", &sysctls).unwrap();
        let calls = sys.calls();
        assert_eq!(
            calls[0],
            Call::Unshare(CloneFlags::CLONE_NEWNET | CloneFlags::CLONE_NEWIPC | CloneFlags::CLONE_NEWUTS)
        );
        assert_eq!(calls[1], Call::Sethostname("web-0".into()));
        assert_eq!(calls[2], Call::Write("/proc/sys/net/ipv4/ip_unprivileged_port_start".into(), "0".into()));
        let binds: Vec<_> = calls
            .iter()
            .filter_map(|c| match c {
                Call::Mount { source: Some(s), target, .. } => {
                    Some((s.display().to_string(), target.display().to_string()))
                }
                _ => None,
            })
            .collect();
        assert_eq!(
            binds,
            vec![
                ("/proc/thread-self/ns/net".into(), "/s/sb1/ns/net".into()),
                ("/proc/thread-self/ns/ipc".into(), "/s/sb1/ns/ipc".into()),
                ("/proc/thread-self/ns/uts".into(), "/s/sb1/ns/uts".into()),
            ]
        );
    }

    #[test]
    fn host_network_pod_owns_only_ipc() {
        let cfg = PodSandboxConfig {
            namespaces: NamespaceOptions { host_network: true, ..Default::default() },
            ..Default::default()
        };
        let own = OwnNamespaces::of(&cfg);
        assert_eq!(own, OwnNamespaces { net: false, ipc: true, uts: false });
        let sys = RecordingSyscall::default();
        create_namespaces(&sys, Path::new("/s"), own, "ignored", &BTreeMap::new()).unwrap();
        assert_eq!(sys.calls()[0], Call::Unshare(CloneFlags::CLONE_NEWIPC));
        assert!(!sys.calls().iter().any(|c| matches!(c, Call::Sethostname(_))));
        // Nothing of its own: nothing to do.
        let sys = RecordingSyscall::default();
        create_namespaces(&sys, Path::new("/s"), OwnNamespaces::default(), "h", &BTreeMap::new()).unwrap();
        assert!(sys.calls().is_empty());
    }

    #[test]
    fn a_failed_bind_unmounts_the_earlier_ones() {
        let sys = RecordingSyscall::default();
        *sys.fail_on.lock().unwrap() = Some("ns/uts".into());
        let own = OwnNamespaces { net: true, ipc: false, uts: true };
        let e = create_namespaces(&sys, Path::new("/s"), own, "h", &BTreeMap::new()).unwrap_err();
        assert!(e.to_string().contains("uts"), "{e}");
        assert!(sys.calls().contains(&Call::Umount("/s/ns/net".into())));
    }

    #[test]
    fn sysctl_rules() {
        assert_eq!(sysctl_namespace("net.core.somaxconn"), Some(CloneFlags::CLONE_NEWNET));
        assert_eq!(sysctl_namespace("net/ipv4/ip_forward"), Some(CloneFlags::CLONE_NEWNET));
        assert_eq!(sysctl_namespace("kernel.shm_rmid_forced"), Some(CloneFlags::CLONE_NEWIPC));
        assert_eq!(sysctl_namespace("kernel.sem"), Some(CloneFlags::CLONE_NEWIPC));
        assert_eq!(sysctl_namespace("vm.swappiness"), None);
        assert_eq!(sysctl_namespace("net...x"), None);
        let host_net = OwnNamespaces { net: false, ipc: true, uts: false };
        let s = |k: &str| [(k.to_string(), "1".to_string())].into_iter().collect::<BTreeMap<_, _>>();
        assert!(validate_sysctls(&s("net.core.somaxconn"), host_net).is_err());
        assert!(validate_sysctls(&s("kernel.msgmax"), host_net).is_ok());
        assert!(validate_sysctls(&s("kernel.panic"), host_net).unwrap_err().contains("not namespaced"));
    }

    #[test]
    fn etc_files() {
        let hosts = hosts_file(
            "web-0",
            &["10.42.0.5".parse().unwrap()],
            &[("1.2.3.4".parse().unwrap(), vec!["a".into(), "b".into()])],
        );
        assert!(hosts.contains("127.0.0.1\tlocalhost\n"));
        assert!(hosts.contains("10.42.0.5\tweb-0\n"));
        assert!(hosts.ends_with("# Entries added by HostAliases.\n1.2.3.4\ta\tb\n"));
        let dns = DnsConfig {
            servers: vec!["10.43.0.10".into()],
            searches: vec!["default.svc.cluster.local".into(), "svc.cluster.local".into()],
            options: vec!["ndots:5".into()],
        };
        assert_eq!(
            resolv_conf(&dns).unwrap(),
            "nameserver 10.43.0.10\nsearch default.svc.cluster.local svc.cluster.local\noptions ndots:5\n"
        );
        assert_eq!(resolv_conf(&DnsConfig::default()), None);
    }
}
