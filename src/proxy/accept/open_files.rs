//! The connection cap against the process's open-file limit. Each client connection holds a
//! descriptor, and one more towards its upstream; a cap above what the limit can hold means
//! `accept` fails with EMFILE under load and takes the admin port, Marathon's connection and
//! health checks down with it. So, as HAProxy derives `maxconn` from `ulimit -n`, the soft limit
//! is raised to the hard one and the cap lowered to fit when it must.

/// Descriptors kept for everything but client connections: listeners, the admin port and its
/// clients, Marathon, health checks, DNS, certificate and apps files.
pub const RESERVED: u64 = 128;

/// What the cap became and why, for one log line at start.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Fitted {
    pub max_connections: usize,
    /// The soft open-file limit after raising it.
    pub open_files: u64,
    /// The requested cap did not fit and was lowered.
    pub lowered: bool,
}

/// Raises the soft `RLIMIT_NOFILE` to the hard limit and fits `requested` to it.
pub fn fit(requested: usize) -> std::io::Result<Fitted> {
    let open_files = rlimit::increase_nofile_limit(u64::MAX)?;
    Ok(fit_to(requested, open_files))
}

/// [`fit`], with a warning when the cap is lowered or the limit cannot be read; the cap to use.
pub fn fit_logged(requested: usize) -> usize {
    match fit(requested) {
        Ok(fitted) => {
            if fitted.lowered {
                tracing::warn!(
                    requested,
                    max_connections = fitted.max_connections,
                    open_files = fitted.open_files,
                    "--max-connections lowered to what the open-file limit holds (two \
                     descriptors a connection, {RESERVED} kept for the rest); raise `ulimit -n` \
                     to allow more"
                );
            }
            fitted.max_connections
        }
        Err(error) => {
            tracing::warn!(%error, "cannot read the open-file limit; --max-connections kept");
            requested
        }
    }
}

/// Two descriptors per connection, after the reserve; at least one connection.
pub fn fit_to(requested: usize, open_files: u64) -> Fitted {
    let room = open_files.saturating_sub(RESERVED) / 2;
    let room = usize::try_from(room).unwrap_or(usize::MAX).max(1);
    Fitted {
        max_connections: requested.min(room),
        open_files,
        lowered: requested > room,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_cap_the_limit_holds_is_kept() {
        let fitted = fit_to(50_000, 1 << 20);
        assert_eq!(fitted.max_connections, 50_000);
        assert!(!fitted.lowered);
    }

    #[test]
    fn a_cap_above_the_limit_is_lowered_to_two_descriptors_a_connection_after_the_reserve() {
        let fitted = fit_to(50_000, 1024);
        assert_eq!(fitted.max_connections, (1024 - 128) / 2);
        assert!(fitted.lowered);
        assert_eq!(fit_to(50_000, 256).max_connections, 64);
        // A limit below the reserve still lets one connection in.
        assert_eq!(fit_to(50_000, 100).max_connections, 1);
    }
}
