//! One `HAPROXY_{n}_NAME` label applied to the typed labels of its port.

use std::path::PathBuf;

use smallvec::SmallVec;

use super::templates::TEMPLATES;
use super::values::{
    invalid, parse_auth, parse_bool, parse_networks, parse_number, parse_port, parse_uri_path,
};
use super::{
    BackendProtocol, Balance, Groups, LabelIssue, LabelIssueKind, Mode, PortLabels, ServerLine,
};
use crate::model::vhost::VHost;

impl PortLabels {
    /// Applies one `HAPROXY_{n}_NAME` label. `key` is the full label name, for messages.
    pub(super) fn apply(&mut self, key: &str, name: &str, value: &str) -> Result<(), LabelIssue> {
        let v = value.trim();
        match name {
            "VHOST" => {
                let mut vhosts = SmallVec::new();
                for host in v.split(',').filter(|h| !h.trim().is_empty()) {
                    vhosts.push(
                        host.parse::<VHost>()
                            .map_err(|e| invalid(key, &e.to_string()))?,
                    );
                }
                if vhosts.len() > 1 {
                    // In the label's order (the first one is proxypass's `Host`), each once.
                    let mut seen = std::collections::HashSet::with_capacity(vhosts.len());
                    vhosts.retain(|v: &mut VHost| seen.insert(v.clone()));
                }
                self.vhosts = vhosts;
            }
            "PATH" => {
                self.path = Some(
                    v.parse()
                        .map_err(|e: crate::model::path::PathError| invalid(key, &e.to_string()))?,
                )
            }
            "BACKEND_WEIGHT" => self.backend_weight = Some(parse_number(key, v)?),
            "PORT" => self.port = Some(parse_port(key, v)?),
            "MODE" => {
                self.mode = Some(match v.to_ascii_lowercase().as_str() {
                    "http" => Mode::Http,
                    "tcp" => Mode::Tcp,
                    _ => return Err(invalid(key, &format!("`{v}` is not `http` or `tcp`"))),
                })
            }
            "BALANCE" => {
                self.balance = match v.to_ascii_lowercase().as_str() {
                    "roundrobin" => Balance::RoundRobin,
                    "leastconn" => Balance::LeastConn,
                    "source" => Balance::Source,
                    _ => {
                        return Err(invalid(
                            key,
                            &format!("`{v}` is not one of roundrobin, leastconn, source"),
                        ))
                    }
                }
            }
            "STICKY" => self.sticky = parse_bool(key, v)?,
            "ENABLED" => self.enabled = Some(parse_bool(key, v)?),
            "GROUP" => self.groups = Some(Groups::parse(v)),
            "REDIRECT_TO_HTTPS" => self.redirect_to_https = parse_bool(key, v)?,
            "USE_HSTS" => self.use_hsts = parse_bool(key, v)?,
            "AUTH" => self.auth = Some(Box::new(parse_auth(key, v)?)),
            "SSL_CERT" => {
                if v.is_empty() {
                    return Err(invalid(key, "empty certificate path"));
                }
                self.ssl_cert = Some(PathBuf::from(v));
            }
            "BIND_ADDR" => {
                self.bind_addr = Some(
                    v.parse()
                        .map_err(|_| invalid(key, &format!("`{v}` is not an IP address")))?,
                )
            }
            "BIND_OPTIONS" => {
                return Err(LabelIssue {
                    label: key.to_owned(),
                    kind: LabelIssueKind::Unsupported,
                    reason: "HAProxy bind options have no meaning here; timeouts, limits and TLS \
                             are set by Switchyard's flags (the port is still served)"
                        .to_owned(),
                })
            }
            "HTTP_BACKEND_PROXYPASS_PATH" => self.proxypass_path = Some(parse_uri_path(key, v)?),
            "HTTP_BACKEND_REVPROXY_PATH" => self.revproxy_path = Some(parse_uri_path(key, v)?),
            "HTTP_BACKEND_REDIR" => self.redirect_root_to = Some(parse_uri_path(key, v)?),
            "BACKEND_NETWORK_ALLOWED_ACL" => self.allowed_networks = Some(parse_networks(key, v)?),
            "BACKEND_HEALTHCHECK_PORT_INDEX" => {
                self.healthcheck_port_index = Some(parse_number(key, v)?)
            }
            "BACKEND_PROTOCOL" => self.backend_protocol = Some(BackendProtocol::parse(key, v)?),
            "BACKEND_SERVER_OPTIONS" => self.server_line = ServerLine::parse(key, value)?,
            _ if TEMPLATES.contains(&name) => {
                return Err(LabelIssue {
                    label: key.to_owned(),
                    kind: LabelIssueKind::UnsupportedTemplate,
                    reason: "HAProxy template overrides are not supported; the label is ignored \
                             (the port is still served)"
                        .to_owned(),
                })
            }
            _ => {
                return Err(LabelIssue {
                    label: key.to_owned(),
                    kind: LabelIssueKind::Unknown,
                    reason: "not a Marathon-LB label; ignored".to_owned(),
                })
            }
        }
        Ok(())
    }
}
