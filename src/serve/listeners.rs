//! The apps' service-port listeners: opened when a table asks for a port, stopped when it no
//! longer does (their open connections finish on their own), TLS when the app names a
//! certificate.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Arc;

use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::model::Mode;
use crate::proxy::accept::listener::{self, Connections, Protocol};
use crate::proxy::{Frontend, ProxyContext};
use crate::routing::RoutingTable;
use crate::tls::SharedCerts;

/// The open service-port listeners and the token that stops each.
#[derive(Debug, Default)]
pub(super) struct ServiceListeners {
    open: HashMap<ListenerKey, (CancellationToken, JoinHandle<()>)>,
    /// Listeners the last table asked for that could not be opened (tried again with the next).
    unbound: usize,
}

impl ServiceListeners {
    /// Whether every listener the last table asked for is open.
    pub(super) fn all_open(&self) -> bool {
        self.unbound == 0
    }

    /// Opens listeners for new service ports, stops those whose port left the table (their
    /// open connections finish on their own).
    pub(super) async fn reconcile(
        &mut self,
        desired: HashMap<ListenerKey, Arc<str>>,
        ctx: &Arc<ProxyContext>,
        connections: &Connections,
        certs: &SharedCerts,
    ) {
        let gone: Vec<_> = self
            .open
            .keys()
            .filter(|key| !desired.contains_key(key))
            .cloned()
            .collect();
        let mut stopped = Vec::with_capacity(gone.len());
        for key in gone {
            if let Some((stop, task)) = self.open.remove(&key) {
                stop.cancel();
                stopped.push(task);
            }
        }
        // A port that changes mode is closed and opened again: wait until the old socket is
        // gone (the accept loop ends at once) so that the new bind does not find it taken.
        for task in stopped {
            let _ = task.await;
        }
        self.unbound = 0;
        for (key, app) in desired {
            if self.open.contains_key(&key) {
                continue;
            }
            let (ip, port, mode, cert) = key.clone();
            match listener::bind((ip, port).into()) {
                Ok(listener) => {
                    let tls = cert.map(|path| crate::tls::file_acceptor(certs, path));
                    let protocol = match mode {
                        Mode::Http => Protocol::Http(Frontend::ServicePort {
                            port,
                            tls: tls.is_some(),
                        }),
                        Mode::Tcp => Protocol::Tcp { port },
                    };
                    let stop = connections.shutdown.child_token();
                    let task = crate::proxy::accept::spread::run_on_each(
                        listener,
                        protocol,
                        tls,
                        ctx.clone(),
                        connections.clone(),
                        stop.clone(),
                    );
                    self.open.insert(key, (stop, task));
                }
                Err(err) => {
                    self.unbound += 1;
                    tracing::error!(app = %app, %ip, port, error = %err, "cannot bind the app's service port; its other routes still work");
                }
            }
        }
    }
}

/// A service-port listener: address, port, mode and, for TLS, the app's certificate file.
pub(super) type ListenerKey = (IpAddr, u16, Mode, Option<std::path::PathBuf>);

/// The service-port listeners a table asks for, each with the app id that wants it. An HTTP
/// port with `HAPROXY_{n}_SSL_CERT` is TLS (in TCP mode the label is ignored, as the bytes
/// pass through untouched).
pub(super) fn desired(table: &RoutingTable, default_ip: IpAddr) -> HashMap<ListenerKey, Arc<str>> {
    table
        .service_ports()
        .map(|f| {
            let ip = f.bind_addr.unwrap_or(default_ip);
            let cert = match f.mode {
                Mode::Http => f.backend.labels().ssl_cert.clone(),
                Mode::Tcp => None,
            };
            (
                (ip, f.port, f.mode, cert),
                f.backend.app_id().shared().clone(),
            )
        })
        .collect()
}
