//! Test builders: layer tars (including malformed and malicious ones), images made of them,
//! and the archive formats `import` reads (docker-save, OCI archive, OCI layout).

use std::io::Write;
use std::path::Path;

use serde_json::json;

use super::digest::Digest;
use super::oci;

/// Panics unless running as root: the test needs device nodes, ownership or trusted xattrs.
pub(crate) fn require_root() {
    assert!(
        rustix::process::geteuid().is_root(),
        "this test needs root (device nodes, file ownership, trusted.* xattrs, mounts); run it as root"
    );
}

/// A layer tar built entry by entry.
pub(crate) struct Layer {
    b: tar::Builder<Vec<u8>>,
}

impl Layer {
    pub(crate) fn new() -> Layer {
        Layer { b: tar::Builder::new(Vec::new()) }
    }

    fn header(kind: tar::EntryType, mode: u32, size: u64) -> tar::Header {
        let mut h = tar::Header::new_gnu();
        h.set_entry_type(kind);
        h.set_mode(mode);
        h.set_size(size);
        h.set_mtime(1_700_000_000);
        h.set_uid(0);
        h.set_gid(0);
        h
    }

    /// An entry whose path (and link target) bytes are written verbatim, bypassing the tar
    /// crate's own path checks (how a malicious layer is made).
    pub(crate) fn raw(mut self, path: &str, kind: tar::EntryType, data: &[u8], link: Option<&str>) -> Layer {
        let mut h = Self::header(kind, 0o644, data.len() as u64);
        let old = h.as_old_mut();
        old.name[..path.len()].copy_from_slice(path.as_bytes());
        if let Some(l) = link {
            old.linkname[..l.len()].copy_from_slice(l.as_bytes());
        }
        h.set_cksum();
        self.b.append(&h, data).unwrap();
        self
    }

    pub(crate) fn dir(self, path: &str, mode: u32) -> Layer {
        self.entry(path, tar::EntryType::Directory, mode, (0, 0), b"", None)
    }

    pub(crate) fn file(self, path: &str, data: &[u8]) -> Layer {
        self.entry(path, tar::EntryType::Regular, 0o644, (0, 0), data, None)
    }

    pub(crate) fn entry(
        mut self,
        path: &str,
        kind: tar::EntryType,
        mode: u32,
        (uid, gid): (u64, u64),
        data: &[u8],
        link: Option<&str>,
    ) -> Layer {
        let mut h = Self::header(kind, mode, data.len() as u64);
        h.set_uid(uid);
        h.set_gid(gid);
        h.set_path(path).unwrap();
        if let Some(l) = link {
            h.set_link_name(l).unwrap();
        }
        h.set_cksum();
        self.b.append(&h, data).unwrap();
        self
    }

    pub(crate) fn symlink(self, path: &str, target: &str) -> Layer {
        self.raw(path, tar::EntryType::Symlink, b"", Some(target))
    }

    pub(crate) fn hardlink(self, path: &str, target: &str) -> Layer {
        self.raw(path, tar::EntryType::Link, b"", Some(target))
    }

    pub(crate) fn device(mut self, path: &str, kind: tar::EntryType, major: u32, minor: u32) -> Layer {
        let mut h = Self::header(kind, 0o666, 0);
        h.set_path(path).unwrap();
        h.set_device_major(major).unwrap();
        h.set_device_minor(minor).unwrap();
        h.set_cksum();
        self.b.append(&h, &b""[..]).unwrap();
        self
    }

    /// PAX records (`SCHILY.xattr.*`, `uid`, …) for the next entry.
    pub(crate) fn pax(mut self, records: &[(&str, &[u8])]) -> Layer {
        let mut data = Vec::new();
        for (k, v) in records {
            let base = k.len() + v.len() + 3;
            let mut len = base + 1;
            while len != base + len.to_string().len() {
                len = base + len.to_string().len();
            }
            write!(data, "{len} {k}=").unwrap();
            data.extend_from_slice(v);
            data.push(b'\n');
        }
        let mut h = Self::header(tar::EntryType::XHeader, 0o644, data.len() as u64);
        h.set_path("PaxHeader").unwrap();
        h.set_cksum();
        self.b.append(&h, &data[..]).unwrap();
        self
    }

    pub(crate) fn build(self) -> Vec<u8> {
        self.b.into_inner().unwrap()
    }
}

pub(crate) fn gzip(bytes: &[u8]) -> Vec<u8> {
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    e.write_all(bytes).unwrap();
    e.finish().unwrap()
}

/// An image as blobs: layers (compressed or not), config and manifest.
pub(crate) struct TestImage {
    pub layers: Vec<Vec<u8>>,
    pub layer_types: Vec<String>,
    pub config: Vec<u8>,
    pub manifest: Vec<u8>,
}

impl TestImage {
    /// An image of these uncompressed layer tars for this host's platform.
    pub(crate) fn new(tars: &[Vec<u8>], compress: bool) -> TestImage {
        let (_, arch) = oci::host_platform();
        Self::with_arch(tars, compress, arch)
    }

    pub(crate) fn with_arch(tars: &[Vec<u8>], compress: bool, arch: &str) -> TestImage {
        let diff_ids: Vec<String> = tars.iter().map(|t| Digest::of(t).to_string()).collect();
        let config = serde_json::to_vec(&json!({
            "architecture": arch,
            "os": "linux",
            "created": "2024-01-01T00:00:00Z",
            "config": {
                "Env": ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"],
                "Cmd": ["sh"],
                "WorkingDir": "/",
            },
            "rootfs": {"type": "layers", "diff_ids": diff_ids},
        }))
        .unwrap();
        let layers: Vec<Vec<u8>> = tars.iter().map(|t| if compress { gzip(t) } else { t.clone() }).collect();
        let layer_type = if compress { oci::OCI_LAYER_GZIP } else { oci::OCI_LAYER };
        let mut img =
            TestImage { layers, layer_types: vec![layer_type.to_string(); tars.len()], config, manifest: Vec::new() };
        img.rebuild_manifest();
        img
    }

    pub(crate) fn rebuild_manifest(&mut self) {
        let layers: Vec<_> = self
            .layers
            .iter()
            .zip(&self.layer_types)
            .map(|(l, t)| json!({"mediaType": t, "digest": Digest::of(l).to_string(), "size": l.len()}))
            .collect();
        self.manifest = serde_json::to_vec(&json!({
            "schemaVersion": 2,
            "mediaType": oci::OCI_MANIFEST,
            "config": {"mediaType": oci::OCI_CONFIG, "digest": Digest::of(&self.config).to_string(), "size": self.config.len()},
            "layers": layers,
        }))
        .unwrap();
    }

    pub(crate) fn id(&self) -> String {
        Digest::of(&self.config).to_string()
    }

    pub(crate) fn manifest_digest(&self) -> String {
        Digest::of(&self.manifest).to_string()
    }

    /// Blobs of the image, `(digest, bytes)`.
    pub(crate) fn blobs(&self) -> Vec<(Digest, Vec<u8>)> {
        let mut out =
            vec![(Digest::of(&self.manifest), self.manifest.clone()), (Digest::of(&self.config), self.config.clone())];
        out.extend(self.layers.iter().map(|l| (Digest::of(l), l.clone())));
        out
    }

    /// The index.json of an OCI layout holding this image under `ref_name`.
    pub(crate) fn index_json(&self, ref_name: Option<&str>) -> Vec<u8> {
        let mut desc =
            json!({"mediaType": oci::OCI_MANIFEST, "digest": self.manifest_digest(), "size": self.manifest.len()});
        if let Some(r) = ref_name {
            desc["annotations"] = json!({"org.opencontainers.image.ref.name": r});
        }
        serde_json::to_vec(&json!({"schemaVersion": 2, "manifests": [desc]})).unwrap()
    }

    pub(crate) fn oci_archive(&self, ref_name: Option<&str>) -> Vec<u8> {
        let mut files = vec![("oci-layout".to_string(), br#"{"imageLayoutVersion":"1.0.0"}"#.to_vec())];
        for (d, bytes) in self.blobs() {
            files.push((format!("blobs/sha256/{}", d.hex()), bytes));
        }
        files.push(("index.json".into(), self.index_json(ref_name)));
        archive(&files)
    }

    pub(crate) fn write_layout(&self, dir: &Path, ref_name: Option<&str>) {
        std::fs::create_dir_all(dir.join("blobs/sha256")).unwrap();
        std::fs::write(dir.join("oci-layout"), br#"{"imageLayoutVersion":"1.0.0"}"#).unwrap();
        for (d, bytes) in self.blobs() {
            std::fs::write(dir.join("blobs/sha256").join(d.hex()), bytes).unwrap();
        }
        std::fs::write(dir.join("index.json"), self.index_json(ref_name)).unwrap();
    }

    /// A `docker save` archive (the classic layout: `<id>/layer.tar`, `<id>.json`,
    /// `manifest.json` last).
    pub(crate) fn docker_archive(&self, repo_tags: &[&str]) -> Vec<u8> {
        let id = Digest::of(&self.config);
        let mut files = Vec::new();
        let mut layer_paths = Vec::new();
        for (i, l) in self.layers.iter().enumerate() {
            let p = format!("{:064x}/layer.tar", i + 1);
            files.push((format!("{:064x}/VERSION", i + 1), b"1.0".to_vec()));
            files.push((p.clone(), l.clone()));
            layer_paths.push(p);
        }
        files.push((format!("{}.json", id.hex()), self.config.clone()));
        let manifest = json!([{"Config": format!("{}.json", id.hex()), "RepoTags": repo_tags, "Layers": layer_paths}]);
        files.push(("manifest.json".into(), serde_json::to_vec(&manifest).unwrap()));
        archive(&files)
    }
}

/// A tar of regular files.
pub(crate) fn archive(files: &[(String, Vec<u8>)]) -> Vec<u8> {
    let mut b = tar::Builder::new(Vec::new());
    for (path, data) in files {
        let mut h = tar::Header::new_gnu();
        h.set_size(data.len() as u64);
        h.set_mode(0o644);
        h.set_entry_type(tar::EntryType::Regular);
        h.set_path(path).unwrap();
        h.set_cksum();
        b.append(&h, &data[..]).unwrap();
    }
    b.into_inner().unwrap()
}

/// A small, valid layer: `/bin/hello`, `/etc/motd`.
pub(crate) fn simple_layer(motd: &str) -> Vec<u8> {
    Layer::new()
        .dir("bin", 0o755)
        .entry("bin/hello", tar::EntryType::Regular, 0o755, (0, 0), b"#!/bin/sh\necho hello\n", None)
        .dir("etc", 0o755)
        .file("etc/motd", motd.as_bytes())
        .build()
}

/// Panics unless `tool` is installed (tests needing a Debian package say which).
pub(crate) fn require_tool(tool: &str, package: &str) {
    let found =
        std::env::var_os("PATH").is_some_and(|paths| std::env::split_paths(&paths).any(|p| p.join(tool).is_file()));
    assert!(found, "this test needs `{tool}`: apt-get install {package} (scripts/test.sh installs it)");
}

/// Debian's `docker-registry` (distribution 2.8) on 127.0.0.1 with a random port and its own
/// storage dir, optionally with basic auth; killed on drop.
pub(crate) struct Registry {
    child: std::process::Child,
    pub addr: String,
    dir: tempfile::TempDir,
}

impl Registry {
    pub(crate) fn start(user: Option<(&str, &str)>) -> Registry {
        require_tool("docker-registry", "docker-registry");
        let dir = tempfile::tempdir().unwrap();
        let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let addr = format!("127.0.0.1:{port}");
        let mut config = format!(
            "version: 0.1\nlog:\n  level: error\nstorage:\n  filesystem:\n    rootdirectory: {}\n  delete:\n    enabled: true\nhttp:\n  addr: {addr}\n",
            dir.path().join("storage").display()
        );
        if let Some((u, p)) = user {
            require_tool("htpasswd", "apache2-utils");
            let out = std::process::Command::new("htpasswd").args(["-Bbn", u, p]).output().unwrap();
            assert!(out.status.success());
            fs_write(&dir.path().join("htpasswd"), &out.stdout);
            config +=
                &format!("auth:\n  htpasswd:\n    realm: test\n    path: {}\n", dir.path().join("htpasswd").display());
        }
        fs_write(&dir.path().join("config.yml"), config.as_bytes());
        let child = std::process::Command::new("docker-registry")
            .arg("serve")
            .arg(dir.path().join("config.yml"))
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        let reg = Registry { child, addr, dir };
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(15);
        while std::net::TcpStream::connect(&reg.addr).is_err() {
            assert!(std::time::Instant::now() < deadline, "docker-registry did not start");
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
        reg
    }

    /// Push an OCI archive or layout (`oci-archive:<path>` / `oci:<dir>`) as `repo:tag`.
    pub(crate) fn push(&self, source: &str, dest: &str, creds: Option<(&str, &str)>, all: bool) {
        self.push_with(source, dest, creds, if all { &["--all"] } else { &[] });
    }

    /// Push with extra `skopeo copy` flags (`--format v2s2` makes Docker schema 2 manifests).
    pub(crate) fn push_with(&self, source: &str, dest: &str, creds: Option<(&str, &str)>, extra: &[&str]) {
        require_tool("skopeo", "skopeo");
        let mut cmd = std::process::Command::new("skopeo");
        cmd.args(["--insecure-policy", "copy", "-q", "--dest-tls-verify=false"]);
        cmd.args(extra);
        if let Some((u, p)) = creds {
            cmd.arg(format!("--dest-creds={u}:{p}"));
        }
        let out = cmd.arg(source).arg(format!("docker://{}/{dest}", self.addr)).output().unwrap();
        assert!(out.status.success(), "skopeo copy: {}", String::from_utf8_lossy(&out.stderr));
    }

    /// Where the registry keeps a blob's bytes (to tamper with them).
    pub(crate) fn blob_data(&self, d: &Digest) -> std::path::PathBuf {
        self.dir.path().join("storage/docker/registry/v2/blobs/sha256").join(&d.hex()[..2]).join(d.hex()).join("data")
    }
}

impl Drop for Registry {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn fs_write(p: &Path, b: &[u8]) {
    std::fs::write(p, b).unwrap();
}

/// A bearer-token front for a registry: answers 401 with a `Bearer` challenge, issues
/// `token` at `/token` for the right basic credentials, and forwards requests carrying the
/// token to the registry. Stops on drop.
pub(crate) struct TokenProxy {
    pub addr: String,
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl TokenProxy {
    pub(crate) fn start(upstream: &str, user: &str, pass: &str, token: &str) -> TokenProxy {
        use base64::Engine as _;
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap().to_string();
        let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let basic = format!("Basic {}", base64::engine::general_purpose::STANDARD.encode(format!("{user}:{pass}")));
        let (up, me, tok, st) = (upstream.to_string(), addr.clone(), token.to_string(), stop.clone());
        let thread = std::thread::spawn(move || {
            for conn in listener.incoming() {
                if st.load(std::sync::atomic::Ordering::SeqCst) {
                    break;
                }
                let Ok(conn) = conn else { continue };
                let (up, me, tok, basic) = (up.clone(), me.clone(), tok.clone(), basic.clone());
                std::thread::spawn(move || proxy_one(conn, &up, &me, &tok, &basic));
            }
        });
        TokenProxy { addr, stop, thread: Some(thread) }
    }
}

impl Drop for TokenProxy {
    fn drop(&mut self) {
        self.stop.store(true, std::sync::atomic::Ordering::SeqCst);
        let _ = std::net::TcpStream::connect(&self.addr);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn proxy_one(mut conn: std::net::TcpStream, upstream: &str, me: &str, token: &str, basic: &str) {
    use std::io::{BufRead, BufReader};
    let mut reader = BufReader::new(conn.try_clone().unwrap());
    let mut head = Vec::new();
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line).unwrap_or(0) == 0 {
            return;
        }
        if line == "\r\n" {
            break;
        }
        head.push(line.trim_end().to_string());
    }
    let Some(request_line) = head.first().cloned() else { return };
    let header = |name: &str| {
        head.iter().skip(1).find_map(|h| {
            let (k, v) = h.split_once(':')?;
            k.eq_ignore_ascii_case(name).then(|| v.trim().to_string())
        })
    };
    let path = request_line.split(' ').nth(1).unwrap_or("/").to_string();
    let auth = header("authorization").unwrap_or_default();
    let reply = |conn: &mut std::net::TcpStream, status: &str, extra: &str, body: &str| {
        let _ = write!(
            conn,
            "HTTP/1.1 {status}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n{extra}\r\n{body}",
            body.len()
        );
    };
    if path.starts_with("/token") {
        if auth == basic {
            reply(&mut conn, "200 OK", "", &format!("{{\"token\":\"{token}\"}}"));
        } else {
            reply(&mut conn, "401 Unauthorized", "", "{}");
        }
        return;
    }
    if auth != format!("Bearer {token}") {
        let challenge = format!("WWW-Authenticate: Bearer realm=\"http://{me}/token\",service=\"test-registry\"\r\n");
        reply(&mut conn, "401 Unauthorized", &challenge, r#"{"errors":[{"code":"UNAUTHORIZED"}]}"#);
        return;
    }
    let Ok(mut up) = std::net::TcpStream::connect(upstream) else { return };
    let mut fwd = format!("{request_line}\r\nHost: {upstream}\r\nConnection: close\r\n");
    for h in head.iter().skip(1) {
        let k = h.split(':').next().unwrap_or_default().to_ascii_lowercase();
        if !matches!(k.as_str(), "host" | "authorization" | "connection") {
            fwd += &format!("{h}\r\n");
        }
    }
    fwd += "\r\n";
    if up.write_all(fwd.as_bytes()).is_err() {
        return;
    }
    let _ = std::io::copy(&mut up, &mut conn);
}
