//! Vault ACL policies: reading a policy the way Vault does, checking that
//! Vault would accept it, and whether declared policies grant a capability
//! on a path.
//!
//! The text is parsed with a real HCL parser (hcl-rs, through its
//! span-keeping `hcl::edit` parser), then checked with the rules of
//! OpenBao's `ParseACLPolicy` (`vault/policy.go`): only `name` and `path`
//! at the top level; in a `path` block only Vault's keys; capabilities from
//! Vault's set (`deny` alone wins, as Vault reads it); the legacy
//! `policy = "read"`; no `+*`; wrapping TTLs, `expiration`, `pagination_limit`
//! and `list_scan_response_keys_filter_path` as Vault reads them. A table of
//! policies is written to a real OpenBao by `tests/checks_openbao.rs` to pin
//! that the verdicts agree.
//!
//! Vault reads HCL1, certplane HCL2; where they differ certplane is
//! stricter, never looser: quoted attribute names (`"capabilities" = [...]`),
//! attributes separated by commas, two blocks on one line, a repeated
//! attribute, and `${`/`%{` in a path are refused with a hint to write it
//! the common way.
//!
//! Matching follows Vault: a rule path is exact, or ends in `*` (prefix),
//! and `+` stands for one path segment; rules of several policies for the
//! same path are merged, and the highest-priority matching path decides
//! (`deny` wins within it).

use std::cmp::Ordering;
use std::collections::BTreeMap;
use std::ops::Range;

use hcl::edit::expr::{Expression, ObjectKey};
use hcl::edit::structure::{Attribute, Block, Body};
use hcl::edit::{Span, parser};

use crate::desired::render_hcl;
use crate::diagnostic::{Diagnostic, suggest};
use crate::model::{Capability, Origin, PolicySpec, Repository};

/// The capabilities OpenBao accepts (`cap2Int` in `vault/policy.go`).
pub const CAPABILITIES: &[&str] = &[
    "deny", "create", "read", "update", "delete", "list", "sudo", "patch", "scan",
];

/// The keys Vault accepts in a `path` block.
const PATH_KEYS: &[&str] = &[
    "comment",
    "policy",
    "capabilities",
    "allowed_parameters",
    "denied_parameters",
    "required_parameters",
    "min_wrapping_ttl",
    "max_wrapping_ttl",
    "mfa_methods",
    "pagination_limit",
    "expiration",
    "list_scan_response_keys_filter_path",
    "control_group",
];

/// One `path` stanza, as Vault reads it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PathRule {
    /// The path (a leading `/` removed, as Vault does); may end in `*` or
    /// contain `+`.
    pub path: String,
    /// The capabilities, with a legacy `policy = "..."` mapped in and `deny`
    /// alone when Vault reads it as deny.
    pub capabilities: Vec<String>,
    /// Where the stanza starts in the policy text (1-based line, column).
    pub at: (usize, usize),
}

/// Why Vault would refuse a policy text.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct PolicyError {
    /// What is wrong, lowercase.
    pub message: String,
    /// How to fix it.
    pub hint: String,
    /// Where in the policy text (1-based line, column).
    pub at: (usize, usize),
}

/// The rules of a policy text, or why Vault would refuse it.
pub fn parse_policy(text: &str) -> Result<Vec<PathRule>, PolicyError> {
    let body = parser::parse_body(text).map_err(|e| {
        let at = (e.location().line(), e.location().column());
        let hint = if text.trim_start().starts_with('{') {
            "write the policy in HCL: certplane puts a comment line first, after which Vault no longer reads JSON".to_string()
        } else {
            "fix the HCL syntax: `path \"pki/sign/web\" {` then one `key = value` per line and `}`; attribute names are not quoted".to_string()
        };
        PolicyError {
            message: format!("policy is not valid HCL: {}", e.message()),
            hint,
            at,
        }
    })?;
    Reader { text }.body(&body)
}

/// The rules of a declared policy (its `rules`, or its `hcl`), read from
/// the exact text certplane sends to Vault. Positions are in that text,
/// whose first line is certplane's marker comment.
pub fn rules_of(spec: &PolicySpec) -> Result<Vec<PathRule>, PolicyError> {
    // The identity is in the marker comment only: any name reads the same.
    parse_policy(&render_hcl(spec, "repository"))
}

struct Reader<'a> {
    text: &'a str,
}

/// What a `path` block says, gathered before Vault's checks run on it.
#[derive(Default)]
struct Stanza {
    caps: Vec<Spanned>,
    policy: Option<Spanned>,
    /// `min_wrapping_ttl`, `max_wrapping_ttl` in seconds.
    wrap: [Option<(u64, Option<Range<usize>>)>; 2],
    /// Where `list_scan_response_keys_filter_path` is, if written.
    filter: Option<Option<Range<usize>>>,
    expiration: Option<Spanned>,
}

/// A [`PolicyError`] before it is placed: the byte span instead of the
/// line and column.
struct Fail {
    message: String,
    hint: String,
    span: Option<Range<usize>>,
}

/// A value with where it was written.
type Spanned = (String, Option<Range<usize>>);

fn fail(message: impl Into<String>, hint: impl Into<String>, span: Option<Range<usize>>) -> Fail {
    Fail {
        message: message.into(),
        hint: hint.into(),
        span,
    }
}

impl Reader<'_> {
    fn pos(&self, span: Option<Range<usize>>) -> (usize, usize) {
        let offset = span.map_or(0, |s| s.start).min(self.text.len());
        let before = &self.text[..offset];
        let line = before.matches('\n').count() + 1;
        let column = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
        (line, column)
    }

    fn place(
        &self,
        Fail {
            message,
            hint,
            span,
        }: Fail,
    ) -> PolicyError {
        PolicyError {
            message,
            hint,
            at: self.pos(span),
        }
    }

    fn body(&self, body: &Body) -> Result<Vec<PathRule>, PolicyError> {
        let mut out = Vec::new();
        for s in body.iter() {
            if let Some(a) = s.as_attribute() {
                match a.key.as_str() {
                    "name" => {}
                    "path" => {
                        return Err(self.place(fail(
                            "path must be a block, not an attribute",
                            "write `path \"<api path>\" { capabilities = [...] }`",
                            a.span(),
                        )));
                    }
                    other => return Err(self.place(unknown_top(other, a.span()))),
                }
            } else if let Some(b) = s.as_block() {
                match b.ident.as_str() {
                    "path" => {
                        if let Some(rule) = self.path(b).map_err(|f| self.place(f))? {
                            out.push(rule);
                        }
                    }
                    other => return Err(self.place(unknown_top(other, b.span()))),
                }
            }
        }
        Ok(out)
    }

    /// One `path` block; `None` when it has expired (Vault skips it).
    fn path(&self, b: &Block) -> Result<Option<PathRule>, Fail> {
        // Vault takes the first label; a block without one is the path "path".
        let written = b.labels.first().map_or("path", |l| l.as_str());
        let mut st = Stanza::default();
        for s in b.body.iter() {
            if let Some(inner) = s.as_block() {
                self.inner_block(written, inner)?;
            } else if let Some(a) = s.as_attribute() {
                self.attribute(written, a, &mut st)?;
            }
        }
        self.verdict(written, b, st)
    }

    /// A block inside a `path` block: HCL1 reads `key { ... }` as
    /// `key = { ... }`, so the object-valued keys may be written this way.
    fn inner_block(&self, written: &str, inner: &Block) -> Result<(), Fail> {
        let key = inner.ident.as_str();
        match key {
            "allowed_parameters" | "denied_parameters" => {
                for a in inner.body.attributes() {
                    if !matches!(a.value, Expression::Array(_)) {
                        return Err(list_of_values(written, key, a.value.span()));
                    }
                }
            }
            "control_group" => {
                if let Some(a) = inner.body.get_attribute("ttl") {
                    self.duration(written, "control_group ttl", &a.value)?;
                }
            }
            other => return Err(unknown_path_key(written, other, inner.span())),
        }
        Ok(())
    }

    /// One attribute of a `path` block: checks its type, keeps what the
    /// verdict needs in `st`.
    fn attribute(&self, written: &str, a: &Attribute, st: &mut Stanza) -> Result<(), Fail> {
        let key = a.key.as_str();
        let span = a.value.span();
        match key {
            "comment" => {}
            "policy" | "expiration" | "list_scan_response_keys_filter_path" => {
                let Some(v) = self.scalar(&a.value) else {
                    return Err(not_a_string(written, key, span));
                };
                match key {
                    "policy" => st.policy = Some((v, span)),
                    "expiration" => st.expiration = Some((v, span)),
                    _ => st.filter = Some(span),
                }
            }
            "capabilities" => st.caps.extend(self.capability_list(written, a)?),
            "required_parameters" | "mfa_methods" => self.string_list(written, a)?,
            "allowed_parameters" | "denied_parameters" => {
                let Expression::Object(o) = &a.value else {
                    return Err(fail(
                        format!("path {written:?}: {key} must be an object of lists"),
                        format!("write `{key} = {{ \"name\" = [] }}`"),
                        span,
                    ));
                };
                for (k, v) in o.iter() {
                    if !matches!(v.expr(), Expression::Array(_)) {
                        let span = match k {
                            ObjectKey::Expression(e) => e.span(),
                            ObjectKey::Ident(_) => v.expr().span(),
                        };
                        return Err(list_of_values(written, key, span));
                    }
                }
            }
            "min_wrapping_ttl" | "max_wrapping_ttl" => {
                let secs = self.duration(written, key, &a.value)?;
                st.wrap[usize::from(key == "max_wrapping_ttl")] = Some((secs, span));
            }
            "pagination_limit" => {
                let ok = match &a.value {
                    Expression::Number(n) => n.value().as_i64().is_some(),
                    e => self.scalar(e).is_some_and(|s| s.parse::<i64>().is_ok()),
                };
                if !ok {
                    return Err(fail(
                        format!("path {written:?}: pagination_limit must be a whole number"),
                        "write e.g. `pagination_limit = 100`",
                        span,
                    ));
                }
            }
            "control_group" => {
                if let Expression::Object(o) = &a.value {
                    for (k, v) in o.iter() {
                        let name = match k {
                            ObjectKey::Ident(i) => Some(i.as_str().to_string()),
                            ObjectKey::Expression(e) => self.scalar(e),
                        };
                        if name.as_deref() == Some("ttl") {
                            self.duration(written, "control_group ttl", v.expr())?;
                        }
                    }
                }
            }
            other => return Err(unknown_path_key(written, other, a.span())),
        }
        Ok(())
    }

    /// Vault's checks of a read `path` block, in Vault's order.
    fn verdict(&self, written: &str, b: &Block, st: Stanza) -> Result<Option<PathRule>, Fail> {
        let Stanza {
            caps,
            policy,
            wrap,
            filter,
            expiration,
        } = st;
        let at = self.pos(b.span());
        if let Some((text, span)) = expiration {
            match absolute_time(&text) {
                Some(t) if t <= now() => return Ok(None),
                Some(_) => {}
                None => {
                    return Err(fail(
                        format!("path {written:?}: invalid expiration time {text:?}"),
                        "write an RFC 3339 time, e.g. 2030-01-01T00:00:00Z",
                        span,
                    ));
                }
            }
        }
        let path = written.strip_prefix('/').unwrap_or(written).to_string();
        if path.contains("+*") {
            return Err(fail(
                format!("path {written:?}: invalid use of wildcards ('+*' is forbidden)"),
                "use + for one segment or * at the end, not both together",
                b.labels.first().and_then(Span::span).or(b.span()),
            ));
        }
        let mut names: Vec<String> = caps.iter().map(|(c, _)| c.clone()).collect();
        if let Some((p, span)) = policy {
            let add: &[&str] = match p.as_str() {
                "deny" => {
                    names.clear();
                    &["deny"]
                }
                "read" => &["read", "list"],
                "write" => &["create", "read", "update", "delete", "list"],
                "sudo" => &["create", "read", "update", "delete", "list", "sudo"],
                _ => {
                    return Err(fail(
                        format!("path {written:?}: invalid policy {p:?}"),
                        "the legacy policy key takes deny, read, write or sudo; prefer capabilities = [...]",
                        span,
                    ));
                }
            };
            names.extend(add.iter().map(|s| s.to_string()));
        }
        for (i, c) in names.iter().enumerate() {
            if c == "deny" {
                // Vault stops here: deny alone, nothing else checked.
                return Ok(Some(PathRule {
                    path,
                    capabilities: vec!["deny".into()],
                    at,
                }));
            }
            if !CAPABILITIES.contains(&c.as_str()) {
                let span = caps.get(i).and_then(|(_, s)| s.clone());
                return Err(fail(
                    format!("path {written:?}: invalid capability {c:?}"),
                    capability_hint(c),
                    span.or(b.span()),
                ));
            }
        }
        if let [Some((min, _)), Some((max, span))] = &wrap
            && *min != 0
            && *max != 0
            && max < min
        {
            return Err(fail(
                format!("path {written:?}: max_wrapping_ttl cannot be less than min_wrapping_ttl"),
                "raise max_wrapping_ttl or lower min_wrapping_ttl",
                span.clone(),
            ));
        }
        if let Some(span) = filter
            && !names.iter().any(|c| c == "list")
        {
            return Err(fail(
                format!(
                    "path {written:?}: list_scan_response_keys_filter_path needs the list capability"
                ),
                "add \"list\" to the capabilities of this path",
                span,
            ));
        }
        Ok(Some(PathRule {
            path,
            capabilities: names,
            at,
        }))
    }

    /// A string as Vault's HCL1 decoder reads it into a string: a literal,
    /// a template kept as written, a heredoc, or a number's text.
    fn scalar(&self, e: &Expression) -> Option<String> {
        match e {
            Expression::String(s) => Some(s.value().clone()),
            Expression::Number(n) => Some(n.value().to_string()),
            Expression::StringTemplate(_) | Expression::HeredocTemplate(_) => {
                let span = e.span()?;
                let raw = self.text.get(span)?;
                Some(raw.trim_matches('"').to_string())
            }
            _ => None,
        }
    }

    fn capability_list(&self, path: &str, a: &Attribute) -> Result<Vec<Spanned>, Fail> {
        let Expression::Array(items) = &a.value else {
            return Err(fail(
                format!("path {path:?}: capabilities must be a list"),
                "write `capabilities = [\"read\"]`",
                a.value.span(),
            ));
        };
        items
            .iter()
            .map(|item| match self.scalar(item) {
                Some(c) => Ok((c, item.span())),
                None => Err(fail(
                    format!("path {path:?}: a capability must be a string"),
                    format!("use names from: {}", CAPABILITIES.join(", ")),
                    item.span(),
                )),
            })
            .collect()
    }

    fn string_list(&self, path: &str, a: &Attribute) -> Result<(), Fail> {
        let key = a.key.as_str();
        let Expression::Array(items) = &a.value else {
            return Err(fail(
                format!("path {path:?}: {key} must be a list"),
                format!("write `{key} = [\"...\"]`"),
                a.value.span(),
            ));
        };
        for item in items.iter() {
            if self.scalar(item).is_none() {
                return Err(not_a_string(path, key, item.span()));
            }
        }
        Ok(())
    }

    /// A duration as Vault's `parseutil.ParseDurationSecond` reads it:
    /// whole seconds (a number or a numeric string), or Go syntax.
    fn duration(&self, path: &str, key: &str, e: &Expression) -> Result<u64, Fail> {
        let bad = || {
            fail(
                format!("path {path:?}: invalid {key}"),
                "write a duration such as 30s, 5m or 1h",
                e.span(),
            )
        };
        if let Expression::Number(n) = e {
            return n.value().as_u64().ok_or_else(bad);
        }
        let text = self.scalar(e).ok_or_else(bad)?;
        if let Ok(secs) = text.trim().parse::<u64>() {
            return Ok(secs);
        }
        text.parse::<crate::model::Duration>()
            .map(crate::model::Duration::as_secs)
            .map_err(|_| bad())
    }
}

fn unknown_top(key: &str, span: Option<Range<usize>>) -> Fail {
    let hint = match suggest::closest(key, ["path", "name"]) {
        Some(c) => format!("did you mean {c}? a policy holds `path \"...\" {{ ... }}` blocks"),
        None => "a policy holds `path \"...\" { ... }` blocks (and an optional name)".to_string(),
    };
    fail(format!("invalid key {key:?} in the policy"), hint, span)
}

fn unknown_path_key(path: &str, key: &str, span: Option<Range<usize>>) -> Fail {
    let hint = match suggest::closest(key, PATH_KEYS.iter().copied()) {
        Some(c) => format!("did you mean {c}?"),
        None => format!("a path block accepts: {}", PATH_KEYS.join(", ")),
    };
    fail(format!("path {path:?}: invalid key {key:?}"), hint, span)
}

fn not_a_string(path: &str, key: &str, span: Option<Range<usize>>) -> Fail {
    fail(
        format!("path {path:?}: {key} must be a string"),
        "quote the value",
        span,
    )
}

fn list_of_values(path: &str, key: &str, span: Option<Range<usize>>) -> Fail {
    fail(
        format!("path {path:?}: each entry of {key} must be a list of values"),
        format!("write `{key} = {{ \"name\" = [\"value\"] }}` ([] for any value)"),
        span,
    )
}

fn capability_hint(c: &str) -> String {
    let known = CAPABILITIES.join(", ");
    match c {
        "write" => format!("write is not a capability: use create and update; known: {known}"),
        "subscribe" | "recover" => {
            format!("{c} is a HashiCorp Vault capability that OpenBao refuses; known: {known}")
        }
        _ => match suggest::closest(&c.to_lowercase(), CAPABILITIES.iter().copied()) {
            Some(s) => format!("did you mean {s}? known: {known}"),
            None => format!("known capabilities: {known}"),
        },
    }
}

fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64)
}

/// Seconds since the epoch of an RFC 3339 time or a Unix timestamp, as
/// Vault's `parseutil.ParseAbsoluteTime` reads `expiration`.
fn absolute_time(text: &str) -> Option<i64> {
    if let Ok(secs) = text.parse::<i64>() {
        return Some(secs);
    }
    let b = text.as_bytes();
    let num = |r: Range<usize>| -> Option<i64> {
        let s = text.get(r)?;
        s.bytes()
            .all(|c| c.is_ascii_digit())
            .then(|| s.parse().ok())?
    };
    if b.len() < 20 || b[4] != b'-' || b[7] != b'-' || !matches!(b[10], b'T' | b't') {
        return None;
    }
    if b[13] != b':' || b[16] != b':' {
        return None;
    }
    let (y, mo, d) = (num(0..4)?, num(5..7)?, num(8..10)?);
    let (h, mi, s) = (num(11..13)?, num(14..16)?, num(17..19)?);
    let mut rest = &text[19..];
    if let Some(frac) = rest.strip_prefix('.') {
        let digits = frac.bytes().take_while(u8::is_ascii_digit).count();
        if digits == 0 {
            return None;
        }
        rest = &frac[digits..];
    }
    let offset = match rest {
        "Z" | "z" => 0,
        _ => {
            let sign = match rest.as_bytes().first()? {
                b'+' => 1,
                b'-' => -1,
                _ => return None,
            };
            if rest.len() != 6 || rest.as_bytes()[3] != b':' {
                return None;
            }
            sign * (num_of(&rest[1..3])? * 3600 + num_of(&rest[4..6])? * 60)
        }
    };
    let days_in = [
        31,
        if leap(y) { 29 } else { 28 },
        31,
        30,
        31,
        30,
        31,
        31,
        30,
        31,
        30,
        31,
    ];
    if !(1..=12).contains(&mo)
        || d < 1
        || d > days_in[(mo - 1) as usize]
        || h > 23
        || mi > 59
        || s > 60
    {
        return None;
    }
    Some(days_from_civil(y, mo, d) * 86_400 + h * 3600 + mi * 60 + s - offset)
}

fn num_of(s: &str) -> Option<i64> {
    s.bytes()
        .all(|c| c.is_ascii_digit())
        .then(|| s.parse().ok())?
}

fn leap(y: i64) -> bool {
    (y % 4 == 0 && y % 100 != 0) || y % 400 == 0
}

/// Days since 1970-01-01 of a proleptic Gregorian date.
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// Checks that Vault would accept every declared policy as certplane sends
/// it. `hcl` errors point into the YAML text of the policy (when it is a
/// `|` block); a rule of `rules` that would not render to a valid policy is
/// reported at the rule.
pub(super) fn check(repo: &Repository, out: &mut Vec<Diagnostic>) {
    for (meta, origin, spec) in repo.policies() {
        let name = &meta.name;
        match (&spec.rules, &spec.hcl) {
            (None, Some(hcl)) if !hcl.trim().is_empty() => {
                if let Err(e) = rules_of(spec) {
                    // Line 1 of what is sent is certplane's marker comment.
                    let (line, column) = (e.at.0.saturating_sub(1).max(1), e.at.1);
                    out.push(
                        Diagnostic::new(
                            origin.at_text("spec.hcl", line, column),
                            format!("policy {name}: Vault would refuse it: {}", e.message),
                        )
                        .hint(e.hint),
                    );
                }
            }
            (Some(rules), None) => {
                for (i, rule) in rules.iter().enumerate() {
                    rule_check(name, origin, i, rule, out);
                }
            }
            _ => {}
        }
    }
}

fn rule_check(
    name: &str,
    origin: &Origin,
    i: usize,
    rule: &crate::model::PolicyRule,
    out: &mut Vec<Diagnostic>,
) {
    let base = format!("spec.rules[{i}]");
    for (j, c) in rule.capabilities.iter().enumerate() {
        if !CAPABILITIES.contains(&c.as_str()) {
            out.push(
                Diagnostic::new(
                    origin.at(&format!("{base}.capabilities[{j}]")),
                    format!(
                        "policy {name}: Vault would refuse capability {} on {}",
                        c.as_str(),
                        rule.path
                    ),
                )
                .hint(capability_hint(c.as_str())),
            );
        }
    }
    // The rule alone, rendered as certplane sends it, with only capabilities
    // Vault knows: what is left to fail is the path.
    let alone = PolicySpec {
        rules: Some(vec![crate::model::PolicyRule {
            path: rule.path.clone(),
            capabilities: rule
                .capabilities
                .iter()
                .copied()
                .filter(|c| *c != Capability::Subscribe)
                .collect(),
        }]),
        hcl: None,
    };
    let wanted = rule.path.strip_prefix('/').unwrap_or(&rule.path);
    let problem = match rules_of(&alone) {
        Err(e) => Some((e.message, e.hint)),
        // It parses, but as another path: Vault would grant that one.
        Ok(read) => match read.as_slice() {
            [one] if one.path == wanted => None,
            [one, ..] => Some((
                format!("it reads back as path {:?}", one.path),
                String::new(),
            )),
            [] => Some(("it reads back as no path at all".to_string(), String::new())),
        },
    };
    if let Some((message, hint)) = problem {
        let hint = if rule.path.contains(['"', '\\', '\n'])
            || rule.path.contains("${")
            || rule.path.contains("%{")
            || hint.is_empty()
        {
            "a policy path cannot hold a quote, a backslash, a line break, ${ or %{: write the API path, e.g. pki_int/sign/web".to_string()
        } else {
            hint
        };
        out.push(
            Diagnostic::new(
                origin.at(&format!("{base}.path")),
                format!(
                    "policy {name}: rule {i} would not render to a policy Vault accepts as written: {message}"
                ),
            )
            .hint(hint),
        );
    }
}

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

/// Whether `policies` together grant `update` on `path`. A policy Vault
/// would refuse grants nothing (it is reported on its own).
pub fn grants_update(policies: &[&PolicySpec], path: &str) -> bool {
    let mut merged: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for p in policies {
        for r in rules_of(p).unwrap_or_default() {
            merged.entry(r.path).or_default().extend(r.capabilities);
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

    fn hcl(text: &str) -> PolicySpec {
        PolicySpec {
            rules: None,
            hcl: Some(text.into()),
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
        let p = hcl(
            "path \"pki/sign/web\" {\n  capabilities = [\"update\", \"read\"]\n}\npath \"x\" { capabilities = [\"deny\"] }\n",
        );
        assert!(grants_update(&[&p], "pki/sign/web"));
        assert!(!grants_update(&[&p], "x"));
    }

    /// Regression: the hand-written reader took the first `]` after
    /// `capabilities` only when `capabilities` came first in the block; with
    /// `allowed_parameters` before it, it returned no capabilities.
    #[test]
    fn allowed_parameters_before_capabilities_is_read_correctly() {
        let text = "path \"pki/sign/web\" {\n  allowed_parameters = {\n    \"common_name\" = [\"*.example.com\"]\n  }\n  capabilities = [\"update\"]\n}\n";
        let got = parse_policy(text).unwrap();
        assert_eq!(
            got,
            vec![PathRule {
                path: "pki/sign/web".into(),
                capabilities: vec!["update".into()],
                at: (1, 1),
            }]
        );
        assert!(grants_update(&[&hcl(text)], "pki/sign/web"));
    }

    #[test]
    fn vault_semantics() {
        // Legacy policy, deny alone, leading slash, a label-less block.
        let r = parse_policy(
            "path \"/a\" { policy = \"read\" }\npath \"b\" { capabilities = [\"deny\", \"bogus\"] }\npath { capabilities = [\"list\"] }\n",
        )
        .unwrap();
        assert_eq!(r[0].path, "a");
        assert_eq!(r[0].capabilities, ["read", "list"]);
        assert_eq!(r[1].capabilities, ["deny"]);
        assert_eq!(r[2].path, "path");
        // An expired stanza is skipped, even with a bad capability.
        let r = parse_policy(
            "path \"x\" {\n  capabilities = [\"bogus\"]\n  expiration = \"2001-01-01T00:00:00Z\"\n}\n",
        )
        .unwrap();
        assert!(r.is_empty());
    }

    #[test]
    fn errors_carry_their_position() {
        let e =
            parse_policy("path \"x\" {\n  capabilities = [\"read\", \"write\"]\n}\n").unwrap_err();
        assert_eq!(e.at, (2, 27));
        assert!(e.message.contains("invalid capability \"write\""), "{e}");
        assert!(e.hint.contains("create and update"), "{}", e.hint);
        let e = parse_policy("path \"x\" {\n  capabilitie = [\"read\"]\n}\n").unwrap_err();
        assert_eq!(e.at, (2, 3));
        assert!(e.hint.contains("did you mean capabilities?"), "{}", e.hint);
        let e = parse_policy("path \"x\" { capabilities = [\"read\"]\n").unwrap_err();
        assert!(e.message.starts_with("policy is not valid HCL"), "{e}");
    }

    #[test]
    fn absolute_times() {
        assert_eq!(absolute_time("1970-01-01T00:00:00Z"), Some(0));
        assert_eq!(absolute_time("2000-03-01T00:00:00Z"), Some(951_868_800));
        assert_eq!(
            absolute_time("2000-03-01T01:00:00+01:00"),
            Some(951_868_800)
        );
        assert_eq!(absolute_time("2000-03-01T00:00:00.5Z"), Some(951_868_800));
        assert_eq!(absolute_time("4070908800"), Some(4_070_908_800));
        for bad in [
            "tomorrow",
            "2099-01-01",
            "2099-01-01 00:00:00",
            "2099-02-30T00:00:00Z",
        ] {
            assert_eq!(absolute_time(bad), None, "{bad}");
        }
    }
}
