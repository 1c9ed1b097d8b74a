//! The planner proper: compares each desired resource with what Vault has and
//! orders the result so that dependencies come first.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use serde_json::{Value, json};

use super::{Action, CaChange, Change, Plan, PlanError, PlanNote, Rotation};
use crate::addr::{Addr, VaultAddr};
use crate::model::{Duration, FollowParent};
use crate::state::{
    CaIdentity, CaMethod, Desired, DesiredCa, DesiredResource, Fields, LiveMounts, Observed,
    ObservedIssuer, ObservedKey, Orphan, Owner, Ownership, PENDING_KEY_PREFIX, RETIRED_USAGE,
    ResourceKind, SecretFrom, Signer,
};
use crate::vault::kinds::{Belongs, Read, Write};

/// Compares desired with observed. Pure: no I/O, no clock (time comes from
/// [`Observed::now`]).
pub fn plan(desired: &Desired, observed: &Observed) -> Plan {
    plan_streamed(desired, observed, Streamed::default())
}

/// The changes of the resources compared field by field (every kind but a
/// CA), planned one by one as their live fields are read, so that no reply
/// is kept: one slot per desired resource (`changes[i]` is the change of
/// `desired.resources[i]`), filled in place, from which [`plan_streamed`]
/// makes the plan's list without a second one.
#[derive(Debug, Default)]
pub struct Streamed {
    changes: Vec<Option<Change>>,
    errored: Vec<PlanError>,
}

impl Streamed {
    /// An empty slot for each resource of `desired`.
    pub fn new(desired: &Desired) -> Streamed {
        Streamed {
            changes: std::iter::repeat_with(|| None)
                .take(desired.resources.len())
                .collect(),
            errored: Vec::new(),
        }
    }

    /// Plans resource `i`, `r`, from its live fields (`None`: it does not
    /// exist), as soon as they are read: the live reply need not be kept
    /// once this returns. Pure.
    pub fn plan(
        &mut self,
        i: usize,
        r: &DesiredResource,
        live: Option<&Fields>,
        live_mounts: &LiveMounts,
    ) {
        let change = plan_fields(r, live, live_mounts, &mut self.errored);
        if let Some(slot) = self.changes.get_mut(i) {
            *slot = Some(change);
        }
    }
}

/// [`plan`], where the resources compared field by field were already
/// planned while they were observed ([`Streamed::plan`]). A resource
/// without a change there is planned from [`Observed::resources`]. Pure.
pub fn plan_streamed(desired: &Desired, observed: &Observed, streamed: Streamed) -> Plan {
    let Streamed {
        changes: mut slots,
        errored,
    } = streamed;
    let mut plan = Plan {
        errored,
        ..Plan::default()
    };
    slots.resize_with(desired.resources.len(), || None);
    // The changes a CA adds before its own (keys an interrupted apply
    // left, the issuers it supersedes), by the index of the CA.
    let mut before_ca: Vec<(usize, Vec<Change>)> = Vec::new();
    for (i, (r, slot)) in desired.resources.iter().zip(slots.iter_mut()).enumerate() {
        match (r.kind.descriptor().write, &r.ca) {
            (Write::Issuer, Some(ca)) => {
                let mut change = plan_issuer(r, ca, observed);
                let mut added = pending_keys(&mut change, ca, observed);
                added.extend(superseded(&change, ca, observed));
                if !added.is_empty() {
                    before_ca.push((i, added));
                }
                *slot = Some(change);
            }
            _ if slot.is_none() => {
                *slot = Some(plan_fields(
                    r,
                    observed.resources.get(&r.addr),
                    &observed.live_mounts,
                    &mut plan.errored,
                ));
            }
            _ => {}
        }
    }
    let mut changes: Vec<Change> = if before_ca.is_empty() {
        // Every slot is filled: the list is made in the slots' own room.
        #[allow(clippy::filter_map_identity)] // `flatten` would not reuse the room
        slots.into_iter().filter_map(|c| c).collect()
    } else {
        let added: usize = before_ca.iter().map(|(_, a)| a.len()).sum();
        let mut out = Vec::with_capacity(slots.len() + added);
        let mut before_ca = before_ca.into_iter().peekable();
        for (i, change) in slots.into_iter().enumerate() {
            if let Some((_, added)) = before_ca.next_if(|(at, _)| *at == i) {
                out.extend(added);
            }
            out.extend(change);
        }
        out
    };
    children_wait(&mut changes, Some(observed));
    plan.changes = order(changes);
    plan
}

/// Children follow parents: a child CA whose rotation would start while
/// its parent mount is between stage 1 and stage 2 of its own (the new
/// parent issuer made, not yet the default) waits, so that it is signed
/// once, by the new parent; with the parent's switch in the same plan it
/// proceeds (it is applied after it, and signed by the new issuer). With
/// the live Vault (`observed`), a cross-signing child of a parent whose
/// stage 1 is in the plan is cross-signed by it in the same apply.
pub(crate) fn children_wait(changes: &mut [Change], observed: Option<&Observed>) {
    let rotating: BTreeSet<String> = changes
        .iter()
        .filter_map(|c| {
            let ca = c.ca.as_ref()?;
            let pending = matches!(
                ca.rotation,
                Some(Rotation::Make { .. } | Rotation::Overlap { .. } | Rotation::Published { .. })
            );
            pending.then(|| ca.desired.mount.trim_matches('/').to_string())
        })
        .collect();
    // A parent whose stage 1 is in this plan: its cross-signing children
    // are cross-signed by its new issuer right after it, in the same apply.
    let making: BTreeSet<String> = changes
        .iter()
        .filter_map(|c| {
            let ca = c.ca.as_ref()?;
            let makes = c.action == Action::Replace
                && matches!(ca.rotation, Some(Rotation::Make { .. }))
                && !matches!(ca.desired.method, CaMethod::Import { .. });
            makes.then(|| ca.desired.mount.trim_matches('/').to_string())
        })
        .collect();
    for c in changes.iter_mut() {
        let Some(ca) = c.ca.as_mut() else { continue };
        if c.action == Action::NoOp
            && matches!(ca.rotation, None | Some(Rotation::Parent { .. }))
            && ca.desired.rotation.follow_parent == FollowParent::CrossSign
            && let Some(old) = ca.existing_id.clone()
            && let Some(parent) = signer_mount(&ca.desired).map(str::to_string)
            && making.contains(&parent)
            && let Some(observed) = observed
            && signed_by_mount(&ca.desired.mount, &old, &parent, observed)
        {
            c.action = Action::Update;
            c.reason = Some(format!(
                "rotation 1/3 (cross-sign): its parent {parent} makes a new issuer in this apply: \
                 the existing key of {old} is signed by it too, as a twin issuer beside it (same \
                 subject and key){}; leaves verify under the old and the new issuer of {parent}, \
                 and {old} stays the default",
                chains_note(&ca.desired)
            ));
            ca.rotation = Some(Rotation::CrossSign { old, parent: None });
            continue;
        }
        if !matches!(ca.rotation, Some(Rotation::Make { .. })) {
            continue;
        }
        let Some(parent) = signer_mount(&ca.desired).map(str::to_string) else {
            continue;
        };
        if !rotating.contains(&parent) {
            continue;
        }
        ca.rotation = Some(Rotation::Parent {
            mount: parent.clone(),
        });
        c.action = Action::NoOp;
        let why = c.reason.take().unwrap_or_default();
        let why = why.strip_prefix("rotation 1/3: ").unwrap_or(&why);
        let why = why
            .split(": a new issuer")
            .next()
            .unwrap_or(why)
            .to_string();
        c.reason = Some(format!(
            "rotation 1/3 waits for its parent {parent}, which is rotating: this CA ({why}) is \
             signed by the parent's new issuer once that is the default"
        ));
    }
}

/// Whether the live issuer `id` of `mount` is signed by an issuer of
/// `parent` (both certificates read).
fn signed_by_mount(mount: &str, id: &str, parent: &str, observed: &Observed) -> bool {
    let Some(child) = observed
        .issuers
        .get(mount)
        .and_then(|l| l.iter().find(|i| i.id == id))
        .and_then(issuer_der)
    else {
        return false;
    };
    observed.issuers.get(parent).is_some_and(|parents| {
        parents
            .iter()
            .filter_map(issuer_der)
            .any(|der| crate::pki::x509::is_signed_by(&child, &der))
    })
}

/// What [`ownership`] decides with.
#[derive(Clone, Copy, Debug)]
pub struct OwnershipOptions<'a> {
    /// The repository identity.
    pub identity: &'a str,
    /// `prune: true`: delete this repository's objects that left it.
    pub prune: bool,
    /// `--allow-destroy-ca`: prune may delete a mount that holds a CA.
    pub allow_destroy_ca: bool,
}

/// The note on an object of this repository that left it while prune is off.
pub const KEPT_PRUNE_OFF: &str = "no longer in the repository; kept because prune is off (set spec.prune: true in \
     certplane.yaml to delete it, or delete it by hand)";

/// The note on an object an older certplane made without recording its
/// repository.
pub const KEPT_UNRECORDED: &str = "made by an older certplane that did not record its \
     repository, and not declared here: never pruned on that basis; declare it again to adopt \
     it, or delete it by hand if no repository uses it";

/// Applies ownership to a Vault plan. Pure: `owned` was read from Vault by
/// [`crate::vault::prune::survey`].
///
/// * A declared mount or policy that another repository owns errors the
///   plan: two repositories never manage the same object.
/// * A declared mount or policy made by an older certplane (no repository
///   recorded) is adopted: the change writes this repository's identity.
/// * A mount this plan creates is tagged with the identity.
/// * This repository's objects that left it are deleted with `prune`,
///   children first (auth roles and roles, then policies, then mounts); a
///   mount that holds a CA only with `allow_destroy_ca` (otherwise the plan
///   is errored, so nothing is applied until the user keeps the mount
///   declared or says so). Without `prune` they stay, as a visible note.
/// * Objects without a recorded repository that left are noted, never
///   deleted; other repositories' objects are left alone.
pub fn ownership(plan: &mut Plan, owned: &Ownership, options: OwnershipOptions<'_>) {
    let identity = options.identity;
    let tags = crate::vault::prune::owner_options(identity);
    let conflict = |addr: &Addr, what: &str, other: &str, mark: &str| PlanError {
        addr: addr.clone(),
        message: format!(
            "this {what} belongs to the repository {other:?} ({mark}), not to this one ({identity:?}): \
             two repositories must not manage the same object; declare it in one of them, or give \
             both the same metadata.name in certplane.yaml if they are the same repository applied \
             from two places"
        ),
    };
    for c in plan.changes.iter_mut() {
        match c.kind.descriptor().belongs {
            Belongs::MountOptions => match owned.mounts.get(&c.addr) {
                Some(Owner::Repository(other)) if other != identity => {
                    plan.errored.push(conflict(
                        &c.addr,
                        "mount",
                        other,
                        "mount option certplane-repository",
                    ));
                }
                Some(Owner::Repository(_)) => {}
                Some(Owner::Unrecorded) => {
                    let was_update = c.action == Action::Update;
                    c.become_change(Action::Update);
                    let (k, v) = crate::vault::prune::MANAGED_OPTION;
                    c.before
                        .get_or_insert_default()
                        .insert("options", json!({k: v}));
                    c.after
                        .get_or_insert_default()
                        .insert("options", tags.clone());
                    let why = format!("adopt: record the repository {identity} as its owner");
                    c.reason = Some(match (was_update, c.reason.take()) {
                        (true, Some(r)) => format!("{r}; {why}"),
                        _ => why,
                    });
                }
                None if c.action == Action::Create => {
                    c.after
                        .get_or_insert_default()
                        .insert("options", tags.clone());
                }
                None => {}
            },
            Belongs::PolicyMarker if c.action == Action::Update => {
                let live = c
                    .before
                    .as_ref()
                    .and_then(|b| b.get("policy"))
                    .and_then(Value::as_str)
                    .and_then(crate::vault::prune::policy_owner);
                match live {
                    Some(Owner::Repository(other)) if other != identity => {
                        plan.errored
                            .push(conflict(&c.addr, "policy", &other, "its first line"));
                    }
                    Some(Owner::Unrecorded) => {
                        let why = format!("adopt: record the repository {identity} as its owner");
                        c.reason = Some(match c.reason.take() {
                            Some(r) => format!("{r}; {why}"),
                            None => why,
                        });
                    }
                    _ => {}
                }
            }
            _ => {}
        }
    }

    // Children first (roles, then policies), then mounts.
    let mut sorted: Vec<&Orphan> = owned.orphans.iter().collect();
    sorted.sort_by_key(|o| (o.kind.descriptor().prune_order, o.addr.to_string()));
    for o in sorted {
        match &o.owner {
            Owner::Repository(id) if id != identity => continue,
            Owner::Unrecorded => {
                plan.notes.push(PlanNote {
                    addr: o.addr.clone(),
                    message: KEPT_UNRECORDED.into(),
                    owned: false,
                });
                continue;
            }
            Owner::Repository(_) => {}
        }
        if !options.prune {
            plan.notes.push(PlanNote {
                addr: o.addr.clone(),
                message: KEPT_PRUNE_OFF.into(),
                owned: true,
            });
            continue;
        }
        if o.holds_ca && !options.allow_destroy_ca {
            plan.errored.push(PlanError {
                addr: o.addr.clone(),
                message: "this mount holds a CA and is no longer in the repository; deleting it \
                          destroys the CA and every certificate chain to it: keep it declared, or \
                          run with --allow-destroy-ca to delete it"
                    .into(),
            });
            continue;
        }
        plan.changes.push(Change {
            addr: o.addr.clone(),
            kind: o.kind,
            action: Action::Delete,
            before: Some(Fields::new()),
            after: None,
            sensitive: vec![],
            reason: Some(if o.holds_ca {
                "no longer in the repository (prune); destroys its CA (--allow-destroy-ca)".into()
            } else {
                "no longer in the repository (prune)".into()
            }),
            ca: None,
            depends_on: Default::default(),
            manifest: None,
        });
    }
}

/// Whether two normalised API values mean the same. Lists of strings are
/// compared as sets (Vault does not promise order), a missing value equals an
/// empty one, numbers compare numerically, text ignores trailing blanks.
pub fn same_value(desired: &Value, observed: Option<&Value>) -> bool {
    let empty = |v: &Value| match v {
        Value::Null => true,
        Value::String(s) => s.is_empty(),
        Value::Array(a) => a.is_empty(),
        _ => false,
    };
    let Some(observed) = observed else {
        return empty(desired);
    };
    match (desired, observed) {
        (Value::Array(a), Value::Array(b)) => {
            let set = |x: &Vec<Value>| -> BTreeSet<String> { x.iter().map(canonical).collect() };
            set(a) == set(b)
        }
        (Value::Number(a), Value::Number(b)) => a.as_f64() == b.as_f64(),
        (Value::String(a), Value::String(b)) => a.trim_end() == b.trim_end(),
        // Vault sometimes returns a comma list where a list was written.
        (Value::Array(a), Value::String(s)) | (Value::String(s), Value::Array(a)) => {
            let x: BTreeSet<String> = a.iter().map(canonical).collect();
            let y: BTreeSet<String> = s
                .split(',')
                .map(str::trim)
                .filter(|p| !p.is_empty())
                .map(str::to_string)
                .collect();
            x == y
        }
        (a, b) if empty(a) && empty(b) => true,
        (a, b) => a == b,
    }
}

fn canonical(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

fn plan_fields(
    r: &DesiredResource,
    live: Option<&Fields>,
    live_mounts: &LiveMounts,
    errored: &mut Vec<PlanError>,
) -> Change {
    let mut change = Change {
        addr: r.addr.clone(),
        kind: r.kind,
        action: Action::NoOp,
        before: None,
        after: Some(r.fields.clone()),
        sensitive: r
            .secrets
            .iter()
            .filter(|(_, from)| !matches!(from, SecretFrom::Unset))
            .map(|(k, _)| k.clone())
            .collect(),
        reason: None,
        ca: None,
        depends_on: r.depends_on.clone(),
        manifest: None,
    };
    for (key, from) in &r.secrets {
        let shown = match from {
            SecretFrom::Unset => Value::Null,
            SecretFrom::Source(_) | SecretFrom::ClusterSecret(_) => json!("(sensitive)"),
        };
        change
            .after
            .get_or_insert_default()
            .insert(key.clone(), shown);
    }
    let Some(live) = live else {
        change.action = Action::Create;
        if let Some(e) = nested_in_live_mount(r, live_mounts) {
            errored.push(e);
        }
        return change;
    };
    if r.kind.descriptor().read == Read::MountEntry
        && let (Some(want), Some(have)) = (r.fields.get("type"), live.get("type"))
        && want != have
    {
        errored.push(PlanError {
            addr: r.addr.clone(),
            message: format!(
                "a mount of type {have} already exists at this path; certplane will not replace it \
                 with {want}: move one of them or remove the old mount by hand"
            ),
        });
    }
    let mut before = Fields::new();
    let mut changed = Vec::new();
    for (key, want) in r.fields.entries() {
        let have = live.get(key);
        before.insert(key.clone(), have.cloned().unwrap_or(Value::Null));
        if !same_value(want, have) {
            changed.push(key.to_string());
        }
    }
    for (key, from) in &r.secrets {
        let set = live
            .get(&format!("{key}_set"))
            .and_then(Value::as_bool)
            .unwrap_or(false);
        before.insert(
            key.clone(),
            if set {
                json!("(sensitive)")
            } else {
                Value::Null
            },
        );
        let want_set = !matches!(from, SecretFrom::Unset);
        if set != want_set {
            changed.push(key.clone());
        }
    }
    if changed.is_empty() {
        // Unchanged: the live fields are `after` (`Change::live`); a plan of
        // 10,000 objects does not hold them twice.
        return change;
    }
    change.before = Some(before);
    change.action = Action::Update;
    change.reason = Some(format!("changed: {}", changed.join(", ")));
    change
}

/// A mount to create inside (or around) a live mount of the same table:
/// Vault would refuse it ("path is already in use"), after the writes
/// planned before it.
fn nested_in_live_mount(r: &DesiredResource, live_mounts: &LiveMounts) -> Option<PlanError> {
    let (path, live, table) = match r.addr.as_vault()? {
        VaultAddr::Mount { path } => (path, &live_mounts.secrets, "sys/mounts"),
        VaultAddr::AuthMount { path } => (path, &live_mounts.auth, "sys/auth"),
        _ => return None,
    };
    let path = path.trim_matches('/');
    let under = |inner: &str, outer: &str| {
        inner
            .strip_prefix(outer)
            .is_some_and(|rest| rest.starts_with('/'))
    };
    let other = live.iter().find(|m| under(path, m) || under(m, path))?;
    Some(PlanError {
        addr: r.addr.clone(),
        message: format!(
            "Vault already has a mount at {other}/ ({table}), and a mount cannot lie inside \
             another: Vault would refuse {path} with \"path is already in use\"; choose a path \
             outside {other}/, or move the existing mount"
        ),
    })
}

/// The fields of a live issuer, in the shape of the desired issuer fields.
fn issuer_fields(i: &ObservedIssuer) -> Fields {
    let mut f = Fields::new();
    if !i.name.is_empty() {
        f.insert("issuer_name", json!(i.name));
    }
    f.insert("common_name", json!(i.common_name));
    if let Some(k) = i.key_type {
        f.insert("key_type", json!(k.as_str()));
    }
    f.insert("key_bits", json!(i.key_bits));
    f.insert("issued_by", json!(i.issued_by));
    f.insert("certificate_sha256", json!(i.cert_sha256));
    f.insert("issuer_id", json!(i.id));
    f
}

/// What differs between the declared identity of a CA and a live issuer.
fn identity_diff(want: &CaIdentity, have: &ObservedIssuer) -> Vec<String> {
    let mut d = Vec::new();
    if let Some(sha) = &want.cert_sha256 {
        if *sha != have.cert_sha256 {
            d.push("the imported certificate".to_string());
        }
        return d;
    }
    if want.common_name != have.common_name {
        d.push(format!(
            "commonName {:?} -> {:?}",
            have.common_name, want.common_name
        ));
    }
    if let Some(k) = want.key_type
        && have.key_type != Some(k)
    {
        let was = have.key_type.map(|k| k.as_str()).unwrap_or("unknown");
        d.push(format!("keyType {was} -> {}", k.as_str()));
    }
    if let Some(bits) = want.key_bits
        && bits != have.key_bits
    {
        d.push(format!("keyBits {} -> {bits}", have.key_bits));
    }
    if let Some(by) = &want.issued_by
        && *by != have.issued_by
    {
        d.push(format!("signedBy {:?} -> {by:?}", have.issued_by));
    }
    d
}

/// The files of an intermediate signed by hand.
struct Manual<'a> {
    /// The signed certificate, once committed.
    certificate_pem: Option<&'a str>,
    /// The CSR an earlier apply wrote.
    csr_pem: Option<&'a str>,
    certificate_file: &'a std::path::Path,
    csr_file: &'a std::path::Path,
}

/// A mount without its CA: made now, or, signed by hand, imported once
/// its certificate is committed (the CSR is shown until then).
fn no_ca_yet(change: &mut Change, manual: Option<&Manual<'_>>) {
    let Some(m) = manual else {
        change.reason = Some("the mount has no CA yet".into());
        return;
    };
    let (cert_file, csr_file) = (m.certificate_file.display(), m.csr_file.display());
    match (m.certificate_pem, m.csr_pem) {
        (Some(_), _) => {
            change.reason = Some(format!("import the signed certificate {cert_file}"));
        }
        (None, Some(csr)) => {
            change.action = Action::NoOp;
            change.reason = Some(format!(
                "waiting for the signed certificate: sign the CSR in {csr_file} and commit the \
                 certificate to {cert_file}"
            ));
            if let Some(c) = change.ca.as_mut() {
                c.note = Some(csr.to_string());
            }
        }
        (None, None) => {
            change.reason = Some(format!(
                "generate a key in Vault and a CSR (written to {csr_file}); sign it and commit the \
                 certificate to {cert_file}, then apply again"
            ));
        }
    }
}

fn plan_issuer(r: &DesiredResource, ca: &DesiredCa, observed: &Observed) -> Change {
    let mut change = Change {
        addr: r.addr.clone(),
        kind: r.kind,
        action: Action::Create,
        before: None,
        after: Some(r.fields.clone()),
        sensitive: vec![],
        reason: None,
        ca: Some(Box::new(CaChange {
            desired: ca.clone(),
            existing_id: None,
            note: None,
            pending_key: None,
            rotation: None,
        })),
        depends_on: r.depends_on.clone(),
        manifest: None,
    };
    let issuers: &[ObservedIssuer] = observed
        .issuers
        .get(&ca.mount)
        .map(Vec::as_slice)
        .unwrap_or(&[]);
    let by_name = ca
        .issuer_name
        .as_deref()
        .and_then(|n| issuers.iter().find(|i| i.name == n));
    let default = issuers.iter().find(|i| i.is_default);
    if let Some((issuer, key)) = interrupted_import(ca, issuers, observed) {
        change.before = Some(issuer_fields(issuer));
        if let Some(c) = change.ca.as_mut() {
            c.existing_id = Some(issuer.id.clone());
            c.pending_key = Some(key.name.clone());
        }
        let other = |i: &&ObservedIssuer| i.id != issuer.id;
        if let Some(old) = by_name.filter(other).or(default.filter(other)) {
            // Stage 1 of a rotation made it beside the old one.
            switch_stage(&mut change, ca, issuer, old, observed);
            return change;
        }
        // set-signed made the new issuer, then the apply stopped before it
        // was named and made the default: finish it, never make another.
        change.action = Action::Update;
        change.reason = Some(format!(
            "finish an interrupted apply: issuer {} was imported with key {} but not yet named and \
             made the default; apply does that and clears the key's pending name",
            issuer.id, key.name
        ));
        return change;
    }
    let manual = match &ca.method {
        CaMethod::Intermediate {
            signer:
                Signer::Manual {
                    certificate_pem,
                    csr_pem,
                    certificate_file,
                    csr_file,
                },
            ..
        } => Some(Manual {
            certificate_pem: certificate_pem.as_deref(),
            csr_pem: csr_pem.as_deref(),
            certificate_file,
            csr_file,
        }),
        _ => None,
    };

    let Some(current) = by_name.or(default) else {
        no_ca_yet(&mut change, manual.as_ref());
        return change;
    };
    change.before = Some(issuer_fields(current));
    if let Some(c) = change.ca.as_mut() {
        c.existing_id = Some(current.id.clone());
    }
    if cross_sign_follow(&mut change, ca, current, observed) {
        return change;
    }
    let diff = identity_diff(&ca.identity, current);
    if !diff.is_empty() {
        if manual.is_some_and(|m| m.certificate_pem.is_none()) {
            // A new manual CA cannot be made until its certificate exists:
            // keep the current one and say what is pending.
            change.action = Action::NoOp;
            change.reason = Some(format!(
                "the declared CA differs ({}) but its signed certificate is not committed yet",
                diff.join(", ")
            ));
            return change;
        }
        make_stage(&mut change, ca, current, &diff.join(", "));
        return change;
    }
    if let Some(before) = ca.rotate_before
        && current.not_after - observed.now < before as i64
    {
        let left = (current.not_after - observed.now).max(0) as u64;
        let why = format!(
            "expires in {}, less than rotateBefore {}",
            Duration::from_secs(left),
            Duration::from_secs(before)
        );
        make_stage(&mut change, ca, current, &why);
        return change;
    }
    if let Some(parent) = parent_moved(ca, current, observed) {
        let why = format!(
            "its parent {} rotated: issuer {} signs now, and this CA still chains to the old one",
            signer_mount(ca).unwrap_or_default(),
            parent.id
        );
        make_stage(&mut change, ca, current, &why);
        return change;
    }
    let mut adopt = Vec::new();
    if let Some(name) = &ca.issuer_name
        && current.name != *name
    {
        adopt.push(format!("name the existing issuer {name:?}"));
    }
    if !current.is_default {
        adopt.push("make it the mount's default issuer".to_string());
    }
    if adopt.is_empty() {
        change.action = Action::NoOp;
    } else {
        change.action = Action::Update;
        change.reason = Some(adopt.join(" and "));
    }
    change
}

/// When a Unix time is, for people (UTC, RFC 3339).
fn when(unix: i64) -> String {
    crate::vault::lock::rfc3339(unix)
}

/// The base of the name a rotation gives the issuer it supersedes.
fn superseded_base(ca: &DesiredCa) -> &str {
    ca.issuer_name.as_deref().unwrap_or("certplane-superseded")
}

/// Stage 1 of a rotation: a new issuer beside `old`, which stays the
/// default until stage 2.
fn make_stage(change: &mut Change, ca: &DesiredCa, old: &ObservedIssuer, why: &str) {
    change.action = Action::Replace;
    let signer = match signer_mount(ca) {
        Some(m) => format!(", signed by {m}"),
        None => String::new(),
    };
    let wait = match ca.rotation.overlap {
        Some(o) if o > 0 => format!(
            "the apply after the overlap {} makes it the default",
            Duration::from_secs(o)
        ),
        _ => "the next apply makes it the default".to_string(),
    };
    change.reason = Some(if matches!(ca.method, CaMethod::Import { .. }) {
        // An import has no key of its own making to mark it between
        // stages: it is imported and made the default at once, and the
        // old issuer is retired by the next apply.
        format!(
            "rotation 1/3: {why}: the new certificate is imported beside {} and made the \
             default at once (an import cannot wait between stages); {} is retired by the next \
             apply",
            old.id, old.id
        )
    } else {
        format!(
            "rotation 1/3: {why}: a new issuer is made beside {} (default, expires {}){signer} \
             and published with it; {} stays the default, {wait}",
            old.id,
            when(old.not_after),
            old.id
        )
    });
    if let Some(c) = change.ca.as_mut() {
        c.rotation = Some(Rotation::Make {
            old: old.id.clone(),
        });
    }
}

/// Stage 2 of a rotation: the new issuer (made by stage 1, its key still
/// pending-named) becomes the default after the declared overlap; the old
/// one is retired unless a child mount still chains to it.
fn switch_stage(
    change: &mut Change,
    ca: &DesiredCa,
    new: &ObservedIssuer,
    old: &ObservedIssuer,
    observed: &Observed,
) {
    let overlap = ca.rotation.overlap.unwrap_or(0);
    let ready = new.not_before + overlap as i64;
    if observed.now < ready {
        change.action = Action::NoOp;
        change.reason = Some(format!(
            "rotation 1/3 done: the new issuer {} is published beside {}; rotation 2/3 (make it \
             the default) waits for the overlap {}: apply again after {} (in {})",
            new.id,
            old.id,
            Duration::from_secs(overlap),
            when(ready),
            Duration::from_secs((ready - observed.now).max(0) as u64)
        ));
        if let Some(c) = change.ca.as_mut() {
            c.rotation = Some(Rotation::Overlap {
                old: old.id.clone(),
                until: ready,
            });
        }
        return;
    }
    let children = children_of(old, observed);
    let retire = children.is_empty();
    let named = match &ca.issuer_name {
        Some(n) => format!(" and name it {n:?}"),
        None => String::new(),
    };
    let then = if retire {
        format!(
            "retire {} (usage {RETIRED_USAGE}: it issues nothing more, keeps signing its CRL, and \
             is deleted after its notAfter {} plus the safety buffer {})",
            old.id,
            when(old.not_after),
            Duration::from_secs(ca.rotation.safety_buffer())
        )
    } else {
        format!(
            "{} is retired once {} no longer chain to it",
            old.id,
            children.join(", ")
        )
    };
    change.action = Action::Update;
    change.reason = Some(format!(
        "rotation 2/3: make the new issuer {} (expires {}) the default{named}; {then}",
        new.id,
        when(new.not_after)
    ));
    if let Some(c) = change.ca.as_mut() {
        c.rotation = Some(Rotation::Switch {
            old: old.id.clone(),
            retire,
        });
    }
}

/// `followParent: crossSign`: an intermediate signed by a parent mount
/// keeps its key when the parent rotates. While the parent has a new issuer
/// that is not the default yet (its key still has the pending name), or
/// once the parent's default no longer signs this CA, the current issuer
/// gets a twin: the same key signed by the parent's new issuer, imported
/// beside it, with `manual_chain` on both (rotation 1/3, cross-sign). Once
/// the parent made its new issuer the default, the twin becomes this
/// mount's default and takes the declared name, and the current issuer is
/// retired (rotation 2/3); stage 3 is the usual one. A parent whose new
/// issuer is made in this very plan is handled by [`children_wait`].
/// Returns whether it decided the change (a change of the CA's own
/// identity, or a CA signed by none of the parent's issuers, is not its).
fn cross_sign_follow(
    change: &mut Change,
    ca: &DesiredCa,
    current: &ObservedIssuer,
    observed: &Observed,
) -> bool {
    if ca.rotation.follow_parent != FollowParent::CrossSign {
        return false;
    }
    let Some(parent) = signer_mount(ca) else {
        return false;
    };
    let Some(parents) = observed.issuers.get(parent) else {
        return false;
    };
    let own = CaIdentity {
        issued_by: None,
        ..ca.identity.clone()
    };
    if !identity_diff(&own, current).is_empty() {
        return false;
    }
    let Some(cur) = issuer_der(current) else {
        return false;
    };
    let signs = |p: &ObservedIssuer| {
        issuer_der(p).is_some_and(|der| crate::pki::x509::is_signed_by(&cur, &der))
    };
    let Some(old_parent) = parents.iter().find(|p| signs(p)) else {
        return false;
    };
    let pending: BTreeSet<&str> = observed
        .keys
        .get(parent)
        .map(|keys| {
            keys.iter()
                .filter(|k| k.name.starts_with(PENDING_KEY_PREFIX))
                .map(|k| k.id.as_str())
                .collect()
        })
        .unwrap_or_default();
    let new_parent = parents.iter().find(|p| {
        !p.is_default && !p.is_retired() && pending.contains(p.key_id.as_str()) && !signs(p)
    });
    let switched = parents.iter().find(|p| p.is_default && !signs(p));
    let Some(target) = new_parent.or(switched) else {
        let Some(by) = ca
            .identity
            .issued_by
            .as_ref()
            .filter(|by| **by != current.issued_by)
        else {
            return false;
        };
        // The parent's new identity is declared, its new issuer not made
        // yet: cross-signed once it is (in this apply when the parent's
        // stage 1 is in this plan, see `children_wait`).
        change.action = Action::NoOp;
        change.reason = Some(format!(
            "signedBy {:?} -> {by:?}: this CA keeps its key; it is cross-signed by the new issuer \
             of its parent {parent} once {parent} makes it",
            current.issued_by
        ));
        if let Some(c) = change.ca.as_mut() {
            c.rotation = Some(Rotation::Parent {
                mount: parent.to_string(),
            });
        }
        return true;
    };
    let Some(target_der) = issuer_der(target) else {
        return false;
    };
    let twin = observed.issuers.get(&ca.mount).and_then(|issuers| {
        issuers.iter().find(|i| {
            i.id != current.id
                && i.key_id == current.key_id
                && issuer_der(i)
                    .is_some_and(|der| crate::pki::x509::is_signed_by(&der, &target_der))
        })
    });
    let set_rotation = |change: &mut Change, r: Rotation| {
        if let Some(c) = change.ca.as_mut() {
            c.rotation = Some(r);
        }
    };
    let Some(twin) = twin else {
        change.action = Action::Update;
        change.reason = Some(format!(
            "rotation 1/3 (cross-sign): its parent {parent} rotates to {}: the existing key of {} \
             is signed by {} too, as a twin issuer beside it (same subject and key){}; leaves \
             verify under the old and the new issuer of {parent}, and {} stays the default",
            target.id,
            current.id,
            target.id,
            chains_note(ca),
            current.id
        ));
        set_rotation(
            change,
            Rotation::CrossSign {
                old: current.id.clone(),
                parent: Some(target.id.clone()),
            },
        );
        return true;
    };
    if target.is_default {
        let named = match &ca.issuer_name {
            Some(n) => format!(" and name it {n:?}"),
            None => String::new(),
        };
        change.action = Action::Update;
        change.reason = Some(format!(
            "rotation 2/3 (cross-signed): its parent {parent} made {} the default: make the twin \
             {} (signed by it, same key) the default{named}; retire {} (signed by {}; usage \
             {RETIRED_USAGE}: it issues nothing more, keeps signing its CRL, and is deleted after \
             its notAfter {} plus the safety buffer {})",
            target.id,
            twin.id,
            current.id,
            old_parent.id,
            when(current.not_after),
            Duration::from_secs(ca.rotation.safety_buffer())
        ));
        if let Some(c) = change.ca.as_mut() {
            c.existing_id = Some(twin.id.clone());
        }
        set_rotation(
            change,
            Rotation::Switch {
                old: current.id.clone(),
                retire: true,
            },
        );
        return true;
    }
    let chained = |a: &ObservedIssuer, b: &ObservedIssuer| {
        a.manual_chain.first() == Some(&a.id) && a.manual_chain.contains(&b.id)
    };
    if ca.rotation.manual_chain_declared || (chained(current, twin) && chained(twin, current)) {
        change.action = Action::NoOp;
        change.reason = Some(format!(
            "rotation 1/3 done (cross-signed): {} has a twin {} signed by {parent}'s new issuer {} \
             (same key){}; the twin becomes the default once {parent} makes {} its default",
            current.id,
            twin.id,
            target.id,
            if ca.rotation.manual_chain_declared {
                ""
            } else {
                ", each listing the other in its manual_chain"
            },
            target.id
        ));
        set_rotation(
            change,
            Rotation::Parent {
                mount: parent.to_string(),
            },
        );
        return true;
    }
    change.action = Action::Update;
    change.reason = Some(format!(
        "rotation 1/3 (cross-sign): {} and its twin {} (signed by {parent}'s new issuer {}) do not \
         list each other in their manual_chain yet: set it on both",
        current.id, twin.id, target.id
    ));
    set_rotation(
        change,
        Rotation::CrossSign {
            old: current.id.clone(),
            parent: Some(target.id.clone()),
        },
    );
    true
}

/// How a cross-sign sets the chains of the twins, for its reason.
fn chains_note(ca: &DesiredCa) -> &'static str {
    if ca.rotation.manual_chain_declared {
        ", its chain left to the declared manualChain"
    } else {
        ", and manual_chain on both (each: itself, its parent, its twin, the twin's parent)"
    }
}

/// The parent mount of an intermediate signed by a mount.
fn signer_mount(ca: &DesiredCa) -> Option<&str> {
    match &ca.method {
        CaMethod::Intermediate {
            signer: Signer::Mount { mount, .. },
            ..
        } => Some(mount.trim_matches('/')),
        _ => None,
    }
}

/// DER of an issuer's certificate, when it was read.
fn issuer_der(i: &ObservedIssuer) -> Option<Vec<u8>> {
    if i.certificate.is_empty() {
        return None;
    }
    crate::pki::x509::pem_certificates(&i.certificate)
        .ok()?
        .into_iter()
        .next()
}

/// The parent's issuer that signs now, when `current` (an intermediate
/// signed by a parent mount) is not signed by it: the parent rotated, and
/// this CA must be signed again. `None` when the parent's certificates were
/// not read, or the parent is itself between stage 1 and 2.
fn parent_moved<'a>(
    ca: &DesiredCa,
    current: &ObservedIssuer,
    observed: &'a Observed,
) -> Option<&'a ObservedIssuer> {
    let parent = signer_mount(ca)?;
    let parents = observed.issuers.get(parent)?;
    let signing = parents.iter().find(|i| i.is_default)?;
    let child = issuer_der(current)?;
    let signer = issuer_der(signing)?;
    if crate::pki::x509::is_signed_by(&child, &signer) {
        return None;
    }
    // Signed by none of the parent's issuers (another signer, made by
    // hand): not a rotation of the parent's.
    let by_parent = parents
        .iter()
        .any(|p| issuer_der(p).is_some_and(|der| crate::pki::x509::is_signed_by(&child, &der)));
    by_parent.then_some(signing)
}

/// The mounts with an issuer that is not retired and is signed by
/// `issuer` (the children that still chain to it), as `mount (issuer id)`.
fn children_of(issuer: &ObservedIssuer, observed: &Observed) -> Vec<String> {
    let Some(parent) = issuer_der(issuer) else {
        return Vec::new();
    };
    let mut out = Vec::new();
    for (mount, issuers) in &observed.issuers {
        for i in issuers {
            if i.id == issuer.id || i.is_retired() || i.cert_sha256 == issuer.cert_sha256 {
                continue;
            }
            if !issuer_der(i).is_some_and(|der| crate::pki::x509::is_signed_by(&der, &parent)) {
                continue;
            }
            // A cross-signed twin (the same key, signed by another issuer,
            // not retired) chains the child elsewhere too: it does not
            // chain only to `issuer`.
            let twinned = !i.key_id.is_empty()
                && issuers.iter().any(|t| {
                    t.id != i.id
                        && t.key_id == i.key_id
                        && !t.is_retired()
                        && issuer_der(t)
                            .is_some_and(|der| !crate::pki::x509::is_signed_by(&der, &parent))
                });
            if !twinned {
                out.push(format!("{mount} ({})", i.id));
            }
        }
    }
    out
}

/// The issuers a rotation superseded in `ca`'s mount (their superseded
/// name, not the default, not a pending rotation's): each retired once no
/// child chains to it (stage 2, when the switch could not), and deleted
/// once its notAfter plus the safety buffer passed (stage 3). Waiting ones
/// are unchanged, with their reason.
fn superseded(change: &Change, ca: &DesiredCa, observed: &Observed) -> Vec<Change> {
    let Some(issuers) = observed.issuers.get(&ca.mount) else {
        return Vec::new();
    };
    let base = superseded_base(ca);
    let pending: BTreeSet<&str> = pending_named(ca, observed)
        .into_iter()
        .map(|k| k.id.as_str())
        .collect();
    let now_switching = match change.ca.as_ref().and_then(|c| c.rotation.as_ref()) {
        Some(Rotation::Switch { old, .. }) => Some(old.as_str()),
        _ => None,
    };
    let buffer = ca.rotation.safety_buffer();
    let mut out = Vec::new();
    for i in issuers {
        if i.is_default
            || pending.contains(i.key_id.as_str())
            || i.name != i.superseded_name(base)
            || now_switching == Some(i.id.as_str())
        {
            continue;
        }
        let mut c = Change {
            addr: crate::addr::VaultAddr::issuer(&ca.mount, Some(&i.name)).into(),
            kind: ResourceKind::Issuer,
            action: Action::NoOp,
            before: Some(issuer_fields(i)),
            after: None,
            sensitive: vec![],
            reason: None,
            ca: Some(Box::new(CaChange {
                desired: ca.clone(),
                existing_id: Some(i.id.clone()),
                note: None,
                pending_key: None,
                rotation: None,
            })),
            depends_on: [change.addr.clone()].into(),
            manifest: None,
        };
        c.before
            .get_or_insert_default()
            .insert("usage", json!(i.usage));
        if !i.is_retired() {
            let children = children_of(i, observed);
            if children.is_empty() {
                c.action = Action::Update;
                let mut after = c.before.clone().unwrap_or_default();
                after.insert("usage", json!(RETIRED_USAGE));
                c.after = Some(after);
                c.reason = Some(format!(
                    "rotation 2/3: retire the superseded issuer {} (usage {RETIRED_USAGE}); it is \
                     deleted after its notAfter {} plus the safety buffer {}",
                    i.id,
                    when(i.not_after),
                    Duration::from_secs(buffer)
                ));
                if let Some(ca) = c.ca.as_mut() {
                    ca.rotation = Some(Rotation::Retire { id: i.id.clone() });
                }
            } else {
                c.after = c.before.clone();
                if let Some(ca) = c.ca.as_mut() {
                    ca.rotation = Some(Rotation::Children { id: i.id.clone() });
                }
                c.reason = Some(format!(
                    "rotation 2/3 waits: the superseded issuer {} is retired once {} no longer \
                     chain to it (they are signed again by the new issuer)",
                    i.id,
                    children.join(", ")
                ));
            }
            out.push(c);
            continue;
        }
        let after = i.not_after.saturating_add(buffer as i64);
        if observed.now >= after {
            c.action = Action::Delete;
            c.reason = Some(format!(
                "rotation 3/3: the retired issuer {} expired at {} and the safety buffer {} has \
                 passed: no leaf it issued is valid any more; delete it",
                i.id,
                when(i.not_after),
                Duration::from_secs(buffer)
            ));
            if let Some(ca) = c.ca.as_mut() {
                ca.rotation = Some(Rotation::Delete {
                    id: i.id.clone(),
                    after,
                });
            }
        } else {
            c.after = c.before.clone();
            if let Some(ca) = c.ca.as_mut() {
                ca.rotation = Some(Rotation::Expiring {
                    id: i.id.clone(),
                    after,
                });
            }
            c.reason = Some(format!(
                "rotation 3/3 waits: the retired issuer {} is deleted after {} (its notAfter plus \
                 the safety buffer {}; in {})",
                i.id,
                when(after),
                Duration::from_secs(buffer),
                Duration::from_secs((after - observed.now).max(0) as u64)
            ));
        }
        out.push(c);
    }
    out
}

/// The keys of `ca`'s mount that carry certplane's pending name.
fn pending_named<'a>(ca: &DesiredCa, observed: &'a Observed) -> Vec<&'a ObservedKey> {
    observed
        .keys
        .get(&ca.mount)
        .map(|keys| {
            keys.iter()
                .filter(|k| k.name.starts_with(PENDING_KEY_PREFIX))
                .collect()
        })
        .unwrap_or_default()
}

/// An issuer that an interrupted apply imported (its key still has the
/// pending name) and that is the declared CA: the apply stopped between
/// `set-signed` and naming it.
fn interrupted_import<'a>(
    ca: &DesiredCa,
    issuers: &'a [ObservedIssuer],
    observed: &'a Observed,
) -> Option<(&'a ObservedIssuer, &'a ObservedKey)> {
    pending_named(ca, observed).into_iter().find_map(|k| {
        issuers
            .iter()
            .find(|i| i.key_id == k.id && identity_diff(&ca.identity, i).is_empty())
            .map(|i| (i, k))
    })
}

/// The address of a key of a PKI mount.
fn key_addr(mount: &str, name: &str) -> Addr {
    VaultAddr::key(mount, name).into()
}

/// What an interrupted apply left in the mount of an intermediate: the
/// issuer change resumes with the pending key of the declared CA (no new
/// key); a pending-named key that an issuer uses gets its name back (before
/// the issuer change, which may need the name); every other pending-named
/// key, which no issuer uses, is deleted (after it). Keys without the
/// pending name are never touched.
fn pending_keys(change: &mut Change, ca: &DesiredCa, observed: &Observed) -> Vec<Change> {
    let Some(wanted) = ca.pending_key_name() else {
        return Vec::new();
    };
    let issuers: &[ObservedIssuer] = observed
        .issuers
        .get(&ca.mount)
        .map(Vec::as_slice)
        .unwrap_or(&[]);
    let finishing = change.ca.as_ref().and_then(|c| c.pending_key.clone());
    let (manual, manual_files) = match &ca.method {
        CaMethod::Intermediate {
            signer:
                Signer::Manual {
                    certificate_pem,
                    csr_pem,
                    ..
                },
            ..
        } => (true, certificate_pem.is_some() || csr_pem.is_some()),
        _ => (false, false),
    };
    let exports = matches!(
        ca.method,
        CaMethod::Intermediate {
            export_key: true,
            ..
        }
    );
    let mut out = Vec::new();
    for key in pending_named(ca, observed) {
        if finishing.as_deref() == Some(key.name.as_str()) {
            continue;
        }
        let addr = key_addr(&ca.mount, &key.name);
        let before: Fields = [
            ("key_id".to_string(), json!(key.id)),
            ("key_name".to_string(), json!(key.name)),
        ]
        .into_iter()
        .collect();
        let base = Change {
            addr: addr.clone(),
            kind: ResourceKind::PkiKey,
            action: Action::Delete,
            before: Some(before),
            after: None,
            sensitive: vec![],
            reason: None,
            ca: None,
            depends_on: Default::default(),
            manifest: None,
        };
        if let Some(user) = issuers.iter().find(|i| i.key_id == key.id) {
            change.depends_on = depends_also(&change.depends_on, addr);
            out.push(Change {
                action: Action::Update,
                after: Some([("key_name".to_string(), json!(""))].into_iter().collect()),
                reason: Some(format!(
                    "issuer {} uses this key, which still has the pending name an interrupted \
                     apply gave it: clear the name",
                    user.id
                )),
                ..base
            });
            continue;
        }
        if key.name == wanted && exports {
            // Its private key left Vault once, with the apply that stopped,
            // and is gone: delete it first, so that a new key (exported and
            // delivered this time) can take the name.
            change.depends_on = depends_also(&change.depends_on, addr.clone());
            out.push(Change {
                reason: Some(
                    "an exported intermediate key an interrupted apply generated: its private \
                     key was not delivered and cannot be read again; delete it, a new key is made"
                        .into(),
                ),
                ..base
            });
            continue;
        }
        if key.name == wanted {
            let makes_ca = matches!(change.action, Action::Create | Action::Replace);
            if makes_ca && let Some(c) = change.ca.as_mut() {
                c.pending_key = Some(key.name.clone());
                let resume = format!(
                    "intermediate pending: key {} generated, not yet signed; apply resumes it (no new key)",
                    key.name
                );
                change.reason = Some(match change.reason.take() {
                    Some(r) if manual_files => {
                        format!("{r}; key {} holds its private key", key.name)
                    }
                    Some(r) if change.action == Action::Replace => format!("{r}; {resume}"),
                    _ => resume,
                });
                continue;
            }
            if manual {
                // Its CSR waits for a signature by hand.
                continue;
            }
        }
        out.push(Change {
            depends_on: [change.addr.clone()].into(),
            reason: Some(
                "a key an interrupted apply generated and no issuer uses: delete it".into(),
            ),
            ..base
        });
    }
    out
}

/// Orders changes so that each comes after what it depends on; independent
/// changes keep kind order (auth, policies, mounts, CAs, roles) and then
/// declaration order.
/// `deps` and `addr`.
fn depends_also(deps: &[Addr], addr: Addr) -> crate::state::Addrs {
    deps.iter().cloned().chain([addr]).collect()
}

fn order(changes: Vec<Change>) -> Vec<Change> {
    let index: HashMap<&Addr, usize> = changes
        .iter()
        .enumerate()
        .map(|(i, c)| (&c.addr, i))
        .collect();
    let mut indegree = vec![0usize; changes.len()];
    let mut dependents: Vec<Vec<usize>> = vec![Vec::new(); changes.len()];
    for (i, c) in changes.iter().enumerate() {
        for d in c.depends_on.iter() {
            if let Some(&j) = index.get(d)
                && j != i
            {
                indegree[i] += 1;
                dependents[j].push(i);
            }
        }
    }
    let key = |i: usize| (changes[i].kind.rank(), i);
    let mut ready: BTreeMap<(u16, usize), usize> = (0..changes.len())
        .filter(|&i| indegree[i] == 0)
        .map(|i| (key(i), i))
        .collect();
    let mut out_idx = Vec::with_capacity(changes.len());
    while let Some((_, i)) = ready.pop_first() {
        out_idx.push(i);
        for &j in &dependents[i] {
            indegree[j] -= 1;
            if indegree[j] == 0 {
                ready.insert(key(j), j);
            }
        }
    }
    // A cycle (validation rejects them) keeps the rest in declaration order.
    let mut placed = vec![false; changes.len()];
    for &i in &out_idx {
        placed[i] = true;
    }
    out_idx.extend((0..changes.len()).filter(|&i| !placed[i]));
    permute(changes, &out_idx)
}

/// `items` reordered so that `items[order[k]]` comes k-th, in place: a
/// plan of 10,000 changes is not copied into a second vector.
fn permute<T>(mut items: Vec<T>, order: &[usize]) -> Vec<T> {
    // dest[i]: where the item now at i goes.
    let mut dest = vec![0usize; order.len()];
    for (k, &i) in order.iter().enumerate() {
        dest[i] = k;
    }
    for i in 0..items.len() {
        while dest[i] != i {
            let j = dest[i];
            items.swap(i, j);
            dest.swap(i, j);
        }
    }
    items
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::Location;

    fn role(name: &str, ttl: u64, depends_on: Vec<Addr>) -> DesiredResource {
        DesiredResource {
            addr: Addr::parse_vault(&format!("pki/roles/{name}")).unwrap(),
            kind: ResourceKind::Role,
            fields: [("ttl".to_string(), json!(ttl))].into_iter().collect(),
            secrets: Default::default(),
            depends_on: depends_on.into(),
            origin: Location {
                file: std::path::Path::new("t.yaml").into(),
                line: 1,
                column: 1,
            },
            ca: None,
        }
    }

    #[test]
    fn permute_puts_each_item_where_the_order_says() {
        assert_eq!(
            permute(vec!['a', 'b', 'c', 'd', 'e'], &[3, 0, 4, 1, 2]),
            vec!['d', 'a', 'e', 'b', 'c']
        );
        assert_eq!(permute(vec![1, 2, 3], &[0, 1, 2]), vec![1, 2, 3]);
        assert_eq!(permute(Vec::<u8>::new(), &[]), Vec::<u8>::new());
    }

    #[test]
    fn planning_each_reply_as_it_arrives_gives_the_same_plan() {
        let a = role("a", 60, vec![]);
        let b = role("b", 60, vec![Addr::parse_vault("pki/roles/c").unwrap()]);
        let c = role("c", 60, vec![]);
        let desired = Desired {
            resources: vec![a, b, c],
        };
        let mut observed = Observed::default();
        // a is as declared, b differs (its extra live field is not
        // compared), c is absent.
        let live = |ttl: u64| -> Fields {
            [
                ("ttl".to_string(), json!(ttl)),
                ("key_type".to_string(), json!("rsa")),
            ]
            .into_iter()
            .collect()
        };
        observed
            .resources
            .insert(desired.resources[0].addr.clone(), live(60));
        observed
            .resources
            .insert(desired.resources[1].addr.clone(), live(30));
        let whole = plan(&desired, &observed);

        // Replies arriving out of order, each planned and then dropped.
        let mut planned = Streamed::new(&desired);
        for i in [2, 0, 1] {
            let r = &desired.resources[i];
            let reply = observed.resources.get(&r.addr).cloned();
            planned.plan(i, r, reply.as_ref(), &observed.live_mounts);
        }
        let streamed = plan_streamed(
            &desired,
            &Observed {
                resources: Default::default(),
                ..observed.clone()
            },
            planned,
        );
        assert_eq!(streamed, whole);
        let actions: Vec<(String, Action)> = whole
            .changes
            .iter()
            .map(|c| (c.addr.to_string(), c.action))
            .collect();
        // c before b (b depends on it); a as declared.
        assert_eq!(
            actions,
            vec![
                ("vault:pki/roles/a".to_string(), Action::NoOp),
                ("vault:pki/roles/c".to_string(), Action::Create),
                ("vault:pki/roles/b".to_string(), Action::Update),
            ]
        );
        assert_eq!(
            whole.changes[2]
                .before
                .as_ref()
                .unwrap()
                .keys()
                .collect::<Vec<_>>(),
            vec!["ttl"]
        );
    }

    #[test]
    fn an_unchanged_object_keeps_its_fields_once_and_still_reports_its_live_side() {
        let r = role("a", 60, vec![]);
        let live: Fields = [("ttl".to_string(), json!(60))].into_iter().collect();
        let mut c = plan_fields(&r, Some(&live), &LiveMounts::default(), &mut Vec::new());
        assert_eq!(c.action, Action::NoOp);
        assert_eq!(c.before, None, "not kept twice");
        // Its `after` is the desired resource's own map, not a copy.
        assert!(c.after.as_ref().is_some_and(|a| a.shares(&r.fields)));
        assert_eq!(c.live(), Some(&live));
        let report = crate::plan::json::PlanReport::new(&Plan {
            changes: vec![c.clone()],
            ..Plan::default()
        });
        assert_eq!(report.changes[0].before.as_ref(), Some(&live));
        assert_eq!(report.changes[0].after.as_ref(), Some(&live));
        // Made a change later (adopted, a reviewer token rewritten), it
        // shows its live side as `before`, not as a create.
        c.become_change(Action::Update);
        assert_eq!(c.before.as_ref(), Some(&live));
        // A create has no live side.
        let created = plan_fields(&r, None, &LiveMounts::default(), &mut Vec::new());
        assert_eq!((created.action, created.live()), (Action::Create, None));
    }
}
