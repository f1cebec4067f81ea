//! Terminals for containers and exec sessions. A pty must come from the *container's* devpts
//! instance (otherwise `ttyname` and `tty` fail inside), so it is opened inside the container
//! and its master end is handed back over a unix socket (`SCM_RIGHTS`) — runc's "console
//! socket".

use std::io;
use std::os::fd::{AsRawFd, OwnedFd, RawFd};

use std::os::unix::fs::OpenOptionsExt;

use nix::fcntl::OFlag;
use nix::sys::socket::{ControlMessage, ControlMessageOwned, MsgFlags, recvmsg, sendmsg};

/// Open a new pty from `/dev/ptmx` of the current mount namespace; the slave is owned by
/// `uid`. Returns (master, slave).
pub(crate) fn open_pty(uid: u32) -> io::Result<(OwnedFd, OwnedFd)> {
    let master = nix::pty::posix_openpt(OFlag::O_RDWR | OFlag::O_NOCTTY | OFlag::O_CLOEXEC)?;
    nix::pty::grantpt(&master)?;
    nix::pty::unlockpt(&master)?;
    let name = nix::pty::ptsname_r(&master)?;
    let slave: OwnedFd = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .custom_flags(libc::O_NOCTTY)
        .open(&name)
        .map_err(|e| io::Error::new(e.kind(), format!("opening {name}: {e}")))?
        .into();
    // The process will run as `uid`: let it own its terminal (group stays tty).
    nix::unistd::fchown(&slave, Some(nix::unistd::Uid::from_raw(uid)), None)?;
    Ok((OwnedFd::from(master), slave))
}

/// Send `fd` over the unix socket `sock`.
pub(crate) fn send_fd(sock: &impl AsRawFd, fd: &OwnedFd) -> io::Result<()> {
    let fds = [fd.as_raw_fd()];
    let cmsg = [ControlMessage::ScmRights(&fds)];
    let iov = [io::IoSlice::new(b"p")];
    sendmsg::<()>(sock.as_raw_fd(), &iov, &cmsg, MsgFlags::empty(), None)?;
    Ok(())
}

/// Receive one fd sent by [`send_fd`].
pub(crate) fn recv_fd(sock: &impl AsRawFd) -> io::Result<OwnedFd> {
    let mut buf = [0u8; 1];
    let mut iov = [io::IoSliceMut::new(&mut buf)];
    let mut space = nix::cmsg_space!([RawFd; 1]);
    let msg = recvmsg::<()>(sock.as_raw_fd(), &mut iov, Some(&mut space), MsgFlags::MSG_CMSG_CLOEXEC)?;
    for c in msg.cmsgs()? {
        if let ControlMessageOwned::ScmRights(fds) = c
            && let Some(fd) = fds.first()
        {
            // SAFETY: the kernel just installed this fd in our table for us; nobody else
            // owns it.
            return Ok(unsafe { <OwnedFd as std::os::fd::FromRawFd>::from_raw_fd(*fd) });
        }
    }
    Err(io::Error::new(io::ErrorKind::UnexpectedEof, "no terminal received"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_fd_crosses_a_socket() {
        let (a, b) = std::os::unix::net::UnixStream::pair().unwrap();
        let (r, w) = nix::unistd::pipe().unwrap();
        send_fd(&a, &w).unwrap();
        drop(w);
        let w2 = recv_fd(&b).unwrap();
        nix::unistd::write(&w2, b"x").unwrap();
        let mut buf = [0u8; 1];
        assert_eq!(nix::unistd::read(&r, &mut buf).unwrap(), 1);
        drop(a);
        assert!(recv_fd(&b).is_err());
    }
}
