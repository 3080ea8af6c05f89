//! Group lists: `HAPROXY_GROUP`, `HAPROXY_{n}_GROUP` and the balancer's `--group`.

use std::fmt;

use serde::Serialize;
use smallvec::{smallvec, SmallVec};

/// A comma-separated group list (`HAPROXY_GROUP`, `HAPROXY_{n}_GROUP`, `--group`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash, Serialize)]
#[serde(transparent)]
pub struct Groups(SmallVec<[Box<str>; 1]>);

impl Groups {
    pub fn parse(value: &str) -> Groups {
        // Most apps name one group: no split, no sort.
        if !value.contains(',') {
            let group = value.trim();
            return Groups(if group.is_empty() {
                SmallVec::new()
            } else {
                smallvec![group.into()]
            });
        }
        let mut groups: SmallVec<[Box<str>; 1]> = value
            .split(',')
            .map(str::trim)
            .filter(|g| !g.is_empty())
            .map(Into::into)
            .collect();
        groups.sort();
        groups.dedup();
        Groups(groups)
    }

    pub fn iter(&self) -> impl Iterator<Item = &str> {
        self.0.iter().map(|g| &**g)
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Whether an app in these groups is served by a balancer started with `served`
    /// (`--group`): the sets must intersect, and `*` serves every app, even one with no group.
    pub fn served_by(&self, served: &Groups) -> bool {
        served.0.iter().any(|g| &**g == "*") || self.0.iter().any(|g| served.0.contains(g))
    }
}

impl fmt::Display for Groups {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0.join(","))
    }
}
