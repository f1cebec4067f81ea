//! `skiff image` end to end, with the built binary: a test image made here from Debian's
//! `busybox-static` (never pulled from the internet) is imported, listed, inspected, tagged,
//! exported (skopeo must accept the archive), pushed to Debian's `docker-registry` on
//! 127.0.0.1 and pulled back (with and without basic auth), run from an overlayfs of its
//! layers, and hammered by several processes at once while a server runs on the data dir.
//! The import benchmark is `#[ignore]`d: run it in release (see docs/benchmarks.md).
//!
//! Needs root (unpacking, mounts) and the packages `scripts/test.sh` installs: busybox-static,
//! docker-registry, skopeo, apache2-utils. Every test removes its processes, mounts and dirs.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use skiff_testkit::images::{docker_archive, docker_archive_with, sha256 as sha, tar_entry};
use skiff_testkit::{Cluster, skiff_binary};

fn require_root() {
    let euid = std::fs::metadata("/proc/self").map(|m| std::os::unix::fs::MetadataExt::uid(&m)).unwrap_or(1);
    assert_eq!(euid, 0, "the image e2e tests need root (unpacking layers, overlayfs mounts)");
}

fn require_tool(tool: &str, package: &str) -> PathBuf {
    let found = std::env::var_os("PATH")
        .and_then(|paths| std::env::split_paths(&paths).map(|p| p.join(tool)).find(|p| p.is_file()));
    found.unwrap_or_else(|| panic!("this test needs `{tool}`: apt-get install {package} (scripts/test.sh does)"))
}

fn skiff(data_dir: &Path, args: &[&str]) -> Output {
    Command::new(skiff_binary())
        .arg("image")
        .arg("--data-dir")
        .arg(data_dir)
        .args(args)
        .output()
        .expect("running skiff")
}

fn ok(o: Output) -> String {
    assert!(
        o.status.success(),
        "skiff failed: {}\n{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
    String::from_utf8(o.stdout).unwrap()
}

/// Layers of the busybox test image: (1) busybox-static with its applet links and a
/// `/etc/motd`, `/var/cache/old`; (2) deletes `/etc/motd`, makes `/var/cache` opaque, adds
/// `/etc/issue`.
fn busybox_layers() -> Vec<Vec<u8>> {
    let busybox = std::fs::read(require_tool("busybox", "busybox-static")).unwrap();
    let mut b = tar::Builder::new(Vec::new());
    for d in ["bin", "etc", "tmp", "var", "var/cache"] {
        tar_entry(&mut b, d, tar::EntryType::Directory, 0o755, b"", None);
    }
    tar_entry(&mut b, "bin/busybox", tar::EntryType::Regular, 0o755, &busybox, None);
    for applet in ["sh", "ls", "cat", "echo", "true", "id", "wc"] {
        tar_entry(&mut b, &format!("bin/{applet}"), tar::EntryType::Symlink, 0o777, b"", Some("busybox"));
    }
    tar_entry(&mut b, "etc/motd", tar::EntryType::Regular, 0o644, b"deleted in layer 2\n", None);
    tar_entry(&mut b, "etc/passwd", tar::EntryType::Regular, 0o644, b"root:x:0:0:root:/root:/bin/sh\n", None);
    tar_entry(&mut b, "var/cache/old", tar::EntryType::Regular, 0o644, b"hidden by opaque\n", None);
    let base = b.into_inner().unwrap();
    let mut b = tar::Builder::new(Vec::new());
    tar_entry(&mut b, "etc/.wh.motd", tar::EntryType::Regular, 0o644, b"", None);
    tar_entry(&mut b, "var/cache", tar::EntryType::Directory, 0o755, b"", None);
    tar_entry(&mut b, "var/cache/.wh..wh..opq", tar::EntryType::Regular, 0o644, b"", None);
    tar_entry(&mut b, "var/cache/new", tar::EntryType::Regular, 0o644, b"new\n", None);
    tar_entry(&mut b, "etc/issue", tar::EntryType::Regular, 0o644, b"skiff test image\n", None);
    vec![base, b.into_inner().unwrap()]
}

fn write(dir: &Path, name: &str, bytes: &[u8]) -> PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, bytes).unwrap();
    p
}

/// Unmounts on drop so a failed assertion leaves no mount behind.
struct Mount(PathBuf);

impl Drop for Mount {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg(&self.0).status();
    }
}

#[test]
fn import_ls_inspect_tag_export_rm_prune() {
    require_root();
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    let archive = write(tmp.path(), "busybox.tar", &docker_archive(&busybox_layers(), &["busybox:1.36"], &["sh"]));

    let out = ok(skiff(&data, &["import", archive.to_str().unwrap()]));
    assert_eq!(out.trim(), "Loaded image: docker.io/library/busybox:1.36");
    let ls = ok(skiff(&data, &["ls"]));
    let rows: Vec<Vec<&str>> = ls.lines().map(|l| l.split_whitespace().collect()).collect();
    assert_eq!(rows[0], ["IMAGE", "TAG", "IMAGE", "ID", "SIZE"]);
    assert_eq!(&rows[1][..2], ["docker.io/library/busybox", "1.36"]);

    let inspect: Value = serde_json::from_str(&ok(skiff(&data, &["inspect", "busybox:1.36"]))).unwrap();
    let img = &inspect[0];
    assert_eq!(img["repoTags"], json!(["docker.io/library/busybox:1.36"]));
    assert_eq!(img["config"]["config"]["Cmd"], json!(["sh"]));
    assert_eq!(img["layers"].as_array().unwrap().len(), 2);
    let id = img["id"].as_str().unwrap().to_string();

    // Both layers unpacked once under <data-dir>/images/layers/<diffid hex>.
    for l in img["layers"].as_array().unwrap() {
        let p = PathBuf::from(l["path"].as_str().unwrap());
        assert!(p.starts_with(data.join("images/layers")) && p.is_dir(), "{p:?}");
    }

    ok(skiff(&data, &["tag", "busybox:1.36", "localhost/bb:test"]));
    let ids = ok(skiff(&data, &["ls", "-q"]));
    assert_eq!(ids.trim(), id, "one image, two names");

    // The export is an OCI archive skopeo reads and copies.
    let skopeo = require_tool("skopeo", "skopeo");
    let export = tmp.path().join("busybox-oci.tar");
    ok(skiff(&data, &["export", "busybox:1.36", "-o", export.to_str().unwrap()]));
    let insp = Command::new(&skopeo).arg("inspect").arg(format!("oci-archive:{}", export.display())).output().unwrap();
    assert!(insp.status.success(), "skopeo inspect: {}", String::from_utf8_lossy(&insp.stderr));
    let insp: Value = serde_json::from_slice(&insp.stdout).unwrap();
    assert_eq!(insp["Layers"].as_array().unwrap().len(), 2);
    let layout = tmp.path().join("layout");
    let copy = Command::new(&skopeo)
        .args(["--insecure-policy", "copy", "-q"])
        .arg(format!("oci-archive:{}:1.36", export.display()))
        .arg(format!("oci:{}:copied", layout.display()))
        .output()
        .unwrap();
    assert!(copy.status.success(), "skopeo copy: {}", String::from_utf8_lossy(&copy.stderr));
    // And the OCI layout skopeo wrote imports back as the same image.
    let data2 = tmp.path().join("data2");
    ok(skiff(&data2, &["import", layout.to_str().unwrap(), "--tag", "copied:1"]));
    assert_eq!(ok(skiff(&data2, &["ls", "-q"])).trim(), id);

    // rm: a tag of a two-tag image only untags; then the image goes with its content.
    assert_eq!(ok(skiff(&data, &["rm", "localhost/bb:test"])).trim(), "Untagged: localhost/bb:test");
    let out = ok(skiff(&data, &["rm", "busybox:1.36"]));
    assert!(out.starts_with(&format!("Deleted: {id}")), "{out}");
    assert!(std::fs::read_dir(data.join("images/layers")).unwrap().next().is_none());
    let fail = skiff(&data, &["rm", "busybox:1.36"]);
    assert!(!fail.status.success());
    assert!(String::from_utf8_lossy(&fail.stderr).contains("not found"));
    let out = ok(skiff(&data, &["prune"]));
    assert!(out.contains("Removed 0 images"), "{out}");

    // A bad archive is a clear error and leaves nothing behind.
    let bad = write(tmp.path(), "bad.tar", b"this is not a tar archive at all");
    let fail = skiff(&data, &["import", bad.to_str().unwrap()]);
    assert!(!fail.status.success());
    assert!(String::from_utf8_lossy(&fail.stderr).contains("not an image archive"), "{fail:?}");
    assert!(std::fs::read_dir(data.join("images/tmp")).unwrap().next().is_none());
}

/// The layers as an overlayfs rootfs: the whiteout and the opaque dir take effect, and
/// busybox runs in it (chroot).
#[test]
fn layers_mount_as_an_overlay_rootfs() {
    require_root();
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    let archive = write(tmp.path(), "busybox.tar", &docker_archive(&busybox_layers(), &["busybox:1.36"], &["sh"]));
    ok(skiff(&data, &["import", archive.to_str().unwrap()]));
    let inspect: Value = serde_json::from_str(&ok(skiff(&data, &["inspect", "busybox:1.36"]))).unwrap();
    let mut lowers: Vec<String> =
        inspect[0]["layers"].as_array().unwrap().iter().map(|l| l["path"].as_str().unwrap().to_string()).collect();
    lowers.reverse();
    let (upper, work, mnt) = (tmp.path().join("upper"), tmp.path().join("work"), tmp.path().join("rootfs"));
    for d in [&upper, &work, &mnt] {
        std::fs::create_dir(d).unwrap();
    }
    let opts = format!("lowerdir={},upperdir={},workdir={}", lowers.join(":"), upper.display(), work.display());
    let st = Command::new("mount").args(["-t", "overlay", "overlay", "-o", &opts]).arg(&mnt).status().unwrap();
    assert!(st.success(), "mounting the rootfs");
    let _m = Mount(mnt.clone());
    assert!(!mnt.join("etc/motd").exists(), "deleted in the top layer");
    assert!(!mnt.join("var/cache/old").exists(), "hidden by the opaque dir");
    assert_eq!(std::fs::read_to_string(mnt.join("var/cache/new")).unwrap(), "new\n");
    let out =
        Command::new("chroot").arg(&mnt).args(["/bin/sh", "-c", "cat /etc/issue; ls /bin | wc -l"]).output().unwrap();
    assert!(out.status.success(), "{out:?}");
    assert_eq!(String::from_utf8_lossy(&out.stdout), "skiff test image\n8\n");
    // Writes go to the container's upper dir, never to the shared layers.
    std::fs::write(mnt.join("etc/issue"), "changed").unwrap();
    assert_eq!(std::fs::read_to_string(Path::new(&lowers[0]).join("etc/issue")).unwrap(), "skiff test image\n");
}

/// Debian's docker-registry on 127.0.0.1:<random port>, its storage in a temp dir; killed on
/// drop.
struct Registry {
    child: Child,
    addr: String,
    _dir: tempfile::TempDir,
}

impl Registry {
    /// On 127.0.0.1, or also on `extra_ip` (to reach it by a non-loopback address).
    fn start(user: Option<(&str, &str)>, extra_ip: Option<std::net::IpAddr>) -> Registry {
        let bin = require_tool("docker-registry", "docker-registry");
        let dir = tempfile::tempdir().unwrap();
        let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let addr = format!("127.0.0.1:{port}");
        let listen = if extra_ip.is_some() { format!("0.0.0.0:{port}") } else { addr.clone() };
        let mut config = format!(
            "version: 0.1\nlog:\n  level: error\nstorage:\n  filesystem:\n    rootdirectory: {}\nhttp:\n  addr: {listen}\n",
            dir.path().join("storage").display()
        );
        if let Some((u, p)) = user {
            let htpasswd = require_tool("htpasswd", "apache2-utils");
            let out = Command::new(htpasswd).args(["-Bbn", u, p]).output().unwrap();
            write(dir.path(), "htpasswd", &out.stdout);
            config +=
                &format!("auth:\n  htpasswd:\n    realm: test\n    path: {}\n", dir.path().join("htpasswd").display());
        }
        let cfg = write(dir.path(), "config.yml", config.as_bytes());
        let child =
            Command::new(bin).arg("serve").arg(cfg).stdout(Stdio::null()).stderr(Stdio::null()).spawn().unwrap();
        let r = Registry { child, addr, _dir: dir };
        let deadline = Instant::now() + Duration::from_secs(15);
        while std::net::TcpStream::connect(&r.addr).is_err() {
            assert!(Instant::now() < deadline, "docker-registry did not start");
            std::thread::sleep(Duration::from_millis(50));
        }
        r
    }

    fn push(&self, archive: &Path, dest: &str, creds: Option<&str>) {
        let mut cmd = Command::new(require_tool("skopeo", "skopeo"));
        cmd.args(["--insecure-policy", "copy", "-q", "--dest-tls-verify=false"]);
        if let Some(c) = creds {
            cmd.arg(format!("--dest-creds={c}"));
        }
        let out = cmd
            .arg(format!("oci-archive:{}", archive.display()))
            .arg(format!("docker://{}/{dest}", self.addr))
            .output()
            .unwrap();
        assert!(out.status.success(), "skopeo copy: {}", String::from_utf8_lossy(&out.stderr));
    }
}

impl Drop for Registry {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[test]
fn pull_from_a_local_registry_with_and_without_auth() {
    require_root();
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    // Fill the registry with our own export.
    let archive = write(tmp.path(), "busybox.tar", &docker_archive(&busybox_layers(), &["busybox:1.36"], &["sh"]));
    ok(skiff(&data, &["import", archive.to_str().unwrap()]));
    let export = tmp.path().join("export.tar");
    ok(skiff(&data, &["export", "busybox:1.36", "-o", export.to_str().unwrap()]));
    let id = ok(skiff(&data, &["ls", "-q"])).trim().to_string();

    let host_ip = non_loopback_ip();
    let open = Registry::start(None, Some(host_ip));
    open.push(&export, "library/busybox:1.36", None);
    let pulled_dir = tmp.path().join("pulled");
    let reference = format!("{}/library/busybox:1.36", open.addr);
    let out = skiff(&pulled_dir, &["pull", &reference]);
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert_eq!(ok(out).trim(), id);
    // Not a terminal: plain progress lines, per layer.
    assert!(stderr.contains("resolved sha256:") && stderr.contains("(2 layers)"), "{stderr}");
    assert_eq!(stderr.matches(": downloading ").count(), 2, "{stderr}");
    assert_eq!(stderr.matches(": unpacked ").count(), 2, "{stderr}");
    let ls = ok(skiff(&pulled_dir, &["ls", "--digests"]));
    assert!(ls.contains(&format!("{}/library/busybox", open.addr)), "{ls}");
    // Pulling again downloads nothing.
    let again = skiff(&pulled_dir, &["pull", &reference]);
    assert_eq!(String::from_utf8_lossy(&again.stderr).matches("already present").count(), 2);

    let private = Registry::start(Some(("alice", "s3cret")), None);
    private.push(&export, "team/busybox:1.36", Some("alice:s3cret"));
    let reference = format!("{}/team/busybox:1.36", private.addr);
    let anon = skiff(&tmp.path().join("anon"), &["pull", &reference]);
    assert!(!anon.status.success());
    let msg = String::from_utf8_lossy(&anon.stderr);
    assert!(msg.contains("registry request") && msg.contains("team/busybox"), "{msg}");
    let mut child = Command::new(skiff_binary())
        .args(["image", "--data-dir"])
        .arg(tmp.path().join("auth"))
        .args(["pull", &reference, "--username", "alice", "--password-stdin"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(b"s3cret\n").unwrap();
    assert_eq!(ok(child.wait_with_output().unwrap()).trim(), id);

    // The same plain-HTTP registry by a non-loopback address: https only (which fails against
    // plain HTTP), unless listed as insecure.
    let remote = format!("{host_ip}:{}", open.addr.rsplit(':').next().unwrap());
    let reference = format!("{remote}/library/busybox:1.36");
    let fail = skiff(&tmp.path().join("x"), &["pull", &reference]);
    assert!(!fail.status.success(), "plain HTTP to {remote} must need --insecure-registry");
    let out = skiff(&tmp.path().join("x"), &["pull", &reference, "--insecure-registry", &remote]);
    assert_eq!(ok(out).trim(), id);
}

/// This host's address on its default route (no packet is sent).
fn non_loopback_ip() -> std::net::IpAddr {
    let s = std::net::UdpSocket::bind("0.0.0.0:0").unwrap();
    s.connect("192.0.2.1:9").expect("this test needs a non-loopback IPv4 address with a default route");
    let ip = s.local_addr().unwrap().ip();
    assert!(!ip.is_loopback(), "no non-loopback address");
    ip
}

/// Several `skiff image` processes at once on a data dir a running server also holds: every
/// import lands, removals and prunes do not break the others, the metadata stays valid.
#[test]
fn concurrent_processes_share_the_store_while_a_server_runs() {
    require_root();
    let cluster = Cluster::start().expect("skiff server starts");
    let data = cluster.data_dir.path().to_path_buf();
    let tmp = tempfile::tempdir().unwrap();
    let base = busybox_layers().remove(0);
    let archives: Vec<PathBuf> = (0..6)
        .map(|i| {
            let mut b = tar::Builder::new(Vec::new());
            tar_entry(&mut b, "etc/which", tar::EntryType::Regular, 0o644, format!("{i}\n").as_bytes(), None);
            let own = b.into_inner().unwrap();
            let tag = format!("app:{i}");
            write(tmp.path(), &format!("{i}.tar"), &docker_archive(&[base.clone(), own], &[&tag], &["sh"]))
        })
        .collect();
    let spawn = |args: Vec<String>| {
        Command::new(skiff_binary())
            .args(["image", "--data-dir"])
            .arg(&data)
            .args(args)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap()
    };
    let mut children: Vec<Child> =
        archives.iter().map(|a| spawn(vec!["import".into(), a.display().to_string()])).collect();
    children.push(spawn(vec!["prune".into()]));
    children.push(spawn(vec!["ls".into()]));
    for c in children {
        ok(c.wait_with_output().unwrap());
    }
    // Removals racing imports of the same content.
    let mut children = vec![spawn(vec!["rm".into(), "app:0".into(), "app:1".into()]), spawn(vec!["prune".into()])];
    children.extend(archives[2..4].iter().map(|a| spawn(vec!["import".into(), a.display().to_string()])));
    for c in children {
        ok(c.wait_with_output().unwrap());
    }
    let listed = ok(skiff(&data, &["ls", "-o", "json"]));
    let listed: Value = serde_json::from_str(&listed).unwrap();
    let mut tags: Vec<String> = listed
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|i| i["repoTags"].as_array().unwrap().clone())
        .map(|t| t.as_str().unwrap().to_string())
        .collect();
    tags.sort();
    assert_eq!(tags, (2..6).map(|i| format!("docker.io/library/app:{i}")).collect::<Vec<_>>());
    let layers = std::fs::read_dir(data.join("images/layers")).unwrap().count();
    assert_eq!(layers, 5, "one shared base + four own layers");
    assert!(std::fs::read_dir(data.join("images/tmp")).unwrap().next().is_none());
    // The server never noticed.
    assert_eq!(cluster.kubectl(&["get", "ns", "default", "-o", "name"]).ok().trim(), "namespace/default");
}

/// Import throughput of a ~200 MB single-layer image (run in release; see
/// docs/benchmarks.md for the command and the recorded numbers).
#[test]
#[ignore = "benchmark: run in release with --ignored --nocapture"]
fn bench_import_throughput() {
    require_root();
    let dir = std::env::var("BENCH_TMPDIR").unwrap_or_else(|_| "/var/tmp".into());
    let tmp = tempfile::tempdir_in(dir).unwrap();
    // 200 files of 1 MiB, pseudo-random (xorshift), so compression and caches do not flatter.
    let mut b = tar::Builder::new(Vec::new());
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
    let mut buf = vec![0u8; 1 << 20];
    for i in 0..200 {
        for chunk in buf.chunks_mut(8) {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            chunk.copy_from_slice(&x.to_le_bytes());
        }
        tar_entry(&mut b, &format!("data/f{i:03}"), tar::EntryType::Regular, 0o644, &buf, None);
    }
    let layer = b.into_inner().unwrap();
    let plain =
        write(tmp.path(), "plain.tar", &docker_archive(std::slice::from_ref(&layer), &["bench:plain"], &["sh"]));
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    gz.write_all(&layer).unwrap();
    let gz_layer = gz.finish().unwrap();
    let gzip =
        write(tmp.path(), "gzip.tar", &docker_archive_with(&[gz_layer], &[sha(&layer)], &["bench:gzip"], &["sh"]));
    let mb = layer.len() as f64 / 1e6;
    let layer_tar = write(tmp.path(), "layer.tar", &layer);
    // The floor to compare with: GNU tar extracting the same layer, flushed the same way.
    let mut times = Vec::new();
    for round in 0..3 {
        let dest = tmp.path().join(format!("tar-{round}"));
        std::fs::create_dir(&dest).unwrap();
        let t = Instant::now();
        let st = Command::new("tar")
            .args(["--xattrs", "--same-owner", "-xf"])
            .arg(&layer_tar)
            .arg("-C")
            .arg(&dest)
            .status()
            .unwrap();
        let synced = Command::new("sync").arg("-f").arg(&dest).status().unwrap();
        times.push(t.elapsed().as_secs_f64());
        assert!(st.success() && synced.success());
        std::fs::remove_dir_all(&dest).unwrap();
    }
    times.sort_by(f64::total_cmp);
    println!(
        "reference tar -x + sync -f: {mb:.0} MB in {:.2} s (median of 3) = {:.0} MB/s; runs: {times:?}",
        times[1],
        mb / times[1]
    );
    for (name, archive) in [("uncompressed layer", &plain), ("gzip layer", &gzip)] {
        let mut times = Vec::new();
        for round in 0..3 {
            let data = tmp.path().join(format!("data-{round}-{}", name.len()));
            // Cold page cache is not what we measure: the archive was just written.
            let t = Instant::now();
            ok(skiff(&data, &["import", archive.to_str().unwrap()]));
            times.push(t.elapsed().as_secs_f64());
            std::fs::remove_dir_all(&data).unwrap();
        }
        times.sort_by(f64::total_cmp);
        let median = times[1];
        println!(
            "import {name}: {mb:.0} MB of layer content in {median:.2} s (median of 3) = {:.0} MB/s; runs: {times:?}",
            mb / median
        );
    }
}
