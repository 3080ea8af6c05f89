//! The one socket option no crate we use sets: `TCP_DEFER_ACCEPT` (socket2, nix and rustix have
//! no call for it). It is a plain `setsockopt` on a borrowed descriptor.

// The crate's only unsafe code besides the allocator: the libc call itself.
#![allow(unsafe_code)]

use std::io;
use std::os::fd::{AsFd, AsRawFd};

use nix::libc;

/// Asks the kernel to hand over a connection only once its first bytes have arrived, or after
/// `seconds` without any (HAProxy's `defer-accept`, nginx's `deferred`). Only for protocols
/// whose client speaks first.
pub fn set_defer_accept(listener: &impl AsFd, seconds: u32) -> io::Result<()> {
    let value = libc::c_int::try_from(seconds).unwrap_or(libc::c_int::MAX);
    // SAFETY: the descriptor is borrowed for the duration of the call, and the kernel reads
    // exactly `size_of::<c_int>()` bytes from `value`, which lives on the stack until it returns.
    let rc = unsafe {
        libc::setsockopt(
            listener.as_fd().as_raw_fd(),
            libc::IPPROTO_TCP,
            libc::TCP_DEFER_ACCEPT,
            std::ptr::from_ref(&value).cast(),
            std::mem::size_of::<libc::c_int>() as libc::socklen_t,
        )
    };
    if rc == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_connection_is_accepted_with_its_first_bytes() {
        use std::io::{Read, Write};
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        set_defer_accept(&listener, 5).unwrap();
        listener.set_nonblocking(true).unwrap();
        let mut client = std::net::TcpStream::connect(listener.local_addr().unwrap()).unwrap();
        // Connected on the client's side, but nothing to accept until it speaks.
        assert_eq!(
            listener.accept().map(|_| ()).unwrap_err().kind(),
            io::ErrorKind::WouldBlock
        );
        client.write_all(b"GET / HTTP/1.1\r\n\r\n").unwrap();
        listener.set_nonblocking(false).unwrap();
        let (mut accepted, _) = listener.accept().unwrap();
        let mut first = [0u8; 3];
        accepted.read_exact(&mut first).unwrap();
        assert_eq!(&first, b"GET");
    }
}
