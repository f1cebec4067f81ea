use std::sync::atomic::{AtomicI64, Ordering};

use super::*;

static CLOCK: AtomicI64 = AtomicI64::new(1_475_713_029_669_794_202);

fn tick() -> i64 {
    CLOCK.fetch_add(1_000_000_000, Ordering::Relaxed)
}

fn writer(path: &Path, max_size: u64, max_files: u32) -> LogWriter {
    let mut w = LogWriter::open(Some(path), max_size, max_files).unwrap();
    w.clock = tick;
    w
}

#[test]
fn timestamps_format_and_parse() {
    assert_eq!(rfc3339_nano(0), "1970-01-01T00:00:00.000000000Z");
    assert_eq!(rfc3339_nano(1_475_713_029_669_794_202), "2016-10-06T00:17:09.669794202Z");
    assert_eq!(rfc3339_nano(951_782_400_000_000_001), "2000-02-29T00:00:00.000000001Z");
    assert_eq!(parse_rfc3339("2016-10-06T00:17:09.669794202Z"), Some(1_475_713_029_669_794_202));
    assert_eq!(parse_rfc3339("2016-10-06T00:17:09.5Z"), Some(1_475_713_029_500_000_000));
    assert_eq!(parse_rfc3339("yesterday"), None);
}

#[test]
fn records_lines_partials_and_streams() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("c/0.log");
    let mut w = writer(&p, 0, 1);
    w.write(LogStream::Stdout, b"hello\nwor").unwrap();
    w.write(LogStream::Stderr, b"oops\n").unwrap();
    w.write(LogStream::Stdout, b"ld\n\n").unwrap();
    w.write(LogStream::Stdout, b"tail").unwrap();
    w.close_stream(LogStream::Stdout).unwrap();
    w.close_stream(LogStream::Stderr).unwrap();
    let text = fs::read_to_string(&p).unwrap();
    let recs: Vec<_> = text.lines().map(|l| parse_record(l.as_bytes()).unwrap()).collect();
    let summary: Vec<(LogStream, bool, &[u8])> = recs.iter().map(|r| (r.stream, r.partial, r.content)).collect();
    assert_eq!(
        summary,
        vec![
            (LogStream::Stdout, false, &b"hello"[..]),
            (LogStream::Stderr, false, &b"oops"[..]),
            (LogStream::Stdout, false, &b"world"[..]),
            (LogStream::Stdout, false, &b""[..]),
            (LogStream::Stdout, false, &b"tail"[..]),
        ]
    );
    assert!(text.starts_with("2016-10-06T00:17:"));
}

#[test]
fn long_lines_become_partial_records() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("0.log");
    let mut w = writer(&p, 0, 1);
    let long = vec![b'x'; MAX_LINE * 2 + 10];
    w.write(LogStream::Stdout, &long).unwrap();
    w.write(LogStream::Stdout, b"\n").unwrap();
    let text = fs::read_to_string(&p).unwrap();
    let flags: Vec<bool> = text.lines().map(|l| parse_record(l.as_bytes()).unwrap().partial).collect();
    assert_eq!(flags, vec![true, true, false]);
    let total: usize = text.lines().map(|l| parse_record(l.as_bytes()).unwrap().content.len()).sum();
    assert_eq!(total, long.len());
}

#[test]
fn rotation_keeps_max_files() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("0.log");
    let mut w = writer(&p, 200, 3);
    for i in 0..40 {
        w.write(LogStream::Stdout, format!("line number {i}\n").as_bytes()).unwrap();
    }
    let rotated = rotated_files(&p);
    assert_eq!(rotated.len(), 2, "{rotated:?}");
    assert!(fs::metadata(&p).unwrap().len() <= 200);
    let last = fs::read_to_string(&p).unwrap();
    assert!(last.contains("line number 39"));
}

#[test]
fn discarding_writer_writes_nothing() {
    let mut w = LogWriter::open(None, 0, 1).unwrap();
    w.write(LogStream::Stdout, b"x\n").unwrap();
}

fn sample(dir: &Path) -> PathBuf {
    let p = dir.join("0.log");
    let text = "\
2024-01-01T00:00:01.000000000Z stdout F one
2024-01-01T00:00:02.000000000Z stderr F two
2024-01-01T00:00:03.000000000Z stdout P thr
2024-01-01T00:00:03.500000000Z stdout F ee
garbage
2024-01-01T00:00:04.000000000Z stdout F four
";
    fs::write(&p, text).unwrap();
    p
}

async fn read(p: &Path, opts: LogOptions) -> String {
    let mut out = Vec::new();
    read_logs(p, &opts, &mut out, std::future::pending()).await.unwrap();
    String::from_utf8(out).unwrap()
}

#[tokio::test]
async fn reads_all_joins_partials_skips_garbage() {
    let dir = tempfile::tempdir().unwrap();
    let p = sample(dir.path());
    assert_eq!(read(&p, LogOptions::default()).await, "one\ntwo\nthree\nfour\n");
    let ts = read(&p, LogOptions { timestamps: true, ..Default::default() }).await;
    assert!(ts.contains("2024-01-01T00:00:03Z three\n"), "{ts}");
}

#[tokio::test]
async fn tail_since_streams_and_limit() {
    let dir = tempfile::tempdir().unwrap();
    let p = sample(dir.path());
    assert_eq!(read(&p, LogOptions { tail: Some(1), ..Default::default() }).await, "four\n");
    assert_eq!(read(&p, LogOptions { tail: Some(0), ..Default::default() }).await, "");
    assert_eq!(read(&p, LogOptions { tail: Some(100), ..Default::default() }).await, "one\ntwo\nthree\nfour\n");
    let since = parse_rfc3339("2024-01-01T00:00:02Z");
    assert_eq!(read(&p, LogOptions { since, ..Default::default() }).await, "two\nthree\nfour\n");
    assert_eq!(read(&p, LogOptions { stderr: true, ..Default::default() }).await, "two\n");
    assert_eq!(read(&p, LogOptions { stdout: true, ..Default::default() }).await, "one\nthree\nfour\n");
    assert_eq!(read(&p, LogOptions { limit_bytes: Some(6), ..Default::default() }).await, "one\ntw");
}

#[tokio::test]
async fn missing_file_is_not_found() {
    let mut out = Vec::new();
    let e = read_logs(Path::new("/nonexistent/0.log"), &LogOptions::default(), &mut out, async {}).await.unwrap_err();
    assert!(matches!(e, LogError::NotFound(_)));
}

#[tokio::test]
async fn follow_sees_new_lines_and_rotation_until_exit() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("0.log");
    let mut w = LogWriter::open(Some(&p), 120, 5).unwrap();
    w.write(LogStream::Stdout, b"first\n").unwrap();
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    let path = p.clone();
    let reader = tokio::spawn(async move {
        let mut out = Vec::new();
        let opts = LogOptions { follow: true, ..Default::default() };
        read_logs(&path, &opts, &mut out, async move {
            let _ = rx.await;
        })
        .await
        .unwrap();
        String::from_utf8(out).unwrap()
    });
    tokio::time::sleep(Duration::from_millis(150)).await;
    // Enough to rotate at 120 bytes, written in pieces (partial writes must not be read early).
    for i in 0..4 {
        w.write(LogStream::Stdout, format!("line {i} ").as_bytes()).unwrap();
        w.write(LogStream::Stdout, b"end\n").unwrap();
        tokio::time::sleep(Duration::from_millis(150)).await;
    }
    assert!(!rotated_files(&p).is_empty());
    tx.send(()).unwrap();
    let text = reader.await.unwrap();
    assert_eq!(text, "first\nline 0 end\nline 1 end\nline 2 end\nline 3 end\n");
}

// The reader against hand-written files: joined partials, options, rotation.

const T0: i64 = 1_700_000_000_000_000_000;

fn ts(offset_ms: i64) -> String {
    let t = jiff::Timestamp::from_nanosecond(i128::from(T0 + offset_ms * 1_000_000)).unwrap();
    let nanos = t.subsec_nanosecond();
    format!("{}.{nanos:09}Z", t.strftime("%Y-%m-%dT%H:%M:%S"))
}

fn rec(offset_ms: i64, stream: &str, tag: &str, content: &str) -> String {
    format!("{} {stream} {tag} {content}\n", ts(offset_ms))
}

async fn read_all(path: &Path, opts: &LogOptions) -> String {
    let mut out = Vec::new();
    read_logs(path, opts, &mut out, async {}).await.unwrap();
    String::from_utf8(out).unwrap()
}

#[test]
fn parses_records() {
    let r = parse_record(b"2016-10-06T00:17:09.669794202Z stdout F hello world\n").unwrap();
    assert_eq!(
        (r.timestamp, r.stream, r.partial, r.content),
        ("2016-10-06T00:17:09.669794202Z", LogStream::Stdout, false, &b"hello world"[..])
    );
    let r = parse_record(b"2016-10-06T00:17:09Z stderr P ").unwrap();
    assert!(r.partial && r.content.is_empty());
    assert!(parse_record(b"2016 stdin F x").is_none());
    assert!(parse_record(b"2016 stdout X x").is_none());
    assert!(parse_record(b"garbage").is_none());
}

#[test]
fn formats_record_times_like_go_rfc3339nano() {
    assert_eq!(go_rfc3339_nano("2016-10-06T00:17:09.669794202Z"), "2016-10-06T00:17:09.669794202Z");
    assert_eq!(go_rfc3339_nano("2016-10-06T00:17:09.669000000Z"), "2016-10-06T00:17:09.669Z");
    assert_eq!(go_rfc3339_nano("2016-10-06T00:17:09.000000000Z"), "2016-10-06T00:17:09Z");
    assert_eq!(go_rfc3339_nano("not a time"), "not a time");
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
    assert_eq!(read_all(&p, &LogOptions::default()).await, "one\nerr\ntwo\nthree\n");
    let o = LogOptions { timestamps: true, ..Default::default() };
    let got = read_all(&p, &o).await;
    let first = got.lines().next().unwrap();
    assert_eq!(first, format!("{} one", go_rfc3339_nano(&ts(0))));
    assert!(
        got.contains(&format!("{} two", go_rfc3339_nano(&ts(1001)))),
        "a joined line has its first record's time: {got}"
    );
    let o = LogOptions { since: Some(T0 + 1_500_000_000), ..Default::default() };
    assert_eq!(read_all(&p, &o).await, "three\n");
    let o = LogOptions { limit_bytes: Some(6), ..Default::default() };
    assert_eq!(read_all(&p, &o).await, "one\ner");
    // Records of the two streams are written in file order, as upstream does.
    let q = dir.path().join("1.log");
    std::fs::write(&q, [rec(0, "stdout", "P", "a"), rec(1, "stderr", "F", "E"), rec(2, "stdout", "F", "b")].concat())
        .unwrap();
    assert_eq!(read_all(&q, &LogOptions::default()).await, "aE\nb\n");
    let o = LogOptions { tail: Some(2), ..Default::default() };
    assert_eq!(read_all(&p, &o).await, "two\nthree\n", "tail counts joined lines");
    let o = LogOptions { tail: Some(0), ..Default::default() };
    assert_eq!(read_all(&p, &o).await, "");
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
    assert_eq!(read_all(&p, &LogOptions::default()).await, "a\nb\nc\nde\nf\n");
    let tail = |n| LogOptions { tail: Some(n), ..Default::default() };
    assert_eq!(read_all(&p, &tail(2)).await, "de\nf\n", "the P record of the rotated file starts the line");
    assert_eq!(read_all(&p, &tail(3)).await, "c\nde\nf\n");
    assert_eq!(read_all(&p, &tail(100)).await, "a\nb\nc\nde\nf\n");
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
