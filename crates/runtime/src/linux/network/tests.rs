use super::*;

/// Records netlink operations; fails the one whose name is in `fail`.
#[derive(Default)]
struct FakeNet {
    calls: Vec<String>,
    fail: Option<&'static str>,
}

impl FakeNet {
    fn op(&mut self, call: String, name: &'static str) -> io::Result<()> {
        self.calls.push(call);
        if self.fail == Some(name) { Err(io::Error::from_raw_os_error(libc::EPERM)) } else { Ok(()) }
    }
}

impl NetOps for FakeNet {
    fn ensure_bridge(&mut self, name: &str, addr: Ipv4Addr, prefix: u8) -> io::Result<()> {
        self.op(format!("bridge {name} {addr}/{prefix}"), "bridge")
    }
    fn create_veth(&mut self, host: &str, peer: &str, bridge: &str, netns: &Path) -> io::Result<()> {
        self.op(format!("veth {host} {peer} {bridge} {}", netns.display()), "veth")
    }
    fn configure_pod(&mut self, netns: &Path, peer: &str, ip: Ipv4Addr, prefix: u8, gw: Ipv4Addr) -> io::Result<()> {
        self.op(format!("pod {} {peer} {ip}/{prefix} via {gw}", netns.display()), "pod")
    }
    fn loopback_up(&mut self, netns: &Path) -> io::Result<()> {
        self.op(format!("lo {}", netns.display()), "lo")
    }
    fn delete_link(&mut self, name: &str) -> io::Result<()> {
        self.op(format!("del {name}"), "del")
    }
}

fn ipam(dir: &Path) -> (Ipam, Subnet) {
    let s = Subnet::parse("10.42.0.0/24").unwrap();
    (Ipam::new(dir.join("ipam"), s), s)
}

#[test]
fn setup_then_teardown() {
    let dir = tempfile::tempdir().unwrap();
    let (ipam, subnet) = ipam(dir.path());
    let mut net = FakeNet::default();
    let id = "0123456789abcdef";
    let att = setup(&mut net, &ipam, subnet, "skiff0", id, Path::new("/s/ns/net")).unwrap();
    assert_eq!(att, Attachment { host_veth: "veth01234567".into(), ip: Ipv4Addr::new(10, 42, 0, 2), prefix: 24 });
    assert_eq!(
        net.calls,
        vec![
            "bridge skiff0 10.42.0.1/24",
            "veth veth01234567 tmp01234567 skiff0 /s/ns/net",
            "pod /s/ns/net tmp01234567 10.42.0.2/24 via 10.42.0.1",
        ]
    );
    teardown(&mut net, &ipam, id, &att).unwrap();
    assert_eq!(net.calls.last().unwrap(), "del veth01234567");
    assert!(ipam.allocated().is_empty());
}

#[test]
fn a_failed_pod_side_rolls_back() {
    let dir = tempfile::tempdir().unwrap();
    let (ipam, subnet) = ipam(dir.path());
    let mut net = FakeNet { fail: Some("pod"), ..Default::default() };
    let e = setup(&mut net, &ipam, subnet, "br", "abcdef0123", Path::new("/ns")).unwrap_err();
    assert!(e.to_string().contains("pod interface"), "{e}");
    assert_eq!(net.calls.last().unwrap(), "del vethabcdef01");
    assert!(ipam.allocated().is_empty(), "address released");
}

#[test]
fn a_failed_bridge_allocates_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let (ipam, subnet) = ipam(dir.path());
    let mut net = FakeNet { fail: Some("bridge"), ..Default::default() };
    let e = setup(&mut net, &ipam, subnet, "br", "abcdef0123", Path::new("/ns")).unwrap_err();
    assert!(e.to_string().contains("bridge br"));
    assert_eq!(net.calls.len(), 1);
    assert!(ipam.allocated().is_empty());
}

#[test]
fn teardown_releases_even_when_the_link_is_gone() {
    let dir = tempfile::tempdir().unwrap();
    let (ipam, subnet) = ipam(dir.path());
    let mut net = FakeNet::default();
    let att = setup(&mut net, &ipam, subnet, "br", "ffff0000aa", Path::new("/ns")).unwrap();
    let mut failing = FakeNet { fail: Some("del"), ..Default::default() };
    assert!(teardown(&mut failing, &ipam, "ffff0000aa", &att).is_err());
    assert!(ipam.allocated().is_empty());
}
