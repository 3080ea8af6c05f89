//! A backend connection's transport, watching the backend's first frames for the
//! acknowledgement of our SETTINGS (`H2Conn::backend_acked_settings`); past it, reads go
//! straight through.

use std::io;
use std::pin::Pin;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::task::{Context, Poll};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

use super::h2::ConnState;

const FRAME_HEADER: usize = 9;
const SETTINGS: u8 = 0x4;
const ACK: u8 = 0x1;

pub struct AckWatch<T> {
    io: T,
    state: Arc<ConnState>,
    /// The frame header being read, and how much of it came.
    header: [u8; FRAME_HEADER],
    have: usize,
    /// Payload bytes of the current frame still to pass over.
    skip: usize,
    seen: bool,
}

impl<T> AckWatch<T> {
    pub fn new(io: T, state: Arc<ConnState>) -> AckWatch<T> {
        AckWatch {
            io,
            state,
            header: [0; FRAME_HEADER],
            have: 0,
            skip: 0,
            seen: false,
        }
    }

    /// Reads frame headers out of `bytes` until a SETTINGS frame with ACK comes.
    fn watch(&mut self, mut bytes: &[u8]) {
        while !self.seen && !bytes.is_empty() {
            if self.skip > 0 {
                let n = self.skip.min(bytes.len());
                self.skip -= n;
                bytes = &bytes[n..];
                continue;
            }
            let n = (FRAME_HEADER - self.have).min(bytes.len());
            self.header[self.have..self.have + n].copy_from_slice(&bytes[..n]);
            self.have += n;
            bytes = &bytes[n..];
            if self.have == FRAME_HEADER {
                let [a, b, c, kind, flags, ..] = self.header;
                if kind == SETTINGS && flags & ACK != 0 {
                    self.seen = true;
                    self.state.acked.store(true, Ordering::Relaxed);
                }
                self.skip = u32::from_be_bytes([0, a, b, c]) as usize;
                self.have = 0;
            }
        }
    }
}

impl<T: AsyncRead + Unpin> AsyncRead for AckWatch<T> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let before = buf.filled().len();
        let polled = Pin::new(&mut self.io).poll_read(cx, buf);
        if !self.seen {
            self.watch(&buf.filled()[before..]);
        }
        polled
    }
}

impl<T: AsyncWrite + Unpin> AsyncWrite for AckWatch<T> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.io).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.io).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.io.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.io).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.io).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frame(kind: u8, flags: u8, payload: &[u8]) -> Vec<u8> {
        let len = (payload.len() as u32).to_be_bytes();
        let mut bytes = vec![len[1], len[2], len[3], kind, flags, 0, 0, 0, 0];
        bytes.extend_from_slice(payload);
        bytes
    }

    #[test]
    fn the_ack_is_found_after_other_frames_however_the_bytes_are_cut() {
        let mut stream = frame(SETTINGS, 0, &[0, 3, 0, 0, 0, 100]);
        stream.extend(frame(0x8, 0, &[0, 1, 0, 0]));
        // A SETTINGS ACK's flag byte inside another frame's payload is not an ACK.
        stream.extend(frame(0x6, 0, &[0, 0, 0, 0, SETTINGS, ACK, 0, 0]));
        let before_ack = stream.len();
        stream.extend(frame(SETTINGS, ACK, &[]));
        for cut in [1, 2, 5, 9, 13, stream.len()] {
            let state = Arc::new(ConnState::default());
            let mut watch = AckWatch::new((), state.clone());
            for (i, piece) in stream.chunks(cut).enumerate() {
                watch.watch(piece);
                let read = (i + 1) * cut;
                let acked = state.acked.load(Ordering::Relaxed);
                assert_eq!(acked, read >= stream.len(), "cut {cut}, {read} read");
                assert!(read > before_ack || !acked);
            }
        }
    }
}
