//! The response body the proxy sends: the upstream's body streamed through as it arrives (no
//! buffering, no copy into new buffers), or a small body of our own.

use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::Bytes;
use http_body::{Body, Frame, SizeHint};
use http_body_util::Full;
use hyper::body::Incoming;

use crate::balance::InFlight;
use crate::balance::UpstreamConn;

/// Either an upstream body (holding the endpoint's in-flight count until it ends) or ours.
pub enum ProxyBody {
    Upstream {
        body: Incoming,
        _in_flight: InFlight<UpstreamConn>,
    },
    Local(Full<Bytes>),
}

impl From<Full<Bytes>> for ProxyBody {
    fn from(body: Full<Bytes>) -> Self {
        ProxyBody::Local(body)
    }
}

impl Body for ProxyBody {
    type Data = Bytes;
    type Error = hyper::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, hyper::Error>>> {
        // Both variants are `Unpin`.
        match self.get_mut() {
            ProxyBody::Upstream { body, .. } => Pin::new(body).poll_frame(cx),
            ProxyBody::Local(body) => match Pin::new(body).poll_frame(cx) {
                Poll::Ready(Some(Ok(frame))) => Poll::Ready(Some(Ok(frame))),
                Poll::Ready(Some(Err(never))) => match never {},
                Poll::Ready(None) => Poll::Ready(None),
                Poll::Pending => Poll::Pending,
            },
        }
    }

    fn is_end_stream(&self) -> bool {
        match self {
            ProxyBody::Upstream { body, .. } => body.is_end_stream(),
            ProxyBody::Local(body) => body.is_end_stream(),
        }
    }

    fn size_hint(&self) -> SizeHint {
        match self {
            ProxyBody::Upstream { body, .. } => body.size_hint(),
            ProxyBody::Local(body) => body.size_hint(),
        }
    }
}
