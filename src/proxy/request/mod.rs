//! What a request meets whichever engine serves it: its checks, its headers' rules, basic auth,
//! the rewrites on the way up and down, the response body, the one map from errors to
//! statuses (HTTP, and gRPC for a call), its counting and its access-log line.

pub mod access_log;
pub mod account;
pub mod auth;
pub mod body;
pub mod error;
pub mod grpc;
pub mod headers;
pub(in crate::proxy) mod rewrite;
pub mod route;
pub mod validate;
