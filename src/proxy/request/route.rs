//! Finding a request's backend: the one lookup both engines make, by the listener it came in
//! on. The table is loaded once and let go before the request moves on.

use std::sync::Arc;

use crate::model::Mode;
use crate::proxy::Frontend;
use crate::routing::{Backend, SharedTable};

/// What a request is routed by: its host (ports 80/443), its path without the query, and its
/// `X-Marathon-App-Id` (port 9091).
#[derive(Debug, Clone, Copy)]
pub struct RouteKey<'a> {
    pub host: &'a [u8],
    pub path: &'a str,
    pub app_id: Option<&'a [u8]>,
}

/// The backend for `key` on `frontend`; `None` when nothing routes it (a 503).
pub fn backend(table: &SharedTable, frontend: Frontend, key: RouteKey<'_>) -> Option<Arc<Backend>> {
    let table = table.load();
    match frontend {
        Frontend::Vhost { .. } => table.route(key.host, key.path).map(|r| r.backend.clone()),
        Frontend::AppId { .. } => {
            let id = std::str::from_utf8(key.app_id?).ok()?;
            table.app(id.trim()).cloned()
        }
        Frontend::ServicePort { port, .. } => table
            .service_port(port)
            .filter(|f| f.mode == Mode::Http)
            .map(|f| f.backend.clone()),
    }
}
