use super::*;

const T0: i64 = 1_700_000_000_000_000_000;

fn ts(offset_ms: i64) -> String {
    let t = jiff::Timestamp::from_nanosecond(i128::from(T0 + offset_ms * 1_000_000)).unwrap();
    let nanos = t.subsec_nanosecond();
    format!("{}.{nanos:09}Z", t.strftime("%Y-%m-%dT%H:%M:%S"))
}

fn rec(offset_ms: i64, stream: &str, tag: &str, content: &str) -> String {
    format!("{} {stream} {tag} {content}\n", ts(offset_ms))
}

async fn read(path: &Path, opts: &LogOptions) -> String {
    let mut out = Vec::new();
    read_logs(path, opts, &mut out, async {}).await.unwrap();
    String::from_utf8(out).unwrap()
}

#[test]
fn parses_records() {
    let r = parse_record(b"2016-10-06T00:17:09.669794202Z stdout F hello world\n").unwrap();
    assert_eq!(
        (r.time, r.stream, r.partial, r.content),
        ("2016-10-06T00:17:09.669794202Z", "stdout", false, &b"hello world"[..])
    );
    let r = parse_record(b"2016-10-06T00:17:09Z stderr P ").unwrap();
    assert!(r.partial && r.content.is_empty());
    assert!(parse_record(b"2016 stdin F x").is_none());
    assert!(parse_record(b"2016 stdout X x").is_none());
    assert!(parse_record(b"garbage").is_none());
}

#[test]
fn formats_times_like_go_rfc3339nano() {
    assert_eq!(format_time("2016-10-06T00:17:09.669794202Z"), "2016-10-06T00:17:09.669794202Z");
    assert_eq!(format_time("2016-10-06T00:17:09.669000000Z"), "2016-10-06T00:17:09.669Z");
    assert_eq!(format_time("2016-10-06T00:17:09.000000000Z"), "2016-10-06T00:17:09Z");
    assert_eq!(format_time("not a time"), "not a time");
}

#[test]
fn parses_options_and_rejects_bad_ones() {
    let o = LogOptions::parse(Some("follow=true&tailLines=5&timestamps=1&limitBytes=10&previous=true"), T0).unwrap();
    assert_eq!(
        o,
        LogOptions {
            follow: true,
            previous: true,
            tail: Some(5),
            since: None,
            timestamps: true,
            limit_bytes: Some(10)
        }
    );
    let o = LogOptions::parse(Some("sinceSeconds=10"), T0).unwrap();
    assert_eq!(o.since, Some(T0 - 10_000_000_000));
    let o = LogOptions::parse(Some("sinceTime=2023-11-14T22%3A13%3A20Z"), T0).unwrap();
    assert_eq!(o.since, Some(T0));
    for bad in [
        "tailLines=-1",
        "limitBytes=0",
        "sinceSeconds=0",
        "follow=maybe",
        "sinceTime=yesterday",
        "sinceSeconds=1&sinceTime=2023-11-14T22:13:20Z",
    ] {
        assert!(LogOptions::parse(Some(bad), T0).is_err(), "{bad}");
    }
}

#[tokio::test]
async fn joins_partials_filters_and_prefixes() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("0.log");
    let content = [
        rec(0, "stdout", "F", "one"),
        rec(1000, "stderr", "F", "err"),
        rec(1001, "stdout", "P", "tw"),
        rec(1002, "stdout", "F", "o"),
        "garbage line\n".to_string(),
        rec(2000, "stdout", "F", "three"),
    ]
    .concat();
    std::fs::write(&p, content).unwrap();
    assert_eq!(read(&p, &LogOptions::default()).await, "one\nerr\ntwo\nthree\n");
    let o = LogOptions { timestamps: true, ..Default::default() };
    let got = read(&p, &o).await;
    let first = got.lines().next().unwrap();
    assert_eq!(first, format!("{} one", format_time(&ts(0))));
    assert!(
        got.contains(&format!("{} two", format_time(&ts(1001)))),
        "a joined line has its first record's time: {got}"
    );
    let o = LogOptions { since: Some(T0 + 1_500_000_000), ..Default::default() };
    assert_eq!(read(&p, &o).await, "three\n");
    let o = LogOptions { limit_bytes: Some(6), ..Default::default() };
    assert_eq!(read(&p, &o).await, "one\ner");
    // Records of the two streams are written in file order, as upstream does.
    let q = dir.path().join("1.log");
    std::fs::write(&q, [rec(0, "stdout", "P", "a"), rec(1, "stderr", "F", "E"), rec(2, "stdout", "F", "b")].concat())
        .unwrap();
    assert_eq!(read(&q, &LogOptions::default()).await, "aE\nb\n");
    let o = LogOptions { tail: Some(2), ..Default::default() };
    assert_eq!(read(&p, &o).await, "two\nthree\n", "tail counts joined lines");
    let o = LogOptions { tail: Some(0), ..Default::default() };
    assert_eq!(read(&p, &o).await, "");
    let missing = dir.path().join("nope.log");
    let mut out = Vec::new();
    assert!(matches!(
        read_logs(&missing, &LogOptions::default(), &mut out, async {}).await,
        Err(LogError::NotFound(_))
    ));
}

#[tokio::test]
async fn tail_reaches_into_rotated_files() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("0.log");
    let old = dir.path().join("0.log.20231114-221300");
    let older = dir.path().join("0.log.20231114-221200");
    std::fs::write(&older, [rec(0, "stdout", "F", "a"), rec(1, "stdout", "F", "b")].concat()).unwrap();
    std::fs::write(&old, [rec(2, "stdout", "F", "c"), rec(3, "stdout", "P", "d")].concat()).unwrap();
    std::fs::write(&p, [rec(4, "stdout", "F", "e"), rec(5, "stdout", "F", "f")].concat()).unwrap();
    let set_mtime = |f: &Path, secs: i64| {
        let t = std::time::UNIX_EPOCH + Duration::from_secs(secs as u64);
        std::fs::File::options().write(true).open(f).unwrap().set_modified(t).unwrap();
    };
    set_mtime(&older, 1_000);
    set_mtime(&old, 2_000);
    assert_eq!(rotated_files(&p), vec![older.clone(), old.clone()]);
    assert_eq!(read(&p, &LogOptions::default()).await, "a\nb\nc\nde\nf\n");
    let tail = |n| LogOptions { tail: Some(n), ..Default::default() };
    assert_eq!(read(&p, &tail(2)).await, "de\nf\n", "the P record of the rotated file starts the line");
    assert_eq!(read(&p, &tail(3)).await, "c\nde\nf\n");
    assert_eq!(read(&p, &tail(100)).await, "a\nb\nc\nde\nf\n");
}

#[tokio::test]
async fn follow_reads_new_records_and_rotation_until_exit() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("0.log");
    std::fs::write(&p, rec(0, "stdout", "F", "first")).unwrap();
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    let (mut w, mut r) = tokio::io::duplex(4096);
    let path = p.clone();
    let reader = tokio::spawn(async move {
        let o = LogOptions { follow: true, ..Default::default() };
        read_logs(&path, &o, &mut w, async {
            let _ = rx.await;
        })
        .await
    });
    let mut got = Vec::new();
    async fn read_until(r: &mut tokio::io::DuplexStream, got: &mut Vec<u8>, want: &str) {
        let mut buf = [0u8; 64];
        while !String::from_utf8_lossy(got).contains(want) {
            let n = tokio::time::timeout(Duration::from_secs(5), tokio::io::AsyncReadExt::read(r, &mut buf))
                .await
                .expect("output in time")
                .unwrap();
            got.extend_from_slice(&buf[..n]);
        }
    }
    read_until(&mut r, &mut got, "first\n").await;
    // Appended, including a record written in two pieces.
    let mut f = std::fs::OpenOptions::new().append(true).open(&p).unwrap();
    use std::io::Write;
    let second = rec(1, "stdout", "F", "second");
    f.write_all(&second.as_bytes()[..10]).unwrap();
    f.flush().unwrap();
    tokio::time::sleep(Duration::from_millis(150)).await;
    f.write_all(&second.as_bytes()[10..]).unwrap();
    read_until(&mut r, &mut got, "second\n").await;
    // Rotated: the old file gets a last record, then a new file appears.
    f.write_all(rec(2, "stdout", "F", "last-in-old").as_bytes()).unwrap();
    std::fs::rename(&p, dir.path().join("0.log.20231114-221300")).unwrap();
    std::fs::write(&p, rec(3, "stdout", "F", "in-new")).unwrap();
    read_until(&mut r, &mut got, "in-new\n").await;
    tx.send(()).unwrap();
    let written = reader.await.unwrap().unwrap();
    let out = String::from_utf8(got).unwrap();
    assert_eq!(out, "first\nsecond\nlast-in-old\nin-new\n");
    assert_eq!(written, out.len() as u64);
}

#[test]
fn reasons_for_missing_logs() {
    let pod: k8s_openapi::api::core::v1::Pod = serde_json::from_value(serde_json::json!({
        "metadata": {"name": "p", "namespace": "default"},
        "status": {"containerStatuses": [
            {"name": "c", "ready": false, "restartCount": 0, "image": "i", "imageID": "",
             "state": {"waiting": {"reason": "ContainerCreating"}}},
            {"name": "pull", "ready": false, "restartCount": 0, "image": "i", "imageID": "",
             "state": {"waiting": {"reason": "ImagePullBackOff"}}},
        ]}
    }))
    .unwrap();
    assert_eq!(no_logs_reason(&pod, "c", false), "container \"c\" in pod \"p\" is waiting to start: ContainerCreating");
    assert_eq!(
        no_logs_reason(&pod, "pull", false),
        "container \"pull\" in pod \"p\" is waiting to start: trying and failing to pull image"
    );
    assert_eq!(no_logs_reason(&pod, "c", true), "previous terminated container \"c\" in pod \"p\" not found");
    assert_eq!(no_logs_reason(&pod, "x", false), "container \"x\" in pod \"p\" is waiting to start - no logs yet");
}
