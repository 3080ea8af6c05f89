//! One backend (Marathon-LB's: one app port and where its traffic goes), built once per table:
//! its endpoints with their runtime state, its selector, its metric handles, and the decisions
//! the data plane would otherwise make per request (whether the native HTTP/1 engine may serve
//! it, the `Host` proxypass sends).

use std::sync::Arc;

use super::BuildOptions;
use crate::balance::Selector;
use crate::model::{AppId, BackendProtocol, Mode, PortLabels, Service, TaskEndpoint};
use crate::upstream::{RegistryBuild, Target};

/// One app port and where its traffic goes: Marathon-LB's backend.
#[derive(Debug)]
pub struct Backend {
    /// Marathon-LB's backend name: app id without the leading `/`, `/` → `_`, then
    /// `_<service port>` (`/shop/web` on 10010 → `shop_web_10010`).
    pub name: Box<str>,
    pub service: Arc<Service>,
    /// The endpoints with their runtime state, in `service.endpoints` order.
    pub targets: Vec<Target>,
    pub selector: Selector,
    /// The last `Authorization` value that passed `HAPROXY_{n}_AUTH` (crypt is slow).
    pub verified_authorization: arc_swap::ArcSwapOption<Box<[u8]>>,
    /// This backend's metric handles (kept across tables by name).
    pub metrics: Arc<crate::metrics::BackendMetrics>,
    /// With `HAPROXY_{n}_HTTP_BACKEND_PROXYPASS_PATH`: the `Host` the upstream gets, the app's
    /// first vhost, as Marathon-LB's proxypass glue sets it (the first exact one when the first
    /// is a wildcard; with none, the client's `Host` passes).
    pub proxypass_host: Option<http::HeaderValue>,
    /// Whether the native HTTP/1 engine may serve it: an HTTP port whose endpoints speak
    /// cleartext HTTP/1.1 and whose requests go through unchanged but for the usual headers
    /// (see [`forwards_plainly`]).
    pub plain: bool,
    /// How its endpoints are spoken to (HTTP mode).
    pub protocol: BackendProtocol,
    /// Whether the endpoints' certificates are checked against `--backend-ca` (TLS protocols;
    /// not with the server line's `verify none`).
    pub verify_tls: bool,
}

impl Backend {
    pub(super) fn new(
        service: Arc<Service>,
        states: &RegistryBuild<'_>,
        options: &BuildOptions,
    ) -> Backend {
        let targets = service
            .endpoints
            .iter()
            .map(|e| Target::new(states.state(e.addr), e.draining))
            .collect();
        let name: Box<str> = backend_name(&service.app_id, service.service_port).into();
        let metrics = match &options.metrics {
            Some(metrics) => metrics.backend(&name),
            None => crate::metrics::detached(),
        };
        let labels = &service.labels;
        let proxypass_host = labels
            .proxypass_path
            .as_ref()
            .and_then(|_| labels.vhosts.iter().find(|v| !v.is_wildcard()))
            .and_then(|vhost| http::HeaderValue::from_str(vhost.name()).ok());
        let protocol = labels.protocol();
        let plain = service.mode == Mode::Http
            && protocol == BackendProtocol::H1
            && forwards_plainly(labels);
        Backend {
            name,
            metrics,
            proxypass_host,
            plain,
            protocol,
            verify_tls: labels.verify_backend(),
            selector: Selector::new(service.labels.balance),
            targets,
            verified_authorization: Default::default(),
            service,
        }
    }

    pub fn app_id(&self) -> &AppId {
        &self.service.app_id
    }

    pub fn mode(&self) -> Mode {
        self.service.mode
    }

    pub fn labels(&self) -> &PortLabels {
        &self.service.labels
    }

    pub fn endpoints(&self) -> &[TaskEndpoint] {
        &self.service.endpoints
    }
}

/// Whether requests under these labels go through unchanged but for the usual headers: no
/// check, redirect, rewrite or cookie that hyper's engine applies. Every label is named here,
/// so that a label added to `PortLabels` does not compile until it is placed on one side.
fn forwards_plainly(labels: &PortLabels) -> bool {
    let PortLabels {
        // Where a request goes, decided before an engine sees it.
        vhosts: _,
        path: _,
        backend_weight: _,
        port: _,
        mode: _,
        balance: _,
        enabled: _,
        groups: _,
        bind_addr: _,
        healthcheck_port_index: _,
        // How endpoints are spoken to: decided beside this (`Backend::plain`).
        backend_protocol: _,
        server_line: _,
        // The certificate is chosen at the handshake, before an engine sees the connection.
        ssl_cert: _,
        // What the request or its response gets on the way: hyper's engine only (HSTS is a
        // response header on TLS connections, which the native engine serves too).
        use_hsts,
        sticky,
        redirect_to_https,
        auth,
        proxypass_path,
        revproxy_path,
        redirect_root_to,
        allowed_networks,
    } = labels;
    !use_hsts
        && !sticky
        && !redirect_to_https
        && auth.is_none()
        && proxypass_path.is_none()
        && revproxy_path.is_none()
        && redirect_root_to.is_none()
        && allowed_networks.is_none()
}

fn backend_name(app_id: &AppId, service_port: u16) -> String {
    let id = app_id.as_str();
    let id = id.strip_prefix('/').unwrap_or(id);
    // A table holds thousands of names: the digits by hand rather than through `fmt`, and the
    // exact length up front, so that the name never reallocates (nor shrinks into a `Box`).
    let mut digits = [0u8; 5];
    let mut rest = service_port;
    let mut start = digits.len();
    loop {
        start -= 1;
        digits[start] = b'0' + (rest % 10) as u8;
        rest /= 10;
        if rest == 0 {
            break;
        }
    }
    let mut name = String::with_capacity(id.len() + 1 + digits.len() - start);
    for (i, part) in id.split('/').enumerate() {
        if i > 0 {
            name.push('_');
        }
        name.push_str(part);
    }
    name.push('_');
    name.extend(digits[start..].iter().map(|&d| char::from(d)));
    name
}

/// The backend of `previous` (sorted by app id and port index) built from this very service.
pub(super) fn reusable<'p>(
    previous: &'p [Arc<Backend>],
    service: &Arc<Service>,
) -> Option<&'p Arc<Backend>> {
    let key = (&service.app_id, service.port_index);
    let i = previous
        .binary_search_by(|b| (b.app_id(), b.service.port_index).cmp(&key))
        .ok()?;
    Some(&previous[i]).filter(|b| Arc::ptr_eq(&b.service, service))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every per-port label Marathon-LB defines that Switchyard reads, with a value; the
    /// second field says whether the native engine may still serve the port.
    const PORT_LABELS: &[(&str, &str, bool)] = &[
        ("VHOST", "a.example.com", true),
        ("PATH", "/api", true),
        ("BACKEND_WEIGHT", "3", true),
        ("PORT", "10001", true),
        ("MODE", "http", true),
        ("BALANCE", "leastconn", true),
        ("ENABLED", "true", true),
        ("GROUP", "external", true),
        ("BIND_ADDR", "127.0.0.1", true),
        ("BACKEND_HEALTHCHECK_PORT_INDEX", "1", true),
        ("SSL_CERT", "/etc/ssl/a.pem", true),
        ("USE_HSTS", "true", false),
        ("STICKY", "true", false),
        ("REDIRECT_TO_HTTPS", "true", false),
        (
            "AUTH",
            "realm:user:$1$saltsalt$RwMqRjSWhXMKbW72DwzGd1",
            false,
        ),
        ("HTTP_BACKEND_PROXYPASS_PATH", "/p", false),
        ("HTTP_BACKEND_REVPROXY_PATH", "/r", false),
        ("HTTP_BACKEND_REDIR", "/welcome", false),
        ("BACKEND_NETWORK_ALLOWED_ACL", "10.0.0.0/8", false),
        ("BACKEND_PROTOCOL", "h2", true),
        (
            "BACKEND_SERVER_OPTIONS",
            "  server {serverName} {host_ipv4}:{port}{cookieOptions}{healthCheckOptions}{otherOptions} ssl verify none\n",
            true,
        ),
    ];

    fn port_labels(pairs: &[(&str, &str)]) -> PortLabels {
        let labels: crate::marathon::labels::Labels = pairs
            .iter()
            .map(|(k, v)| (format!("HAPROXY_0_{k}"), (*v).to_owned()))
            .collect();
        let mut parsed = crate::model::labels::AppLabels::parse(&labels);
        let set = parsed.take_port(0);
        assert!(set.issues.is_empty(), "{pairs:?}: {:?}", set.issues);
        *set.labels
    }

    #[test]
    fn every_label_that_changes_a_request_keeps_the_port_off_the_native_engine() {
        assert!(forwards_plainly(&PortLabels::default()));
        for &(name, value, plain) in PORT_LABELS {
            let labels = port_labels(&[(name, value)]);
            assert_ne!(labels, PortLabels::default(), "{name} was read");
            assert_eq!(forwards_plainly(&labels), plain, "{name}={value}");
        }
        // Every label at once sets every field: none is missing from the list above.
        let all: Vec<(&str, &str)> = PORT_LABELS.iter().map(|&(n, v, _)| (n, v)).collect();
        let labels = port_labels(&all);
        let PortLabels {
            vhosts,
            path,
            backend_weight,
            port,
            mode,
            balance,
            enabled,
            groups,
            bind_addr,
            healthcheck_port_index,
            ssl_cert,
            use_hsts,
            sticky,
            redirect_to_https,
            auth,
            proxypass_path,
            revproxy_path,
            redirect_root_to,
            allowed_networks,
            backend_protocol,
            server_line,
        } = &labels;
        let default = PortLabels::default();
        assert!(
            *vhosts != default.vhosts
                && path.is_some()
                && backend_weight.is_some()
                && port.is_some()
                && mode.is_some()
                && *balance != default.balance
                && enabled.is_some()
                && groups.is_some()
                && bind_addr.is_some()
                && healthcheck_port_index.is_some()
                && ssl_cert.is_some()
                && *use_hsts
                && *sticky
                && *redirect_to_https
                && auth.is_some()
                && proxypass_path.is_some()
                && revproxy_path.is_some()
                && redirect_root_to.is_some()
                && allowed_networks.is_some()
                && backend_protocol.is_some()
                && server_line.is_some(),
            "{labels:?}"
        );
    }

    #[test]
    fn backend_names_are_marathon_lb_s() {
        let name = |id: &str, port| backend_name(&AppId::new(id), port);
        assert_eq!(name("/shop/web", 10010), "shop_web_10010");
        assert_eq!(name("/a", 0), "a_0");
        assert_eq!(name("/a/b/c", 65535), "a_b_c_65535");
        assert_eq!(name("noslash", 7), "noslash_7");
    }
}
