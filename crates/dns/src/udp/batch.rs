//! Datagrams in batches: one `recvmmsg` takes every query waiting on the socket (up to
//! [`BATCH`]) where `recv_from` takes one, and one `sendmmsg` sends their responses. Besides
//! the system calls saved, the client is woken once per batch of responses rather than once
//! per response (on a busy machine each of those wake-ups could switch the CPU to it and back).
//! nix has the safe `recvmmsg`; rustix the `sendmmsg` that says how many messages went.

use std::io::{self, IoSlice, IoSliceMut};
use std::net::{SocketAddr, SocketAddrV4, SocketAddrV6};
use std::os::fd::RawFd;

use nix::sys::socket::{MsgFlags, MultiHeaders, SockaddrStorage, recvmmsg};
use rustix::net::{MMsgHdr, SendAncillaryBuffer, SendFlags, SocketAddrAny, sendmmsg};
use tokio::io::Interest;
use tokio::net::UdpSocket;

use super::MAX_QUERY;

/// The most datagrams read at once.
pub(super) const BATCH: usize = 32;

/// Buffers for one batch, reused from batch to batch.
pub(super) struct Batch {
    /// One buffer per datagram, [`MAX_QUERY`] bytes each (longer datagrams are cut short).
    buffers: Vec<Vec<u8>>,
}

impl Batch {
    pub(super) fn new() -> Batch {
        Batch { buffers: vec![vec![0; MAX_QUERY]; BATCH] }
    }

    /// Read what is waiting on `fd` without blocking: the length and source of each datagram,
    /// in order (the datagram itself is [`Batch::datagram`]). `WouldBlock` when nothing is.
    pub(super) fn receive(&mut self, fd: RawFd) -> io::Result<Vec<(usize, Option<SocketAddr>)>> {
        let mut slices: Vec<[IoSliceMut<'_>; 1]> =
            self.buffers.iter_mut().map(|buffer| [IoSliceMut::new(buffer)]).collect();
        // The kernel's message headers and the source addresses it fills in; made per call, as
        // nix's type holds raw pointers and so could not live across the loop's awaits.
        let mut headers = MultiHeaders::<SockaddrStorage>::preallocate(BATCH, None);
        let received = recvmmsg(fd, &mut headers, slices.iter_mut(), MsgFlags::MSG_DONTWAIT, None)?;
        Ok(received.map(|message| (message.bytes, message.address.as_ref().and_then(socket_addr))).collect())
    }

    /// The `n`th datagram of the last batch, `len` bytes long.
    pub(super) fn datagram(&self, n: usize, len: usize) -> &[u8] {
        &self.buffers[n][..len.min(MAX_QUERY)]
    }
}

fn socket_addr(address: &SockaddrStorage) -> Option<SocketAddr> {
    if let Some(v4) = address.as_sockaddr_in() {
        return Some(SocketAddr::V4(SocketAddrV4::from(*v4)));
    }
    address.as_sockaddr_in6().map(|v6| SocketAddr::V6(SocketAddrV6::from(*v6)))
}

/// Send each reply to its destination, [`BATCH`] to a system call. A reply the kernel refuses
/// (the first of a call that fails) is dropped, as a `send_to` error would drop it.
pub(super) async fn send_all(socket: &UdpSocket, replies: &[(Vec<u8>, SocketAddr)]) {
    let mut next = 0;
    while next < replies.len() {
        match socket.try_io(Interest::WRITABLE, || send_batch(socket, &replies[next..])) {
            Ok(sent) => next += sent.max(1),
            Err(error) if error.kind() == io::ErrorKind::WouldBlock => {
                if let Err(error) = socket.writable().await {
                    tracing::debug!(%error, "cannot send DNS responses over UDP; dropped");
                    return;
                }
            }
            Err(error) => {
                tracing::debug!(dst = %replies[next].1, %error, "cannot send a DNS response over UDP; dropped");
                next += 1;
            }
        }
    }
}

/// One `sendmmsg` of up to [`BATCH`] of `replies`: how many went.
fn send_batch(socket: &UdpSocket, replies: &[(Vec<u8>, SocketAddr)]) -> io::Result<usize> {
    let replies = &replies[..replies.len().min(BATCH)];
    let addrs: Vec<SocketAddrAny> = replies.iter().map(|(_, dst)| SocketAddrAny::from(*dst)).collect();
    let data: Vec<[IoSlice<'_>; 1]> = replies.iter().map(|(bytes, _)| [IoSlice::new(bytes)]).collect();
    let mut controls: Vec<SendAncillaryBuffer<'_, '_, '_>> =
        replies.iter().map(|_| SendAncillaryBuffer::default()).collect();
    let mut messages: Vec<MMsgHdr<'_>> = addrs
        .iter()
        .zip(&data)
        .zip(controls.iter_mut())
        .map(|((addr, data), control)| MMsgHdr::new_with_addr(addr, data, control))
        .collect();
    Ok(sendmmsg(socket, &mut messages, SendFlags::DONTWAIT)?)
}
