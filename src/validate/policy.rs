//! Whether declared Vault policies grant a capability on a path, with
//! Vault's matching rules: a rule path is exact, or ends in `*` (prefix), and
//! `+` stands for one path segment; rules of several policies for the same
//! path are merged, and the highest-priority matching path decides (`deny`
//! wins within it). Policies written as `hcl` are read for their `path`
//! stanzas and `capabilities` lists.

use std::cmp::Ordering;
use std::collections::BTreeMap;

use crate::model::{Capability, PolicySpec};

/// Whether `pattern` (a policy path) matches `path`.
pub fn matches(pattern: &str, path: &str) -> bool {
    let (body, prefix) = match pattern.strip_suffix('*') {
        Some(b) => (b, true),
        None => (pattern, false),
    };
    seg_match(body.as_bytes(), path.as_bytes(), prefix)
}

fn seg_match(p: &[u8], s: &[u8], prefix: bool) -> bool {
    match p.split_first() {
        None => prefix || s.is_empty(),
        Some((b'+', rest)) => {
            // One segment: one or more characters up to the next `/`.
            let seg = s.iter().position(|&c| c == b'/').unwrap_or(s.len());
            (1..=seg).any(|n| seg_match(rest, &s[n..], prefix))
        }
        Some((c, rest)) => s.first() == Some(c) && seg_match(rest, &s[1..], prefix),
    }
}

/// Vault's priority of two matching paths (`Greater`: `a` wins).
fn priority(a: &str, b: &str) -> Ordering {
    let first_wild = |p: &str| p.find(['+', '*']).unwrap_or(usize::MAX);
    let plus = |p: &str| p.matches('+').count();
    first_wild(a)
        .cmp(&first_wild(b))
        .then((!a.ends_with('*')).cmp(&!b.ends_with('*')))
        .then(plus(b).cmp(&plus(a)))
        .then(a.len().cmp(&b.len()))
        .then(a.cmp(b))
}

/// `path "..." { capabilities = [...] }` stanzas of an HCL policy.
pub fn hcl_rules(hcl: &str) -> Vec<(String, Vec<String>)> {
    let mut out = Vec::new();
    let mut rest = hcl;
    while let Some(i) = rest.find("path") {
        rest = &rest[i + 4..];
        let trimmed = rest.trim_start();
        let Some(after_quote) = trimmed.strip_prefix('"') else {
            continue;
        };
        let Some(end) = after_quote.find('"') else {
            break;
        };
        let path = after_quote[..end].to_string();
        let body = &after_quote[end + 1..];
        let block_end = body.find('}').unwrap_or(body.len());
        let block = &body[..block_end];
        let mut caps = Vec::new();
        if let Some(c) = block.find("capabilities")
            && let Some(open) = block[c..].find('[')
        {
            let list = &block[c + open + 1..];
            let close = list.find(']').unwrap_or(list.len());
            caps = list[..close]
                .split(',')
                .map(|s| s.trim().trim_matches('"').to_string())
                .filter(|s| !s.is_empty())
                .collect();
        }
        out.push((path, caps));
        rest = &body[block_end..];
    }
    out
}

/// Whether `policies` together grant `update` on `path`.
pub fn grants_update(policies: &[&PolicySpec], path: &str) -> bool {
    let mut merged: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for p in policies {
        for r in p.rules.iter().flatten() {
            merged
                .entry(r.path.clone())
                .or_default()
                .extend(r.capabilities.iter().map(|c| c.as_str().to_string()));
        }
        if let Some(h) = &p.hcl {
            for (rp, caps) in hcl_rules(h) {
                merged.entry(rp).or_default().extend(caps);
            }
        }
    }
    let best = merged
        .iter()
        .filter(|(p, _)| matches(p, path))
        .max_by(|(a, _), (b, _)| priority(a, b));
    match best {
        Some((_, caps)) => {
            !caps.iter().any(|c| c == Capability::Deny.as_str())
                && caps.iter().any(|c| c == Capability::Update.as_str())
        }
        None => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::PolicyRule;

    fn rules(list: &[(&str, &[Capability])]) -> PolicySpec {
        PolicySpec {
            rules: Some(
                list.iter()
                    .map(|(p, c)| PolicyRule {
                        path: p.to_string(),
                        capabilities: c.to_vec(),
                    })
                    .collect(),
            ),
            hcl: None,
        }
    }

    #[test]
    fn globs_and_priority() {
        assert!(matches("pki_int/sign/*", "pki_int/sign/web"));
        assert!(matches("pki_int/+/web", "pki_int/sign/web"));
        assert!(!matches("pki_int/+/web", "pki_int/a/b/web"));
        assert!(!matches("pki_int/sign/web", "pki_int/sign/web2"));
        let p = rules(&[
            ("pki_int/*", &[Capability::Update]),
            ("pki_int/sign/web", &[Capability::Deny]),
        ]);
        assert!(!grants_update(&[&p], "pki_int/sign/web"));
        assert!(grants_update(&[&p], "pki_int/sign/other"));
        let r = rules(&[("pki_int/sign/web", &[Capability::Read])]);
        let u = rules(&[("pki_int/sign/web", &[Capability::Update])]);
        assert!(!grants_update(&[&r], "pki_int/sign/web"));
        assert!(grants_update(&[&r, &u], "pki_int/sign/web"));
    }

    #[test]
    fn reads_hcl() {
        let p = PolicySpec {
            rules: None,
            hcl: Some("path \"pki/sign/web\" {\n  capabilities = [\"update\", \"read\"]\n}\npath \"x\" { capabilities = [\"deny\"] }\n".into()),
        };
        assert!(grants_update(&[&p], "pki/sign/web"));
        assert!(!grants_update(&[&p], "x"));
    }
}
