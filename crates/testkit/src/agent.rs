//! A second node for end-to-end tests: `skiff agent` in a network namespace of its own,
//! linked to the host by a veth pair, as another machine on the network would be.

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};

use crate::cluster::skiff_binary;

fn ip(args: &[&str]) -> Result<()> {
    let out = Command::new("ip").args(args).output().context("running ip")?;
    if !out.status.success() {
        bail!("ip {}: {}", args.join(" "), String::from_utf8_lossy(&out.stderr).trim());
    }
    Ok(())
}

/// A network namespace `skt-<id>` with a veth pair to the host: the host side has
/// `10.<a>.<b>.1/30`, the namespace side `.2`. Deleted (with its links) on drop.
pub struct NetNs {
    pub name: String,
    /// The host side's address (what the namespace reaches the host at).
    pub host_ip: String,
    /// The namespace side's address.
    pub ns_ip: String,
}

impl NetNs {
    /// Addresses come from 10.250.0.0/16, picked by the process id and a counter so parallel
    /// test runs don't collide.
    pub fn create() -> Result<NetNs> {
        static NEXT: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
        let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let id = (std::process::id().wrapping_mul(31).wrapping_add(n)) % 16000;
        let name = format!("skt-{id}");
        let (b, c) = (id / 64, (id % 64) * 4);
        let net = NetNs {
            name: name.clone(),
            host_ip: format!("10.250.{b}.{}", c + 1),
            ns_ip: format!("10.250.{b}.{}", c + 2),
        };
        let (host_if, ns_if) = (format!("skth{id}"), format!("sktn{id}"));
        ip(&["netns", "add", &name])?;
        let setup = || -> Result<()> {
            ip(&["link", "add", &host_if, "type", "veth", "peer", "name", &ns_if, "netns", &name])?;
            ip(&["addr", "add", &format!("{}/30", net.host_ip), "dev", &host_if])?;
            ip(&["link", "set", &host_if, "up"])?;
            ip(&["-n", &name, "addr", "add", &format!("{}/30", net.ns_ip), "dev", &ns_if])?;
            ip(&["-n", &name, "link", "set", &ns_if, "up"])?;
            ip(&["-n", &name, "link", "set", "lo", "up"])?;
            Ok(())
        };
        // On failure `net` is dropped, which deletes the namespace (and the veth with it).
        setup()?;
        Ok(net)
    }

    /// The path `nsenter --net=` takes.
    pub fn path(&self) -> PathBuf {
        PathBuf::from("/run/netns").join(&self.name)
    }
}

impl Drop for NetNs {
    fn drop(&mut self) {
        // Deleting the namespace deletes the veth pair (both ends) and whatever links the
        // agent made inside.
        let _ = ip(&["netns", "del", &self.name]);
    }
}

/// A `skiff agent` process running in `netns`, with its own data dir; stopped and reset on
/// drop (containers, mounts, links and cgroups of its data dir).
pub struct Agent {
    child: Option<Child>,
    pub data_dir: tempfile::TempDir,
    pub node_name: String,
    netns: PathBuf,
    log: PathBuf,
}

impl Agent {
    /// Start `skiff agent --server <server> --token <token>` as node `node_name` in `netns`.
    /// Returns once the process runs; `wait_joined` waits for the join to finish.
    pub fn start(netns: &NetNs, server: &str, token: &str, node_name: &str, extra: &[&str]) -> Result<Agent> {
        let data_dir = tempfile::Builder::new().prefix("skiff-agent-").tempdir().context("creating a data dir")?;
        let log = data_dir.path().join("agent.log");
        let out = std::fs::OpenOptions::new().create(true).append(true).open(&log)?;
        let child = Command::new("nsenter")
            .arg(format!("--net={}", netns.path().display()))
            .arg(skiff_binary())
            .args(["agent", "--server", server, "--token", token, "--node-name", node_name, "--kubelet-port", "0"])
            .args(["--node-ip", &netns.ns_ip])
            .arg("--data-dir")
            .arg(data_dir.path())
            .args(extra)
            .env("SKIFF_LOG", "info")
            .stdin(Stdio::null())
            .stdout(out.try_clone()?)
            .stderr(out)
            .spawn()
            .context("starting skiff agent")?;
        Ok(Agent { child: Some(child), data_dir, node_name: node_name.into(), netns: netns.path(), log })
    }

    /// The agent's log so far.
    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Wait until the agent says it joined (or fail with its log if it exits first).
    pub fn wait_joined(&mut self, timeout: Duration) -> Result<()> {
        let deadline = Instant::now() + timeout;
        loop {
            if self.log_text().contains("joined") {
                return Ok(());
            }
            if let Some(status) = self.child.as_mut().map(Child::try_wait).transpose()?.flatten() {
                bail!("skiff agent exited with {status}\n{}", self.log_text());
            }
            if Instant::now() > deadline {
                bail!("skiff agent did not join within {timeout:?}\n{}", self.log_text());
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// Wait for the agent to exit (a refused join); returns its exit code and log.
    pub fn wait_exit(&mut self, timeout: Duration) -> Result<(i32, String)> {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(status) = self.child.as_mut().map(Child::try_wait).transpose()?.flatten() {
                self.child = None;
                return Ok((status.code().unwrap_or(-1), self.log_text()));
            }
            if Instant::now() > deadline {
                bail!("skiff agent still running after {timeout:?}\n{}", self.log_text());
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// Import a `docker save` archive into the agent's image store.
    pub fn import_image(&self, archive: &[u8]) -> Result<()> {
        crate::cluster::import_image(self.data_dir.path(), archive)
    }
}

impl Drop for Agent {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let pid = nix::unistd::Pid::from_raw(child.id() as i32);
            let _ = nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM);
            let deadline = Instant::now() + Duration::from_secs(10);
            while Instant::now() < deadline && !matches!(child.try_wait(), Ok(Some(_))) {
                std::thread::sleep(Duration::from_millis(20));
            }
            let _ = child.kill();
            let _ = child.wait();
        }
        // Links the agent made live in its namespace; reset from there.
        let _ = Command::new("nsenter")
            .arg(format!("--net={}", self.netns.display()))
            .arg(skiff_binary())
            .args(["reset", "--data-dir"])
            .arg(self.data_dir.path())
            .stdout(Stdio::null())
            .status();
    }
}
