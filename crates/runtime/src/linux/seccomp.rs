//! The `RuntimeDefault` seccomp profile, compiled to BPF with `seccompiler` (pure Rust, no
//! libseccomp) and loaded in the container init just before exec.
//!
//! Upstream (Docker/containerd) ships an *allow*-list of ~350 syscalls. We ship the
//! complementary *deny*-list: the syscalls that list leaves out, each gated by the capability
//! that re-enables it upstream (`mount` needs `CAP_SYS_ADMIN`, `reboot` `CAP_SYS_BOOT`, …),
//! plus upstream's argument filters (namespace flags of `clone`, `personality` domains) and
//! `clone3` answered with ENOSYS so libc falls back to `clone`. Denied calls fail with EPERM.
//! Syscalls of another ABI (i386 through `int 0x80`) kill the process, and x32 numbers get
//! ENOSYS. The difference from upstream: a syscall added to a future kernel is allowed until
//! listed here (see docs/decisions/0005-own-container-init.md).

use std::collections::BTreeMap;
use std::io;

use seccompiler::{
    BpfProgram, SeccompAction, SeccompCmpArgLen, SeccompCmpOp, SeccompCondition, SeccompFilter, SeccompRule,
    TargetArch, sock_filter,
};

use super::caps;

/// Denied unless the container holds the named capability (`None`: always denied).
#[rustfmt::skip]
fn deny_list() -> Vec<(Option<&'static str>, i64)> {
    let mut v: Vec<(Option<&'static str>, i64)> = vec![
        (None, libc::SYS_kexec_load),
        (None, libc::SYS_kexec_file_load),
        (None, libc::SYS_userfaultfd),
        (None, libc::SYS_keyctl),
        (None, libc::SYS_add_key),
        (None, libc::SYS_request_key),
        (None, libc::SYS_io_uring_setup),
        (None, libc::SYS_io_uring_enter),
        (None, libc::SYS_io_uring_register),
        (Some("DAC_READ_SEARCH"), libc::SYS_open_by_handle_at),
        (Some("SYS_ADMIN"), libc::SYS_mount),
        (Some("SYS_ADMIN"), libc::SYS_umount2),
        (Some("SYS_ADMIN"), libc::SYS_pivot_root),
        (Some("SYS_ADMIN"), libc::SYS_unshare),
        (Some("SYS_ADMIN"), libc::SYS_setns),
        (Some("SYS_ADMIN"), libc::SYS_swapon),
        (Some("SYS_ADMIN"), libc::SYS_swapoff),
        (Some("SYS_ADMIN"), libc::SYS_quotactl),
        (Some("SYS_ADMIN"), libc::SYS_fsopen),
        (Some("SYS_ADMIN"), libc::SYS_fsconfig),
        (Some("SYS_ADMIN"), libc::SYS_fsmount),
        (Some("SYS_ADMIN"), libc::SYS_fspick),
        (Some("SYS_ADMIN"), libc::SYS_open_tree),
        (Some("SYS_ADMIN"), libc::SYS_move_mount),
        (Some("SYS_ADMIN"), libc::SYS_mount_setattr),
        (Some("SYS_ADMIN"), libc::SYS_bpf),
        (Some("SYS_ADMIN"), libc::SYS_perf_event_open),
        (Some("SYS_ADMIN"), libc::SYS_fanotify_init),
        (Some("SYS_ADMIN"), libc::SYS_lookup_dcookie),
        (Some("SYS_MODULE"), libc::SYS_init_module),
        (Some("SYS_MODULE"), libc::SYS_finit_module),
        (Some("SYS_MODULE"), libc::SYS_delete_module),
        (Some("SYS_BOOT"), libc::SYS_reboot),
        (Some("SYS_TIME"), libc::SYS_settimeofday),
        (Some("SYS_TIME"), libc::SYS_clock_settime),
        (Some("SYS_TIME"), libc::SYS_clock_adjtime),
        (Some("SYS_PTRACE"), libc::SYS_kcmp),
        (Some("SYS_PTRACE"), libc::SYS_pidfd_getfd),
        (Some("SYS_PTRACE"), libc::SYS_process_madvise),
        (Some("SYS_PACCT"), libc::SYS_acct),
        (Some("SYS_NICE"), libc::SYS_mbind),
        (Some("SYS_NICE"), libc::SYS_set_mempolicy),
        (Some("SYS_NICE"), libc::SYS_move_pages),
        (Some("SYS_NICE"), libc::SYS_get_mempolicy),
        (Some("SYS_TTY_CONFIG"), libc::SYS_vhangup),
        (Some("SYSLOG"), libc::SYS_syslog),
    ];
    #[cfg(target_arch = "x86_64")]
    v.extend([
        (None, libc::SYS_uselib),
        (None, libc::SYS_ustat),
        (None, libc::SYS_sysfs),
        (None, libc::SYS__sysctl),
        // create_module, get_kernel_syms, query_module (no libc constants: gone since 2.6).
        (None, 174),
        (None, 177),
        (None, 178),
        (None, libc::SYS_nfsservctl),
        (Some("SYS_RAWIO"), libc::SYS_iopl),
        (Some("SYS_RAWIO"), libc::SYS_ioperm),
    ]);
    v
}

/// Namespace flags `clone` may only use with CAP_SYS_ADMIN.
const CLONE_NS_FLAGS: &[u64] = &[
    libc::CLONE_NEWNS as u64,
    libc::CLONE_NEWUTS as u64,
    libc::CLONE_NEWIPC as u64,
    libc::CLONE_NEWUSER as u64,
    libc::CLONE_NEWPID as u64,
    libc::CLONE_NEWNET as u64,
    libc::CLONE_NEWCGROUP as u64,
];

/// The `personality` domains upstream allows.
const PERSONALITIES: &[u64] = &[0x0, 0x8, 0x20000, 0x20008, 0xffff_ffff];

#[cfg(target_arch = "x86_64")]
const ARCH: TargetArch = TargetArch::x86_64;
#[cfg(target_arch = "aarch64")]
const ARCH: TargetArch = TargetArch::aarch64;

fn cond(arg: u8, op: SeccompCmpOp, value: u64) -> Result<SeccompCondition, String> {
    SeccompCondition::new(arg, SeccompCmpArgLen::Qword, op, value).map_err(|e| e.to_string())
}

/// The BPF programs of the RuntimeDefault profile for a container holding `held` caps.
pub(crate) fn runtime_default(held: &[u8]) -> Result<Vec<BpfProgram>, String> {
    let has = |name: &str| caps::from_name(name).is_some_and(|c| held.contains(&c));
    let mut rules: BTreeMap<i64, Vec<SeccompRule>> = BTreeMap::new();
    for (cap, nr) in deny_list() {
        if cap.is_none_or(|c| !has(c)) {
            rules.insert(nr, vec![]);
        }
    }
    if !has("SYS_ADMIN") {
        let mut clone_rules = Vec::new();
        for flag in CLONE_NS_FLAGS {
            clone_rules.push(
                SeccompRule::new(vec![cond(0, SeccompCmpOp::MaskedEq(*flag), *flag)?]).map_err(|e| e.to_string())?,
            );
        }
        rules.insert(libc::SYS_clone, clone_rules);
    }
    let personality: Vec<SeccompCondition> =
        PERSONALITIES.iter().map(|p| cond(0, SeccompCmpOp::Ne, *p)).collect::<Result<_, _>>()?;
    rules.insert(libc::SYS_personality, vec![SeccompRule::new(personality).map_err(|e| e.to_string())?]);
    let filter = SeccompFilter::new(rules, SeccompAction::Allow, SeccompAction::Errno(libc::EPERM as u32), ARCH)
        .map_err(|e| e.to_string())?;
    let main: BpfProgram = filter.try_into().map_err(|e: seccompiler::BackendError| e.to_string())?;
    Ok(vec![main, enosys_filter(!has("SYS_ADMIN"))])
}

const BPF_LD_W_ABS: u16 = 0x20;
const BPF_JEQ_K: u16 = 0x15;
const BPF_JGE_K: u16 = 0x35;
const BPF_RET_K: u16 = 0x06;
const X32_SYSCALL_BIT: u32 = 0x4000_0000;

fn ins(code: u16, jt: u8, jf: u8, k: u32) -> sock_filter {
    sock_filter { code, jt, jf, k }
}

/// A small hand-written filter (seccompiler has one match action per filter): ENOSYS for
/// `clone3` (its flags live in memory a filter cannot read, so upstream makes libc fall back
/// to `clone`) and for x32-ABI syscall numbers, which would bypass the deny-list.
fn enosys_filter(deny_clone3: bool) -> BpfProgram {
    let enosys = libc::SECCOMP_RET_ERRNO | libc::ENOSYS as u32;
    let clone3 = if deny_clone3 { libc::SYS_clone3 as u32 } else { u32::MAX };
    vec![
        ins(BPF_LD_W_ABS, 0, 0, 0), // seccomp_data.nr
        ins(BPF_JGE_K, 2, 0, X32_SYSCALL_BIT),
        ins(BPF_JEQ_K, 1, 0, clone3),
        ins(BPF_RET_K, 0, 0, libc::SECCOMP_RET_ALLOW),
        ins(BPF_RET_K, 0, 0, enosys),
    ]
}

#[repr(C)]
struct SockFprog {
    len: u16,
    filter: *const sock_filter,
}

/// Install `filters` on the calling thread (the container init is single-threaded). The
/// caller either holds CAP_SYS_ADMIN or has set no_new_privs, as the kernel requires.
pub(crate) fn load(filters: &[BpfProgram]) -> io::Result<()> {
    for f in filters {
        let prog = SockFprog { len: f.len() as u16, filter: f.as_ptr() };
        // SAFETY: seccomp(SECCOMP_SET_MODE_FILTER) copies the program the kernel-layout
        // `sock_fprog` (#[repr(C)]) points to; both live across the call.
        let rc =
            unsafe { libc::syscall(libc::SYS_seccomp, libc::SECCOMP_SET_MODE_FILTER, 0, &prog as *const SockFprog) };
        if rc != 0 {
            return Err(io::Error::last_os_error());
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_profile_compiles_for_the_default_caps() {
        let held = caps::compute(false, &[], &[], 40).unwrap();
        let progs = runtime_default(&held).unwrap();
        assert_eq!(progs.len(), 2);
        assert!(progs[0].len() > 50);
        // Far below the kernel's 4096-instruction limit.
        assert!(progs[0].len() < 1000);
    }

    #[test]
    fn sys_admin_lifts_the_mount_family() {
        let without = runtime_default(&caps::compute(false, &[], &[], 40).unwrap()).unwrap();
        let with = runtime_default(&caps::compute(false, &["SYS_ADMIN".into()], &[], 40).unwrap()).unwrap();
        assert!(with[0].len() < without[0].len());
        let mount = libc::SYS_mount as u32;
        assert!(without[0].iter().any(|i| i.k == mount));
        assert!(!with[0].iter().any(|i| i.code == BPF_JEQ_K && i.k == mount));
        // clone3 is no longer refused either.
        assert!(!with[1].iter().any(|i| i.k == libc::SYS_clone3 as u32));
    }
}
