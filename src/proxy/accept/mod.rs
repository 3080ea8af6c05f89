//! Listening and accepting: the accept loops with their caps and back-off, socket options, the
//! cap per client address, fitting the connection cap to the open-file limit, and the TLS
//! handshake that comes before a TLS connection's first byte of HTTP.

pub mod handshake;
pub mod listener;
pub mod open_files;
pub mod per_ip;
#[cfg(target_os = "linux")]
mod sockopt;
