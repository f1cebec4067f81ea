//! `GET /containerLogs/{ns}/{pod}/{container}`: a container's CRI log file as `kubectl logs`
//! shows it.
//!
//! The runtime writes one record per line, `<RFC3339Nano> <stdout|stderr> <F|P> <content>`
//! (`P`: a partial line continued by the next record), and rotates the file by size to
//! `<path>.<YYYYMMDD-HHMMSS>[-n]` (see `skiff_runtime::linux` `cri_log`). We read the rotated
//! files oldest first, then the live one:
//!
//! - `tailLines`: the last N lines, counted across rotated files;
//! - `sinceSeconds` / `sinceTime`: only records at or after that time;
//! - `timestamps`: each line prefixed with its time (Go's RFC3339Nano: trailing zeros cut);
//! - `limitBytes`: stop after that many bytes;
//! - `follow`: keep reading until the container has exited and the file is drained,
//!   switching to the new file when the runtime rotates it;
//! - `previous`: the last terminated instance ([`super::PodLookup::container`]).

use std::io;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use axum::body::Body;
use http::{HeaderValue, Response, StatusCode, header};
use skiff_runtime::cri::ContainerState;
use tokio::io::{AsyncBufReadExt, AsyncSeekExt, AsyncWrite, AsyncWriteExt};

use super::{Kubelet, parse_bool, query_pairs, text};

/// What the caller asked for.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct LogOptions {
    pub(crate) follow: bool,
    pub(crate) previous: bool,
    pub(crate) tail: Option<u64>,
    /// Unix nanoseconds.
    pub(crate) since: Option<i64>,
    pub(crate) timestamps: bool,
    pub(crate) limit_bytes: Option<u64>,
}

impl LogOptions {
    /// Parse the query as upstream's kubelet does (`PodLogOptions` validation messages).
    pub(crate) fn parse(query: Option<&str>, now_ns: i64) -> Result<LogOptions, String> {
        let mut o = LogOptions::default();
        let (mut since_seconds, mut since_time) = (None, None);
        for (k, v) in query_pairs(query) {
            let flag = || parse_bool(&v).ok_or_else(|| format!("invalid value for {k}: {v:?}"));
            let int = || v.parse::<i64>().map_err(|_| format!("invalid value for {k}: {v:?}"));
            match k.as_str() {
                "follow" => o.follow = flag()?,
                "previous" => o.previous = flag()?,
                "timestamps" => o.timestamps = flag()?,
                "tailLines" => {
                    let n = int()?;
                    if n < 0 {
                        return Err("tailLines: Invalid value: must be greater than or equal to 0".into());
                    }
                    o.tail = Some(n as u64);
                }
                "limitBytes" => {
                    let n = int()?;
                    if n < 1 {
                        return Err("limitBytes: Invalid value: must be greater than 0".into());
                    }
                    o.limit_bytes = Some(n as u64);
                }
                "sinceSeconds" => {
                    let n = int()?;
                    if n < 1 {
                        return Err("sinceSeconds: Invalid value: must be greater than 0".into());
                    }
                    since_seconds = Some(n);
                }
                "sinceTime" => {
                    let t: jiff::Timestamp =
                        v.parse().map_err(|_| format!("sinceTime: Invalid value: {v:?}: must be RFC 3339"))?;
                    since_time = Some(t.as_nanosecond() as i64);
                }
                _ => {}
            }
        }
        o.since = match (since_seconds, since_time) {
            (Some(_), Some(_)) => return Err("at most one of `sinceTime` or `sinceSeconds` may be specified".into()),
            (Some(s), None) => Some(now_ns - s.saturating_mul(1_000_000_000)),
            (None, t) => t,
        };
        Ok(o)
    }
}

/// Why logs could not be read.
#[derive(Debug, thiserror::Error)]
pub(crate) enum LogError {
    /// The log file does not exist (the container never ran, or was removed).
    #[error("log file {0} not found")]
    NotFound(PathBuf),
    /// Reading the files or writing the response failed.
    #[error("reading {path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
}

/// A parsed record.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct Record<'a> {
    pub(crate) time: &'a str,
    pub(crate) stream: &'a str,
    pub(crate) partial: bool,
    pub(crate) content: &'a [u8],
}

/// Parse one record (`line` may end in `\n`); `None` for a malformed line.
pub(crate) fn parse_record(line: &[u8]) -> Option<Record<'_>> {
    let line = line.strip_suffix(b"\n").unwrap_or(line);
    let mut parts = line.splitn(4, |b| *b == b' ');
    let time = std::str::from_utf8(parts.next()?).ok()?;
    let stream = match parts.next()? {
        b"stdout" => "stdout",
        b"stderr" => "stderr",
        _ => return None,
    };
    let partial = match parts.next()? {
        b"P" => true,
        b"F" => false,
        _ => return None,
    };
    Some(Record { time, stream, partial, content: parts.next().unwrap_or(b"") })
}

/// Go's RFC3339Nano (what upstream prints with `--timestamps`): the fraction without
/// trailing zeros, none at all for whole seconds.
pub(crate) fn format_time(time: &str) -> String {
    match time.parse::<jiff::Timestamp>() {
        Ok(t) => {
            let secs = t.as_second();
            let nanos = t.subsec_nanosecond();
            let whole = jiff::Timestamp::from_second(secs).map(|w| w.strftime("%Y-%m-%dT%H:%M:%S").to_string());
            match whole {
                Ok(w) if nanos == 0 => format!("{w}Z"),
                Ok(w) => {
                    let frac = format!("{nanos:09}");
                    format!("{w}.{}Z", frac.trim_end_matches('0'))
                }
                Err(_) => time.to_string(),
            }
        }
        Err(_) => time.to_string(),
    }
}

fn time_ns(time: &str) -> Option<i64> {
    time.parse::<jiff::Timestamp>().ok().and_then(|t| i64::try_from(t.as_nanosecond()).ok())
}

/// Rotated files of `path` (`<name>.<suffix>`), oldest first.
pub(crate) fn rotated_files(path: &Path) -> Vec<PathBuf> {
    let (Some(dir), Some(base)) = (path.parent(), path.file_name()) else { return vec![] };
    let prefix = format!("{}.", base.to_string_lossy());
    let mut out: Vec<(SystemTime, String, PathBuf)> = std::fs::read_dir(dir)
        .map(|rd| {
            rd.flatten()
                .filter_map(|e| {
                    let name = e.file_name().to_string_lossy().into_owned();
                    // Compressed or in-flight files are not records we can read.
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

/// Where the last `n` lines start: (index into `files`, byte offset). Lines are counted as
/// log lines — a run of `P` records and the `F` record that ends it count once.
fn tail_start(files: &[PathBuf], n: u64) -> io::Result<(usize, u64)> {
    let mut remaining = n;
    for (i, f) in files.iter().enumerate().rev() {
        let content = match std::fs::read(f) {
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
            let full = parse_record(&line[..end]).is_some_and(|r| !r.partial);
            if full {
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

/// Formats records for the output: joins partial records, applies since/timestamps/limit.
struct Sink<'o, W> {
    out: &'o mut W,
    opts: &'o LogOptions,
    written: u64,
    /// Per stream (stdout, stderr): a line is in progress (its first record was `P`).
    in_line: [bool; 2],
}

impl<W: AsyncWrite + Unpin> Sink<'_, W> {
    /// Write one record; false once `limitBytes` is reached.
    async fn record(&mut self, line: &[u8]) -> io::Result<bool> {
        let Some(rec) = parse_record(line) else { return Ok(true) };
        if let Some(since) = self.opts.since
            && time_ns(rec.time).is_some_and(|t| t < since)
        {
            return Ok(true);
        }
        let si = usize::from(rec.stream == "stderr");
        let mut chunk = Vec::with_capacity(rec.content.len() + 40);
        if self.opts.timestamps && !self.in_line[si] {
            chunk.extend_from_slice(format_time(rec.time).as_bytes());
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
}

fn inode(m: &std::fs::Metadata) -> u64 {
    std::os::unix::fs::MetadataExt::ino(m)
}

/// Copy the logs at `path` (and its rotated files) to `out`. With `follow`, keeps reading
/// until `exited` resolves and the file is drained. Returns the bytes written.
pub(crate) async fn read_logs<W, F>(path: &Path, opts: &LogOptions, out: &mut W, exited: F) -> Result<u64, LogError>
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
                return finish(sink, path).await;
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
    finish(sink, path).await
}

async fn finish<W: AsyncWrite + Unpin>(sink: Sink<'_, W>, path: &Path) -> Result<u64, LogError> {
    sink.out.flush().await.map_err(|source| LogError::Io { path: path.to_path_buf(), source })?;
    Ok(sink.written)
}

/// Why there are no logs for a container, from the pod status the kubelet reports (upstream's
/// `validateContainerLogStatus`).
pub(crate) fn no_logs_reason(pod: &k8s_openapi::api::core::v1::Pod, container: &str, previous: bool) -> String {
    let name = pod.metadata.name.as_deref().unwrap_or("");
    let status = pod.status.as_ref().and_then(|s| {
        s.container_statuses
            .iter()
            .flatten()
            .chain(s.init_container_statuses.iter().flatten())
            .chain(s.ephemeral_container_statuses.iter().flatten())
            .find(|c| c.name == container)
    });
    if previous {
        return format!("previous terminated container {container:?} in pod {name:?} not found");
    }
    let waiting = status.and_then(|s| s.state.as_ref()).and_then(|s| s.waiting.as_ref());
    match waiting.map(|w| w.reason.as_deref().unwrap_or("")) {
        Some("ErrImagePull") => {
            format!("container {container:?} in pod {name:?} is waiting to start: image can't be pulled")
        }
        Some("ImagePullBackOff") => {
            format!("container {container:?} in pod {name:?} is waiting to start: trying and failing to pull image")
        }
        Some(reason) => format!("container {container:?} in pod {name:?} is waiting to start: {reason}"),
        None if status.and_then(|s| s.state.as_ref()).and_then(|s| s.terminated.as_ref()).is_some() => {
            format!("container {container:?} in pod {name:?} is terminated")
        }
        None => format!("container {container:?} in pod {name:?} is waiting to start - no logs yet"),
    }
}

fn now_ns() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_nanos() as i64).unwrap_or(0)
}

/// Serve `GET /containerLogs/{ns}/{pod}/{container}`.
pub(crate) async fn serve(
    kubelet: &Arc<Kubelet>,
    ns: &str,
    pod: &str,
    container: &str,
    query: Option<&str>,
) -> Response<Body> {
    let opts = match LogOptions::parse(query, now_ns()) {
        Ok(o) => o,
        Err(e) => return text(StatusCode::BAD_REQUEST, e),
    };
    let Some(id) = kubelet.pods.container(ns, pod, container, opts.previous) else {
        let found = kubelet
            .pods
            .pods()
            .into_iter()
            .find(|p| p.metadata.namespace.as_deref() == Some(ns) && p.metadata.name.as_deref() == Some(pod));
        return match found {
            Some(p) => text(StatusCode::BAD_REQUEST, no_logs_reason(&p, container, opts.previous)),
            None => text(StatusCode::NOT_FOUND, format!("pod {ns}/{pod} not found")),
        };
    };
    let status = match kubelet.runtime.container_status(&id).await {
        Ok(s) => s,
        Err(e) => {
            return text(StatusCode::INTERNAL_SERVER_ERROR, format!("failed to get container status {id:?}: {e}"));
        }
    };
    let path = status.log_path.clone();
    if !path.exists() {
        return text(StatusCode::NOT_FOUND, format!("log file for container {container:?} not found"));
    }
    let (mut writer, reader) = tokio::io::duplex(64 * 1024);
    let runtime = kubelet.runtime.clone();
    tokio::spawn(async move {
        // The container is done once it is no longer running (or gone).
        let exited = async {
            loop {
                match runtime.container_status(&id).await {
                    Ok(s) if s.state == ContainerState::Running || s.state == ContainerState::Created => {}
                    _ => return,
                }
                tokio::time::sleep(Duration::from_millis(500)).await;
            }
        };
        if let Err(e) = read_logs(&path, &opts, &mut writer, exited).await {
            tracing::debug!(error = %e, "container logs ended early");
        }
        let _ = writer.shutdown().await;
    });
    let mut r = Response::new(Body::from_stream(tokio_util::io::ReaderStream::new(reader)));
    r.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("text/plain"));
    r
}

#[cfg(test)]
mod tests;
