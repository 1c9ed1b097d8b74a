//! Leader election against a real API server: `make test-cluster` runs it
//! with `CERTPLANE_TEST_KUBECONFIG` naming a kubeconfig (kind, k3d, ...); a
//! plain `cargo test` reports it as ignored.
//!
//! Two electors with different identities on a fresh Lease in `default`:
//! exactly one leads; after the leader releases, the other takes over (one
//! more transition); the Lease is deleted at the end.

use std::panic::AssertUnwindSafe;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use certplane::cluster::Cluster;
use certplane::run::lease::{LeaderElector, LeaseConfig, Role};
use futures::FutureExt;
use k8s_openapi::api::coordination::v1::Lease;
use kube::api::{Api, DeleteParams};

use crate::common::kube::test_cluster_kubeconfig;

fn config(name: &str, identity: &str) -> LeaseConfig {
    LeaseConfig {
        name: name.into(),
        namespace: "default".into(),
        identity: identity.into(),
        lease_duration: Duration::from_secs(15),
        renew_deadline: Duration::from_secs(10),
        retry_period: Duration::from_secs(2),
    }
}

#[tokio::test]
#[ignore = "needs a test cluster: set CERTPLANE_TEST_KUBECONFIG and run `make test-cluster`"]
async fn one_leader_and_the_other_takes_over_after_release() {
    let path = test_cluster_kubeconfig();
    let cluster = Cluster::connect_kubeconfig(&path, None)
        .await
        .expect("connect")
        .with_timeout(Duration::from_secs(10));
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    let name = format!("certplane-test-{}", nanos % 1_000_000_000_000);
    let leases: Api<Lease> = Api::namespaced(cluster.client().clone(), "default");

    let outcome = AssertUnwindSafe(flow(&cluster, &leases, &name))
        .catch_unwind()
        .await;
    let cleanup = leases.delete(&name, &DeleteParams::default()).await;
    if let Err(panic) = outcome {
        std::panic::resume_unwind(panic);
    }
    cleanup.expect("delete the test Lease");
}

async fn flow(cluster: &Cluster, leases: &Api<Lease>, name: &str) {
    let mut a = LeaderElector::new(cluster.clone(), config(name, "replica-a"));
    let mut b = LeaderElector::new(cluster.clone(), config(name, "replica-b"));

    // Both try at once: exactly one leads, the other follows.
    let (ra, rb) = tokio::join!(a.try_acquire_or_renew(), b.try_acquire_or_renew());
    let (ra, rb) = (ra.expect("a tries"), rb.expect("b tries"));
    assert_eq!(
        [&ra, &rb].iter().filter(|r| ***r == Role::Leader).count(),
        1,
        "a: {ra:?}, b: {rb:?}"
    );
    let (mut leader, mut follower, leader_id, follower_id) = if ra == Role::Leader {
        (a, b, "replica-a", "replica-b")
    } else {
        (b, a, "replica-b", "replica-a")
    };
    // The next round is unambiguous: the leader renews, the other follows it.
    assert_eq!(leader.try_acquire_or_renew().await.unwrap(), Role::Leader);
    assert_eq!(
        follower.try_acquire_or_renew().await.unwrap(),
        Role::Follower(Some(leader_id.into()))
    );
    let stored = leases.get(name).await.expect("the lease exists");
    let spec = stored.spec.expect("spec");
    assert_eq!(spec.holder_identity.as_deref(), Some(leader_id));
    assert_eq!(spec.lease_duration_seconds, Some(15));
    let transitions = spec.lease_transitions.unwrap_or(0);

    // The leader releases; the other takes over at once (no 15 s wait).
    assert!(leader.release().await.expect("release"));
    let released = leases.get(name).await.unwrap().spec.unwrap();
    assert_eq!(released.holder_identity, None);
    assert_eq!(follower.try_acquire_or_renew().await.unwrap(), Role::Leader);
    assert_eq!(
        leader.try_acquire_or_renew().await.unwrap(),
        Role::Follower(Some(follower_id.into()))
    );
    let spec = leases.get(name).await.unwrap().spec.unwrap();
    assert_eq!(spec.holder_identity.as_deref(), Some(follower_id));
    assert_eq!(spec.lease_transitions, Some(transitions + 1));
    // Releasing twice is harmless; a follower has nothing to release.
    assert!(follower.release().await.unwrap());
    assert!(!follower.release().await.unwrap());
    assert!(!leader.release().await.unwrap());
}
