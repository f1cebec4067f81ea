//! The container spec: everything the shim needs to create one container, computed by the
//! runtime from the CRI request, the sandbox and the image, and handed to the shim as
//! `spec.json` in the container's state dir. Building it is pure (unit-tested here): the
//! Kubernetes command/args vs ENTRYPOINT/CMD rules, environment merging, user and group
//! resolution from the image's `/etc/passwd` and `/etc/group`, capabilities.

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use crate::cri::{ContainerConfig, ImageConfig, SeccompProfile};

/// The default `PATH` when the image sets none (Docker's and containerd's).
pub(crate) const DEFAULT_PATH: &str = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct ContainerSpec {
    pub(crate) id: String,
    pub(crate) rootfs: RootfsSpec,
    /// Extra mounts in order (after the standard /proc, /sys, /dev set).
    pub(crate) mounts: Vec<MountSpec>,
    pub(crate) namespaces: NamespaceSpec,
    pub(crate) process: ProcessSpec,
    pub(crate) cgroup: CgroupSpec,
    pub(crate) masked_paths: Vec<String>,
    pub(crate) readonly_paths: Vec<String>,
    /// Privileged: host /dev, read-write /sys, no masks (capabilities and seccomp are in
    /// `process`).
    pub(crate) privileged: bool,
    /// The sandbox's /dev/shm (shared by the pod's containers), bind-mounted if set.
    pub(crate) shm: Option<PathBuf>,
    pub(crate) log: LogSpec,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct RootfsSpec {
    /// Image layers, top-most first (overlayfs `lowerdir` order).
    pub(crate) lower: Vec<PathBuf>,
    pub(crate) upper: PathBuf,
    pub(crate) work: PathBuf,
    /// Where the overlay is mounted (inside the container's mount namespace only).
    pub(crate) target: PathBuf,
    pub(crate) readonly: bool,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) enum MountKind {
    Bind,
    /// A tmpfs of this many bytes (0: the kernel default).
    Tmpfs(u64),
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) enum MountPropagation {
    Private,
    Slave,
    Shared,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct MountSpec {
    /// Absolute path inside the container.
    pub(crate) destination: String,
    pub(crate) source: Option<PathBuf>,
    pub(crate) kind: MountKind,
    pub(crate) readonly: bool,
    pub(crate) propagation: MountPropagation,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) enum PidNamespace {
    /// A new PID namespace; the container's process is PID 1.
    New,
    /// The host's (hostPID).
    Host,
    /// Join this one (shareProcessNamespace).
    Join(PathBuf),
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct NamespaceSpec {
    /// The sandbox's namespaces to join; `None` = the host's.
    pub(crate) net: Option<PathBuf>,
    pub(crate) ipc: Option<PathBuf>,
    pub(crate) uts: Option<PathBuf>,
    pub(crate) pid: PidNamespace,
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) enum SeccompMode {
    #[default]
    RuntimeDefault,
    Unconfined,
}

/// The process to exec: shared by the container's main process and `exec` sessions.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct ProcessSpec {
    pub(crate) args: Vec<String>,
    pub(crate) env: Vec<String>,
    pub(crate) cwd: String,
    pub(crate) uid: u32,
    pub(crate) gid: u32,
    pub(crate) additional_gids: Vec<u32>,
    pub(crate) caps: Vec<u8>,
    pub(crate) no_new_privs: bool,
    pub(crate) seccomp: SeccompMode,
    pub(crate) oom_score_adj: Option<i32>,
    pub(crate) tty: bool,
    pub(crate) stdin: bool,
    pub(crate) stdin_once: bool,
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct CgroupSpec {
    /// The `cgroup.procs` files the process is written into (one per v1 hierarchy; one on v2).
    pub(crate) procs: Vec<PathBuf>,
    /// The file whose `oom_kill` counter tells an OOM kill (v1 `memory.oom_control`, v2
    /// `memory.events`).
    pub(crate) oom_events: Option<PathBuf>,
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct LogSpec {
    /// The CRI log file; `None` discards output.
    pub(crate) path: Option<PathBuf>,
    pub(crate) max_size: u64,
    pub(crate) max_files: u32,
}

/// Why a spec could not be built (the kubelet reports `CreateContainerConfigError`-like
/// failures from these).
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub(crate) enum SpecError {
    /// Neither the pod nor the image gives a command.
    #[error("no command specified")]
    NoCommand,
    /// A user or group name is not in the image's /etc/passwd or /etc/group.
    #[error("unable to find {what} {name:?} in the image")]
    UnknownUser { what: &'static str, name: String },
    /// The image's USER is malformed.
    #[error("invalid user {0:?}")]
    InvalidUser(String),
    #[error("{0}")]
    Capabilities(String),
    /// A seccomp profile we cannot load.
    #[error("seccomp profile {0} is not supported")]
    Seccomp(String),
}

/// Kubernetes' rules: `command` replaces ENTRYPOINT *and* CMD; `args` alone replace CMD.
pub(crate) fn command_line(command: &[String], args: &[String], image: &ImageConfig) -> Result<Vec<String>, SpecError> {
    let argv: Vec<String> = if !command.is_empty() {
        command.iter().chain(args).cloned().collect()
    } else {
        let tail = if args.is_empty() { &image.cmd } else { args };
        image.entrypoint.iter().chain(tail).cloned().collect()
    };
    if argv.is_empty() {
        return Err(SpecError::NoCommand);
    }
    Ok(argv)
}

/// Image env, then defaults the image lacks (PATH, HOSTNAME, TERM, HOME), then the pod's
/// env overriding any same-named variable in place.
pub(crate) fn environment(
    image_env: &[String],
    pod_env: &[(String, String)],
    hostname: &str,
    tty: bool,
    home: &str,
) -> Vec<String> {
    let mut env: Vec<String> = Vec::with_capacity(image_env.len() + pod_env.len() + 3);
    let key = |s: &str| s.split('=').next().unwrap_or("").to_string();
    let set = |env: &mut Vec<String>, entry: String| {
        let k = key(&entry);
        if let Some(slot) = env.iter_mut().find(|e| key(e) == k) {
            *slot = entry;
        } else {
            env.push(entry);
        }
    };
    if !image_env.iter().any(|e| key(e) == "PATH") {
        env.push(DEFAULT_PATH.to_string());
    }
    for e in image_env {
        set(&mut env, e.clone());
    }
    set(&mut env, format!("HOSTNAME={hostname}"));
    if tty && !env.iter().any(|e| key(e) == "TERM") {
        env.push("TERM=xterm".to_string());
    }
    for (k, v) in pod_env {
        set(&mut env, format!("{k}={v}"));
    }
    if !env.iter().any(|e| key(e) == "HOME") {
        env.push(format!("HOME={home}"));
    }
    env
}

/// A user as resolved against the image.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct ResolvedUser {
    pub(crate) uid: u32,
    pub(crate) gid: u32,
    pub(crate) additional_gids: Vec<u32>,
    pub(crate) home: String,
}

struct PasswdEntry {
    name: String,
    uid: u32,
    gid: u32,
    home: String,
}

fn parse_passwd(text: &str) -> Vec<PasswdEntry> {
    text.lines()
        .filter(|l| !l.trim_start().starts_with('#'))
        .filter_map(|l| {
            let f: Vec<&str> = l.split(':').collect();
            if f.len() < 6 {
                return None;
            }
            Some(PasswdEntry {
                name: f[0].to_string(),
                uid: f[2].parse().ok()?,
                gid: f[3].parse().ok()?,
                home: f[5].to_string(),
            })
        })
        .collect()
}

/// (name, gid, members) of /etc/group.
fn parse_group(text: &str) -> Vec<(String, u32, Vec<String>)> {
    text.lines()
        .filter(|l| !l.trim_start().starts_with('#'))
        .filter_map(|l| {
            let f: Vec<&str> = l.split(':').collect();
            if f.len() < 3 {
                return None;
            }
            let members = f
                .get(3)
                .map(|m| m.split(',').filter(|x| !x.is_empty()).map(str::to_string).collect())
                .unwrap_or_default();
            Some((f[0].to_string(), f[2].parse().ok()?, members))
        })
        .collect()
}

/// Resolve the container's user: `runAsUser`/`runAsGroup` win, then `run_as_username`, then
/// the image's USER (`name`, `uid`, `name:group`, `uid:gid`). Names are looked up in the
/// image's /etc/passwd and /etc/group (`passwd`/`group`: their contents, if present); the
/// user's groups from /etc/group and `supplementalGroups` become additional groups.
pub(crate) fn resolve_user(
    run_as_user: Option<u32>,
    run_as_group: Option<u32>,
    run_as_username: Option<&str>,
    image_user: Option<&str>,
    supplemental: &[u32],
    passwd: Option<&str>,
    group: Option<&str>,
) -> Result<ResolvedUser, SpecError> {
    let users = passwd.map(parse_passwd).unwrap_or_default();
    let groups = group.map(parse_group).unwrap_or_default();
    let (user_part, group_part): (Option<String>, Option<String>) = match run_as_user {
        Some(uid) => (Some(uid.to_string()), None),
        None => match run_as_username.filter(|s| !s.is_empty()) {
            Some(name) => (Some(name.to_string()), None),
            None => match image_user.filter(|s| !s.is_empty()) {
                Some(u) => {
                    let mut it = u.splitn(2, ':');
                    let user = it.next().unwrap_or("").to_string();
                    let grp = it.next().map(str::to_string);
                    if user.is_empty() {
                        return Err(SpecError::InvalidUser(u.to_string()));
                    }
                    (Some(user), grp)
                }
                None => (None, None),
            },
        },
    };
    let (uid, mut gid, home, name) = match user_part {
        None => (0, 0, "/root".to_string(), Some("root".to_string())),
        Some(u) => {
            if let Ok(uid) = u.parse::<u32>() {
                match users.iter().find(|e| e.uid == uid) {
                    Some(e) => (uid, e.gid, e.home.clone(), Some(e.name.clone())),
                    None => (uid, 0, "/".to_string(), None),
                }
            } else {
                match users.iter().find(|e| e.name == u) {
                    Some(e) => (e.uid, e.gid, e.home.clone(), Some(e.name.clone())),
                    None => return Err(SpecError::UnknownUser { what: "user", name: u }),
                }
            }
        }
    };
    if let Some(g) = group_part {
        gid = match g.parse::<u32>() {
            Ok(gid) => gid,
            Err(_) => groups
                .iter()
                .find(|(n, _, _)| *n == g)
                .map(|(_, gid, _)| *gid)
                .ok_or(SpecError::UnknownUser { what: "group", name: g.clone() })?,
        };
    }
    if let Some(g) = run_as_group {
        gid = g;
    }
    let mut additional: Vec<u32> = Vec::new();
    if let Some(name) = &name {
        for (_, g, members) in &groups {
            if members.iter().any(|m| m == name) && !additional.contains(g) {
                additional.push(*g);
            }
        }
    }
    for g in supplemental {
        if !additional.contains(g) {
            additional.push(*g);
        }
    }
    Ok(ResolvedUser { uid, gid, additional_gids: additional, home })
}

/// The process spec of a container from its CRI config and image. `passwd`/`group` are the
/// image's files (if any).
pub(crate) fn process_spec(
    config: &ContainerConfig,
    image: &ImageConfig,
    hostname: &str,
    passwd: Option<&str>,
    group: Option<&str>,
    last_cap: u8,
) -> Result<ProcessSpec, SpecError> {
    let sec = &config.security;
    let args = command_line(&config.command, &config.args, image)?;
    let user = resolve_user(
        sec.run_as_user,
        sec.run_as_group,
        sec.run_as_username.as_deref(),
        image.user.as_deref(),
        &sec.supplemental_groups,
        passwd,
        group,
    )?;
    let env = environment(&image.env, &config.env, hostname, config.tty, &user.home);
    let cwd = config
        .working_dir
        .clone()
        .filter(|d| !d.is_empty())
        .or_else(|| image.working_dir.clone().filter(|d| !d.is_empty()))
        .unwrap_or_else(|| "/".to_string());
    let caps = super::caps::compute(sec.privileged, &sec.capabilities_add, &sec.capabilities_drop, last_cap)
        .map_err(SpecError::Capabilities)?;
    let seccomp = match (&sec.seccomp, sec.privileged) {
        (_, true) | (SeccompProfile::Unconfined, _) => SeccompMode::Unconfined,
        (SeccompProfile::RuntimeDefault, false) => SeccompMode::RuntimeDefault,
        (SeccompProfile::Localhost(p), false) => {
            return Err(SpecError::Seccomp(format!("Localhost/{}", p.display())));
        }
    };
    Ok(ProcessSpec {
        args,
        env,
        cwd,
        uid: user.uid,
        gid: user.gid,
        additional_gids: user.additional_gids,
        caps,
        no_new_privs: sec.no_new_privileges,
        seccomp,
        oom_score_adj: config.resources.oom_score_adj,
        tty: config.tty,
        stdin: config.stdin,
        stdin_once: config.stdin_once,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(v: &[&str]) -> Vec<String> {
        v.iter().map(|x| x.to_string()).collect()
    }

    fn image(ep: &[&str], cmd: &[&str]) -> ImageConfig {
        ImageConfig { entrypoint: s(ep), cmd: s(cmd), ..Default::default() }
    }

    #[test]
    fn command_replaces_entrypoint_and_cmd() {
        let img = image(&["/entry"], &["a", "b"]);
        assert_eq!(command_line(&s(&["/bin/sh"]), &[], &img).unwrap(), s(&["/bin/sh"]));
        assert_eq!(command_line(&s(&["/bin/sh"]), &s(&["-c", "x"]), &img).unwrap(), s(&["/bin/sh", "-c", "x"]));
    }

    #[test]
    fn args_alone_replace_cmd() {
        let img = image(&["/entry"], &["a", "b"]);
        assert_eq!(command_line(&[], &s(&["c"]), &img).unwrap(), s(&["/entry", "c"]));
        assert_eq!(command_line(&[], &[], &img).unwrap(), s(&["/entry", "a", "b"]));
        let img = image(&[], &["sh"]);
        assert_eq!(command_line(&[], &s(&["ls"]), &img).unwrap(), s(&["ls"]));
    }

    #[test]
    fn no_command_at_all_is_an_error() {
        assert_eq!(command_line(&[], &[], &image(&[], &[])), Err(SpecError::NoCommand));
    }

    #[test]
    fn environment_merges_in_order() {
        let env = environment(
            &s(&["PATH=/img", "A=1", "B=2"]),
            &[("B".into(), "pod".into()), ("C".into(), "3".into())],
            "web-0",
            true,
            "/root",
        );
        assert_eq!(env, s(&["PATH=/img", "A=1", "B=pod", "HOSTNAME=web-0", "TERM=xterm", "C=3", "HOME=/root"]));
        let env = environment(&[], &[], "h", false, "/");
        assert_eq!(env[0], DEFAULT_PATH);
        assert!(!env.iter().any(|e| e.starts_with("TERM=")));
    }

    const PASSWD: &str = "root:x:0:0:root:/root:/bin/sh\n\
                          # comment\n\
                          nobody:x:65534:65534:nobody:/nonexistent:/bin/false\n\
                          app:x:1000:1001:App:/home/app:/bin/sh\n";
    const GROUP: &str = "root:x:0:\nwheel:x:10:app,root\napp:x:1001:\nstaff:x:50:app\n";

    #[test]
    fn user_from_image_names() {
        let u = resolve_user(None, None, None, Some("app"), &[], Some(PASSWD), Some(GROUP)).unwrap();
        assert_eq!((u.uid, u.gid, u.home.as_str()), (1000, 1001, "/home/app"));
        assert_eq!(u.additional_gids, vec![10, 50]);
        let u = resolve_user(None, None, None, Some("app:wheel"), &[7], Some(PASSWD), Some(GROUP)).unwrap();
        assert_eq!(u.gid, 10);
        assert_eq!(u.additional_gids, vec![10, 50, 7]);
    }

    #[test]
    fn numeric_users_need_no_passwd() {
        let u = resolve_user(None, None, None, Some("123:456"), &[], None, None).unwrap();
        assert_eq!((u.uid, u.gid), (123, 456));
        let u = resolve_user(Some(65534), None, None, Some("app"), &[], Some(PASSWD), None).unwrap();
        assert_eq!((u.uid, u.gid), (65534, 65534));
        let u = resolve_user(Some(5), Some(6), None, None, &[], None, None).unwrap();
        assert_eq!((u.uid, u.gid), (5, 6));
        let u = resolve_user(None, None, None, None, &[], None, None).unwrap();
        assert_eq!((u.uid, u.gid, u.home.as_str()), (0, 0, "/root"));
    }

    #[test]
    fn unknown_names_are_errors() {
        assert_eq!(
            resolve_user(None, None, None, Some("ghost"), &[], Some(PASSWD), None),
            Err(SpecError::UnknownUser { what: "user", name: "ghost".into() })
        );
        assert!(matches!(
            resolve_user(None, None, None, Some("app:nogroup"), &[], Some(PASSWD), Some(GROUP)),
            Err(SpecError::UnknownUser { what: "group", .. })
        ));
        assert!(matches!(
            resolve_user(None, None, Some("ghost"), None, &[], None, None),
            Err(SpecError::UnknownUser { .. })
        ));
        assert!(matches!(resolve_user(None, None, None, Some(":5"), &[], None, None), Err(SpecError::InvalidUser(_))));
    }

    #[test]
    fn process_spec_from_config() {
        let mut c = ContainerConfig {
            name: "c".into(),
            command: s(&["sleep"]),
            args: s(&["1"]),
            tty: true,
            ..Default::default()
        };
        c.security.capabilities_add = s(&["NET_ADMIN"]);
        c.security.no_new_privileges = true;
        let img = ImageConfig { working_dir: Some("/srv".into()), ..Default::default() };
        let p = process_spec(&c, &img, "pod", None, None, 40).unwrap();
        assert_eq!(p.args, s(&["sleep", "1"]));
        assert_eq!(p.cwd, "/srv");
        assert!(p.caps.contains(&12));
        assert!(p.no_new_privs && p.tty);
        assert_eq!(p.seccomp, SeccompMode::RuntimeDefault);
        c.security.privileged = true;
        let p = process_spec(&c, &img, "pod", None, None, 40).unwrap();
        assert_eq!((p.caps.len(), p.seccomp), (41, SeccompMode::Unconfined));
        c.security.privileged = false;
        c.security.seccomp = SeccompProfile::Localhost("/x.json".into());
        assert!(matches!(process_spec(&c, &img, "pod", None, None, 40), Err(SpecError::Seccomp(_))));
    }
}
