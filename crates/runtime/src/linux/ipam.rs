//! Host-local IP address management for the built-in pod network, persisted under the data
//! dir like CNI's `host-local` plugin: one file per allocated address (named by the address,
//! containing the owning sandbox id), created with O_EXCL under an flock so that concurrent
//! runtimes on one data dir never hand out an address twice. Released on sandbox removal.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};

use nix::fcntl::{Flock, FlockArg};

/// An IPv4 subnet (`10.42.0.0/24`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Subnet {
    pub(crate) network: Ipv4Addr,
    pub(crate) prefix: u8,
}

impl Subnet {
    pub(crate) fn parse(s: &str) -> Result<Self, String> {
        let (addr, prefix) = s.split_once('/').ok_or_else(|| format!("{s:?} is not a CIDR"))?;
        let addr: Ipv4Addr = addr.parse().map_err(|_| format!("{s:?}: bad IPv4 address"))?;
        let prefix: u8 = prefix.parse().map_err(|_| format!("{s:?}: bad prefix length"))?;
        if !(8..=30).contains(&prefix) {
            return Err(format!("{s:?}: prefix length must be between 8 and 30"));
        }
        let mask = u32::MAX << (32 - prefix);
        Ok(Subnet { network: Ipv4Addr::from(u32::from(addr) & mask), prefix })
    }

    fn base(&self) -> u32 {
        u32::from(self.network)
    }

    fn size(&self) -> u32 {
        1 << (32 - self.prefix)
    }

    /// The bridge's address: the first host address.
    pub(crate) fn gateway(&self) -> Ipv4Addr {
        Ipv4Addr::from(self.base() + 1)
    }

    #[cfg(test)]
    fn contains(&self, ip: Ipv4Addr) -> bool {
        let ip = u32::from(ip);
        ip >= self.base() && ip < self.base() + self.size()
    }
}

pub(crate) struct Ipam {
    dir: PathBuf,
    subnet: Subnet,
}

const LAST_RESERVED: &str = "last_reserved_ip";

impl Ipam {
    pub(crate) fn new(dir: impl Into<PathBuf>, subnet: Subnet) -> Self {
        Ipam { dir: dir.into(), subnet }
    }

    fn lock(&self) -> io::Result<Flock<File>> {
        fs::create_dir_all(&self.dir)?;
        let f = OpenOptions::new().create(true).truncate(false).write(true).open(self.dir.join("lock"))?;
        Flock::lock(f, FlockArg::LockExclusive).map_err(|(_, e)| io::Error::from(e))
    }

    /// Allocate the next free address after the last one handed out (round robin, so a
    /// just-released address is not reused at once) for `owner`.
    pub(crate) fn allocate(&self, owner: &str) -> io::Result<Ipv4Addr> {
        let _lock = self.lock()?;
        // Usable: network+2 (after the gateway) up to broadcast-1.
        let first = self.subnet.base() + 2;
        let last = self.subnet.base() + self.subnet.size() - 2;
        let count = last - first + 1;
        let prev = fs::read_to_string(self.dir.join(LAST_RESERVED))
            .ok()
            .and_then(|s| s.trim().parse::<Ipv4Addr>().ok())
            .map(u32::from)
            .filter(|ip| (first..=last).contains(ip));
        let start = prev.map_or(0, |p| p - first + 1);
        for i in 0..count {
            let ip = Ipv4Addr::from(first + (start + i) % count);
            match OpenOptions::new().write(true).create_new(true).open(self.dir.join(ip.to_string())) {
                Ok(mut f) => {
                    f.write_all(owner.as_bytes())?;
                    fs::write(self.dir.join(LAST_RESERVED), ip.to_string())?;
                    return Ok(ip);
                }
                Err(e) if e.kind() == io::ErrorKind::AlreadyExists => continue,
                Err(e) => return Err(e),
            }
        }
        Err(io::Error::other(format!("no free address in {}/{}", self.subnet.network, self.subnet.prefix)))
    }

    /// Release every address `owner` holds; idempotent.
    pub(crate) fn release(&self, owner: &str) -> io::Result<()> {
        let _lock = self.lock()?;
        for e in fs::read_dir(&self.dir)?.flatten() {
            let name = e.file_name();
            if name.to_string_lossy().parse::<Ipv4Addr>().is_err() {
                continue;
            }
            if fs::read_to_string(e.path()).is_ok_and(|o| o.trim() == owner) {
                fs::remove_file(e.path())?;
            }
        }
        Ok(())
    }

    /// Addresses in use with their owners.
    #[cfg(test)]
    pub(crate) fn allocated(&self) -> Vec<(Ipv4Addr, String)> {
        let mut v: Vec<_> = fs::read_dir(&self.dir)
            .into_iter()
            .flatten()
            .flatten()
            .filter_map(|e| {
                let ip = e.file_name().to_string_lossy().parse().ok()?;
                Some((ip, fs::read_to_string(e.path()).ok()?))
            })
            .collect();
        v.sort();
        v
    }

    pub(crate) fn dir(&self) -> &Path {
        &self.dir
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn subnet_parsing() {
        let s = Subnet::parse("10.42.0.7/24").unwrap();
        assert_eq!(s.network, Ipv4Addr::new(10, 42, 0, 0));
        assert_eq!(s.gateway(), Ipv4Addr::new(10, 42, 0, 1));
        assert!(s.contains(Ipv4Addr::new(10, 42, 0, 255)));
        assert!(!s.contains(Ipv4Addr::new(10, 42, 1, 0)));
        for bad in ["10.42.0.0", "10.42.0.0/31", "10.42.0.0/x", "nope/24", "10.0.0.0/4"] {
            assert!(Subnet::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn allocates_round_robin_and_releases() {
        let dir = tempfile::tempdir().unwrap();
        let ipam = Ipam::new(dir.path().join("ipam"), Subnet::parse("10.1.0.0/29").unwrap());
        // /29: .2 .. .6 usable (.1 gateway, .7 broadcast).
        let a = ipam.allocate("a").unwrap();
        let b = ipam.allocate("b").unwrap();
        assert_eq!((a, b), (Ipv4Addr::new(10, 1, 0, 2), Ipv4Addr::new(10, 1, 0, 3)));
        ipam.release("a").unwrap();
        // Not reused immediately.
        assert_eq!(ipam.allocate("c").unwrap(), Ipv4Addr::new(10, 1, 0, 4));
        assert_eq!(ipam.allocate("d").unwrap(), Ipv4Addr::new(10, 1, 0, 5));
        assert_eq!(ipam.allocate("e").unwrap(), Ipv4Addr::new(10, 1, 0, 6));
        // Wraps around to the released one.
        assert_eq!(ipam.allocate("f").unwrap(), Ipv4Addr::new(10, 1, 0, 2));
        let e = ipam.allocate("g").unwrap_err();
        assert!(e.to_string().contains("no free address"));
        ipam.release("b").unwrap();
        ipam.release("b").unwrap();
        assert_eq!(ipam.allocated().len(), 4);
        assert!(ipam.allocated().iter().all(|(_, o)| o != "b"));
    }

    #[test]
    fn survives_a_new_instance() {
        let dir = tempfile::tempdir().unwrap();
        let subnet = Subnet::parse("10.2.0.0/24").unwrap();
        let ip = Ipam::new(dir.path(), subnet).allocate("x").unwrap();
        let other = Ipam::new(dir.path(), subnet).allocate("y").unwrap();
        assert_ne!(ip, other);
    }
}
