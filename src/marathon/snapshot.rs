//! The snapshot of Marathon's apps the balancer holds: found by id, patched app by app, and
//! compared with a new read.

use super::wire::{App, AppsSnapshot};

impl AppsSnapshot {
    /// Where app `id` is: Marathon lists apps by id (a list out of order is searched through).
    pub fn position(&self, id: &str) -> Option<usize> {
        match self.apps.binary_search_by(|a| a.id.as_str().cmp(id)) {
            Ok(at) => Some(at),
            Err(_) => self.apps.iter().position(|a| a.id == id),
        }
    }

    /// App `id`, if the snapshot holds it.
    pub fn app(&self, id: &str) -> Option<&App> {
        self.position(id).map(|at| &self.apps[at])
    }

    /// Replaces app `id` with what `/v2/apps/{id}` said (`None`: it no longer exists); returns
    /// whether anything changed.
    pub fn patch(&mut self, id: &str, app: Option<App>) -> bool {
        let before = self.apps.len() + self.errors.len();
        self.apps.retain(|a| a.id != id);
        self.errors.retain(|e| e.app_id != id);
        let removed = before != self.apps.len() + self.errors.len();
        match app {
            None => removed,
            Some(app) => {
                // Marathon lists apps by id; keep that order.
                let at = self.apps.partition_point(|a| a.id < app.id);
                self.apps.insert(at, app);
                true
            }
        }
    }
}

/// The ids of the apps `a` and `b` hold otherwise (either holds it alone, or they differ),
/// each once; `None` past `limit`. Marathon lists apps by id: a merge of the two lists, one
/// comparison an app.
pub fn differing_apps<'s>(
    a: &'s AppsSnapshot,
    b: &'s AppsSnapshot,
    limit: usize,
) -> Option<Vec<&'s str>> {
    let sorted = |s: &AppsSnapshot| s.apps.windows(2).all(|w| w[0].id < w[1].id);
    let mut differing = Vec::new();
    if sorted(a) && sorted(b) {
        let (mut i, mut j) = (0, 0);
        while i < a.apps.len() || j < b.apps.len() {
            let (x, y) = (a.apps.get(i), b.apps.get(j));
            let id = match (x, y) {
                (Some(x), Some(y)) if x.id == y.id => {
                    i += 1;
                    j += 1;
                    if x.same_as(y) {
                        continue;
                    }
                    &x.id
                }
                (Some(x), Some(y)) if x.id < y.id => {
                    i += 1;
                    &x.id
                }
                (Some(x), None) => {
                    i += 1;
                    &x.id
                }
                (_, Some(y)) => {
                    j += 1;
                    &y.id
                }
                (None, None) => break,
            };
            differing.push(id.as_str());
            if differing.len() > limit {
                return None;
            }
        }
        return Some(differing);
    }
    // Out of order: app by app, by search.
    let mut seen = std::collections::BTreeSet::new();
    for id in a.apps.iter().chain(&b.apps).map(|app| app.id.as_str()) {
        let same = match (a.app(id), b.app(id)) {
            (Some(x), Some(y)) => x.same_as(y),
            _ => false,
        };
        if !same && seen.insert(id) {
            differing.push(id);
            if differing.len() > limit {
                return None;
            }
        }
    }
    Some(differing)
}

/// A hash of the bytes an app was read from: two reads of an unchanged app give the same
/// bytes, so a full read of thousands of apps passes over the unchanged ones without comparing
/// them field by field. Equality of apps ignores it.
#[derive(Debug, Clone, Copy, Default)]
pub struct Fingerprint(Option<u64>);

impl PartialEq for Fingerprint {
    fn eq(&self, _: &Fingerprint) -> bool {
        true
    }
}

impl Fingerprint {
    pub(super) fn of(json: &str) -> Fingerprint {
        // Fixed seeds: fingerprints are compared across reads.
        let hasher = ahash::RandomState::with_seeds(0x5717, 0xc4a1, 0x9e37, 0x79b9);
        Fingerprint(Some(hasher.hash_one(json.as_bytes())))
    }
}

impl App {
    /// Whether `other` is the same app: at once when both were read from the same bytes, else
    /// field by field (Marathon may render one app in other words in a list and alone).
    pub fn same_as(&self, other: &App) -> bool {
        let read_alike =
            matches!((self.fingerprint.0, other.fingerprint.0), (Some(a), Some(b)) if a == b);
        read_alike || self == other
    }

    /// Forgets the fingerprint: the app no longer is what was read.
    pub fn changed(&mut self) -> &mut App {
        self.fingerprint = Fingerprint(None);
        self
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::marathon::parse_apps;

    fn read(apps: &[(&str, u16)]) -> AppsSnapshot {
        let apps: Vec<String> = apps
            .iter()
            .map(|(id, port)| format!(r#"{{"id":"{id}","ports":[{port}]}}"#))
            .collect();
        parse_apps(format!(r#"{{"apps":[{}]}}"#, apps.join(",")).as_bytes()).unwrap()
    }

    #[test]
    fn finds_apps_added_removed_and_changed_once_each() {
        let a = read(&[("/a", 1), ("/b", 2), ("/c", 3), ("/e", 5)]);
        let b = read(&[("/b", 2), ("/c", 30), ("/d", 4), ("/e", 5)]);
        assert_eq!(differing_apps(&a, &b, 10), Some(vec!["/a", "/c", "/d"]));
        assert_eq!(differing_apps(&a, &b, 2), None, "past the limit");
        assert_eq!(differing_apps(&a, &a.clone(), 0), Some(vec![]));
    }

    #[test]
    fn an_unsorted_list_is_compared_app_by_app() {
        let a = read(&[("/b", 2), ("/a", 1)]);
        let b = read(&[("/a", 1), ("/b", 20), ("/c", 3)]);
        assert_eq!(differing_apps(&a, &b, 10), Some(vec!["/b", "/c"]));
    }

    #[test]
    fn apps_read_from_other_bytes_or_changed_since_compare_field_by_field() {
        let a = read(&[("/a", 1)]);
        // Other bytes, same app: the same.
        let spaced = parse_apps(br#"{"apps":[ {"ports":[1], "id":"/a"} ]}"#).unwrap();
        assert!(a.apps[0].same_as(&spaced.apps[0]));
        assert_eq!(differing_apps(&a, &spaced, 10), Some(vec![]));
        // Changed in place (as an event patches it): no longer taken for what was read.
        let mut patched = a.clone();
        patched.apps[0].changed().ports = vec![9];
        assert_eq!(differing_apps(&a, &patched, 10), Some(vec!["/a"]));
    }
}
