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

/// Rotated files of `path` (`<name>.<suffix>`), oldest first. Compressed or in-flight files
/// (`.gz`, `.tmp`) are not records we can read.
pub(crate) fn rotated_files(path: &Path) -> Vec<PathBuf> {
    let (Some(dir), Some(base)) = (path.parent(), path.file_name()) else { return vec![] };
    let prefix = format!("{}.", base.to_string_lossy());
    let mut out: Vec<(SystemTime, String, PathBuf)> = fs::read_dir(dir)
        .map(|rd| {
            rd.flatten()
                .filter_map(|e| {
                    let name = e.file_name().to_string_lossy().into_owned();
                    if !name.starts_with(&prefix) || name.ends_with(".gz") || name.ends_with(".tmp") {
                        return None;
                    }
                    let t = e.metadata().and_then(|m| m.modified()).unwrap_or(UNIX_EPOCH);
                    Some((t, name, e.path()))
                })
                .collect()
        })
        .unwrap_or_default();
    out.sort();
    out.into_iter().map(|(_, _, p)| p).collect()
}

/// What `kubectl logs` asks for.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct LogOptions {
    /// Keep streaming new lines until the container exits.
    pub follow: bool,
    /// Only the last N lines (counted across rotated files).
    pub tail: Option<u64>,
    /// Only lines at or after this Unix time (ns).
    pub since: Option<i64>,
    /// Prefix each line with its time (Go's RFC3339Nano, as upstream prints it).
    pub timestamps: bool,
    /// Stop after this many bytes.
    pub limit_bytes: Option<u64>,
    /// Only these streams (both when both false).
    pub stdout: bool,
    pub stderr: bool,
}

/// A parsed record.
#[derive(Debug, PartialEq, Eq)]
pub struct Record<'a> {
    pub timestamp: &'a str,
    pub stream: LogStream,
    pub partial: bool,
    pub content: &'a [u8],
}

/// Parse one record (`line` may end in `\n`); `None` for a malformed line.
pub fn parse_record(line: &[u8]) -> Option<Record<'_>> {
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

/// A record's time as Go's RFC3339Nano prints it (what upstream shows with `--timestamps`):
/// the fraction without trailing zeros, none for whole seconds. Unparsable times stay as
/// they are.
pub fn go_rfc3339_nano(time: &str) -> String {
    let Some(ns) = parse_rfc3339(time) else { return time.to_string() };
    let full = rfc3339_nano(ns);
    let Some((head, frac)) = full.trim_end_matches('Z').split_once('.') else { return full };
    match frac.trim_end_matches('0') {
        "" => format!("{head}Z"),
        frac => format!("{head}.{frac}Z"),
    }
}

/// Errors of [`read_logs`].
#[derive(Debug, thiserror::Error)]
pub enum LogError {
    /// The log file does not exist (the container never ran, or was removed).
    #[error("log file {0} not found")]
    NotFound(PathBuf),
    /// Reading the files or writing the output failed.
    #[error("reading {path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
}

/// Where the last `n` lines start: (index into `files`, byte offset). Lines are counted as
/// log lines — a run of `P` records and the `F` record that ends it count once.
fn tail_start(files: &[PathBuf], n: u64) -> io::Result<(usize, u64)> {
    let mut remaining = n;
    for (i, f) in files.iter().enumerate().rev() {
        let content = match fs::read(f) {
            Ok(c) => c,
            Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
            Err(e) => return Err(e),
        };
        // Record boundaries, then walk them from the end.
        let mut starts = vec![0usize];
        for (at, b) in content.iter().enumerate() {
            if *b == b'\n' && at + 1 < content.len() {
                starts.push(at + 1);
            }
        }
        for &start in starts.iter().rev() {
            let line = &content[start..];
            let end = line.iter().position(|b| *b == b'\n').map_or(line.len(), |p| p + 1);
            if parse_record(&line[..end]).is_some_and(|r| !r.partial) {
                if remaining == 0 {
                    // The F record before our first line: start right after it.
                    return Ok((i, (start + end) as u64));
                }
                remaining -= 1;
            }
        }
        // With the count reached, the first line may still have begun (as `P` records) in
        // the previous file: go on until the `F` record that ends the line before it.
    }
    Ok((0, 0))
}

/// Formats records for the output: joins partial records, applies the options.
struct Sink<'o, W> {
    out: &'o mut W,
    opts: &'o LogOptions,
    written: u64,
    /// Per stream: a line is in progress (its first record was `P`); it has its first
    /// record's time.
    in_line: [bool; 2],
}

impl<W: AsyncWrite + Unpin> Sink<'_, W> {
    /// Write one record; false once `limit_bytes` is reached.
    async fn record(&mut self, line: &[u8]) -> io::Result<bool> {
        let Some(rec) = parse_record(line) else { return Ok(true) };
        let wanted = match (self.opts.stdout, self.opts.stderr) {
            (false, false) | (true, true) => true,
            (true, false) => rec.stream == LogStream::Stdout,
            (false, true) => rec.stream == LogStream::Stderr,
        };
        if !wanted {
            return Ok(true);
        }
        if let Some(since) = self.opts.since
            && parse_rfc3339(rec.timestamp).is_some_and(|t| t < since)
        {
            return Ok(true);
        }
        let si = rec.stream.index();
        let mut chunk = Vec::with_capacity(rec.content.len() + 40);
        if self.opts.timestamps && !self.in_line[si] {
            chunk.extend_from_slice(go_rfc3339_nano(rec.timestamp).as_bytes());
            chunk.push(b' ');
        }
        chunk.extend_from_slice(rec.content);
        if !rec.partial {
            chunk.push(b'\n');
        }
        self.in_line[si] = rec.partial;
        if let Some(limit) = self.opts.limit_bytes {
            chunk.truncate(limit.saturating_sub(self.written) as usize);
        }
        self.out.write_all(&chunk).await?;
        self.written += chunk.len() as u64;
        Ok(self.opts.limit_bytes.is_none_or(|l| self.written < l))
    }

    async fn finish(self, path: &Path) -> Result<u64, LogError> {
        self.out.flush().await.map_err(|source| LogError::Io { path: path.to_path_buf(), source })?;
        Ok(self.written)
    }
}

fn inode(m: &std::fs::Metadata) -> u64 {
    std::os::unix::fs::MetadataExt::ino(m)
}

/// Copy the log at `path` — its rotated files first, oldest first, then the live one — to
/// `out` as `kubectl logs` shows it: record contents with partial records joined, filtered
/// and prefixed per `opts`. With `follow`, keeps reading new records (and follows a rotation
/// to the new file, after draining the old one) until `exited` resolves and the file is
/// drained. Returns the number of bytes written.
pub async fn read_logs<W, F>(path: &Path, opts: &LogOptions, out: &mut W, exited: F) -> Result<u64, LogError>
where
    W: AsyncWrite + Unpin,
    F: std::future::Future<Output = ()>,
{
    let io_err = |p: &Path| {
        let p = p.to_path_buf();
        move |source| LogError::Io { path: p, source }
    };
    if !path.exists() {
        return Err(LogError::NotFound(path.to_path_buf()));
    }
    let mut files = rotated_files(path);
    files.push(path.to_path_buf());
    let (first, offset) = match opts.tail {
        Some(n) => {
            let files = files.clone();
            tokio::task::spawn_blocking(move || tail_start(&files, n))
                .await
                .map_err(|e| io_err(path)(io::Error::other(e)))?
                .map_err(io_err(path))?
        }
        None => (0, 0),
    };
    let mut sink = Sink { out, opts, written: 0, in_line: [false, false] };
    let mut line = Vec::new();
    // Rotated files: complete, read straight through.
    for (i, f) in files.iter().enumerate().take(files.len() - 1).skip(first) {
        let Ok(file) = tokio::fs::File::open(f).await else { continue };
        let mut r = tokio::io::BufReader::new(file);
        if i == first {
            r.seek(io::SeekFrom::Start(offset)).await.map_err(io_err(f))?;
        }
        loop {
            line.clear();
            if r.read_until(b'\n', &mut line).await.map_err(io_err(f))? == 0 {
                break;
            }
            if !sink.record(&line).await.map_err(io_err(f))? {
                return sink.finish(path).await;
            }
        }
    }
    // The live file.
    let file = match tokio::fs::File::open(path).await {
        Ok(f) => f,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Err(LogError::NotFound(path.to_path_buf())),
        Err(e) => return Err(io_err(path)(e)),
    };
    let mut ino = file.metadata().await.ok().map(|m| inode(&m));
    let mut r = tokio::io::BufReader::new(file);
    if first == files.len() - 1 {
        r.seek(io::SeekFrom::Start(offset)).await.map_err(io_err(path))?;
    }
    tokio::pin!(exited);
    let mut done = !opts.follow;
    let mut draining = false;
    loop {
        line.clear();
        let n = r.read_until(b'\n', &mut line).await.map_err(io_err(path))?;
        if n > 0 && line.ends_with(b"\n") {
            if !sink.record(&line).await.map_err(io_err(path))? {
                break;
            }
            continue;
        }
        // EOF, or a record still being written: rewind to its start and retry later.
        if n > 0 {
            r.seek(io::SeekFrom::Current(-(n as i64))).await.map_err(io_err(path))?;
        }
        if done {
            break;
        }
        // Rotated: read the old file once more (records written just before the rename),
        // then go on with the new one.
        let current = tokio::fs::metadata(path).await.ok().map(|m| inode(&m));
        if n == 0 && current.is_some() && current != ino {
            if !draining {
                draining = true;
                continue;
            }
            if let Ok(f) = tokio::fs::File::open(path).await {
                ino = current;
                r = tokio::io::BufReader::new(f);
                draining = false;
                continue;
            }
        }
        tokio::select! {
            _ = &mut exited => done = true,
            _ = tokio::time::sleep(Duration::from_millis(100)) => {}
        }
        sink.out.flush().await.map_err(io_err(path))?;
    }
    sink.finish(path).await
}

#[cfg(test)]
mod tests;
