//! `exec` into a running container: the hidden `skiff shim exec <container dir> <request>`
//! helper. The runtime spawns it with the session's stdio (pipes or a pty slave); it joins
//! the container's cgroups and namespaces (taken from the container init through /proc, mount
//! namespace last), forks so the child is born in the container's PID namespace, and the child
//! becomes the process (user, capabilities, seccomp like the container's) and execs it. The
//! helper waits and exits with the child's code (128+n for signal n), so the runtime learns
//! the exit code from its own child. If the helper is killed, the child dies with it
//! (`PR_SET_PDEATHSIG`): that is how exec timeouts end a session.

use std::ffi::OsString;
use std::fs::File;
use std::path::Path;

use nix::sched::CloneFlags;
use nix::sys::wait::WaitStatus;
use nix::unistd::ForkResult;
use serde::{Deserialize, Serialize};

use super::process;
use super::shim::{SPEC_FILE, ShimState, alive, read_status};
use super::spec::ContainerSpec;

/// What to run (the helper's last argument, as JSON).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct ExecRequest {
    pub(crate) args: Vec<String>,
    pub(crate) tty: bool,
}

/// Exit code when the helper itself fails before running anything.
pub(crate) const EXEC_SETUP_FAILED: i32 = 126;
/// Exit code when the program was not found or could not be executed.
pub(crate) const EXEC_NOT_FOUND: i32 = 127;

pub(crate) fn helper_main(dir: &Path, request: &OsString) -> i32 {
    match helper(dir, request) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("exec failed: {e}");
            EXEC_SETUP_FAILED
        }
    }
}

fn helper(dir: &Path, request: &OsString) -> Result<i32, String> {
    let req: ExecRequest =
        serde_json::from_str(&request.to_string_lossy()).map_err(|e| format!("bad exec request: {e}"))?;
    let spec: ContainerSpec = serde_json::from_slice(
        &std::fs::read(dir.join(SPEC_FILE)).map_err(|e| format!("reading container spec: {e}"))?,
    )
    .map_err(|e| format!("reading container spec: {e}"))?;
    let status = read_status(dir).map_err(|e| format!("reading container status: {e}"))?;
    if status.state != ShimState::Running || !alive(status.pid, status.pid_start) {
        return Err("container is not running".into());
    }
    // Open every namespace first: after joining the mount namespace /proc is the container's.
    let mut namespaces = Vec::new();
    for (name, flag) in [
        ("ipc", CloneFlags::CLONE_NEWIPC),
        ("uts", CloneFlags::CLONE_NEWUTS),
        ("net", CloneFlags::CLONE_NEWNET),
        ("pid", CloneFlags::CLONE_NEWPID),
        ("mnt", CloneFlags::CLONE_NEWNS),
    ] {
        let f = File::open(format!("/proc/{}/ns/{name}", status.pid))
            .map_err(|e| format!("opening the container's {name} namespace: {e}"))?;
        namespaces.push((f, flag, name));
    }
    // Still the same process (not a reused pid) now that we hold its namespaces.
    if !alive(status.pid, status.pid_start) {
        return Err("container is not running".into());
    }
    let me = std::process::id().to_string();
    for procs in &spec.cgroup.procs {
        std::fs::write(procs, &me).map_err(|e| format!("joining cgroup {}: {e}", procs.display()))?;
    }
    for (f, flag, name) in namespaces {
        nix::sched::setns(f, flag).map_err(|e| format!("joining the {name} namespace: {e}"))?;
    }
    if req.tty {
        // Our stdin is the runtime's console socket: the terminal is opened in the container's
        // devpts and its master sent back; the slave becomes our stdio.
        let (master, slave) = super::console::open_pty(spec.process.uid).map_err(|e| format!("terminal: {e}"))?;
        super::console::send_fd(&std::io::stdin(), &master).map_err(|e| format!("sending the terminal: {e}"))?;
        drop(master);
        for r in [nix::unistd::dup2_stdin(&slave), nix::unistd::dup2_stdout(&slave), nix::unistd::dup2_stderr(&slave)] {
            r.map_err(|e| format!("terminal: {e}"))?;
        }
    }
    let mut proc_spec = spec.process.clone();
    proc_spec.args = req.args;
    proc_spec.tty = req.tty;
    // SAFETY: the helper is a fresh single-threaded process.
    match unsafe { nix::unistd::fork() }.map_err(|e| format!("fork: {e}"))? {
        ForkResult::Child => {
            // SAFETY: integer-only prctl.
            unsafe { libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL, 0, 0, 0) };
            // SAFETY: restoring the default disposition installs no handler code.
            unsafe { libc::signal(libc::SIGPIPE, libc::SIG_DFL) };
            let (e, _) = process::exec(&proc_spec);
            eprintln!("{e}");
            // SAFETY: leave without running the parent's exit handlers.
            unsafe { libc::_exit(EXEC_NOT_FOUND) }
        }
        ForkResult::Parent { child } => loop {
            match nix::sys::wait::waitpid(child, None) {
                Ok(WaitStatus::Exited(_, code)) => return Ok(code),
                Ok(WaitStatus::Signaled(_, sig, _)) => return Ok(128 + sig as i32),
                Ok(_) | Err(nix::errno::Errno::EINTR) => continue,
                Err(e) => return Err(format!("waiting for the exec'd process: {e}")),
            }
        },
    }
}
