//! Linux capabilities: names, the default set containers get (containerd's and Docker's), the
//! securityContext add/drop rules, and applying a set to the calling process (capset, the
//! bounding set, ambient set) just before exec.

use std::io;

/// Capability names in kernel order (`CAP_CHOWN` = 0 …).
const NAMES: &[&str] = &[
    "CHOWN",
    "DAC_OVERRIDE",
    "DAC_READ_SEARCH",
    "FOWNER",
    "FSETID",
    "KILL",
    "SETGID",
    "SETUID",
    "SETPCAP",
    "LINUX_IMMUTABLE",
    "NET_BIND_SERVICE",
    "NET_BROADCAST",
    "NET_ADMIN",
    "NET_RAW",
    "IPC_LOCK",
    "IPC_OWNER",
    "SYS_MODULE",
    "SYS_RAWIO",
    "SYS_CHROOT",
    "SYS_PTRACE",
    "SYS_PACCT",
    "SYS_ADMIN",
    "SYS_BOOT",
    "SYS_NICE",
    "SYS_RESOURCE",
    "SYS_TIME",
    "SYS_TTY_CONFIG",
    "MKNOD",
    "LEASE",
    "AUDIT_WRITE",
    "AUDIT_CONTROL",
    "SETFCAP",
    "MAC_OVERRIDE",
    "MAC_ADMIN",
    "SYSLOG",
    "WAKE_ALARM",
    "BLOCK_SUSPEND",
    "AUDIT_READ",
    "PERFMON",
    "BPF",
    "CHECKPOINT_RESTORE",
];

/// The capabilities a container gets unless its securityContext says otherwise (the list
/// containerd's CRI plugin and Docker use).
const DEFAULT: &[&str] = &[
    "CHOWN",
    "DAC_OVERRIDE",
    "FSETID",
    "FOWNER",
    "MKNOD",
    "NET_RAW",
    "SETGID",
    "SETUID",
    "SETFCAP",
    "SETPCAP",
    "NET_BIND_SERVICE",
    "SYS_CHROOT",
    "KILL",
    "AUDIT_WRITE",
];

/// Capability number of a name, with or without the `CAP_` prefix, any case.
pub(crate) fn from_name(name: &str) -> Option<u8> {
    let upper = name.to_ascii_uppercase();
    let bare = upper.strip_prefix("CAP_").unwrap_or(&upper);
    NAMES.iter().position(|n| *n == bare).map(|i| i as u8)
}

#[cfg(test)]
fn name(cap: u8) -> &'static str {
    NAMES.get(cap as usize).copied().unwrap_or("UNKNOWN")
}

/// The highest capability this kernel knows (`/proc/sys/kernel/cap_last_cap`).
pub(crate) fn last_cap() -> u8 {
    std::fs::read_to_string("/proc/sys/kernel/cap_last_cap")
        .ok()
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or((NAMES.len() - 1) as u8)
}

/// The effective capability set of a container: every capability when privileged, otherwise
/// the default set with `drop` removed and then `add` added (`ALL` allowed in either, as in
/// Kubernetes: dropping ALL then adding some yields only those).
pub(crate) fn compute(privileged: bool, add: &[String], drop: &[String], last: u8) -> Result<Vec<u8>, String> {
    let all: Vec<u8> = (0..=last).collect();
    if privileged {
        return Ok(all);
    }
    let is_all = |s: &String| s.eq_ignore_ascii_case("ALL") || s.eq_ignore_ascii_case("CAP_ALL");
    let lookup = |s: &String| from_name(s).ok_or_else(|| format!("unknown capability {s:?}"));
    let mut set: Vec<u8> = DEFAULT.iter().filter_map(|n| from_name(n)).collect();
    if drop.iter().any(is_all) {
        set.clear();
    } else {
        for d in drop {
            let c = lookup(d)?;
            set.retain(|x| *x != c);
        }
    }
    if add.iter().any(is_all) {
        return Ok(all);
    }
    for a in add {
        let c = lookup(a)?;
        if c > last {
            return Err(format!("capability {a:?} is not supported by this kernel"));
        }
        if !set.contains(&c) {
            set.push(c);
        }
    }
    set.sort_unstable();
    Ok(set)
}

#[repr(C)]
struct CapHeader {
    version: u32,
    pid: i32,
}

#[repr(C)]
#[derive(Clone, Copy, Default)]
struct CapData {
    effective: u32,
    permitted: u32,
    inheritable: u32,
}

const LINUX_CAPABILITY_VERSION_3: u32 = 0x2008_0522;

/// Drop every capability not in `caps` from the bounding set and clear the ambient set.
/// Needs CAP_SETPCAP, so it runs before the container process switches user.
pub(crate) fn drop_bounding(caps: &[u8], last: u8) -> io::Result<()> {
    for c in 0..=last {
        if !caps.contains(&c) {
            // SAFETY: prctl with integer arguments only; no memory is passed.
            let rc = unsafe { libc::prctl(libc::PR_CAPBSET_DROP, c as libc::c_ulong, 0, 0, 0) };
            if rc != 0 {
                let e = io::Error::last_os_error();
                // EINVAL: the kernel does not know this capability; nothing to drop.
                if e.raw_os_error() != Some(libc::EINVAL) {
                    return Err(e);
                }
            }
        }
    }
    // SAFETY: integer-only prctl.
    unsafe { libc::prctl(libc::PR_CAP_AMBIENT, libc::PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0) };
    Ok(())
}

/// Set effective = permitted = inheritable = `caps` (after the user switch, with
/// `PR_SET_KEEPCAPS` having kept the permitted set). A non-root user loses them again at exec
/// (no ambient set), like under containerd.
pub(crate) fn set(caps: &[u8]) -> io::Result<()> {
    let mut data = [CapData::default(); 2];
    for &c in caps {
        let (word, bit) = ((c / 32) as usize, 1u32 << (c % 32));
        data[word].effective |= bit;
        data[word].permitted |= bit;
        data[word].inheritable |= bit;
    }
    let mut header = CapHeader { version: LINUX_CAPABILITY_VERSION_3, pid: 0 };
    // SAFETY: capset reads one header and two data structs, laid out as the kernel's
    // `__user_cap_header_struct` / `__user_cap_data_struct` (#[repr(C)]), both live for the
    // duration of the call.
    let rc = unsafe { libc::syscall(libc::SYS_capset, &mut header as *mut CapHeader, data.as_ptr()) };
    if rc != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(v: &[&str]) -> Vec<String> {
        v.iter().map(|x| x.to_string()).collect()
    }

    #[test]
    fn names_round_trip() {
        assert_eq!(from_name("CAP_SYS_ADMIN"), Some(21));
        assert_eq!(from_name("net_admin"), Some(12));
        assert_eq!(name(21), "SYS_ADMIN");
        assert_eq!(from_name("CAP_NOPE"), None);
    }

    #[test]
    fn default_set_add_and_drop() {
        let caps = compute(false, &[], &[], 40).unwrap();
        assert_eq!(caps.len(), DEFAULT.len());
        assert!(!caps.contains(&21));
        let caps = compute(false, &s(&["NET_ADMIN"]), &s(&["CAP_KILL", "MKNOD"]), 40).unwrap();
        assert!(caps.contains(&12));
        assert!(!caps.contains(&5));
        assert!(!caps.contains(&27));
    }

    #[test]
    fn drop_all_then_add_some() {
        let caps = compute(false, &s(&["NET_BIND_SERVICE"]), &s(&["ALL"]), 40).unwrap();
        assert_eq!(caps, vec![10]);
        assert_eq!(compute(false, &s(&["all"]), &[], 40).unwrap().len(), 41);
        assert_eq!(compute(true, &[], &s(&["ALL"]), 37).unwrap().len(), 38);
    }

    #[test]
    fn unknown_capability_is_an_error() {
        assert!(compute(false, &s(&["FLY"]), &[], 40).unwrap_err().contains("FLY"));
        assert!(compute(false, &[], &s(&["CAP_FLY"]), 40).is_err());
        assert!(compute(false, &s(&["BPF"]), &[], 37).is_err());
    }
}
