//! Leader election at the HTTP level: a real `kube::Client` over a scripted
//! API server that checks every request's method, path and body.

use crate::common::fake;

use std::time::Duration;

use certplane::cluster::ClusterError;
use certplane::run::lease::{LeaderElector, Leadership, LeaseConfig, Role};
use fake::{Step, cluster, finish};
use k8s_openapi::jiff::{SignedDuration, Timestamp};
use serde_json::{Value, json};

const LEASES: &str = "/apis/coordination.k8s.io/v1/namespaces/certplane-system/leases";
const LEASE: &str =
    "/apis/coordination.k8s.io/v1/namespaces/certplane-system/leases/certplane-leader";
const ME: &str = "certplane-0_00000001";
const OTHER: &str = "certplane-1_00000002";

fn config() -> LeaseConfig {
    LeaseConfig {
        name: "certplane-leader".into(),
        namespace: "certplane-system".into(),
        identity: ME.into(),
        lease_duration: Duration::from_secs(15),
        renew_deadline: Duration::from_secs(10),
        retry_period: Duration::from_millis(50),
    }
}

/// A time `secs` from now as the API server writes a MicroTime.
fn micro(secs: i64) -> String {
    let t = Timestamp::now() + SignedDuration::from_secs(secs);
    t.strftime("%Y-%m-%dT%H:%M:%S%.6fZ").to_string()
}

/// A stored Lease held by `holder`, renewed `renewed` seconds from now.
fn stored(holder: &str, renewed: i64, rv: &str, transitions: i32) -> Value {
    json!({
        "apiVersion": "coordination.k8s.io/v1", "kind": "Lease",
        "metadata": {"name": "certplane-leader", "namespace": "certplane-system",
                     "resourceVersion": rv, "uid": "6f1c8f0e-0000-4000-8000-000000000009"},
        "spec": {"holderIdentity": holder, "leaseDurationSeconds": 15,
                 "acquireTime": micro(-600), "renewTime": micro(renewed),
                 "leaseTransitions": transitions}
    })
}

/// The request body, with the server's additions, as the stored reply.
fn echo(body: &Value, rv: &str) -> Value {
    let mut v = body.clone();
    v["metadata"]["resourceVersion"] = json!(rv);
    v
}

fn conflict() -> Value {
    json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
           "message": "Operation cannot be fulfilled on leases.coordination.k8s.io \"certplane-leader\": the object has been modified; please apply your changes to the latest version and try again",
           "reason": "Conflict", "details": {"name": "certplane-leader", "group": "coordination.k8s.io", "kind": "leases"},
           "code": 409})
}

fn holder(body: &Value) -> Option<&str> {
    body["spec"]["holderIdentity"].as_str()
}

/// A renewTime within a few seconds of now.
fn assert_fresh(body: &Value) {
    let t: Timestamp = body["spec"]["renewTime"]
        .as_str()
        .expect("renewTime")
        .parse()
        .expect("a timestamp");
    let age = Timestamp::now().duration_since(t).as_secs_f64().abs();
    assert!(age < 5.0, "renewTime {t} is {age}s away from now");
}

#[tokio::test]
async fn an_absent_lease_is_created_with_my_identity() {
    let (c, task) = cluster(vec![
        Step::get(LEASE).not_found("leases.coordination.k8s.io", "certplane-leader"),
        Step::new("POST", LEASES)
            .body(|b| {
                assert_eq!(b["kind"], "Lease");
                assert_eq!(b["metadata"]["name"], "certplane-leader");
                assert_eq!(b["metadata"]["namespace"], "certplane-system");
                assert!(b["metadata"].get("resourceVersion").is_none(), "{b}");
                assert_eq!(holder(b), Some(ME));
                assert_eq!(b["spec"]["leaseDurationSeconds"], 15);
                assert_eq!(b["spec"]["leaseTransitions"], 0);
                assert_fresh(b);
            })
            .reply(201, stored(ME, 0, "7", 0)),
    ]);
    let mut e = LeaderElector::new(c, config());
    let role = e.try_acquire_or_renew().await;
    finish(task).await;
    assert_eq!(role.unwrap(), Role::Leader);
    assert!(e.holds());
}

#[tokio::test]
async fn my_lease_is_renewed_with_its_resource_version() {
    let (c, task) = cluster(vec![
        Step::get(LEASE).reply(200, stored(ME, -5, "12", 3)),
        Step::new("PUT", LEASE)
            .body(|b| {
                assert_eq!(b["metadata"]["resourceVersion"], "12");
                assert_eq!(holder(b), Some(ME));
                assert_eq!(
                    b["spec"]["leaseTransitions"], 3,
                    "a renewal is no transition"
                );
                assert_fresh(b);
            })
            .reply(200, stored(ME, 0, "13", 3)),
    ]);
    let mut e = LeaderElector::new(c, config());
    let role = e.try_acquire_or_renew().await;
    finish(task).await;
    assert_eq!(role.unwrap(), Role::Leader);
}

#[tokio::test]
async fn a_fresh_lease_of_another_is_followed_without_a_write() {
    let (c, task) = cluster(vec![
        Step::get(LEASE).reply(200, stored(OTHER, -3, "12", 1)),
    ]);
    let mut e = LeaderElector::new(c, config());
    let role = e.try_acquire_or_renew().await;
    finish(task).await;
    assert_eq!(role.unwrap(), Role::Follower(Some(OTHER.into())));
    assert!(!e.holds());
}

#[tokio::test]
async fn an_expired_lease_is_taken_over_with_one_more_transition() {
    let (c, task) = cluster(vec![
        Step::get(LEASE).reply(200, stored(OTHER, -20, "12", 4)),
        Step::new("PUT", LEASE)
            .body(|b| {
                assert_eq!(b["metadata"]["resourceVersion"], "12");
                assert_eq!(holder(b), Some(ME));
                assert_eq!(b["spec"]["leaseTransitions"], 5);
                assert_fresh(b);
                assert_eq!(b["spec"]["acquireTime"], b["spec"]["renewTime"]);
            })
            .reply(200, stored(ME, 0, "13", 5)),
    ]);
    let mut e = LeaderElector::new(c, config());
    let role = e.try_acquire_or_renew().await;
    finish(task).await;
    assert_eq!(role.unwrap(), Role::Leader);
}

#[tokio::test]
async fn a_conflict_on_takeover_means_another_won_and_i_follow() {
    let (c, task) = cluster(vec![
        Step::get(LEASE).reply(200, stored(OTHER, -20, "12", 4)),
        Step::new("PUT", LEASE)
            .body(|b| assert_eq!(b["metadata"]["resourceVersion"], "12"))
            .reply(409, conflict()),
    ]);
    let mut e = LeaderElector::new(c, config());
    let role = e.try_acquire_or_renew().await;
    finish(task).await;
    assert_eq!(role.unwrap(), Role::Follower(None));
    assert!(!e.holds());
}

#[tokio::test]
async fn a_conflict_on_create_means_another_won_and_i_follow() {
    let mut exists = conflict();
    exists["reason"] = json!("AlreadyExists");
    let (c, task) = cluster(vec![
        Step::get(LEASE).not_found("leases.coordination.k8s.io", "certplane-leader"),
        Step::new("POST", LEASES).reply(409, exists),
    ]);
    let mut e = LeaderElector::new(c, config());
    let role = e.try_acquire_or_renew().await;
    finish(task).await;
    assert_eq!(role.unwrap(), Role::Follower(None));
}

#[tokio::test]
async fn the_held_lease_is_released_on_shutdown() {
    let (c, task) = cluster(vec![
        Step::get(LEASE).reply(200, stored(ME, -5, "12", 3)),
        Step::new("PUT", LEASE)
            .body(|b| echo_check(b, "12"))
            .reply(200, stored(ME, 0, "13", 3)),
        // Release: the resourceVersion of the renewal's reply, no holder.
        Step::new("PUT", LEASE)
            .body(|b| {
                assert_eq!(b["metadata"]["resourceVersion"], "13");
                assert_eq!(holder(b), None, "{b}");
                assert_eq!(b["spec"]["leaseDurationSeconds"], 1);
            })
            .reply(200, echo(&stored("", 0, "13", 3), "14")),
    ]);
    let mut e = LeaderElector::new(c, config());
    assert_eq!(e.try_acquire_or_renew().await.unwrap(), Role::Leader);
    let released = e.release().await;
    // Nothing more to release.
    let again = e.release().await;
    finish(task).await;
    assert!(released.unwrap());
    assert!(!again.unwrap());
}

fn echo_check(b: &Value, rv: &str) {
    assert_eq!(b["metadata"]["resourceVersion"], rv);
    assert_eq!(holder(b), Some(ME));
}

#[tokio::test]
async fn run_publishes_leadership_then_releases_when_stopped() {
    let (c, task) = cluster(vec![
        Step::get(LEASE).reply(200, stored(OTHER, -1, "12", 1)),
        Step::get(LEASE).reply(200, stored(OTHER, -20, "12", 1)),
        Step::new("PUT", LEASE)
            .body(|b| assert_eq!(holder(b), Some(ME)))
            .reply(200, stored(ME, 0, "13", 2)),
        Step::new("PUT", LEASE)
            .body(|b| {
                assert_eq!(b["metadata"]["resourceVersion"], "13");
                assert_eq!(holder(b), None);
            })
            .reply(200, echo(&stored("", 0, "13", 2), "14")),
    ]);
    let (tx, mut rx) = tokio::sync::watch::channel(Leadership::Pending);
    let (stop_tx, stop) = tokio::sync::watch::channel(false);
    let config = LeaseConfig {
        retry_period: Duration::from_millis(300),
        ..config()
    };
    let elector = tokio::spawn(LeaderElector::new(c, config).run(tx, stop));
    let first = rx
        .wait_for(|l| *l != Leadership::Pending)
        .await
        .unwrap()
        .clone();
    assert_eq!(first, Leadership::Follower(Some(OTHER.into())));
    let led = rx
        .wait_for(|l| matches!(l, Leadership::Leader { .. }))
        .await
        .unwrap()
        .clone();
    assert!(led.is_leader(std::time::Instant::now()));
    // Stop before the next attempt (300 ms later) can run.
    stop_tx.send(true).unwrap();
    tokio::time::timeout(Duration::from_secs(5), elector)
        .await
        .expect("the elector stops")
        .unwrap();
    finish(task).await;
    assert_eq!(*rx.borrow(), Leadership::Follower(None));
}

#[tokio::test]
async fn a_garbage_reply_is_an_error_not_a_panic() {
    let (c, task) = cluster(vec![
        Step::get(LEASE).reply_text(200, "<html>proxy login</html>"),
        Step::get(LEASE).reply(
            500,
            json!({"kind": "Status", "code": 500, "message": "etcd down"}),
        ),
        Step::get(LEASE).reply(
            200,
            json!({"apiVersion": "coordination.k8s.io/v1", "kind": "Lease",
                                          "metadata": {"name": "someone-else"}}),
        ),
    ]);
    let mut e = LeaderElector::new(c, config());
    let a = e.try_acquire_or_renew().await;
    let b = e.try_acquire_or_renew().await;
    let d = e.try_acquire_or_renew().await;
    finish(task).await;
    assert!(
        matches!(a, Err(ClusterError::Request { op: "get", .. })),
        "{a:?}"
    );
    assert!(
        matches!(b, Err(ClusterError::Request { op: "get", .. })),
        "{b:?}"
    );
    assert!(
        matches!(d, Err(ClusterError::BadReply { op: "get", .. })),
        "{d:?}"
    );
    assert!(!e.holds());
}

#[tokio::test]
async fn a_hung_api_server_times_out() {
    let (c, task) = cluster(vec![Step::get(LEASE).hang()]);
    let mut e = LeaderElector::new(c.with_timeout(Duration::from_millis(200)), config());
    let r = tokio::time::timeout(Duration::from_secs(5), e.try_acquire_or_renew())
        .await
        .expect("bounded by the cluster's time limit");
    assert!(
        matches!(r, Err(ClusterError::Timeout { op: "get", .. })),
        "{r:?}"
    );
    task.abort();
}
