//! The conformance cases.

use std::time::{Duration, Instant};

use super::env::Env;
use crate::cri::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lifecycle_and_exit_codes() {
    let env = Env::new();
    let pod = env.pod("life");
    let sb = env.rt.run_pod_sandbox(&pod).await.unwrap();
    let st = env.rt.pod_sandbox_status(&sb).await.unwrap();
    assert_eq!(st.state, SandboxState::Ready);
    assert_eq!(st.name, "life");

    let c = env.rt.create_container(&sb, &env.container("three", "exit 3"), &pod).await.unwrap();
    let s = env.rt.container_status(&c).await.unwrap();
    assert_eq!((s.state, s.started_at), (ContainerState::Created, 0));
    env.rt.start_container(&c).await.unwrap();
    let s = env.wait_exit(&c, Duration::from_secs(10)).await;
    assert_eq!((s.exit_code, s.reason.as_str()), (3, "Error"));
    assert!(s.started_at >= s.created_at && s.finished_at >= s.started_at && s.started_at > 0);
    // Starting twice is an error.
    assert!(env.rt.start_container(&c).await.is_err());

    let ok = env.rt.create_container(&sb, &env.container("ok", "true"), &pod).await.unwrap();
    env.rt.start_container(&ok).await.unwrap();
    let s = env.wait_exit(&ok, Duration::from_secs(10)).await;
    assert_eq!((s.exit_code, s.reason.as_str()), (0, "Completed"));

    let all = env.rt.list_containers(&ContainerFilter::default()).await.unwrap();
    assert_eq!(all.len(), 2);
    let exited = ContainerFilter { state: Some(ContainerState::Exited), ..Default::default() };
    assert_eq!(env.rt.list_containers(&exited).await.unwrap().len(), 2);

    env.rt.remove_container(&c).await.unwrap();
    env.rt.remove_container(&c).await.unwrap();
    assert!(matches!(env.rt.container_status(&c).await, Err(RuntimeError::NotFound { .. })));
    env.rt.stop_pod_sandbox(&sb).await.unwrap();
    assert_eq!(env.rt.pod_sandbox_status(&sb).await.unwrap().state, SandboxState::NotReady);
    env.rt.remove_pod_sandbox(&sb).await.unwrap();
    env.rt.remove_pod_sandbox(&sb).await.unwrap();
    assert!(env.rt.list_pod_sandboxes().await.unwrap().is_empty());
    assert!(env.rt.list_containers(&ContainerFilter::default()).await.unwrap().is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_missing_program_is_a_start_error() {
    let env = Env::new();
    let pod = env.pod("nope");
    let sb = env.rt.run_pod_sandbox(&pod).await.unwrap();
    let mut cfg = env.container("nope", "");
    cfg.command = vec!["/no/such/program".into()];
    let c = env.rt.create_container(&sb, &cfg, &pod).await.unwrap();
    let e = env.rt.start_container(&c).await.unwrap_err();
    assert!(matches!(e, RuntimeError::Start(_)), "{e}");
    let s = env.wait_exit(&c, Duration::from_secs(5)).await;
    assert_eq!((s.exit_code, s.reason.as_str()), (128, "StartError"));
    assert!(s.message.contains("/no/such/program"), "{}", s.message);
    // An unknown image fails at create.
    cfg.image = "missing:latest".into();
    assert!(env.rt.create_container(&sb, &cfg, &pod).await.is_err());
    env.rt.remove_pod_sandbox(&sb).await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn isolation_processes_filesystem_hostname() {
    let env = Env::new();
    let (st, log) = env
        .run_to_end(
            "iso",
            env.container(
                "iso",
                "echo pid=$$; ps -o pid,comm >/tmp/ps; wc -l </tmp/ps; hostname; ls /; cat /etc/hostname; ls /work 2>&1; ls /dev",
            ),
        )
        .await;
    assert_eq!(st.exit_code, 0, "{log}");
    assert!(log.contains("pid=1\n"), "{log}");
    // Header, sh and ps: nothing of the host. (Not `ps | wc`: ps may list the processes
    // before the shell has started wc.)
    assert!(log.contains("\n3\n"), "{log}");
    assert!(log.contains("iso\n"), "{log}");
    assert!(log.contains("No such file"), "host dirs are invisible: {log}");
    for dev in ["null", "zero", "urandom", "pts", "shm", "mqueue", "ptmx"] {
        assert!(log.contains(&format!("{dev}\n")), "/dev/{dev} missing: {log}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn logs_have_both_streams_and_partial_lines() {
    let env = Env::new();
    let (st, log) = env.run_to_end("logs", env.container("logs", "echo out; echo err >&2; printf 'no newline'")).await;
    assert_eq!(st.exit_code, 0);
    assert!(log.contains("out\n") && log.contains("err\n") && log.ends_with("no newline\n"), "{log}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stop_honours_the_grace_period() {
    let env = Env::new();
    // Handles TERM: exits 0 right away.
    let (_sb, polite) = env.run("polite", "trap 'exit 0' TERM; while true; do sleep 0.1; done").await;
    // PID 1 without a handler ignores TERM: killed after the grace period.
    let (_sb2, stubborn) = env.run("stubborn", "exec sleep 1000").await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let t = Instant::now();
    env.rt.stop_container(&polite, Duration::from_secs(10)).await.unwrap();
    assert!(t.elapsed() < Duration::from_secs(3), "{:?}", t.elapsed());
    let s = env.rt.container_status(&polite).await.unwrap();
    assert_eq!((s.state, s.exit_code), (ContainerState::Exited, 0));
    let t = Instant::now();
    env.rt.stop_container(&stubborn, Duration::from_secs(1)).await.unwrap();
    let took = t.elapsed();
    assert!(took >= Duration::from_secs(1) && took < Duration::from_secs(5), "{took:?}");
    let s = env.rt.container_status(&stubborn).await.unwrap();
    assert_eq!((s.exit_code, s.reason.as_str()), (137, "Error"));
    // Stopping an exited container is a no-op.
    env.rt.stop_container(&stubborn, Duration::from_secs(1)).await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn memory_hog_is_oom_killed() {
    let env = Env::new();
    let mut c = env.container("hog", "echo start; exec dd if=/dev/zero of=/dev/null bs=200M count=1");
    c.resources.memory_limit = Some(32 << 20);
    let (st, log) = env.run_to_end("hog", c).await;
    assert_eq!((st.exit_code, st.reason.as_str()), (137, "OOMKilled"), "{log}");
    assert!(log.starts_with("start\n"), "{log}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fork_bomb_is_held_by_the_pids_limit() {
    let env = Env::new();
    let mut c = env.container(
        "bomb",
        // The bomb runs in a subshell (ash exits when a fork fails); counting uses a glob, as a
        // fork for `$(...)` would fail at the limit.
        "( while true; do sleep 30 & done ) 2>/dev/null; set -- /proc/[0-9]*; echo procs=$#; kill -9 -1",
    );
    c.resources.pids_limit = Some(20);
    let (st, log) = env.run_to_end("bomb", c).await;
    let n: usize = log
        .lines()
        .find_map(|l| l.strip_prefix("procs="))
        .and_then(|n| n.trim().parse().ok())
        .unwrap_or_else(|| panic!("{st:?} {log}"));
    assert!(n > 5 && n <= 20, "{n} processes under a limit of 20: {log}");
    assert_eq!(st.exit_code, 0, "{log}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cpu_quota_holds() {
    let env = Env::new();
    let pod = env.pod("cpu");
    let sb = env.rt.run_pod_sandbox(&pod).await.unwrap();
    let mut c = env.container("cpu", "while true; do :; done");
    c.resources.cpu_quota = Some(20_000);
    c.resources.cpu_period = Some(100_000);
    c.resources.cpu_shares = Some(205);
    let id = env.rt.create_container(&sb, &c, &pod).await.unwrap();
    env.rt.start_container(&id).await.unwrap();
    let before = env.rt.container_stats(&id).await.unwrap();
    tokio::time::sleep(Duration::from_secs(2)).await;
    let after = env.rt.container_stats(&id).await.unwrap();
    let used = (after.cpu_usage_ns - before.cpu_usage_ns) as f64 / (after.timestamp - before.timestamp) as f64;
    assert!(used > 0.05 && used < 0.3, "used {used:.2} CPUs under a 0.2 quota");
    assert!(after.memory_working_set > 0);
    env.rt.remove_pod_sandbox(&sb).await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn exec_sync_and_streams() {
    let env = Env::new();
    let (sb, c) = env.run("exec", "echo ready; exec sleep 1000").await;
    let cmd = |s: &str| vec!["sh".to_string(), "-c".to_string(), s.to_string()];
    let r =
        env.rt.exec_sync(&c, &cmd("cat /etc/hostname; echo oops >&2; exit 4"), Duration::from_secs(10)).await.unwrap();
    assert_eq!((r.stdout.as_slice(), r.stderr.as_slice(), r.exit_code), (&b"exec\n"[..], &b"oops\n"[..], 4));
    // Same PID namespace as the container: its PID 1 is sleep.
    let r = env.rt.exec_sync(&c, &cmd("cat /proc/1/comm"), Duration::from_secs(10)).await.unwrap();
    assert_eq!(r.stdout, b"sleep\n");
    let e = env.rt.exec_sync(&c, &cmd("sleep 10"), Duration::from_millis(300)).await.unwrap_err();
    assert!(matches!(e, RuntimeError::Timeout(_)), "{e}");
    let r = env.rt.exec_sync(&c, &["/no/such".to_string()], Duration::from_secs(10)).await.unwrap();
    assert_eq!(r.exit_code, 127);

    // Streaming with stdin, no tty.
    let (mut input, stdin) = tokio::io::duplex(1024);
    let (stdout, mut out) = tokio::io::duplex(1024);
    let io = StreamIo {
        stdin: Some(Box::new(stdin)),
        stdout: Some(Box::new(stdout)),
        stderr: None,
        tty: false,
        resize: None,
    };
    let rt = env.rt.clone();
    let c2 = c.clone();
    let task = tokio::spawn(async move { rt.exec(&c2, &["tr".into(), "a-z".into(), "A-Z".into()], io).await });
    tokio::io::AsyncWriteExt::write_all(&mut input, b"hello\n").await.unwrap();
    drop(input);
    let code = task.await.unwrap().unwrap();
    let mut text = String::new();
    tokio::io::AsyncReadExt::read_to_string(&mut out, &mut text).await.unwrap();
    assert_eq!((code, text.as_str()), (0, "HELLO\n"));
    env.rt.remove_pod_sandbox(&sb).await.unwrap();
    // Exec into a gone container is an error.
    assert!(env.rt.exec_sync(&c, &cmd("true"), Duration::from_secs(1)).await.is_err());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn exec_with_a_tty_and_resize() {
    let env = Env::new();
    let (sb, c) = env.run("tty", "exec sleep 1000").await;
    let (mut input, stdin) = tokio::io::duplex(1024);
    let (stdout, mut out) = tokio::io::duplex(64 * 1024);
    let (resize_tx, resize) = tokio::sync::mpsc::channel(4);
    resize_tx.send(TerminalSize { width: 123, height: 45 }).await.unwrap();
    let io = StreamIo {
        stdin: Some(Box::new(stdin)),
        stdout: Some(Box::new(stdout)),
        stderr: None,
        tty: true,
        resize: Some(resize),
    };
    let rt = env.rt.clone();
    let c2 = c.clone();
    let task = tokio::spawn(async move { rt.exec(&c2, &["sh".into()], io).await });
    tokio::time::sleep(Duration::from_millis(300)).await;
    tokio::io::AsyncWriteExt::write_all(&mut input, b"tty; stty size; exit 7\n").await.unwrap();
    let code = tokio::time::timeout(Duration::from_secs(10), task).await.unwrap().unwrap().unwrap();
    let mut text = String::new();
    let _ = tokio::time::timeout(Duration::from_secs(2), tokio::io::AsyncReadExt::read_to_string(&mut out, &mut text))
        .await;
    assert_eq!(code, 7, "{text}");
    assert!(text.contains("/dev/pts/0"), "{text:?}");
    assert!(text.contains("45 123"), "{text:?}");
    env.rt.remove_pod_sandbox(&sb).await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn attach_to_stdin_and_stdout() {
    let env = Env::new();
    let pod = env.pod("attach");
    let sb = env.rt.run_pod_sandbox(&pod).await.unwrap();
    let mut cfg = env.container("attach", "while read line; do echo got:$line; done; echo bye");
    cfg.stdin = true;
    cfg.stdin_once = true;
    let c = env.rt.create_container(&sb, &cfg, &pod).await.unwrap();
    env.rt.start_container(&c).await.unwrap();
    let (mut input, stdin) = tokio::io::duplex(1024);
    let (stdout, mut out) = tokio::io::duplex(1024);
    let io = StreamIo {
        stdin: Some(Box::new(stdin)),
        stdout: Some(Box::new(stdout)),
        stderr: None,
        tty: false,
        resize: None,
    };
    let rt = env.rt.clone();
    let c2 = c.clone();
    let task = tokio::spawn(async move { rt.attach(&c2, io).await });
    tokio::io::AsyncWriteExt::write_all(&mut input, b"one\ntwo\n").await.unwrap();
    // stdinOnce: closing our stdin closes the container's.
    drop(input);
    tokio::time::timeout(Duration::from_secs(10), task).await.unwrap().unwrap().unwrap();
    let mut text = String::new();
    tokio::io::AsyncReadExt::read_to_string(&mut out, &mut text).await.unwrap();
    assert_eq!(text, "got:one\ngot:two\nbye\n");
    let s = env.wait_exit(&c, Duration::from_secs(5)).await;
    assert_eq!(s.exit_code, 0);
    assert_eq!(env.logs(&c).await, "got:one\ngot:two\nbye\n");
    env.rt.remove_pod_sandbox(&sb).await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn port_forward_reaches_the_pod() {
    let env = Env::new();
    let (sb, _c) =
        env.run("web", "mkdir -p /www && echo hello-from-pod > /www/index.html && exec httpd -f -p 8080 -h /www").await;
    let mut last = None;
    for _ in 0..50 {
        match env.rt.port_forward(&sb, 8080).await {
            Ok(mut s) => {
                tokio::io::AsyncWriteExt::write_all(&mut s, b"GET / HTTP/1.0\r\n\r\n").await.unwrap();
                let mut text = String::new();
                tokio::io::AsyncReadExt::read_to_string(&mut s, &mut text).await.unwrap();
                assert!(text.contains("hello-from-pod"), "{text}");
                last = None;
                break;
            }
            Err(e) => last = Some(e),
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(last.is_none(), "{last:?}");
    // Nothing listens on another port.
    assert!(env.rt.port_forward(&sb, 8081).await.is_err());
    env.rt.remove_pod_sandbox(&sb).await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pods_get_addresses_and_reach_each_other() {
    let env = Env::new();
    let (a, _) = env.run("a", "exec sleep 1000").await;
    let (b, cb) = env.run("b", "exec sleep 1000").await;
    let ip_a = env.rt.pod_sandbox_status(&a).await.unwrap().ips[0];
    let ip_b = env.rt.pod_sandbox_status(&b).await.unwrap().ips[0];
    assert_ne!(ip_a, ip_b);
    let prefix = env.config.pod_cidr.trim_end_matches("0/24");
    assert!(ip_a.to_string().starts_with(prefix), "{ip_a} in {}", env.config.pod_cidr);
    let sh = |s: String| vec!["sh".to_string(), "-c".to_string(), s];
    let r = env
        .rt
        .exec_sync(
            &cb,
            &sh(format!("ip -o -4 addr show eth0; ip route; ping -c 1 -W 3 {ip_a}; grep b /etc/hosts")),
            Duration::from_secs(15),
        )
        .await
        .unwrap();
    let out = String::from_utf8_lossy(&r.stdout);
    assert_eq!(r.exit_code, 0, "{out} {}", String::from_utf8_lossy(&r.stderr));
    assert!(out.contains(&format!("inet {ip_b}/24")), "{out}");
    assert!(out.contains("default via"), "{out}");
    assert!(out.contains(&format!("{ip_b}\tb")), "{out}");
    // The bridge (the pods' gateway) has a fixed hardware address, derived from its IPv4
    // address, that ports coming and going do not change.
    let gateway: std::net::Ipv4Addr = format!("{prefix}1").parse().unwrap();
    let want = gateway.octets().iter().fold("0a:58".to_string(), |s, b| format!("{s}:{b:02x}"));
    let bridge_mac = || std::fs::read_to_string(format!("/sys/class/net/{}/address", env.config.bridge)).unwrap();
    assert_eq!(bridge_mac().trim(), want);
    env.rt.remove_pod_sandbox(&a).await.unwrap();
    assert_eq!(bridge_mac().trim(), want);
    // The address is released and reused only after the others (round robin).
    let (c, _) = env.run("c", "exec sleep 1000").await;
    let ip_c = env.rt.pod_sandbox_status(&c).await.unwrap().ips[0];
    assert_ne!(ip_c, ip_b);
    assert_eq!(bridge_mac().trim(), want);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn host_network_pod_sees_the_host_links() {
    let env = Env::new();
    let mut pod = env.pod("hostnet");
    pod.namespaces.host_network = true;
    let sb = env.rt.run_pod_sandbox(&pod).await.unwrap();
    assert!(env.rt.pod_sandbox_status(&sb).await.unwrap().ips.is_empty());
    let c = env.rt.create_container(&sb, &env.container("h", "ls /sys/class/net; hostname"), &pod).await.unwrap();
    env.rt.start_container(&c).await.unwrap();
    env.wait_exit(&c, Duration::from_secs(10)).await;
    let log = env.logs(&c).await;
    let host = nix::unistd::gethostname().unwrap().to_string_lossy().into_owned();
    assert!(log.contains(&env.config.bridge) || log.contains("lo\n"), "{log}");
    assert!(log.lines().any(|l| l == host), "{log}");
    env.rt.remove_pod_sandbox(&sb).await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn overlay_whiteouts_hide_deleted_files() {
    let env = Env::new();
    let base = env.dir.join("images/layer-base");
    let top = env.dir.join("images/layer-top");
    for d in [&base, &top] {
        std::fs::create_dir_all(d.join("data")).unwrap();
    }
    std::fs::write(base.join("data/gone"), "x").unwrap();
    std::fs::write(base.join("data/kept"), "kept-content").unwrap();
    // The top layer deletes data/gone: an overlayfs whiteout is a 0/0 character device.
    nix::sys::stat::mknod(
        &top.join("data/gone"),
        nix::sys::stat::SFlag::S_IFCHR,
        nix::sys::stat::Mode::from_bits_truncate(0o600),
        nix::sys::stat::makedev(0, 0),
    )
    .unwrap();
    std::fs::write(top.join("data/new"), "new").unwrap();
    let busybox = env.dir.join("images/busybox");
    env.image("layered", vec![top, base, busybox], ImageConfig::default());
    let mut c = env.container("wh", "ls /data; cat /data/kept; echo; rm /data/kept; ls /data");
    c.image = "layered".into();
    let (st, log) = env.run_to_end("wh", c).await;
    assert_eq!(st.exit_code, 0, "{log}");
    assert_eq!(log, "kept\nnew\nkept-content\nnew\n");
    // The container's delete went to its own upper dir, not the shared layer.
    assert!(env.dir.join("images/layer-base/data/kept").exists());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn security_context_user_caps_readonly_masks() {
    let env = Env::new();
    let mut c = env.container(
        "sec",
        "id -u; id -g; id -G; grep CapEff /proc/self/status; touch /x 2>&1 | head -c 40; echo; touch /proc/sys/x 2>&1 | head -c 5; echo",
    );
    c.security.run_as_username = Some("app".into());
    c.security.supplemental_groups = vec![42];
    c.security.readonly_rootfs = true;
    let (st, log) = env.run_to_end("sec", c).await;
    assert_eq!(st.exit_code, 0, "{log}");
    let lines: Vec<&str> = log.lines().filter(|l| !l.is_empty()).collect();
    assert_eq!(&lines[..3], &["1000", "1000", "1000 10 42"], "{log}");
    // Non-root: no effective capabilities.
    assert_eq!(lines[3], "CapEff:\t0000000000000000", "{log}");
    assert!(lines[4].contains("Read-only file system"), "{log}");
    assert_eq!(lines[5], "touch", "{log}");

    // Root with the default set, then with everything dropped but one.
    let c = env.container("caps", "grep CapEff /proc/self/status; wc -c < /proc/timer_list; ls /sys/firmware | wc -l");
    let (_, log) = env.run_to_end("caps", c).await;
    // /proc/timer_list and /sys/firmware are masked (empty).
    assert_eq!(log, "CapEff:\t00000000a80425fb\n0\n0\n");
    let mut c = env.container("caps2", "grep CapEff /proc/self/status; grep NoNewPrivs /proc/self/status");
    c.security.capabilities_drop = vec!["ALL".into()];
    c.security.capabilities_add = vec!["NET_BIND_SERVICE".into()];
    c.security.no_new_privileges = true;
    let (_, log) = env.run_to_end("caps2", c).await;
    assert_eq!(log, "CapEff:\t0000000000000400\nNoNewPrivs:\t1\n");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn runtime_default_seccomp_blocks_namespace_creation() {
    let env = Env::new();
    let script = "unshare -U true 2>/dev/null && echo allowed || echo denied";
    let (_, log) = env.run_to_end("sc1", env.container("sc1", script)).await;
    assert_eq!(log, "denied\n");
    let mut c = env.container("sc2", script);
    c.security.seccomp = SeccompProfile::Unconfined;
    let (_, log) = env.run_to_end("sc2", c).await;
    assert_eq!(log, "allowed\n");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mounts_env_workdir_and_args() {
    let env = Env::new();
    let host = env.dir.join("hostdata");
    std::fs::create_dir_all(&host).unwrap();
    std::fs::write(host.join("f"), "from-host").unwrap();
    let mut c = env.container("m", "");
    c.command = vec![];
    c.args = vec!["sh".into(), "-c".into(), "pwd; echo $FOO; cat /data/f; echo; touch /data/g 2>&1 | head -c 5; echo; df /scratch | tail -1 | awk '{print $1}'".into()];
    c.working_dir = Some("/work/dir".into());
    c.env = vec![("FOO".into(), "bar".into())];
    c.mounts = vec![
        Mount {
            container_path: "/data".into(),
            host_path: Some(host.clone()),
            readonly: true,
            tmpfs: None,
            propagation: Propagation::Private,
        },
        Mount {
            container_path: "/scratch".into(),
            host_path: None,
            readonly: false,
            tmpfs: Some(1 << 20),
            propagation: Propagation::Private,
        },
    ];
    let (st, log) = env.run_to_end("m", c).await;
    assert_eq!(st.exit_code, 0, "{log}");
    assert_eq!(log, "/work/dir\nbar\nfrom-host\ntouch\ntmpfs\n");
}

/// Set in the child process of [`containers_survive_kill_9_and_are_readopted`].
const OWNER_ENV: &str = "SKIFF_CONFORMANCE_OWNER";

/// Not a test on its own: the body of the child process that owns a runtime in
/// [`containers_survive_kill_9_and_are_readopted`] (does nothing unless `OWNER_ENV` is set).
#[test]
fn readoption_owner_process() {
    let Ok(spec) = std::env::var(OWNER_ENV) else { return };
    let (dir, cidr) = spec.split_once('|').unwrap();
    let rt = tokio::runtime::Runtime::new().unwrap();
    let images = std::sync::Arc::new(crate::linux::StaticImages::new());
    images.insert(
        super::env::BUSYBOX,
        vec![std::path::Path::new(dir).join("images/busybox")],
        ImageConfig { env: vec!["PATH=/bin".into()], ..Default::default() },
    );
    let mut config = crate::linux::LinuxRuntimeConfig::new(dir);
    config.shim = crate::linux::test_shim::command();
    config.pod_cidr = cidr.into();
    let runtime = crate::linux::LinuxRuntime::new(config, images.clone(), Some(images)).unwrap();
    rt.block_on(async {
        let pod = PodSandboxConfig {
            name: "owned".into(),
            uid: "u1".into(),
            hostname: "owned".into(),
            log_directory: std::path::Path::new(dir).join("logs/owned"),
            ..Default::default()
        };
        let sb = runtime.run_pod_sandbox(&pod).await.unwrap();
        let c = ContainerConfig {
            name: "sleeper".into(),
            image: super::env::BUSYBOX.into(),
            command: vec!["sh".into(), "-c".into(), "echo started; exec sleep 1000".into()],
            log_path: "sleeper/0.log".into(),
            ..Default::default()
        };
        let id = runtime.create_container(&sb, &c, &pod).await.unwrap();
        runtime.start_container(&id).await.unwrap();
        println!("ids {sb} {id}");
    });
    loop {
        std::thread::sleep(Duration::from_secs(60));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn containers_survive_kill_9_and_are_readopted() {
    use tokio::io::AsyncBufReadExt;
    let env = Env::new();
    let mut child = tokio::process::Command::new(std::env::current_exe().unwrap())
        .args(["--exact", "conformance::cases::readoption_owner_process", "--nocapture", "--test-threads=1"])
        .env(OWNER_ENV, format!("{}|{}", env.dir.display(), env.config.pod_cidr))
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let mut lines = tokio::io::BufReader::new(child.stdout.take().unwrap()).lines();
    let ids = tokio::time::timeout(Duration::from_secs(30), async {
        while let Some(l) = lines.next_line().await.unwrap() {
            // libtest prints "test … ... " before our output on the same line.
            if let Some((_, ids)) = l.split_once("ids ") {
                return ids.trim().to_string();
            }
        }
        panic!("the owner process ended without creating its container");
    })
    .await
    .unwrap();
    let (sb, c) = ids.split_once(' ').unwrap();
    // kill -9 the process that owns the runtime.
    child.start_kill().unwrap();
    child.wait().await.unwrap();

    // A new runtime on the same state dir finds the container still running…
    let rt = crate::linux::LinuxRuntime::new(env.config.clone(), env.images.clone(), Some(env.images.clone())).unwrap();
    tokio::time::sleep(Duration::from_millis(200)).await;
    let s = rt.container_status(c).await.unwrap();
    assert_eq!(s.state, ContainerState::Running, "{s:?}");
    assert_eq!(rt.list_containers(&ContainerFilter::default()).await.unwrap().len(), 1, "no duplicates");
    assert_eq!(rt.pod_sandbox_status(sb).await.unwrap().state, SandboxState::Ready);
    // …and fully manageable: exec, logs, stop with the exit recorded, remove.
    let r = rt.exec_sync(c, &["cat".into(), "/proc/1/comm".into()], Duration::from_secs(10)).await.unwrap();
    assert_eq!(r.stdout, b"sleep\n");
    assert_eq!(env.logs(c).await, "started\n");
    rt.stop_container(c, Duration::ZERO).await.unwrap();
    let s = rt.container_status(c).await.unwrap();
    assert_eq!((s.state, s.exit_code), (ContainerState::Exited, 137));
    rt.remove_pod_sandbox(sb).await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cni_bridge_and_host_local_plugins() {
    const CNI_BIN: &str = "/usr/lib/cni";
    assert!(
        std::path::Path::new(CNI_BIN).join("bridge").exists(),
        "needs Debian's containernetworking-plugins in {CNI_BIN}"
    );
    let mut bridge = String::new();
    let mut subnet = String::new();
    let env = Env::with(|c| {
        let n = c.data_dir.to_string_lossy().bytes().fold(7u32, |h, b| h.wrapping_mul(31).wrapping_add(b.into()));
        bridge = format!("cni{:08x}", n);
        subnet = format!("10.{}.{}.0/24", 150 + n % 50, (n >> 8) % 256);
        let conf = c.data_dir.join("cni/conf");
        std::fs::create_dir_all(&conf).unwrap();
        let list = serde_json::json!({
            "cniVersion": "1.0.0",
            "name": "skiff-conformance",
            "plugins": [{
                "type": "bridge",
                "bridge": bridge,
                "isGateway": true,
                "ipMasq": false,
                "ipam": {
                    "type": "host-local",
                    "ranges": [[{ "subnet": subnet }]],
                    "dataDir": c.data_dir.join("cni/ipam"),
                }
            }]
        });
        std::fs::write(conf.join("10-test.conflist"), list.to_string()).unwrap();
        c.cni_bin_dir = Some(CNI_BIN.into());
        c.cni_conf_dir = Some(conf);
    });
    struct DeleteBridge(String);
    impl Drop for DeleteBridge {
        fn drop(&mut self) {
            let _ = std::process::Command::new("ip").args(["link", "del", &self.0]).status();
        }
    }
    let _bridge = DeleteBridge(bridge.clone());
    let (a, _) = env.run("cni-a", "exec sleep 1000").await;
    let (b, cb) = env.run("cni-b", "exec sleep 1000").await;
    let ip_a = env.rt.pod_sandbox_status(&a).await.unwrap().ips[0];
    let ip_b = env.rt.pod_sandbox_status(&b).await.unwrap().ips[0];
    let prefix = subnet.trim_end_matches("0/24");
    assert!(ip_a.to_string().starts_with(prefix) && ip_b.to_string().starts_with(prefix), "{ip_a} {ip_b} {subnet}");
    assert!(std::path::Path::new("/sys/class/net").join(&bridge).exists());
    let r = env
        .rt
        .exec_sync(
            &cb,
            &["sh".into(), "-c".into(), format!("ping -c 1 -W 3 {ip_a} && ip link show lo | grep -c UP")],
            Duration::from_secs(15),
        )
        .await
        .unwrap();
    assert_eq!(r.exit_code, 0, "{}", String::from_utf8_lossy(&r.stdout));
    env.rt.remove_pod_sandbox(&a).await.unwrap();
    env.rt.remove_pod_sandbox(&b).await.unwrap();
    // CNI DEL released both addresses.
    let left: Vec<_> = std::fs::read_dir(env.dir.join("cni/ipam/skiff-conformance"))
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.parse::<std::net::IpAddr>().is_ok())
        .collect();
    assert!(left.is_empty(), "{left:?}");
}

/// The image store end to end: a two-layer image (the top layer deletes a file and a whole
/// directory with OCI whiteouts) imported into the store runs as a container; the image is
/// pinned while the container exists, and a stale pin is released on restart.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn store_images_run_and_stay_pinned_while_used() {
    use crate::image::ImportOptions;
    use crate::image::testutil::{Layer, TestImage};
    let env = Env::with_store();
    let rootfs = env.dir.join("images/busybox");
    let mut busybox = tar::Builder::new(Vec::new());
    busybox.follow_symlinks(false);
    busybox.append_dir_all(".", &rootfs).unwrap();
    let busybox = busybox.into_inner().unwrap();
    let base = Layer::new()
        .dir("data", 0o755)
        .file("data/gone", b"x")
        .file("data/kept", b"kept-content")
        .dir("data/olddir", 0o755)
        .file("data/olddir/f", b"old")
        .build();
    let top = Layer::new()
        .file("data/.wh.gone", b"")
        .dir("data/olddir", 0o755)
        .file("data/olddir/.wh..wh..opq", b"")
        .file("data/olddir/g", b"new")
        .build();
    let img = TestImage::new(&[busybox, base, top], true);
    let archive = env.dir.join("img.tar");
    std::fs::write(&archive, img.oci_archive(Some("conformance.local/layered:1"))).unwrap();
    let store = crate::ImageStore::open(&env.dir).unwrap();
    store.import(&archive, &ImportOptions::default(), None).unwrap();

    let pod = env.pod("st");
    let sb = env.rt.run_pod_sandbox(&pod).await.unwrap();
    let mut c = env.container("st", "ls /data /data/olddir; cat /data/kept; echo; echo $PATH");
    c.image = "conformance.local/layered:1".into();
    let id = env.rt.create_container(&sb, &c, &pod).await.unwrap();
    assert_eq!(env.rt.container_status(&id).await.unwrap().image_ref, img.id());
    // Pinned: neither the CRI nor the store removes it while the container exists.
    let err = env.rt.remove_image("conformance.local/layered:1").await.unwrap_err();
    assert!(err.to_string().contains("in use"), "{err}");
    assert!(store.remove("conformance.local/layered:1").is_err());
    env.rt.start_container(&id).await.unwrap();
    let st = env.wait_exit(&id, Duration::from_secs(30)).await;
    let log = env.logs(&id).await;
    assert_eq!(st.exit_code, 0, "{log}");
    assert_eq!(
        log,
        "/data:\nkept\nolddir\n\n/data/olddir:\ng\nkept-content\n\
         /usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin\n"
    );
    env.rt.remove_container(&id).await.unwrap();
    assert!(store.pins().unwrap().is_empty(), "removal releases the pin");

    // A pin whose container is gone (say, skiff died between removing the container and
    // releasing the pin) is released when the runtime starts again; live ones are kept.
    let id = env.rt.create_container(&sb, &c, &pod).await.unwrap();
    store.pin("conformance.local/layered:1", "0123abcd").unwrap();
    let _again = crate::linux::LinuxRuntime::new(env.config.clone(), std::sync::Arc::new(store.clone()), None).unwrap();
    assert_eq!(store.pins().unwrap().into_keys().collect::<Vec<_>>(), vec![id]);
    env.rt.remove_pod_sandbox(&sb).await.unwrap();
    env.rt.remove_image("conformance.local/layered:1").await.unwrap();
    assert!(env.rt.list_images().await.unwrap().is_empty());
}

/// `shareProcessNamespace`: the pod's containers see each other's processes, PID 1 is the
/// pod's init (not a container), and removing the pod ends every process in it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shared_process_namespace() {
    let env = Env::new();
    let mut pod = env.pod("shared");
    pod.namespaces.share_process_namespace = true;
    let sb = env.rt.run_pod_sandbox(&pod).await.unwrap();
    let a = env.rt.create_container(&sb, &env.container("a", "exec sleep 7301"), &pod).await.unwrap();
    env.rt.start_container(&a).await.unwrap();
    let b = env.rt.create_container(&sb, &env.container("b", "exec sleep 7302"), &pod).await.unwrap();
    env.rt.start_container(&b).await.unwrap();
    let ps = "for p in /proc/[0-9]*; do echo $(basename $p) $(cat $p/cmdline | tr '\\0' ' '); done";
    let r = env.rt.exec_sync(&b, &["sh".into(), "-c".into(), ps.into()], Duration::from_secs(10)).await.unwrap();
    let out = String::from_utf8_lossy(&r.stdout).into_owned();
    assert_eq!(r.exit_code, 0, "{out}");
    assert!(out.contains("sleep 7301") && out.contains("sleep 7302"), "b sees a's process:\n{out}");
    let pid1 = out.lines().find(|l| l.starts_with("1 ")).unwrap_or_default();
    assert!(pid1.contains("pod-init"), "PID 1 is the pod init: {pid1:?}\n{out}");
    // A process a container leaves behind is reaped by the pod init, not left a zombie.
    let r = env
        .rt
        .exec_sync(&a, &["sh".into(), "-c".into(), "sleep 0.2 & exit 0".into()], Duration::from_secs(10))
        .await
        .unwrap();
    assert_eq!(r.exit_code, 0);
    tokio::time::sleep(Duration::from_millis(600)).await;
    let zombies = "grep -l '^State:.*Z' /proc/[0-9]*/status | wc -l";
    let r = env.rt.exec_sync(&b, &["sh".into(), "-c".into(), zombies.into()], Duration::from_secs(10)).await.unwrap();
    assert_eq!(String::from_utf8_lossy(&r.stdout).trim(), "0");
    // Without shareProcessNamespace a container sees only its own.
    let (other, oc) = env.run("alone", "exec sleep 7303").await;
    let r = env.rt.exec_sync(&oc, &["sh".into(), "-c".into(), ps.into()], Duration::from_secs(10)).await.unwrap();
    let out = String::from_utf8_lossy(&r.stdout).into_owned();
    assert!(!out.contains("sleep 7301") && out.contains("sleep 7303"), "{out}");
    env.rt.remove_pod_sandbox(&other).await.unwrap();
    env.rt.remove_pod_sandbox(&sb).await.unwrap();
    let left = std::process::Command::new("pgrep").args(["-f", "sleep 730[12]"]).output().unwrap();
    assert!(left.stdout.is_empty(), "processes left: {}", String::from_utf8_lossy(&left.stdout));
    // hostPID and a shared namespace contradict each other.
    pod.namespaces.host_pid = true;
    assert!(env.rt.run_pod_sandbox(&pod).await.is_err());
}
