//! An HTTP/1 response body read from its upstream socket as `http_body` frames, for hyper's
//! engine: the client's own task reads the socket (no connection task, no channel between
//! them), chunked bodies are decoded (their trailers become a trailers frame), and the socket
//! goes back to its endpoint's pool when the body ended cleanly with nothing after it.

use std::pin::Pin;
use std::sync::Arc;
use std::task::{ready, Context, Poll};

use bytes::{Buf, Bytes, BytesMut};
use http::{HeaderMap, HeaderName, HeaderValue};
use http_body::{Body, Frame, SizeHint};
use tokio::net::TcpStream;

use super::chunked::Scanner;
use super::{Endpoint, UpstreamStream};

/// How a response's body ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Framing {
    /// No body (HEAD, 204, 304).
    Empty,
    Length(u64),
    /// Chunked: its end is found by [`Scanner`].
    Chunked,
    /// Until the upstream closes: never reused.
    Close,
}

/// Bytes read from the socket at a time.
const READ_CHUNK: usize = 32 * 1024;
/// Trailer fields accepted in one body.
const MAX_TRAILERS: usize = 100;

/// A response body being read from its upstream connection.
pub struct H1Body {
    /// `None` once the body ended (the socket pooled again or closed).
    stream: Option<TcpStream>,
    /// Read and not yet given out.
    buf: BytesMut,
    framing: Framing,
    /// `Length`: bytes still to come.
    left: u64,
    chunks: Scanner,
    /// A chunked body's trailer section as it arrives.
    trailers: Vec<u8>,
    /// The upstream may carry another request after this response.
    reusable: bool,
    endpoint: Arc<Endpoint>,
}

/// Why a body broke: the client's response ends unfinished.
#[derive(Debug, thiserror::Error)]
pub enum H1BodyError {
    #[error("reading the response body failed: {0}")]
    Io(#[from] std::io::Error),
    #[error("response body broken: {0}")]
    Framing(&'static str),
    #[error("the backend closed before the response body ended")]
    Truncated,
}

impl H1Body {
    /// The body of a response whose head is `head_len` bytes at the start of `read` (what
    /// follows is the body's start).
    pub fn new(
        stream: TcpStream,
        read: Vec<u8>,
        head_len: usize,
        framing: Framing,
        reusable: bool,
        endpoint: Arc<Endpoint>,
    ) -> H1Body {
        let mut buf = Bytes::from(read)
            .try_into_mut()
            .unwrap_or_else(|shared| BytesMut::from(&shared[..]));
        buf.advance(head_len);
        H1Body {
            stream: Some(stream),
            buf,
            framing,
            left: match framing {
                Framing::Length(n) => n,
                _ => 0,
            },
            chunks: Scanner::default(),
            trailers: Vec::new(),
            reusable,
            endpoint,
        }
    }

    /// The body ended: its socket goes back to the pool when nothing followed it.
    fn finish(&mut self) {
        if let Some(stream) = self.stream.take() {
            if self.reusable && self.buf.is_empty() && self.framing != Framing::Close {
                // A full pool hands it back; dropped, it closes.
                let _ = self
                    .endpoint
                    .idle()
                    .here()
                    .native
                    .push(UpstreamStream::new(stream));
            }
        }
    }

    /// The next frame from what is buffered, if there is one; `Ok(None)` when more must be read.
    fn next_buffered(&mut self) -> Result<Option<Frame<Bytes>>, H1BodyError> {
        match self.framing {
            Framing::Empty => Ok(None),
            Framing::Length(_) => {
                let n = self.left.min(self.buf.len() as u64) as usize;
                if n == 0 {
                    return Ok(None);
                }
                self.left -= n as u64;
                let data = self.buf.split_to(n).freeze();
                if self.left == 0 {
                    self.finish();
                }
                Ok(Some(Frame::data(data)))
            }
            Framing::Close if self.buf.is_empty() => Ok(None),
            Framing::Close => Ok(Some(Frame::data(self.buf.split().freeze()))),
            Framing::Chunked => self.next_chunk(),
        }
    }

    /// Walks the chunked framing up to the next data (or the end).
    fn next_chunk(&mut self) -> Result<Option<Frame<Bytes>>, H1BodyError> {
        while !self.buf.is_empty() && !self.chunks.is_done() {
            let left = self.chunks.data_left();
            if left > 0 {
                let n = left.min(self.buf.len() as u64) as usize;
                self.chunks
                    .feed(&self.buf[..n])
                    .map_err(H1BodyError::Framing)?;
                return Ok(Some(Frame::data(self.buf.split_to(n).freeze())));
            }
            if self.chunks.in_trailers() {
                self.trailers.push(self.buf[0]);
            }
            self.chunks
                .feed(&self.buf[..1])
                .map_err(H1BodyError::Framing)?;
            self.buf.advance(1);
        }
        if !self.chunks.is_done() {
            return Ok(None);
        }
        self.finish();
        let trailers = std::mem::take(&mut self.trailers);
        Ok(parse_trailers(&trailers)?.map(Frame::trailers))
    }

    fn is_done(&self) -> bool {
        match self.framing {
            Framing::Empty => true,
            Framing::Length(_) => self.left == 0,
            Framing::Chunked => self.chunks.is_done(),
            Framing::Close => self.stream.is_none(),
        }
    }
}

/// A body that ended whole before it was dropped gives its socket back: hyper never polls one
/// it knows is empty (HEAD, 204, `Content-Length: 0`).
impl Drop for H1Body {
    fn drop(&mut self) {
        if self.is_done() {
            self.finish();
        }
    }
}

impl Body for H1Body {
    type Data = Bytes;
    type Error = H1BodyError;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, H1BodyError>>> {
        let this = self.get_mut();
        loop {
            // A chunked body's trailers went out as it reached its end.
            if this.is_done() {
                this.finish();
                return Poll::Ready(None);
            }
            match this.next_buffered() {
                Ok(Some(frame)) => return Poll::Ready(Some(Ok(frame))),
                Ok(None) if this.is_done() => continue,
                Ok(None) => {}
                Err(err) => {
                    this.stream = None;
                    return Poll::Ready(Some(Err(err)));
                }
            }
            let Some(stream) = &this.stream else {
                return Poll::Ready(None);
            };
            if let Err(err) = ready!(stream.poll_read_ready(cx)) {
                this.stream = None;
                return Poll::Ready(Some(Err(err.into())));
            }
            if this.buf.capacity() - this.buf.len() < READ_CHUNK / 4 {
                this.buf.reserve(READ_CHUNK);
            }
            match stream.try_read_buf(&mut this.buf) {
                Ok(0) if this.framing == Framing::Close => {
                    // Its end: the connection is not reused.
                    this.stream = None;
                    return Poll::Ready(None);
                }
                Ok(0) => {
                    this.stream = None;
                    return Poll::Ready(Some(Err(H1BodyError::Truncated)));
                }
                Ok(_) => {}
                Err(err) if err.kind() == std::io::ErrorKind::WouldBlock => {}
                Err(err) => {
                    this.stream = None;
                    return Poll::Ready(Some(Err(err.into())));
                }
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        match self.framing {
            Framing::Empty => true,
            Framing::Length(_) => self.left == 0,
            Framing::Chunked | Framing::Close => false,
        }
    }

    fn size_hint(&self) -> SizeHint {
        match self.framing {
            Framing::Empty => SizeHint::with_exact(0),
            Framing::Length(_) => SizeHint::with_exact(self.left),
            Framing::Chunked | Framing::Close => SizeHint::default(),
        }
    }
}

/// A chunked body's trailer section (its final CRLF included) as a header map; `None` when it
/// holds no field.
fn parse_trailers(section: &[u8]) -> Result<Option<HeaderMap>, H1BodyError> {
    if section.len() <= 2 {
        return Ok(None);
    }
    let mut fields = [httparse::EMPTY_HEADER; MAX_TRAILERS];
    let fields = match httparse::parse_headers(section, &mut fields) {
        Ok(httparse::Status::Complete((_, fields))) => fields,
        _ => return Err(H1BodyError::Framing("unparsable trailers")),
    };
    let mut map = HeaderMap::with_capacity(fields.len());
    for field in fields.iter() {
        let name = HeaderName::from_bytes(field.name.as_bytes());
        let value = HeaderValue::from_bytes(field.value);
        let (Ok(name), Ok(value)) = (name, value) else {
            return Err(H1BodyError::Framing("unparsable trailers"));
        };
        map.append(name, value);
    }
    Ok(Some(map))
}
