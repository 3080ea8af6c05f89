//! `switchyard` in serve mode: options checked, listeners bound (or taken over from the
//! process this one replaces), the balancer run until a signal stops it.

use std::process::ExitCode;
use std::time::Duration;

use super::{fail, ServeArgs};
use crate::model::ModelOptions;
use crate::proxy::ProxyConfig;
use crate::serve::{self, BoundListeners, ServeOptions, Source};

/// Runs the balancer until SIGTERM or SIGINT; SIGHUP re-reads the source; SIGUSR2 hands over to
/// the binary now on disk (see [`crate::handover`]).
pub async fn serve(args: ServeArgs) -> ExitCode {
    warn_haproxy_only(&args);
    let Checked {
        source,
        poll,
        model,
        mut proxy,
    } = match check(&args) {
        Ok(checked) => checked,
        Err(message) => return fail(&message),
    };
    proxy.max_connections = crate::proxy::accept::open_files::fit_logged(proxy.max_connections);
    let ip = args.bind_address;
    let bind = |port: u16| async move {
        crate::proxy::accept::listener::bind((ip, port).into())
            .map_err(|e| format!("cannot bind {ip}:{port}: {e}"))
    };
    let listeners = match async {
        Ok::<_, String>(BoundListeners {
            http: match args.dont_bind_http_https {
                true => None,
                false => Some(bind(args.routing.http_port).await?),
            },
            https: match args.dont_bind_http_https {
                true => None,
                false => Some(bind(args.routing.https_port).await?),
            },
            app_id: bind(args.routing.app_id_port).await?,
            admin: {
                let ip = args.admin_bind_address.unwrap_or(ip);
                let port = args.routing.admin_port;
                crate::proxy::accept::listener::bind((ip, port).into())
                    .map_err(|e| format!("cannot bind the admin port {ip}:{port}: {e}"))?
            },
        })
    }
    .await
    {
        Ok(listeners) => listeners,
        Err(message) => return fail(&message),
    };
    let options = ServeOptions {
        model,
        build: args.routing.build_options(),
        source,
        poll_interval: poll,
        bind_address: ip,
        proxy,
        ssl_certs: args.ssl_certs.clone(),
        ssl_cert_vars: crate::tls::env_certs::from_env(),
        cert_poll_interval: std::time::Duration::from_secs_f64(args.ssl_certs_poll),
    };
    let handle = match serve::start(options, listeners) {
        Ok(handle) => handle,
        Err(err) => return fail(&format!("cannot start: {err}")),
    };
    let shown =
        |addr: Option<std::net::SocketAddr>| addr.map(|a| a.to_string()).unwrap_or_default();
    let (http, https) = (shown(handle.http_addr), shown(handle.https_addr));
    tracing::info!(http = %http, https = %https, app_id = %handle.app_id_addr, admin = %handle.admin_addr, "switchyard serving");
    wait_for_signals(&handle).await;
    tracing::info!("stopping: draining connections");
    handle.shutdown().await;
    ExitCode::SUCCESS
}

/// Serve mode's options, every one checked; `--dry` checks the same.
pub(super) struct Checked {
    pub source: Source,
    pub poll: Duration,
    pub model: ModelOptions,
    pub proxy: ProxyConfig,
}

pub(super) fn check(args: &ServeArgs) -> Result<Checked, String> {
    let (source, poll) = match (&args.apps_file, args.access.marathon.is_empty()) {
        (Some(file), _) => (Source::File(file.clone()), args.apps_file_poll),
        (None, false) => {
            let config = args.access.config()?;
            let (source, poll) = args.follow.source(args.mode, config)?;
            (Source::Marathon(source), poll.as_secs_f64())
        }
        (None, true) => return Err("serve mode needs --apps-file FILE or --marathon URL".into()),
    };
    let model = args.routing.model_options()?;
    if !(args.ssl_certs_poll.is_finite() && args.ssl_certs_poll > 0.0 && args.ssl_certs_poll < 1e9)
    {
        return Err("--ssl-certs-poll must be a positive number of seconds".into());
    }
    if !(poll.is_finite() && poll > 0.0 && poll < 1e9) {
        return Err(
            "--apps-file-poll and --marathon-poll must be positive numbers of seconds".into(),
        );
    }
    let proxy = args.limits.proxy_config()?;
    Ok(Checked {
        source,
        poll: Duration::from_secs_f64(poll),
        model,
        proxy,
    })
}

/// One warning naming the HAProxy-only flags given.
pub(super) fn warn_haproxy_only(args: &ServeArgs) {
    let ignored = args.haproxy_only.given();
    if !ignored.is_empty() {
        tracing::warn!(flags = %ignored.join(" "), "these Marathon-LB flags configure HAProxy and do nothing here");
    }
}

#[cfg(unix)]
async fn wait_for_signals(handle: &serve::Handle) {
    use tokio::signal::unix::{signal, SignalKind};
    let (Ok(mut term), Ok(mut int), Ok(mut hup), Ok(mut usr2)) = (
        signal(SignalKind::terminate()),
        signal(SignalKind::interrupt()),
        signal(SignalKind::hangup()),
        signal(SignalKind::user_defined2()),
    ) else {
        tracing::error!("cannot install signal handlers; stopping");
        return;
    };
    let mut serving = false;
    loop {
        tokio::select! {
            _ = term.recv() => return,
            _ = int.recv() => return,
            _ = hup.recv() => handle.reload(),
            // Binary upgrade: once the new process serves, this one drains and exits.
            _ = usr2.recv() => if crate::handover::start_successor().await {
                return;
            },
            // A process started by an upgrade tells the old one once it serves a table.
            _ = handle.wait_generation(1), if !serving => {
                serving = true;
                crate::handover::tell_predecessor();
            }
        }
    }
}

#[cfg(not(unix))]
async fn wait_for_signals(_handle: &serve::Handle) {
    let _ = tokio::signal::ctrl_c().await;
}
