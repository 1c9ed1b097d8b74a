//! Keep Secret values out of error messages.
//!
//! The API server does not normally echo Secret values in its errors, but a
//! reply is not ours to trust: every error about a Secret passes through a
//! [`Redactor`] that knows the values (as written and base64-decoded) and
//! replaces them with `(sensitive)`.

use base64::Engine as _;
use serde_json::Value;

use super::diff::{SENSITIVE, is_secret};

/// Values shorter than this are not replaced inside a message (that would
/// garble it); a message containing one is withheld whole instead.
const MIN_REPLACE: usize = 4;

/// The secret values one request may leak.
#[derive(Clone, Debug, Default)]
pub(crate) struct Redactor {
    values: Vec<String>,
}

impl Redactor {
    /// The values of a Secret object (none for other kinds).
    pub(crate) fn for_object(obj: &Value) -> Self {
        let mut r = Redactor::default();
        r.add_object(obj);
        r
    }

    /// Add the values of another Secret object (e.g. the live one).
    pub(crate) fn add_object(&mut self, obj: &Value) {
        if !is_secret(obj) {
            return;
        }
        for field in ["data", "stringData"] {
            if let Some(Value::Object(m)) = obj.get(field) {
                for v in m.values() {
                    let Some(s) = v.as_str() else {
                        // Not a string: its JSON text is what could leak.
                        self.push(v.to_string());
                        continue;
                    };
                    self.push(s.to_string());
                    if field == "data"
                        && let Ok(bytes) = base64::engine::general_purpose::STANDARD.decode(s)
                        && let Ok(text) = String::from_utf8(bytes)
                    {
                        self.push(text);
                    }
                }
            }
        }
        if let Some(v) = obj
            .pointer("/metadata/annotations")
            .and_then(|a| a.get("kubectl.kubernetes.io/last-applied-configuration"))
            .and_then(Value::as_str)
        {
            self.push(v.to_string());
        }
    }

    fn push(&mut self, v: String) {
        if !v.is_empty() && !self.values.contains(&v) {
            self.values.push(v);
        }
    }

    /// Whether there is nothing to hide.
    pub(crate) fn is_empty(&self) -> bool {
        self.values.is_empty()
    }

    /// Whether `text` contains a secret value.
    pub(crate) fn leaks(&self, text: &str) -> bool {
        self.values.iter().any(|v| text.contains(v.as_str()))
    }

    /// `text` with every secret value replaced by `(sensitive)`; withheld
    /// whole if it contains a value too short to replace safely.
    pub(crate) fn redact(&self, text: &str) -> String {
        if self
            .values
            .iter()
            .any(|v| v.len() < MIN_REPLACE && text.contains(v.as_str()))
        {
            return "(message withheld: it may contain secret data)".into();
        }
        let mut values: Vec<&String> = self.values.iter().collect();
        // Longest first, so a value that contains another is replaced whole.
        values.sort_by_key(|v| std::cmp::Reverse(v.len()));
        let mut out = text.to_string();
        for v in values {
            out = out.replace(v.as_str(), SENSITIVE);
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn replaces_raw_and_decoded_values() {
        let s = json!({"kind":"Secret","data":{"k":"aHVudGVyMi1sb25n"},"stringData":{"p":"s3cr3t-value"}});
        let r = Redactor::for_object(&s);
        let msg = "bad value hunter2-long and s3cr3t-value and aHVudGVyMi1sb25n";
        let out = r.redact(msg);
        assert!(!r.leaks(&out), "{out}");
        assert_eq!(out, "bad value (sensitive) and (sensitive) and (sensitive)");
    }

    #[test]
    fn withholds_messages_with_short_values() {
        let s = json!({"kind":"Secret","stringData":{"p":"ab"}});
        let out = Redactor::for_object(&s).redact("invalid: ab");
        assert!(!out.contains("ab"));
    }

    #[test]
    fn other_kinds_have_nothing_to_hide() {
        assert!(Redactor::for_object(&json!({"kind":"ConfigMap","data":{"k":"v"}})).is_empty());
    }
}
