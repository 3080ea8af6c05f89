//! The bodies of one HTTP/2 stream to a backend, on the h2 crate directly: the request body
//! sent as it arrives ([`SendBody`]), taking the stream's send window as the backend opens it,
//! and the response body read from the stream ([`H2Body`]), its window given back as each
//! frame is handed on, so a slow client holds the backend to what the window allows.

use std::future::Future;
use std::pin::Pin;
use std::task::{ready, Context, Poll};

use bytes::Bytes;
use h2::{RecvStream, SendStream};
use http_body::{Body, Frame, SizeHint};

use super::body::ClientBodyError;
use super::replay::ReplayBody;

/// Why a request body did not reach the backend whole.
pub enum SendFailure {
    /// The client's body broke or stalled: not the backend's fault.
    Client(ClientBodyError),
    /// The stream broke (the backend reset it, or the connection went).
    Stream(h2::Error),
}

/// A request body on its way to the backend, frame by frame as the window allows.
pub struct SendBody {
    body: ReplayBody,
    send: SendStream<Bytes>,
}

impl SendBody {
    pub fn new(body: ReplayBody, send: SendStream<Bytes>) -> SendBody {
        SendBody { body, send }
    }

    /// Runs to the body's end on its own task: the request body goes on after the response
    /// head (a bidirectional call). Failures reset the stream, which the response body sees.
    pub fn finish_on_its_own(self) {
        tokio::spawn(async move {
            let _ = self.await;
        });
    }
}

impl Future for SendBody {
    type Output = Result<(), SendFailure>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.get_mut();
        loop {
            // Room for at least a byte before the next frame is read: a backend that opens no
            // window holds the client's body back, not in our buffers.
            this.send.reserve_capacity(1);
            if this.send.capacity() == 0 {
                loop {
                    match ready!(this.send.poll_capacity(cx)) {
                        Some(Ok(0)) => continue,
                        Some(Ok(_)) => break,
                        Some(Err(err)) => return Poll::Ready(Err(SendFailure::Stream(err))),
                        None => return Poll::Ready(Err(SendFailure::Stream(closed()))),
                    }
                }
            } else if let Poll::Ready(reset) = this.send.poll_reset(cx) {
                let err = reset.map_or_else(|err| err, h2::Error::from);
                return Poll::Ready(Err(SendFailure::Stream(err)));
            }
            let frame = match ready!(Pin::new(&mut this.body).poll_frame(cx)) {
                Some(Ok(frame)) => frame,
                Some(Err(err)) => {
                    this.send.send_reset(h2::Reason::CANCEL);
                    return Poll::Ready(Err(SendFailure::Client(err)));
                }
                None => {
                    this.send.reserve_capacity(0);
                    let ended = this.send.send_data(Bytes::new(), true);
                    return Poll::Ready(ended.map_err(SendFailure::Stream));
                }
            };
            match frame.into_data() {
                Ok(data) => {
                    let end = this.body.is_end_stream();
                    if let Err(err) = this.send.send_data(data, end) {
                        return Poll::Ready(Err(SendFailure::Stream(err)));
                    }
                    if end {
                        return Poll::Ready(Ok(()));
                    }
                }
                Err(frame) => {
                    if let Ok(trailers) = frame.into_trailers() {
                        this.send.reserve_capacity(0);
                        let sent = this.send.send_trailers(trailers);
                        return Poll::Ready(sent.map_err(SendFailure::Stream));
                    }
                }
            }
        }
    }
}

/// The error a stream gets when its connection went before the stream could send.
fn closed() -> h2::Error {
    h2::Error::from(h2::Reason::CANCEL)
}

/// A response body read from its HTTP/2 stream: data, then trailers (gRPC's status).
pub struct H2Body {
    recv: RecvStream,
    data_done: bool,
}

impl H2Body {
    pub fn new(recv: RecvStream) -> H2Body {
        H2Body {
            recv,
            data_done: false,
        }
    }
}

impl Body for H2Body {
    type Data = Bytes;
    type Error = h2::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, h2::Error>>> {
        let this = self.get_mut();
        if !this.data_done {
            match ready!(this.recv.poll_data(cx)) {
                Some(Ok(data)) => {
                    // Handed on: the backend may send as much again.
                    let _ = this.recv.flow_control().release_capacity(data.len());
                    return Poll::Ready(Some(Ok(Frame::data(data))));
                }
                Some(Err(err)) => return Poll::Ready(Some(Err(err))),
                None => this.data_done = true,
            }
        }
        match ready!(this.recv.poll_trailers(cx)) {
            Ok(Some(trailers)) => Poll::Ready(Some(Ok(Frame::trailers(trailers)))),
            Ok(None) => Poll::Ready(None),
            Err(err) => Poll::Ready(Some(Err(err))),
        }
    }

    fn is_end_stream(&self) -> bool {
        self.recv.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        SizeHint::default()
    }
}
