//! SPDY/3.1, server side: what `kubectl port-forward` speaks to the kubelet, either over a
//! plain `Upgrade: SPDY/3.1` connection or tunnelled inside a WebSocket
//! (`SPDY/3.1+portforward.k8s.io`). client-go uses moby/spdystream as its SPDY client.
//!
//! - [`Codec`]: frame encoding and decoding (SYN_STREAM, SYN_REPLY, RST_STREAM, SETTINGS,
//!   PING, GOAWAY, HEADERS, WINDOW_UPDATE, DATA). Header blocks are zlib streams primed with
//!   the SPDY/3 dictionary, one stream per direction for the whole connection, each block
//!   ending in a sync flush — so frames must be encoded in wire order by one owner.
//! - [`serve`]: a session over any byte stream: the peer opens streams, every accepted stream
//!   gets an empty SYN_REPLY (as spdystream's server does) and is handed out as a [`Stream`]
//!   (`AsyncRead + AsyncWrite`: DATA in, DATA out, FIN on shutdown).
//!
//! Flow control: we grant the peer a receive window per stream and per connection and top it
//! up with WINDOW_UPDATE as data is consumed. The send window is only enforced once the
//! peer shows it does flow control (it sends a WINDOW_UPDATE or an initial window SETTING):
//! spdystream never sends WINDOW_UPDATE, so enforcing the default 64 KiB against it would
//! stall every forwarded connection after 64 KiB.

use std::collections::HashMap;
use std::io;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, LazyLock, Mutex, Weak};
use std::task::{Context, Poll, Waker};

use bytes::{Buf, BufMut, Bytes, BytesMut};
use flate2::{Compress, Compression, Decompress, FlushCompress, FlushDecompress, Status};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, ReadBuf};
use tokio::sync::mpsc;
use tokio_util::sync::PollSender;

/// SPDY's protocol version in control frames.
const VERSION: u16 = 3;
/// The initial window of every stream (and of the connection), both directions.
pub(crate) const DEFAULT_WINDOW: i64 = 64 * 1024;
/// Largest control frame we accept (header blocks of port-forward streams are tiny).
const MAX_CONTROL_FRAME: usize = 1 << 20;
/// Largest decompressed header block.
const MAX_HEADER_BLOCK: usize = 1 << 20;
/// Largest DATA payload we send in one frame.
const MAX_DATA_CHUNK: usize = 32 * 1024;

const FLAG_FIN: u8 = 0x01;
const FLAG_UNIDIRECTIONAL: u8 = 0x02;

const TYPE_SYN_STREAM: u16 = 1;
const TYPE_SYN_REPLY: u16 = 2;
const TYPE_RST_STREAM: u16 = 3;
const TYPE_SETTINGS: u16 = 4;
const TYPE_PING: u16 = 6;
const TYPE_GOAWAY: u16 = 7;
const TYPE_HEADERS: u16 = 8;
const TYPE_WINDOW_UPDATE: u16 = 9;

/// SETTINGS id of the initial stream window.
const SETTINGS_INITIAL_WINDOW_SIZE: u32 = 7;

/// RST_STREAM status codes we send.
pub(crate) const RST_PROTOCOL_ERROR: u32 = 1;
pub(crate) const RST_REFUSED_STREAM: u32 = 3;
#[cfg(test)]
pub(crate) const RST_CANCEL: u32 = 5;
pub(crate) const RST_FLOW_CONTROL_ERROR: u32 = 7;

/// The header-compression dictionary of SPDY/3 (draft 3, section 2.6.10.1): length-prefixed
/// header names and common values, then a run of status codes, dates and media types.
pub(crate) static DICTIONARY: LazyLock<Vec<u8>> = LazyLock::new(|| {
    const WORDS: &[&str] = &[
        "options",
        "head",
        "post",
        "put",
        "delete",
        "trace",
        "accept",
        "accept-charset",
        "accept-encoding",
        "accept-language",
        "accept-ranges",
        "age",
        "allow",
        "authorization",
        "cache-control",
        "connection",
        "content-base",
        "content-encoding",
        "content-language",
        "content-length",
        "content-location",
        "content-md5",
        "content-range",
        "content-type",
        "date",
        "etag",
        "expect",
        "expires",
        "from",
        "host",
        "if-match",
        "if-modified-since",
        "if-none-match",
        "if-range",
        "if-unmodified-since",
        "last-modified",
        "location",
        "max-forwards",
        "pragma",
        "proxy-authenticate",
        "proxy-authorization",
        "range",
        "referer",
        "retry-after",
        "server",
        "te",
        "trailer",
        "transfer-encoding",
        "upgrade",
        "user-agent",
        "vary",
        "via",
        "warning",
        "www-authenticate",
        "method",
        "get",
        "status",
        "200 OK",
        "version",
        "HTTP/1.1",
        "url",
        "public",
        "set-cookie",
        "keep-alive",
        "origin",
    ];
    const TAIL: &str = "100101201202205206300302303304305306307402405406407408409410411412413414415416417502504505\
203 Non-Authoritative Information204 No Content301 Moved Permanently400 Bad Request401 Unauthorized\
403 Forbidden404 Not Found500 Internal Server Error501 Not Implemented503 Service Unavailable\
Jan Feb Mar Apr May Jun Jul Aug Sept Oct Nov Dec 00:00:00 Mon, Tue, Wed, Thu, Fri, Sat, Sun, GMT\
chunked,text/html,image/png,image/jpg,image/gif,application/xml,application/xhtml+xml,text/plain,\
text/javascript,publicprivatemax-age=gzip,deflate,sdchcharset=utf-8charset=iso-8859-1,utf-,*,enq=0.";
    let mut d = Vec::with_capacity(1423);
    for w in WORDS {
        d.extend_from_slice(&(w.len() as u32).to_be_bytes());
        d.extend_from_slice(w.as_bytes());
    }
    d.extend_from_slice(TAIL.as_bytes());
    d
});

/// Why a SPDY connection failed.
#[derive(Debug, thiserror::Error)]
pub(crate) enum SpdyError {
    /// A control frame of another SPDY version.
    #[error("unsupported SPDY version {0}")]
    Version(u16),
    /// A frame that does not parse (lengths, stream ids, header block).
    #[error("malformed {0}")]
    Malformed(&'static str),
    /// A control frame larger than we accept.
    #[error("control frame of {0} bytes is too large")]
    TooLarge(usize),
    /// The zlib header stream is corrupt or needs another dictionary.
    #[error("header compression: {0}")]
    Compression(String),
    /// The underlying connection failed.
    #[error("connection: {0}")]
    Io(#[from] io::Error),
}

/// Header name/value pairs; names lowercase, several values of one name joined by NUL.
pub(crate) type Headers = Vec<(String, String)>;

/// The first value of header `name` (case-insensitive).
pub(crate) fn header<'h>(headers: &'h Headers, name: &str) -> Option<&'h str> {
    headers.iter().find(|(n, _)| n.eq_ignore_ascii_case(name)).map(|(_, v)| v.split('\0').next().unwrap_or(""))
}

/// One SPDY frame, decoded.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Frame {
    SynStream {
        stream_id: u32,
        associated: u32,
        priority: u8,
        fin: bool,
        unidirectional: bool,
        headers: Headers,
    },
    SynReply {
        stream_id: u32,
        fin: bool,
        headers: Headers,
    },
    RstStream {
        stream_id: u32,
        status: u32,
    },
    Settings {
        entries: Vec<(u8, u32, u32)>,
    },
    Ping(u32),
    GoAway {
        last_good: u32,
        status: u32,
    },
    Headers {
        stream_id: u32,
        fin: bool,
        headers: Headers,
    },
    WindowUpdate {
        stream_id: u32,
        delta: u32,
    },
    Data {
        stream_id: u32,
        fin: bool,
        data: Bytes,
    },
    /// A control frame type we don't know: ignored, as the spec asks.
    Unknown(u16),
}

/// Encodes and decodes frames of one connection (both zlib contexts live here).
pub(crate) struct Codec {
    deflate: Compress,
    inflate: Decompress,
}

impl Default for Codec {
    fn default() -> Self {
        Self::new()
    }
}

impl Codec {
    pub(crate) fn new() -> Self {
        let mut deflate = Compress::new(Compression::default(), true);
        // Only fails on a stream that already produced output; this one is fresh.
        let _ = deflate.set_dictionary(&DICTIONARY);
        Codec { deflate, inflate: Decompress::new(true) }
    }

    fn compress_headers(&mut self, headers: &Headers) -> Result<Vec<u8>, SpdyError> {
        let mut block = Vec::new();
        block.put_u32(headers.len() as u32);
        for (n, v) in headers {
            let n = n.to_ascii_lowercase();
            block.put_u32(n.len() as u32);
            block.put_slice(n.as_bytes());
            block.put_u32(v.len() as u32);
            block.put_slice(v.as_bytes());
        }
        let mut out = Vec::with_capacity(block.len() + 64);
        let start_in = self.deflate.total_in();
        loop {
            let consumed = (self.deflate.total_in() - start_in) as usize;
            out.reserve(block.len().max(64));
            self.deflate
                .compress_vec(&block[consumed..], &mut out, FlushCompress::Sync)
                .map_err(|e| SpdyError::Compression(e.to_string()))?;
            let consumed = (self.deflate.total_in() - start_in) as usize;
            // A sync flush is complete once all input is in and the output had room to spare.
            if consumed == block.len() && out.len() < out.capacity() {
                break;
            }
        }
        Ok(out)
    }

    fn decompress_headers(&mut self, compressed: &[u8]) -> Result<Headers, SpdyError> {
        let err = |e: String| SpdyError::Compression(e);
        let mut out = Vec::with_capacity(compressed.len() * 4 + 64);
        let start_in = self.inflate.total_in();
        loop {
            let consumed = (self.inflate.total_in() - start_in) as usize;
            if consumed == compressed.len() {
                break;
            }
            if out.len() == out.capacity() {
                if out.len() >= MAX_HEADER_BLOCK {
                    return Err(SpdyError::TooLarge(out.len()));
                }
                out.reserve(out.len().max(256));
            }
            match self.inflate.decompress_vec(&compressed[consumed..], &mut out, FlushDecompress::Sync) {
                Ok(Status::StreamEnd) => return Err(SpdyError::Malformed("header block (zlib stream ended)")),
                Ok(_) => {
                    let now = (self.inflate.total_in() - start_in) as usize;
                    if now == consumed && out.len() < out.capacity() {
                        return Err(SpdyError::Malformed("header block (truncated)"));
                    }
                }
                Err(e) => match e.needs_dictionary() {
                    Some(_) => {
                        self.inflate.set_dictionary(&DICTIONARY).map_err(|e| err(e.to_string()))?;
                    }
                    None => return Err(err(e.to_string())),
                },
            }
        }
        parse_header_block(&out)
    }

    /// Append the wire form of `frame` to `out`.
    pub(crate) fn encode(&mut self, frame: &Frame, out: &mut BytesMut) -> Result<(), SpdyError> {
        let control = |out: &mut BytesMut, ty: u16, flags: u8, payload: &[u8]| {
            out.put_u16(0x8000 | VERSION);
            out.put_u16(ty);
            out.put_u32((u32::from(flags) << 24) | (payload.len() as u32 & 0x00ff_ffff));
            out.put_slice(payload);
        };
        let fin = |f: bool| if f { FLAG_FIN } else { 0 };
        match frame {
            Frame::SynStream { stream_id, associated, priority, fin: f, unidirectional, headers } => {
                let mut p = Vec::new();
                p.put_u32(stream_id & 0x7fff_ffff);
                p.put_u32(associated & 0x7fff_ffff);
                p.put_u8((priority & 0x7) << 5);
                p.put_u8(0);
                p.extend_from_slice(&self.compress_headers(headers)?);
                let flags = fin(*f) | if *unidirectional { FLAG_UNIDIRECTIONAL } else { 0 };
                control(out, TYPE_SYN_STREAM, flags, &p);
            }
            Frame::SynReply { stream_id, fin: f, headers } | Frame::Headers { stream_id, fin: f, headers } => {
                let ty = if matches!(frame, Frame::SynReply { .. }) { TYPE_SYN_REPLY } else { TYPE_HEADERS };
                let mut p = Vec::new();
                p.put_u32(stream_id & 0x7fff_ffff);
                p.extend_from_slice(&self.compress_headers(headers)?);
                control(out, ty, fin(*f), &p);
            }
            Frame::RstStream { stream_id, status } => {
                let mut p = Vec::new();
                p.put_u32(stream_id & 0x7fff_ffff);
                p.put_u32(*status);
                control(out, TYPE_RST_STREAM, 0, &p);
            }
            Frame::Settings { entries } => {
                let mut p = Vec::new();
                p.put_u32(entries.len() as u32);
                for (flags, id, value) in entries {
                    p.put_u32((u32::from(*flags) << 24) | (id & 0x00ff_ffff));
                    p.put_u32(*value);
                }
                control(out, TYPE_SETTINGS, 0, &p);
            }
            Frame::Ping(id) => control(out, TYPE_PING, 0, &id.to_be_bytes()),
            Frame::GoAway { last_good, status } => {
                let mut p = Vec::new();
                p.put_u32(last_good & 0x7fff_ffff);
                p.put_u32(*status);
                control(out, TYPE_GOAWAY, 0, &p);
            }
            Frame::WindowUpdate { stream_id, delta } => {
                let mut p = Vec::new();
                p.put_u32(stream_id & 0x7fff_ffff);
                p.put_u32(delta & 0x7fff_ffff);
                control(out, TYPE_WINDOW_UPDATE, 0, &p);
            }
            Frame::Data { stream_id, fin: f, data } => {
                if data.len() > 0x00ff_ffff {
                    return Err(SpdyError::TooLarge(data.len()));
                }
                out.put_u32(stream_id & 0x7fff_ffff);
                out.put_u32((u32::from(fin(*f)) << 24) | data.len() as u32);
                out.put_slice(data);
            }
            Frame::Unknown(ty) => control(out, *ty, 0, &[]),
        }
        Ok(())
    }

    /// Take one complete frame off the front of `buf`; `None` when more bytes are needed.
    pub(crate) fn decode(&mut self, buf: &mut BytesMut) -> Result<Option<Frame>, SpdyError> {
        if buf.len() < 8 {
            return Ok(None);
        }
        let word = u32::from_be_bytes([buf[0], buf[1], buf[2], buf[3]]);
        let flags = buf[4];
        let len = u32::from_be_bytes([0, buf[5], buf[6], buf[7]]) as usize;
        let control = word & 0x8000_0000 != 0;
        if control && len > MAX_CONTROL_FRAME {
            return Err(SpdyError::TooLarge(len));
        }
        if buf.len() < 8 + len {
            return Ok(None);
        }
        buf.advance(8);
        let mut p = buf.split_to(len).freeze();
        if !control {
            let stream_id = word & 0x7fff_ffff;
            if stream_id == 0 {
                return Err(SpdyError::Malformed("DATA frame on stream 0"));
            }
            return Ok(Some(Frame::Data { stream_id, fin: flags & FLAG_FIN != 0, data: p }));
        }
        let version = ((word >> 16) & 0x7fff) as u16;
        if version != VERSION {
            return Err(SpdyError::Version(version));
        }
        let ty = (word & 0xffff) as u16;
        let need = |p: &Bytes, n: usize, what: &'static str| {
            if p.len() < n { Err(SpdyError::Malformed(what)) } else { Ok(()) }
        };
        let fin = flags & FLAG_FIN != 0;
        let frame = match ty {
            TYPE_SYN_STREAM => {
                need(&p, 10, "SYN_STREAM")?;
                let stream_id = p.get_u32() & 0x7fff_ffff;
                let associated = p.get_u32() & 0x7fff_ffff;
                let priority = p.get_u8() >> 5;
                let _slot = p.get_u8();
                if stream_id == 0 {
                    return Err(SpdyError::Malformed("SYN_STREAM on stream 0"));
                }
                let headers = self.decompress_headers(&p)?;
                Frame::SynStream {
                    stream_id,
                    associated,
                    priority,
                    fin,
                    unidirectional: flags & FLAG_UNIDIRECTIONAL != 0,
                    headers,
                }
            }
            TYPE_SYN_REPLY | TYPE_HEADERS => {
                need(&p, 4, "SYN_REPLY/HEADERS")?;
                let stream_id = p.get_u32() & 0x7fff_ffff;
                let headers = self.decompress_headers(&p)?;
                if ty == TYPE_SYN_REPLY {
                    Frame::SynReply { stream_id, fin, headers }
                } else {
                    Frame::Headers { stream_id, fin, headers }
                }
            }
            TYPE_RST_STREAM => {
                need(&p, 8, "RST_STREAM")?;
                Frame::RstStream { stream_id: p.get_u32() & 0x7fff_ffff, status: p.get_u32() }
            }
            TYPE_SETTINGS => {
                need(&p, 4, "SETTINGS")?;
                let n = p.get_u32() as usize;
                if p.len() != n.saturating_mul(8) {
                    return Err(SpdyError::Malformed("SETTINGS"));
                }
                let entries = (0..n)
                    .map(|_| {
                        let idf = p.get_u32();
                        ((idf >> 24) as u8, idf & 0x00ff_ffff, p.get_u32())
                    })
                    .collect();
                Frame::Settings { entries }
            }
            TYPE_PING => {
                need(&p, 4, "PING")?;
                Frame::Ping(p.get_u32())
            }
            TYPE_GOAWAY => {
                need(&p, 4, "GOAWAY")?;
                let last_good = p.get_u32() & 0x7fff_ffff;
                let status = if p.len() >= 4 { p.get_u32() } else { 0 };
                Frame::GoAway { last_good, status }
            }
            TYPE_WINDOW_UPDATE => {
                need(&p, 8, "WINDOW_UPDATE")?;
                Frame::WindowUpdate { stream_id: p.get_u32() & 0x7fff_ffff, delta: p.get_u32() & 0x7fff_ffff }
            }
            other => Frame::Unknown(other),
        };
        Ok(Some(frame))
    }
}

fn parse_header_block(b: &[u8]) -> Result<Headers, SpdyError> {
    let mut b = b;
    let take_u32 = |b: &mut &[u8]| -> Result<usize, SpdyError> {
        if b.len() < 4 {
            return Err(SpdyError::Malformed("header block"));
        }
        Ok(b.get_u32() as usize)
    };
    let take = |b: &mut &[u8], n: usize| -> Result<String, SpdyError> {
        if b.len() < n {
            return Err(SpdyError::Malformed("header block"));
        }
        let s = String::from_utf8_lossy(&b[..n]).into_owned();
        b.advance(n);
        Ok(s)
    };
    let count = take_u32(&mut b)?;
    let mut out = Vec::with_capacity(count.min(64));
    for _ in 0..count {
        let n = take_u32(&mut b)?;
        let name = take(&mut b, n)?.to_ascii_lowercase();
        let n = take_u32(&mut b)?;
        let value = take(&mut b, n)?;
        out.push((name, value));
    }
    Ok(out)
}

/// A window: bytes one side may still send. Signed because SETTINGS may shrink it below 0.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Window(pub(crate) i64);

impl Window {
    /// How much of `want` may be sent now.
    pub(crate) fn allowance(self, want: usize) -> usize {
        if self.0 <= 0 { 0 } else { want.min(self.0 as usize) }
    }
    pub(crate) fn consume(&mut self, n: usize) {
        self.0 -= n as i64;
    }
    /// Add a WINDOW_UPDATE delta; false when the window would exceed 2^31-1 (a flow-control error).
    pub(crate) fn grow(&mut self, delta: u32) -> bool {
        self.0 += i64::from(delta);
        self.0 <= i64::from(i32::MAX)
    }
}

/// What the receive side owes the peer: consumed bytes not yet returned with WINDOW_UPDATE.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct Credit(u32);

impl Credit {
    /// Record `n` consumed bytes; returns a WINDOW_UPDATE delta once half the window is owed.
    pub(crate) fn consumed(&mut self, n: usize) -> Option<u32> {
        self.0 = self.0.saturating_add(n as u32);
        if i64::from(self.0) >= DEFAULT_WINDOW / 2 { Some(std::mem::take(&mut self.0)) } else { None }
    }
}

/// Send-side flow state shared by the session's reader (which applies WINDOW_UPDATEs) and
/// every stream's writer.
#[derive(Debug)]
struct Flow {
    /// False until the peer shows it does flow control (see the module doc).
    enforce: bool,
    connection: Window,
    initial: i64,
    streams: HashMap<u32, Window>,
    waiting: Vec<Waker>,
}

impl Flow {
    fn wake(&mut self) {
        for w in self.waiting.drain(..) {
            w.wake();
        }
    }
}

/// What a stream shares with the session reader.
#[derive(Debug, Default)]
struct StreamShared {
    reset: AtomicBool,
}

struct Entry {
    data: Option<mpsc::Sender<Bytes>>,
    shared: Weak<StreamShared>,
}

/// A stream the peer opened, accepted with an empty SYN_REPLY.
pub(crate) struct Stream {
    id: u32,
    headers: Headers,
    data: mpsc::Receiver<Bytes>,
    pending: Bytes,
    shared: Arc<StreamShared>,
    flow: Arc<Mutex<Flow>>,
    out: PollSender<Frame>,
    control: mpsc::UnboundedSender<Frame>,
    recv_credit: Credit,
    fin_sent: bool,
}

impl std::fmt::Debug for Stream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Stream").field("id", &self.id).field("headers", &self.headers).finish_non_exhaustive()
    }
}

impl Stream {
    pub(crate) fn id(&self) -> u32 {
        self.id
    }
    pub(crate) fn headers(&self) -> &Headers {
        &self.headers
    }
    /// Abort the stream (RST_STREAM with `status`).
    pub(crate) fn reset(&mut self, status: u32) {
        self.shared.reset.store(true, Ordering::Release);
        let _ = self.control.send(Frame::RstStream { stream_id: self.id, status });
    }
}

fn lock(flow: &Mutex<Flow>) -> std::sync::MutexGuard<'_, Flow> {
    flow.lock().unwrap_or_else(|e| e.into_inner())
}

impl AsyncRead for Stream {
    fn poll_read(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        let this = &mut *self;
        if this.pending.is_empty() {
            match this.data.poll_recv(cx) {
                Poll::Ready(Some(b)) => this.pending = b,
                Poll::Ready(None) => {
                    if this.shared.reset.load(Ordering::Acquire) {
                        return Poll::Ready(Err(io::Error::new(io::ErrorKind::ConnectionReset, "stream reset")));
                    }
                    return Poll::Ready(Ok(()));
                }
                Poll::Pending => return Poll::Pending,
            }
        }
        let n = this.pending.len().min(buf.remaining());
        buf.put_slice(&this.pending.split_to(n));
        if let Some(delta) = this.recv_credit.consumed(n) {
            let _ = this.control.send(Frame::WindowUpdate { stream_id: this.id, delta });
            let _ = this.control.send(Frame::WindowUpdate { stream_id: 0, delta });
        }
        Poll::Ready(Ok(()))
    }
}

impl AsyncWrite for Stream {
    fn poll_write(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        let this = &mut *self;
        if this.shared.reset.load(Ordering::Acquire) {
            return Poll::Ready(Err(io::Error::new(io::ErrorKind::BrokenPipe, "stream reset by peer")));
        }
        if this.fin_sent {
            return Poll::Ready(Err(io::Error::new(io::ErrorKind::BrokenPipe, "stream already closed")));
        }
        if buf.is_empty() {
            return Poll::Ready(Ok(0));
        }
        if let Err(_closed) = std::task::ready!(this.out.poll_reserve(cx)) {
            return Poll::Ready(Err(io::Error::new(io::ErrorKind::BrokenPipe, "connection closed")));
        }
        let n = {
            let mut flow = lock(&this.flow);
            let want = buf.len().min(MAX_DATA_CHUNK);
            let n = if flow.enforce {
                let initial = flow.initial;
                let stream = *flow.streams.entry(this.id).or_insert(Window(initial));
                stream.allowance(flow.connection.allowance(want))
            } else {
                want
            };
            if n == 0 {
                flow.waiting.push(cx.waker().clone());
                this.out.abort_send();
                return Poll::Pending;
            }
            if flow.enforce {
                flow.connection.consume(n);
                if let Some(w) = flow.streams.get_mut(&this.id) {
                    w.consume(n);
                }
            }
            n
        };
        let frame = Frame::Data { stream_id: this.id, fin: false, data: Bytes::copy_from_slice(&buf[..n]) };
        if this.out.send_item(frame).is_err() {
            return Poll::Ready(Err(io::Error::new(io::ErrorKind::BrokenPipe, "connection closed")));
        }
        Poll::Ready(Ok(n))
    }

    fn poll_flush(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    /// Half-close: DATA with FIN.
    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = &mut *self;
        if this.fin_sent || this.shared.reset.load(Ordering::Acquire) {
            return Poll::Ready(Ok(()));
        }
        if std::task::ready!(this.out.poll_reserve(cx)).is_err() {
            return Poll::Ready(Ok(()));
        }
        this.fin_sent = true;
        let _ = this.out.send_item(Frame::Data { stream_id: this.id, fin: true, data: Bytes::new() });
        Poll::Ready(Ok(()))
    }
}

impl Drop for Stream {
    fn drop(&mut self) {
        lock(&self.flow).streams.remove(&self.id);
    }
}

/// Serve a SPDY session on `io`. Streams the peer opens arrive on the returned channel, which
/// closes when the peer goes away (GOAWAY, EOF or a protocol error).
pub(crate) fn serve<T>(io: T) -> mpsc::Receiver<Stream>
where
    T: AsyncRead + AsyncWrite + Send + 'static,
{
    let (reader, writer) = tokio::io::split(io);
    let (accept_tx, accept_rx) = mpsc::channel(16);
    let (out_tx, out_rx) = mpsc::channel::<Frame>(32);
    let (control_tx, control_rx) = mpsc::unbounded_channel::<Frame>();
    let flow = Arc::new(Mutex::new(Flow {
        enforce: false,
        connection: Window(DEFAULT_WINDOW),
        initial: DEFAULT_WINDOW,
        streams: HashMap::new(),
        waiting: Vec::new(),
    }));
    let codec = Arc::new(Mutex::new(Codec::new()));
    let done = tokio_util::sync::CancellationToken::new();
    tokio::spawn(write_loop(writer, codec.clone(), out_rx, control_rx, done.clone()));
    let r = Reader { codec, flow, out: out_tx, control: control_tx, accept: Some(accept_tx), streams: HashMap::new() };
    tokio::spawn(async move {
        if let Err(e) = r.run(reader).await {
            tracing::debug!(error = %e, "SPDY session ended");
        }
        done.cancel();
    });
    accept_rx
}

async fn write_loop<W: AsyncWrite + Unpin>(
    mut w: W,
    codec: Arc<Mutex<Codec>>,
    mut data: mpsc::Receiver<Frame>,
    mut control: mpsc::UnboundedReceiver<Frame>,
    done: tokio_util::sync::CancellationToken,
) {
    let mut buf = BytesMut::new();
    loop {
        // Control frames (replies, window updates, pings) go before queued data.
        let frame = tokio::select! {
            biased;
            f = control.recv() => match f { Some(f) => f, None => break },
            f = data.recv() => match f { Some(f) => f, None => break },
            _ = done.cancelled() => break,
        };
        buf.clear();
        let encoded = codec.lock().unwrap_or_else(|e| e.into_inner()).encode(&frame, &mut buf);
        if let Err(e) = encoded {
            tracing::debug!(error = %e, "SPDY encode failed");
            break;
        }
        if w.write_all(&buf).await.is_err() || w.flush().await.is_err() {
            break;
        }
    }
    let _ = w.shutdown().await;
}

struct Reader {
    codec: Arc<Mutex<Codec>>,
    flow: Arc<Mutex<Flow>>,
    out: mpsc::Sender<Frame>,
    control: mpsc::UnboundedSender<Frame>,
    accept: Option<mpsc::Sender<Stream>>,
    streams: HashMap<u32, Entry>,
}

impl Reader {
    async fn run<R: AsyncRead + Unpin>(mut self, mut r: R) -> Result<(), SpdyError> {
        let mut buf = BytesMut::with_capacity(16 * 1024);
        loop {
            loop {
                let frame = self.codec.lock().unwrap_or_else(|e| e.into_inner()).decode(&mut buf)?;
                let Some(frame) = frame else { break };
                self.dispatch(frame).await;
            }
            if r.read_buf(&mut buf).await? == 0 {
                return Ok(());
            }
        }
    }

    /// Handle one frame.
    async fn dispatch(&mut self, frame: Frame) {
        match frame {
            Frame::SynStream { stream_id, fin, headers, .. } => {
                // Client-initiated streams are odd and increasing.
                if stream_id % 2 == 0 || self.streams.contains_key(&stream_id) {
                    let _ = self.control.send(Frame::RstStream { stream_id, status: RST_PROTOCOL_ERROR });
                    return;
                }
                // After a GOAWAY no new streams are accepted.
                let Some(accept) = &self.accept else {
                    let _ = self.control.send(Frame::RstStream { stream_id, status: RST_REFUSED_STREAM });
                    return;
                };
                self.streams.retain(|_, e| e.shared.strong_count() > 0);
                let (tx, rx) = mpsc::channel(16);
                let shared = Arc::new(StreamShared::default());
                self.streams.insert(
                    stream_id,
                    Entry { data: if fin { None } else { Some(tx) }, shared: Arc::downgrade(&shared) },
                );
                let _ = self.control.send(Frame::SynReply { stream_id, fin: false, headers: Vec::new() });
                let stream = Stream {
                    id: stream_id,
                    headers,
                    data: rx,
                    pending: Bytes::new(),
                    shared,
                    flow: self.flow.clone(),
                    out: PollSender::new(self.out.clone()),
                    control: self.control.clone(),
                    recv_credit: Credit::default(),
                    fin_sent: false,
                };
                if accept.send(stream).await.is_err() {
                    self.accept = None;
                }
            }
            Frame::Data { stream_id, fin, data } => {
                let Some(entry) = self.streams.get_mut(&stream_id) else {
                    return;
                };
                if !data.is_empty()
                    && let Some(tx) = &entry.data
                    && tx.send(data).await.is_err()
                {
                    // Nobody reads this stream any more.
                    entry.data = None;
                }
                if fin {
                    entry.data = None;
                }
            }
            Frame::RstStream { stream_id, .. } => {
                if let Some(e) = self.streams.remove(&stream_id)
                    && let Some(s) = e.shared.upgrade()
                {
                    s.reset.store(true, Ordering::Release);
                }
                lock(&self.flow).wake();
            }
            Frame::WindowUpdate { stream_id, delta } => {
                let mut flow = lock(&self.flow);
                flow.enforce = true;
                let ok = if stream_id == 0 {
                    flow.connection.grow(delta)
                } else {
                    let initial = flow.initial;
                    flow.streams.entry(stream_id).or_insert(Window(initial)).grow(delta)
                };
                flow.wake();
                drop(flow);
                if !ok && stream_id != 0 {
                    let _ = self.control.send(Frame::RstStream { stream_id, status: RST_FLOW_CONTROL_ERROR });
                }
            }
            Frame::Settings { entries } => {
                let mut flow = lock(&self.flow);
                for (_, id, value) in entries {
                    if id == SETTINGS_INITIAL_WINDOW_SIZE {
                        // Existing streams move by the difference (SPDY/3 section 2.6.8).
                        let diff = i64::from(value) - flow.initial;
                        flow.initial = i64::from(value);
                        for w in flow.streams.values_mut() {
                            w.0 += diff;
                        }
                        flow.enforce = true;
                    }
                }
                flow.wake();
            }
            Frame::Ping(id) => {
                // Pings from the client are odd; answer them. Even ones would be ours.
                if id % 2 == 1 {
                    let _ = self.control.send(Frame::Ping(id));
                }
            }
            // Streams already open carry on; the connection ends when the peer closes it.
            Frame::GoAway { .. } => self.accept = None,
            Frame::SynReply { .. } | Frame::Headers { .. } | Frame::Unknown(_) => {}
        }
    }
}

#[cfg(test)]
mod tests;
