//! A manifest's value, built from the events of the split that maps its
//! fields, so that a cluster manifest is parsed once, not twice (the split,
//! then serde-saphyr).
//!
//! Only documents written plainly are built: whatever serde-saphyr could
//! read otherwise than a plain reading would (an anchor, an alias, a tag, a
//! merge key, a duplicate key, a key that is not a string, a plain scalar
//! that might be a float, an octal or a YAML 1.1 boolean, a document
//! nested deeper or larger than [`MAX_DEPTH`] and [`MAX_BYTES`]) gives up,
//! and that document is read by serde-saphyr as before, with its errors.
//! So a built value is always the one serde-saphyr gives (the tests
//! compare the two), and the plain scalars are typed as it types them with
//! `strict_booleans`: `null`/`~`/nothing, `true`/`false` in three
//! spellings, decimal integers, and strings.
//!
//! certplane's own documents are read into typed specs, not values: a
//! document whose first key is not `apiVersion`, or whose `apiVersion` is
//! certplane's, is not built (no memory held for it).

use serde_json::{Map, Value};
use serde_saphyr::granit_parser::{Event, ScalarStyle};

/// More collections open at once than this, a document is left to
/// serde-saphyr (which refuses more than 64; cert-manager's own CRDs nest
/// 38 deep).
const MAX_DEPTH: usize = 48;

/// More scalar text than this, a document is left to serde-saphyr.
const MAX_BYTES: usize = 1 << 20;

/// A document's value being built; `None` from [`Build::event`]: given up.
#[derive(Default)]
pub(super) struct Build {
    open: Vec<Open>,
    root: Option<Value>,
    bytes: usize,
}

/// A collection being built.
enum Open {
    /// A mapping, and the key whose value comes next.
    Map(Map<String, Value>, Option<String>),
    Seq(Vec<Value>),
}

impl Build {
    /// Takes the next event of the document; `None` to give up.
    pub(super) fn event(&mut self, event: &Event<'_>) -> Option<()> {
        match event {
            Event::Scalar(text, style, anchor, tag) => {
                if *anchor != 0 || tag.is_some() {
                    return None;
                }
                self.bytes += text.len();
                if self.bytes > MAX_BYTES {
                    return None;
                }
                if matches!(self.open.last(), Some(Open::Map(_, None))) {
                    let name = key_text(text, *style)?;
                    if !self.key_allowed(name) {
                        return None;
                    }
                    if let Some(Open::Map(map, key)) = self.open.last_mut() {
                        if map.contains_key(name) {
                            return None;
                        }
                        *key = Some(name.to_string());
                    }
                    return Some(());
                }
                let value = scalar(text, *style)?;
                self.value_allowed(&value)?;
                self.add(value)
            }
            Event::MappingStart(_, anchor, tag) | Event::SequenceStart(_, anchor, tag) => {
                let key_expected = matches!(self.open.last(), Some(Open::Map(_, None)));
                if *anchor != 0
                    || tag.is_some()
                    || key_expected
                    || self.at_api_version()
                    || self.open.len() >= MAX_DEPTH
                {
                    return None;
                }
                let is_map = matches!(event, Event::MappingStart(..));
                if self.open.is_empty() && !is_map {
                    return None;
                }
                self.open.push(if is_map {
                    Open::Map(Map::new(), None)
                } else {
                    Open::Seq(Vec::new())
                });
                Some(())
            }
            Event::MappingEnd | Event::SequenceEnd => match self.open.pop()? {
                Open::Map(map, None) => self.add(Value::Object(map)),
                Open::Seq(items) => self.add(Value::Array(items)),
                Open::Map(_, Some(_)) => None,
            },
            Event::Alias(_) | Event::UnresolvedAlias(_) | Event::Anchor(..) => None,
            _ => Some(()),
        }
    }

    /// The document's value, when it was built whole.
    pub(super) fn finish(self) -> Option<Value> {
        if self.open.is_empty() {
            self.root
        } else {
            None
        }
    }

    /// Puts a finished node where it goes.
    fn add(&mut self, value: Value) -> Option<()> {
        match self.open.last_mut() {
            Some(Open::Map(map, key)) => {
                map.insert(key.take()?, value);
            }
            Some(Open::Seq(items)) => items.push(value),
            None => self.root = Some(value),
        }
        Some(())
    }

    /// Whether `name` may be a key here: at the top of the document, the
    /// first key must be `apiVersion` (the document's kind decides how it
    /// is read).
    fn key_allowed(&self, name: &str) -> bool {
        match self.open.as_slice() {
            [Open::Map(map, _)] if map.is_empty() => name == "apiVersion",
            _ => true,
        }
    }

    /// Whether the next node is the value of the document's first key
    /// (`apiVersion`, by [`Build::key_allowed`]).
    fn at_api_version(&self) -> bool {
        matches!(self.open.as_slice(), [Open::Map(map, Some(_))] if map.is_empty())
    }

    /// `Some` unless `value` is an `apiVersion` that is not a string or is
    /// one of certplane's own (those documents are read typed, not as
    /// values).
    fn value_allowed(&self, value: &Value) -> Option<()> {
        if !self.at_api_version() {
            return Some(());
        }
        match value {
            Value::String(v) if !is_own(v) => Some(()),
            _ => None,
        }
    }
}

/// Whether `api_version` is of certplane's own API group.
fn is_own(api_version: &str) -> bool {
    api_version.split('/').next() == crate::model::API_VERSION.split('/').next()
}

/// A mapping key's text, when serde-saphyr reads it as that very string.
fn key_text(text: &str, style: ScalarStyle) -> Option<&str> {
    if text.is_empty() || text == "<<" {
        return None;
    }
    match style {
        ScalarStyle::Plain => plain_is_string(text).then_some(text),
        _ => Some(text),
    }
}

/// A scalar's value; `None` when it is not certain how serde-saphyr types it.
fn scalar(text: &str, style: ScalarStyle) -> Option<Value> {
    match style {
        ScalarStyle::Plain => plain(text),
        _ => Some(Value::String(text.to_string())),
    }
}

/// A plain scalar typed as serde-saphyr types it into a value with
/// `strict_booleans`: null, a YAML 1.2 boolean, a decimal integer of up to
/// 18 digits, or a string. `None` for whatever might be another number
/// (floats, `.inf`, `0x..`, `0o..`, `+1`, `1_000`, `012`) and for YAML
/// 1.1's other booleans, whose reading is left to serde-saphyr.
fn plain(text: &str) -> Option<Value> {
    match text {
        "" | "~" | "null" | "Null" | "NULL" => return Some(Value::Null),
        "true" | "True" | "TRUE" => return Some(Value::Bool(true)),
        "false" | "False" | "FALSE" => return Some(Value::Bool(false)),
        _ => {}
    }
    let digits = text.strip_prefix('-').unwrap_or(text);
    let decimal = !digits.is_empty()
        && digits.len() <= 18
        && digits.bytes().all(|b| b.is_ascii_digit())
        && (digits == "0" || !digits.starts_with('0'));
    if decimal {
        return if text.starts_with('-') {
            // `-0` is 0 either way, but left to serde-saphyr all the same.
            (digits != "0")
                .then(|| text.parse::<i64>().ok().map(Value::from))
                .flatten()
        } else {
            text.parse::<u64>().ok().map(Value::from)
        };
    }
    plain_is_string(text).then(|| Value::String(text.to_string()))
}

/// Whether [`plain`] reads `text` as a string (without building it: every
/// key of a manifest is asked). Not a string: null, a boolean (YAML 1.2's
/// or 1.1's), anything that starts like a number and has nothing but what
/// numbers are spelled with (digits, signs, `.`, `_`, radix prefixes, hex
/// digits, `e`, `inf`, `nan`, `infinity`, `:`: serde-saphyr's to type;
/// `2160h` has an `h`: a string), and text with blanks around it.
fn plain_is_string(text: &str) -> bool {
    let Some(first) = text.chars().next() else {
        return false;
    };
    if matches!(text, "~" | "null" | "Null" | "NULL") {
        return false;
    }
    let number_like = (first.is_ascii_digit() || matches!(first, '+' | '-' | '.'))
        && text
            .chars()
            .all(|c| c.is_ascii_hexdigit() || "+-._:xXoOiInNtTyY".contains(c));
    let yaml_bool = ["y", "n", "yes", "no", "on", "off", "true", "false"]
        .iter()
        .any(|b| text.eq_ignore_ascii_case(b));
    !(number_like || yaml_bool || text.trim() != text)
}

#[cfg(test)]
mod tests {
    use super::super::{deserialize, split};
    use super::*;

    /// The value serde-saphyr reads from the one document of `text`.
    fn saphyr(text: &str) -> Option<Value> {
        let docs = split(text).ok()?;
        deserialize::<Value>(text, docs.first()?).ok()
    }

    /// The value built while splitting the one document of `text`.
    fn built(text: &str) -> Option<Value> {
        split(text).ok()?.first()?.value.take()
    }

    const HEAD: &str = "apiVersion: cert-manager.io/v1\nkind: Certificate\n";

    #[test]
    fn a_plain_manifest_is_built_as_serde_saphyr_reads_it() {
        let bodies = [
            "metadata:\n  name: web\n  namespace: apps\nspec:\n  secretName: web-tls\n  dnsNames: [a.example.com, \"b.example.com\"]\n  duration: 2160h\n",
            "spec:\n  privateKey: {algorithm: ECDSA, size: 256, rotationPolicy: Always}\n  isCA: false\n  revisionHistoryLimit: 3\n",
            "data:\n  a: ''\n  b:\n  c: ~\n  d: null\n  e: NULL\n  f: TRUE\n  g: False\n  h: -42\n  i: 0\n  j: 18446744073709551\n  k: x y z\n",
            "data:\n  text: |\n    line one\n    line two\n  folded: >\n    one\n    two\n  multi: a\n    b\n    c\n  quoted: \"tab\\there\"\n  \"1\": one\n  'true': t\n",
            "spec:\n  usages:\n    - digital signature\n    - key encipherment\n  nested:\n  - [1, 2, [3, {x: z}]]\n  - {}\n  - []\n",
            "metadata: {name: a, labels: {app.kubernetes.io/name: web, tier: '1'}}\n",
            "spec:\n  duration: 2160h\n  renewBefore: 360h0m0s\n  a: 1 2\n  b: -w\n  c: .hidden\n  d: 10.0.0.1/8\n  e: 1.2.3z\n",
            "data:\n  url: http://example.com:8080/x?y=z#frag\n  colon: a:b\n  hash: a #comment\n  emoji: \"\\u263A\"\n  unicode: zürich\n",
        ];
        for body in bodies {
            let text = format!("{HEAD}{body}");
            let want = saphyr(&text).expect("serde-saphyr reads it");
            assert_eq!(built(&text), Some(want), "{text}");
        }
    }

    #[test]
    fn what_serde_saphyr_might_read_otherwise_is_left_to_it() {
        // Each of these is a document serde-saphyr reads (or refuses)
        // otherwise than a plain reading would: none is built.
        let bodies = [
            "data:\n  a: &x 1\n  b: *x\n",
            "base: &b {x: 1}\ndata:\n  <<: *b\n  y: 2\n",
            "data:\n  a: !!str 1\n",
            "data: !custom {a: 1}\n",
            "data:\n  a: 1\n  a: 2\n",
            "data:\n  a: 1.5\n",
            "data:\n  a: .inf\n",
            "data:\n  a: 0x1F\n",
            "data:\n  a: 0o17\n",
            "data:\n  a: 012\n",
            "data:\n  a: +1\n",
            "data:\n  a: 1_000\n",
            "data:\n  a: -0\n",
            "data:\n  a: 1e3\n",
            "data:\n  a: 90d\n",
            "data:\n  a: 1:30\n",
            "data:\n  a: -.inf\n",
            "data:\n  a: 1.0e+10\n",
            "data:\n  a: 0b101\n",
            "data:\n  a: yes\n",
            "data:\n  a: Off\n",
            "data:\n  a: 123456789012345678901234\n",
            "data:\n  ? [a, b]\n  : c\n",
            "data:\n  1: one\n",
            "data:\n  null: x\n",
            "data:\n  true: x\n",
            "data:\n  Yes: x\n",
            "data:\n  ~: x\n",
            "data:\n  0x1F: x\n",
        ];
        for body in bodies {
            let text = format!("{HEAD}{body}");
            assert_eq!(built(&text), None, "{text}");
        }
        let deep = format!("{HEAD}spec: {}1{}\n", "[".repeat(50), "]".repeat(50));
        assert_eq!(built(&deep), None);
    }

    #[test]
    fn only_manifests_that_start_with_their_api_version_are_built() {
        let own =
            "apiVersion: certplane.dev/v1alpha1\nkind: PkiRole\nmetadata: {name: r}\nspec: {}\n";
        assert_eq!(built(own), None);
        let kind_first = "kind: ConfigMap\napiVersion: v1\nmetadata: {name: c}\n";
        assert_eq!(built(kind_first), None);
        let not_a_string = "apiVersion: 1\nkind: X\n";
        assert_eq!(built(not_a_string), None);
        let config_map = "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: c}\n";
        assert_eq!(built(config_map), saphyr(config_map));
        assert!(built(config_map).is_some());
    }

    #[test]
    fn a_built_secret_is_not_in_the_document_s_debug_output() {
        let text = "apiVersion: v1\nkind: Secret\nmetadata: {name: s}\nstringData: {token: hunter2-secret}\n";
        let docs = split(text).unwrap();
        let shown = format!("{:?}", docs[0]);
        assert!(shown.contains("Built(..)"), "{shown}");
        assert!(!shown.contains("hunter2"), "{shown}");
        assert!(docs[0].value.take().is_some());
    }

    #[test]
    fn each_document_of_a_stream_is_built_on_its_own() {
        let text = format!(
            "{HEAD}metadata: {{name: a}}\n---\n{HEAD}metadata: {{name: b}}\nx: &y 1\n---\n{HEAD}metadata: {{name: c}}\n"
        );
        let docs = split(&text).unwrap();
        let names: Vec<Option<String>> = docs
            .iter()
            .map(|d| {
                d.value.take().map(|v| {
                    v["metadata"]["name"]
                        .as_str()
                        .unwrap_or_default()
                        .to_string()
                })
            })
            .collect();
        assert_eq!(names, [Some("a".into()), None, Some("c".into())]);
        for doc in &docs {
            assert_eq!(doc.value.take(), None, "taken once");
        }
    }
}
