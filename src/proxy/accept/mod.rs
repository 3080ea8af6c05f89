//! Listening and accepting: the accept loops with their caps and back-off, socket options, the
//! cap per client address, fitting the connection cap to the open-file limit, and a listener's
//! sockets spread across the workers. What an
//! accepted connection meets next is `conn/`.

pub mod listener;
pub mod open_files;
pub mod per_ip;
#[cfg(target_os = "linux")]
mod sockopt;
pub mod spread;
