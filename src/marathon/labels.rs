//! An app's `labels` object, as Marathon sends it: string keys to string values.
//!
//! Kept as a vector sorted by key, not a hash map: an app has a handful of labels, a lookup
//! scans a few short strings, and the model reads them in key order anyway (so that its
//! reports do not depend on the JSON's order). Building one costs a sort of a few entries
//! instead of hashing every key.

use std::fmt;

use serde::de::{MapAccess, Visitor};
use serde::{Deserialize, Deserializer};

/// Label name → value, sorted by name, names unique (a repeated JSON key keeps its last value,
/// as a map would).
#[derive(Clone, Default, PartialEq, Eq)]
pub struct Labels(Vec<(String, String)>);

impl Labels {
    pub fn get(&self, name: &str) -> Option<&String> {
        self.find(name).ok().map(|i| &self.0[i].1)
    }

    pub fn contains_key(&self, name: &str) -> bool {
        self.find(name).is_ok()
    }

    /// Every label, sorted by name.
    pub fn iter(&self) -> impl Iterator<Item = (&String, &String)> {
        self.0.iter().map(|(k, v)| (k, v))
    }

    /// The labels whose names start with `prefix`, sorted: one contiguous run, found by binary
    /// search.
    pub fn with_prefix<'a>(
        &'a self,
        prefix: &'a str,
    ) -> impl Iterator<Item = (&'a String, &'a String)> + 'a {
        let start = self.0.partition_point(|(k, _)| k.as_str() < prefix);
        self.0[start..]
            .iter()
            .take_while(move |(k, _)| k.starts_with(prefix))
            .map(|(k, v)| (k, v))
    }

    /// Every label name, sorted.
    pub fn keys(&self) -> impl Iterator<Item = &String> {
        self.0.iter().map(|(k, _)| k)
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Sets a label, replacing the value of one already there.
    pub fn insert(&mut self, name: String, value: String) {
        match self.find(&name) {
            Ok(i) => self.0[i].1 = value,
            Err(i) => self.0.insert(i, (name, value)),
        }
    }

    fn find(&self, name: &str) -> Result<usize, usize> {
        self.0.binary_search_by(|(k, _)| k.as_str().cmp(name))
    }

    /// Sorts pairs in arrival order and keeps the last of each name.
    fn from_pairs(mut pairs: Vec<(String, String)>) -> Labels {
        // Stable: among equal names, arrival order is kept, so the last one is the last value.
        pairs.sort_by(|a, b| a.0.cmp(&b.0));
        let mut out: Vec<(String, String)> = Vec::with_capacity(pairs.len());
        for pair in pairs {
            match out.last_mut() {
                Some(last) if last.0 == pair.0 => *last = pair,
                _ => out.push(pair),
            }
        }
        Labels(out)
    }
}

impl FromIterator<(String, String)> for Labels {
    fn from_iter<I: IntoIterator<Item = (String, String)>>(iter: I) -> Labels {
        Labels::from_pairs(iter.into_iter().collect())
    }
}

impl<const N: usize> From<[(&str, &str); N]> for Labels {
    fn from(pairs: [(&str, &str); N]) -> Labels {
        pairs
            .into_iter()
            .map(|(k, v)| (k.to_owned(), v.to_owned()))
            .collect()
    }
}

impl fmt::Debug for Labels {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_map().entries(self.iter()).finish()
    }
}

impl serde::Serialize for Labels {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_map(self.iter())
    }
}

impl<'de> Deserialize<'de> for Labels {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Labels, D::Error> {
        struct LabelsVisitor;

        impl<'de> Visitor<'de> for LabelsVisitor {
            type Value = Labels;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("an object of string labels")
            }

            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Labels, A::Error> {
                let mut pairs = Vec::with_capacity(map.size_hint().unwrap_or(0).min(64));
                while let Some(pair) = map.next_entry::<String, String>()? {
                    pairs.push(pair);
                }
                Ok(Labels::from_pairs(pairs))
            }
        }

        deserializer.deserialize_map(LabelsVisitor)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn with_prefix_is_the_run_of_names_that_start_with_it() {
        let labels: Labels = serde_json::from_str(
            r#"{"HAPROXY_1_VHOST": "a", "HAPROXY_10_PORT": "1", "HAPROXY_1_PATH": "/p",
                "HAPROXY_2_MODE": "tcp", "HAPROXY_1": "x", "OTHER": "y"}"#,
        )
        .unwrap();
        let names = |prefix: &str| -> Vec<String> {
            labels.with_prefix(prefix).map(|(k, _)| k.clone()).collect()
        };
        assert_eq!(names("HAPROXY_1_"), ["HAPROXY_1_PATH", "HAPROXY_1_VHOST"]);
        assert_eq!(names("HAPROXY_10_"), ["HAPROXY_10_PORT"]);
        assert_eq!(names("HAPROXY_3_"), Vec::<String>::new());
        assert_eq!(names("ZZZ"), Vec::<String>::new());
        assert_eq!(names("").len(), 6);
    }

    #[test]
    fn sorted_unique_last_value_wins() {
        let labels: Labels =
            serde_json::from_str(r#"{"b": "1", "a": "2", "b": "3", "c": "4"}"#).unwrap();
        let pairs: Vec<_> = labels
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        assert_eq!(pairs, [("a", "2"), ("b", "3"), ("c", "4")]);
        assert_eq!(labels.get("b").map(String::as_str), Some("3"));
        assert!(labels.contains_key("c") && !labels.contains_key("d"));
    }

    #[test]
    fn non_string_values_are_an_error() {
        assert!(serde_json::from_str::<Labels>(r#"{"a": 1}"#).is_err());
        assert!(serde_json::from_str::<Labels>(r#"["a"]"#).is_err());
    }

    #[test]
    fn insert_keeps_the_order() {
        let mut labels = Labels::from([("b", "1")]);
        labels.insert("a".into(), "0".into());
        labels.insert("b".into(), "2".into());
        assert_eq!(labels.keys().collect::<Vec<_>>(), ["a", "b"]);
        assert_eq!(labels.get("b").map(String::as_str), Some("2"));
    }
}
