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
    assert!(ts.contains("2024-01-01T00:00:03.000000000Z three\n"), "{ts}");
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
