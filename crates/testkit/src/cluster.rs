//! A real `skiff server` process for end-to-end tests.

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};

/// The kubectl every test uses: the 1.32 binary (the machine's `kubectl` is a dispatcher that
/// would pick a version from the server's).
pub fn kubectl_binary() -> PathBuf {
    if let Ok(p) = std::env::var("SKIFF_TEST_KUBECTL") {
        return PathBuf::from(p);
    }
    PathBuf::from("/usr/lib/google-cloud-sdk/bin/kubectl.1.32")
}

/// The `skiff` binary under test: `$SKIFF_BIN`, or the one cargo built next to the test binary.
pub fn skiff_binary() -> PathBuf {
    if let Ok(p) = std::env::var("SKIFF_BIN") {
        return PathBuf::from(p);
    }
    // target/<profile>/deps/<test-binary> → target/<profile>/skiff
    let exe = std::env::current_exe().unwrap_or_default();
    let profile_dir = exe.parent().and_then(Path::parent).map(Path::to_path_buf).unwrap_or_default();
    profile_dir.join("skiff")
}

fn free_port() -> Result<u16> {
    let l = TcpListener::bind("127.0.0.1:0").context("finding a free port")?;
    Ok(l.local_addr()?.port())
}

/// What a kubectl run produced.
#[derive(Debug)]
pub struct KubectlOutput {
    pub status: i32,
    pub stdout: String,
    pub stderr: String,
}

impl KubectlOutput {
    /// Panics with both streams unless kubectl succeeded.
    #[track_caller]
    pub fn ok(self) -> String {
        assert_eq!(self.status, 0, "kubectl failed\nstdout:\n{}\nstderr:\n{}", self.stdout, self.stderr);
        self.stdout
    }

    /// Panics unless kubectl failed; returns stderr.
    #[track_caller]
    pub fn fails(self) -> String {
        assert_ne!(self.status, 0, "kubectl unexpectedly succeeded\nstdout:\n{}", self.stdout);
        self.stderr
    }
}

/// Import a `docker save` archive into the image store of the node with data dir `data_dir`.
pub fn import_image(data_dir: &Path, archive: &[u8]) -> Result<()> {
    let path = data_dir.join("import.tar");
    std::fs::write(&path, archive)?;
    let out = Command::new(skiff_binary())
        .args(["image", "--data-dir"])
        .arg(data_dir)
        .arg("import")
        .arg(&path)
        .output()
        .context("running skiff image import")?;
    let _ = std::fs::remove_file(&path);
    if !out.status.success() {
        bail!("skiff image import: {}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    }
    Ok(())
}

/// A running `skiff server`, stopped and cleaned up on drop.
pub struct Cluster {
    child: Option<Child>,
    pub data_dir: tempfile::TempDir,
    pub port: u16,
    pub kubeconfig: PathBuf,
    log: PathBuf,
    extra_args: Vec<String>,
    env: Vec<(String, String)>,
    /// When false, no `--write-kubeconfig` is passed: the server merges into
    /// `$KUBECONFIG`/`~/.kube/config` (tests set HOME) and `kubeconfig` is where it went.
    write_kubeconfig: bool,
    /// Runs the node agent (not `--disable-agent`): host state to reset on drop.
    agent: bool,
    /// `--bind-address` (127.0.0.1 unless agents in network namespaces must reach it).
    bind_address: String,
}

impl Cluster {
    /// Start a server with `--disable-agent` on a free port.
    pub fn start() -> Result<Cluster> {
        Self::start_with(&[])
    }

    pub fn start_with(extra: &[&str]) -> Result<Cluster> {
        Self::start_full(extra, &[], true)
    }

    /// Start with extra flags and environment; `write_kubeconfig: false` leaves the kubeconfig
    /// to the server's default (a merge into `$KUBECONFIG` or `$HOME/.kube/config`, which the
    /// caller should point at a temporary place through `env`).
    pub fn start_full(extra: &[&str], env: &[(&str, &str)], write_kubeconfig: bool) -> Result<Cluster> {
        let bin = skiff_binary();
        if !bin.exists() {
            bail!("{} not found: build it first (cargo build -p skiff) or set SKIFF_BIN", bin.display());
        }
        let data_dir = tempfile::Builder::new().prefix("skiff-test-").tempdir().context("creating a data dir")?;
        let kubeconfig = if write_kubeconfig {
            data_dir.path().join("admin.kubeconfig")
        } else {
            match env.iter().find(|(k, v)| *k == "KUBECONFIG" && !v.is_empty()) {
                Some((_, v)) => PathBuf::from(v.split(':').next().unwrap_or(v)),
                None => {
                    let home = env.iter().find(|(k, _)| *k == "HOME").map(|(_, v)| v.to_string()).unwrap_or_default();
                    PathBuf::from(home).join(".kube").join("config")
                }
            }
        };
        let log = data_dir.path().join("server.log");
        let mut c = Cluster {
            child: None,
            port: 0,
            kubeconfig,
            log,
            data_dir,
            extra_args: extra.iter().map(|s| s.to_string()).collect(),
            env: env.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect(),
            write_kubeconfig,
            agent: false,
            bind_address: "127.0.0.1".into(),
        };
        c.spawn()?;
        Ok(c)
    }

    /// Start a whole one-node cluster: the node agent runs (real containers), with a pod
    /// /24 of its own so clusters of parallel tests never share a subnet. `skiff reset` runs
    /// on drop, so no container, mount, link or cgroup outlives the test.
    pub fn start_node(extra: &[&str]) -> Result<Cluster> {
        static NEXT: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
        let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let third = (std::process::id().wrapping_mul(7).wrapping_add(n) % 200) + 40;
        Self::start_node_at("127.0.0.1", &format!("10.42.{third}.0/24"), extra)
    }

    /// A Service range of its own for a test cluster that runs nodes: their service proxies
    /// share the host's netfilter, so two clusters must never hand out the same ClusterIP.
    fn service_cidr_for(cluster_cidr: &str) -> String {
        let third = cluster_cidr.split('.').nth(2).unwrap_or("0");
        let second = cluster_cidr.split('.').nth(1).unwrap_or("42");
        format!("10.{}.{third}.0/24", 180 + second.parse::<u32>().unwrap_or(0) % 60)
    }

    /// [`Cluster::start_node`] listening on `bind_address` (an address agents in other network
    /// namespaces reach), handing nodes podCIDRs from `cluster_cidr`; its Service range is
    /// [`Cluster::service_cidr`].
    pub fn start_node_at(bind_address: &str, cluster_cidr: &str, extra: &[&str]) -> Result<Cluster> {
        let service_cidr = Self::service_cidr_for(cluster_cidr);
        let mut args: Vec<&str> =
            vec!["--cluster-cidr", cluster_cidr, "--service-cidr", &service_cidr, "--kubelet-port", "0"];
        args.extend_from_slice(extra);
        let mut c = Cluster {
            child: None,
            port: 0,
            kubeconfig: PathBuf::new(),
            log: PathBuf::new(),
            data_dir: tempfile::Builder::new().prefix("skiff-node-").tempdir().context("creating a data dir")?,
            extra_args: args.iter().map(|s| s.to_string()).collect(),
            env: Vec::new(),
            write_kubeconfig: true,
            agent: true,
            bind_address: bind_address.into(),
        };
        c.kubeconfig = c.data_dir.path().join("admin.kubeconfig");
        c.log = c.data_dir.path().join("server.log");
        c.spawn()?;
        Ok(c)
    }

    /// Import a `docker save` archive into this cluster's node image store.
    pub fn import_image(&self, archive: &[u8]) -> Result<()> {
        import_image(self.data_dir.path(), archive)
    }

    fn spawn(&mut self) -> Result<()> {
        // A port can be taken between finding and binding it; retry a few times.
        let mut last = None;
        for _ in 0..5 {
            let port = if self.port == 0 { free_port()? } else { self.port };
            let log = std::fs::OpenOptions::new().create(true).append(true).open(&self.log)?;
            let mut cmd = Command::new(skiff_binary());
            cmd.arg("server");
            if !self.agent {
                cmd.arg("--disable-agent");
            }
            cmd.args(["--bind-address", &self.bind_address])
                .arg("--data-dir")
                .arg(self.data_dir.path())
                .arg("--https-listen-port")
                .arg(port.to_string());
            if self.write_kubeconfig {
                cmd.arg("--write-kubeconfig").arg(&self.kubeconfig);
            }
            let child = cmd
                .args(&self.extra_args)
                .envs(self.env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
                .env("SKIFF_LOG", std::env::var("SKIFF_TEST_LOG").unwrap_or("info".into()))
                .stdin(Stdio::null())
                .stdout(log.try_clone()?)
                .stderr(log)
                .spawn()
                .context("starting skiff server")?;
            self.child = Some(child);
            self.port = port;
            match self.wait_ready(Duration::from_secs(30)) {
                Ok(()) => return Ok(()),
                Err(e) => {
                    self.kill();
                    last = Some(e);
                    if !self.log_text().contains("Address already in use") {
                        break;
                    }
                    self.port = 0;
                }
            }
        }
        Err(last.unwrap_or_else(|| anyhow::anyhow!("server did not start")))
    }

    /// The server's log so far.
    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    fn wait_ready(&mut self, timeout: Duration) -> Result<()> {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(child) = self.child.as_mut()
                && let Some(status) = child.try_wait()?
            {
                bail!("skiff server exited with {status}\n{}", self.log_text());
            }
            if self.kubeconfig.exists() {
                let out = self.kubectl(&["get", "--raw", "/readyz"]);
                if out.status == 0 && out.stdout.trim() == "ok" {
                    return Ok(());
                }
            }
            if Instant::now() > deadline {
                bail!("skiff server not ready after {timeout:?}\n{}", self.log_text());
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Run kubectl 1.32 against this cluster.
    pub fn kubectl(&self, args: &[&str]) -> KubectlOutput {
        self.kubectl_stdin(args, None)
    }

    /// Run kubectl with `stdin` as its standard input.
    /// Run kubectl until `accept` takes its output (30 s at most, then panic with `what`).
    #[track_caller]
    pub fn kubectl_until(&self, args: &[&str], what: &str, accept: impl Fn(&str) -> bool) -> String {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
        loop {
            let out = self.kubectl(args).ok();
            if accept(&out) {
                return out;
            }
            assert!(std::time::Instant::now() < deadline, "timed out waiting for {what}; last output:\n{out}");
            std::thread::sleep(std::time::Duration::from_millis(100));
        }
    }

    pub fn kubectl_stdin(&self, args: &[&str], stdin: Option<&str>) -> KubectlOutput {
        self.run_kubectl(args, stdin, &[])
    }

    /// Run kubectl with extra environment variables (e.g. `KUBE_EDITOR`).
    pub fn kubectl_env(&self, args: &[&str], env: &[(&str, &str)]) -> KubectlOutput {
        self.run_kubectl(args, None, env)
    }

    fn run_kubectl(&self, args: &[&str], stdin: Option<&str>, env: &[(&str, &str)]) -> KubectlOutput {
        use std::io::Write;
        let mut cmd = Command::new(kubectl_binary());
        cmd.args(args)
            .envs(env.iter().copied())
            .env("KUBECONFIG", &self.kubeconfig)
            .env("KUBECTL_EXTERNAL_DIFF", "diff -u")
            .stdin(if stdin.is_some() { Stdio::piped() } else { Stdio::null() })
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = match cmd.spawn() {
            Ok(c) => c,
            Err(e) => {
                return KubectlOutput { status: -1, stdout: String::new(), stderr: format!("cannot run kubectl: {e}") };
            }
        };
        if let (Some(input), Some(mut pipe)) = (stdin, child.stdin.take()) {
            let _ = pipe.write_all(input.as_bytes());
        }
        match child.wait_with_output() {
            Ok(o) => KubectlOutput {
                status: o.status.code().unwrap_or(-1),
                stdout: String::from_utf8_lossy(&o.stdout).into_owned(),
                stderr: String::from_utf8_lossy(&o.stderr).into_owned(),
            },
            Err(e) => KubectlOutput { status: -1, stdout: String::new(), stderr: e.to_string() },
        }
    }

    /// Start a kubectl that keeps running (e.g. `get -w`); the caller kills it.
    pub fn kubectl_spawn(&self, args: &[&str]) -> Result<Child> {
        Command::new(kubectl_binary())
            .args(args)
            .env("KUBECONFIG", &self.kubeconfig)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .context("starting kubectl")
    }

    /// `kubectl port-forward <target> :<port>`, then an HTTP/1.0 GET of `path` through the
    /// forwarded port; returns the raw response (headers and body).
    pub fn get_through_port_forward(&self, target: &str, port: u16, path: &str) -> Result<String> {
        use std::io::{BufRead, BufReader, Read, Write};
        let mut pf = self.kubectl_spawn(&["port-forward", target, &format!(":{port}")])?;
        let mut first = String::new();
        let mut out = BufReader::new(pf.stdout.take().context("kubectl's stdout")?);
        out.read_line(&mut first)?;
        // Keep reading: kubectl reports each connection there and dies if the pipe closes.
        std::thread::spawn(move || std::io::copy(&mut out, &mut std::io::sink()));
        // "Forwarding from 127.0.0.1:NNNNN -> 8080"
        let local: u16 = first
            .split("127.0.0.1:")
            .nth(1)
            .and_then(|r| r.split(' ').next())
            .and_then(|p| p.parse().ok())
            .with_context(|| format!("kubectl port-forward said {first:?}"))?;
        let result = (|| -> Result<String> {
            let mut s = std::net::TcpStream::connect(("127.0.0.1", local))?;
            s.write_all(format!("GET {path} HTTP/1.0\r\n\r\n").as_bytes())?;
            // kubectl may reset the local connection once the server closes its end: keep
            // what came.
            let mut body = Vec::new();
            let mut buf = [0u8; 4096];
            while let Ok(n) = s.read(&mut buf) {
                if n == 0 {
                    break;
                }
                body.extend_from_slice(&buf[..n]);
            }
            Ok(String::from_utf8_lossy(&body).into_owned())
        })();
        let _ = pf.kill();
        let _ = pf.wait();
        result
    }

    /// Stop the server with SIGTERM and wait for it.
    pub fn stop(&mut self) {
        let _ = self.stop_within(Duration::from_secs(10));
    }

    /// SIGTERM, then wait up to `limit` for the server to exit on its own; SIGKILL and an
    /// error (with the log) if it does not. Returns how long it took.
    pub fn stop_within(&mut self, limit: Duration) -> Result<Duration> {
        let Some(mut child) = self.child.take() else { return Ok(Duration::ZERO) };
        let start = Instant::now();
        let _ =
            nix::sys::signal::kill(nix::unistd::Pid::from_raw(child.id() as i32), nix::sys::signal::Signal::SIGTERM);
        while start.elapsed() < limit {
            if let Ok(Some(_)) = child.try_wait() {
                return Ok(start.elapsed());
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = child.kill();
        let _ = child.wait();
        bail!("skiff server did not stop within {limit:?} of SIGTERM\n{}", self.log_text())
    }

    /// SIGKILL the server (a crash).
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// The server's process id.
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// Start the server again on the same data dir and port.
    pub fn restart(&mut self) -> Result<()> {
        self.stop();
        self.spawn()
    }

    /// Start again after a crash (`kill`).
    pub fn start_again(&mut self) -> Result<()> {
        self.spawn()
    }

    /// The Service range a node cluster runs with (`--service-cidr`).
    pub fn service_cidr(&self) -> Option<String> {
        let i = self.extra_args.iter().position(|a| a == "--service-cidr")?;
        self.extra_args.get(i + 1).cloned()
    }

    /// `https://<bind address>:<port>`
    pub fn url(&self) -> String {
        format!("https://{}:{}", self.bind_address, self.port)
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        self.stop();
        if std::thread::panicking() {
            // A failed test shows what the server complained about (the log itself goes
            // with the data directory).
            eprintln!("{}", log_excerpt(&self.log_text()));
        }
        if self.agent {
            // Containers outlive the server (fail-static): reset removes them and every mount,
            // link and cgroup of this data dir.
            let _ = Command::new(skiff_binary())
                .args(["reset", "--data-dir"])
                .arg(self.data_dir.path())
                .stdout(Stdio::null())
                .status();
        }
    }
}

/// The warnings and errors of a server log and its last lines, for a failed test's output.
fn log_excerpt(log: &str) -> String {
    const WARNINGS: usize = 60;
    const TAIL: usize = 20;
    let lines: Vec<&str> = log.lines().collect();
    let tail_from = lines.len().saturating_sub(TAIL);
    let warnings: Vec<&str> =
        lines[..tail_from].iter().copied().filter(|l| l.contains("WARN") || l.contains("ERROR")).collect();
    let mut out = format!("--- server log: {} earlier warnings and errors ---\n", warnings.len().min(WARNINGS));
    for l in &warnings[warnings.len().saturating_sub(WARNINGS)..] {
        out.push_str(l);
        out.push('\n');
    }
    out.push_str(&format!("--- server log: last {} lines ---\n", lines.len() - tail_from));
    for l in &lines[tail_from..] {
        out.push_str(l);
        out.push('\n');
    }
    out
}

/// An HTTP/1.0 GET from the test process to `host:port`, retried for up to 15 s until
/// something answers; the whole response, or the last error (as text).
pub fn http_get(host: &str, port: u16, path: &str) -> String {
    use std::io::{Read, Write};
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(15);
    loop {
        let attempt = (|| -> std::io::Result<String> {
            let ip = host.parse().map_err(|_| std::io::Error::other(format!("{host} is not an IP")))?;
            let addr = std::net::SocketAddr::new(ip, port);
            let mut s = std::net::TcpStream::connect_timeout(&addr, std::time::Duration::from_secs(2))?;
            s.set_read_timeout(Some(std::time::Duration::from_secs(5)))?;
            s.write_all(format!("GET {path} HTTP/1.0\r\n\r\n").as_bytes())?;
            let mut out = String::new();
            s.read_to_string(&mut out)?;
            Ok(out)
        })();
        match attempt {
            Ok(body) if !body.is_empty() => return body,
            other if std::time::Instant::now() > deadline => return format!("{other:?}"),
            _ => std::thread::sleep(std::time::Duration::from_millis(200)),
        }
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn log_excerpt_keeps_warnings_and_the_tail() {
        let mut log: Vec<String> = (0..100).map(|i| format!("INFO line {i}")).collect();
        log[3] = "WARN early trouble".into();
        log[95] = "ERROR late trouble".into();
        let out = super::log_excerpt(&log.join("\n"));
        assert!(out.contains("1 earlier warnings and errors") && out.contains("WARN early trouble"), "{out}");
        assert!(
            out.contains("last 20 lines") && out.contains("ERROR late trouble") && out.contains("INFO line 99"),
            "{out}"
        );
        assert!(!out.contains("INFO line 79\n") && out.contains("INFO line 80\n"), "{out}");
        assert!(super::log_excerpt("").contains("0 earlier"));
    }
}
