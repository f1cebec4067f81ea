//! Container logs in the CRI format: one record per line,
//! `<RFC3339Nano> <stdout|stderr> <F|P> <content>`, where `P` marks a partial line (a line
//! longer than the buffer, continued by the next record) and `F` ends one.
//!
//! [`LogWriter`] is used by the shim (plain std, no async): it splits container output into
//! records, rotates the file by size (`<path>.<YYYYMMDD-HHMMSS>` like the kubelet's rotation,
//! keeping `max_files` in all) and is readable while written. [`read_logs`] is what the
//! kubelet serves `kubectl logs` from (`--follow`, `--tail`, `--since`, `--timestamps`,
//! `--limit-bytes`; the previous container is just the previous attempt's file).

use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use tokio::io::{AsyncBufReadExt, AsyncSeekExt, AsyncWrite, AsyncWriteExt};

/// Longest content of one record; longer lines are split into `P` records (containerd: 16K).
pub(crate) const MAX_LINE: usize = 16 * 1024;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LogStream {
    Stdout,
    Stderr,
}

impl LogStream {
    fn as_str(self) -> &'static str {
        match self {
            LogStream::Stdout => "stdout",
            LogStream::Stderr => "stderr",
        }
    }
    fn index(self) -> usize {
        match self {
            LogStream::Stdout => 0,
            LogStream::Stderr => 1,
        }
    }
}

/// Days since 1970-01-01 to a civil (year, month, day) date (Howard Hinnant's algorithm).
fn civil(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (yoe + era * 400 + i64::from(m <= 2), m, d)
}

/// `2016-10-06T00:17:09.669794202Z` for Unix nanoseconds (always nine fraction digits).
pub(crate) fn rfc3339_nano(ns: i64) -> String {
    let secs = ns.div_euclid(1_000_000_000);
    let frac = ns.rem_euclid(1_000_000_000);
    let (y, mo, d) = civil(secs.div_euclid(86_400));
    let sod = secs.rem_euclid(86_400);
    format!("{y:04}-{mo:02}-{d:02}T{:02}:{:02}:{:02}.{frac:09}Z", sod / 3600, (sod / 60) % 60, sod % 60)
}

fn rotation_suffix(ns: i64) -> String {
    let secs = ns.div_euclid(1_000_000_000);
    let (y, mo, d) = civil(secs.div_euclid(86_400));
    let sod = secs.rem_euclid(86_400);
    format!("{y:04}{mo:02}{d:02}-{:02}{:02}{:02}", sod / 3600, (sod / 60) % 60, sod % 60)
}

pub(crate) fn now_ns() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_nanos() as i64).unwrap_or(0)
}

/// Parse an RFC 3339 timestamp (any fraction length, `Z` or an offset) to Unix nanoseconds.
pub fn parse_rfc3339(s: &str) -> Option<i64> {
    let ts: jiff::Timestamp = s.parse().ok()?;
    i64::try_from(ts.as_nanosecond()).ok()
}

/// Writes CRI log records to a file, rotating it by size.
pub(crate) struct LogWriter {
    path: Option<PathBuf>,
    file: Option<File>,
    size: u64,
    max_size: u64,
    max_files: u32,
    /// An unfinished line per stream.
    partial: [Vec<u8>; 2],
    clock: fn() -> i64,
}

impl LogWriter {
    /// `path: None` discards everything (no log path configured).
    pub(crate) fn open(path: Option<&Path>, max_size: u64, max_files: u32) -> io::Result<Self> {
        let mut w = LogWriter {
            path: path.map(Path::to_path_buf),
            file: None,
            size: 0,
            max_size,
            max_files: max_files.max(1),
            partial: [Vec::new(), Vec::new()],
            clock: now_ns,
        };
        w.reopen()?;
        Ok(w)
    }

    fn reopen(&mut self) -> io::Result<()> {
        if let Some(p) = &self.path {
            if let Some(dir) = p.parent() {
                fs::create_dir_all(dir)?;
            }
            let f = OpenOptions::new().create(true).append(true).open(p)?;
            self.size = f.metadata()?.len();
            self.file = Some(f);
        }
        Ok(())
    }

    /// Feed output of one stream.
    pub(crate) fn write(&mut self, stream: LogStream, mut data: &[u8]) -> io::Result<()> {
        let i = stream.index();
        while !data.is_empty() {
            match data.iter().position(|b| *b == b'\n') {
                Some(nl) => {
                    let mut line = std::mem::take(&mut self.partial[i]);
                    line.extend_from_slice(&data[..nl]);
                    data = &data[nl + 1..];
                    self.emit_long(stream, &line, true)?;
                }
                None => {
                    self.partial[i].extend_from_slice(data);
                    data = &[];
                    while self.partial[i].len() >= MAX_LINE {
                        let rest = self.partial[i].split_off(MAX_LINE);
                        let chunk = std::mem::replace(&mut self.partial[i], rest);
                        self.record(stream, &chunk, false)?;
                    }
                }
            }
        }
        Ok(())
    }

    /// End of a stream: an unterminated last line is written as a full one.
    pub(crate) fn close_stream(&mut self, stream: LogStream) -> io::Result<()> {
        let line = std::mem::take(&mut self.partial[stream.index()]);
        if !line.is_empty() {
            self.emit_long(stream, &line, true)?;
        }
        Ok(())
    }

    fn emit_long(&mut self, stream: LogStream, line: &[u8], full: bool) -> io::Result<()> {
        let mut chunks = line.chunks(MAX_LINE).peekable();
        if chunks.peek().is_none() {
            return self.record(stream, b"", full);
        }
        while let Some(c) = chunks.next() {
            let last = chunks.peek().is_none();
            self.record(stream, c, full && last)?;
        }
        Ok(())
    }

    fn record(&mut self, stream: LogStream, content: &[u8], full: bool) -> io::Result<()> {
        if self.path.is_none() {
            return Ok(());
        }
        let mut rec = Vec::with_capacity(content.len() + 48);
        rec.extend_from_slice(rfc3339_nano((self.clock)()).as_bytes());
        rec.push(b' ');
        rec.extend_from_slice(stream.as_str().as_bytes());
        rec.extend_from_slice(if full { b" F " } else { b" P " });
        rec.extend_from_slice(content);
        rec.push(b'\n');
        if self.max_size > 0 && self.size > 0 && self.size + rec.len() as u64 > self.max_size {
            self.rotate()?;
        }
        if let Some(f) = &mut self.file {
            f.write_all(&rec)?;
            self.size += rec.len() as u64;
        }
        Ok(())
    }

    /// Rename the current file aside, drop the oldest rotated ones, start a new file.
    fn rotate(&mut self) -> io::Result<()> {
        let Some(path) = self.path.clone() else { return Ok(()) };
        self.file = None;
        let base = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
        let mut target = path.with_file_name(format!("{base}.{}", rotation_suffix((self.clock)())));
        let mut n = 1;
        while target.exists() {
            target = path.with_file_name(format!("{base}.{}-{n}", rotation_suffix((self.clock)())));
            n += 1;
        }
        fs::rename(&path, &target)?;
        let mut rotated = rotated_files(&path);
        while rotated.len() + 1 > self.max_files as usize && !rotated.is_empty() {
            let _ = fs::remove_file(rotated.remove(0));
        }
        self.reopen()
    }
}

/// Rotated files of `path`, oldest first.
pub(crate) fn rotated_files(path: &Path) -> Vec<PathBuf> {
    let (Some(dir), Some(base)) = (path.parent(), path.file_name()) else { return vec![] };
    let prefix = format!("{}.", base.to_string_lossy());
    let mut out: Vec<(SystemTime, PathBuf)> = fs::read_dir(dir)
        .map(|rd| {
            rd.flatten()
                .filter(|e| e.file_name().to_string_lossy().starts_with(&prefix))
                .map(|e| {
                    let t = e.metadata().and_then(|m| m.modified()).unwrap_or(UNIX_EPOCH);
                    (t, e.path())
                })
                .collect()
        })
        .unwrap_or_default();
    out.sort();
    out.into_iter().map(|(_, p)| p).collect()
}

/// What `kubectl logs` asks for.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct LogOptions {
    /// Keep streaming new lines until the container exits.
    pub follow: bool,
    /// Only the last N lines.
    pub tail: Option<u64>,
    /// Only lines at or after this Unix time (ns).
    pub since: Option<i64>,
    /// Prefix each line with its RFC3339Nano timestamp.
    pub timestamps: bool,
    /// Stop after this many bytes.
    pub limit_bytes: Option<u64>,
    /// Only these streams (both when both false).
    pub stdout: bool,
    pub stderr: bool,
}

/// A parsed record.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct Record<'a> {
    pub(crate) timestamp: &'a str,
    pub(crate) stream: LogStream,
    pub(crate) partial: bool,
    pub(crate) content: &'a [u8],
}

pub(crate) fn parse_record(line: &[u8]) -> Option<Record<'_>> {
    let line = line.strip_suffix(b"\n").unwrap_or(line);
    let mut parts = line.splitn(4, |b| *b == b' ');
    let timestamp = std::str::from_utf8(parts.next()?).ok()?;
    let stream = match parts.next()? {
        b"stdout" => LogStream::Stdout,
        b"stderr" => LogStream::Stderr,
        _ => return None,
    };
    let partial = match parts.next()? {
        b"P" => true,
        b"F" => false,
        _ => return None,
    };
    Some(Record { timestamp, stream, partial, content: parts.next().unwrap_or(b"") })
}

/// Errors of [`read_logs`].
#[derive(Debug, thiserror::Error)]
pub enum LogError {
    /// The log file does not exist (the container never ran, or was removed).
    #[error("log file {0} not found")]
    NotFound(PathBuf),
    #[error("reading {path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
}

/// Offset of the start of the last `n` lines of `path` (scanning backwards in blocks).
fn tail_offset(path: &Path, n: u64) -> io::Result<u64> {
    use std::io::{Read, Seek, SeekFrom};
    let mut f = File::open(path)?;
    let len = f.metadata()?.len();
    if n == 0 {
        return Ok(len);
    }
    let mut pos = len;
    let mut newlines = 0u64;
    let mut buf = vec![0u8; 8192];
    // The file ends with '\n': that one does not start a line.
    let mut skip_last = true;
    while pos > 0 {
        let read = (pos as usize).min(buf.len());
        pos -= read as u64;
        f.seek(SeekFrom::Start(pos))?;
        f.read_exact(&mut buf[..read])?;
        for i in (0..read).rev() {
            if buf[i] == b'\n' {
                if skip_last && pos + i as u64 == len - 1 {
                    skip_last = false;
                    continue;
                }
                newlines += 1;
                if newlines == n {
                    return Ok(pos + i as u64 + 1);
                }
            }
        }
    }
    Ok(0)
}

/// Copy the log at `path` to `out` as `kubectl logs` shows it: record contents (with
/// partial records joined), optionally timestamped. With `follow`, keeps reading new records
/// (and follows a rotation to the new file) until `exited` resolves, then drains what is
/// left. Returns the number of bytes written.
pub async fn read_logs<W, F>(path: &Path, opts: &LogOptions, out: &mut W, exited: F) -> Result<u64, LogError>
where
    W: AsyncWrite + Unpin,
    F: std::future::Future<Output = ()>,
{
    let io_err = |source| LogError::Io { path: path.to_path_buf(), source };
    let start = match opts.tail {
        Some(n) => match tail_offset(path, n) {
            Ok(o) => o,
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                return Err(LogError::NotFound(path.to_path_buf()));
            }
            Err(e) => return Err(io_err(e)),
        },
        None => 0,
    };
    let open = |p: PathBuf| async move { tokio::fs::File::open(&p).await };
    let file = match open(path.to_path_buf()).await {
        Ok(f) => f,
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            return Err(LogError::NotFound(path.to_path_buf()));
        }
        Err(e) => return Err(io_err(e)),
    };
    let mut ino = file.metadata().await.map(|m| std::os::unix::fs::MetadataExt::ino(&m)).ok();
    let mut reader = tokio::io::BufReader::new(file);
    reader.seek(io::SeekFrom::Start(start)).await.map_err(io_err)?;
    let want = |s: LogStream| match (opts.stdout, opts.stderr) {
        (false, false) | (true, true) => true,
        (true, false) => s == LogStream::Stdout,
        (false, true) => s == LogStream::Stderr,
    };
    let mut written = 0u64;
    let mut line = Vec::new();
    // A partial record starts a line; its timestamp is the line's.
    let mut in_partial = [false, false];
    tokio::pin!(exited);
    let mut done = !opts.follow;
    loop {
        line.clear();
        let n = reader.read_until(b'\n', &mut line).await.map_err(io_err)?;
        if n > 0 && line.ends_with(b"\n") {
            let Some(rec) = parse_record(&line) else { continue };
            if !want(rec.stream) {
                continue;
            }
            if let Some(since) = opts.since
                && parse_rfc3339(rec.timestamp).is_some_and(|t| t < since)
            {
                continue;
            }
            let mut chunk = Vec::with_capacity(rec.content.len() + 40);
            let si = rec.stream.index();
            if opts.timestamps && !in_partial[si] {
                chunk.extend_from_slice(rec.timestamp.as_bytes());
                chunk.push(b' ');
            }
            chunk.extend_from_slice(rec.content);
            if !rec.partial {
                chunk.push(b'\n');
            }
            in_partial[si] = rec.partial;
            if let Some(limit) = opts.limit_bytes {
                let left = limit.saturating_sub(written) as usize;
                chunk.truncate(left);
            }
            out.write_all(&chunk).await.map_err(io_err)?;
            written += chunk.len() as u64;
            if opts.limit_bytes.is_some_and(|l| written >= l) {
                break;
            }
            continue;
        }
        // EOF (or a record still being written: rewind to its start and retry later).
        if n > 0 {
            reader.seek(io::SeekFrom::Current(-(n as i64))).await.map_err(io_err)?;
        }
        if done {
            break;
        }
        // Rotated? Switch to the new file once the old one is drained.
        let current = tokio::fs::metadata(path).await.ok().map(|m| std::os::unix::fs::MetadataExt::ino(&m));
        if n == 0
            && current.is_some()
            && current != ino
            && let Ok(f) = open(path.to_path_buf()).await
        {
            ino = current;
            reader = tokio::io::BufReader::new(f);
            continue;
        }
        tokio::select! {
            _ = &mut exited => { done = true; }
            _ = tokio::time::sleep(Duration::from_millis(100)) => {}
        }
    }
    out.flush().await.map_err(io_err)?;
    Ok(written)
}

#[cfg(test)]
mod tests;
