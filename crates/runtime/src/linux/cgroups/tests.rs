use std::path::PathBuf;

use super::*;
use crate::linux::syscall::{Call, RecordingSyscall};

/// This VM's layout: v1 with cpu and cpuacct mounted separately, plus a controller-less
/// cgroup2 at /sys/fs/cgroup/unified.
const HYBRID: &str = "\
25 1 0:22 / /sys/fs/cgroup ro,nosuid - tmpfs tmpfs ro,mode=755
26 25 0:23 / /sys/fs/cgroup/cpu rw,relatime - cgroup cgroup rw,cpu
27 25 0:24 / /sys/fs/cgroup/cpuacct rw,relatime - cgroup cgroup rw,cpuacct
28 25 0:25 / /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory
29 25 0:26 / /sys/fs/cgroup/pids rw,relatime - cgroup cgroup rw,pids
30 25 0:27 / /sys/fs/cgroup/systemd rw,relatime - cgroup cgroup rw,name=systemd
31 25 0:28 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw
";

const COMOUNTED: &str = "\
26 25 0:23 / /sys/fs/cgroup/cpu,cpuacct rw,relatime - cgroup cgroup rw,cpu,cpuacct
28 25 0:25 / /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory
";

const UNIFIED: &str = "\
25 1 0:22 / /sys/fs/cgroup rw,nosuid,nodev,noexec - cgroup2 cgroup2 rw,nsdelegate
";

fn v1() -> Cgroups {
    Cgroups::from_mountinfo(HYBRID, "skiff-test").unwrap()
}

fn v2() -> Cgroups {
    Cgroups::from_mountinfo(UNIFIED, "skiff-test").unwrap()
}

#[test]
fn detects_v1_on_a_hybrid_host() {
    let c = v1();
    assert!(!c.is_v2());
    assert_eq!(
        c.dirs("pod1"),
        vec![
            PathBuf::from("/sys/fs/cgroup/cpu/skiff-test/pod1"),
            PathBuf::from("/sys/fs/cgroup/cpuacct/skiff-test/pod1"),
            PathBuf::from("/sys/fs/cgroup/memory/skiff-test/pod1"),
            PathBuf::from("/sys/fs/cgroup/pids/skiff-test/pod1"),
        ]
    );
    assert_eq!(
        c.oom_events("pod1/c").unwrap(),
        PathBuf::from("/sys/fs/cgroup/memory/skiff-test/pod1/c/memory.oom_control")
    );
}

#[test]
fn comounted_controllers_share_one_directory() {
    let c = Cgroups::from_mountinfo(COMOUNTED, "k").unwrap();
    assert_eq!(
        c.procs_files(""),
        vec![
            PathBuf::from("/sys/fs/cgroup/cpu,cpuacct/k/cgroup.procs"),
            PathBuf::from("/sys/fs/cgroup/memory/k/cgroup.procs"),
        ]
    );
}

#[test]
fn detects_v2_and_nothing() {
    let c = v2();
    assert!(c.is_v2());
    assert_eq!(c.dirs("a/b"), vec![PathBuf::from("/sys/fs/cgroup/skiff-test/a/b")]);
    assert_eq!(c.oom_events("a").unwrap(), PathBuf::from("/sys/fs/cgroup/skiff-test/a/memory.events"));
    assert!(Cgroups::from_mountinfo("", "x").is_none());
}

#[test]
fn v1_limits_go_to_their_controllers() {
    let sys = RecordingSyscall::default();
    let res = Resources {
        cpu_shares: Some(512),
        cpu_quota: Some(50_000),
        cpu_period: Some(100_000),
        memory_limit: Some(64 << 20),
        pids_limit: Some(100),
        ..Default::default()
    };
    v1().create(&sys, "burstable/pod1", Some(&res)).unwrap();
    let writes: Vec<(String, String)> = sys
        .calls()
        .into_iter()
        .filter_map(|c| match c {
            Call::Write(p, v) => Some((p.display().to_string(), v)),
            _ => None,
        })
        .collect();
    let base = "/sys/fs/cgroup";
    assert_eq!(
        writes,
        vec![
            (format!("{base}/cpu/skiff-test/burstable/pod1/cpu.shares"), "512".into()),
            (format!("{base}/cpu/skiff-test/burstable/pod1/cpu.cfs_period_us"), "100000".into()),
            (format!("{base}/cpu/skiff-test/burstable/pod1/cpu.cfs_quota_us"), "50000".into()),
            (format!("{base}/memory/skiff-test/burstable/pod1/memory.limit_in_bytes"), "67108864".into()),
            (format!("{base}/pids/skiff-test/burstable/pod1/pids.max"), "100".into()),
        ]
    );
    assert_eq!(sys.calls().iter().filter(|c| matches!(c, Call::Mkdir(_))).count(), 4);
}

#[test]
fn v2_enables_controllers_down_the_path() {
    let sys = RecordingSyscall::default();
    let res = Resources {
        cpu_shares: Some(1024),
        cpu_quota: Some(20_000),
        memory_limit: Some(1 << 30),
        ..Default::default()
    };
    v2().create(&sys, "pod1/c1", Some(&res)).unwrap();
    let calls = sys.calls();
    let subtree: Vec<String> = calls
        .iter()
        .filter_map(|c| match c {
            Call::Write(p, v) if p.ends_with("cgroup.subtree_control") && v == "+memory" => {
                Some(p.display().to_string())
            }
            _ => None,
        })
        .collect();
    assert_eq!(
        subtree,
        vec![
            "/sys/fs/cgroup/cgroup.subtree_control",
            "/sys/fs/cgroup/skiff-test/cgroup.subtree_control",
            "/sys/fs/cgroup/skiff-test/pod1/cgroup.subtree_control",
        ]
    );
    let d = PathBuf::from("/sys/fs/cgroup/skiff-test/pod1/c1");
    assert!(calls.contains(&Call::Write(d.join("cpu.weight"), "39".into())));
    assert!(calls.contains(&Call::Write(d.join("cpu.max"), "20000 100000".into())));
    assert!(calls.contains(&Call::Write(d.join("memory.max"), "1073741824".into())));
    assert!(calls.contains(&Call::Write(d.join("memory.oom.group"), "1".into())));
}

#[test]
fn share_to_weight_conversion_matches_upstream() {
    assert_eq!(shares_to_weight(2), 1);
    assert_eq!(shares_to_weight(262_144), 10_000);
    assert_eq!(shares_to_weight(1024), 39);
    assert_eq!(shares_to_weight(0), 100);
}

#[test]
fn a_failing_write_is_reported() {
    let sys = RecordingSyscall::default();
    *sys.fail_on.lock().unwrap() = Some("pids.max".into());
    let res = Resources { pids_limit: Some(10), ..Default::default() };
    assert!(v1().create(&sys, "p", Some(&res)).is_err());
}

#[test]
fn stats_and_oom_counters_from_files() {
    let dir = tempfile::tempdir().unwrap();
    let m = dir.path();
    for c in ["cpu", "cpuacct", "memory", "pids"] {
        std::fs::create_dir_all(m.join(c).join("k/p")).unwrap();
    }
    std::fs::write(m.join("cpuacct/k/p/cpuacct.usage"), "123456789\n").unwrap();
    std::fs::write(m.join("memory/k/p/memory.usage_in_bytes"), "10000\n").unwrap();
    std::fs::write(m.join("memory/k/p/memory.stat"), "cache 5\ntotal_rss 4000\ntotal_inactive_file 3000\n").unwrap();
    std::fs::write(m.join("memory/k/p/memory.oom_control"), "oom_kill_disable 0\nunder_oom 0\noom_kill 2\n").unwrap();
    let c = Cgroups {
        hierarchy: Hierarchy::V1(
            ["cpu", "cpuacct", "memory", "pids"].iter().map(|c| (c.to_string(), m.join(c))).collect(),
        ),
        root: "k".into(),
    };
    assert_eq!(c.stats("p").unwrap(), (123_456_789, 7000, 4000));
    assert_eq!(oom_kill_count(&c.oom_events("p").unwrap()), 2);
    assert_eq!(oom_kill_count(&m.join("nope")), 0);
    assert!(c.stats("missing").is_err());
    // Removing a group that does not exist is fine.
    c.remove("gone").unwrap();
}
