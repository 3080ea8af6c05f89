//! Header rewriting on the way through: hop-by-hop headers out (RFC 9110 §7.6.1), the
//! `X-Forwarded-*` headers in.

use std::net::IpAddr;

use http::header::{self, HeaderMap, HeaderName, HeaderValue};

static X_FORWARDED_FOR: HeaderName = HeaderName::from_static("x-forwarded-for");
static X_FORWARDED_PROTO: HeaderName = HeaderName::from_static("x-forwarded-proto");
static X_FORWARDED_PORT: HeaderName = HeaderName::from_static("x-forwarded-port");
static X_REAL_IP: HeaderName = HeaderName::from_static("x-real-ip");
static X_FORWARDED_HOST: HeaderName = HeaderName::from_static("x-forwarded-host");
static X_CLIENT_IP: HeaderName = HeaderName::from_static("x-client-ip");
static KEEP_ALIVE: HeaderName = HeaderName::from_static("keep-alive");
static PROXY_CONNECTION: HeaderName = HeaderName::from_static("proxy-connection");
static HTTP2_SETTINGS: HeaderName = HeaderName::from_static("http2-settings");

/// The fixed hop-by-hop headers; `Connection` may name more. `HTTP2-Settings` belongs to an
/// `h2c` upgrade (RFC 7540 §3.2.1), never forwarded.
static HOP_BY_HOP: [&HeaderName; 10] = [
    &header::CONNECTION,
    &KEEP_ALIVE,
    &PROXY_CONNECTION,
    &header::PROXY_AUTHENTICATE,
    &header::PROXY_AUTHORIZATION,
    &header::TE,
    &header::TRAILER,
    &header::TRANSFER_ENCODING,
    &header::UPGRADE,
    &HTTP2_SETTINGS,
];
const CONNECTION_BIT: u16 = 1 << 0;
const UPGRADE_BIT: u16 = 1 << 8;

/// Removes hop-by-hop headers: the fixed list and every header the `Connection` header names.
/// With `keep_upgrade`, `Upgrade` survives and `Connection: upgrade` is set again, so that a
/// WebSocket handshake reaches the backend.
///
/// One pass over the names finds which are present; only those are removed (a removal hashes
/// the name, and most messages carry one hop-by-hop header or none).
pub fn strip_hop_by_hop(headers: &mut HeaderMap, keep_upgrade: bool) {
    let mut present = 0u16;
    for name in headers.keys() {
        if let Some(i) = HOP_BY_HOP.iter().position(|h| *h == name) {
            present |= 1 << i;
        }
    }
    if present == 0 {
        return;
    }
    if present & CONNECTION_BIT != 0 {
        // Names listed in Connection are hop-by-hop too; collect them before removing it.
        // `close` names no header; `keep-alive` and `upgrade` are in the fixed list.
        let mut named: Vec<HeaderName> = Vec::new();
        for value in headers.get_all(header::CONNECTION) {
            let Ok(value) = value.to_str() else { continue };
            for token in value.split(',').map(str::trim) {
                if ["close", "keep-alive", "upgrade", ""]
                    .iter()
                    .any(|t| token.eq_ignore_ascii_case(t))
                {
                    continue;
                }
                if let Ok(name) = HeaderName::from_bytes(token.as_bytes()) {
                    named.push(name);
                }
            }
        }
        for name in named {
            headers.remove(name);
        }
    }
    let keep_upgrade = keep_upgrade && present & UPGRADE_BIT != 0;
    for (i, name) in HOP_BY_HOP.iter().enumerate() {
        if present & (1 << i) != 0 && !(keep_upgrade && **name == header::UPGRADE) {
            headers.remove(*name);
        }
    }
    if keep_upgrade {
        headers.insert(header::CONNECTION, HeaderValue::from_static("upgrade"));
    }
}

/// One client connection's `X-Forwarded-*` values, formatted once when it connects rather than
/// on every request (formatting the address was a tenth of a request's cost).
#[derive(Debug, Clone)]
pub struct Forwarded {
    client: HeaderValue,
    proto: HeaderValue,
    port: HeaderValue,
}

impl Forwarded {
    pub fn new(client: IpAddr, proto: &'static str, port: u16) -> Forwarded {
        let client = client.to_canonical().to_string();
        Forwarded {
            // An address's text is always a valid header value.
            client: HeaderValue::from_str(&client).unwrap_or(HeaderValue::from_static("unknown")),
            proto: HeaderValue::from_static(proto),
            port: HeaderValue::from(port),
        }
    }

    pub fn client(&self) -> &HeaderValue {
        &self.client
    }

    pub fn proto(&self) -> &HeaderValue {
        &self.proto
    }

    pub fn port(&self) -> &HeaderValue {
        &self.port
    }
}

/// What a backend can trust: appends the client to `X-Forwarded-For`, sets `X-Real-IP`,
/// `X-Forwarded-Proto` and `-Port`, and drops the forwarding headers a client can make up that
/// we do not set (`Forwarded`, `X-Forwarded-Host`, `X-Client-IP`) and every header whose name
/// has an underscore (CGI and WSGI backends read `X_Forwarded_For` as `X-Forwarded-For`;
/// nginx drops them too).
pub fn add_forwarded(headers: &mut HeaderMap, forwarded: &Forwarded) {
    drop_made_up(headers);
    let client = forwarded.client.clone();
    let value = match headers.get(&X_FORWARDED_FOR).map(HeaderValue::as_bytes) {
        Some(previous) if !previous.is_empty() => {
            let mut joined = Vec::with_capacity(previous.len() + 2 + client.len());
            joined.extend_from_slice(previous);
            joined.extend_from_slice(b", ");
            joined.extend_from_slice(client.as_bytes());
            HeaderValue::from_bytes(&joined).ok()
        }
        _ => Some(client.clone()),
    };
    if let Some(value) = value {
        headers.insert(X_FORWARDED_FOR.clone(), value);
    }
    headers.insert(X_REAL_IP.clone(), client);
    headers.insert(X_FORWARDED_PROTO.clone(), forwarded.proto.clone());
    headers.insert(X_FORWARDED_PORT.clone(), forwarded.port.clone());
}

/// Removes what [`add_forwarded`] does not vouch for. One pass over the names; a removal only
/// for what is there (most requests carry none of these).
fn drop_made_up(headers: &mut HeaderMap) {
    let mut found: smallvec::SmallVec<[HeaderName; 2]> = smallvec::SmallVec::new();
    for name in headers.keys() {
        let made_up = *name == header::FORWARDED
            || *name == X_FORWARDED_HOST
            || *name == X_CLIENT_IP
            || name.as_str().contains('_');
        if made_up && !found.contains(name) {
            found.push(name.clone());
        }
    }
    for name in found {
        headers.remove(name);
    }
}

/// Whether a request's `TE` names `trailers` (gRPC clients send `te: trailers`).
pub fn accepts_trailers(headers: &HeaderMap) -> bool {
    headers.get_all(header::TE).iter().any(|v| {
        v.to_str().is_ok_and(|v| {
            v.split(',').any(|t| {
                t.split(';')
                    .next()
                    .unwrap_or("")
                    .trim()
                    .eq_ignore_ascii_case("trailers")
            })
        })
    })
}

/// Whether a request asks for a WebSocket (`Connection: upgrade` + `Upgrade: websocket`), the
/// one upgrade forwarded. Any other (`h2c` above all: a blind HTTP/2 tunnel to the backend,
/// past routing and header rewriting) is stripped with the hop-by-hop headers, as HAProxy and
/// nginx do.
pub fn wants_upgrade(headers: &HeaderMap) -> bool {
    let mut upgrades = headers.get_all(header::UPGRADE).iter();
    let websocket = upgrades
        .next()
        .is_some_and(|v| v.as_bytes().trim_ascii().eq_ignore_ascii_case(b"websocket"));
    websocket
        && upgrades.next().is_none()
        && headers.get_all(header::CONNECTION).iter().any(|v| {
            v.to_str().is_ok_and(|v| {
                v.split(',')
                    .any(|t| t.trim().eq_ignore_ascii_case("upgrade"))
            })
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hop_by_hop_headers_go() {
        let mut h = HeaderMap::new();
        h.insert(
            header::CONNECTION,
            HeaderValue::from_static("keep-alive, x-secret"),
        );
        h.insert("x-secret", HeaderValue::from_static("1"));
        h.insert("keep-alive", HeaderValue::from_static("timeout=5"));
        h.insert(
            header::TRANSFER_ENCODING,
            HeaderValue::from_static("chunked"),
        );
        h.insert(header::TE, HeaderValue::from_static("trailers"));
        h.insert(header::UPGRADE, HeaderValue::from_static("websocket"));
        h.insert("x-kept", HeaderValue::from_static("1"));
        strip_hop_by_hop(&mut h, false);
        let names: Vec<_> = h.keys().map(|k| k.as_str()).collect();
        assert_eq!(names, ["x-kept"]);
    }

    #[test]
    fn only_what_is_hop_by_hop_goes() {
        let mut h = HeaderMap::new();
        h.insert("x-kept", HeaderValue::from_static("1"));
        h.insert(header::HOST, HeaderValue::from_static("a.test"));
        let before = h.clone();
        strip_hop_by_hop(&mut h, false);
        assert_eq!(h, before);
        h.insert(header::CONNECTION, HeaderValue::from_static("close"));
        h.insert(header::UPGRADE, HeaderValue::from_static("websocket"));
        strip_hop_by_hop(&mut h, true);
        assert_eq!(h.len(), 4, "{h:?}");
        assert_eq!(h[header::CONNECTION], "upgrade");
        strip_hop_by_hop(&mut h, false);
        assert_eq!(h, before);
    }

    #[test]
    fn an_upgrade_survives_when_asked() {
        let mut h = HeaderMap::new();
        h.insert(header::CONNECTION, HeaderValue::from_static("Upgrade"));
        h.insert(header::UPGRADE, HeaderValue::from_static("websocket"));
        assert!(wants_upgrade(&h));
        strip_hop_by_hop(&mut h, true);
        assert_eq!(h[header::UPGRADE], "websocket");
        assert_eq!(h[header::CONNECTION], "upgrade");
    }

    #[test]
    fn only_a_websocket_upgrade_is_one() {
        let with = |upgrade: &str| {
            let mut h = HeaderMap::new();
            h.insert(
                header::CONNECTION,
                HeaderValue::from_static("Upgrade, HTTP2-Settings"),
            );
            h.insert(header::UPGRADE, HeaderValue::from_str(upgrade).unwrap());
            h.insert(
                "http2-settings",
                HeaderValue::from_static("AAMAAABkAAQAAP__"),
            );
            h
        };
        assert!(wants_upgrade(&with("WebSocket")));
        for other in ["h2c", "websocket, h2c", "TLS/1.0", ""] {
            let mut h = with(other);
            assert!(!wants_upgrade(&h), "{other}");
            strip_hop_by_hop(&mut h, false);
            assert!(h.is_empty(), "{other}: {h:?}");
        }
    }

    #[test]
    fn forwarded_for_is_appended() {
        let mut h = HeaderMap::new();
        h.insert("x-forwarded-for", HeaderValue::from_static("10.1.1.1"));
        add_forwarded(
            &mut h,
            &Forwarded::new("127.0.0.1".parse().unwrap(), "http", 80),
        );
        assert_eq!(h["x-forwarded-for"], "10.1.1.1, 127.0.0.1");
        assert_eq!(h["x-real-ip"], "127.0.0.1");
        assert_eq!(h["x-forwarded-proto"], "http");
        assert_eq!(h["x-forwarded-port"], "80");
        let mut h = HeaderMap::new();
        add_forwarded(
            &mut h,
            &Forwarded::new("::ffff:127.0.0.2".parse().unwrap(), "https", 443),
        );
        assert_eq!(h["x-forwarded-for"], "127.0.0.2");
    }
}
