//! Reading the live state of every desired resource, in the shape the
//! desired side is built in ([`crate::state::Observed`]).
//!
//! Mounts and auth mounts come from one `GET sys/mounts` and one
//! `GET sys/auth`; a resource under a mount that does not exist is absent
//! without a request; everything else is read in parallel, at most
//! [`CONCURRENCY`] requests at a time.

use std::collections::{BTreeMap, BTreeSet};

use futures::stream::{self, StreamExt};
use serde_json::{Value, json};

use super::kinds::{Read, Table};
use super::normalize::{duration_secs, normalize_fields};
use super::{Vault, VaultError};
use crate::addr::{Addr, VaultAddr};
use crate::pki::x509;
use crate::state::{
    CaMethod, Desired, DesiredResource, Fields, Observed, ObservedIssuer, ObservedKey,
    ResourceKind, Signer,
};

/// Most requests in flight at once.
pub const CONCURRENCY: usize = 16;

/// The live mount tables (`sys/mounts`, `sys/auth`), keyed by path without
/// the trailing `/`: each entry reduced to the fields it is compared by
/// ([`mount_fields`]) as soon as it is read, since the tables are held
/// while every other resource is read.
#[derive(Default)]
pub(crate) struct MountTables {
    secrets: Option<BTreeMap<String, Fields>>,
    auth: Option<BTreeMap<String, Fields>>,
    /// Every mount is taken to exist ([`MountTables::ANY`]).
    any: bool,
}

async fn mount_table(vault: &Vault, path: &str) -> Result<BTreeMap<String, Fields>, VaultError> {
    let data = vault.read(path).await?.unwrap_or(Value::Null);
    let Value::Object(map) = data else {
        return Err(VaultError::BadReply {
            op: "read",
            path: path.into(),
            why: "the mount table is not an object".into(),
        });
    };
    Ok(map
        .into_iter()
        .filter(|(_, v)| v.is_object())
        .map(|(k, v)| (k.trim_end_matches('/').to_string(), mount_fields(&v)))
        .collect())
}

impl MountTables {
    /// Tables in which every mount exists: for a read whose mount was
    /// found otherwise ([`observe_one`]).
    const ANY: MountTables = MountTables {
        secrets: None,
        auth: None,
        any: true,
    };

    pub(crate) async fn load(vault: &Vault, secrets: bool, auth: bool) -> Result<Self, VaultError> {
        let (s, a) = futures::join!(
            async {
                if secrets {
                    mount_table(vault, "sys/mounts").await.map(Some)
                } else {
                    Ok(None)
                }
            },
            async {
                if auth {
                    mount_table(vault, "sys/auth").await.map(Some)
                } else {
                    Ok(None)
                }
            }
        );
        Ok(MountTables {
            secrets: s?,
            auth: a?,
            any: false,
        })
    }

    /// The paths of the tables that were read.
    fn paths(&self) -> crate::state::LiveMounts {
        let keys = |t: &Option<BTreeMap<String, Fields>>| {
            t.iter().flat_map(|m| m.keys().cloned()).collect()
        };
        crate::state::LiveMounts {
            secrets: keys(&self.secrets),
            auth: keys(&self.auth),
        }
    }

    fn secret_mount(&self, path: &str) -> Option<&Fields> {
        self.secrets.as_ref()?.get(path.trim_matches('/'))
    }

    fn auth_mount(&self, path: &str) -> Option<&Fields> {
        self.auth.as_ref()?.get(path.trim_matches('/'))
    }

    /// Whether the mount (secrets or auth) an object lives in exists; true
    /// for what lives in no mount (a policy, a mount itself).
    fn has_parent(&self, addr: &VaultAddr) -> bool {
        if self.any {
            return true;
        }
        match addr.parent() {
            Some(VaultAddr::Mount { path }) => self.secret_mount(&path).is_some(),
            Some(VaultAddr::AuthMount { path }) => self.auth_mount(&path).is_some(),
            _ => true,
        }
    }
}

fn needs_secret_table(kind: ResourceKind) -> bool {
    kind.descriptor().table == Table::Secrets
}

fn needs_auth_table(kind: ResourceKind) -> bool {
    kind.descriptor().table == Table::Auth
}

/// The fields of a mount table entry: `type`, `description`, the
/// `config` durations (in seconds) and certplane's ownership tags among the
/// `options` (see [`super::prune`]).
fn mount_fields(entry: &Value) -> Fields {
    let mut f = Fields::new();
    for key in ["type", "description"] {
        if let Some(v) = entry.get(key) {
            f.insert(key, v.clone());
        }
    }
    let tags: serde_json::Map<String, Value> = [
        super::prune::MANAGED_OPTION.0,
        super::prune::REPOSITORY_OPTION,
    ]
    .into_iter()
    .filter_map(|k| Some((k.to_string(), entry["options"].get(k)?.clone())))
    .collect();
    if !tags.is_empty() {
        f.insert("options", Value::Object(tags));
    }
    if let Some(Value::Object(config)) = entry.get("config") {
        for (k, v) in config {
            let v = duration_secs(v).map_or_else(|| v.clone(), Value::from);
            f.insert(k.clone(), v);
        }
    }
    f
}

fn data_fields(path: &str, data: Value) -> Result<Fields, VaultError> {
    match data {
        Value::Object(map) => Ok(normalize_fields(map)),
        _ => Err(VaultError::BadReply {
            op: "read",
            path: path.into(),
            why: "data is not an object".into(),
        }),
    }
}

/// Reads one resource, given the mount tables, the way its descriptor
/// says ([`Read`]). A resource whose mount does not exist is absent,
/// without a request.
pub(crate) async fn read_resource(
    vault: &Vault,
    tables: &MountTables,
    addr: &Addr,
    kind: ResourceKind,
) -> Result<Option<Fields>, VaultError> {
    let Some(v) = addr.as_vault() else {
        return Ok(None);
    };
    let d = kind.descriptor();
    if d.read == Read::Nothing || !tables.has_parent(v) {
        return Ok(None);
    }
    match d.read {
        Read::MountEntry => {
            let entry = match d.table {
                Table::Auth => tables.auth_mount(v.mount_path()),
                _ => tables.secret_mount(v.mount_path()),
            };
            Ok(entry.cloned())
        }
        Read::Data => {
            let path = v.path();
            match vault.read(&path).await? {
                Some(d) => data_fields(&path, d).map(Some),
                None => Ok(None),
            }
        }
        Read::Keys => {
            let (mount, name) = (v.mount_path(), v.name().unwrap_or_default());
            let keys = observe_keys(vault, mount).await?;
            Ok(keys.into_iter().find(|k| k.name == name).map(|k| {
                let mut f = Fields::new();
                f.insert("key_id", json!(k.id));
                f.insert("key_name", json!(k.name));
                f
            }))
        }
        Read::IssuerSettings => {
            let (mount, name) = (v.mount_path(), v.name().unwrap_or("default"));
            read_issuer_settings(vault, mount, name).await
        }
        Read::Issuers => {
            let (mount, name) = (v.mount_path(), v.name().unwrap_or("default"));
            let issuers = observe_issuers(vault, mount).await?;
            let found = issuers
                .iter()
                .find(|i| i.name == name)
                .or_else(|| (name == "default").then(|| issuers.iter().find(|i| i.is_default))?);
            Ok(found.map(issuer_fields))
        }
        Read::Nothing => Ok(None),
    }
}

/// The issuers of a mount by ID with their names (`""` when unnamed), and
/// the default issuer's ID.
async fn issuer_names(
    vault: &Vault,
    mount: &str,
) -> Result<(BTreeMap<String, String>, Option<String>), VaultError> {
    let mut names = BTreeMap::new();
    if let Some(list) = vault.list(&format!("{mount}/issuers")).await? {
        let info = list.get("key_info").and_then(Value::as_object);
        for id in listed(&list) {
            let name = info
                .and_then(|i| i.get(id))
                .and_then(|e| e.get("issuer_name"))
                .and_then(Value::as_str)
                .unwrap_or("");
            names.insert(id.to_string(), name.to_string());
        }
    }
    if names.is_empty() {
        return Ok((names, None));
    }
    let default = vault
        .read(&format!("{mount}/config/issuers"))
        .await?
        .and_then(|d| d.get("default").and_then(Value::as_str).map(str::to_string))
        .filter(|s| !s.is_empty());
    Ok((names, default))
}

/// The settings of a CA: its issuer found by name (`default`: the mount's
/// default issuer) and read by ID, with `usage` as a sorted list and the
/// `manual_chain` IDs as issuer names (IDs of unnamed issuers stay). An
/// issuer that does not exist has none.
async fn read_issuer_settings(
    vault: &Vault,
    mount: &str,
    name: &str,
) -> Result<Option<Fields>, VaultError> {
    let (names, default) = issuer_names(vault, mount).await?;
    let id = if name == "default" {
        default
    } else {
        names
            .iter()
            .find(|(_, n)| n.as_str() == name)
            .map(|(id, _)| id.clone())
    };
    let Some(id) = id else { return Ok(None) };
    let path = format!("{mount}/issuer/{id}");
    let Some(data) = vault.read(&path).await? else {
        return Ok(None);
    };
    let mut f = data_fields(&path, data)?;
    f.remove("certificate");
    f.remove("ca_chain");
    if let Some(Value::String(u)) = f.get("usage") {
        let mut list: Vec<&str> = u
            .split(',')
            .map(str::trim)
            .filter(|x| !x.is_empty())
            .collect();
        list.sort_unstable();
        let list = json!(list);
        f.insert("usage", list);
    }
    if let Some(Value::Array(chain)) = f.get("manual_chain") {
        let named: Vec<Value> = chain
            .iter()
            .map(|c| match c.as_str().and_then(|id| names.get(id)) {
                Some(n) if !n.is_empty() => json!(n),
                _ => c.clone(),
            })
            .collect();
        f.insert("manual_chain", Value::Array(named));
    }
    Ok(Some(f))
}

/// The facts of a live issuer as fields (for re-checks and display).
pub fn issuer_fields(i: &ObservedIssuer) -> Fields {
    let mut f = Fields::new();
    f.insert("issuer_id", json!(i.id));
    f.insert("issuer_name", json!(i.name));
    f.insert("common_name", json!(i.common_name));
    f.insert("issued_by", json!(i.issued_by));
    f.insert("key_type", json!(i.key_type.map(|k| k.as_str())));
    f.insert("key_bits", json!(i.key_bits));
    f.insert("not_after", json!(i.not_after));
    f.insert("certificate_sha256", json!(i.cert_sha256));
    f.insert("is_default", json!(i.is_default));
    f
}

/// Reads the live state of one resource (used by apply to re-check a change
/// just before making it): a mount from its own entry, anything in a mount
/// after finding that mount's entry — never the whole mount table, which a
/// check before each of 10,000 writes would otherwise read 10,000 times.
pub async fn observe_one(
    vault: &Vault,
    addr: &Addr,
    kind: ResourceKind,
) -> Result<Option<Fields>, VaultError> {
    let Some(v) = addr.as_vault() else {
        return Ok(None);
    };
    let d = kind.descriptor();
    if d.read == Read::MountEntry {
        return mount_entry(vault, d.table, v.mount_path()).await;
    }
    let parent = match v.parent() {
        Some(VaultAddr::Mount { path }) => Some((Table::Secrets, path)),
        Some(VaultAddr::AuthMount { path }) => Some((Table::Auth, path)),
        _ => None,
    };
    if let Some((table, path)) = parent
        && mount_entry(vault, table, &path).await?.is_none()
    {
        return Ok(None);
    }
    read_resource(vault, &MountTables::ANY, addr, kind).await
}

/// One mount's entry, read alone: `GET sys/mounts/<path>` (or
/// `sys/auth/<path>`). Vault and OpenBao say a mount does not exist with a
/// 400 naming it ("No secret engine mount at <path>/", "No auth engine at
/// <path>/"); any other refusal is an error. `sys/mounts/a/b` answers with
/// the mount that holds `a/b`, which may be `a`: mounts never nest, so
/// `a/b` is a mount only if its parent path answers with none. A token that
/// may read the mount table but not an entry (a mount being pruned, whose
/// `delete` was granted by hand) gets the entry from the table.
async fn mount_entry(
    vault: &Vault,
    table: Table,
    path: &str,
) -> Result<Option<Fields>, VaultError> {
    let path = path.trim_matches('/');
    let list = match table {
        Table::Auth => "sys/auth",
        _ => "sys/mounts",
    };
    let from_table = || async { Ok(mount_table(vault, list).await?.remove(path)) };
    let Some(found) = (match read_entry(vault, list, path).await? {
        Entry::Denied => return from_table().await,
        Entry::Found(found) => found,
    }) else {
        return Ok(None);
    };
    if let Some((parent, _)) = path.rsplit_once('/') {
        match read_entry(vault, list, parent).await? {
            Entry::Denied => return from_table().await,
            Entry::Found(Some(_)) => return Ok(None),
            Entry::Found(None) => {}
        }
    }
    Ok(Some(mount_fields(&found)))
}

/// What `GET <list>/<path>` found.
enum Entry {
    /// The entry of the mount holding `path`, or `None`: no mount there.
    Found(Option<Value>),
    /// The token may not read it.
    Denied,
}

async fn read_entry(vault: &Vault, list: &str, path: &str) -> Result<Entry, VaultError> {
    let absent = if list == "sys/auth" {
        "no auth engine at"
    } else {
        "no secret engine mount at"
    };
    match vault.read(&format!("{list}/{path}")).await {
        Ok(entry) => Ok(Entry::Found(entry.filter(Value::is_object))),
        Err(VaultError::Api {
            status: 400,
            message,
            ..
        }) if message.to_ascii_lowercase().contains(absent) => Ok(Entry::Found(None)),
        Err(VaultError::PermissionDenied { .. }) => Ok(Entry::Denied),
        Err(e) => Err(e),
    }
}

/// The issuers of a PKI mount that hold a key (the CAs that can sign).
/// Issuers imported only as part of a chain (a parent's certificate, no key)
/// are left out: they are not this mount's CA. A mount without issuers gives
/// an empty list.
pub async fn observe_issuers(
    vault: &Vault,
    mount: &str,
) -> Result<Vec<ObservedIssuer>, VaultError> {
    let mount = mount.trim_matches('/');
    let list_path = format!("{mount}/issuers");
    let Some(list) = vault.list(&list_path).await? else {
        return Ok(Vec::new());
    };
    let keys: Vec<String> = listed(&list).map(str::to_string).collect();
    let info = list.get("key_info").and_then(Value::as_object);
    // Keyed issuers only, when the list says which have a key.
    let keyed: Vec<String> = keys
        .into_iter()
        .filter(|id| {
            info.and_then(|i| i.get(id))
                .and_then(|e| e.get("key_id"))
                .and_then(Value::as_str)
                .is_none_or(|k| !k.is_empty())
        })
        .collect();
    if keyed.is_empty() {
        return Ok(Vec::new());
    }
    let default_from_list: Option<Option<String>> = info.map(|i| {
        keyed
            .iter()
            .find(|id| {
                i.get(id.as_str())
                    .and_then(|e| e.get("is_default"))
                    .and_then(Value::as_bool)
                    .unwrap_or(false)
            })
            .cloned()
    });
    let has_default_flags = info.is_some_and(|i| {
        keyed.iter().all(|id| {
            i.get(id.as_str())
                .and_then(|e| e.get("is_default"))
                .is_some()
        })
    });
    let default_id = match default_from_list {
        Some(d) if has_default_flags => d,
        _ => {
            let path = format!("{mount}/config/issuers");
            vault
                .read(&path)
                .await?
                .and_then(|d| d.get("default").and_then(Value::as_str).map(str::to_string))
                .filter(|s| !s.is_empty())
        }
    };
    let reads = stream::iter(keyed.into_iter().map(|id| {
        let default_id = default_id.clone();
        async move { read_issuer(vault, mount, &id, default_id.as_deref()).await }
    }))
    .buffer_unordered(CONCURRENCY)
    .collect::<Vec<_>>()
    .await;
    let mut out = Vec::new();
    for r in reads {
        if let Some(i) = r? {
            out.push(i);
        }
    }
    out.sort_by(|a, b| a.id.cmp(&b.id));
    Ok(out)
}

async fn read_issuer(
    vault: &Vault,
    mount: &str,
    id: &str,
    default_id: Option<&str>,
) -> Result<Option<ObservedIssuer>, VaultError> {
    let path = format!("{mount}/issuer/{id}");
    let Some(data) = vault.read(&path).await? else {
        return Ok(None);
    };
    let bad = |why: String| VaultError::BadReply {
        op: "read",
        path: path.clone(),
        why,
    };
    let text = |k: &str| {
        data.get(k)
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_string()
    };
    if text("key_id").is_empty() {
        return Ok(None);
    }
    let pem = text("certificate");
    let info = x509::parse_pem(&pem).map_err(|e| bad(format!("its certificate: {e}")))?;
    let issuer_id = match text("issuer_id") {
        s if s.is_empty() => id.to_string(),
        s => s,
    };
    Ok(Some(ObservedIssuer {
        is_default: default_id == Some(issuer_id.as_str()),
        id: issuer_id,
        name: text("issuer_name"),
        common_name: info.common_name,
        issued_by: info.issued_by,
        key_type: info.key_type,
        key_bits: info.key_bits,
        not_after: info.not_after,
        max_path_length: info.path_len,
        cert_sha256: info.sha256,
        key_id: text("key_id"),
        not_before: info.not_before,
        usage: match data.get("usage") {
            Some(Value::Array(a)) => a
                .iter()
                .filter_map(Value::as_str)
                .collect::<Vec<_>>()
                .join(","),
            _ => text("usage"),
        },
        certificate: pem,
        leaf_not_after_behavior: text("leaf_not_after_behavior"),
        manual_chain: match data.get("manual_chain") {
            Some(Value::Array(a)) => a
                .iter()
                .filter_map(Value::as_str)
                .map(str::to_string)
                .collect(),
            _ => Vec::new(),
        },
    }))
}

/// The keys of a PKI mount, with their names (an empty list when it has
/// none).
pub async fn observe_keys(vault: &Vault, mount: &str) -> Result<Vec<ObservedKey>, VaultError> {
    let mount = mount.trim_matches('/');
    let Some(list) = vault.list(&format!("{mount}/keys")).await? else {
        return Ok(Vec::new());
    };
    let info = list.get("key_info").and_then(Value::as_object);
    let mut out: Vec<ObservedKey> = listed(&list)
        .map(|id| ObservedKey {
            id: id.to_string(),
            name: info
                .and_then(|i| i.get(id))
                .and_then(|e| e.get("key_name"))
                .and_then(Value::as_str)
                .unwrap_or("")
                .to_string(),
        })
        .collect();
    out.sort_by(|a, b| a.id.cmp(&b.id));
    Ok(out)
}

/// The names a LIST reply holds (its `keys`), in its order.
pub fn listed(list: &Value) -> impl Iterator<Item = &str> {
    list.get("keys")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
}

/// The mounts of the declared intermediates and roots: where an
/// interrupted apply may have left a key, and where a rotation's new issuer
/// is marked by its key's pending name.
fn intermediate_mounts(desired: &Desired) -> BTreeSet<String> {
    desired
        .resources
        .iter()
        .filter_map(|r| r.ca.as_ref())
        .filter(|ca| ca.pending_key_name().is_some())
        .map(|ca| ca.mount.trim_matches('/').to_string())
        .collect()
}

/// The PKI mounts whose issuers the desired state needs: every mount with a
/// declared CA, and every parent mount that signs one.
fn issuer_mounts(desired: &Desired) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    for r in &desired.resources {
        let Some(ca) = &r.ca else { continue };
        out.insert(ca.mount.trim_matches('/').to_string());
        if let CaMethod::Intermediate {
            signer: Signer::Mount { mount, .. },
            ..
        } = &ca.method
        {
            out.insert(mount.trim_matches('/').to_string());
        }
    }
    out
}

enum Task<'a> {
    Resource(usize, &'a DesiredResource),
    Issuers(String),
    Keys(String),
}

enum Found<'a> {
    Resource(usize, &'a DesiredResource, Option<Fields>),
    Issuers(String, Vec<ObservedIssuer>),
    Keys(String, Vec<ObservedKey>),
}

/// Reads the live state of every desired resource.
pub async fn observe(vault: &Vault, desired: &Desired) -> Result<Observed, VaultError> {
    let mut resources = BTreeMap::new();
    let mut observed = observe_streamed(vault, desired, |_, r, live, _| {
        if let Some(fields) = live {
            resources.insert(r.addr.clone(), fields);
        }
    })
    .await?;
    observed.resources = resources;
    Ok(observed)
}

/// Reads the live state of every desired resource, handing each
/// resource's live fields to `seen` (with its index in `desired`, and the
/// live mount paths) as they arrive instead of keeping them:
/// [`Observed::resources`] comes back empty. At most [`CONCURRENCY`]
/// replies are held at a time; the planner compares each as it comes
/// ([`crate::plan::Streamed::plan`]), so that a plan of 10,000 roles never
/// holds 10,000 replies of some sixty parameters each.
pub async fn observe_streamed<F>(
    vault: &Vault,
    desired: &Desired,
    mut seen: F,
) -> Result<Observed, VaultError>
where
    F: FnMut(usize, &DesiredResource, Option<Fields>, &crate::state::LiveMounts),
{
    let mounts = issuer_mounts(desired);
    let kinds: Vec<ResourceKind> = desired.resources.iter().map(|r| r.kind).collect();
    let tables = MountTables::load(
        vault,
        !mounts.is_empty() || kinds.iter().any(|k| needs_secret_table(*k)),
        kinds.iter().any(|k| needs_auth_table(*k)),
    )
    .await?;

    let mut tasks: Vec<Task<'_>> = desired
        .resources
        .iter()
        .enumerate()
        .filter(|(_, r)| r.kind.descriptor().read != Read::Issuers)
        .map(|(i, r)| Task::Resource(i, r))
        .collect();
    tasks.extend(
        mounts
            .into_iter()
            .filter(|m| tables.secret_mount(m).is_some())
            .map(Task::Issuers),
    );
    tasks.extend(
        intermediate_mounts(desired)
            .into_iter()
            .filter(|m| tables.secret_mount(m).is_some())
            .map(Task::Keys),
    );

    let mut observed = Observed {
        now: unix_now(),
        live_mounts: tables.paths(),
        ..Observed::default()
    };
    let tables = &tables;
    let mut results = stream::iter(tasks.into_iter().map(|task| async move {
        match task {
            Task::Resource(i, r) => read_resource(vault, tables, &r.addr, r.kind)
                .await
                .map(|f| Found::Resource(i, r, f)),
            Task::Issuers(mount) => observe_issuers(vault, &mount)
                .await
                .map(|i| Found::Issuers(mount, i)),
            Task::Keys(mount) => observe_keys(vault, &mount)
                .await
                .map(|k| Found::Keys(mount, k)),
        }
    }))
    .buffer_unordered(CONCURRENCY);
    while let Some(found) = results.next().await {
        match found? {
            Found::Resource(i, r, live) => seen(i, r, live, &observed.live_mounts),
            Found::Issuers(mount, issuers) => {
                observed.issuers.insert(mount, issuers);
            }
            Found::Keys(mount, keys) => {
                observed.keys.insert(mount, keys);
            }
        }
    }
    Ok(observed)
}

/// Seconds since the Unix epoch.
pub fn unix_now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

/// What the live Vault has of the things cluster objects may reference
/// without the repository declaring them: PKI mounts and their roles, auth
/// mounts and their roles. Used by `validate --live`.
pub async fn live_references(vault: &Vault) -> Result<crate::validate::Live, VaultError> {
    let mut live = crate::validate::Live::default();
    let names = |v: Option<Value>| -> Vec<String> {
        v.and_then(|d| d.get("keys").cloned())
            .and_then(|k| serde_json::from_value::<Vec<String>>(k).ok())
            .unwrap_or_default()
    };
    // Mounts of a type whose objects certplane lists (PKI roles, auth
    // roles), with the type.
    let mounts = |table: Option<Value>| -> Vec<(String, String)> {
        let Some(Value::Object(m)) = table else {
            return Vec::new();
        };
        m.into_iter()
            .filter_map(|(k, e)| {
                let t = e.get("type").and_then(Value::as_str)?;
                super::kinds::listed_under(t).next()?;
                Some((k.trim_end_matches('/').to_string(), t.to_string()))
            })
            .collect()
    };
    for (m, t) in mounts(vault.read("sys/mounts").await?) {
        if t != "pki" {
            continue;
        }
        for (_, l) in super::kinds::listed_under(&t) {
            for r in names(vault.list(&(l.list)(&m)).await?) {
                live.pki_roles.insert((m.clone(), r));
            }
        }
        live.pki_mounts.insert(m);
    }
    for (m, t) in mounts(vault.read("sys/auth").await?) {
        for (_, l) in super::kinds::listed_under(&t) {
            for r in names(vault.list(&(l.list)(&m)).await?) {
                live.auth_roles.insert((m.clone(), r));
            }
        }
        live.auth_mounts.insert(m);
    }
    Ok(live)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mount_entries_become_seconds() {
        let entry = json!({"type": "pki", "description": "d", "accessor": "x",
            "config": {"default_lease_ttl": 0, "max_lease_ttl": 315360000, "force_no_cache": false}});
        let f = mount_fields(&entry);
        assert_eq!(f["type"], json!("pki"));
        assert_eq!(f["description"], json!("d"));
        assert_eq!(f["max_lease_ttl"], json!(315_360_000));
        assert_eq!(f["default_lease_ttl"], json!(0));
        assert!(!f.contains_key("accessor"));
    }

    #[test]
    fn children_of_missing_mounts_are_absent() {
        let mut secrets = BTreeMap::new();
        secrets.insert("pki/int".to_string(), Fields::new());
        let mut auth = BTreeMap::new();
        auth.insert("kubernetes".to_string(), Fields::new());
        let t = MountTables {
            secrets: Some(secrets),
            auth: Some(auth),
            any: false,
        };
        assert!(t.has_parent(&VaultAddr::role("pki/int", "web")));
        assert!(!t.has_parent(&VaultAddr::role("pki", "web")));
        assert!(t.has_parent(&VaultAddr::auth_role("kubernetes", "x")));
        assert!(!t.has_parent(&VaultAddr::auth_role("approle", "x")));
        assert!(!t.has_parent(&VaultAddr::cert_role("kubernetes/x", "y")));
        assert!(t.has_parent(&VaultAddr::policy("p")));
    }
}
