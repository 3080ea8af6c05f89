//! Marathon: its wire format, how to fetch it, its event stream and its auth. Knows Marathon,
//! nothing about routing.
//!
//! - `wire`: the `/v2/apps?embed=apps.tasks` document, parsed app by app.
//! - `client`: URLs tried in order, TLS, auth on every request, the apps fetch.
//! - `rest`: any other call (`switchyard zdd`'s creates, scales, kills and deletes).
//! - `auth`: Basic or a DC/OS service account (login, refresh, re-login after a 401).
//! - `events`: one `/v2/events` connection.
//! - `change`: which apps an event names; the pending patches and refetches.
//! - `patch`: what an event carries, applied to the last snapshot at once.
//! - `snapshot`: the apps held: found by id, replaced app by app, compared with a new read.
//! - `watch`: the stream followed for the balancer's life: reconnects, back-off, its state.

pub mod auth;
pub mod change;
pub mod client;
pub mod events;
pub mod labels;
pub mod patch;
pub mod rest;
pub mod snapshot;
pub mod watch;
pub mod wire;

pub use auth::{Credentials, ServiceAccount};
pub use change::{ChangeSignal, Pending};
pub use client::{ConfigError, FetchError, MarathonClient, MarathonConfig};
pub use watch::{StreamOptions, StreamStatus};
pub use wire::{parse_app, parse_apps, AppsSnapshot};
