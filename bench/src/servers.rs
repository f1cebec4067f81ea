//! Starting, probing and stopping the two servers under test: `skiff server --disable-agent`
//! and a single-member etcd, each on 127.0.0.1 with free ports and a fresh data dir under the
//! run's work dir. Each child's pid is written to `<work>/pids/` so `bench/run.sh` can kill
//! what a crashed run left behind; a [`Server`] dropped without [`Server::stop`] is killed.

use std::net::{Ipv4Addr, SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use http::{Method, StatusCode};
use tokio::process::{Child, Command};

use crate::client::Endpoint;

/// Memory figures of a process, KiB.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct Memory {
    /// Resident set (`VmRSS`): what the goal is about.
    pub rss: u64,
    /// Peak resident set (`VmHWM`).
    pub hwm: u64,
    /// Resident anonymous memory (`RssAnon`): the heap.
    pub anon: u64,
    /// Resident file-backed pages (`RssFile`): the binary, and for etcd its mmapped bbolt
    /// database, which the kernel can drop and re-read.
    pub file: u64,
}

impl Memory {
    fn parse(status: &str) -> Result<Memory> {
        let field = |name: &str| -> Result<u64> {
            let line = status.lines().find(|l| l.starts_with(name)).with_context(|| format!("no {name}"))?;
            let n = line[name.len()..].trim().trim_end_matches("kB").trim();
            Ok(n.parse()?)
        };
        Ok(Memory { rss: field("VmRSS:")?, hwm: field("VmHWM:")?, anon: field("RssAnon:")?, file: field("RssFile:")? })
    }
}

/// Which server a [`Server`] runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Kind {
    Skiff,
    Etcd,
}

impl Kind {
    pub(crate) fn name(self) -> &'static str {
        match self {
            Kind::Skiff => "skiff",
            Kind::Etcd => "etcd",
        }
    }
}

/// Binaries and the directory everything of this run lives under.
#[derive(Clone, Debug)]
pub(crate) struct Env {
    pub skiff_bin: PathBuf,
    pub etcd_bin: PathBuf,
    pub work: PathBuf,
}

/// A running server.
pub(crate) struct Server {
    pub kind: Kind,
    child: Child,
    pid: u32,
    pid_file: PathBuf,
    /// Its own directory (data dir and log); removed by [`Server::stop`].
    dir: PathBuf,
    pub endpoint: Endpoint,
    /// Spawn to the first successful readiness probe (`/readyz` → `ok`, etcd `/health` →
    /// `{"health":"true"}`).
    pub start_to_ready: Duration,
}

fn free_port() -> Result<u16> {
    let l = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).context("finding a free port")?;
    Ok(l.local_addr()?.port())
}

/// How often readiness is polled: fine enough for a 0.5 s goal, cheap for the server.
const POLL: Duration = Duration::from_millis(2);
/// Give up on a server that is not ready after this long.
const READY_TIMEOUT: Duration = Duration::from_secs(60);

impl Server {
    /// Starts `kind` in a fresh directory `<work>/<name>` and waits until it is ready.
    pub(crate) async fn start(env: &Env, kind: Kind, name: &str) -> Result<Server> {
        // The control-plane measurements are of the API server and its store: no controller
        // or scheduler reacts to the objects they create.
        Self::start_with(env, kind, name, &["--disable-controller-manager", "--disable-scheduler"]).await
    }

    /// [`Server::start`] with extra `skiff server` flags (ignored for etcd).
    pub(crate) async fn start_with(env: &Env, kind: Kind, name: &str, extra: &[&str]) -> Result<Server> {
        let dir = env.work.join(name);
        if dir.exists() {
            bail!("{} already exists", dir.display());
        }
        std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
        let log = std::fs::File::create(dir.join("server.log"))?;
        let port = free_port()?;
        let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, port));
        let data = dir.join("data");
        let mut cmd = match kind {
            Kind::Skiff => {
                let mut c = Command::new(&env.skiff_bin);
                c.arg("server")
                    .arg("--disable-agent")
                    .args(["--bind-address", "127.0.0.1"])
                    .arg("--data-dir")
                    .arg(&data)
                    .args(["--https-listen-port", &port.to_string()])
                    .arg("--write-kubeconfig")
                    .arg(dir.join("kubeconfig.yaml"))
                    .args(extra)
                    .env("SKIFF_LOG", "warn");
                c
            }
            Kind::Etcd => {
                let peer = free_port()?;
                let client_url = format!("http://127.0.0.1:{port}");
                let peer_url = format!("http://127.0.0.1:{peer}");
                let mut c = Command::new(&env.etcd_bin);
                c.args(["--name", "bench"])
                    .arg("--data-dir")
                    .arg(&data)
                    .args(["--listen-client-urls", &client_url, "--advertise-client-urls", &client_url])
                    .args(["--listen-peer-urls", &peer_url, "--initial-advertise-peer-urls", &peer_url])
                    .args(["--initial-cluster", &format!("bench={peer_url}")])
                    .args(["--log-level", "warn", "--logger", "zap"]);
                c
            }
        };
        cmd.stdin(Stdio::null()).stdout(log.try_clone()?).stderr(log).kill_on_drop(true);
        let spawned = Instant::now();
        let child = cmd.spawn().with_context(|| format!("starting {}", kind.name()))?;
        let pid = child.id().context("the child exited at once")?;
        let pids = env.work.join("pids");
        std::fs::create_dir_all(&pids)?;
        let pid_file = pids.join(format!("{name}.pid"));
        std::fs::write(&pid_file, pid.to_string())?;
        let mut server = Server {
            kind,
            child,
            pid,
            pid_file,
            dir,
            endpoint: Endpoint::plain(addr)?,
            start_to_ready: Duration::ZERO,
        };
        let endpoint = server.wait_ready(addr, &data, spawned).await?;
        server.start_to_ready = spawned.elapsed();
        server.endpoint = endpoint;
        Ok(server)
    }

    /// Polls readiness; returns the endpoint to use from now on.
    async fn wait_ready(&mut self, addr: SocketAddr, data: &Path, spawned: Instant) -> Result<Endpoint> {
        let mut endpoint = match self.kind {
            Kind::Etcd => Some(Endpoint::plain(addr)?),
            // Skiff's certificates appear only once it has started; a half-written file just
            // fails to parse and is retried.
            Kind::Skiff => None,
        };
        let tls = data.join("tls");
        loop {
            if spawned.elapsed() > READY_TIMEOUT {
                bail!("{} not ready after {READY_TIMEOUT:?}; see {}", self.kind.name(), self.log().display());
            }
            if let Some(status) = self.child.try_wait()? {
                bail!("{} exited during start-up ({status}); see {}", self.kind.name(), self.log().display());
            }
            if endpoint.is_none() {
                endpoint =
                    Endpoint::tls(addr, &tls.join("ca.crt"), &tls.join("admin.crt"), &tls.join("admin.key")).ok();
            }
            if let Some(ep) = &endpoint
                && self.probe(ep).await
            {
                return Ok(ep.clone());
            }
            tokio::time::sleep(POLL).await;
        }
    }

    /// One readiness probe on a new connection (as a load balancer would).
    async fn probe(&self, ep: &Endpoint) -> bool {
        let Ok(mut conn) = ep.connect().await else { return false };
        let path = match self.kind {
            Kind::Skiff => "/readyz",
            Kind::Etcd => "/health",
        };
        match conn.call(Method::GET, path, None).await {
            Ok((StatusCode::OK, body)) => match self.kind {
                Kind::Skiff => body.as_ref() == b"ok",
                Kind::Etcd => serde_json::from_slice::<serde_json::Value>(&body)
                    .is_ok_and(|v| v.get("health").and_then(|h| h.as_str()) == Some("true")),
            },
            _ => false,
        }
    }

    fn log(&self) -> PathBuf {
        self.dir.join("server.log")
    }

    /// The server's memory now, from `/proc/<pid>/status`.
    pub(crate) fn memory(&self) -> Result<Memory> {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.pid))?;
        Memory::parse(&status)
    }

    /// CPU time (user + system) the server has used so far.
    pub(crate) fn cpu_time(&self) -> Result<Duration> {
        let stat = std::fs::read_to_string(format!("/proc/{}/stat", self.pid))?;
        // Fields after the parenthesised command name, which may contain spaces.
        let rest = stat.rsplit_once(')').context("malformed /proc stat")?.1;
        let f: Vec<&str> = rest.split_whitespace().collect();
        // utime and stime are fields 14 and 15 of the whole line; 12 and 13 after the name.
        let ticks: u64 =
            f.get(11).context("no utime")?.parse::<u64>()? + f.get(12).context("no stime")?.parse::<u64>()?;
        // /proc reports in USER_HZ, which Linux fixes at 100 on every architecture we run on.
        Ok(Duration::from_millis(ticks * 10))
    }

    /// Bytes the server's data dir takes on disk.
    pub(crate) fn data_bytes(&self) -> u64 {
        fn walk(p: &Path) -> u64 {
            let Ok(rd) = std::fs::read_dir(p) else { return 0 };
            rd.flatten()
                .map(|e| match e.file_type() {
                    Ok(t) if t.is_dir() => walk(&e.path()),
                    _ => e.metadata().map(|m| m.len()).unwrap_or(0),
                })
                .sum()
        }
        walk(&self.dir.join("data"))
    }

    /// Stops the server (SIGTERM, then SIGKILL after 10 s) and removes its directory.
    pub(crate) async fn stop(mut self) -> Result<()> {
        use nix::sys::signal::{Signal, kill};
        use nix::unistd::Pid;
        let pid = Pid::from_raw(i32::try_from(self.pid)?);
        if self.child.try_wait()?.is_none() {
            let _ = kill(pid, Signal::SIGTERM);
            if tokio::time::timeout(Duration::from_secs(10), self.child.wait()).await.is_err() {
                eprintln!("{} did not stop on SIGTERM within 10 s; killing it", self.kind.name());
                self.child.kill().await?;
            }
        }
        let _ = std::fs::remove_file(&self.pid_file);
        std::fs::remove_dir_all(&self.dir).with_context(|| format!("removing {}", self.dir.display()))?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn memory_from_proc_status() {
        let status =
            "Name:\tskiff\nVmHWM:\t   30000 kB\nVmRSS:\t   28000 kB\nRssAnon:\t   20000 kB\nRssFile:\t    8000 kB\n";
        let m = Memory::parse(status).unwrap();
        assert_eq!((m.rss, m.hwm, m.anon, m.file), (28000, 30000, 20000, 8000));
        assert!(Memory::parse("VmRSS:\t1 kB\n").is_err());
        assert!(Memory::parse("VmRSS:\tmany kB\nVmHWM: 1 kB\nRssAnon: 1 kB\nRssFile: 1 kB").is_err());
    }
}
