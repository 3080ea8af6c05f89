//! The routing table as operators read it: `switchyard routes` (text or `--json`), and later
//! the admin `/routes` endpoint, which serves the same JSON.

use std::collections::HashMap;
use std::fmt::{self, Write as _};

use serde::Serialize;

use crate::model::{BackendProtocol, Balance, Mode, Problem, Severity, TaskEndpoint};
use crate::routing::{Backend, RoutingTable};

/// The serialisable view of a table.
#[derive(Debug, Serialize)]
pub struct RoutesReport<'t> {
    pub generation: u64,
    pub routes: Vec<RouteRow<'t>>,
    pub backends: Vec<BackendRow<'t>>,
    pub problems: &'t [Problem],
}

/// One line of the routes listing.
#[derive(Debug, Serialize)]
pub struct RouteRow<'t> {
    /// `vhost` (ports 80/443, by Host), `http:<port>`/`tcp:<port>` (a service port), or
    /// `app-id` (port 9091, by X-Marathon-App-Id).
    pub listener: String,
    /// Vhost, or `*` on a service port.
    pub host: String,
    /// Path prefixes, or `*`.
    pub path: String,
    pub app_id: &'t str,
    pub backend: &'t str,
}

#[derive(Debug, Serialize)]
pub struct BackendRow<'t> {
    pub name: &'t str,
    pub app_id: &'t str,
    pub port_index: usize,
    pub service_port: u16,
    pub mode: Mode,
    /// How the endpoints are spoken to (`h1`, `h2`, `h1-ssl`, `h2-ssl`; HTTP mode).
    pub protocol: BackendProtocol,
    pub balance: Balance,
    pub sticky: bool,
    pub endpoints: &'t [TaskEndpoint],
}

impl<'t> RoutesReport<'t> {
    pub fn new(table: &'t RoutingTable) -> RoutesReport<'t> {
        let mut routes = Vec::new();
        for route in table.http_routes() {
            routes.push(RouteRow {
                listener: "vhost".to_owned(),
                host: route.vhost.to_string(),
                path: route
                    .path
                    .as_ref()
                    .map_or("*".to_owned(), ToString::to_string),
                app_id: route.backend.app_id().as_str(),
                backend: &route.backend.name,
            });
        }
        for frontend in table.service_ports() {
            let listener = match frontend.bind_addr {
                Some(addr) => format!("{}:{}:{}", mode_name(frontend.mode), addr, frontend.port),
                None => format!("{}:{}", mode_name(frontend.mode), frontend.port),
            };
            routes.push(RouteRow {
                listener,
                host: "*".to_owned(),
                path: "*".to_owned(),
                app_id: frontend.backend.app_id().as_str(),
                backend: &frontend.backend.name,
            });
        }
        for (app_id, backend) in table.app_ids() {
            routes.push(RouteRow {
                listener: "app-id".to_owned(),
                host: app_id.to_owned(),
                path: "*".to_owned(),
                app_id: backend.app_id().as_str(),
                backend: &backend.name,
            });
        }
        RoutesReport {
            generation: table.generation(),
            routes,
            backends: table.backends().iter().map(|b| backend_row(b)).collect(),
            problems: table.problems(),
        }
    }

    /// The text listing: one line per route with its endpoints, then every problem.
    pub fn to_text(&self) -> String {
        // One map, not a scan of every backend for every route.
        let endpoints: HashMap<&str, String> = self
            .backends
            .iter()
            .map(|b| {
                let list = endpoint_list(b.endpoints);
                // Only what is not plain HTTP/1.1 is said.
                let list = match b.protocol {
                    BackendProtocol::H1 => list,
                    protocol => format!("[{protocol}] {list}"),
                };
                (b.name, list)
            })
            .collect();
        let endpoints_of = |name: &str| endpoints.get(name).cloned().unwrap_or_default();
        let mut rows = vec![[
            "LISTENER".to_owned(),
            "HOST".to_owned(),
            "PATH".to_owned(),
            "APP".to_owned(),
            "ENDPOINTS".to_owned(),
        ]];
        for r in &self.routes {
            rows.push([
                r.listener.clone(),
                r.host.clone(),
                r.path.clone(),
                r.app_id.to_owned(),
                endpoints_of(r.backend),
            ]);
        }
        let mut widths = [0usize; 4];
        for row in &rows {
            for (w, cell) in widths.iter_mut().zip(row.iter()) {
                *w = (*w).max(cell.len());
            }
        }
        let mut out = String::new();
        for row in &rows {
            let _ = writeln!(
                out,
                "{:<w0$}  {:<w1$}  {:<w2$}  {:<w3$}  {}",
                row[0],
                row[1],
                row[2],
                row[3],
                row[4],
                w0 = widths[0],
                w1 = widths[1],
                w2 = widths[2],
                w3 = widths[3]
            );
        }
        let errors = self
            .problems
            .iter()
            .filter(|p| p.severity() == Severity::Error)
            .count();
        let _ = writeln!(
            out,
            "\n{} route(s), {} backend(s), {} problem(s) ({} error(s))",
            self.routes.len(),
            self.backends.len(),
            self.problems.len(),
            errors
        );
        for problem in self.problems {
            let _ = writeln!(out, "{problem}");
        }
        out
    }
}

fn backend_row(b: &Backend) -> BackendRow<'_> {
    BackendRow {
        name: &b.name,
        app_id: b.app_id().as_str(),
        port_index: b.service.port_index,
        service_port: b.service.service_port,
        mode: b.mode(),
        protocol: b.protocol,
        balance: b.labels().balance,
        sticky: b.labels().sticky,
        endpoints: b.endpoints(),
    }
}

fn mode_name(mode: Mode) -> &'static str {
    match mode {
        Mode::Http => "http",
        Mode::Tcp => "tcp",
    }
}

fn endpoint_list(endpoints: &[TaskEndpoint]) -> String {
    if endpoints.is_empty() {
        return "(no endpoints)".to_owned();
    }
    let mut out = String::new();
    for (i, e) in endpoints.iter().enumerate() {
        if i > 0 {
            out.push_str(", ");
        }
        let _ = write!(out, "{}", DisplayEndpoint(e));
    }
    out
}

struct DisplayEndpoint<'e>(&'e TaskEndpoint);

impl fmt::Display for DisplayEndpoint<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0.addr)?;
        if self.0.draining {
            f.write_str(" (draining)")?;
        }
        Ok(())
    }
}
