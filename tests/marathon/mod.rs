//! Following Marathon: the event stream and polling against the in-process simulator or a
//! stand-in, Marathon's faults, and the real binary with Marathon-LB's arguments and DC/OS auth.

mod marathon_cli;
mod marathon_faults;
mod marathon_source;
mod proxy_marathon;
