//! `PkiMount.spec.trustBundle`: a mount's CA trust bundle
//! ([`crate::vault::bundle`]: the certificate of every issuer of the mount
//! that has not expired) published into a cluster object certplane owns: a
//! ConfigMap (`data[<key>]`) and/or a trust-manager `Bundle`
//! (`trust.cert-manager.io/v1alpha1`, cluster-scoped, one `inLine` source).
//!
//! The content comes from Vault, and its final value is only known after
//! the Vault half of an apply (a rotation's new issuer does not exist at
//! plan time). So, like an AppRole's delivered secret ID
//! ([`super::deliver`]):
//!
//! * **observe** reads the mount's live issuers and the published object
//!   (a live object, or a rendered file);
//! * **plan** ([`plan`], pure) compares the bundle of the live issuers with
//!   what the object holds, line per certificate (issuer id, common name,
//!   notAfter, SHA-256 prefix: certificates are public, nothing private is
//!   shown), and says when the Vault half of the same plan makes an issuer
//!   of the mount (stage 1 of a rotation, a new CA): the object then gains
//!   it after the Vault half ("known after apply"), and is written even
//!   when it holds the live bundle today;
//! * **apply** runs after the Vault half: it re-reads the object ("plan is
//!   stale" when it was created, deleted or given other certificates since
//!   the plan), reads the issuers again and writes the bundle they make
//!   now.
//!
//! [`gate`] keeps stage 2 of a rotation (the new issuer becomes the
//! default) waiting until every object the mount publishes holds the new
//! issuer: clients must trust it before any leaf it signs reaches them.

use std::collections::{BTreeMap, BTreeSet};

use serde_json::{Value, json};

use super::inventory::{MANAGED_BY, MANAGED_BY_LABEL, REPOSITORY_LABEL};
use crate::addr::{Addr, KubeRef};
use crate::model::Repository;
use crate::plan::{Action, Change, Plan, Rotation};
use crate::state::{Fields, ObservedIssuer, ResourceKind};

/// Annotation on a published object naming the mount whose bundle it holds.
pub const TRUST_BUNDLE_OF: &str = "certplane.dev/trust-bundle-of";

/// The trust-manager API the `Bundle` is written with.
pub const BUNDLE_API_VERSION: &str = "trust.cert-manager.io/v1alpha1";

/// How a bundle is held by its object.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Form {
    /// A ConfigMap, under `data[key]`.
    ConfigMap {
        /// The data key.
        key: String,
    },
    /// A trust-manager `Bundle` (`spec.sources: [{inLine}]`).
    Bundle {
        /// `spec.target.configMap.key`.
        key: String,
        /// `spec.target.namespaceSelector.matchLabels`, if any.
        selector: Option<BTreeMap<String, String>>,
    },
}

/// One object a mount publishes its bundle into.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Target {
    /// The PKI mount (no slashes around it).
    pub mount: String,
    /// The object.
    pub object: KubeRef,
    /// How it holds the bundle.
    pub form: Form,
}

/// Every object the repository publishes a trust bundle into, in
/// declaration order.
pub fn targets(repo: &Repository) -> Vec<Target> {
    let mut out = Vec::new();
    for (meta, _, spec) in repo.pki_mounts() {
        let Some(tb) = &spec.trust_bundle else {
            continue;
        };
        let mount = meta.name.trim_matches('/').to_string();
        if let Some(cm) = &tb.config_map {
            out.push(Target {
                mount: mount.clone(),
                object: KubeRef {
                    group: String::new(),
                    version: "v1".into(),
                    kind: "ConfigMap".into(),
                    namespace: Some(cm.namespace.clone()),
                    name: cm.name.clone(),
                },
                form: Form::ConfigMap {
                    key: cm.key.clone(),
                },
            });
        }
        if let Some(b) = &tb.bundle {
            out.push(Target {
                mount: mount.clone(),
                object: KubeRef {
                    group: "trust.cert-manager.io".into(),
                    version: "v1alpha1".into(),
                    kind: "Bundle".into(),
                    namespace: None,
                    name: b.name.clone(),
                },
                form: Form::Bundle {
                    key: b.key.clone(),
                    selector: b
                        .namespace_selector
                        .as_ref()
                        .map(|s| s.match_labels.clone()),
                },
            });
        }
    }
    out
}

impl Target {
    /// The field the plan shows the bundle under.
    pub fn field(&self) -> String {
        match &self.form {
            Form::ConfigMap { key } => format!("data[{key:?}]"),
            Form::Bundle { .. } => "spec.sources[0].inLine".to_string(),
        }
    }

    /// The object holding `pem`, as certplane applies it (labelled with the
    /// repository `identity`).
    pub fn manifest(&self, pem: &str, identity: &str) -> Value {
        let r = &self.object;
        let mut metadata = json!({
            "name": r.name,
            "labels": {
                MANAGED_BY_LABEL: MANAGED_BY,
                REPOSITORY_LABEL: identity,
            },
            "annotations": {TRUST_BUNDLE_OF: self.mount},
        });
        if let Some(ns) = &r.namespace {
            metadata["namespace"] = json!(ns);
        }
        match &self.form {
            Form::ConfigMap { key } => json!({
                "apiVersion": "v1",
                "kind": "ConfigMap",
                "metadata": metadata,
                "data": {(key.as_str()): pem},
            }),
            Form::Bundle { key, selector } => {
                let mut target = json!({"configMap": {"key": key}});
                if let Some(labels) = selector {
                    target["namespaceSelector"] = json!({"matchLabels": labels});
                }
                json!({
                    "apiVersion": BUNDLE_API_VERSION,
                    "kind": "Bundle",
                    "metadata": metadata,
                    "spec": {"sources": [{"inLine": pem}], "target": target},
                })
            }
        }
    }

    /// The PEM `object` holds where this target puts it (`None`: nowhere:
    /// the key is missing, or the Bundle has other sources than one
    /// `inLine`).
    pub fn held(&self, object: &Value) -> Option<String> {
        match &self.form {
            Form::ConfigMap { key } => object["data"][key.as_str()].as_str().map(str::to_string),
            Form::Bundle { .. } => match object["spec"]["sources"].as_array() {
                Some(s) if s.len() == 1 => s[0]["inLine"].as_str().map(str::to_string),
                _ => None,
            },
        }
    }

    /// Whether `object` is shaped as this target writes it, the bundle
    /// aside: labelled as the repository's, and (a Bundle) with the
    /// declared target.
    pub fn shaped(&self, object: &Value, identity: &str) -> bool {
        let ours = object["metadata"]["labels"][REPOSITORY_LABEL].as_str() == Some(identity);
        let target = match &self.form {
            Form::ConfigMap { .. } => true,
            Form::Bundle { key, selector } => {
                let t = &object["spec"]["target"];
                let labels: Option<BTreeMap<String, String>> =
                    serde_json::from_value(t["namespaceSelector"]["matchLabels"].clone()).ok();
                t["configMap"]["key"].as_str() == Some(key.as_str()) && labels == *selector
            }
        };
        ours && target
    }
}

/// What observing one published object found.
#[derive(Clone, Debug)]
pub struct TrustObserved {
    /// The object and the mount.
    pub target: Target,
    /// The mount's live issuers (with their certificates).
    pub issuers: Vec<ObservedIssuer>,
    /// When they were read (Unix seconds).
    pub now: i64,
    /// The object as it is (`None`: it does not exist).
    pub live: Option<Value>,
}

/// The SHA-256 (hex) of every certificate in a PEM text.
pub fn fingerprints(pem: &str) -> BTreeSet<String> {
    crate::pki::x509::pem_certificates(pem)
        .unwrap_or_default()
        .iter()
        .map(|der| crate::pki::x509::sha256_hex(der))
        .collect()
}

/// The marker before a certificate's SHA-256 prefix on a summary line.
const SHA_MARK: &str = " sha256:";

/// How many hex digits of a SHA-256 a summary line shows.
const SHA_SHOWN: usize = 16;

/// One line per certificate of `pem`, for people: the issuer of `mount` it
/// is (id, name), its common name and notAfter, and a SHA-256 prefix (what
/// a stale re-check compares). Never a key: only certificates are read.
pub fn summary(pem: &str, issuers: &[ObservedIssuer], mount: &str) -> String {
    let by_sha: BTreeMap<&str, &ObservedIssuer> = issuers
        .iter()
        .map(|i| (i.cert_sha256.as_str(), i))
        .collect();
    let mut out = String::new();
    for der in crate::pki::x509::pem_certificates(pem).unwrap_or_default() {
        let Ok(info) = crate::pki::x509::parse_der(&der) else {
            let sha = crate::pki::x509::sha256_hex(&der);
            out.push_str(&format!(
                "unreadable certificate{SHA_MARK}{}\n",
                &sha[..SHA_SHOWN]
            ));
            continue;
        };
        let what = match by_sha.get(info.sha256.as_str()) {
            Some(i) if i.name.is_empty() => format!("issuer {}", i.id),
            Some(i) => format!("issuer {} ({})", i.id, i.name),
            None => format!("certificate (not an issuer of {mount})"),
        };
        out.push_str(&format!(
            "{what} {:?} notAfter {}{SHA_MARK}{}\n",
            info.common_name,
            crate::vault::lock::rfc3339(info.not_after),
            &info.sha256[..SHA_SHOWN]
        ));
    }
    if out.is_empty() {
        out.push_str("(no certificate)\n");
    }
    out
}

/// The SHA-256 prefixes a summary names.
fn summary_fingerprints(text: &str) -> BTreeSet<String> {
    text.lines()
        .filter_map(|l| l.rsplit_once(SHA_MARK).map(|(_, s)| s.to_string()))
        .collect()
}

/// The issuers of `mount` the Vault half of `planned` makes (a CA created,
/// stage 1 of a rotation): what the bundle gains after it, for people.
fn made_by(planned: &Plan, mount: &str) -> Vec<String> {
    planned
        .pending()
        .filter(|c| c.kind == ResourceKind::Issuer)
        .filter(|c| matches!(c.action, Action::Create | Action::Replace))
        .filter_map(|c| {
            let ca = c.ca.as_ref()?;
            (ca.desired.mount.trim_matches('/') == mount).then_some(ca)
        })
        .map(|ca| match &ca.rotation {
            Some(Rotation::Make { old }) => {
                format!("the new issuer rotation 1/3 makes beside {old}")
            }
            _ => "the CA this apply makes".to_string(),
        })
        .collect()
}

/// The planned change of one published object. Pure.
pub fn plan(seen: &TrustObserved, planned: &Plan, identity: &str) -> Change {
    let t = &seen.target;
    let want = crate::vault::bundle::bundle_pem(&seen.issuers, seen.now);
    let field = t.field();
    let held = seen.live.as_ref().and_then(|o| t.held(o));
    let made = made_by(planned, &t.mount);
    let mut after_text = summary(&want, &seen.issuers, &t.mount);
    if want.is_empty() {
        after_text.clear();
    }
    for m in &made {
        after_text.push_str(&format!("(known after apply) {m}\n"));
    }
    if after_text.is_empty() {
        after_text.push_str("(no certificate)\n");
    }
    let before = seen.live.as_ref().map(|_| {
        let text = held
            .as_deref()
            .map(|h| summary(h, &seen.issuers, &t.mount))
            .unwrap_or_else(|| "(none)\n".to_string());
        Fields::from([(field.clone(), json!(text))])
    });
    let in_sync = seen.live.as_ref().is_some_and(|o| t.shaped(o, identity))
        && held.as_deref() == Some(want.as_str());
    let (action, why) = if want.is_empty() && made.is_empty() {
        let why = format!("mount {} has no issuer yet: nothing to publish", t.mount);
        (Action::NoOp, Some(why))
    } else if seen.live.is_none() {
        let why = format!("publish the trust bundle of {}", t.mount);
        (Action::Create, Some(why))
    } else if !in_sync {
        (
            Action::Update,
            Some(update_reason(seen, held.as_deref(), &want)),
        )
    } else if !made.is_empty() {
        (Action::Update, None)
    } else {
        (Action::NoOp, None)
    };
    let gains = (!made.is_empty()).then(|| {
        format!(
            "it gains {} (known after apply): written after the Vault half",
            made.join(" and ")
        )
    });
    let reason = match (why, gains) {
        (Some(w), Some(g)) => Some(format!("{w}; {g}")),
        (None, Some(g)) => Some(format!("the trust bundle of {}: {g}", t.mount)),
        (w, None) => w,
    };
    Change {
        addr: Addr::from(t.object.clone()),
        kind: ResourceKind::TrustBundle,
        action,
        before,
        after: Some(Fields::from([(field, json!(after_text))])),
        sensitive: vec![],
        reason,
        ca: None,
        depends_on: Default::default(),
        manifest: Some(Box::new(t.manifest(&want, identity))),
    }
}

/// Why an existing object is written again: the certificates that enter
/// and leave it (by issuer id, or by name for one that is no issuer).
fn update_reason(seen: &TrustObserved, held: Option<&str>, want: &str) -> String {
    let t = &seen.target;
    let had = held.map(fingerprints).unwrap_or_default();
    let will = fingerprints(want);
    let name = |sha: &String| {
        seen.issuers
            .iter()
            .find(|i| i.cert_sha256 == *sha)
            .map(|i| format!("issuer {}", i.id))
            .unwrap_or_else(|| format!("certificate sha256:{}", &sha[..SHA_SHOWN.min(sha.len())]))
    };
    let enter: Vec<String> = will.difference(&had).map(name).collect();
    let leave: Vec<String> = had.difference(&will).map(name).collect();
    let mut parts = Vec::new();
    if !enter.is_empty() {
        parts.push(format!("gains {}", enter.join(", ")));
    }
    if !leave.is_empty() {
        parts.push(format!("loses {} (expired or deleted)", leave.join(", ")));
    }
    if parts.is_empty() {
        parts.push("its text or shape differs from what certplane writes".to_string());
    }
    format!("the trust bundle of {} {}", t.mount, parts.join("; "))
}

/// Stage 2 of a rotation waits for the trust bundles: a `Switch` of a
/// mount that publishes its bundle becomes a wait (unchanged, rotation
/// [`Rotation::Published`]) while one of its objects does not hold the new
/// issuer; the children that would have followed it wait too. Pure.
pub fn gate(plan: &mut Plan, seen: &[TrustObserved]) {
    let mut gated = false;
    for c in plan.changes.iter_mut() {
        let Some(ca) = c.ca.as_mut() else { continue };
        let Some(Rotation::Switch { old, .. }) = &ca.rotation else {
            continue;
        };
        let old = old.clone();
        let mount = ca.desired.mount.trim_matches('/');
        let Some(new) = ca.existing_id.clone() else {
            continue;
        };
        let waiting: Vec<String> = seen
            .iter()
            .filter(|s| s.target.mount == mount)
            .filter(|s| !holds(s, &new))
            .map(|s| s.target.object.to_string())
            .collect();
        if waiting.is_empty() {
            continue;
        }
        c.action = Action::NoOp;
        c.reason = Some(format!(
            "rotation 1/3 done: the new issuer {new} is published in Vault beside {old}; rotation \
             2/3 (make it the default) waits until the trust bundle {} holds it (this apply \
             writes it): apply again after that",
            waiting.join(", ")
        ));
        ca.rotation = Some(Rotation::Published { old, waiting });
        gated = true;
    }
    if gated {
        // A gate makes no parent's stage 1 (only stage 2 waits): nothing new
        // to cross-sign, only children to hold back.
        crate::plan::children_wait(&mut plan.changes, None);
    }
}

/// Whether the published object of `seen` holds the issuer `id`.
fn holds(seen: &TrustObserved, id: &str) -> bool {
    let Some(issuer) = seen.issuers.iter().find(|i| i.id == id) else {
        return false;
    };
    seen.live
        .as_ref()
        .and_then(|o| seen.target.held(o))
        .is_some_and(|pem| fingerprints(&pem).contains(&issuer.cert_sha256))
}

/// How a published object moved since its planned change (`None`: it did
/// not): created, deleted, or holding other certificates.
pub fn moved(planned: &Change, target: &Target, now: Option<&Value>) -> Option<String> {
    match (&planned.before, now) {
        (None, None) => None,
        (None, Some(_)) => Some("it was created since".to_string()),
        (Some(_), None) => Some("it was deleted since".to_string()),
        (Some(before), Some(now)) => {
            let then = before
                .get(&target.field())
                .and_then(Value::as_str)
                .map(summary_fingerprints)
                .unwrap_or_default();
            let is: BTreeSet<String> = target
                .held(now)
                .map(|pem| {
                    fingerprints(&pem)
                        .into_iter()
                        .map(|s| s[..SHA_SHOWN.min(s.len())].to_string())
                        .collect()
                })
                .unwrap_or_default();
            (then != is).then(|| "it holds other certificates than the plan saw".to_string())
        }
    }
}

/// The pending changes of published objects in `changes`, each with its
/// target (a change whose target the repository no longer declares is
/// skipped).
pub fn pending<'a>(repo: &Repository, changes: &'a [Change]) -> Vec<(&'a Change, Target)> {
    let all = targets(repo);
    changes
        .iter()
        .filter(|c| c.kind == ResourceKind::TrustBundle && c.action.is_change())
        .filter_map(|c| {
            let t = all
                .iter()
                .find(|t| Addr::from(t.object.clone()) == c.addr)?;
            Some((c, t.clone()))
        })
        .collect()
}

/// Reads the issuers of each mount in `targets` once (a mount may publish
/// into two objects).
pub async fn read_issuers(
    vault: &crate::vault::Vault,
    targets: &[Target],
) -> Result<BTreeMap<String, Vec<ObservedIssuer>>, crate::vault::VaultError> {
    let mut out = BTreeMap::new();
    for t in targets {
        if !out.contains_key(&t.mount) {
            let issuers = crate::vault::observe::observe_issuers(vault, &t.mount).await?;
            out.insert(t.mount.clone(), issuers);
        }
    }
    Ok(out)
}

/// The bundle to publish for `target` (planned by `planned`): the mount's
/// issuers as Vault has them now (after the Vault half), once the object
/// as it is `now` is checked not to have moved since the plan. `None`: the
/// mount has no issuer, and nothing is published (said in a warning).
pub async fn bundle_to_publish(
    vault: &crate::vault::Vault,
    planned: &Change,
    target: &Target,
    now: Option<&Value>,
) -> Result<Option<String>, crate::pipeline::ProviderError> {
    if let Some(why) = moved(planned, target, now) {
        return Err(crate::pipeline::ProviderError::Stale {
            addr: Box::new(planned.addr.clone()),
            why,
        });
    }
    let pem = crate::vault::bundle::live_bundle(vault, &target.mount).await?;
    if pem.is_empty() {
        tracing::warn!(object = %target.object, mount = %target.mount, "the mount has no issuer: its trust bundle is not published");
        return Ok(None);
    }
    Ok(Some(pem))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cert(cn: &str, days: u32) -> (String, ObservedIssuer) {
        let key = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).unwrap();
        let mut p = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
        p.distinguished_name.push(rcgen::DnType::CommonName, cn);
        p.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        p.not_before = rcgen::date_time_ymd(2026, 1, 1);
        p.not_after = p.not_before + std::time::Duration::from_secs(u64::from(days) * 86_400);
        let pem = p.self_signed(&key).unwrap().pem();
        let info = crate::pki::x509::parse_pem(&pem).unwrap();
        let issuer = ObservedIssuer {
            id: format!("id-{cn}"),
            name: cn.to_string(),
            common_name: cn.into(),
            issued_by: cn.into(),
            key_type: None,
            key_bits: 0,
            not_after: info.not_after,
            max_path_length: None,
            cert_sha256: info.sha256.clone(),
            is_default: true,
            key_id: format!("key-{cn}"),
            not_before: info.not_before,
            usage: String::new(),
            certificate: pem.clone(),
            manual_chain: Vec::new(),
            leaf_not_after_behavior: String::new(),
        };
        (pem, issuer)
    }

    fn config_map() -> Target {
        Target {
            mount: "pki_int".into(),
            object: KubeRef {
                group: String::new(),
                version: "v1".into(),
                kind: "ConfigMap".into(),
                namespace: Some("sandbox".into()),
                name: "int-ca".into(),
            },
            form: Form::ConfigMap {
                key: "ca.crt".into(),
            },
        }
    }

    fn seen(issuers: Vec<ObservedIssuer>, live: Option<Value>) -> TrustObserved {
        TrustObserved {
            target: config_map(),
            issuers,
            now: 1_767_225_600 + 3_600, // 2026-01-01T01:00:00Z
            live,
        }
    }

    #[test]
    fn a_bundle_is_created_then_unchanged_then_gains_a_new_issuer_by_id() {
        let (_, old) = cert("int-a", 30);
        let (_, new) = cert("int-b", 60);
        let first = plan(&seen(vec![old.clone()], None), &Plan::default(), "lab");
        assert_eq!(first.action, Action::Create);
        let written = *first.manifest.clone().unwrap();
        assert_eq!(written["metadata"]["labels"][REPOSITORY_LABEL], "lab");
        assert_eq!(
            written["metadata"]["annotations"][TRUST_BUNDLE_OF],
            "pki_int"
        );
        let text = first.after.as_ref().unwrap()["data[\"ca.crt\"]"]
            .as_str()
            .unwrap()
            .to_string();
        assert!(
            text.starts_with(
                "issuer id-int-a (int-a) \"int-a\" notAfter 2026-01-31T00:00:00Z sha256:"
            ),
            "{text}"
        );
        assert!(!text.contains("BEGIN"), "{text}");

        let again = plan(
            &seen(vec![old.clone()], Some(written.clone())),
            &Plan::default(),
            "lab",
        );
        assert_eq!(again.action, Action::NoOp, "{:?}", again.reason);

        let both = plan(
            &seen(vec![old.clone(), new.clone()], Some(written.clone())),
            &Plan::default(),
            "lab",
        );
        assert_eq!(both.action, Action::Update);
        assert_eq!(
            both.reason.as_deref(),
            Some("the trust bundle of pki_int gains issuer id-int-b")
        );
        let after = both.after.as_ref().unwrap()["data[\"ca.crt\"]"]
            .as_str()
            .unwrap();
        assert_eq!(after.lines().count(), 2, "{after}");

        // Another repository's object is taken over (written again).
        let mut theirs = written.clone();
        theirs["metadata"]["labels"][REPOSITORY_LABEL] = json!("other");
        assert_eq!(
            plan(&seen(vec![old], Some(theirs)), &Plan::default(), "lab").action,
            Action::Update
        );
    }

    #[test]
    fn a_moved_object_is_stale_and_an_unmoved_one_is_not() {
        let (_, old) = cert("int-a", 30);
        let (_, new) = cert("int-b", 60);
        let t = config_map();
        let written = t.manifest(&old.certificate, "lab");
        let planned = plan(
            &seen(vec![old.clone(), new.clone()], Some(written.clone())),
            &Plan::default(),
            "lab",
        );
        assert_eq!(moved(&planned, &t, Some(&written)), None);
        let other = t.manifest(&new.certificate, "lab");
        assert!(moved(&planned, &t, Some(&other)).is_some());
        assert_eq!(
            moved(&planned, &t, None).as_deref(),
            Some("it was deleted since")
        );
        let create = plan(&seen(vec![old], None), &Plan::default(), "lab");
        assert_eq!(
            moved(&create, &t, Some(&written)).as_deref(),
            Some("it was created since")
        );
    }

    #[test]
    fn a_bundle_target_holds_one_inline_source_and_its_declared_key() {
        let (_, old) = cert("root-a", 30);
        let t = Target {
            mount: "pki".into(),
            object: KubeRef {
                group: "trust.cert-manager.io".into(),
                version: "v1alpha1".into(),
                kind: "Bundle".into(),
                namespace: None,
                name: "root-ca".into(),
            },
            form: Form::Bundle {
                key: "root.pem".into(),
                selector: Some(BTreeMap::from([("trust".into(), "yes".into())])),
            },
        };
        let m = t.manifest(&old.certificate, "lab");
        assert_eq!(m["apiVersion"], BUNDLE_API_VERSION);
        assert!(m["metadata"].get("namespace").is_none());
        assert_eq!(m["spec"]["target"]["configMap"]["key"], "root.pem");
        assert_eq!(
            m["spec"]["target"]["namespaceSelector"]["matchLabels"]["trust"],
            "yes"
        );
        assert_eq!(t.held(&m).as_deref(), Some(old.certificate.as_str()));
        assert!(t.shaped(&m, "lab"));
        let mut other_key = m.clone();
        other_key["spec"]["target"]["configMap"]["key"] = json!("ca.crt");
        assert!(!t.shaped(&other_key, "lab"));
        let mut two = m;
        two["spec"]["sources"] = json!([{"inLine": "x"}, {"useDefaultCAs": true}]);
        assert_eq!(t.held(&two), None);
    }
}
