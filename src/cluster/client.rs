//! [`Cluster`]: the connection to one API server and the calls certplane
//! makes on it.
//!
//! Every object goes through discovery first (its group/version's
//! `APIResourceList`, fetched once and cached), which says whether the kind
//! is served at all and whether it is namespaced. Writes are server-side
//! apply with one field manager and `force`; plans are the same request with
//! `dryRun=All`, compared with the live object by [`super::diff`]. Every call
//! has a time limit, and waits for one of the [`super::pool::CONCURRENCY`]
//! request slots of the connection (over at most
//! [`super::pool::MAX_CONNECTIONS`] connections).

use std::borrow::Cow;
use std::collections::HashMap;
use std::fmt;
use std::future::Future;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use kube::Resource as _;
use kube::api::{Api, DeleteParams, DynamicObject, GetParams, Patch, PatchParams};
use kube::config::{KubeConfigOptions, Kubeconfig};
use kube::core::GroupVersion;
use kube::discovery::{self, ApiCapabilities, ApiResource, Scope};
use kube::{Client, Config};
use serde_json::Value;

use super::ClusterError;
use super::diff::{ObjectPlan, plan_from};
use super::manifest::Labelled;
use super::redact::Redactor;
use crate::addr::{Addr, KubeRef};
use crate::model::config::ClusterTarget;

/// The field manager certplane applies with unless configured otherwise.
pub const DEFAULT_FIELD_MANAGER: &str = "certplane";

/// The time limit of each API call.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(30);

/// Time limit to open a connection to the API server.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// The resources one group/version serves.
type Resources = Arc<Vec<(ApiResource, ApiCapabilities)>>;

/// A connection to one cluster: the client, the field manager certplane
/// applies with, and a discovery cache.
#[derive(Clone)]
pub struct Cluster {
    client: Client,
    field_manager: String,
    timeout: Duration,
    /// `apiVersion` -> what it serves. An async lock held across the
    /// discovery request: the dry runs of a plan start in parallel, and
    /// each group/version must still be asked for once, not once per
    /// object in flight.
    discovery: Arc<tokio::sync::Mutex<HashMap<String, Resources>>>,
    /// Where inventories are kept.
    pub(crate) inventory_namespace: String,
    /// At most [`super::pool::CONCURRENCY`] requests in flight, over every
    /// clone of this connection.
    limit: super::pool::Limit,
}

impl fmt::Debug for Cluster {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Cluster")
            .field("default_namespace", &self.client.default_namespace())
            .field("field_manager", &self.field_manager)
            .field("timeout", &self.timeout)
            .field("inventory_namespace", &self.inventory_namespace)
            .finish_non_exhaustive()
    }
}

/// A manifest with what discovery says about its kind.
#[derive(Clone, Debug)]
pub struct ResolvedObject<'m> {
    /// Its identity (namespace filled in for namespaced kinds, none for
    /// cluster-scoped ones).
    pub kube_ref: KubeRef,
    /// Where the API serves it.
    pub resource: ApiResource,
    /// Whether the kind is namespaced.
    pub namespaced: bool,
    /// The manifest as it is sent: namespace as in `kube_ref`; a Secret's
    /// `stringData` moved into `data` (see [`string_data_to_data`]). The
    /// manifest itself when it is already so (no copy of each object a
    /// plan observes).
    pub body: Cow<'m, Value>,
}

impl ResolvedObject<'_> {
    /// `Addr::Kube` of the object.
    pub fn addr(&self) -> Addr {
        Addr::from(self.kube_ref.clone())
    }

    /// Requests about the object's collection (namespace as resolved).
    fn request(&self) -> kube::core::Request {
        let namespace = self
            .kube_ref
            .namespace
            .as_deref()
            .filter(|_| self.namespaced);
        kube::core::Request::new(DynamicObject::url_path(&self.resource, namespace))
    }

    fn api(&self, client: Client) -> Api<DynamicObject> {
        match &self.kube_ref.namespace {
            Some(ns) if self.namespaced => Api::namespaced_with(client, ns, &self.resource),
            _ => Api::all_with(client, &self.resource),
        }
    }
}

/// One object as the API server sees it: what it holds now, and what a
/// server-side apply of the manifest would make of it.
#[derive(Clone, Debug)]
pub struct ObservedObject {
    /// The object (namespace resolved).
    pub addr: Addr,
    /// What the server answered.
    pub replies: Replies,
}

/// The two replies about an object. `Debug` masks a Secret's values.
#[derive(Clone)]
pub enum Replies {
    /// The dry run answered the live object, byte for byte: applying the
    /// manifest changes nothing. Neither reply is parsed further than the
    /// object's name (a no-op plan of many objects is mostly this).
    Same,
    /// The replies read as JSON.
    Read {
        /// The live object (`None`: it does not exist).
        live: Option<Value>,
        /// The result of the dry run.
        dry_run: Value,
    },
}

impl fmt::Debug for Replies {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Replies::Same => f.write_str("Same"),
            Replies::Read { live, dry_run } => f
                .debug_struct("Read")
                .field("live", &live.as_ref().map(super::diff::mask_secret))
                .field("dry_run", &super::diff::mask_secret(dry_run))
                .finish(),
        }
    }
}

impl ObservedObject {
    /// The object's plan: the live object compared with the dry run.
    pub fn plan(&self) -> ObjectPlan {
        match &self.replies {
            Replies::Same => ObjectPlan::unchanged(self.addr.clone()),
            Replies::Read { live, dry_run } => plan_from(self.addr.clone(), live.as_ref(), dry_run),
        }
    }
}

/// What a delete found.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Deleted {
    /// The object was deleted (or its deletion started: finalizers may keep
    /// it a while).
    Deleted,
    /// It did not exist (404), or its kind is no longer served.
    Absent,
}

impl Cluster {
    /// Connect as configured: the kubeconfig context `target.context`, else
    /// `KUBECONFIG` / `~/.kube/config`, else the pod's in-cluster config.
    pub async fn connect(target: Option<&ClusterTarget>) -> Result<Cluster, ClusterError> {
        let context = target
            .and_then(|t| t.context.clone())
            .filter(|c| !c.is_empty());
        let config = match &context {
            Some(_) => {
                let options = KubeConfigOptions {
                    context: context.clone(),
                    ..Default::default()
                };
                Config::from_kubeconfig(&options)
                    .await
                    .map_err(|source| ClusterError::Kubeconfig { context, source })?
            }
            None => Config::infer().await.map_err(ClusterError::InferConfig)?,
        };
        Self::from_config(config, target)
    }

    /// Connect with the kubeconfig file at `path` (its current context, or
    /// `target.context`).
    pub async fn connect_kubeconfig(
        path: &Path,
        target: Option<&ClusterTarget>,
    ) -> Result<Cluster, ClusterError> {
        let context = target
            .and_then(|t| t.context.clone())
            .filter(|c| !c.is_empty());
        let kubeconfig =
            Kubeconfig::read_from(path).map_err(|source| ClusterError::Kubeconfig {
                context: context.clone(),
                source,
            })?;
        let options = KubeConfigOptions {
            context: context.clone(),
            ..Default::default()
        };
        let config = Config::from_custom_kubeconfig(kubeconfig, &options)
            .await
            .map_err(|source| ClusterError::Kubeconfig { context, source })?;
        Self::from_config(config, target)
    }

    fn from_config(
        mut config: Config,
        target: Option<&ClusterTarget>,
    ) -> Result<Cluster, ClusterError> {
        // kube's rustls client uses the process-wide provider: ring, the only
        // one in the tree. Installing twice is harmless.
        let _ = rustls::crypto::ring::default_provider().install_default();
        config.connect_timeout = Some(CONNECT_TIMEOUT);
        config.read_timeout = Some(DEFAULT_TIMEOUT);
        config.write_timeout = Some(DEFAULT_TIMEOUT);
        let client = super::pool::client(config, CONNECT_TIMEOUT).map_err(ClusterError::Client)?;
        let field_manager = target
            .and_then(|t| t.field_manager.clone())
            .filter(|f| !f.is_empty())
            .unwrap_or_else(|| DEFAULT_FIELD_MANAGER.to_string());
        Ok(Self::from_client(client, field_manager))
    }

    /// Wrap an existing client (tests: a client over a mock service).
    pub fn from_client(client: Client, field_manager: impl Into<String>) -> Cluster {
        Cluster {
            client,
            field_manager: field_manager.into(),
            timeout: DEFAULT_TIMEOUT,
            discovery: Arc::default(),
            inventory_namespace: super::inventory::DEFAULT_NAMESPACE.to_string(),
            limit: super::pool::Limit::default(),
        }
    }

    /// The time limit of one API call.
    pub fn timeout(&self) -> Duration {
        self.timeout
    }

    /// The same client with another time limit per call.
    pub fn with_timeout(mut self, timeout: Duration) -> Cluster {
        self.timeout = timeout;
        self
    }

    /// Keep the inventories in another namespace.
    pub fn with_inventory_namespace(mut self, namespace: impl Into<String>) -> Cluster {
        self.inventory_namespace = namespace.into();
        self
    }

    /// The namespace inventories are kept in.
    pub fn inventory_namespace(&self) -> &str {
        &self.inventory_namespace
    }

    /// The field manager certplane applies with.
    pub fn field_manager(&self) -> &str {
        &self.field_manager
    }

    /// The namespace of namespaced objects that name none.
    pub fn default_namespace(&self) -> &str {
        self.client.default_namespace()
    }

    /// The underlying client.
    pub fn client(&self) -> &Client {
        &self.client
    }

    /// What the API server serves for `api_version` / `kind`, and whether
    /// it is namespaced: a clear [`ClusterError::NotServed`] when it does
    /// not serve it (e.g. no cert-manager CRDs). One discovery request per
    /// group/version, then cached (its verbs and subresources are not
    /// copied for every object).
    pub async fn api_resource(
        &self,
        api_version: &str,
        kind: &str,
    ) -> Result<(ApiResource, Scope), ClusterError> {
        let resources = self.group_version(api_version, kind).await?;
        resources
            .iter()
            .find(|(ar, _)| ar.kind == kind)
            .map(|(ar, caps)| (ar.clone(), caps.scope.clone()))
            .ok_or_else(|| not_served(api_version, kind))
    }

    async fn group_version(
        &self,
        api_version: &str,
        kind: &str,
    ) -> Result<Resources, ClusterError> {
        let mut cache = self.discovery.lock().await;
        if let Some(r) = cache.get(api_version) {
            return Ok(r.clone());
        }
        let gv: GroupVersion = api_version
            .parse()
            .map_err(|_| ClusterError::InvalidManifest {
                object: None,
                reason: format!("apiVersion {api_version:?} is not group/version or version"),
            })?;
        let op = "discovery of";
        let fut = self.limit.run(discovery::pinned_group(&self.client, &gv));
        let group = match tokio::time::timeout(self.timeout, fut).await {
            Err(_) => {
                return Err(ClusterError::Timeout {
                    op,
                    object: api_version.to_string(),
                    after: self.timeout,
                });
            }
            // A real server answers a group/version it does not serve with a
            // plain-text "404 page not found", not a Status.
            Ok(Err(kube::Error::Api(status))) if is_404(&status) => {
                return Err(not_served(api_version, kind));
            }
            Ok(Err(source)) => {
                return Err(ClusterError::Discovery {
                    api_version: api_version.to_string(),
                    error: source,
                });
            }
            Ok(Ok(g)) => g,
        };
        let resources: Resources = Arc::new(group.versioned_resources(&gv.version));
        cache.insert(api_version.to_string(), resources.clone());
        Ok(resources)
    }

    /// Find where `manifest` lives: its kind through discovery, its namespace
    /// (a namespaced object without one goes to the default namespace, as
    /// with kubectl; a cluster-scoped object loses any namespace it names).
    pub async fn resolve<'m>(
        &self,
        manifest: &'m Value,
    ) -> Result<ResolvedObject<'m>, ClusterError> {
        let ident = identity(manifest)?;
        let (resource, scope) = self.api_resource(&ident.api_version, &ident.kind).await?;
        let namespaced = scope == Scope::Namespaced;
        let namespace = if namespaced {
            Some(
                ident
                    .namespace
                    .clone()
                    .unwrap_or_else(|| self.client.default_namespace().to_string()),
            )
        } else {
            None
        };
        let mut body = Cow::Borrowed(manifest);
        if ident.api_version == "v1" && ident.kind == "Secret" {
            string_data_to_data(body.to_mut());
        }
        let as_resolved = match &namespace {
            Some(ns) => body["metadata"]["namespace"].as_str() == Some(ns.as_str()),
            None => body["metadata"].get("namespace").is_none(),
        };
        if !as_resolved
            && let Some(meta) = body
                .to_mut()
                .get_mut("metadata")
                .and_then(Value::as_object_mut)
        {
            match &namespace {
                Some(ns) => {
                    meta.insert("namespace".into(), Value::String(ns.clone()));
                }
                None => {
                    meta.remove("namespace");
                }
            }
        }
        Ok(ResolvedObject {
            kube_ref: KubeRef {
                group: resource.group.clone(),
                version: resource.version.clone(),
                kind: resource.kind.clone(),
                namespace,
                name: ident.name,
            },
            resource,
            namespaced,
            body,
        })
    }

    /// Observe one object: GET it (404: absent) and server-side apply it as
    /// a dry run. Both replies are kept as the server sent them (in memory
    /// only: a Secret's values are in them). When the dry run answers the
    /// live object byte for byte, nothing changes and neither is read into
    /// JSON ([`Replies::Same`]); otherwise both are ([`Replies::Read`]).
    pub async fn observe_object(&self, manifest: &Value) -> Result<ObservedObject, ClusterError> {
        self.observe_labelled(Labelled::as_written(manifest)).await
    }

    /// [`Cluster::observe_object`] of a manifest as it is labelled
    /// ([`Labelled`]: the label is written into the dry run's body, the
    /// manifest is not copied).
    pub async fn observe_labelled(
        &self,
        manifest: Labelled<'_>,
    ) -> Result<ObservedObject, ClusterError> {
        let obj = self.resolve(manifest.manifest).await?;
        let request = obj.request();
        let object = obj.kube_ref.to_string();
        let name = obj.kube_ref.name.as_str();
        let mut redactor = Redactor::for_object(&obj.body);

        let get = async {
            let req = request
                .get(name, &GetParams::default())
                .map_err(kube::Error::BuildRequest)?;
            match self.client.request_text(req).await {
                Ok(text) => Ok(Some(text)),
                Err(kube::Error::Api(status)) if is_404(&status) => Ok(None),
                Err(e) => Err(e),
            }
        };
        let live_text = self.call("get", &object, &redactor, get).await?;
        // The live object is checked before the dry run is sent: its name
        // read alone, or all of it when that is not enough (a reply about
        // another object, or not JSON, stops here) or when it is a Secret
        // (its values go into the redactor before the dry run's errors
        // could quote them).
        let mut live = None;
        if let Some(text) = &live_text
            && (super::diff::is_secret(&obj.body) || !names(text, name))
        {
            let l = self.read_reply("get", &object, &redactor, text, name)?;
            redactor.add_object(&l);
            live = Some(l);
        }

        let pp = PatchParams::apply(&self.field_manager).force().dry_run();
        let dry = async {
            let req = request
                .patch(name, &pp, &Patch::Apply(manifest.on(&obj.body)))
                .map_err(kube::Error::BuildRequest)?;
            self.client.request_text(req).await
        };
        let dry_text = self.call("dry-run apply", &object, &redactor, dry).await?;
        let replies = if live.is_none() && live_text.as_deref() == Some(dry_text.as_str()) {
            // The live object's own bytes, whose name was checked.
            Replies::Same
        } else {
            let live = match (live, &live_text) {
                (Some(l), _) => Some(l),
                (None, Some(text)) => Some(self.read_reply("get", &object, &redactor, text, name)?),
                (None, None) => None,
            };
            let dry_run = self.read_reply("dry-run apply", &object, &redactor, &dry_text, name)?;
            Replies::Read { live, dry_run }
        };
        tracing::debug!(object = %object, exists = live_text.is_some(), "observed cluster object");
        Ok(ObservedObject {
            addr: obj.addr(),
            replies,
        })
    }

    /// A reply read as JSON, checked to be about `name`.
    fn read_reply(
        &self,
        op: &'static str,
        object: &str,
        redactor: &Redactor,
        text: &str,
        name: &str,
    ) -> Result<Value, ClusterError> {
        let value = serde_json::from_str(text)
            .map_err(|e| request_error(op, object, kube::Error::SerdeError(e), redactor))?;
        about(op, object, &value, name)?;
        Ok(value)
    }

    /// Plan one object: [`Cluster::observe_object`], then compare the live
    /// object with the dry run after stripping server-set fields.
    pub async fn plan_object(&self, manifest: &Value) -> Result<ObjectPlan, ClusterError> {
        Ok(self.observe_object(manifest).await?.plan())
    }

    /// Server-side apply `manifest` with certplane's field manager, taking
    /// over fields other managers hold (`force`).
    pub async fn apply_object(&self, manifest: &Value) -> Result<(), ClusterError> {
        self.apply_resolved(&self.resolve(manifest).await?).await
    }

    pub(crate) async fn apply_resolved(
        &self,
        obj: &ResolvedObject<'_>,
    ) -> Result<(), ClusterError> {
        let api = obj.api(self.client.clone());
        let object = obj.kube_ref.to_string();
        let name = obj.kube_ref.name.as_str();
        let redactor = Redactor::for_object(&obj.body);
        let pp = PatchParams::apply(&self.field_manager).force();
        let applied = self
            .call(
                "apply",
                &object,
                &redactor,
                api.patch(name, &pp, &Patch::Apply(&obj.body)),
            )
            .await?;
        to_value("apply", &object, &applied, name)?;
        tracing::info!(object = %object, "applied");
        Ok(())
    }

    /// Read one object by reference: `None` when it does not exist (404),
    /// or its kind is no longer served at all. Its values are never logged.
    pub async fn get_object(&self, r: &KubeRef) -> Result<Option<Value>, ClusterError> {
        let Some(api) = self.api_for(r).await? else {
            return Ok(None);
        };
        let object = r.to_string();
        let redactor = Redactor::default();
        match self.timed("get", &object, api.get_opt(&r.name)).await? {
            Ok(None) => Ok(None),
            Ok(Some(found)) => to_value("get", &object, &found, &r.name).map(Some),
            Err(e) => Err(request_error("get", &object, e, &redactor)),
        }
    }

    /// Delete one object (background propagation). A 404, or a kind the
    /// server no longer serves, is [`Deleted::Absent`].
    pub async fn delete_object(&self, r: &KubeRef) -> Result<Deleted, ClusterError> {
        let Some(api) = self.api_for(r).await? else {
            return Ok(Deleted::Absent);
        };
        let object = r.to_string();
        let dp = DeleteParams::background();
        match self
            .timed("delete", &object, api.delete(&r.name, &dp))
            .await?
        {
            Ok(_) => {
                tracing::info!(object = %object, "deleted");
                Ok(Deleted::Deleted)
            }
            Err(kube::Error::Api(status)) if is_404(&status) => Ok(Deleted::Absent),
            Err(e) => Err(request_error("delete", &object, e, &Redactor::default())),
        }
    }

    /// The API of an object by reference, through discovery (following a
    /// removed version to the one now served); `None` when its kind is not
    /// served at all.
    async fn api_for(&self, r: &KubeRef) -> Result<Option<Api<DynamicObject>>, ClusterError> {
        let segments = [Some(&r.version), Some(&r.name), r.namespace.as_ref()];
        if segments.into_iter().flatten().any(|s| !is_path_segment(s))
            || !(r.group.is_empty() || is_path_segment(&r.group))
        {
            return Err(ClusterError::InvalidManifest {
                object: Some(r.to_string()),
                reason: "its group, version, namespace or name cannot be used in an API path"
                    .into(),
            });
        }
        let api_version = if r.group.is_empty() {
            r.version.clone()
        } else {
            format!("{}/{}", r.group, r.version)
        };
        let (resource, scope) = match self.api_resource(&api_version, &r.kind).await {
            Ok(x) => x,
            Err(ClusterError::NotServed { .. }) => match self.served_elsewhere(r).await? {
                Some(x) => x,
                None => return Ok(None),
            },
            Err(e) => return Err(e),
        };
        Ok(Some(match &r.namespace {
            Some(ns) if scope == Scope::Namespaced => {
                Api::namespaced_with(self.client.clone(), ns, &resource)
            }
            _ => Api::all_with(self.client.clone(), &resource),
        }))
    }

    /// The kind of `r` at another version of its group, when the version it
    /// was applied with is no longer served (e.g. `v1beta1` removed after an
    /// upgrade): its objects still exist and are deleted through that one.
    /// None when the group no longer serves the kind at all (its CRD was
    /// removed, and with it every object of the kind).
    async fn served_elsewhere(
        &self,
        r: &KubeRef,
    ) -> Result<Option<(ApiResource, Scope)>, ClusterError> {
        if r.group.is_empty() {
            return Ok(None);
        }
        let fut = discovery::group(&self.client, &r.group);
        match self.timed("discovery of", &r.group, fut).await? {
            Ok(group) => Ok(group
                .recommended_kind(&r.kind)
                .map(|(ar, caps)| (ar, caps.scope))),
            Err(kube::Error::Discovery(_)) => Ok(None),
            Err(kube::Error::Api(status)) if is_404(&status) => Ok(None),
            Err(source) => Err(ClusterError::Discovery {
                api_version: r.group.clone(),
                error: source,
            }),
        }
    }

    /// Run `fut` (one API request) within the time limit, once fewer than
    /// [`super::pool::CONCURRENCY`] requests are in flight (the wait counts
    /// against the time limit).
    pub(crate) async fn timed<T>(
        &self,
        op: &'static str,
        object: &str,
        fut: impl Future<Output = kube::Result<T>>,
    ) -> Result<kube::Result<T>, ClusterError> {
        tokio::time::timeout(self.timeout, self.limit.run(fut))
            .await
            .map_err(|_| ClusterError::Timeout {
                op,
                object: object.to_string(),
                after: self.timeout,
            })
    }

    /// Run `fut` within the time limit; errors redacted with `redactor`.
    pub(crate) async fn call<T>(
        &self,
        op: &'static str,
        object: &str,
        redactor: &Redactor,
        fut: impl Future<Output = kube::Result<T>>,
    ) -> Result<T, ClusterError> {
        self.timed(op, object, fut)
            .await?
            .map_err(|e| request_error(op, object, e, redactor))
    }
}

/// Whether a failure means "not found", with or without a Status body.
pub(crate) fn is_404(status: &kube::core::Status) -> bool {
    status.code == 404 || status.is_not_found()
}

/// The "kind not served" error, with a hint.
fn not_served(api_version: &str, kind: &str) -> ClusterError {
    let group = api_version.rsplit_once('/').map(|(g, _)| g).unwrap_or("");
    let hint = if group == "trust.cert-manager.io" {
        "install trust-manager (its Bundle CRD) first, or publish the trust bundle to a configMap"
            .to_string()
    } else if group == "cert-manager.io" || group.ends_with(".cert-manager.io") {
        "install cert-manager (its CRDs) first".to_string()
    } else if group.is_empty() || group.ends_with(".k8s.io") || !group.contains('.') {
        "check the apiVersion and kind (`kubectl api-resources` lists what the cluster serves)"
            .to_string()
    } else {
        format!(
            "install the CustomResourceDefinition of {group} first, or check the apiVersion and kind"
        )
    };
    ClusterError::NotServed {
        api_version: api_version.to_string(),
        kind: kind.to_string(),
        hint,
    }
}

/// The identifying fields of a manifest.
#[derive(Debug)]
pub(crate) struct Identity {
    pub(crate) api_version: String,
    pub(crate) kind: String,
    pub(crate) namespace: Option<String>,
    pub(crate) name: String,
}

/// Read apiVersion, kind, metadata.name and metadata.namespace.
pub(crate) fn identity(manifest: &Value) -> Result<Identity, ClusterError> {
    fn s(v: Option<&Value>) -> Option<&str> {
        v.and_then(Value::as_str).filter(|s| !s.is_empty())
    }
    let metadata = manifest.get("metadata");
    let kind = s(manifest.get("kind"));
    let name = s(metadata.and_then(|m| m.get("name")));
    // Named in an error only: not written out for every object.
    let invalid = |reason: &str| ClusterError::InvalidManifest {
        object: kind.zip(name).map(|(k, n)| format!("{k} {n}")),
        reason: reason.to_string(),
    };
    if !manifest.is_object() {
        return Err(invalid("a manifest must be a mapping"));
    }
    let api_version = s(manifest.get("apiVersion"))
        .ok_or_else(|| invalid("apiVersion is missing or not a string"))?;
    if api_version.split('/').count() > 2 || !api_version.split('/').all(is_path_segment) {
        return Err(invalid(
            "apiVersion must be <group>/<version> or <version> (e.g. cert-manager.io/v1, v1)",
        ));
    }
    let kind = kind.ok_or_else(|| invalid("kind is missing or not a string"))?;
    let name = name.ok_or_else(|| invalid("metadata.name is missing or not a string"))?;
    if !is_path_segment(name) {
        return Err(invalid("metadata.name cannot be used in an API path"));
    }
    let namespace = match metadata.and_then(|m| m.get("namespace")) {
        None | Some(Value::Null) => None,
        Some(Value::String(ns)) if ns.is_empty() => None,
        Some(Value::String(ns)) if is_path_segment(ns) => Some(ns.clone()),
        Some(Value::String(_)) => {
            return Err(invalid("metadata.namespace cannot be used in an API path"));
        }
        Some(_) => return Err(invalid("metadata.namespace is not a string")),
    };
    Ok(Identity {
        api_version: api_version.to_string(),
        kind: kind.to_string(),
        namespace,
        name: name.to_string(),
    })
}

/// Move a Secret's `stringData` into `data` (base64), as the API server
/// would, before applying. Applied as `stringData`, a key certplane later
/// removes stays in `data` forever: server-side apply records ownership of
/// `stringData.<key>`, which the server never stores, not of `data.<key>`
/// (Flux normalises Secrets the same way). A key in both wins from
/// `stringData`, as on the server.
pub fn string_data_to_data(secret: &mut Value) {
    let Some(obj) = secret.as_object_mut() else {
        return;
    };
    let Some(Value::Object(string_data)) = obj.get("stringData") else {
        return;
    };
    let data_ok = matches!(obj.get("data"), None | Some(Value::Null | Value::Object(_)));
    if !data_ok || string_data.values().any(|v| !v.is_string()) {
        // Let the API server reject it with its own message.
        return;
    }
    let encoded: Vec<(String, Value)> = string_data
        .iter()
        .filter_map(|(k, v)| {
            let text = v.as_str()?;
            Some((k.clone(), Value::String(BASE64.encode(text))))
        })
        .collect();
    obj.remove("stringData");
    let data = obj.entry("data").or_insert(Value::Null);
    if data.is_null() {
        *data = Value::Object(Default::default());
    }
    if let Some(data) = data.as_object_mut() {
        data.extend(encoded);
    }
}

/// Whether `s` can stand as one segment of an API path (the API server
/// rejects the rest anyway; this keeps a request from going elsewhere).
fn is_path_segment(s: &str) -> bool {
    !s.is_empty()
        && s != "."
        && s != ".."
        && !s.contains(['/', '%', '?', '#', ' '])
        && !s.chars().any(char::is_control)
}

/// Checks that a reply read as JSON is an object about `name`.
fn about(op: &'static str, object: &str, reply: &Value, name: &str) -> Result<(), ClusterError> {
    let got = reply.pointer("/metadata/name").and_then(Value::as_str);
    if got == Some(name) {
        return Ok(());
    }
    Err(ClusterError::BadReply {
        op,
        object: object.to_string(),
        reason: match got {
            Some(other) => format!("the reply is about {other:?}, not {name:?}"),
            None if reply.is_object() => format!("the reply is about \"\", not {name:?}"),
            None => "the reply is not an object".to_string(),
        },
    })
}

/// Whether `reply` is a JSON object whose `metadata.name` is `name`, read
/// without building the rest of it (any other reply is read in full, and
/// [`about`] says what is wrong with it).
fn names(reply: &str, name: &str) -> bool {
    #[derive(serde::Deserialize)]
    struct Head<'a> {
        #[serde(borrow)]
        metadata: Meta<'a>,
    }
    #[derive(serde::Deserialize)]
    struct Meta<'a> {
        #[serde(borrow)]
        name: Cow<'a, str>,
    }
    serde_json::from_str::<Head<'_>>(reply).is_ok_and(|h| h.metadata.name == name)
}

/// The reply as JSON, checked to be about the object asked for.
fn to_value(
    op: &'static str,
    object: &str,
    reply: &DynamicObject,
    name: &str,
) -> Result<Value, ClusterError> {
    if reply.metadata.name.as_deref() != Some(name) {
        return Err(ClusterError::BadReply {
            op,
            object: object.to_string(),
            reason: format!(
                "the reply is about {:?}, not {name:?}",
                reply.metadata.name.as_deref().unwrap_or("")
            ),
        });
    }
    serde_json::to_value(reply).map_err(|e| ClusterError::BadReply {
        op,
        object: object.to_string(),
        // Line and column only: the message of a serde error may quote data.
        reason: format!(
            "cannot encode the reply as JSON (line {}, column {})",
            e.line(),
            e.column()
        ),
    })
}

/// A request failure, with any secret value in it replaced.
pub(crate) fn request_error(
    op: &'static str,
    object: &str,
    err: kube::Error,
    redactor: &Redactor,
) -> ClusterError {
    if redactor.is_empty() {
        return ClusterError::Request {
            op,
            object: object.to_string(),
            error: err,
        };
    }
    let err = match err {
        kube::Error::Api(mut status) => {
            status.message = redactor.redact(&status.message);
            status.reason = redactor.redact(&status.reason);
            if let Some(d) = status.details.as_mut() {
                for c in &mut d.causes {
                    c.message = redactor.redact(&c.message);
                    c.field = redactor.redact(&c.field);
                }
            }
            kube::Error::Api(status)
        }
        other => other,
    };
    let text = error_chain(&err);
    if redactor.leaks(&text) {
        ClusterError::RequestRedacted {
            op,
            object: object.to_string(),
            message: redactor.redact(&text),
        }
    } else {
        ClusterError::Request {
            op,
            object: object.to_string(),
            error: err,
        }
    }
}

/// A failed API call on one line: for an answer of the API server, its
/// status code, reason and message (and the fields it names), then a hint;
/// for a failure to reach it, the cause. Never a Rust debug dump.
pub fn describe(err: &kube::Error) -> String {
    let one_line = |s: &str| s.split_whitespace().collect::<Vec<_>>().join(" ");
    match err {
        kube::Error::Api(status) => {
            let mut line = format!("{}", status.code);
            if !status.reason.is_empty() {
                line.push_str(&format!(" {}", status.reason));
            }
            if !status.message.is_empty() {
                line.push_str(&format!(": {}", one_line(&status.message)));
            }
            let fields: Vec<&str> = status
                .details
                .iter()
                .flat_map(|d| d.causes.iter())
                .map(|c| c.field.as_str())
                .filter(|f| !f.is_empty() && !status.message.contains(*f))
                .collect();
            if !fields.is_empty() {
                line.push_str(&format!(" (fields: {})", fields.join(", ")));
            }
            line.push_str(&format!("; hint: {}", hint(status)));
            line
        }
        kube::Error::SerdeError(e) => format!(
            "the reply is not what certplane expects (line {}, column {}); is this a Kubernetes API server?",
            e.line(),
            e.column()
        ),
        kube::Error::HyperError(_) | kube::Error::Service(_) => {
            let cause = std::error::Error::source(err)
                .map(|e| one_line(&crate::vault::error_chain(e)))
                .unwrap_or_default();
            format!(
                "cannot reach the API server: {cause}; hint: check the kubeconfig's server address and that the cluster is up"
            )
        }
        kube::Error::Auth(e) => format!(
            "cannot authenticate to the API server: {}; hint: check the kubeconfig's user (e.g. refresh its credentials)",
            one_line(&e.to_string())
        ),
        other => one_line(&other.to_string()),
    }
}

/// What to do about an answer of the API server.
fn hint(status: &kube::core::Status) -> String {
    let kind = status
        .details
        .as_ref()
        .map(|d| d.kind.as_str())
        .unwrap_or_default();
    let name = status
        .details
        .as_ref()
        .map(|d| d.name.as_str())
        .unwrap_or_default();
    match status.code {
        401 => "the API server did not accept certplane's credentials: check the kubeconfig's user, or the pod's ServiceAccount token".into(),
        403 => "certplane's identity is not allowed to do this: grant it in RBAC (deploy/rbac.yaml lists what certplane needs)".into(),
        404 if kind == "namespaces" => format!(
            "namespace {name} does not exist: declare it in the repository (apiVersion: v1, kind: Namespace) or create it first"
        ),
        404 => "the object or its kind is not there: check the apiVersion, kind and namespace".into(),
        409 => "the object changed meanwhile or another field manager holds these fields: run again".into(),
        422 | 400 => "the API server refused the object as written: fix the field it names in the repository".into(),
        429 => "the API server is throttling requests: run again later".into(),
        code if code >= 500 && status.message.contains("webhook") => {
            "an admission webhook failed: check that it runs (e.g. the cert-manager webhook) and run again".into()
        }
        code if code >= 500 => "the API server failed to answer: check the cluster and run again".into(),
        _ => "see the API server's message".into(),
    }
}

/// An error and its causes, as Display and Debug would show them.
fn error_chain(err: &kube::Error) -> String {
    let mut text = format!("{err} {err:?}");
    let mut cur: Option<&dyn std::error::Error> = std::error::Error::source(err);
    while let Some(e) = cur {
        text.push_str(&format!(" {e}"));
        cur = e.source();
    }
    text
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn string_data_moves_into_data_and_wins() {
        let mut s = json!({"kind": "Secret", "data": {"a": "eA==", "b": "eQ=="}, "stringData": {"b": "z", "c": "hello"}});
        string_data_to_data(&mut s);
        assert_eq!(
            s,
            json!({"kind": "Secret", "data": {"a": "eA==", "b": "eg==", "c": "aGVsbG8="}})
        );
    }

    #[test]
    fn identity_reads_the_four_fields_and_names_the_object_in_its_errors() {
        let id = identity(
            &json!({"apiVersion": "cert-manager.io/v1", "kind": "Certificate",
            "metadata": {"name": "web", "namespace": "apps"}}),
        )
        .unwrap();
        assert_eq!(
            (id.api_version.as_str(), id.kind.as_str(), id.name.as_str()),
            ("cert-manager.io/v1", "Certificate", "web")
        );
        assert_eq!(id.namespace.as_deref(), Some("apps"));
        // An empty namespace is none; a key `/` in a name is not a path.
        let id = identity(&json!({"apiVersion": "v1", "kind": "Namespace",
            "metadata": {"name": "apps", "namespace": ""}}))
        .unwrap();
        assert_eq!(id.namespace, None);
        let named = |m: Value| match identity(&m) {
            Err(ClusterError::InvalidManifest { object, reason }) => (object, reason),
            other => panic!("{other:?}"),
        };
        let (object, reason) = named(json!({"apiVersion": "a/b/c", "kind": "Secret",
            "metadata": {"name": "x"}}));
        assert_eq!(object.as_deref(), Some("Secret x"));
        assert!(reason.starts_with("apiVersion must be"), "{reason}");
        let (object, reason) = named(json!({"apiVersion": "v1", "kind": "Secret",
            "metadata": {"name": "x", "namespace": "a/b"}}));
        assert_eq!(object.as_deref(), Some("Secret x"));
        assert_eq!(reason, "metadata.namespace cannot be used in an API path");
        let (object, reason) = named(json!({"apiVersion": "v1", "kind": "Secret",
            "metadata": "x"}));
        assert_eq!(object, None);
        assert_eq!(reason, "metadata.name is missing or not a string");
        let (_, reason) = named(json!({"apiVersion": "v1/", "kind": "Secret",
            "metadata": {"name": "x"}}));
        assert!(reason.starts_with("apiVersion must be"), "{reason}");
    }

    #[test]
    fn odd_secrets_are_left_for_the_server_to_reject() {
        let odd = json!({"kind": "Secret", "data": "nope", "stringData": {"c": "hello"}});
        let mut s = odd.clone();
        string_data_to_data(&mut s);
        assert_eq!(s, odd);
    }
}
