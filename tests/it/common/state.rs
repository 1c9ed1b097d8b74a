//! Builders of desired state and plan changes for the tests that hand a
//! plan to the Vault provider directly (no repository to load).

use certplane::addr::Addr;
use certplane::model::{KeyType, Location};
use certplane::plan::{Action, CaChange, Change};
use certplane::state::{CaIdentity, CaMethod, DesiredCa, DesiredResource, Fields, ResourceKind};
use serde_json::Value;

/// Fields from a JSON object literal.
pub fn fields(v: Value) -> Fields {
    match v {
        Value::Object(m) => m.into_iter().collect(),
        other => panic!("not an object: {other}"),
    }
}

/// A desired resource without secrets or dependencies.
pub fn resource(path: &str, kind: ResourceKind, f: Value) -> DesiredResource {
    DesiredResource {
        addr: Addr::parse_vault(path).unwrap(),
        kind,
        fields: fields(f),
        secrets: Default::default(),
        depends_on: Default::default(),
        origin: Location {
            file: std::path::Path::new("test.yaml").into(),
            line: 1,
            column: 1,
        },
        ca: None,
    }
}

/// A change to a (non-issuer) resource.
pub fn change(
    path: &str,
    kind: ResourceKind,
    action: Action,
    before: Option<Value>,
    after: Option<Value>,
) -> Change {
    Change {
        addr: Addr::parse_vault(path).unwrap(),
        kind,
        action,
        before: before.map(fields),
        after: after.map(fields),
        sensitive: vec![],
        reason: None,
        ca: None,
        depends_on: Default::default(),
        manifest: None,
    }
}

/// A desired CA.
pub fn desired_ca(mount: &str, name: Option<&str>, cn: &str, method: CaMethod) -> DesiredCa {
    DesiredCa {
        mount: mount.into(),
        issuer_name: name.map(str::to_string),
        identity: CaIdentity {
            common_name: cn.into(),
            key_type: Some(KeyType::Ec),
            key_bits: Some(256),
            issued_by: None,
            cert_sha256: None,
        },
        method,
        ttl: None,
        rotate_before: None,
        rotation: Default::default(),
    }
}

/// An issuer change.
pub fn issuer_change(ca: DesiredCa, action: Action, existing_id: Option<&str>) -> Change {
    let path = format!(
        "{}/issuer/{}",
        ca.mount,
        ca.issuer_name.as_deref().unwrap_or("default")
    );
    Change {
        addr: Addr::parse_vault(&path).unwrap(),
        kind: ResourceKind::Issuer,
        action,
        before: None,
        after: Some(Fields::new()),
        sensitive: vec![],
        reason: None,
        ca: Some(Box::new(CaChange {
            desired: ca,
            existing_id: existing_id.map(str::to_string),
            note: None,
            pending_key: None,
            rotation: None,
        })),
        depends_on: Default::default(),
        manifest: None,
    }
}

/// Root generate parameters.
pub fn root_params(cn: &str) -> Fields {
    fields(
        serde_json::json!({"common_name": cn, "key_type": "ec", "key_bits": 256, "ttl": 87600 * 3600}),
    )
}

/// The address of the Issuer `sandbox/vault-issuer` the cluster fixtures
/// declare.
pub fn issuer_addr() -> Addr {
    Addr::from(certplane::addr::KubeRef {
        group: "cert-manager.io".into(),
        version: "v1".into(),
        kind: "Issuer".into(),
        namespace: Some("sandbox".into()),
        name: "vault-issuer".into(),
    })
}
