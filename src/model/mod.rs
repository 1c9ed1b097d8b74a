//! The typed repository: what a user wrote, after loading and before any
//! check. Every object keeps its [`Origin`] so that later layers can point at
//! the file, line and column of any field.

pub mod certmanager;
pub mod config;
pub mod duration;
pub mod identity;
pub mod schema;
pub mod source;
pub mod trust;
pub mod vault;

use std::collections::{BTreeMap, HashSet};
use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use schemars::JsonSchema;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use crate::addr::VaultAddr;

pub use config::ConfigSpec;
pub use duration::Duration;
pub use source::{Sensitive, Source};
pub use vault::*;

/// The `apiVersion` of certplane's own kinds.
pub const API_VERSION: &str = "certplane.dev/v1alpha1";

/// A position in a file of the repository (1-based line and column).
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
pub struct Location {
    /// The file, as given on the command line joined with its path in the
    /// tree (shared by every location in it).
    pub file: Arc<Path>,
    /// 1-based line.
    pub line: usize,
    /// 1-based column.
    pub column: usize,
}

impl fmt::Display for Location {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}:{}", self.file.display(), self.line, self.column)
    }
}

/// Where a loaded document came from, with the position of each of its
/// fields by dotted path (`spec.maxTTL`, `spec.rules[0].path`).
#[derive(Clone, Debug, PartialEq)]
pub struct Origin {
    /// The file (shared by its documents).
    pub file: Arc<Path>,
    /// The position of the document's first key.
    pub line: usize,
    /// Column of the first key.
    pub column: usize,
    /// Position of every key (and sequence item) in the document.
    pub fields: Positions,
    /// For values written as a literal block (`key: |`), the position of
    /// the first character of their text, by dotted path: line `n` of the
    /// value is then line `n - 1` below it, at the same indentation.
    pub blocks: Positions,
}

/// Positions (line, column) by dotted path, held compactly: a repository
/// of 10,000 documents keeps one per document for its whole run. The
/// paths of a document are its shape ([`Shape`]), which documents written
/// alike share ([`Positions::shared`]); each document keeps only the line
/// and column of each.
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct Positions {
    /// The paths (`None`: none).
    shape: Option<Arc<Shape>>,
    /// (line, column) of each path of `shape`, in its order.
    at: Box<[(u32, u32)]>,
}

/// The dotted paths of a document, sorted: one string, and the (start, end)
/// of each path in it.
#[derive(Debug, PartialEq, Eq, Hash)]
pub struct Shape {
    paths: Box<str>,
    index: Box<[(u32, u32)]>,
}

impl Shape {
    fn path(&self, i: usize) -> &str {
        let (start, end) = self.index[i];
        &self.paths[start as usize..end as usize]
    }
}

impl Positions {
    /// The position of `path`.
    pub fn get(&self, path: &str) -> Option<(usize, usize)> {
        let shape = self.shape.as_deref()?;
        let (mut lo, mut hi) = (0, shape.index.len());
        while lo < hi {
            let mid = lo + (hi - lo) / 2;
            match shape.path(mid).cmp(path) {
                std::cmp::Ordering::Less => lo = mid + 1,
                std::cmp::Ordering::Greater => hi = mid,
                std::cmp::Ordering::Equal => {
                    let (line, column) = *self.at.get(mid)?;
                    return Some((line as usize, column as usize));
                }
            }
        }
        None
    }

    /// The same positions, their shape taken from `pool` when a document
    /// written alike put it there (10,000 roles written alike hold one).
    pub fn shared(mut self, pool: &mut HashSet<Arc<Shape>>) -> Positions {
        if let Some(shape) = &self.shape {
            match pool.get(shape) {
                Some(same) => self.shape = Some(Arc::clone(same)),
                None => {
                    pool.insert(Arc::clone(shape));
                }
            }
        }
        self
    }

    /// How many paths it holds.
    pub fn len(&self) -> usize {
        self.at.len()
    }

    /// Whether it holds none.
    pub fn is_empty(&self) -> bool {
        self.at.is_empty()
    }
}

impl<'a> FromIterator<(&'a String, &'a (usize, usize))> for Positions {
    fn from_iter<I: IntoIterator<Item = (&'a String, &'a (usize, usize))>>(iter: I) -> Positions {
        let narrow = |n: usize| u32::try_from(n).unwrap_or(u32::MAX);
        let mut given: Vec<(&String, (u32, u32))> = iter
            .into_iter()
            .map(|(path, &(line, column))| (path, (narrow(line), narrow(column))))
            .collect();
        if given.is_empty() {
            return Positions::default();
        }
        given.sort_by(|a, b| a.0.cmp(b.0));
        let mut paths = String::new();
        let mut index = Vec::with_capacity(given.len());
        for (path, _) in &given {
            let start = narrow(paths.len());
            paths.push_str(path);
            index.push((start, narrow(paths.len())));
        }
        Positions {
            shape: Some(Arc::new(Shape {
                paths: paths.into_boxed_str(),
                index: index.into_boxed_slice(),
            })),
            at: given.into_iter().map(|(_, at)| at).collect(),
        }
    }
}

impl Default for Origin {
    fn default() -> Origin {
        Origin {
            file: Arc::from(Path::new("")),
            line: 0,
            column: 0,
            fields: Positions::default(),
            blocks: Positions::default(),
        }
    }
}

impl Origin {
    /// The position of the document itself.
    pub fn doc(&self) -> Location {
        Location {
            file: self.file.clone(),
            line: self.line,
            column: self.column,
        }
    }

    /// The position of a field by dotted path; when the field itself is not
    /// written (a default), the nearest written parent; at worst the document.
    pub fn at(&self, path: &str) -> Location {
        let mut key = path;
        loop {
            if let Some((line, column)) = self.fields.get(key) {
                return Location {
                    file: self.file.clone(),
                    line,
                    column,
                };
            }
            match key.rfind(['.', '[']) {
                Some(i) => key = &key[..i],
                None => return self.doc(),
            }
        }
    }

    /// The position of (1-based) `line`, `column` inside the text value at
    /// `path`: exact for a literal block (`|`), otherwise the field itself.
    pub fn at_text(&self, path: &str, line: usize, column: usize) -> Location {
        match self.blocks.get(path) {
            Some((l, c)) => Location {
                file: self.file.clone(),
                line: l + line.saturating_sub(1),
                column: c + column.saturating_sub(1),
            },
            None => self.at(path),
        }
    }
}

/// `metadata` of a certplane object.
#[derive(Clone, Debug, PartialEq, Deserialize, Serialize, JsonSchema, Default)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Meta {
    /// The object's name; for Vault kinds, its path or name in Vault.
    pub name: String,
    /// Only meaningful for cluster objects and `VaultIssuer`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
    /// Free-form labels (not sent to Vault).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub labels: BTreeMap<String, String>,
    /// Free-form annotations (not sent to Vault).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub annotations: BTreeMap<String, String>,
}

/// The whole document of a certplane kind, as written: the envelope of
/// `apiVersion`, `kind`, `metadata`, `spec`. Used for loading and for the
/// JSON schemas.
#[derive(Clone, Debug, PartialEq, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Document<S> {
    /// Always `certplane.dev/v1alpha1`.
    pub api_version: String,
    /// The kind.
    pub kind: String,
    /// Name and namespace.
    #[serde(default)]
    pub metadata: Meta,
    /// The desired state.
    pub spec: S,
}

/// What certplane knows of a Vault kind before it is lowered (how it is
/// written to Vault is its descriptor's, in [`crate::vault::kinds`]): its
/// name in YAML, the Vault address its `metadata.name` names, the files and
/// sources it names, and, for an auth role, what every auth role is checked
/// for. Implemented next to each spec, in [`vault`].
pub trait VaultSpec:
    Clone + fmt::Debug + PartialEq + Serialize + DeserializeOwned + JsonSchema + 'static
{
    /// The kind's name in YAML (`PkiRole`).
    const KIND: &'static str;

    /// The address of the Vault object the object named `name` is: two
    /// objects with one address are one object declared twice.
    fn address(&self, name: &str) -> VaultAddr;

    /// Visits every file path and source the spec names, with the dotted
    /// path of its field, for the loader to confine it to the repository
    /// and rebase it. Default: none.
    fn refs_mut(&mut self, _visit: &mut dyn FnMut(FileRef<'_>, &str)) {}

    /// For an auth role: what `validate` checks of every auth role.
    /// Default: not an auth role.
    fn auth_role(&self) -> Option<AuthRoleRef<'_>> {
        None
    }
}

/// A file path or a source in a spec, as [`VaultSpec::refs_mut`] visits it.
#[derive(Debug)]
pub enum FileRef<'a> {
    /// A path relative to the YAML file (`caCertFile`).
    Path(&'a mut PathBuf),
    /// A source (`{file: ...}`, `{env: ...}`, `{value: ...}`).
    Source(&'a mut Source),
}

/// What every auth role declares, checked alike by `validate`.
#[derive(Clone, Copy, Debug)]
pub struct AuthRoleRef<'a> {
    /// The auth mount it lives on.
    pub mount: &'a str,
    /// The type that mount must have.
    pub mount_type: AuthType,
    /// The policies of the tokens it issues.
    pub token_policies: &'a [String],
    /// Their lifetime.
    pub token_ttl: Option<Duration>,
    /// Their longest lifetime.
    pub token_max_ttl: Option<Duration>,
}

/// Reads the spec of a Vault kind from a document: what the loader
/// implements (YAML with the position of every field).
pub trait SpecReader {
    /// Why a document could not be read.
    type Error;
    /// Reads `metadata` and a spec of type `S`.
    fn read<S: VaultSpec>(&mut self) -> Result<(Meta, S), Self::Error>;
}

/// Declares every Vault kind once, in one list: the [`VaultObject`] enum,
/// [`VAULT_KINDS`], the accessors of [`Repository`], and the dispatch to
/// each spec's [`VaultSpec`]. A kind's descriptor (how it is lowered,
/// observed, applied and pruned) is in [`crate::vault::kinds`].
macro_rules! vault_kinds {
    ($($variant:ident($spec:ty) => $accessor:ident;)*) => {
        /// A certplane object of any Vault kind (each spec boxed: a
        /// repository holds thousands of objects, mostly small roles, and
        /// the largest spec would otherwise set the size of every one).
        #[derive(Clone, Debug, PartialEq)]
        pub enum VaultObject {
            $(
                #[doc = concat!("`", stringify!($variant), "`.")]
                $variant(Box<$spec>),
            )*
        }

        /// Every Vault kind's name in `certplane.dev/v1alpha1`, in
        /// declaration order.
        pub const VAULT_KINDS: &[&str] = &[$(<$spec as VaultSpec>::KIND),*];

        impl VaultObject {
            /// The kind's name as written in YAML.
            pub fn kind(&self) -> &'static str {
                match self {
                    $(VaultObject::$variant(_) => <$spec as VaultSpec>::KIND,)*
                }
            }

            /// The address of the Vault object the object named `name` is.
            pub fn address(&self, name: &str) -> VaultAddr {
                match self {
                    $(VaultObject::$variant(s) => s.address(name),)*
                }
            }

            /// See [`VaultSpec::refs_mut`].
            pub fn refs_mut(&mut self, visit: &mut dyn FnMut(FileRef<'_>, &str)) {
                match self {
                    $(VaultObject::$variant(s) => s.refs_mut(visit),)*
                }
            }

            /// See [`VaultSpec::auth_role`].
            pub fn auth_role(&self) -> Option<AuthRoleRef<'_>> {
                match self {
                    $(VaultObject::$variant(s) => s.auth_role(),)*
                }
            }

            /// The spec as JSON, as written (camelCase).
            pub fn spec_json(&self) -> serde_json::Value {
                let v = match self {
                    $(VaultObject::$variant(s) => serde_json::to_value(s),)*
                };
                v.unwrap_or(serde_json::Value::Null)
            }

            /// Reads an object of the kind named `kind`; `None` when it is
            /// not a Vault kind.
            pub fn read<R: SpecReader>(
                kind: &str,
                reader: &mut R,
            ) -> Option<Result<(Meta, VaultObject), R::Error>> {
                $(
                    if kind == <$spec as VaultSpec>::KIND {
                        return Some(
                            reader.read::<$spec>().map(|(m, s)| (m, VaultObject::$variant(Box::new(s)))),
                        );
                    }
                )*
                None
            }
        }

        /// The JSON Schema of the document of every Vault kind, by kind.
        pub fn vault_document_schemas() -> Vec<(&'static str, schemars::Schema)> {
            vec![$((<$spec as VaultSpec>::KIND, schemars::schema_for!(Document<$spec>)),)*]
        }

        impl Repository {
            $(kind_accessor!($accessor, $variant, $spec);)*
        }
    };
}

/// One loaded object with its name and origin.
#[derive(Clone, Debug, PartialEq)]
pub struct Loaded<T> {
    /// `metadata`.
    pub meta: Meta,
    /// Where it was written.
    pub origin: Origin,
    /// The typed spec.
    pub spec: T,
}

/// A loaded repository: the `Config` (if any) and every object.
#[derive(Clone, Debug, Default)]
pub struct Repository {
    /// The directory that was loaded.
    pub root: PathBuf,
    /// The repository identity (see [`identity`]): `metadata.name` of the
    /// `Config`, or derived from where the repository comes from. It names
    /// what this repository owns in the cluster (its inventory), in Vault
    /// (the owner tag of mounts and policies) and in a render directory.
    pub identity: String,
    /// `certplane.yaml`'s `Config`, if present.
    pub config: Option<Loaded<ConfigSpec>>,
    /// All Vault objects, in file order.
    pub vault: Vec<Loaded<VaultObject>>,
    /// `VaultIssuer`s, expanded by [`crate::expand`] into Vault objects and
    /// cluster manifests.
    pub vault_issuers: Vec<Loaded<VaultIssuerSpec>>,
    /// Cluster objects (any apiVersion other than certplane's), as written.
    pub manifests: Vec<Loaded<serde_json::Value>>,
    /// Every YAML file the loader read, in path order: the repository's
    /// input (what the plan file's hash covers, with the files sources name).
    pub files: Vec<InputFile>,
}

/// One file the loader read.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct InputFile {
    /// Path relative to the repository root.
    pub path: PathBuf,
    /// SHA-256 of the bytes read, hex.
    pub sha256: String,
}

/// Generates an accessor of [`Repository`] for one Vault kind.
macro_rules! kind_accessor {
    ($fn:ident, $variant:ident, $spec:ty) => {
        /// Every object of this kind, with its metadata and origin.
        pub fn $fn(&self) -> impl Iterator<Item = (&Meta, &Origin, &$spec)> {
            self.vault.iter().filter_map(|o| match &o.spec {
                VaultObject::$variant(s) => Some((&o.meta, &o.origin, &**s)),
                _ => None,
            })
        }
    };
}

vault_kinds! {
    PkiMount(PkiMountSpec) => pki_mounts;
    PkiRole(PkiRoleSpec) => pki_roles;
    Policy(PolicySpec) => policies;
    AuthMount(AuthMountSpec) => auth_mounts;
    KubernetesAuthRole(KubernetesAuthRoleSpec) => kubernetes_auth_roles;
    AppRole(AppRoleSpec) => app_roles;
    CertAuthRole(CertAuthRoleSpec) => cert_auth_roles;
}

impl Repository {
    /// The `PkiMount` at `path`.
    pub fn pki_mount(&self, path: &str) -> Option<(&Meta, &Origin, &PkiMountSpec)> {
        self.pki_mounts().find(|(m, _, _)| m.name == path)
    }

    /// The `AuthMount` at `path`.
    pub fn auth_mount(&self, path: &str) -> Option<(&Meta, &Origin, &AuthMountSpec)> {
        self.auth_mounts().find(|(m, _, _)| m.name == path)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn positions_find_every_path_they_were_given_and_nothing_else() {
        let given: Vec<(String, (usize, usize))> = vec![
            ("spec.ttl".into(), (7, 3)),
            ("metadata".into(), (3, 1)),
            ("spec".into(), (5, 1)),
            ("spec.allowedDomains[0]".into(), (9, 7)),
            ("metadata.name".into(), (4, 3)),
        ];
        // In any order: the index sorts itself.
        let p: Positions = given.iter().map(|(k, v)| (k, v)).collect();
        assert_eq!(p.len(), 5);
        for (k, v) in &given {
            assert_eq!(p.get(k), Some(*v), "{k}");
        }
        for missing in ["", "spec.tt", "spec.ttlx", "spec.allowedDomains", "zzz"] {
            assert_eq!(p.get(missing), None, "{missing}");
        }
        assert!(Positions::default().is_empty());
        assert_eq!(Positions::default().get("spec"), None);
    }

    #[test]
    fn documents_of_one_shape_share_their_paths_and_keep_their_own_positions() {
        let doc = |line: usize| -> Vec<(String, (usize, usize))> {
            vec![
                ("metadata".into(), (line, 1)),
                ("spec".into(), (line + 1, 1)),
            ]
        };
        let mut pool = HashSet::new();
        let (a, b) = (doc(1), doc(10));
        let a: Positions = a.iter().map(|(k, v)| (k, v)).collect();
        let b: Positions = b.iter().map(|(k, v)| (k, v)).collect();
        let (a, b) = (a.shared(&mut pool), b.shared(&mut pool));
        let same = |x: &Positions, y: &Positions| match (&x.shape, &y.shape) {
            (Some(x), Some(y)) => Arc::ptr_eq(x, y),
            _ => false,
        };
        assert!(same(&a, &b), "one shape");
        assert_eq!(
            (a.get("spec"), b.get("spec")),
            (Some((2, 1)), Some((11, 1)))
        );
        let other = [("kind".to_string(), (1, 1))];
        let c: Positions = other.iter().map(|(k, v)| (k, v)).collect();
        let c = c.shared(&mut pool);
        assert!(!same(&a, &c));
        assert_eq!(pool.len(), 2);
    }

    #[test]
    fn origin_falls_back_to_the_nearest_written_parent() {
        let fields: BTreeMap<String, (usize, usize)> = [
            ("spec".to_string(), (5, 1)),
            ("spec.rules[0]".to_string(), (6, 5)),
        ]
        .into_iter()
        .collect();
        let origin = Origin {
            file: std::path::Path::new("a.yaml").into(),
            line: 1,
            column: 1,
            fields: fields.iter().collect(),
            blocks: Positions::default(),
        };
        assert_eq!(origin.at("spec.rules[0].path").line, 6);
        assert_eq!(origin.at("spec.ttl").line, 5);
        assert_eq!(origin.at("metadata.name").line, 1);
    }
}
