//! The upstream exchange (CoreDNS's `forward` plugin, reduced): a query goes to each upstream
//! in turn over UDP, and again over TCP when the UDP answer is truncated, until one answers.
//! Each exchange uses a fresh random message ID and accepts only a response that carries it
//! and echoes the question.

use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr};
use std::time::Duration;

use hickory_server::proto::op::{Message, MessageType, OpCode, Query};
use hickory_server::proto::rr::{Name, RecordType};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpStream, UdpSocket};

/// How long one upstream gets for one exchange (UDP, or the TCP retry), like CoreDNS's
/// forward read timeout.
const UPSTREAM_TIMEOUT: Duration = Duration::from_secs(2);

/// Why no upstream answered.
#[derive(Debug, thiserror::Error)]
pub(crate) enum ForwardError {
    /// The configuration has no upstream nameservers.
    #[error("no upstream nameservers are configured")]
    NoUpstreams,
    /// The query could not be encoded (a CNAME target that is no valid name).
    #[error("encoding the upstream query: {0}")]
    Encode(#[source] hickory_server::proto::ProtoError),
    /// The client's message is too short to be a query.
    #[error("the query is too short to forward")]
    ShortQuery,
    /// A socket error talking to an upstream.
    #[error("upstream {upstream} over {protocol}: {source}")]
    Io {
        upstream: SocketAddr,
        protocol: &'static str,
        #[source]
        source: std::io::Error,
    },
    /// An upstream did not answer in time.
    #[error("upstream {upstream} did not answer over {protocol} within {UPSTREAM_TIMEOUT:?}")]
    Timeout { upstream: SocketAddr, protocol: &'static str },
    /// An upstream sent something that is not the answer to the query.
    #[error("upstream {upstream} over {protocol}: {reason}")]
    BadAnswer { upstream: SocketAddr, protocol: &'static str, reason: String },
}

/// The upstream nameservers.
#[derive(Clone, Debug)]
pub(crate) struct Forwarder {
    /// Tried in order: resolv.conf order, as the libc resolver does.
    upstreams: Vec<SocketAddr>,
}

impl Forwarder {
    pub(crate) fn new(upstreams: Vec<SocketAddr>) -> Forwarder {
        Forwarder { upstreams }
    }

    /// Forward a client's query as it came (its EDNS options included, so the upstream sizes
    /// its answer for the client); `name`/`qtype` are its question.
    pub(crate) async fn forward(&self, raw: &[u8], name: &Name, qtype: RecordType) -> Result<Message, ForwardError> {
        if raw.len() < 12 {
            return Err(ForwardError::ShortQuery);
        }
        self.exchange(raw.to_vec(), name, qtype).await
    }

    /// Ask the upstreams for `name`/`qtype` (recursion desired), for a CNAME target.
    pub(crate) async fn lookup(&self, name: &Name, qtype: RecordType) -> Result<Message, ForwardError> {
        let mut query = Message::new(0, MessageType::Query, OpCode::Query);
        query.metadata.recursion_desired = true;
        query.add_query(Query::query(name.clone(), qtype));
        let bytes = query.to_vec().map_err(ForwardError::Encode)?;
        self.exchange(bytes, name, qtype).await
    }

    /// Try each upstream until one answers. A truncated UDP answer is retried over TCP; if
    /// that fails the truncated answer is returned (the client retries over TCP itself).
    async fn exchange(&self, mut query: Vec<u8>, name: &Name, qtype: RecordType) -> Result<Message, ForwardError> {
        let mut last = ForwardError::NoUpstreams;
        for &upstream in &self.upstreams {
            let id: u16 = rand::random();
            query[..2].copy_from_slice(&id.to_be_bytes());
            let expect = Expect { upstream, id, name, qtype };
            let udp = match tokio::time::timeout(UPSTREAM_TIMEOUT, udp_exchange(&query, &expect)).await {
                Ok(Ok(answer)) => answer,
                Ok(Err(e)) => {
                    last = e;
                    continue;
                }
                Err(_) => {
                    last = ForwardError::Timeout { upstream, protocol: "udp" };
                    continue;
                }
            };
            if !udp.metadata.truncation {
                return Ok(udp);
            }
            match tokio::time::timeout(UPSTREAM_TIMEOUT, tcp_exchange(&query, &expect)).await {
                Ok(Ok(answer)) => return Ok(answer),
                Ok(Err(error)) => tracing::debug!(%error, "TCP retry of a truncated answer failed"),
                Err(_) => tracing::debug!(%upstream, "TCP retry of a truncated answer timed out"),
            }
            return Ok(udp);
        }
        Err(last)
    }
}

/// What the answer must match.
struct Expect<'a> {
    upstream: SocketAddr,
    id: u16,
    name: &'a Name,
    qtype: RecordType,
}

impl Expect<'_> {
    /// Decode `bytes` and check it answers the query.
    fn check(&self, bytes: &[u8], protocol: &'static str) -> Result<Message, ForwardError> {
        let bad = |reason: String| ForwardError::BadAnswer { upstream: self.upstream, protocol, reason };
        let message = Message::from_vec(bytes).map_err(|e| bad(format!("undecodable answer: {e}")))?;
        if message.metadata.id != self.id || message.metadata.message_type != MessageType::Response {
            return Err(bad("answer to another query".to_string()));
        }
        // A server may answer FORMERR/NOTIMP/REFUSED without the question.
        if let Some(q) = message.queries.first()
            && (!q.name().eq_ignore_root(self.name) || q.query_type() != self.qtype)
        {
            return Err(bad(format!(
                "answer for {} {} instead of {} {}",
                q.name(),
                q.query_type(),
                self.name,
                self.qtype
            )));
        }
        Ok(message)
    }
}

async fn udp_exchange(query: &[u8], expect: &Expect<'_>) -> Result<Message, ForwardError> {
    let upstream = expect.upstream;
    let io = |source| ForwardError::Io { upstream, protocol: "udp", source };
    let local: SocketAddr =
        if upstream.is_ipv4() { (Ipv4Addr::UNSPECIFIED, 0).into() } else { (Ipv6Addr::UNSPECIFIED, 0).into() };
    let socket = UdpSocket::bind(local).await.map_err(io)?;
    // Connected: datagrams from anyone but the upstream are dropped by the kernel.
    socket.connect(upstream).await.map_err(io)?;
    socket.send(query).await.map_err(io)?;
    let mut buf = vec![0u8; 65535];
    loop {
        let n = socket.recv(&mut buf).await.map_err(io)?;
        match expect.check(&buf[..n], "udp") {
            Ok(answer) => return Ok(answer),
            // A late answer to an earlier query on a reused port, or garbage: keep waiting.
            Err(error) => tracing::debug!(%error, "ignoring a datagram"),
        }
    }
}

async fn tcp_exchange(query: &[u8], expect: &Expect<'_>) -> Result<Message, ForwardError> {
    let upstream = expect.upstream;
    let io = |source| ForwardError::Io { upstream, protocol: "tcp", source };
    let mut stream = TcpStream::connect(upstream).await.map_err(io)?;
    let len = u16::try_from(query.len()).map_err(|_| ForwardError::BadAnswer {
        upstream,
        protocol: "tcp",
        reason: "query longer than 65535 bytes".to_string(),
    })?;
    let mut framed = Vec::with_capacity(query.len() + 2);
    framed.extend_from_slice(&len.to_be_bytes());
    framed.extend_from_slice(query);
    stream.write_all(&framed).await.map_err(io)?;
    let mut len = [0u8; 2];
    stream.read_exact(&mut len).await.map_err(io)?;
    let mut buf = vec![0u8; usize::from(u16::from_be_bytes(len))];
    stream.read_exact(&mut buf).await.map_err(io)?;
    expect.check(&buf, "tcp")
}
