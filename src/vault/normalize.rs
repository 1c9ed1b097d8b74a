//! Normalising what Vault returns into the shape the desired side is built
//! in: durations as whole seconds, whatever form Vault answered in (`259200`,
//! `"72h"`, `"259200"`).

use serde_json::{Map, Value};

use crate::model::Duration;
use crate::state::Fields;

/// Whether a Vault parameter holds a duration.
pub fn is_duration_key(key: &str) -> bool {
    const EXACT: &[&str] = &[
        "ttl",
        "expiry",
        "period",
        "not_before_duration",
        "auto_rebuild_grace_period",
        "delta_rebuild_interval",
        "clock_skew_leeway",
        "expiration_leeway",
        "not_before_leeway",
    ];
    EXACT.contains(&key)
        || key.ends_with("_ttl")
        || key.ends_with("_period")
        || key.ends_with("_expiry")
        || key.ends_with("_duration")
        || key.ends_with("_interval")
}

/// A duration value in seconds, if it reads as one.
pub fn duration_secs(v: &Value) -> Option<u64> {
    match v {
        Value::Number(n) => n
            .as_u64()
            .or_else(|| n.as_f64().filter(|f| *f >= 0.0).map(|f| f.round() as u64)),
        Value::String(s) => {
            let s = s.trim();
            if s.is_empty() {
                return None;
            }
            if s.bytes().all(|b| b.is_ascii_digit()) {
                return s.parse().ok();
            }
            s.parse::<Duration>().ok().map(Duration::as_secs)
        }
        _ => None,
    }
}

/// One field, normalised by its key.
pub fn normalize_value(key: &str, v: Value) -> Value {
    if is_duration_key(key)
        && let Some(secs) = duration_secs(&v)
    {
        return Value::from(secs);
    }
    v
}

/// Every field of a Vault `data` object, normalised.
pub fn normalize_fields(data: Map<String, Value>) -> Fields {
    data.into_iter()
        .map(|(k, v)| {
            let v = normalize_value(&k, v);
            (k, v)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn durations_become_seconds_in_every_form() {
        let data = json!({
            "expiry": "72h",
            "ttl": 86400,
            "max_ttl": "259200",
            "token_ttl": "1m",
            "ocsp_expiry": "12h",
            "auto_rebuild_grace_period": "12h",
            "delta_rebuild_interval": "15m",
            "not_before_duration": 30,
            "secret_id_ttl": "0s",
        });
        let Value::Object(map) = data else {
            unreachable!("a json object literal")
        };
        let f = normalize_fields(map);
        assert_eq!(f["expiry"], json!(259_200));
        assert_eq!(f["ttl"], json!(86_400));
        assert_eq!(f["max_ttl"], json!(259_200));
        assert_eq!(f["token_ttl"], json!(60));
        assert_eq!(f["ocsp_expiry"], json!(43_200));
        assert_eq!(f["auto_rebuild_grace_period"], json!(43_200));
        assert_eq!(f["delta_rebuild_interval"], json!(900));
        assert_eq!(f["not_before_duration"], json!(30));
        assert_eq!(f["secret_id_ttl"], json!(0));
    }

    #[test]
    fn other_fields_are_left_alone() {
        let data = json!({
            "not_after": "",
            "allowed_domains": ["example.com"],
            "key_type": "rsa",
            "disable": false,
            "ttl": "",
            "token_type": "default",
        });
        let Value::Object(map) = data.clone() else {
            unreachable!("a json object literal")
        };
        let f = normalize_fields(map);
        for (k, v) in data.as_object().into_iter().flatten() {
            assert_eq!(&f[k], v, "{k}");
        }
    }
}
