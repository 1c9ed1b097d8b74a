//! [`Fields`]: the API parameters of one resource, a small sorted map that
//! the desired state and the plan share.
//!
//! A resource has a handful of parameters (a role of the benchmark: four),
//! and a repository has one resource per object, so the map is a sorted
//! `Vec` of exactly its entries rather than a `BTreeMap` (whose smallest
//! node holds room for eleven), its keys are the `&'static str` names the
//! repository's kinds write (no allocation per key; names read from Vault
//! are owned), and it is behind an [`Arc`]: a planned change's `after` is
//! the desired resource's own map, not a copy. Writing to a shared map
//! copies it first ([`Arc::make_mut`]).

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::fmt;
use std::sync::Arc;

use schemars::JsonSchema;
use serde::de::{Deserialize, Deserializer, MapAccess, Visitor};
use serde::ser::{Serialize, SerializeMap, Serializer};
use serde_json::Value;

/// A parameter's name: Vault's snake_case API name.
pub type Key = Cow<'static, str>;

/// API parameters by their Vault (snake_case) name, in name order.
#[derive(Clone, Default, PartialEq)]
pub struct Fields(Arc<Vec<(Key, Value)>>);

impl Fields {
    /// An empty map.
    pub fn new() -> Fields {
        Fields::default()
    }

    /// How many parameters.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    fn position(&self, key: &str) -> Result<usize, usize> {
        self.0.binary_search_by(|(k, _)| k.as_ref().cmp(key))
    }

    /// The value of `key`.
    pub fn get(&self, key: &str) -> Option<&Value> {
        self.position(key).ok().map(|i| &self.0[i].1)
    }

    /// The value of `key`, to change (copies a shared map first).
    pub fn get_mut(&mut self, key: &str) -> Option<&mut Value> {
        let i = self.position(key).ok()?;
        Some(&mut Arc::make_mut(&mut self.0)[i].1)
    }

    /// Whether `key` is set.
    pub fn contains_key(&self, key: &str) -> bool {
        self.position(key).is_ok()
    }

    /// Sets `key` to `value`; returns the value it replaced.
    pub fn insert(&mut self, key: impl Into<Key>, value: Value) -> Option<Value> {
        let key = key.into();
        match self.position(&key) {
            Ok(i) => Some(std::mem::replace(
                &mut Arc::make_mut(&mut self.0)[i].1,
                value,
            )),
            Err(i) => {
                Arc::make_mut(&mut self.0).insert(i, (key, value));
                None
            }
        }
    }

    /// Removes `key`; returns its value.
    pub fn remove(&mut self, key: &str) -> Option<Value> {
        let i = self.position(key).ok()?;
        Some(Arc::make_mut(&mut self.0).remove(i).1)
    }

    /// Keeps the parameters `keep` says yes to.
    pub fn retain(&mut self, mut keep: impl FnMut(&str, &mut Value) -> bool) {
        if self.0.is_empty() {
            return;
        }
        Arc::make_mut(&mut self.0).retain_mut(|(k, v)| keep(k, v));
    }

    /// The parameters, in name order.
    pub fn iter(&self) -> Iter<'_> {
        Iter(self.0.iter())
    }

    /// The parameters with their names as stored (a name the repository's
    /// kinds wrote is static: cloning it allocates nothing).
    pub fn entries(&self) -> impl DoubleEndedIterator<Item = (&Key, &Value)> + ExactSizeIterator {
        self.0.iter().map(|(k, v)| (k, v))
    }

    /// The names, in order.
    pub fn keys(&self) -> impl DoubleEndedIterator<Item = &str> + ExactSizeIterator {
        self.0.iter().map(|(k, _)| k.as_ref())
    }

    /// The values, in name order.
    pub fn values(&self) -> impl DoubleEndedIterator<Item = &Value> + ExactSizeIterator {
        self.0.iter().map(|(_, v)| v)
    }

    /// Gives back the room a built map does not use (a map held for the
    /// whole run is built once, then shrunk).
    pub fn shrink_to_fit(&mut self) {
        if self.0.capacity() > self.0.len() {
            Arc::make_mut(&mut self.0).shrink_to_fit();
        }
    }

    /// Whether `self` and `other` are the very same map (not a copy).
    pub fn shares(&self, other: &Fields) -> bool {
        Arc::ptr_eq(&self.0, &other.0)
    }

    /// The parameters as a JSON object.
    pub fn to_json(&self) -> Value {
        Value::Object(
            self.iter()
                .map(|(k, v)| (k.to_string(), v.clone()))
                .collect(),
        )
    }
}

/// The parameters of a [`Fields`], in name order.
#[derive(Clone, Debug)]
pub struct Iter<'a>(std::slice::Iter<'a, (Key, Value)>);

impl<'a> Iterator for Iter<'a> {
    type Item = (&'a str, &'a Value);

    fn next(&mut self) -> Option<Self::Item> {
        self.0.next().map(|(k, v)| (k.as_ref(), v))
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        self.0.size_hint()
    }
}

impl DoubleEndedIterator for Iter<'_> {
    fn next_back(&mut self) -> Option<Self::Item> {
        self.0.next_back().map(|(k, v)| (k.as_ref(), v))
    }
}

impl ExactSizeIterator for Iter<'_> {}

impl<'a> IntoIterator for &'a Fields {
    type Item = (&'a str, &'a Value);
    type IntoIter = Iter<'a>;

    fn into_iter(self) -> Iter<'a> {
        self.iter()
    }
}

impl IntoIterator for Fields {
    type Item = (String, Value);
    type IntoIter =
        std::iter::Map<std::vec::IntoIter<(Key, Value)>, fn((Key, Value)) -> (String, Value)>;

    fn into_iter(self) -> Self::IntoIter {
        let entries = Arc::try_unwrap(self.0).unwrap_or_else(|shared| (*shared).clone());
        entries.into_iter().map(|(k, v)| (k.into_owned(), v))
    }
}

impl<K: Into<Key>> FromIterator<(K, Value)> for Fields {
    fn from_iter<I: IntoIterator<Item = (K, Value)>>(iter: I) -> Fields {
        let mut entries: Vec<(Key, Value)> = iter.into_iter().map(|(k, v)| (k.into(), v)).collect();
        // Sorted and without duplicates, the last value of a key winning
        // (as inserting them one by one would): a stable sort keeps equal
        // keys in their order, and the reversed dedup keeps the last.
        entries.sort_by(|a, b| a.0.cmp(&b.0));
        entries.reverse();
        entries.dedup_by(|later, earlier| later.0 == earlier.0);
        entries.reverse();
        entries.shrink_to_fit();
        Fields(Arc::new(entries))
    }
}

impl<K: Into<Key>, const N: usize> From<[(K, Value); N]> for Fields {
    fn from(entries: [(K, Value); N]) -> Fields {
        entries.into_iter().collect()
    }
}

impl From<serde_json::Map<String, Value>> for Fields {
    fn from(map: serde_json::Map<String, Value>) -> Fields {
        map.into_iter().collect()
    }
}

impl<K: Into<Key>> Extend<(K, Value)> for Fields {
    fn extend<I: IntoIterator<Item = (K, Value)>>(&mut self, iter: I) {
        for (k, v) in iter {
            self.insert(k, v);
        }
    }
}

impl std::ops::Index<&str> for Fields {
    type Output = Value;

    /// The value of `key`, or `null` when it is not set (as
    /// `serde_json::Value` indexes).
    fn index(&self, key: &str) -> &Value {
        static NULL: Value = Value::Null;
        self.get(key).unwrap_or(&NULL)
    }
}

impl fmt::Debug for Fields {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_map().entries(self.iter()).finish()
    }
}

impl Serialize for Fields {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut map = serializer.serialize_map(Some(self.len()))?;
        for (k, v) in self {
            map.serialize_entry(k, v)?;
        }
        map.end()
    }
}

impl<'de> Deserialize<'de> for Fields {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Fields, D::Error> {
        struct FieldsVisitor;

        impl<'de> Visitor<'de> for FieldsVisitor {
            type Value = Fields;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a map of API parameters")
            }

            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Fields, A::Error> {
                let mut entries: Vec<(String, Value)> =
                    Vec::with_capacity(map.size_hint().unwrap_or(0));
                while let Some(entry) = map.next_entry()? {
                    entries.push(entry);
                }
                Ok(entries.into_iter().collect())
            }
        }

        deserializer.deserialize_map(FieldsVisitor)
    }
}

impl JsonSchema for Fields {
    fn schema_name() -> Cow<'static, str> {
        <BTreeMap<String, Value> as JsonSchema>::schema_name()
    }

    fn schema_id() -> Cow<'static, str> {
        <BTreeMap<String, Value> as JsonSchema>::schema_id()
    }

    fn inline_schema() -> bool {
        <BTreeMap<String, Value> as JsonSchema>::inline_schema()
    }

    fn json_schema(generator: &mut schemars::SchemaGenerator) -> schemars::Schema {
        <BTreeMap<String, Value> as JsonSchema>::json_schema(generator)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_map_keeps_its_keys_sorted_and_the_last_value_of_a_key() {
        let mut f: Fields = [
            ("ttl", json!(1)),
            ("allowed_domains", json!(["a"])),
            ("ttl", json!(2)),
        ]
        .into_iter()
        .collect();
        assert_eq!(f.keys().collect::<Vec<_>>(), ["allowed_domains", "ttl"]);
        assert_eq!(f["ttl"], json!(2));
        assert_eq!(f.insert("max_ttl", json!(3)), None);
        assert_eq!(f.insert(String::from("ttl"), json!(4)), Some(json!(2)));
        assert_eq!(
            f.keys().collect::<Vec<_>>(),
            ["allowed_domains", "max_ttl", "ttl"]
        );
        assert_eq!(f.remove("max_ttl"), Some(json!(3)));
        assert_eq!(f.remove("max_ttl"), None);
        assert!(f.contains_key("ttl") && !f.contains_key("max_ttl"));
        assert_eq!(f["not_set"], Value::Null);
        assert_eq!(f.len(), 2);
    }

    #[test]
    fn a_copy_shares_the_map_until_either_side_writes() {
        let mut desired = Fields::from([("ttl", json!(60))]);
        let after = desired.clone();
        assert!(after.shares(&desired));
        desired.insert("ttl", json!(61));
        assert!(!after.shares(&desired));
        assert_eq!(after["ttl"], json!(60));
        assert_eq!(desired["ttl"], json!(61));
    }

    #[test]
    fn it_reads_and_writes_as_a_json_object_in_key_order() {
        let f: Fields = serde_json::from_str(r#"{"b": 1, "a": [2], "b": 3}"#).unwrap();
        assert_eq!(serde_json::to_string(&f).unwrap(), r#"{"a":[2],"b":3}"#);
        assert_eq!(f.to_json(), json!({"a": [2], "b": 3}));
        assert_eq!(
            format!("{f:?}"),
            r#"{"a": Array [Number(2)], "b": Number(3)}"#
        );
        let owned: Vec<(String, Value)> = f.into_iter().collect();
        assert_eq!(
            owned,
            vec![("a".to_string(), json!([2])), ("b".to_string(), json!(3))]
        );
    }
}
