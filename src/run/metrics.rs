//! What the loop reports: the readiness reason and the Prometheus metrics,
//! shared between the loop (writer) and the HTTP server (reader).
//!
//! The loop writes plain values into [`Status`]; `/metrics` is the
//! [`prometheus_client`] registry made by [`registry`], whose one collector
//! reads the status at every scrape, encoded by [`encode`] in the Prometheus
//! text format 0.0.4 (the crate's `prometheus_text` encoder: counters get
//! their `_total` suffix, label values are escaped, histogram buckets are
//! cumulative with `+Inf`). The families, their types, labels and help texts
//! are those the README lists.

use std::collections::BTreeMap;
use std::fmt;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeGaugeValue, EncodeMetric};
use prometheus_client::metrics::MetricType;
use prometheus_client::metrics::counter::ConstCounter;
use prometheus_client::metrics::gauge::ConstGauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;

use crate::plan::Plan;

/// Upper bounds (seconds) of the reconcile duration histogram.
const BUCKETS: [f64; 10] = [0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0];

/// The `Content-Type` of [`encode`]'s text.
pub const CONTENT_TYPE: &str = prometheus_client::encoding::prometheus_text::CONTENT_TYPE;

/// The loop's state as the HTTP endpoints show it.
#[derive(Debug)]
pub struct Status {
    /// `None`: ready; else the one-line reason `/readyz` gives.
    pub not_ready: Option<String>,
    /// Reconcile durations.
    duration: Histogram,
    /// Reconciles by result.
    pub success_total: u64,
    /// Failed reconciles (fetch, validation, signature, Vault, cluster).
    pub failure_total: u64,
    /// Commits refused (validation or signature).
    pub rejected_total: u64,
    /// The commit in force (last applied successfully).
    pub last_applied_commit: Option<String>,
    /// Objects of the last plan by action.
    pub objects: BTreeMap<&'static str, u64>,
    /// Changes made without a new commit (drift repaired).
    pub drift_repairs_total: u64,
    /// Vault logins made by the loop.
    pub vault_logins_total: u64,
    /// Token renewals made by the loop.
    pub vault_token_renewals_total: u64,
    /// notAfter (Unix seconds) of each managed CA issuer, by (mount, issuer).
    pub ca_not_after: BTreeMap<(String, String), i64>,
    /// The rotation stage of each managed CA issuer at the last plan, by
    /// (mount, issuer name in the plan): 0 none, 1 the new issuer is made
    /// or published beside the old one, 2 the switch and retirement, 3 a
    /// retired issuer waits for deletion.
    pub ca_rotation_stage: BTreeMap<(String, String), i64>,
    /// Whether this replica acted as the leader at the last reconcile
    /// (`Some(true)` without leader election; `None`: not started).
    pub leader: Option<bool>,
    /// When the reconcile in flight started (`None`: none is running).
    pub reconcile_started: Option<Instant>,
    /// How long a reconcile may run before the loop is reported not ready
    /// (`--reconcile-timeout`, default the interval). Zero: no deadline.
    pub reconcile_deadline: Duration,
}

impl Default for Status {
    fn default() -> Status {
        Status {
            not_ready: None,
            duration: Histogram::new(BUCKETS),
            success_total: 0,
            failure_total: 0,
            rejected_total: 0,
            last_applied_commit: None,
            objects: BTreeMap::new(),
            drift_repairs_total: 0,
            vault_logins_total: 0,
            vault_token_renewals_total: 0,
            ca_not_after: BTreeMap::new(),
            ca_rotation_stage: BTreeMap::new(),
            leader: None,
            reconcile_started: None,
            reconcile_deadline: Duration::ZERO,
        }
    }
}

/// A handle both sides share.
pub type Shared = Arc<Mutex<Status>>;

/// The status behind `shared`, also after a writer panicked while holding it
/// (the values are plain numbers: still worth serving).
pub fn lock(shared: &Shared) -> MutexGuard<'_, Status> {
    shared
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// The label set of one sample: `(name, value)` pairs, none for a family
/// without labels.
type Labels<'a> = Vec<(&'static str, &'a str)>;

impl Status {
    /// Why the loop is not ready at `now` (`None`: ready). A reconcile that
    /// has run past its deadline (Vault or the cluster hanging) makes it
    /// not ready at once, without waiting for the reconcile to end.
    pub fn readiness(&self, now: Instant) -> Option<String> {
        if let Some(started) = self.reconcile_started
            && !self.reconcile_deadline.is_zero()
        {
            let running = now.saturating_duration_since(started);
            if running > self.reconcile_deadline {
                return Some(format!(
                    "the reconcile in flight has run {}s, over its deadline of {}s \
                     (--reconcile-timeout); vault, the cluster or git is not answering",
                    running.as_secs(),
                    secs(self.reconcile_deadline)
                ));
            }
        }
        self.not_ready.clone()
    }

    /// Records one reconcile's duration.
    pub fn observe_duration(&mut self, secs: f64) {
        self.duration.observe(secs);
    }

    /// Counts the objects of a plan by action.
    pub fn set_plan(&mut self, plan: &Plan) {
        self.objects = ["create", "update", "replace", "delete", "unchanged"]
            .into_iter()
            .map(|k| (k, 0))
            .collect();
        for c in &plan.changes {
            *self.objects.entry(c.action.label()).or_default() += 1;
        }
        self.ca_rotation_stage = plan
            .changes
            .iter()
            .filter_map(|c| {
                let ca = c.ca.as_ref()?;
                let issuer = c.addr.as_vault()?.name().unwrap_or("default").to_string();
                let stage = ca.rotation.as_ref().map_or(0, |r| i64::from(r.stage()));
                Some(((ca.desired.mount.clone(), issuer), stage))
            })
            .collect();
    }

    /// Writes every metric family, as of `now` (for `certplane_ready`).
    fn encode_families(&self, e: &mut DescriptorEncoder, now: Instant) -> fmt::Result {
        self.duration.encode(e.encode_descriptor(
            "certplane_reconcile_duration_seconds",
            "Duration of one reconcile (fetch, validate, plan, apply).",
            None,
            MetricType::Histogram,
        )?)?;
        counter(
            e,
            "certplane_reconcile",
            "Reconciles by result.",
            [
                (vec![("result", "success")], self.success_total),
                (vec![("result", "failure")], self.failure_total),
            ],
        )?;
        counter(
            e,
            "certplane_rejected_commits",
            "Commits refused by validation or signature verification.",
            [(vec![], self.rejected_total)],
        )?;
        let commit = self.last_applied_commit.as_deref();
        gauge(
            e,
            "certplane_last_applied_commit_info",
            "The commit in force.",
            commit.map(|c| (vec![("commit", c)], 1)),
        )?;
        gauge(
            e,
            "certplane_objects",
            "Objects of the last plan by action.",
            self.objects.iter().map(|(k, v)| (vec![("action", *k)], *v)),
        )?;
        counter(
            e,
            "certplane_drift_repairs",
            "Objects changed to repair drift (no new commit).",
            [(vec![], self.drift_repairs_total)],
        )?;
        counter(
            e,
            "certplane_vault_logins",
            "Vault logins made.",
            [(vec![], self.vault_logins_total)],
        )?;
        counter(
            e,
            "certplane_vault_token_renewals",
            "Vault token renewals made.",
            [(vec![], self.vault_token_renewals_total)],
        )?;
        gauge(
            e,
            "certplane_ca_not_after_seconds",
            "notAfter (Unix seconds) of each managed CA issuer.",
            self.ca_not_after.iter().map(|((mount, issuer), t)| {
                (
                    vec![("mount", mount.as_str()), ("issuer", issuer.as_str())],
                    *t,
                )
            }),
        )?;
        gauge(
            e,
            "certplane_ca_rotation_stage",
            "Rotation stage of each managed CA issuer at the last plan: 0 none, 1 new issuer \
             published beside the old, 2 default switched and old retired, 3 retired issuer \
             waiting for deletion.",
            self.ca_rotation_stage.iter().map(|((mount, issuer), t)| {
                (
                    vec![("mount", mount.as_str()), ("issuer", issuer.as_str())],
                    *t,
                )
            }),
        )?;
        if let Some(leader) = self.leader {
            gauge(
                e,
                "certplane_leader",
                "1 when this replica is the leader (it plans and applies), 0 when it follows.",
                [(vec![], i64::from(leader))],
            )?;
        }
        let ready = self.readiness(now).is_none();
        gauge(
            e,
            "certplane_ready",
            "1 when /readyz answers 200.",
            [(vec![], i64::from(ready))],
        )
    }
}

/// A counter family (`name` without `_total`: the encoder appends it).
fn counter<'a>(
    e: &mut DescriptorEncoder,
    name: &str,
    help: &str,
    samples: impl IntoIterator<Item = (Labels<'a>, u64)>,
) -> fmt::Result {
    let samples = samples.into_iter().map(|(l, v)| (l, ConstCounter::new(v)));
    family(e, name, help, MetricType::Counter, samples)
}

/// A gauge family.
fn gauge<'a, N: EncodeGaugeValue>(
    e: &mut DescriptorEncoder,
    name: &str,
    help: &str,
    samples: impl IntoIterator<Item = (Labels<'a>, N)>,
) -> fmt::Result {
    let samples = samples.into_iter().map(|(l, v)| (l, ConstGauge::new(v)));
    family(e, name, help, MetricType::Gauge, samples)
}

/// `# HELP` and `# TYPE` of one family (also when it has no sample yet),
/// then its samples.
fn family<'a, M: EncodeMetric>(
    e: &mut DescriptorEncoder,
    name: &str,
    help: &str,
    metric_type: MetricType,
    samples: impl IntoIterator<Item = (Labels<'a>, M)>,
) -> fmt::Result {
    let mut family = e.encode_descriptor(name, help, None, metric_type)?;
    for (labels, metric) in samples {
        metric.encode(family.encode_family(&labels)?)?;
    }
    Ok(())
}

/// The collector `/metrics` reads: the loop's status at scrape time.
#[derive(Debug)]
struct StatusCollector(Shared);

impl Collector for StatusCollector {
    fn encode(&self, mut encoder: DescriptorEncoder) -> fmt::Result {
        lock(&self.0).encode_families(&mut encoder, Instant::now())
    }
}

/// The registry `/metrics` serves: every family of `status`.
pub fn registry(status: Shared) -> Registry {
    let mut registry = Registry::default();
    registry.register_collector(Box::new(StatusCollector(status)));
    registry
}

/// The Prometheus text exposition (format 0.0.4) of `registry`. Call it
/// without holding the status lock: the collector takes it.
pub fn encode(registry: &Registry) -> Result<String, fmt::Error> {
    let mut text = String::new();
    prometheus_client::encoding::prometheus_text::encode(&mut text, registry)?;
    Ok(text)
}

/// Seconds, with a fraction only when there is one.
fn secs(d: Duration) -> String {
    if d.subsec_millis() == 0 {
        d.as_secs().to_string()
    } else {
        format!("{:.1}", d.as_secs_f64())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The exposition of `status`, as `/metrics` serves it.
    fn render(status: Status) -> String {
        encode(&registry(Arc::new(Mutex::new(status)))).expect("encodes")
    }

    #[test]
    fn an_overrun_reconcile_is_not_ready_before_it_ends() {
        let t0 = Instant::now();
        let mut s = Status {
            reconcile_deadline: Duration::from_secs(2),
            reconcile_started: Some(t0),
            ..Status::default()
        };
        assert_eq!(s.readiness(t0 + Duration::from_secs(1)), None);
        let why = s.readiness(t0 + Duration::from_secs(3)).unwrap();
        assert!(why.contains("run 3s, over its deadline of 2s"), "{why}");
        // Ended: the last result decides again.
        s.reconcile_started = None;
        assert_eq!(s.readiness(t0 + Duration::from_secs(3)), None);
        // No deadline configured.
        s.reconcile_started = Some(t0);
        s.reconcile_deadline = Duration::ZERO;
        assert_eq!(s.readiness(t0 + Duration::from_secs(99)), None);
    }

    #[test]
    fn histogram_is_cumulative_and_labels_are_escaped() {
        let mut s = Status::default();
        s.observe_duration(0.2);
        s.observe_duration(3.0);
        s.ca_not_after.insert(("pki".into(), "a\"b".into()), 42);
        let text = render(s);
        assert!(text.contains("certplane_reconcile_duration_seconds_bucket{le=\"0.25\"} 1\n"));
        assert!(text.contains("certplane_reconcile_duration_seconds_bucket{le=\"5\"} 2\n"));
        assert!(text.contains("certplane_reconcile_duration_seconds_count 2\n"));
        assert!(text.contains("issuer=\"a\\\"b\"} 42\n"), "{text}");
        assert!(!text.contains("certplane_leader"), "{text}");
        let leader = |l| {
            render(Status {
                leader: Some(l),
                ..Status::default()
            })
        };
        assert!(leader(false).contains("\ncertplane_leader 0\n"));
        assert!(leader(true).contains("\ncertplane_leader 1\n"));
    }

    /// A status with a value in every family.
    fn busy() -> Status {
        let mut s = Status::default();
        s.observe_duration(0.2);
        s.observe_duration(3.5);
        s.success_total = 3;
        s.failure_total = 1;
        s.rejected_total = 1;
        s.last_applied_commit = Some("0123456789abcdef0123456789abcdef01234567".into());
        s.objects = [
            ("create", 1),
            ("update", 2),
            ("replace", 0),
            ("delete", 0),
            ("unchanged", 7),
        ]
        .into_iter()
        .collect();
        s.drift_repairs_total = 2;
        s.vault_logins_total = 1;
        s.vault_token_renewals_total = 4;
        s.ca_not_after
            .insert(("pki".into(), "homelab-root".into()), 2_000_000_000);
        s.ca_not_after
            .insert(("pki_int".into(), "a\"b\\c\nd".into()), 1_900_000_000);
        s.ca_rotation_stage
            .insert(("pki".into(), "homelab-root".into()), 0);
        s.ca_rotation_stage
            .insert(("pki_int".into(), "homelab-int".into()), 2);
        s.leader = Some(true);
        s
    }

    /// What the hand-written encoder served for [`busy`] before
    /// prometheus-client: the exposition is the same to the byte.
    const BEFORE: &str = r#"# HELP certplane_reconcile_duration_seconds Duration of one reconcile (fetch, validate, plan, apply).
# TYPE certplane_reconcile_duration_seconds histogram
certplane_reconcile_duration_seconds_bucket{le="0.1"} 0
certplane_reconcile_duration_seconds_bucket{le="0.25"} 1
certplane_reconcile_duration_seconds_bucket{le="0.5"} 1
certplane_reconcile_duration_seconds_bucket{le="1"} 1
certplane_reconcile_duration_seconds_bucket{le="2.5"} 1
certplane_reconcile_duration_seconds_bucket{le="5"} 2
certplane_reconcile_duration_seconds_bucket{le="10"} 2
certplane_reconcile_duration_seconds_bucket{le="30"} 2
certplane_reconcile_duration_seconds_bucket{le="60"} 2
certplane_reconcile_duration_seconds_bucket{le="300"} 2
certplane_reconcile_duration_seconds_bucket{le="+Inf"} 2
certplane_reconcile_duration_seconds_sum 3.7
certplane_reconcile_duration_seconds_count 2
# HELP certplane_reconcile_total Reconciles by result.
# TYPE certplane_reconcile_total counter
certplane_reconcile_total{result="success"} 3
certplane_reconcile_total{result="failure"} 1
# HELP certplane_rejected_commits_total Commits refused by validation or signature verification.
# TYPE certplane_rejected_commits_total counter
certplane_rejected_commits_total 1
# HELP certplane_last_applied_commit_info The commit in force.
# TYPE certplane_last_applied_commit_info gauge
certplane_last_applied_commit_info{commit="0123456789abcdef0123456789abcdef01234567"} 1
# HELP certplane_objects Objects of the last plan by action.
# TYPE certplane_objects gauge
certplane_objects{action="create"} 1
certplane_objects{action="delete"} 0
certplane_objects{action="replace"} 0
certplane_objects{action="unchanged"} 7
certplane_objects{action="update"} 2
# HELP certplane_drift_repairs_total Objects changed to repair drift (no new commit).
# TYPE certplane_drift_repairs_total counter
certplane_drift_repairs_total 2
# HELP certplane_vault_logins_total Vault logins made.
# TYPE certplane_vault_logins_total counter
certplane_vault_logins_total 1
# HELP certplane_vault_token_renewals_total Vault token renewals made.
# TYPE certplane_vault_token_renewals_total counter
certplane_vault_token_renewals_total 4
# HELP certplane_ca_not_after_seconds notAfter (Unix seconds) of each managed CA issuer.
# TYPE certplane_ca_not_after_seconds gauge
certplane_ca_not_after_seconds{mount="pki",issuer="homelab-root"} 2000000000
certplane_ca_not_after_seconds{mount="pki_int",issuer="a\"b\\c\nd"} 1900000000
# HELP certplane_ca_rotation_stage Rotation stage of each managed CA issuer at the last plan: 0 none, 1 new issuer published beside the old, 2 default switched and old retired, 3 retired issuer waiting for deletion.
# TYPE certplane_ca_rotation_stage gauge
certplane_ca_rotation_stage{mount="pki",issuer="homelab-root"} 0
certplane_ca_rotation_stage{mount="pki_int",issuer="homelab-int"} 2
# HELP certplane_leader 1 when this replica is the leader (it plans and applies), 0 when it follows.
# TYPE certplane_leader gauge
certplane_leader 1
# HELP certplane_ready 1 when /readyz answers 200.
# TYPE certplane_ready gauge
certplane_ready 1
"#;

    #[test]
    fn the_plan_sets_the_rotation_stage_of_each_issuer() {
        use crate::addr::VaultAddr;
        use crate::plan::{Action, CaChange, Change, Rotation};
        let ca = |mount: &str, name: &str, rotation: Option<Rotation>| Change {
            addr: VaultAddr::issuer(mount, Some(name)).into(),
            kind: crate::state::ResourceKind::Issuer,
            action: Action::NoOp,
            before: None,
            after: None,
            sensitive: vec![],
            reason: None,
            ca: Some(Box::new(CaChange {
                desired: crate::state::DesiredCa {
                    mount: mount.into(),
                    issuer_name: Some(name.into()),
                    identity: crate::state::CaIdentity {
                        common_name: "CA".into(),
                        key_type: None,
                        key_bits: None,
                        issued_by: None,
                        cert_sha256: None,
                    },
                    method: crate::state::CaMethod::Root {
                        params: Default::default(),
                    },
                    ttl: None,
                    rotate_before: None,
                    rotation: Default::default(),
                },
                existing_id: None,
                note: None,
                pending_key: None,
                rotation,
            })),
            depends_on: Default::default(),
            manifest: None,
        };
        let plan = Plan {
            changes: vec![
                ca("pki", "root", None),
                ca(
                    "pki_int",
                    "int",
                    Some(Rotation::Overlap {
                        old: "a".into(),
                        until: 1,
                    }),
                ),
                ca(
                    "pki_int",
                    "int-0123abcd",
                    Some(Rotation::Expiring {
                        id: "0123abcd".into(),
                        after: 2,
                    }),
                ),
            ],
            ..Plan::default()
        };
        let mut s = Status::default();
        s.set_plan(&plan);
        let text = render(s);
        for line in [
            "certplane_ca_rotation_stage{mount=\"pki\",issuer=\"root\"} 0\n",
            "certplane_ca_rotation_stage{mount=\"pki_int\",issuer=\"int\"} 1\n",
            "certplane_ca_rotation_stage{mount=\"pki_int\",issuer=\"int-0123abcd\"} 3\n",
        ] {
            assert!(text.contains(line), "{line}\n{text}");
        }
    }

    #[test]
    fn the_exposition_is_the_one_served_before_prometheus_client() {
        assert_eq!(render(busy()), BEFORE);
    }

    /// Every family certplane serves: name, type, help, label names (the
    /// README's list).
    const FAMILIES: [(&str, &str, &str, &[&str]); 12] = [
        (
            "certplane_reconcile_duration_seconds",
            "histogram",
            "Duration of one reconcile (fetch, validate, plan, apply).",
            &[],
        ),
        (
            "certplane_reconcile_total",
            "counter",
            "Reconciles by result.",
            &["result"],
        ),
        (
            "certplane_rejected_commits_total",
            "counter",
            "Commits refused by validation or signature verification.",
            &[],
        ),
        (
            "certplane_last_applied_commit_info",
            "gauge",
            "The commit in force.",
            &["commit"],
        ),
        (
            "certplane_objects",
            "gauge",
            "Objects of the last plan by action.",
            &["action"],
        ),
        (
            "certplane_drift_repairs_total",
            "counter",
            "Objects changed to repair drift (no new commit).",
            &[],
        ),
        (
            "certplane_vault_logins_total",
            "counter",
            "Vault logins made.",
            &[],
        ),
        (
            "certplane_vault_token_renewals_total",
            "counter",
            "Vault token renewals made.",
            &[],
        ),
        (
            "certplane_ca_not_after_seconds",
            "gauge",
            "notAfter (Unix seconds) of each managed CA issuer.",
            &["mount", "issuer"],
        ),
        (
            "certplane_ca_rotation_stage",
            "gauge",
            "Rotation stage of each managed CA issuer at the last plan: 0 none, 1 new issuer \
             published beside the old, 2 default switched and old retired, 3 retired issuer \
             waiting for deletion.",
            &["mount", "issuer"],
        ),
        (
            "certplane_leader",
            "gauge",
            "1 when this replica is the leader (it plans and applies), 0 when it follows.",
            &[],
        ),
        (
            "certplane_ready",
            "gauge",
            "1 when /readyz answers 200.",
            &[],
        ),
    ];

    #[test]
    fn the_exposition_parses_and_has_every_family_with_its_type() {
        let parsed = exposition::parse(&render(busy())).unwrap_or_else(|e| panic!("{e}"));
        let names: Vec<&str> = parsed.iter().map(|f| f.name.as_str()).collect();
        let expected: Vec<&str> = FAMILIES.iter().map(|f| f.0).collect();
        assert_eq!(names, expected);
        for (family, (name, kind, help, label_names)) in parsed.iter().zip(FAMILIES) {
            assert_eq!(
                (family.kind.as_str(), family.help.as_str()),
                (kind, help),
                "{name}"
            );
            assert!(!family.samples.is_empty(), "{name} has no sample");
            for sample in &family.samples {
                let mut names: Vec<&str> = sample.labels.iter().map(|l| l.0.as_str()).collect();
                names.retain(|n| *n != "le");
                assert_eq!(names, label_names, "{name}: {sample:?}");
            }
        }
        let find = |name: &str, labels: &[(&str, &str)]| {
            parsed
                .iter()
                .flat_map(|f| &f.samples)
                .find(|s| {
                    s.name == name
                        && s.labels.len() == labels.len()
                        && s.labels
                            .iter()
                            .zip(labels)
                            .all(|(a, b)| a.0 == b.0 && a.1 == b.1)
                })
                .map(|s| s.value)
        };
        assert_eq!(
            find("certplane_reconcile_total", &[("result", "success")]),
            Some(3.0)
        );
        assert_eq!(
            find("certplane_objects", &[("action", "unchanged")]),
            Some(7.0)
        );
        assert_eq!(find("certplane_vault_token_renewals_total", &[]), Some(4.0));
        assert_eq!(
            find("certplane_reconcile_duration_seconds_count", &[]),
            Some(2.0)
        );
        // A label value with a quote, a backslash and a newline reads back
        // as written.
        let odd = [("mount", "pki_int"), ("issuer", "a\"b\\c\nd")];
        assert_eq!(find("certplane_ca_not_after_seconds", &odd), Some(1.9e9));
    }

    #[test]
    fn a_fresh_status_still_declares_its_families() {
        // Before the first reconcile: no commit, no plan, no CA, no leader
        // election yet; the families are declared all the same.
        let parsed =
            exposition::parse(&render(Status::default())).unwrap_or_else(|e| panic!("{e}"));
        let names: Vec<&str> = parsed.iter().map(|f| f.name.as_str()).collect();
        let expected: Vec<&str> = FAMILIES
            .iter()
            .map(|f| f.0)
            .filter(|n| *n != "certplane_leader")
            .collect();
        assert_eq!(names, expected);
        let ready = parsed.iter().find(|f| f.name == "certplane_ready").unwrap();
        assert_eq!(ready.samples[0].value, 1.0);
        let not_ready = exposition::parse(&render(Status {
            not_ready: Some("no reconcile yet".into()),
            ..Status::default()
        }))
        .unwrap();
        let ready = not_ready
            .iter()
            .find(|f| f.name == "certplane_ready")
            .unwrap();
        assert_eq!(ready.samples[0].value, 0.0);
    }

    #[test]
    fn the_parser_refuses_what_a_scraper_refuses() {
        let gauge = |sample: &str| format!("# HELP a h\n# TYPE a gauge\n{sample}\n");
        for (text, why) in [
            ("a 1\n".to_string(), "a sample of no declared family"),
            (gauge("b 1"), "a sample of no declared family"),
            (gauge("a{l=\"v} 1"), "an unterminated label value"),
            (
                gauge("a{l=\"v\",l=\"w\"} 1"),
                "a bad or repeated label name",
            ),
            (gauge("a{l=\"v\\q\"} 1"), "a bad escape"),
            (gauge("a 1 x"), "junk after the value"),
            (gauge("a one"), "a bad value"),
            (
                "# HELP a h\n# TYPE a counter\na_total 1\n".to_string(),
                "a sample of no declared family",
            ),
            (
                "# HELP a h\n# TYPE a histogram\na_bucket{le=\"1\"} 2\n\
                 a_bucket{le=\"+Inf\"} 1\na_sum 1\na_count 1\n"
                    .to_string(),
                "histogram buckets that are not cumulative",
            ),
            (
                "# HELP a h\n# TYPE a histogram\na_bucket{le=\"+Inf\"} 2\na_sum 1\na_count 1\n"
                    .to_string(),
                "a histogram whose +Inf bucket is not its _count",
            ),
            (
                "# HELP a h\n# TYPE a gauge\na 1".to_string(),
                "no final newline",
            ),
        ] {
            match exposition::parse(&text) {
                Ok(_) => panic!("accepted: {text:?}"),
                Err(e) => assert_eq!(e.why, why, "{text:?}: {e}"),
            }
        }
        // A valid sample with escapes reads back unescaped.
        let ok = exposition::parse(&gauge("a{l=\"v\\\\ \\\"x\\\"\"} -1.5e3")).unwrap();
        let sample = &ok[0].samples[0];
        assert_eq!(sample.labels, [("l".to_string(), "v\\ \"x\"".to_string())]);
        assert_eq!(sample.value, -1500.0);
    }

    /// A strict reader of the Prometheus text format 0.0.4, as a scraper
    /// reads it: each family declared by `# HELP` and `# TYPE` before its
    /// samples, sample names that belong to the family, quoted and escaped
    /// label values, float values, cumulative histogram buckets ending in
    /// `+Inf` that equal `_count`.
    mod exposition {
        /// One metric family.
        #[derive(Debug)]
        pub struct Family {
            pub name: String,
            pub kind: String,
            pub help: String,
            pub samples: Vec<Sample>,
        }

        /// One sample line.
        #[derive(Debug)]
        pub struct Sample {
            pub name: String,
            pub labels: Vec<Label>,
            pub value: f64,
        }

        /// A label's name and (unescaped) value.
        pub type Label = (String, String);

        fn is_name(s: &str) -> bool {
            let mut chars = s.chars();
            chars
                .next()
                .is_some_and(|c| c.is_ascii_alphabetic() || c == '_' || c == ':')
                && chars.all(|c| c.is_ascii_alphanumeric() || c == '_' || c == ':')
        }

        /// Why a text is no valid exposition, and where.
        #[derive(Debug, thiserror::Error)]
        #[error("{why}: {at:?}")]
        pub struct Malformed {
            /// What is wrong.
            pub why: &'static str,
            /// The text at fault.
            at: String,
        }

        fn bad(why: &'static str, at: &str) -> Malformed {
            Malformed {
                why,
                at: at.to_string(),
            }
        }

        fn unescape(s: &str, quote: bool) -> Result<String, Malformed> {
            let mut out = String::new();
            let mut chars = s.chars();
            while let Some(c) = chars.next() {
                match c {
                    '\\' => match chars.next() {
                        Some('\\') => out.push('\\'),
                        Some('n') => out.push('\n'),
                        Some('"') if quote => out.push('"'),
                        _ => return Err(bad("a bad escape", s)),
                    },
                    '"' if quote => return Err(bad("an unescaped quote", s)),
                    '\n' => return Err(bad("a raw newline", s)),
                    c => out.push(c),
                }
            }
            Ok(out)
        }

        fn value(s: &str) -> Result<f64, Malformed> {
            match s {
                "+Inf" => Ok(f64::INFINITY),
                "-Inf" => Ok(f64::NEG_INFINITY),
                "NaN" => Ok(f64::NAN),
                _ => s.parse().map_err(|_| bad("a bad value", s)),
            }
        }

        /// `l="v",...}` after the `{`; the labels and the rest of the line.
        fn labels(mut rest: &str) -> Result<(Vec<Label>, &str), Malformed> {
            let mut out: Vec<Label> = Vec::new();
            loop {
                if let Some(after) = rest.strip_prefix('}') {
                    return Ok((out, after));
                }
                let (name, after) = rest
                    .split_once("=\"")
                    .ok_or(bad("a label without =\"", rest))?;
                if !is_name(name) || out.iter().any(|l| l.0 == name) {
                    return Err(bad("a bad or repeated label name", name));
                }
                // The value ends at the first quote not escaped.
                let mut end = None;
                let mut escaped = false;
                for (i, c) in after.char_indices() {
                    match c {
                        _ if escaped => escaped = false,
                        '\\' => escaped = true,
                        '"' => {
                            end = Some(i);
                            break;
                        }
                        _ => {}
                    }
                }
                let end = end.ok_or(bad("an unterminated label value", after))?;
                out.push((name.to_string(), unescape(&after[..end], true)?));
                rest = &after[end + 1..];
                if let Some(after) = rest.strip_prefix(',') {
                    rest = after;
                } else if !rest.starts_with('}') {
                    return Err(bad("junk after a label value", rest));
                }
            }
        }

        fn sample(line: &str) -> Result<Sample, Malformed> {
            let (name, labels, rest) = match line.split_once('{') {
                Some((name, after)) => {
                    let (labels, rest) = labels(after)?;
                    (name, labels, rest)
                }
                None => {
                    let end = line
                        .find(' ')
                        .ok_or(bad("a sample without a value", line))?;
                    (&line[..end], Vec::new(), &line[end..])
                }
            };
            if !is_name(name) {
                return Err(bad("a bad metric name", name));
            }
            let value = rest
                .strip_prefix(' ')
                .ok_or(bad("no space before the value", line))?;
            if value.contains(' ') {
                // certplane writes no timestamps.
                return Err(bad("junk after the value", line));
            }
            Ok(Sample {
                name: name.to_string(),
                labels,
                value: self::value(value)?,
            })
        }

        /// Whether `sample` belongs to `family`.
        fn belongs(family: &Family, sample: &Sample) -> bool {
            let suffix = sample.name.strip_prefix(family.name.as_str());
            match family.kind.as_str() {
                "histogram" => match suffix {
                    Some("_bucket") => sample.labels.iter().any(|l| l.0 == "le"),
                    Some("_sum" | "_count") => true,
                    _ => false,
                },
                "counter" | "gauge" | "untyped" => suffix == Some(""),
                _ => false,
            }
        }

        fn check_histogram(family: &Family) -> Result<(), Malformed> {
            let le = |s: &Sample| s.labels.iter().find(|l| l.0 == "le").map(|l| l.1.clone());
            let buckets: Vec<&Sample> = family
                .samples
                .iter()
                .filter(|s| s.name.ends_with("_bucket"))
                .collect();
            let mut last = (f64::NEG_INFINITY, 0.0);
            for b in &buckets {
                let bound = value(&le(b).unwrap_or_default())?;
                if bound <= last.0 || b.value < last.1 {
                    return Err(bad(
                        "histogram buckets that are not cumulative",
                        &family.name,
                    ));
                }
                last = (bound, b.value);
            }
            let count = family
                .samples
                .iter()
                .find(|s| s.name.ends_with("_count"))
                .map(|s| s.value);
            if last.0 != f64::INFINITY || count != Some(last.1) {
                return Err(bad(
                    "a histogram whose +Inf bucket is not its _count",
                    &family.name,
                ));
            }
            Ok(())
        }

        /// The families of `text`, in order.
        pub fn parse(text: &str) -> Result<Vec<Family>, Malformed> {
            if !text.ends_with('\n') {
                return Err(bad("no final newline", text));
            }
            let mut families: Vec<Family> = Vec::new();
            for line in text.lines() {
                if let Some(rest) = line.strip_prefix("# HELP ") {
                    let (name, help) =
                        rest.split_once(' ').ok_or(bad("HELP without text", line))?;
                    if !is_name(name) || families.iter().any(|f| f.name == name) {
                        return Err(bad("a bad or repeated family name", name));
                    }
                    families.push(Family {
                        name: name.to_string(),
                        kind: String::new(),
                        help: unescape(help, false)?,
                        samples: Vec::new(),
                    });
                } else if let Some(rest) = line.strip_prefix("# TYPE ") {
                    let family = families.last_mut().ok_or(bad("TYPE before HELP", line))?;
                    let kind = rest
                        .strip_prefix(family.name.as_str())
                        .and_then(|k| k.strip_prefix(' '))
                        .filter(|k| {
                            ["counter", "gauge", "histogram", "summary", "untyped"].contains(k)
                        })
                        .filter(|_| family.kind.is_empty() && family.samples.is_empty())
                        .ok_or(bad("a bad TYPE line", line))?;
                    family.kind = kind.to_string();
                } else if line.starts_with('#') || line.is_empty() {
                    return Err(bad("an unexpected line", line));
                } else {
                    let sample = sample(line)?;
                    let family = families
                        .last_mut()
                        .filter(|f| !f.kind.is_empty() && belongs(f, &sample))
                        .ok_or(bad("a sample of no declared family", line))?;
                    family.samples.push(sample);
                }
            }
            for family in families.iter().filter(|f| f.kind == "histogram") {
                check_histogram(family)?;
            }
            Ok(families)
        }
    }
}
