//! The load benchmark's TLS handshake client (scripts/loadbench.py runs it; not a Criterion bench).
//! N concurrent loops of: connect, TLS 1.3 handshake with SNI, one HTTP/1.1 request with
//! `Connection: close`, read the whole response, close. Without `--resume` the client keeps no
//! session, so every handshake is a full one whatever the server offers (wrk cannot promise that:
//! it hands the last session back on reconnect); with `--resume` each loop keeps a session store
//! of its own (rustls' in-memory one) and offers the ticket its last connection received. Each
//! handshake is counted as full or resumed from rustls' own `handshake_kind()`, so the report
//! shows what the server really did.
//!
//! The certificate's chain is not checked (the bench's certificate is self-signed), but the
//! server's handshake signature is, with the same ring provider: the client does the work a
//! browser does per handshake, short of path building.
//!
//! `cargo build --release --bench handshake_load`, then
//! `handshake_load --addr 127.0.0.1:PORT --sni localhost --host NAME --conns 50 --seconds 5
//! [--resume] [--threads 1]`; prints one JSON line: handshakes/s, full (of which after a
//! HelloRetryRequest) and resumed counts, errors, p50/p99/p99.9 of connect → response read, in ms.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use rustls::pki_types::ServerName;
use rustls::{ClientConfig, HandshakeKind};
use switchyard::upstream::tls::AnyCertificate;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;

/// One exchange may take at most this long before it counts as an error.
const EXCHANGE_TIMEOUT: Duration = Duration::from_secs(10);

struct Args {
    addr: SocketAddr,
    sni: ServerName<'static>,
    host: String,
    conns: usize,
    seconds: f64,
    resume: bool,
    threads: usize,
}

fn parse_args() -> Result<Args, String> {
    let mut args = Args {
        addr: "127.0.0.1:0".parse().expect("a literal address"), // none given: port 0
        sni: ServerName::try_from("localhost").expect("a literal name"),
        host: "localhost".into(),
        conns: 50,
        seconds: 5.0,
        resume: false,
        threads: 1,
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        if flag == "--resume" {
            args.resume = true;
            continue;
        }
        if flag == "--bench" {
            continue; // what `cargo bench` passes
        }
        let value = it.next().ok_or(format!("{flag} needs a value"))?;
        let bad = |e: &dyn std::fmt::Display| format!("{flag} {value}: {e}");
        match flag.as_str() {
            "--addr" => args.addr = value.parse().map_err(|e| bad(&e))?,
            "--sni" => args.sni = ServerName::try_from(value.clone()).map_err(|e| bad(&e))?,
            "--host" => args.host = value,
            "--conns" => args.conns = value.parse().map_err(|e| bad(&e))?,
            "--seconds" => args.seconds = value.parse().map_err(|e| bad(&e))?,
            "--threads" => args.threads = value.parse().map_err(|e| bad(&e))?,
            _ => return Err(format!("unknown flag {flag}")),
        }
    }
    if args.addr.port() == 0 {
        return Err("--addr HOST:PORT is needed (scripts/loadbench.py gives it)".into());
    }
    if args.conns == 0 || args.threads == 0 || args.seconds <= 0.0 {
        return Err("--conns, --threads and --seconds must be positive".into());
    }
    Ok(args)
}

fn client_config(resume: bool) -> ClientConfig {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = ClientConfig::builder_with_provider(provider.clone())
        .with_protocol_versions(&[&rustls::version::TLS13])
        .expect("ring supports TLS 1.3")
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(AnyCertificate(provider)))
        .with_no_client_auth();
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    config.resumption = if resume {
        rustls::client::Resumption::in_memory_sessions(4)
    } else {
        rustls::client::Resumption::disabled()
    };
    config
}

/// What one loop saw.
#[derive(Default)]
struct Tally {
    latencies_us: Vec<u32>,
    full: u64,
    /// Full handshakes the server made with a HelloRetryRequest (another key share group).
    retried: u64,
    resumed: u64,
    errors: u64,
    first_error: Option<String>,
}

/// One connection: handshake, request, the whole response (by Content-Length, or to the end).
async fn exchange(
    connector: &TlsConnector,
    args: &Args,
    request: &[u8],
) -> Result<HandshakeKind, String> {
    let tcp = TcpStream::connect(args.addr)
        .await
        .map_err(|e| format!("connect: {e}"))?;
    tcp.set_nodelay(true).map_err(|e| e.to_string())?;
    let mut tls = connector
        .connect(args.sni.clone(), tcp)
        .await
        .map_err(|e| format!("handshake: {e}"))?;
    let kind = tls
        .get_ref()
        .1
        .handshake_kind()
        .ok_or("no handshake kind")?;
    tls.write_all(request)
        .await
        .map_err(|e| format!("write: {e}"))?;
    let mut buf = Vec::with_capacity(4096);
    let mut chunk = [0u8; 4096];
    let mut want: Option<usize> = None;
    loop {
        if want.is_some_and(|total| buf.len() >= total) {
            break;
        }
        let n = match tls.read(&mut chunk).await {
            Ok(n) => n,
            // A server that closes without close_notify after a complete response is fine.
            Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof && want.is_none() => 0,
            Err(e) => return Err(format!("read: {e}")),
        };
        if n == 0 {
            if want.is_some() || buf.is_empty() {
                return Err("closed before the whole response".into());
            }
            break;
        }
        buf.extend_from_slice(&chunk[..n]);
        if want.is_none() {
            want = response_length(&buf);
        }
    }
    if !buf.starts_with(b"HTTP/1.1 200") {
        let line = buf.split(|&b| b == b'\r').next().unwrap_or_default();
        return Err(format!("status: {}", String::from_utf8_lossy(line)));
    }
    // close_notify and FIN, as a browser closing the connection sends.
    let _ = tls.shutdown().await;
    Ok(kind)
}

/// Head plus Content-Length, once the head is in; None before that or without the header.
fn response_length(buf: &[u8]) -> Option<usize> {
    let end = buf.windows(4).position(|w| w == b"\r\n\r\n")? + 4;
    let head = std::str::from_utf8(&buf[..end]).ok()?;
    head.lines()
        .filter_map(|line| line.split_once(':'))
        .find(|(name, _)| name.trim().eq_ignore_ascii_case("content-length"))
        .and_then(|(_, value)| value.trim().parse::<usize>().ok())
        .map(|length| end + length)
}

async fn run_loop(connector: TlsConnector, args: Arc<Args>, deadline: Instant) -> Tally {
    let request = format!(
        "GET / HTTP/1.1\r\nHost: {}\r\nConnection: close\r\n\r\n",
        args.host
    );
    let mut tally = Tally::default();
    while Instant::now() < deadline {
        let start = Instant::now();
        let got = tokio::time::timeout(
            EXCHANGE_TIMEOUT,
            exchange(&connector, &args, request.as_bytes()),
        )
        .await
        .unwrap_or_else(|_| Err("timed out".into()));
        match got {
            Ok(kind) => {
                let us = start.elapsed().as_micros();
                tally
                    .latencies_us
                    .push(u32::try_from(us).unwrap_or(u32::MAX));
                match kind {
                    HandshakeKind::Resumed => tally.resumed += 1,
                    HandshakeKind::FullWithHelloRetryRequest => {
                        tally.full += 1;
                        tally.retried += 1;
                    }
                    _ => tally.full += 1,
                }
            }
            Err(e) => {
                tally.errors += 1;
                tally.first_error.get_or_insert(e);
            }
        }
    }
    tally
}

fn percentile_ms(sorted: &[u32], q: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let index = ((q * sorted.len() as f64) as usize).min(sorted.len() - 1);
    f64::from(sorted[index]) / 1000.0
}

fn main() {
    let args = match parse_args() {
        Ok(args) => Arc::new(args),
        Err(e) => {
            eprintln!("handshake_load: {e}");
            // `cargo bench` runs every bench with nothing but `--bench`: nothing to measure.
            let from_cargo_bench = std::env::args().skip(1).eq(["--bench".to_string()]);
            std::process::exit(if from_cargo_bench { 0 } else { 2 });
        }
    };
    let mut runtime = if args.threads == 1 {
        tokio::runtime::Builder::new_current_thread()
    } else {
        let mut builder = tokio::runtime::Builder::new_multi_thread();
        builder.worker_threads(args.threads);
        builder
    };
    let runtime = runtime.enable_all().build().expect("a tokio runtime");
    // With --resume each loop is one client with a session store of its own, as a returning
    // browser is: one shared store would run short of tickets (rustls keeps a few per server
    // name and a TLS 1.3 ticket is used once) and hand out full handshakes instead.
    let shared = TlsConnector::from(Arc::new(client_config(args.resume)));
    let connector = || {
        if args.resume {
            TlsConnector::from(Arc::new(client_config(true)))
        } else {
            shared.clone()
        }
    };
    let start = Instant::now();
    let deadline = start + Duration::from_secs_f64(args.seconds);
    let tallies = runtime.block_on(async {
        let loops: Vec<_> = (0..args.conns)
            .map(|_| tokio::spawn(run_loop(connector(), args.clone(), deadline)))
            .collect();
        let mut tallies = Vec::with_capacity(loops.len());
        for handle in loops {
            tallies.push(handle.await.expect("a load loop panicked"));
        }
        tallies
    });
    let elapsed = start.elapsed().as_secs_f64();
    let mut all = Tally::default();
    for t in tallies {
        all.latencies_us.extend(t.latencies_us);
        all.full += t.full;
        all.retried += t.retried;
        all.resumed += t.resumed;
        all.errors += t.errors;
        if all.first_error.is_none() {
            all.first_error = t.first_error;
        }
    }
    all.latencies_us.sort_unstable();
    let ok = all.latencies_us.len();
    let report = serde_json::json!({
        "handshakes": ok,
        "per_s": ok as f64 / elapsed,
        "full": all.full,
        "hello_retries": all.retried,
        "resumed": all.resumed,
        "errors": all.errors,
        "first_error": all.first_error,
        "seconds": elapsed,
        "p50_ms": percentile_ms(&all.latencies_us, 0.5),
        "p99_ms": percentile_ms(&all.latencies_us, 0.99),
        "p999_ms": percentile_ms(&all.latencies_us, 0.999),
    });
    println!("{report}");
}
