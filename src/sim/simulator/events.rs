//! The event bus and the `/v2/events` stream: Jetty's `EventSourceServlet` framing, byte for
//! byte (see the spec, §2.2): a header block with `Connection: close` and no length, frames of
//! `event:` + one `data:` line ending in CRLF, and a bare CR, LF heartbeat flushed separately.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use serde_json::{Map, Value};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::broadcast::{self, error::RecvError};
use tokio::sync::watch;
use tokio::time::{interval_at, Instant, MissedTickBehavior};

use super::h1;
use super::node::Stops;
use super::state::now_iso;

/// Marathon's `--event_stream_max_outstanding_messages` default: a stream this far behind is
/// closed (Marathon ≥ 1.8).
pub(super) const BUS_CAPACITY: usize = 1024;

/// Exactly what Jetty sends before the first event.
pub(super) const STREAM_HEAD: &[u8] =
    b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream;charset=UTF-8\r\nConnection: close\r\n\r\n";

/// One published event, its frame rendered once for every stream.
#[derive(Debug, Clone)]
pub(super) struct Event {
    pub kind: Arc<str>,
    pub frame: Bytes,
    /// Written a byte at a time with this pause between bytes (a fault: a slow drip).
    pub drip: Option<Duration>,
}

#[derive(Debug)]
pub(super) struct Bus {
    tx: broadcast::Sender<Event>,
}

impl Bus {
    pub fn new() -> Bus {
        Bus {
            tx: broadcast::channel(BUS_CAPACITY).0,
        }
    }

    /// Adds `eventType` and `timestamp` to `data` and sends it to every open stream. A non-object
    /// `data` is carried as `{"data": ...}`.
    pub fn publish(&self, kind: &str, data: Value) {
        let mut fields = match data {
            Value::Object(map) => map,
            Value::Null => Map::new(),
            other => Map::from_iter([("data".to_owned(), other)]),
        };
        fields.insert("eventType".to_owned(), Value::from(kind));
        fields.insert("timestamp".to_owned(), Value::from(now_iso()));
        // serde_json's compact form has no newlines: exactly one data line per event.
        let json = Value::Object(fields).to_string();
        let frame = format!("event: {kind}\r\ndata: {json}\r\n\r\n");
        // No receivers is fine: nobody is listening.
        let _ = self.tx.send(Event {
            kind: Arc::from(kind),
            frame: Bytes::from(frame),
            drip: None,
        });
    }

    /// Sends `frame` as it is, whatever it holds (a fault: garbage on the stream), to streams
    /// that accept `kind`; with `drip`, a byte at a time.
    pub fn publish_raw(&self, kind: &str, frame: Bytes, drip: Option<Duration>) {
        let _ = self.tx.send(Event {
            kind: Arc::from(kind),
            frame,
            drip,
        });
    }

    pub fn subscribe(&self) -> broadcast::Receiver<Event> {
        self.tx.subscribe()
    }
}

/// The `event_type` query parameters: each compared literally, none means everything.
#[derive(Debug, Clone, Default)]
pub(super) struct Filter {
    types: Vec<String>,
}

impl Filter {
    pub fn from_query(query: Option<&str>) -> Filter {
        let types = h1::query_pairs(query)
            .filter(|(key, _)| key == "event_type")
            .map(|(_, value)| value)
            .collect();
        Filter { types }
    }

    pub fn accepts(&self, kind: &str) -> bool {
        self.types.is_empty() || self.types.iter().any(|t| t == kind)
    }
}

/// What a stream needs besides its socket.
pub(super) struct StreamSetup<'a> {
    pub bus: &'a Bus,
    pub heartbeat: Duration,
    pub stalled: watch::Receiver<bool>,
    pub stops: Stops,
    pub filter: Filter,
    pub peer: SocketAddr,
}

/// Serves one accepted stream until the client leaves, the stream lags, or `stops` fires.
/// Like Marathon, publishes `event_stream_attached` on connect and `event_stream_detached` on close.
/// `on_attached` runs once the stream is subscribed (it counts the connection).
pub(super) async fn stream_events(
    mut stream: TcpStream,
    setup: StreamSetup<'_>,
    on_attached: impl FnOnce(),
) {
    let StreamSetup {
        bus,
        heartbeat,
        mut stalled,
        mut stops,
        filter,
        peer,
    } = setup;
    // Subscribe before anything is written: a client that has seen the head can rely on
    // every later change reaching it.
    let mut rx = bus.subscribe();
    on_attached();
    let remote = serde_json::json!({ "remoteAddress": peer.ip().to_string() });
    bus.publish("event_stream_attached", remote.clone());
    if write(&mut stream, &mut stops, STREAM_HEAD).await.is_err() {
        bus.publish("event_stream_detached", remote);
        return;
    }
    let mut ticker = interval_at(Instant::now() + heartbeat, heartbeat);
    ticker.set_missed_tick_behavior(MissedTickBehavior::Delay);
    let mut is_stalled = *stalled.borrow_and_update();
    let mut scratch = [0u8; 512];
    loop {
        // Biased: queued events always go out before a heartbeat, so a heartbeat tells a
        // client that everything published before it was delivered (or filtered out).
        let out = tokio::select! {
            biased;
            () = stops.fired() => break,
            // SSE clients send nothing; a read only ends when they go away.
            read = stream.read(&mut scratch) => match read {
                Ok(0) | Err(_) => break,
                Ok(_) => continue,
            },
            changed = stalled.changed() => {
                if changed.is_err() {
                    break;
                }
                is_stalled = *stalled.borrow_and_update();
                if !is_stalled {
                    ticker.reset();
                }
                continue;
            }
            received = rx.recv(), if !is_stalled => match received {
                Ok(event) if filter.accepts(&event.kind) => match event.drip {
                    None => Out::Frame(event.frame),
                    Some(pause) => Out::Drip(event.frame, pause),
                },
                Ok(_) => continue,
                Err(RecvError::Lagged(missed)) => {
                    tracing::info!(%peer, missed, "event stream fell behind; closing it as Marathon does");
                    break;
                }
                Err(RecvError::Closed) => break,
            },
            _ = ticker.tick(), if !is_stalled => Out::Heartbeat,
        };
        let written = match out {
            Out::Frame(frame) => write(&mut stream, &mut stops, &frame).await,
            Out::Drip(frame, pause) => {
                let mut written = Ok(());
                for byte in frame.chunks(1) {
                    written = write(&mut stream, &mut stops, byte).await;
                    if written.is_err() {
                        break;
                    }
                    tokio::time::sleep(pause).await;
                }
                written
            }
            // Jetty writes CR and LF with a flush each: they may arrive in separate reads.
            Out::Heartbeat => match write(&mut stream, &mut stops, b"\r").await {
                Ok(()) => write(&mut stream, &mut stops, b"\n").await,
                Err(err) => Err(err),
            },
        };
        if written.is_err() {
            break;
        }
    }
    bus.publish("event_stream_detached", remote);
    let _ = stream.shutdown().await;
}

enum Out {
    Frame(Bytes),
    Drip(Bytes, Duration),
    Heartbeat,
}

/// Writes and flushes, unless the stream must stop first (a client that stopped reading
/// must not keep the stream from closing).
async fn write(stream: &mut TcpStream, stops: &mut Stops, bytes: &[u8]) -> Result<(), ()> {
    let written = tokio::select! {
        () = stops.fired() => return Err(()),
        written = async {
            stream.write_all(bytes).await?;
            stream.flush().await
        } => written,
    };
    written.map_err(|_| ())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn filter_matches_literally() {
        let filter = Filter::from_query(Some("plan-format=light&event_type=a&event_type=b"));
        assert!(filter.accepts("a") && filter.accepts("b") && !filter.accepts("c"));
        let comma = Filter::from_query(Some("event_type=a,b"));
        assert!(!comma.accepts("a") && !comma.accepts("b"));
        assert!(Filter::from_query(None).accepts("anything"));
    }

    #[tokio::test]
    async fn frames_are_one_line_json_with_type_and_timestamp() {
        let bus = Bus::new();
        let mut rx = bus.subscribe();
        bus.publish("x_event", serde_json::json!({"text": "a\nb"}));
        let event = rx.recv().await.unwrap();
        let frame = std::str::from_utf8(&event.frame).unwrap();
        let data = frame
            .strip_prefix("event: x_event\r\ndata: ")
            .and_then(|rest| rest.strip_suffix("\r\n\r\n"))
            .unwrap();
        assert!(!data.contains('\n') && !data.contains('\r'));
        let json: Value = serde_json::from_str(data).unwrap();
        assert_eq!(json["eventType"], "x_event");
        assert_eq!(json["text"], "a\nb");
        assert!(json["timestamp"].as_str().unwrap().ends_with('Z'));
    }
}
