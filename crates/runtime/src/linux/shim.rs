//! The per-container supervisor ("shim"): a small single-threaded process, re-executed from
//! the skiff binary (`skiff shim run <container dir>`), that creates the container, holds its
//! stdio, writes its logs, serves attach/start/kill/wait over a unix socket, reaps it and
//! records how it ended. It outlives skiff (fail-static): a restarted runtime finds it through
//! the container's state dir.
//!
//! Plain std + nix, one `poll` loop, no tokio and almost no allocation after start, so it
//! costs well under a megabyte of private memory (see docs/benchmarks.md).
//!
//! Lifecycle inside the shim:
//! 1. The process the runtime spawned forks and exits at once, so the supervisor is nobody's
//!    child (no zombie in skiff; skiff can die without taking it along). The supervisor calls
//!    `setsid` and becomes a child subreaper.
//! 2. It enters the container's new (or shared) PID namespace for its children and forks the
//!    container init, moves it into its cgroups, and lets it set up its namespaces and rootfs
//!    ([`super::rootfs`]). The init reports `R` (ready) and blocks: state `Created`, reported
//!    to the runtime as `ok <pid>` on the shim's stdout.
//! 3. `start` on the socket releases the init, which execs the container's program; the
//!    close-on-exec report pipe closing tells the exec worked (`Running`).
//! 4. On SIGCHLD for the init: drain the output, record exit code, finish time and reason
//!    (`OOMKilled` when the memory cgroup's oom_kill counter grew), tell waiters and attached
//!    clients, exit.

use std::ffi::OsString;
use std::fs::{self, File};
use std::io::{self, Read, Write};
use std::os::fd::{AsFd, AsRawFd, OwnedFd, RawFd};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use nix::poll::{PollFd, PollFlags, PollTimeout};
use nix::sched::CloneFlags;
use nix::sys::signal::{SigSet, SigmaskHow, Signal};
use nix::sys::signalfd::{SfdFlags, SignalFd};
use nix::sys::wait::{WaitPidFlag, WaitStatus};
use nix::unistd::{ForkResult, Pid};
use serde::{Deserialize, Serialize};

use super::cri_log::{LogStream, LogWriter, now_ns};
use super::spec::{ContainerSpec, PidNamespace};
use super::syscall::{LinuxSyscall, Syscall};
use super::{cgroups, process, rootfs};

/// Files in a container's state dir.
pub(crate) const SPEC_FILE: &str = "spec.json";
pub(crate) const STATUS_FILE: &str = "status.json";
pub(crate) const SOCKET_FILE: &str = "sock";
pub(crate) const SHIM_LOG: &str = "shim.log";

/// Where the container is in its life, as the shim records it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) enum ShimState {
    Created,
    Running,
    Exited,
}

/// `status.json`: written by the shim (atomically) at every transition.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct ShimStatus {
    pub(crate) state: ShimState,
    pub(crate) shim_pid: i32,
    /// The shim's start time (clock ticks since boot), to tell it from a reused pid.
    pub(crate) shim_start: u64,
    /// The container init's host pid and start time.
    pub(crate) pid: i32,
    pub(crate) pid_start: u64,
    pub(crate) created_at: i64,
    pub(crate) started_at: i64,
    pub(crate) finished_at: i64,
    pub(crate) exit_code: i32,
    pub(crate) reason: String,
    pub(crate) message: String,
}

/// Attach stream frames: `[kind u8][len u32 BE][payload]`.
pub(crate) mod frame {
    pub(crate) const STDIN: u8 = 0;
    pub(crate) const STDOUT: u8 = 1;
    pub(crate) const STDERR: u8 = 2;
    pub(crate) const CLOSE_STDIN: u8 = 3;
    /// Payload: width u16 BE, height u16 BE.
    pub(crate) const RESIZE: u8 = 4;
    /// Payload: exit code i32 BE; the shim closes the stream after it.
    pub(crate) const EXIT: u8 = 5;

    pub(crate) fn encode(kind: u8, payload: &[u8]) -> Vec<u8> {
        let mut v = Vec::with_capacity(5 + payload.len());
        v.push(kind);
        v.extend_from_slice(&(payload.len() as u32).to_be_bytes());
        v.extend_from_slice(payload);
        v
    }

    /// Split one frame off the front of `buf`, if complete.
    pub(crate) fn decode(buf: &mut Vec<u8>) -> Option<(u8, Vec<u8>)> {
        if buf.len() < 5 {
            return None;
        }
        let len = u32::from_be_bytes([buf[1], buf[2], buf[3], buf[4]]) as usize;
        if buf.len() < 5 + len {
            return None;
        }
        let kind = buf[0];
        let payload = buf[5..5 + len].to_vec();
        buf.drain(..5 + len);
        Some((kind, payload))
    }
}

/// Start time of a process in clock ticks since boot (`/proc/<pid>/stat` field 22).
pub(crate) fn proc_start_time(pid: i32) -> Option<u64> {
    let stat = fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name may contain spaces and parentheses: fields start after the last ')'.
    let rest = &stat[stat.rfind(')')? + 2..];
    rest.split(' ').nth(19)?.parse().ok()
}

/// Whether `pid` is still the process that started at `start`.
pub(crate) fn alive(pid: i32, start: u64) -> bool {
    pid > 0 && proc_start_time(pid) == Some(start)
}

pub(crate) fn read_status(dir: &Path) -> io::Result<ShimStatus> {
    let text = fs::read(dir.join(STATUS_FILE))?;
    serde_json::from_slice(&text).map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))
}

pub(crate) fn write_status(dir: &Path, status: &ShimStatus) -> io::Result<()> {
    let tmp = dir.join(".status.json.tmp");
    let data = serde_json::to_vec(status).map_err(io::Error::other)?;
    fs::write(&tmp, data)?;
    fs::rename(&tmp, dir.join(STATUS_FILE))
}

/// The hidden `shim` subcommand: `run <container dir>` or `exec <container dir> <request>`.
/// Returns the process exit code.
pub fn shim_main(args: &[OsString]) -> i32 {
    // Writing to a vanished client must be an error, not a death.
    // SAFETY: setting a signal disposition to SIG_IGN installs no handler code.
    unsafe { libc::signal(libc::SIGPIPE, libc::SIG_IGN) };
    let arg = |i: usize| args.get(i).map(PathBuf::from);
    match args.first().and_then(|a| a.to_str()) {
        Some("run") => match arg(1) {
            Some(dir) => run(&dir),
            None => usage(),
        },
        Some("pod-init") => pod_init(),
        Some("exec") => match (arg(1), args.get(2)) {
            (Some(dir), Some(req)) => super::exec::helper_main(&dir, req),
            _ => usage(),
        },
        _ => usage(),
    }
}

fn usage() -> i32 {
    eprintln!("usage: skiff shim run <container dir> | exec <container dir> <request> | pod-init");
    2
}

fn report_line(fd: &mut File, line: &str) {
    let _ = fd.write_all(line.as_bytes());
    let _ = fd.write_all(b"\n");
}

fn run(dir: &Path) -> i32 {
    // The spawning runtime reads our stdout up to the first line.
    // SAFETY: fd 1 is our stdout, handed over by the runtime; we take ownership of a dup.
    let mut report = match nix::unistd::dup(io::stdout().as_fd()) {
        Ok(fd) => File::from(fd),
        Err(e) => {
            eprintln!("shim: dup stdout: {e}");
            return 1;
        }
    };
    let spec: ContainerSpec = match fs::read(dir.join(SPEC_FILE))
        .map_err(|e| e.to_string())
        .and_then(|b| serde_json::from_slice(&b).map_err(|e| e.to_string()))
    {
        Ok(s) => s,
        Err(e) => {
            report_line(&mut report, &format!("error reading {}: {e}", SPEC_FILE));
            return 1;
        }
    };
    // SAFETY: the shim is single-threaded (a fresh exec of our binary that started no
    // threads), so the child may keep running Rust code after fork.
    match unsafe { nix::unistd::fork() } {
        Err(e) => {
            report_line(&mut report, &format!("error fork: {e}"));
            return 1;
        }
        // The runtime waits for this process; the supervisor carries on as an orphan.
        Ok(ForkResult::Parent { .. }) => return 0,
        Ok(ForkResult::Child) => {}
    }
    let _ = nix::unistd::setsid();
    // Hold no directory of whoever started us busy.
    let _ = nix::unistd::chdir("/");
    // Orphans of a host-PID container are reparented to us rather than to the host's init.
    // SAFETY: integer-only prctl.
    unsafe { libc::prctl(libc::PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) };
    redirect_stdio(dir);
    let status = match Supervisor::create(dir, spec) {
        Ok(s) => s,
        Err(e) => {
            report_line(&mut report, &format!("error {e}"));
            return 1;
        }
    };
    report_line(&mut report, &format!("ok {}", status.status.pid));
    drop(report);
    status.run()
}

/// Unmap (from our page tables only) the read-only file-backed pages that start-up touched:
/// the binary's code and data and the shared libraries. They stay in the page cache, and the
/// few the event loop needs fault straight back in; without this, the kernel's fault-around
/// leaves ~2 MB of skiff's code counted in each supervisor's RSS. Anonymous memory (our real
/// cost) is untouched.
fn trim_resident_file_pages() {
    let Ok(smaps) = fs::read_to_string("/proc/self/smaps") else { return };
    // (start, end, candidate) of the mapping whose fields are being read.
    let mut current: Option<(usize, usize)> = None;
    for line in smaps.lines() {
        let mut f = line.split_whitespace();
        let first = f.next().unwrap_or("");
        if let Some((a, b)) = first.split_once('-')
            && let (Ok(start), Ok(end)) = (usize::from_str_radix(a, 16), usize::from_str_radix(b, 16))
        {
            let perms = f.next().unwrap_or("");
            let inode = f.nth(2).unwrap_or("0");
            // Read-only, private, file-backed (not [vdso]/[vvar]).
            let candidate = perms.as_bytes().get(1) == Some(&b'-') && perms.ends_with('p') && inode != "0";
            current = candidate.then_some((start, end));
            continue;
        }
        // Pages written after mapping (relocations in RELRO) are anonymous copies: dropping
        // them would revert to the file's bytes. Only untouched mappings are trimmed.
        if first == "Anonymous:"
            && let Some((start, end)) = current.take()
            && f.next() == Some("0")
        {
            // SAFETY: MADV_DONTNEED on a read-only private file mapping without anonymous
            // (copied-on-write) pages only drops page-table entries; the same bytes are read
            // back from the unchanged file on the next access — even for the code running here.
            unsafe { libc::madvise(start as *mut libc::c_void, end - start, libc::MADV_DONTNEED) };
        }
    }
}

/// stdin and stdout to /dev/null, stderr to the container dir's shim.log (for post-mortems).
/// `pod-init`: the PID 1 of a pod's shared PID namespace (`shareProcessNamespace`). A PID
/// namespace cannot be held open by a bind mount the way the others are: once its init exits,
/// no process can be created in it. So this process unshares a PID namespace, forks its init
/// and reports `ok <host pid>`; the init detaches from everything, reaps the orphans its
/// containers leave (what `pause` does upstream) and lives until the sandbox's removal kills
/// it (it sits in the pod's cgroup). It allocates nothing after the fork.
fn pod_init() -> i32 {
    let mut report = match nix::unistd::dup(io::stdout().as_fd()) {
        Ok(fd) => File::from(fd),
        Err(e) => {
            eprintln!("pod-init: dup stdout: {e}");
            return 1;
        }
    };
    let _ = nix::unistd::setsid();
    let _ = nix::unistd::chdir("/");
    if let Err(e) = nix::sched::unshare(CloneFlags::CLONE_NEWPID) {
        report_line(&mut report, &format!("error unshare(CLONE_NEWPID): {e}"));
        return 1;
    }
    // SAFETY: single-threaded process (a fresh exec of our binary); the child only makes
    // async-signal-safe calls.
    match unsafe { nix::unistd::fork() } {
        Err(e) => {
            report_line(&mut report, &format!("error fork: {e}"));
            1
        }
        Ok(ForkResult::Parent { child }) => {
            report_line(&mut report, &format!("ok {child}"));
            0
        }
        Ok(ForkResult::Child) => {
            drop(report);
            if let Ok(null) = File::options().read(true).write(true).open("/dev/null") {
                let _ = nix::unistd::dup2_stdin(&null);
                let _ = nix::unistd::dup2_stdout(&null);
                let _ = nix::unistd::dup2_stderr(&null);
            }
            reap_forever()
        }
    }
}

/// PID 1's loop: every signal blocked (signals from inside the namespace are ignored by the
/// kernel anyway, SIGKILL from the host still ends us), orphans reaped as they exit.
fn reap_forever() -> ! {
    let all = SigSet::all();
    let _ = all.thread_block();
    let mut chld = SigSet::empty();
    chld.add(Signal::SIGCHLD);
    loop {
        match nix::sys::wait::waitpid(Pid::from_raw(-1), None) {
            Ok(_) | Err(nix::errno::Errno::EINTR) => {}
            // No children now: sleep until one exits (a pending, blocked SIGCHLD wakes us).
            Err(_) => {
                let _ = chld.wait();
            }
        }
    }
}

fn redirect_stdio(dir: &Path) {
    if let Ok(null) = File::options().read(true).write(true).open("/dev/null") {
        let _ = nix::unistd::dup2_stdin(&null);
        let _ = nix::unistd::dup2_stdout(&null);
    }
    if let Ok(log) = File::options().create(true).append(true).open(dir.join(SHIM_LOG)) {
        let _ = nix::unistd::dup2_stderr(&log);
    }
}

enum ClientMode {
    /// Waiting for the command line.
    Command,
    /// `wait`: answered when the container exits.
    Wait,
    Attach {
        stdin: bool,
        stdout: bool,
        stderr: bool,
    },
}

struct Client {
    stream: UnixStream,
    buf: Vec<u8>,
    mode: ClientMode,
}

struct Output {
    fd: OwnedFd,
    stream: LogStream,
}

struct Supervisor {
    dir: PathBuf,
    spec: ContainerSpec,
    status: ShimStatus,
    /// Released byte by byte: after the cgroup join, and at start.
    go: Option<OwnedFd>,
    /// The init's report pipe (until it execs).
    report: Option<File>,
    outputs: Vec<Output>,
    /// Container stdin (pipe write end or a dup of the pty master) and what is queued for it.
    stdin: Option<OwnedFd>,
    stdin_buf: Vec<u8>,
    pty: Option<OwnedFd>,
    listener: UnixListener,
    clients: Vec<Client>,
    log: LogWriter,
    sigfd: SignalFd,
    oom_file: Option<PathBuf>,
    oom_baseline: u64,
    start_error: Option<String>,
    exit: Option<WaitStatus>,
}

fn pipe() -> io::Result<(OwnedFd, OwnedFd)> {
    nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC).map_err(io::Error::from)
}

fn set_nonblocking(fd: &OwnedFd) {
    use nix::fcntl::{FcntlArg, OFlag, fcntl};
    if let Ok(flags) = fcntl(fd, FcntlArg::F_GETFL) {
        let _ = fcntl(fd, FcntlArg::F_SETFL(OFlag::from_bits_truncate(flags) | OFlag::O_NONBLOCK));
    }
}

impl Supervisor {
    fn create(dir: &Path, spec: ContainerSpec) -> io::Result<Self> {
        let mut mask = SigSet::empty();
        mask.add(Signal::SIGCHLD);
        mask.thread_block()?;
        let sigfd = SignalFd::with_flags(&mask, SfdFlags::SFD_NONBLOCK | SfdFlags::SFD_CLOEXEC)?;

        // The container's stdio: pipes, or a pty the init opens inside the container and
        // sends back over `console` (see [`super::console`]).
        let (child_in, child_out, child_err, mut outputs, mut stdin);
        let mut console = None;
        if spec.process.tty {
            let null = OwnedFd::from(File::options().read(true).write(true).open("/dev/null")?);
            child_in = null.try_clone()?;
            child_out = null.try_clone()?;
            child_err = null;
            console = Some(UnixStream::pair()?);
            stdin = None;
            outputs = vec![];
        } else {
            let (out_r, out_w) = pipe()?;
            let (err_r, err_w) = pipe()?;
            set_nonblocking(&out_r);
            set_nonblocking(&err_r);
            if spec.process.stdin {
                let (in_r, in_w) = pipe()?;
                set_nonblocking(&in_w);
                child_in = in_r;
                stdin = Some(in_w);
            } else {
                child_in = OwnedFd::from(File::open("/dev/null")?);
                stdin = None;
            }
            child_out = out_w;
            child_err = err_w;
            outputs =
                vec![Output { fd: out_r, stream: LogStream::Stdout }, Output { fd: err_r, stream: LogStream::Stderr }];
        }
        let mut pty = None;
        let (go_r, go_w) = pipe()?;
        let (rep_r, rep_w) = pipe()?;
        let log = LogWriter::open(spec.log.path.as_deref(), spec.log.max_size, spec.log.max_files)?;

        // Children from now on are born in the container's PID namespace.
        match &spec.namespaces.pid {
            PidNamespace::New => nix::sched::unshare(CloneFlags::CLONE_NEWPID)?,
            PidNamespace::Join(p) => LinuxSyscall.setns(p, CloneFlags::CLONE_NEWPID)?,
            PidNamespace::Host => {}
        }
        let created_at = now_ns();
        // SAFETY: single-threaded process (see `run`).
        let pid = match unsafe { nix::unistd::fork() }? {
            ForkResult::Child => {
                let console = console.map(|(parent, child)| {
                    drop(parent);
                    child
                });
                drop((go_w, rep_r, outputs, stdin, sigfd));
                init(&spec, child_in, child_out, child_err, go_r, rep_w, console)
            }
            ForkResult::Parent { child } => child,
        };
        drop((child_in, child_out, child_err, go_r, rep_w));
        let mut go = File::from(go_w);
        let mut report = File::from(rep_r);
        let fail = |msg: String| -> io::Error {
            let _ = nix::sys::signal::kill(pid, Signal::SIGKILL);
            let _ = nix::sys::wait::waitpid(pid, None);
            io::Error::other(msg)
        };
        for procs in &spec.cgroup.procs {
            if let Err(e) = fs::write(procs, pid.as_raw().to_string()) {
                return Err(fail(format!("joining cgroup {}: {e}", procs.display())));
            }
        }
        let oom_file = spec.cgroup.oom_events.clone();
        let oom_baseline = oom_file.as_deref().map(cgroups::oom_kill_count).unwrap_or(0);
        if let Err(e) = go.write_all(b"g") {
            return Err(fail(format!("releasing the container init: {e}")));
        }
        let mut byte = [0u8; 1];
        match report.read(&mut byte) {
            Ok(1) if byte[0] == b'R' => {}
            Ok(1) => {
                let mut msg = String::new();
                let _ = report.read_to_string(&mut msg);
                return Err(fail(msg));
            }
            Ok(_) => return Err(fail("container init exited during setup".into())),
            Err(e) => return Err(fail(format!("reading the init's report: {e}"))),
        }
        if let Some((parent, _)) = &console {
            let master = super::console::recv_fd(parent).map_err(|e| fail(format!("receiving the terminal: {e}")))?;
            set_nonblocking(&master);
            if spec.process.stdin {
                stdin = Some(master.try_clone()?);
            }
            pty = Some(master.try_clone()?);
            outputs.push(Output { fd: master, stream: LogStream::Stdout });
        }
        drop(console);

        let sock = dir.join(SOCKET_FILE);
        let _ = fs::remove_file(&sock);
        let listener = UnixListener::bind(&sock).map_err(|e| fail(format!("binding {}: {e}", sock.display())))?;
        listener.set_nonblocking(true)?;
        let me = std::process::id() as i32;
        let status = ShimStatus {
            state: ShimState::Created,
            shim_pid: me,
            shim_start: proc_start_time(me).unwrap_or(0),
            pid: pid.as_raw(),
            pid_start: proc_start_time(pid.as_raw()).unwrap_or(0),
            created_at,
            started_at: 0,
            finished_at: 0,
            exit_code: 0,
            reason: String::new(),
            message: String::new(),
        };
        write_status(dir, &status).map_err(|e| fail(format!("writing status: {e}")))?;
        Ok(Supervisor {
            dir: dir.to_path_buf(),
            spec,
            status,
            go: Some(OwnedFd::from(go)),
            report: Some(report),
            outputs,
            stdin,
            stdin_buf: Vec::new(),
            pty,
            listener,
            clients: Vec::new(),
            log,
            sigfd,
            oom_file,
            oom_baseline,
            start_error: None,
            exit: None,
        })
    }

    /// The event loop; returns the shim's exit code once the container has exited.
    fn run(mut self) -> i32 {
        let mut buf = vec![0u8; 32 * 1024];
        // After the init exits: how long to wait for the output pipes to drain.
        let mut drain_deadline: Option<Instant> = None;
        // Once the loop has been idle for a second after some activity, shed the code pages
        // that activity paged in (see `trim_resident_file_pages`).
        let mut trim_due = true;
        loop {
            if let Some(deadline) = drain_deadline
                && (self.outputs.is_empty() || Instant::now() >= deadline)
            {
                break;
            }
            // fds to poll, with what each index means.
            enum Slot {
                Sig,
                Listener,
                Output(usize),
                Client(usize),
                Stdin,
            }
            let mut slots: Vec<(RawFd, PollFlags, Slot)> = vec![
                (self.sigfd.as_raw_fd(), PollFlags::POLLIN, Slot::Sig),
                (self.listener.as_raw_fd(), PollFlags::POLLIN, Slot::Listener),
            ];
            for (i, o) in self.outputs.iter().enumerate() {
                slots.push((o.fd.as_raw_fd(), PollFlags::POLLIN, Slot::Output(i)));
            }
            for (i, c) in self.clients.iter().enumerate() {
                slots.push((c.stream.as_raw_fd(), PollFlags::POLLIN, Slot::Client(i)));
            }
            if let Some(fd) = &self.stdin
                && !self.stdin_buf.is_empty()
            {
                slots.push((fd.as_raw_fd(), PollFlags::POLLOUT, Slot::Stdin));
            }
            let ready: Vec<(usize, PollFlags)> = {
                // SAFETY: every raw fd in `slots` is owned by `self` and stays open while the
                // borrowed fds live (this block).
                let mut fds: Vec<PollFd> = slots
                    .iter()
                    .map(|(fd, ev, _)| PollFd::new(unsafe { std::os::fd::BorrowedFd::borrow_raw(*fd) }, *ev))
                    .collect();
                let timeout = if drain_deadline.is_some() {
                    PollTimeout::from(50u16)
                } else if trim_due {
                    PollTimeout::from(1000u16)
                } else {
                    PollTimeout::NONE
                };
                match nix::poll::poll(&mut fds, timeout) {
                    Ok(_) => {}
                    Err(nix::errno::Errno::EINTR) => continue,
                    Err(e) => {
                        eprintln!("shim: poll: {e}");
                        std::thread::sleep(Duration::from_millis(100));
                        continue;
                    }
                }
                fds.iter()
                    .enumerate()
                    .filter_map(|(i, f)| f.revents().filter(|r| !r.is_empty()).map(|r| (i, r)))
                    .collect()
            };
            if ready.is_empty() {
                if trim_due && drain_deadline.is_none() {
                    trim_resident_file_pages();
                    trim_due = false;
                }
                continue;
            }
            trim_due = true;
            let mut dead_outputs = Vec::new();
            let mut dead_clients = Vec::new();
            for (i, _rev) in ready {
                match slots[i].2 {
                    Slot::Sig => {
                        if self.on_sigchld() && drain_deadline.is_none() {
                            drain_deadline = Some(Instant::now() + Duration::from_secs(2));
                        }
                    }
                    Slot::Listener => self.accept(),
                    Slot::Output(o) => {
                        if !self.read_output(o, &mut buf) {
                            dead_outputs.push(o);
                        }
                    }
                    Slot::Client(c) => {
                        if !self.read_client(c, &mut buf) {
                            dead_clients.push(c);
                        }
                    }
                    Slot::Stdin => self.flush_stdin(),
                }
            }
            dead_outputs.sort_unstable();
            for o in dead_outputs.into_iter().rev() {
                let out = self.outputs.remove(o);
                let _ = self.log.close_stream(out.stream);
            }
            dead_clients.sort_unstable();
            dead_clients.dedup();
            for c in dead_clients.into_iter().rev() {
                let client = self.clients.remove(c);
                self.client_gone(client);
            }
        }
        self.finish();
        0
    }

    fn accept(&mut self) {
        while let Ok((stream, _)) = self.listener.accept() {
            let _ = stream.set_nonblocking(true);
            self.clients.push(Client { stream, buf: Vec::new(), mode: ClientMode::Command });
        }
    }

    /// Returns false at EOF.
    fn read_output(&mut self, i: usize, buf: &mut [u8]) -> bool {
        let stream = self.outputs[i].stream;
        match nix::unistd::read(&self.outputs[i].fd, buf) {
            Ok(0) => false,
            Ok(n) => {
                let data = &buf[..n];
                let _ = self.log.write(stream, data);
                let kind = match stream {
                    LogStream::Stdout => frame::STDOUT,
                    LogStream::Stderr => frame::STDERR,
                };
                let msg = frame::encode(kind, data);
                let mut dead = Vec::new();
                for (ci, c) in self.clients.iter_mut().enumerate() {
                    let wanted = match c.mode {
                        ClientMode::Attach { stdout, stderr, .. } => {
                            (kind == frame::STDOUT && stdout) || (kind == frame::STDERR && stderr)
                        }
                        _ => false,
                    };
                    if wanted && send_blocking(&mut c.stream, &msg).is_err() {
                        dead.push(ci);
                    }
                }
                for ci in dead.into_iter().rev() {
                    let client = self.clients.remove(ci);
                    self.client_gone(client);
                }
                true
            }
            Err(nix::errno::Errno::EAGAIN) | Err(nix::errno::Errno::EINTR) => true,
            // EIO: the pty's last slave fd closed.
            Err(_) => false,
        }
    }

    /// Returns false when the client is done.
    fn read_client(&mut self, i: usize, buf: &mut [u8]) -> bool {
        let n = match self.clients[i].stream.read(buf) {
            Ok(0) => return false,
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => return true,
            Err(_) => return false,
        };
        self.clients[i].buf.extend_from_slice(&buf[..n]);
        loop {
            match self.clients[i].mode {
                ClientMode::Command => {
                    let Some(nl) = self.clients[i].buf.iter().position(|b| *b == b'\n') else {
                        return self.clients[i].buf.len() < 4096;
                    };
                    let line: Vec<u8> = self.clients[i].buf.drain(..=nl).collect();
                    let line = String::from_utf8_lossy(&line).trim().to_string();
                    if !self.command(i, &line) {
                        return false;
                    }
                }
                ClientMode::Wait => {
                    self.clients[i].buf.clear();
                    return true;
                }
                ClientMode::Attach { stdin, .. } => {
                    let Some((kind, payload)) = frame::decode(&mut self.clients[i].buf) else {
                        return true;
                    };
                    match kind {
                        frame::STDIN if stdin => self.queue_stdin(&payload),
                        frame::CLOSE_STDIN if stdin => self.close_stdin_once(),
                        frame::RESIZE if payload.len() == 4 => {
                            let w = u16::from_be_bytes([payload[0], payload[1]]);
                            let h = u16::from_be_bytes([payload[2], payload[3]]);
                            self.resize(w, h);
                        }
                        _ => {}
                    }
                }
            }
        }
    }

    /// Handle one command line; false closes the connection.
    fn command(&mut self, i: usize, line: &str) -> bool {
        let mut words = line.split_whitespace();
        let reply = |c: &mut Client, s: &str| {
            let _ = send_blocking(&mut c.stream, format!("{s}\n").as_bytes());
        };
        match words.next() {
            Some("start") => {
                let r = self.start();
                let c = &mut self.clients[i];
                match r {
                    Ok(()) => {
                        reply(c, "ok");
                    }
                    Err(e) => reply(c, &format!("error {}", e.replace('\n', " "))),
                }
                false
            }
            Some("kill") => {
                let sig = words.next().and_then(|s| s.parse::<i32>().ok()).unwrap_or(libc::SIGKILL);
                let r = match Signal::try_from(sig) {
                    Ok(sig) if self.exit.is_none() => {
                        nix::sys::signal::kill(Pid::from_raw(self.status.pid), sig).map_err(|e| e.to_string())
                    }
                    Ok(_) => Ok(()),
                    Err(e) => Err(e.to_string()),
                };
                let c = &mut self.clients[i];
                match r {
                    Ok(()) => reply(c, "ok"),
                    Err(e) => reply(c, &format!("error {e}")),
                }
                false
            }
            Some("wait") => {
                self.clients[i].mode = ClientMode::Wait;
                true
            }
            Some("attach") => {
                let flag = |w: Option<&str>| w == Some("1");
                let (stdin, stdout, stderr) = (flag(words.next()), flag(words.next()), flag(words.next()));
                if stdin && self.stdin.is_none() {
                    reply(&mut self.clients[i], "error the container's stdin is not open");
                    return false;
                }
                let c = &mut self.clients[i];
                reply(c, "ok");
                c.mode = ClientMode::Attach { stdin, stdout, stderr };
                true
            }
            _ => {
                reply(&mut self.clients[i], "error unknown command");
                false
            }
        }
    }

    fn start(&mut self) -> Result<(), String> {
        if self.status.state != ShimState::Created {
            return Err(format!("container is {:?}, not created", self.status.state));
        }
        let (Some(go), Some(mut report)) = (self.go.take(), self.report.take()) else {
            return Err("container cannot be started".into());
        };
        let mut go = File::from(go);
        go.write_all(b"s").map_err(|e| format!("starting: {e}"))?;
        drop(go);
        let mut msg = Vec::new();
        let _ = report.read_to_end(&mut msg);
        if msg.is_empty() {
            self.status.state = ShimState::Running;
            self.status.started_at = now_ns();
            let _ = write_status(&self.dir, &self.status);
            Ok(())
        } else {
            let text = String::from_utf8_lossy(msg.strip_prefix(b"E").unwrap_or(&msg)).into_owned();
            self.start_error = Some(text.clone());
            self.status.started_at = now_ns();
            Err(text)
        }
    }

    fn queue_stdin(&mut self, data: &[u8]) {
        if self.stdin.is_none() || self.stdin_buf.len() > (1 << 20) {
            return;
        }
        self.stdin_buf.extend_from_slice(data);
        self.flush_stdin();
    }

    fn flush_stdin(&mut self) {
        let Some(fd) = &self.stdin else {
            self.stdin_buf.clear();
            return;
        };
        while !self.stdin_buf.is_empty() {
            match nix::unistd::write(fd, &self.stdin_buf) {
                Ok(n) => {
                    self.stdin_buf.drain(..n);
                }
                Err(nix::errno::Errno::EINTR) => {}
                Err(nix::errno::Errno::EAGAIN) => return,
                Err(_) => {
                    self.stdin_buf.clear();
                    self.stdin = None;
                    return;
                }
            }
        }
    }

    /// A client holding stdin closed it: with `stdinOnce`, the container's stdin closes too.
    fn close_stdin_once(&mut self) {
        if self.spec.process.stdin_once {
            self.flush_stdin();
            if self.spec.process.tty {
                // EOF on a terminal is ^D.
                self.stdin_buf.push(4);
                self.flush_stdin();
            } else {
                self.stdin = None;
            }
        }
    }

    fn client_gone(&mut self, client: Client) {
        if let ClientMode::Attach { stdin: true, .. } = client.mode {
            self.close_stdin_once();
        }
    }

    fn resize(&mut self, width: u16, height: u16) {
        if let Some(pty) = &self.pty {
            let ws = libc::winsize { ws_row: height, ws_col: width, ws_xpixel: 0, ws_ypixel: 0 };
            // SAFETY: TIOCSWINSZ reads one `winsize` that lives across the call; `pty` is open.
            unsafe { libc::ioctl(pty.as_raw_fd(), libc::TIOCSWINSZ, &ws as *const libc::winsize) };
        }
    }

    /// Reap children; true once the container init has exited.
    fn on_sigchld(&mut self) -> bool {
        while let Ok(Some(_)) = self.sigfd.read_signal() {}
        loop {
            match nix::sys::wait::waitpid(Pid::from_raw(-1), Some(WaitPidFlag::WNOHANG)) {
                Ok(WaitStatus::StillAlive) | Err(_) => break,
                Ok(ws) => {
                    if ws.pid() == Some(Pid::from_raw(self.status.pid)) {
                        self.exit = Some(ws);
                        self.status.finished_at = now_ns();
                    }
                }
            }
        }
        self.exit.is_some()
    }

    /// Record the exit, tell everyone, remove the socket.
    fn finish(mut self) {
        for o in std::mem::take(&mut self.outputs) {
            let _ = self.log.close_stream(o.stream);
        }
        let (mut code, signaled) = match self.exit {
            Some(WaitStatus::Exited(_, c)) => (c, None),
            Some(WaitStatus::Signaled(_, s, _)) => (128 + s as i32, Some(s)),
            _ => (255, None),
        };
        let oom = self.oom_file.as_deref().is_some_and(|f| cgroups::oom_kill_count(f) > self.oom_baseline);
        let (reason, message) = if let Some(err) = self.start_error.take() {
            code = 128;
            ("StartError".to_string(), err)
        } else if oom && (signaled == Some(Signal::SIGKILL) || code == 137) {
            ("OOMKilled".to_string(), String::new())
        } else if code == 0 {
            ("Completed".to_string(), String::new())
        } else {
            ("Error".to_string(), String::new())
        };
        self.status.state = ShimState::Exited;
        self.status.exit_code = code;
        self.status.reason = reason;
        self.status.message = message;
        if self.status.finished_at == 0 {
            self.status.finished_at = now_ns();
        }
        if let Err(e) = write_status(&self.dir, &self.status) {
            eprintln!("shim: writing exit status: {e}");
        }
        let _ = fs::remove_file(self.dir.join(SOCKET_FILE));
        let exit_frame = frame::encode(frame::EXIT, &code.to_be_bytes());
        for mut c in std::mem::take(&mut self.clients) {
            match c.mode {
                ClientMode::Wait => {
                    let _ = send_blocking(&mut c.stream, format!("exited {code}\n").as_bytes());
                }
                ClientMode::Attach { .. } => {
                    let _ = send_blocking(&mut c.stream, &exit_frame);
                }
                ClientMode::Command => {}
            }
        }
    }
}

/// Write all of `data` to a (possibly non-blocking) stream, waiting up to 5 s in total.
fn send_blocking(stream: &mut UnixStream, data: &[u8]) -> io::Result<()> {
    let deadline = Instant::now() + Duration::from_secs(5);
    let mut rest = data;
    while !rest.is_empty() {
        match stream.write(rest) {
            Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
            Ok(n) => rest = &rest[n..],
            Err(e) if e.kind() == io::ErrorKind::WouldBlock || e.kind() == io::ErrorKind::Interrupted => {
                if Instant::now() >= deadline {
                    return Err(io::ErrorKind::TimedOut.into());
                }
                let fd = stream.as_fd();
                let mut p = [PollFd::new(fd, PollFlags::POLLOUT)];
                let _ = nix::poll::poll(&mut p, PollTimeout::from(100u16));
            }
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

/// The container init, in the new process: wait for the cgroup join, join the sandbox's
/// namespaces, set up the rootfs, report ready, wait for start, exec. Never returns.
fn init(
    spec: &ContainerSpec,
    stdin: OwnedFd,
    stdout: OwnedFd,
    stderr: OwnedFd,
    go: OwnedFd,
    report: OwnedFd,
    console: Option<UnixStream>,
) -> ! {
    // Signal state is inherited across exec: give the container a clean one.
    let _ = SigSet::empty().thread_set_mask();
    let _ = nix::sys::signal::sigprocmask(SigmaskHow::SIG_SETMASK, Some(&SigSet::empty()), None);
    // SAFETY: restoring default dispositions installs no handler code.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
    }
    let _ = nix::unistd::dup2_stdin(&stdin);
    let _ = nix::unistd::dup2_stdout(&stdout);
    let _ = nix::unistd::dup2_stderr(&stderr);
    drop((stdin, stdout, stderr));
    let mut go = File::from(go);
    let mut report = File::from(report);
    let mut wait = |what: &str| -> io::Result<()> {
        let mut b = [0u8; 1];
        match go.read(&mut b)? {
            1 => Ok(()),
            _ => Err(io::Error::other(format!("supervisor went away before {what}"))),
        }
    };
    let result = (|| -> io::Result<()> {
        wait("setup")?;
        let sys = LinuxSyscall;
        let ns = &spec.namespaces;
        for (path, flag) in [
            (&ns.ipc, CloneFlags::CLONE_NEWIPC),
            (&ns.uts, CloneFlags::CLONE_NEWUTS),
            (&ns.net, CloneFlags::CLONE_NEWNET),
        ] {
            if let Some(p) = path {
                sys.setns(p, flag)?;
            }
        }
        sys.unshare(CloneFlags::CLONE_NEWNS)?;
        rootfs::setup(&sys, spec)?;
        if let Some(sock) = console {
            let (master, slave) = super::console::open_pty(spec.process.uid)?;
            super::console::send_fd(&sock, &master)?;
            drop(master);
            nix::unistd::dup2_stdin(&slave)?;
            nix::unistd::dup2_stdout(&slave)?;
            nix::unistd::dup2_stderr(&slave)?;
        }
        report.write_all(b"R")?;
        wait("start")?;
        let (e, _) = process::exec(&spec.process);
        Err(e)
    })();
    let msg = match result {
        Err(e) => e.to_string(),
        Ok(()) => "unreachable".to_string(),
    };
    let _ = report.write_all(format!("E{msg}").as_bytes());
    // SAFETY: _exit ends the process without running the shim's atexit handlers or
    // flushing buffers it shares with the parent.
    unsafe { libc::_exit(127) }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_round_trip_and_wait_for_completion() {
        let mut buf = frame::encode(frame::STDOUT, b"hello");
        buf.extend(frame::encode(frame::RESIZE, &[0, 80, 0, 24]));
        let mut partial = buf.split_off(7);
        assert_eq!(frame::decode(&mut buf), None);
        buf.append(&mut partial);
        assert_eq!(frame::decode(&mut buf), Some((frame::STDOUT, b"hello".to_vec())));
        assert_eq!(frame::decode(&mut buf), Some((frame::RESIZE, vec![0, 80, 0, 24])));
        assert!(buf.is_empty());
    }

    #[test]
    fn own_start_time_is_known_and_identifies_us() {
        let me = std::process::id() as i32;
        let t = proc_start_time(me).unwrap();
        assert!(alive(me, t));
        assert!(!alive(me, t + 1));
        assert!(!alive(0, 0));
    }

    #[test]
    fn status_round_trips_atomically() {
        let dir = tempfile::tempdir().unwrap();
        let s = ShimStatus {
            state: ShimState::Exited,
            shim_pid: 1,
            shim_start: 2,
            pid: 3,
            pid_start: 4,
            created_at: 5,
            started_at: 6,
            finished_at: 7,
            exit_code: 137,
            reason: "OOMKilled".into(),
            message: String::new(),
        };
        write_status(dir.path(), &s).unwrap();
        assert_eq!(read_status(dir.path()).unwrap(), s);
        fs::write(dir.path().join(STATUS_FILE), "{").unwrap();
        assert_eq!(read_status(dir.path()).unwrap_err().kind(), io::ErrorKind::InvalidData);
    }
}
