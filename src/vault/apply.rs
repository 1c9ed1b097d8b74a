//! Converging Vault to a [`Plan`]: each pending change, in order, after a
//! re-check that the resource is still as the plan saw it.
//!
//! Apply reads the plan, never the YAML. The only other input is where the
//! secrets of a change come from ([`SecretSources`]): a plan carries the
//! names of its secret parameters, never their values or sources.

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;

use serde_json::{Map, Value};

use super::issuer;
use super::observe::observe_one;
use super::{Vault, VaultError};
use crate::addr::{Addr, VaultAddr};
use crate::model::source::SourceError;
use crate::model::{Sensitive, Source};
use crate::pki::sign::SignError;
use futures::StreamExt;

use super::kinds::{Delete, Table, Write};
use crate::plan::{Action, Change, Plan};
use crate::state::{Desired, Fields, SecretFrom};

/// Where the secret parameters of each resource come from, by address and
/// parameter name (e.g. `token_reviewer_jwt`).
pub type SecretSources = BTreeMap<Addr, BTreeMap<String, Source>>;

/// The secret sources of a desired state: the repository's own sources
/// ([`SecretFrom::Source`]); secrets read from the cluster are resolved by
/// the pipeline after the cluster half (see [`crate::reviewer`]).
pub fn secret_sources(desired: &Desired) -> SecretSources {
    desired
        .resources
        .iter()
        .filter_map(|r| {
            let sources: BTreeMap<String, Source> = r
                .secrets
                .iter()
                .filter_map(|(k, v)| match v {
                    SecretFrom::Source(s) => Some((k.clone(), s.clone())),
                    SecretFrom::ClusterSecret(_) | SecretFrom::Unset => None,
                })
                .collect();
            (!sources.is_empty()).then(|| (r.addr.clone(), sources))
        })
        .collect()
}

/// Progress of an apply, for the CLI to print as it happens. Holds no
/// secret.
#[derive(Clone, Debug, PartialEq)]
pub enum ApplyEvent {
    /// A change is about to be made.
    Started {
        /// What.
        addr: Addr,
        /// How.
        action: Action,
    },
    /// A change was made.
    Done {
        /// What.
        addr: Addr,
        /// How.
        action: Action,
    },
    /// Something the user must read (e.g. a CSR to sign by hand).
    Note {
        /// About what.
        addr: Addr,
        /// The text (public: a CSR, a path).
        text: String,
    },
}

/// One change that was made.
#[derive(Clone, Debug, PartialEq)]
pub struct Applied {
    /// What.
    pub addr: Addr,
    /// How.
    pub action: Action,
    /// For an issuer: the live issuer it made or adopted.
    pub issuer_id: Option<String>,
}

/// An intermediate waiting to be signed by hand.
#[derive(Clone, Debug, PartialEq)]
pub struct Waiting {
    /// The issuer.
    pub addr: Addr,
    /// Where the CSR was written.
    pub csr_file: PathBuf,
    /// The CSR (public).
    pub csr_pem: String,
    /// Where the signed certificate is expected.
    pub certificate_file: PathBuf,
}

/// The private key of an intermediate made with `exportKey: true`, as Vault
/// returned it (once), with its certificate and chain: for the pipeline to
/// deliver ([`crate::deliver_key`]). `Debug` never shows the key.
#[derive(Clone, Debug, PartialEq)]
pub struct ExportedKey {
    /// The issuer.
    pub addr: Addr,
    /// Its PKI mount.
    pub mount: String,
    /// The private key (PEM).
    pub key: Sensitive,
    /// The certificate, then its chain (PEM).
    pub chain_pem: String,
}

/// What an apply did.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct ApplyReport {
    /// Changes made, in order.
    pub applied: Vec<Applied>,
    /// Intermediates waiting for a manual signature.
    pub waiting: Vec<Waiting>,
    /// Keys of intermediates made with `exportKey: true`, to deliver.
    pub exported: Vec<ExportedKey>,
}

/// Why an apply stopped. Changes before the failing one stay made.
#[derive(Debug, thiserror::Error)]
pub enum ApplyError {
    /// The plan has errors: nothing is applied.
    #[error("the plan has {count} error(s); fix them and run plan again")]
    Errored {
        /// How many.
        count: usize,
    },
    /// The resource changed since the plan was made.
    #[error("plan is stale: {addr} changed since the plan was made; run plan again")]
    Stale {
        /// The resource.
        addr: Addr,
    },
    /// A Vault call failed.
    #[error("cannot apply {addr}")]
    Vault {
        /// The resource.
        addr: Addr,
        /// Why (boxed: keeps `Result<_, ApplyError>` small).
        #[source]
        source: Box<VaultError>,
    },
    /// A secret could not be read.
    #[error("cannot apply {addr}: cannot read {what}")]
    Secret {
        /// The resource.
        addr: Addr,
        /// Which secret (never its value).
        what: String,
        /// Why.
        #[source]
        source: Box<SourceError>,
    },
    /// A secret parameter has no source.
    #[error(
        "cannot apply {addr}: no source for the secret parameter {key}; apply needs the repository the plan was made from"
    )]
    MissingSecret {
        /// The resource.
        addr: Addr,
        /// The parameter.
        key: String,
    },
    /// Signing an intermediate in-process failed.
    #[error("cannot sign the intermediate of {addr}")]
    Sign {
        /// The issuer.
        addr: Addr,
        /// Why.
        #[source]
        source: Box<SignError>,
    },
    /// The CSR file could not be written.
    #[error("cannot write the CSR of {addr} to {}", path.display())]
    CsrFile {
        /// The issuer.
        addr: Addr,
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// The apply was told to stop (the apply lock was lost, or SIGTERM):
    /// changes before `addr` were made, `addr` and the rest were not.
    #[error("stopped before {addr}: {why}; run apply again to finish")]
    Stopped {
        /// The first change not made.
        addr: Addr,
        /// Why.
        why: String,
    },
    /// The change cannot be made by certplane.
    #[error("cannot apply {addr}: {why}")]
    Unsupported {
        /// The resource.
        addr: Addr,
        /// Why, with what to do instead.
        why: String,
    },
}

impl ApplyError {
    pub(crate) fn vault(addr: &Addr) -> impl FnOnce(VaultError) -> ApplyError + '_ {
        move |source| ApplyError::Vault {
            addr: addr.clone(),
            source: Box::new(source),
        }
    }
}

/// What applying one change led to.
pub(crate) enum Outcome {
    /// Made; for an issuer, its id, and its exported key if it has one.
    Done(Option<String>, Option<ExportedKey>),
    /// Waiting for a manual signature.
    Waiting(Waiting),
}

/// What an apply may consult besides the plan.
#[derive(Clone, Copy, Default)]
pub struct ApplyOptions<'a> {
    /// Asked before every change: a reason to stop there (the apply lock
    /// was lost, a signal asked to stop), or `None` to go on.
    pub stop: Option<&'a (dyn Fn() -> Option<String> + Sync)>,
    /// The KV version 2 mount (the apply lock's) where an intermediate whose
    /// certificate the parent signed is recorded until it is imported, so a
    /// resumed apply does not ask the parent to sign again. `None`: nothing
    /// is recorded (a resumed apply signs again).
    pub state_mount: Option<&'a str>,
    /// The addresses an earlier part of the same apply created (the rest of
    /// a plan applied after an exported key was delivered), so that a
    /// resource under a mount made moments ago is not taken for a stale plan.
    pub created: Option<&'a BTreeSet<Addr>>,
    /// Which of the plan's changes this call applies (the writes and the
    /// deletes of a plan are applied at different steps; a filter, so that
    /// a plan of 10,000 changes is never copied to apply a part of it).
    pub part: Part,
}

/// Which changes of a plan an apply call takes.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Part {
    /// Every pending change.
    #[default]
    All,
    /// Every pending change but the deletes.
    Writes,
    /// Only the deletes.
    Deletes,
}

impl Part {
    /// Whether a change of `action` is in this part.
    pub fn has(self, action: Action) -> bool {
        match self {
            Part::All => true,
            Part::Writes => action != Action::Delete,
            Part::Deletes => action == Action::Delete,
        }
    }
}

impl std::fmt::Debug for ApplyOptions<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ApplyOptions")
            .field("stop", &self.stop.is_some())
            .field("state_mount", &self.state_mount)
            .field("created", &self.created)
            .field("part", &self.part)
            .finish()
    }
}

impl ApplyOptions<'_> {
    // See `body_with_secrets`: a large error, built once on the way out.
    #[allow(clippy::result_large_err)]
    fn check(&self, next: &Addr) -> Result<(), ApplyError> {
        match self.stop.and_then(|f| f()) {
            Some(why) => Err(ApplyError::Stopped {
                addr: next.clone(),
                why,
            }),
            None => Ok(()),
        }
    }
}

/// Applies the pending changes of `plan`, in order. Refuses a plan with
/// errors; before each change, re-reads the resource and stops with
/// [`ApplyError::Stale`] if it is no longer as the plan saw it.
pub async fn apply(
    vault: &Vault,
    plan: &Plan,
    secrets: &SecretSources,
    on_event: &mut (dyn FnMut(ApplyEvent) + Send),
) -> Result<ApplyReport, ApplyError> {
    apply_with(vault, plan, secrets, ApplyOptions::default(), on_event).await
}

/// [`apply`], with a stop check before every change, the mount where
/// signed intermediates are recorded, and what an earlier part of the same
/// apply created ([`ApplyOptions`]).
pub async fn apply_with(
    vault: &Vault,
    plan: &Plan,
    secrets: &SecretSources,
    options: ApplyOptions<'_>,
    on_event: &mut (dyn FnMut(ApplyEvent) + Send),
) -> Result<ApplyReport, ApplyError> {
    if !plan.errored.is_empty() {
        return Err(ApplyError::Errored {
            count: plan.errored.len(),
        });
    }
    let mut report = ApplyReport::default();
    let mut created: BTreeSet<Addr> = options.created.cloned().unwrap_or_default();
    // Cluster objects are the cluster provider's.
    let pending: Vec<&Change> = plan
        .pending()
        .filter(|c| c.addr.is_vault() && options.part.has(c.action))
        .collect();
    report.applied.reserve(pending.len());
    // Only what a later change can depend on is remembered as created (its
    // mount, what it names in `depends_on`), not each of 10,000 roles.
    let parents: BTreeSet<&Addr> = pending.iter().flat_map(|c| c.depends_on.iter()).collect();
    let remember = |addr: &Addr| {
        parents.contains(addr)
            || matches!(
                addr.as_vault(),
                Some(VaultAddr::Mount { .. } | VaultAddr::AuthMount { .. })
            )
    };
    let mut i = 0;
    while i < pending.len() {
        // A run of plain parameter writes that do not depend on each other
        // (typically many roles) is written concurrently, bounded.
        options.check(&pending[i].addr)?;
        let batch = independent_run(&pending[i..]);
        if batch > 1 {
            let run = &pending[i..i + batch];
            for c in run {
                on_event(ApplyEvent::Started {
                    addr: c.addr.clone(),
                    action: c.action,
                });
            }
            let created_ref = &created;
            let mut results = futures::stream::iter(run)
                .map(|c| async move {
                    recheck(vault, c, created_ref).await?;
                    apply_fields(vault, c, secrets).await?;
                    Ok::<_, ApplyError>(*c)
                })
                .buffered(WRITE_CONCURRENCY);
            // Each result as it comes (not a list of the whole run); a
            // failed write does not stop the others of the run, which are
            // independent of it: each is reported, then the first error.
            let mut made = Vec::new();
            let mut failed = None;
            while let Some(r) = results.next().await {
                let c = match r {
                    Ok(c) => c,
                    Err(e) => {
                        failed.get_or_insert(e);
                        continue;
                    }
                };
                if c.action == Action::Create && remember(&c.addr) {
                    made.push(c.addr.clone());
                }
                report.applied.push(Applied {
                    addr: c.addr.clone(),
                    action: c.action,
                    issuer_id: None,
                });
                on_event(ApplyEvent::Done {
                    addr: c.addr.clone(),
                    action: c.action,
                });
            }
            drop(results);
            if let Some(e) = failed {
                return Err(e);
            }
            created.extend(made);
            i += batch;
            continue;
        }
        let change = pending[i];
        i += 1;
        on_event(ApplyEvent::Started {
            addr: change.addr.clone(),
            action: change.action,
        });
        let outcome = if change.kind.descriptor().write == Write::Issuer {
            issuer::apply_issuer(vault, change, &created, options.state_mount).await?
        } else {
            recheck(vault, change, &created).await?;
            apply_fields(vault, change, secrets).await?;
            Outcome::Done(None, None)
        };
        match outcome {
            Outcome::Done(issuer_id, exported) => {
                report.exported.extend(exported);
                if matches!(change.action, Action::Create | Action::Replace)
                    && remember(&change.addr)
                {
                    created.insert(change.addr.clone());
                }
                report.applied.push(Applied {
                    addr: change.addr.clone(),
                    action: change.action,
                    issuer_id,
                });
                on_event(ApplyEvent::Done {
                    addr: change.addr.clone(),
                    action: change.action,
                });
            }
            Outcome::Waiting(w) => {
                on_event(ApplyEvent::Note {
                    addr: change.addr.clone(),
                    text: format!(
                        "sign this CSR (also written to {}) and commit the certificate to {}, then apply again:\n{}",
                        w.csr_file.display(),
                        w.certificate_file.display(),
                        w.csr_pem
                    ),
                });
                report.waiting.push(w);
            }
        }
    }
    Ok(report)
}

/// How many parameter writes are in flight at once.
const WRITE_CONCURRENCY: usize = 16;

/// How many changes from the start of `pending` form a run that may be
/// written concurrently: plain parameter writes (no mounts, no CAs), none
/// depending on another of the run.
fn independent_run(pending: &[&Change]) -> usize {
    let plain = |c: &Change| {
        c.kind.descriptor().batch && matches!(c.action, Action::Create | Action::Update)
    };
    let mut addrs: BTreeSet<&Addr> = BTreeSet::new();
    let mut n = 0;
    for c in pending {
        if !plain(c) || c.depends_on.iter().any(|d| addrs.contains(d)) {
            break;
        }
        addrs.insert(&c.addr);
        n += 1;
    }
    n
}

/// The address of the mount (secrets or auth) a resource lives in.
pub(crate) fn parent_mount(addr: &Addr) -> Option<Addr> {
    addr.as_vault()?.parent().map(Addr::from)
}

/// Whether something this change depends on was created by this apply (so
/// the resource may now exist with Vault's defaults).
pub(crate) fn parent_created(change: &Change, created: &BTreeSet<Addr>) -> bool {
    change.depends_on.iter().any(|d| created.contains(d))
        || parent_mount(&change.addr).is_some_and(|p| created.contains(&p))
}

/// Whether two values of a field mean the same: the planner's comparison,
/// so apply and plan never disagree about a change.
pub(crate) fn same(a: Option<&Value>, b: Option<&Value>) -> bool {
    crate::plan::same_value(a.unwrap_or(&Value::Null), b)
}

/// Re-reads a (non-issuer) resource and checks the change still holds.
async fn recheck(
    vault: &Vault,
    change: &Change,
    created: &BTreeSet<Addr>,
) -> Result<(), ApplyError> {
    // Nothing can exist yet under a mount this apply has just made.
    if change.action == Action::Create
        && parent_mount(&change.addr).is_some_and(|p| created.contains(&p))
    {
        return Ok(());
    }
    let current = observe_one(vault, &change.addr, change.kind)
        .await
        .map_err(ApplyError::vault(&change.addr))?;
    let stale = || ApplyError::Stale {
        addr: change.addr.clone(),
    };
    match (change.action, current) {
        (Action::Create, None) => Ok(()),
        (Action::Create, Some(_)) if parent_created(change, created) => Ok(()),
        (Action::Create, Some(_)) => Err(stale()),
        (Action::Update, None) => Err(stale()),
        (Action::Update, Some(cur)) => {
            let empty = Fields::new();
            let before = change.before.as_ref().unwrap_or(&empty);
            let managed = change.after.as_ref().unwrap_or(&empty);
            let changed = managed.keys().filter(|k| !change.is_sensitive(k)).any(|k| {
                match cur.get(&format!("{k}_set")).and_then(Value::as_bool) {
                    // A write-only parameter (one that must be unset):
                    // Vault only says whether it is set.
                    Some(set) => before.get(k).is_some_and(|b| !b.is_null()) != set,
                    None => !same(before.get(k), cur.get(k)),
                }
            });
            if changed { Err(stale()) } else { Ok(()) }
        }
        (Action::Delete, None) => Err(stale()),
        (Action::Delete, Some(_)) => Ok(()),
        (Action::NoOp | Action::Replace, _) => Err(ApplyError::Unsupported {
            addr: change.addr.clone(),
            why: format!(
                "{:?} is not an action for a {:?}",
                change.action, change.kind
            ),
        }),
    }
}

/// The body of a write: `after` with the secret parameters read from their
/// sources.
// ApplyError names the failing resource (an `Addr`, which is large); it is
// built once, on the way out of an apply, so its size costs nothing.
#[allow(clippy::result_large_err)]
fn body_with_secrets(
    change: &Change,
    secrets: &SecretSources,
) -> Result<Map<String, Value>, ApplyError> {
    let mut body: Map<String, Value> = change
        .after
        .clone()
        .unwrap_or_default()
        .into_iter()
        .filter(|(k, _)| !change.sensitive.contains(k))
        .collect();
    for key in &change.sensitive {
        let source = secrets
            .get(&change.addr)
            .and_then(|s| s.get(key))
            .ok_or_else(|| ApplyError::MissingSecret {
                addr: change.addr.clone(),
                key: key.clone(),
            })?;
        let value = source.read().map_err(|e| ApplyError::Secret {
            addr: change.addr.clone(),
            what: format!("{key} ({})", source.describe()),
            source: Box::new(e),
        })?;
        body.insert(
            key.clone(),
            Value::String(value.expose().trim_end().to_string()),
        );
    }
    Ok(body)
}

/// Applies a change to a resource written as a whole (everything but an
/// issuer), the way its descriptor says ([`Write`], [`Delete`]).
async fn apply_fields(
    vault: &Vault,
    change: &Change,
    secrets: &SecretSources,
) -> Result<(), ApplyError> {
    let addr = &change.addr;
    let path = addr
        .as_vault()
        .map(crate::addr::VaultAddr::api_path)
        .unwrap_or_default();
    let path = path.as_str();
    let err = ApplyError::vault(addr);
    let d = change.kind.descriptor();
    let unsupported = |why: String| ApplyError::Unsupported {
        addr: addr.clone(),
        why,
    };
    match (d.write, d.delete, change.action) {
        (_, Delete::WithMount, Action::Delete) => Err(unsupported(
            "a mount's config cannot be deleted; it goes with the mount".into(),
        )),
        (_, Delete::Path, Action::Delete) => vault.delete(path).await.map_err(err),
        (Write::Mount, _, Action::Create) => {
            let mut body = body_with_secrets(change, secrets)?;
            let mut config = Map::new();
            for k in body.keys().cloned().collect::<Vec<_>>() {
                if !matches!(
                    k.as_str(),
                    "type" | "description" | "local" | "seal_wrap" | "options" | "plugin_version"
                ) && let Some(v) = body.remove(&k)
                {
                    config.insert(k, v);
                }
            }
            if d.table == Table::Secrets && !body.contains_key("type") {
                body.insert("type".into(), Value::from("pki"));
            }
            // Marks the mount as certplane's, so that prune can tell it from
            // mounts made by hand (which it never deletes).
            let (k, v) = super::prune::MANAGED_OPTION;
            let options = body
                .entry("options")
                .or_insert_with(|| Value::Object(Map::new()));
            if let Value::Object(o) = options {
                o.insert(k.into(), Value::from(v));
            }
            if !config.is_empty() {
                body.insert("config".into(), Value::Object(config));
            }
            vault
                .write(path, &Value::Object(body))
                .await
                .map(|_| ())
                .map_err(err)
        }
        (Write::Mount, _, Action::Update) => {
            let mut body = body_with_secrets(change, secrets)?;
            body.remove("type");
            vault
                .write_idempotent(&format!("{path}/tune"), &Value::Object(body))
                .await
                .map(|_| ())
                .map_err(err)
        }
        (Write::Data, _, Action::Create | Action::Update) => {
            // A role, policy, auth role or config: the same body twice
            // leaves the same object, so a busy answer is retried.
            let body = body_with_secrets(change, secrets)?;
            vault
                .write_idempotent(path, &Value::Object(body))
                .await
                .map(|_| ())
                .map_err(err)
        }
        (Write::Patch, _, Action::Create | Action::Update) => {
            // A CA's settings: only the managed fields, merged into what
            // the issuer has (a merge patch is safe to repeat).
            let body = body_with_secrets(change, secrets)?;
            vault
                .patch(path, &Value::Object(body))
                .await
                .map(|_| ())
                .map_err(err)
        }
        _ => Err(unsupported(format!(
            "{:?} is not an action for a {:?}",
            change.action, change.kind
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::state::ResourceKind;
    use serde_json::json;

    #[test]
    fn parents_of_each_kind() {
        let p = |a: &str| parent_mount(&Addr::parse_vault(a).unwrap()).map(|a| a.to_string());
        assert_eq!(
            p("pki/int/roles/web").as_deref(),
            Some("vault:sys/mounts/pki/int")
        );
        assert_eq!(
            p("pki/config/urls").as_deref(),
            Some("vault:sys/mounts/pki")
        );
        assert_eq!(p("auth/k8s/config").as_deref(), Some("vault:sys/auth/k8s"));
        assert_eq!(
            p("auth/approle/role/cm").as_deref(),
            Some("vault:sys/auth/approle")
        );
        assert_eq!(p("sys/policies/acl/x"), None);
    }

    #[test]
    fn sameness_ignores_order_and_empty_forms() {
        assert!(same(Some(&json!(["a", "b"])), Some(&json!(["b", "a"]))));
        assert!(same(None, Some(&json!([]))));
        assert!(same(Some(&Value::Null), Some(&json!(""))));
        assert!(same(Some(&json!(60)), Some(&json!(60.0))));
        assert!(!same(Some(&json!(60)), Some(&json!(61))));
        assert!(!same(None, Some(&json!("x"))));
    }

    #[test]
    fn secrets_are_read_into_the_body_only() {
        let addr = Addr::parse_vault("auth/kubernetes/config").unwrap();
        let change = Change {
            addr: addr.clone(),
            kind: ResourceKind::AuthConfig,
            action: Action::Create,
            before: None,
            after: Some(
                [
                    ("kubernetes_host".to_string(), json!("https://k")),
                    ("token_reviewer_jwt".to_string(), json!("(sensitive)")),
                ]
                .into_iter()
                .collect(),
            ),
            sensitive: vec!["token_reviewer_jwt".into()],
            reason: None,
            ca: None,
            depends_on: Default::default(),
            manifest: None,
        };
        let mut sources = SecretSources::new();
        let e = body_with_secrets(&change, &sources).unwrap_err();
        assert!(e.to_string().contains("token_reviewer_jwt"), "{e}");
        sources.entry(addr).or_default().insert(
            "token_reviewer_jwt".into(),
            Source::Value("eyJ.secret.jwt\n".into()),
        );
        let body = body_with_secrets(&change, &sources).unwrap();
        assert_eq!(body["token_reviewer_jwt"], json!("eyJ.secret.jwt"));
        assert_eq!(body["kubernetes_host"], json!("https://k"));
    }
}
