//! The UDP side of the server: a loop per socket that receives a query, answers it in place
//! when the answer needs no I/O (every cluster name but an ExternalName's upstream part) and
//! sends the response before reading the next datagram. Only queries that wait on an upstream
//! get a task of their own. A or AAAA questions for names with addresses, the bulk of the
//! traffic, are read and answered in wire format by [`fast`]; datagrams are read in batches
//! ([`batch`]). The loops run on a thread of their own ([`start`]).
//!
//! hickory's UDP server spawns a task per datagram and hands every response back to the one
//! task that owns the socket through a channel, so each query crosses tasks (and, on a
//! multi-threaded runtime, usually threads) twice; at tens of thousands of queries per second
//! that bookkeeping cost more than the answer (`bench/dns/run.sh`, docs/benchmarks.md). The
//! answers are the same: requests are decoded
//! by hickory and answered by the same [`Handler`], responses encoded as hickory's UDP path
//! encodes them ([`crate::handler::encode_udp`]), and what hickory drops (datagrams under a
//! header, responses, replies to port 0 or unspecified addresses) is dropped here too. TCP is
//! still served by hickory.

use std::io;
use std::net::{IpAddr, SocketAddr};
use std::os::fd::AsRawFd;
use std::sync::Arc;

use hickory_server::net::xfer::Protocol;
use hickory_server::proto::op::{Header, MessageType};
use hickory_server::proto::serialize::binary::{BinDecodable, BinDecoder};
use hickory_server::server::Request;
use tokio::io::Interest;
use tokio::net::UdpSocket;
use tokio::sync::oneshot;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

use crate::handler::{Handler, Plan, encode_formerr, encode_udp};
use crate::server::DnsError;

/// The largest query read; the rest of a longer datagram is cut off (hickory's
/// `MAX_RECEIVE_BUFFER_SIZE`). Queries are a few dozen bytes.
const MAX_QUERY: usize = 4096;

/// What to do with one datagram.
enum Outcome {
    /// Send these bytes back.
    Reply(Vec<u8>),
    /// Ask the upstream first ([`Handler::complete`]), then send the encoded reply back.
    Upstream(Box<(Request, Plan)>),
    /// No response at all.
    Drop,
}

/// Decide the response to `datagram` from `src`.
fn respond(handler: &Handler, datagram: &[u8], src: SocketAddr) -> Outcome {
    if !respondable(src) {
        return Outcome::Drop;
    }
    if let Some(bytes) = fast::answer(&handler.index(), datagram) {
        return Outcome::Reply(bytes);
    }
    // Under twelve bytes is not a DNS message at all: no response.
    let Ok(header) = Header::read(&mut BinDecoder::new(datagram)) else {
        return Outcome::Drop;
    };
    let request = match Request::from_bytes(datagram.to_vec(), src, Protocol::Udp) {
        Ok(request) => request,
        Err(error) => {
            tracing::debug!(%src, %error, "undecodable DNS request; FORMERR");
            return Outcome::Reply(encode_formerr(&header));
        }
    };
    // Never answer a response (a reflection attack would bounce between servers).
    if request.metadata.message_type == MessageType::Response {
        return Outcome::Drop;
    }
    match handler.plan(&request) {
        Plan::Ready(reply) => Outcome::Reply(encode_udp(&request.queries, &reply)),
        plan => Outcome::Upstream(Box::new((request, plan))),
    }
}

/// Whether a response to `src` can go anywhere: not to port 0, nor to an unspecified or
/// (IPv4) broadcast address (hickory's `sanitize_src_address`).
fn respondable(src: SocketAddr) -> bool {
    src.port() != 0
        && match src.ip() {
            IpAddr::V4(v4) => !v4.is_unspecified() && !v4.is_broadcast(),
            IpAddr::V6(v6) => !v6.is_unspecified(),
        }
}

/// Serve each of `sockets` until `shutdown` on a thread of their own, running a
/// single-threaded runtime with a loop per socket; the receiver gets the outcome once every
/// loop is done (or is dropped unsent if the thread panicked).
///
/// Why not on the caller's runtime: on a multi-threaded runtime the loop's wake-ups go through
/// work stealing (a worker parked in epoll wakes, notifies another to steal, …), which costs
/// about as much CPU per query as the answer; a thread that only serves these sockets
/// switches context no more than a classic DNS server does. Queries forwarded upstream run as
/// tasks on this thread too. One thread answers well over 100,000 queries/s; a second one
/// sharing the socket only made both wake up for every datagram (measured: more CPU per
/// query, fewer queries/s on 2 cores).
pub(crate) fn start(
    sockets: Vec<(std::net::UdpSocket, SocketAddr)>,
    handler: Arc<Handler>,
    shutdown: CancellationToken,
) -> Result<oneshot::Receiver<Result<(), DnsError>>, DnsError> {
    let (done, outcome) = oneshot::channel();
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().map_err(DnsError::UdpThread)?;
    std::thread::Builder::new()
        .name("cluster-dns-udp".to_string())
        .spawn(move || {
            let _ = done.send(runtime.block_on(serve_all(sockets, handler, shutdown)));
        })
        .map_err(DnsError::UdpThread)?;
    Ok(outcome)
}

async fn serve_all(
    sockets: Vec<(std::net::UdpSocket, SocketAddr)>,
    handler: Arc<Handler>,
    shutdown: CancellationToken,
) -> Result<(), DnsError> {
    let mut loops = JoinSet::new();
    for (socket, addr) in sockets {
        let socket = UdpSocket::from_std(socket).map_err(|source| DnsError::Udp { addr, source })?;
        let (handler, shutdown) = (handler.clone(), shutdown.clone());
        loops.spawn(async move {
            serve(Arc::new(socket), handler, shutdown).await.map_err(|source| DnsError::Udp { addr, source })
        });
    }
    let mut result = Ok(());
    while let Some(joined) = loops.join_next().await {
        match joined {
            Ok(Ok(())) => {}
            Ok(Err(error)) => result = result.and(Err(error)),
            Err(error) => tracing::warn!(%error, "a cluster DNS UDP loop ended abnormally"),
        }
    }
    result
}

/// Serve `socket` until `shutdown`. Returns an error only when the socket can no longer be
/// read; queries waiting on an upstream are abandoned at shutdown.
///
/// Datagrams are read, and their responses sent, in batches (up to [`batch::BATCH`] at a
/// time): under load a wake-up finds several queries waiting, read with one system call
/// instead of one each, and answered with one more. Under light load a batch is one datagram.
pub(crate) async fn serve(
    socket: Arc<UdpSocket>,
    handler: Arc<Handler>,
    shutdown: CancellationToken,
) -> io::Result<()> {
    let mut upstream = JoinSet::new();
    let mut batch = batch::Batch::new();
    let served = shutdown
        .run_until_cancelled(async {
            loop {
                socket.readable().await?;
                let received = match socket.try_io(Interest::READABLE, || batch.receive(socket.as_raw_fd())) {
                    Ok(received) => received,
                    Err(error) if error.kind() == io::ErrorKind::WouldBlock => continue,
                    Err(error)
                        if matches!(error.kind(), io::ErrorKind::NotConnected | io::ErrorKind::ConnectionAborted) =>
                    {
                        return Err(error);
                    }
                    Err(error) => {
                        tracing::warn!(%error, "error receiving DNS queries over UDP");
                        continue;
                    }
                };
                let mut replies = Vec::with_capacity(received.len());
                for (n, &(len, src)) in received.iter().enumerate() {
                    let Some(src) = src else { continue };
                    match respond(&handler, batch.datagram(n, len), src) {
                        Outcome::Reply(bytes) => replies.push((bytes, src)),
                        Outcome::Upstream(pending) => {
                            let (socket, handler) = (socket.clone(), handler.clone());
                            upstream.spawn(async move {
                                let (request, plan) = *pending;
                                let reply = handler.complete(&request, plan).await;
                                send(&socket, &encode_udp(&request.queries, &reply), request.src()).await;
                            });
                        }
                        Outcome::Drop => {}
                    }
                }
                batch::send_all(&socket, &replies).await;
                // Reap finished upstream exchanges so the set does not grow.
                while upstream.try_join_next().is_some() {}
            }
        })
        .await;
    served.unwrap_or(Ok(()))
}

async fn send(socket: &UdpSocket, bytes: &[u8], dst: SocketAddr) {
    if let Err(error) = socket.send_to(bytes, dst).await {
        tracing::debug!(%dst, %error, "cannot send a DNS response over UDP; dropped");
    }
}

mod batch;
mod fast;

#[cfg(test)]
mod tests;
