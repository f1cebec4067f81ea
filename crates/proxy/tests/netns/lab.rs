//! A node in miniature, entirely inside network namespaces this test creates: a "node"
//! namespace holding a Linux bridge (the pod network, 10.42.0.1/24) and an uplink stand-in
//! with the node address and a default route, plus one namespace per "pod", each hanging
//! off the bridge by a veth pair. Names carry the process id and a counter, so parallel
//! tests and runs never collide; dropping the [`Lab`] deletes every namespace, and with them
//! every link, address, route and nftables table inside — also when a test panics.

use std::io::{self, Read as _, Write as _};
use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Command, Output, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::thread::JoinHandle;
use std::time::Duration;

use anyhow::{Context, Result, bail};

/// The node's address on its uplink.
pub(crate) const NODE_IP: Ipv4Addr = Ipv4Addr::new(192, 168, 77, 1);
/// The bridge's address: the pods' gateway.
pub(crate) const GATEWAY: Ipv4Addr = Ipv4Addr::new(10, 42, 0, 1);

/// Fail loudly, not skip, when the test cannot run here.
pub(crate) fn require_root_and_tools() {
    assert!(nix::unistd::Uid::effective().is_root(), "these tests need root: they create network namespaces");
    for tool in ["ip", "nft"] {
        let found = Command::new(tool).arg("-V").stdout(Stdio::null()).stderr(Stdio::null()).status().is_ok();
        assert!(found, "these tests need `{tool}` (packages iproute2 and nftables)");
    }
}

pub(crate) fn run(cmd: &str, args: &[&str]) -> Result<Output> {
    let out = Command::new(cmd).args(args).output().with_context(|| format!("running {cmd}"))?;
    if !out.status.success() {
        bail!("{cmd} {}: {}", args.join(" "), String::from_utf8_lossy(&out.stderr).trim());
    }
    Ok(out)
}

fn ip(args: &[&str]) -> Result<()> {
    run("ip", args).map(drop)
}

/// Run `nft` inside namespace `ns`, with `stdin` as its input file if given.
pub(crate) fn nft_in(ns: &str, args: &[&str], stdin: Option<&str>) -> Result<String> {
    let mut child = Command::new("ip")
        .args(["netns", "exec", ns, "nft"])
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .context("running nft")?;
    if let (Some(input), Some(mut pipe)) = (stdin, child.stdin.take()) {
        pipe.write_all(input.as_bytes())?;
    }
    drop(child.stdin.take());
    let out = child.wait_with_output()?;
    if !out.status.success() {
        bail!("nft {}: {}", args.join(" "), String::from_utf8_lossy(&out.stderr).trim());
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// Read a sysctl inside namespace `ns`.
pub(crate) fn sysctl(ns: &str, path: &str) -> Result<String> {
    let out = run("ip", &["netns", "exec", ns, "cat", &format!("/proc/sys/{path}")])?;
    Ok(String::from_utf8_lossy(&out.stdout).trim().to_string())
}

pub(crate) fn set_sysctl(ns: &str, path: &str, value: &str) -> Result<()> {
    run("ip", &["netns", "exec", ns, "sh", "-c", &format!("echo {value} > /proc/sys/{path}")]).map(drop)
}

/// One network namespace, deleted on drop.
pub(crate) struct Netns {
    pub(crate) name: String,
}

impl Netns {
    fn create(name: String) -> Result<Netns> {
        ip(&["netns", "add", &name])?;
        let ns = Netns { name };
        ip(&["-n", &ns.name, "link", "set", "lo", "up"])?;
        Ok(ns)
    }

    pub(crate) fn path(&self) -> PathBuf {
        PathBuf::from("/run/netns").join(&self.name)
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        // Deleting the namespace takes its links (and their veth peers), addresses, routes
        // and nftables tables with it.
        let _ = ip(&["netns", "del", &self.name]);
    }
}

/// A pod: a namespace with `eth0` on the node's bridge.
pub(crate) struct Pod {
    pub(crate) ns: Netns,
    pub(crate) ip: Ipv4Addr,
}

/// The node and its pods.
pub(crate) struct Lab {
    /// Unique per test in this run: `<pid><n>`.
    pub(crate) id: String,
    pub(crate) pods: Vec<Pod>,
    /// Last, so it is deleted after the pods.
    pub(crate) node: Netns,
}

impl Lab {
    /// A node with `pods` pods at 10.42.0.2, .3, …
    pub(crate) fn new(pods: usize) -> Result<Lab> {
        static NEXT: AtomicU32 = AtomicU32::new(0);
        let id = format!("{}{}", std::process::id() % 100_000, NEXT.fetch_add(1, Ordering::Relaxed));
        let node = Netns::create(format!("skpn{id}"))?;
        let n = node.name.clone();
        ip(&["-n", &n, "link", "add", "br0", "type", "bridge"])?;
        ip(&["-n", &n, "addr", "add", &format!("{GATEWAY}/24"), "dev", "br0"])?;
        ip(&["-n", &n, "link", "set", "br0", "up"])?;
        // The uplink: a dummy interface, or ifb on kernels without the dummy driver.
        if ip(&["-n", &n, "link", "add", "eth0", "type", "dummy"]).is_err() {
            ip(&["-n", &n, "link", "add", "eth0", "type", "ifb"])?;
        }
        ip(&["-n", &n, "addr", "add", &format!("{NODE_IP}/24"), "dev", "eth0"])?;
        ip(&["-n", &n, "link", "set", "eth0", "up"])?;
        ip(&["-n", &n, "route", "add", "default", "dev", "eth0"])?;
        set_sysctl(&n, "net/ipv4/ip_forward", "1")?;

        let mut lab = Lab { id: id.clone(), pods: Vec::new(), node };
        for i in 0..pods {
            let letter = char::from(b'a' + i as u8);
            let ns = Netns::create(format!("skp{letter}{id}"))?;
            let pod_ip = Ipv4Addr::new(10, 42, 0, 2 + i as u8);
            let host_if = format!("veth{letter}");
            ip(&["-n", &n, "link", "add", &host_if, "type", "veth", "peer", "name", "eth0", "netns", &ns.name])?;
            ip(&["-n", &n, "link", "set", &host_if, "master", "br0", "up"])?;
            // What the CNI bridge plugin's hairpinMode does: a pod reaching itself through a
            // Service gets its packets back out of the port they came in on.
            ip(&["-n", &n, "link", "set", &host_if, "type", "bridge_slave", "hairpin", "on"])?;
            ip(&["-n", &ns.name, "addr", "add", &format!("{pod_ip}/24"), "dev", "eth0"])?;
            ip(&["-n", &ns.name, "link", "set", "eth0", "up"])?;
            ip(&["-n", &ns.name, "route", "add", "default", "via", &GATEWAY.to_string()])?;
            lab.pods.push(Pod { ns, ip: pod_ip });
        }
        Ok(lab)
    }

    /// Names of everything the lab made in the host's view: namespaces.
    pub(crate) fn namespaces(&self) -> Vec<String> {
        let mut names = vec![self.node.name.clone()];
        names.extend(self.pods.iter().map(|p| p.ns.name.clone()));
        names
    }
}

/// Run `f` on a fresh thread inside the namespace at `path`.
pub(crate) fn in_netns<T: Send + 'static>(path: PathBuf, f: impl FnOnce() -> T + Send + 'static) -> T {
    std::thread::spawn(move || {
        let file = std::fs::File::open(&path).expect("opening the namespace");
        nix::sched::setns(file, nix::sched::CloneFlags::CLONE_NEWNET).expect("setns");
        f()
    })
    .join()
    .expect("namespace thread")
}

/// Connect from inside `ns` and read until the server closes.
pub(crate) fn fetch(ns: PathBuf, to: SocketAddr, timeout: Duration) -> io::Result<String> {
    in_netns(ns, move || {
        let mut s = TcpStream::connect_timeout(&to, timeout)?;
        s.set_read_timeout(Some(timeout))?;
        let mut out = String::new();
        s.read_to_string(&mut out)?;
        Ok(out)
    })
}

/// A TCP server in a namespace that answers every connection with a fixed text; stopped
/// (and its socket closed) on drop.
pub(crate) struct Server {
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl Server {
    pub(crate) fn start(ns: PathBuf, port: u16, reply: &str) -> Server {
        let stop = Arc::new(AtomicBool::new(false));
        let (flag, reply) = (stop.clone(), reply.to_string());
        let (ready_tx, ready) = std::sync::mpsc::channel();
        let thread = std::thread::spawn(move || {
            let file = std::fs::File::open(&ns).expect("opening the namespace");
            nix::sched::setns(file, nix::sched::CloneFlags::CLONE_NEWNET).expect("setns");
            let listener = TcpListener::bind((Ipv4Addr::UNSPECIFIED, port)).expect("binding the server");
            listener.set_nonblocking(true).expect("nonblocking");
            let _ = ready_tx.send(());
            while !flag.load(Ordering::Relaxed) {
                match listener.accept() {
                    Ok((mut s, _)) => {
                        let _ = s.set_nonblocking(false);
                        let _ = s.write_all(reply.as_bytes());
                    }
                    Err(_) => std::thread::sleep(Duration::from_millis(5)),
                }
            }
        });
        ready.recv().expect("server started");
        Server { stop, thread: Some(thread) }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// After a test: none of `namespaces` is listed, and the host has no table `table` and no
/// link named after it (the userspace mode's `<table>-svc`).
pub(crate) fn assert_nothing_left(namespaces: &[String], table: &str) {
    let listed = String::from_utf8_lossy(&run("ip", &["netns", "list"]).expect("ip netns list").stdout).into_owned();
    for ns in namespaces {
        assert!(!listed.lines().any(|l| l.split_whitespace().next() == Some(ns)), "namespace {ns} left behind");
    }
    let tables =
        String::from_utf8_lossy(&run("nft", &["list", "tables"]).expect("nft list tables").stdout).into_owned();
    assert!(!tables.lines().any(|l| l.trim() == format!("table inet {table}")), "table {table} left on the host");
    let links = String::from_utf8_lossy(&run("ip", &["-o", "link"]).expect("ip link").stdout).into_owned();
    assert!(!links.contains(&format!(": {table}")), "a link of this test is left on the host:\n{links}");
}
