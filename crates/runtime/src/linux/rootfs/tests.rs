use std::path::PathBuf;

use nix::mount::MsFlags;

use super::*;
use crate::linux::spec::{CgroupSpec, ContainerSpec, LogSpec, NamespaceSpec, PidNamespace, ProcessSpec, RootfsSpec};
use crate::linux::syscall::{Call, LinuxSyscall, RecordingSyscall};

fn spec() -> ContainerSpec {
    ContainerSpec {
        id: "c1".into(),
        rootfs: RootfsSpec {
            lower: vec!["/l/top".into(), "/l/base".into()],
            upper: "/s/upper".into(),
            work: "/s/work".into(),
            target: "/s/rootfs".into(),
            readonly: false,
        },
        mounts: vec![MountSpec {
            destination: "/etc/hosts".into(),
            source: Some("/sb/hosts".into()),
            kind: MountKind::Bind,
            readonly: true,
            propagation: MountPropagation::Private,
        }],
        namespaces: NamespaceSpec { net: None, ipc: None, uts: None, pid: PidNamespace::New },
        process: ProcessSpec::default(),
        cgroup: CgroupSpec::default(),
        masked_paths: vec!["/proc/kcore".into(), "/proc/acpi".into()],
        readonly_paths: vec!["/proc/sys".into()],
        privileged: false,
        shm: None,
        log: LogSpec::default(),
    }
}

fn targets(calls: &[Call]) -> Vec<String> {
    calls
        .iter()
        .filter_map(|c| match c {
            Call::Mount { target, fstype, .. } => {
                Some(format!("{}:{}", target.display(), fstype.as_deref().unwrap_or("bind")))
            }
            Call::PivotRoot(p) => Some(format!("pivot:{}", p.display())),
            _ => None,
        })
        .collect()
}

#[test]
fn standard_mounts_in_order() {
    let sys = RecordingSyscall::default();
    sys.add_existing("/sb/hosts");
    sys.add_existing("/proc/kcore");
    sys.add_existing("/proc/acpi/");
    sys.add_existing("/proc/sys/");
    setup(&sys, &spec()).unwrap();
    let calls = sys.calls();
    assert_eq!(
        targets(&calls),
        vec![
            "/:bind",
            "/s/rootfs:overlay",
            "/s/rootfs/proc:proc",
            "/s/rootfs/sys:sysfs",
            "/s/rootfs/dev:tmpfs",
            "/s/rootfs/dev/pts:devpts",
            "/s/rootfs/dev/shm:tmpfs",
            "/s/rootfs/dev/mqueue:mqueue",
            "/s/rootfs/etc/hosts:bind",
            "/s/rootfs/etc/hosts:bind",
            "pivot:/s/rootfs",
            "/proc/kcore:bind",
            "/proc/acpi:tmpfs",
            "/proc/sys:bind",
            "/proc/sys:bind",
        ]
    );
    let overlay = calls
        .iter()
        .find_map(|c| match c {
            Call::Mount { fstype: Some(f), data, .. } if f == "overlay" => data.clone(),
            _ => None,
        })
        .unwrap();
    assert_eq!(overlay, "lowerdir=/l/top:/l/base,upperdir=/s/upper,workdir=/s/work");
    // /sys is read-only for unprivileged containers; the devices are there.
    assert!(calls.iter().any(|c| matches!(c,
        Call::Mount { fstype: Some(f), flags, .. } if f == "sysfs" && flags.contains(MsFlags::MS_RDONLY))));
    let nodes: Vec<_> = calls
        .iter()
        .filter_map(|c| match c {
            Call::Mknod { path, major, minor, mode } => Some((path.clone(), *major, *minor, *mode)),
            _ => None,
        })
        .collect();
    assert_eq!(nodes.len(), 6);
    assert!(nodes.contains(&(PathBuf::from("/s/rootfs/dev/null"), 1, 3, 0o666)));
    // The hosts file is a file bind: touched, not mkdir'ed, and remounted read-only.
    assert!(calls.contains(&Call::Touch("/s/rootfs/etc/hosts".into())));
}

#[test]
fn readonly_rootfs_is_remounted_after_pivot() {
    let sys = RecordingSyscall::default();
    sys.add_existing("/sb/hosts");
    let mut s = spec();
    s.rootfs.readonly = true;
    setup(&sys, &s).unwrap();
    let calls = sys.calls();
    let last = calls.last().unwrap();
    assert!(matches!(last, Call::Mount { target, flags, .. }
        if target == &PathBuf::from("/") && flags.contains(MsFlags::MS_RDONLY | MsFlags::MS_REMOUNT)));
}

#[test]
fn privileged_gets_host_dev_writable_sys_and_no_masks() {
    let sys = RecordingSyscall::default();
    sys.add_existing("/sb/hosts");
    sys.add_existing("/proc/kcore");
    let mut s = spec();
    s.privileged = true;
    setup(&sys, &s).unwrap();
    let t = targets(&sys.calls());
    assert!(t.contains(&"/s/rootfs/dev:bind".to_string()));
    assert!(!t.iter().any(|x| x.contains("devpts") || x.starts_with("/proc/kcore")));
    assert!(!sys.calls().iter().any(|c| matches!(c,
        Call::Mount { fstype: Some(f), flags, .. } if f == "sysfs" && flags.contains(MsFlags::MS_RDONLY))));
}

#[test]
fn sandbox_shm_and_tmpfs_and_propagation() {
    let sys = RecordingSyscall::default();
    sys.add_existing("/data/");
    let mut s = spec();
    s.shm = Some("/sb/shm".into());
    s.mounts = vec![
        MountSpec {
            destination: "/cache".into(),
            source: None,
            kind: MountKind::Tmpfs(1 << 20),
            readonly: false,
            propagation: MountPropagation::Private,
        },
        MountSpec {
            destination: "/data".into(),
            source: Some("/data".into()),
            kind: MountKind::Bind,
            readonly: false,
            propagation: MountPropagation::Slave,
        },
    ];
    setup(&sys, &s).unwrap();
    let calls = sys.calls();
    assert!(calls.contains(&Call::Mount {
        source: Some("/sb/shm".into()),
        target: "/s/rootfs/dev/shm".into(),
        fstype: None,
        flags: MsFlags::MS_BIND,
        data: None,
    }));
    assert!(calls.iter().any(|c| matches!(c,
        Call::Mount { target, data: Some(d), .. } if target == &PathBuf::from("/s/rootfs/cache") && d.contains("size=1048576"))));
    assert!(calls.contains(&Call::Mkdir("/s/rootfs/data".into())));
    assert!(calls.iter().any(|c| matches!(c,
        Call::Mount { target, flags, .. } if target == &PathBuf::from("/s/rootfs/data") && flags.contains(MsFlags::MS_SLAVE))));
}

#[test]
fn missing_bind_source_names_the_mount() {
    let sys = RecordingSyscall::default();
    let e = setup(&sys, &spec()).unwrap_err();
    assert!(e.to_string().contains("/etc/hosts"), "{e}");
    assert!(e.to_string().contains("/sb/hosts"), "{e}");
    // Nothing after the failing mount happened.
    assert!(!sys.calls().iter().any(|c| matches!(c, Call::PivotRoot(_))));
}

#[test]
fn a_failing_mount_stops_the_setup() {
    let sys = RecordingSyscall::default();
    sys.add_existing("/sb/hosts");
    *sys.fail_on.lock().unwrap() = Some("overlay".into());
    let e = setup(&sys, &spec()).unwrap_err();
    assert!(e.to_string().contains("overlay"), "{e}");
    assert_eq!(sys.calls().len(), 2);
}

#[test]
fn relative_destinations_are_rejected() {
    let sys = RecordingSyscall::default();
    sys.add_existing("/sb/hosts");
    let mut s = spec();
    s.mounts[0].destination = "etc/hosts".into();
    assert!(setup(&sys, &s).is_err());
}

#[test]
fn overlay_options_limits() {
    assert!(overlay_options(&[], "/u".as_ref(), "/w".as_ref()).is_err());
    assert!(overlay_options(&["/a:b".into()], "/u".as_ref(), "/w".as_ref()).is_err());
    let many: Vec<PathBuf> = (0..200).map(|i| format!("/var/lib/skiff/layers/{i:064}").into()).collect();
    let e = overlay_options(&many, "/u".as_ref(), "/w".as_ref()).unwrap_err();
    assert!(e.to_string().contains("200 layers"));
}

#[test]
fn secure_join_keeps_symlinks_inside_the_root() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    std::fs::create_dir_all(root.join("real")).unwrap();
    std::os::unix::fs::symlink("/real", root.join("abs")).unwrap();
    std::os::unix::fs::symlink("../../../../real", root.join("rel")).unwrap();
    std::os::unix::fs::symlink("loop", root.join("loop")).unwrap();
    let sys = LinuxSyscall;
    assert_eq!(secure_join(&sys, root, "/abs/hosts"), root.join("real/hosts"));
    assert_eq!(secure_join(&sys, root, "/rel/x"), root.join("real/x"));
    assert_eq!(secure_join(&sys, root, "/../../etc/passwd"), root.join("etc/passwd"));
    assert_eq!(secure_join(&sys, root, "/a/./b/../c"), root.join("a/c"));
    // A symlink loop ends (after 40 links) rather than spinning.
    let _ = secure_join(&sys, root, "/loop/x");
}
