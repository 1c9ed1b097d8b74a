//! What the loop reports: the readiness reason and the Prometheus metrics,
//! shared between the loop (writer) and the HTTP server (reader).

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::plan::Plan;

/// Upper bounds (seconds) of the reconcile duration histogram.
const BUCKETS: [f64; 10] = [0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0];

/// The loop's state as the HTTP endpoints show it.
#[derive(Debug, Default)]
pub struct Status {
    /// `None`: ready; else the one-line reason `/readyz` gives.
    pub not_ready: Option<String>,
    /// Histogram counts per bucket (cumulative when rendered).
    duration_buckets: [u64; BUCKETS.len()],
    duration_sum: f64,
    duration_count: u64,
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
    /// Whether this replica acted as the leader at the last reconcile
    /// (`Some(true)` without leader election; `None`: not started).
    pub leader: Option<bool>,
    /// When the reconcile in flight started (`None`: none is running).
    pub reconcile_started: Option<Instant>,
    /// How long a reconcile may run before the loop is reported not ready
    /// (`--reconcile-timeout`, default the interval). Zero: no deadline.
    pub reconcile_deadline: Duration,
}

/// A handle both sides share.
pub type Shared = Arc<Mutex<Status>>;

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
        for (i, b) in BUCKETS.iter().enumerate() {
            if secs <= *b {
                self.duration_buckets[i] += 1;
            }
        }
        self.duration_sum += secs;
        self.duration_count += 1;
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
    }

    /// The Prometheus text exposition.
    pub fn render(&self) -> String {
        let mut o = String::new();
        let head = |o: &mut String, name: &str, kind: &str, help: &str| {
            let _ = writeln!(o, "# HELP {name} {help}\n# TYPE {name} {kind}");
        };
        head(
            &mut o,
            "certplane_reconcile_duration_seconds",
            "histogram",
            "Duration of one reconcile (fetch, validate, plan, apply).",
        );
        for (i, b) in BUCKETS.iter().enumerate() {
            let _ = writeln!(
                o,
                "certplane_reconcile_duration_seconds_bucket{{le=\"{b}\"}} {}",
                self.duration_buckets[i]
            );
        }
        let _ = writeln!(
            o,
            "certplane_reconcile_duration_seconds_bucket{{le=\"+Inf\"}} {0}\n\
             certplane_reconcile_duration_seconds_sum {1}\n\
             certplane_reconcile_duration_seconds_count {0}",
            self.duration_count, self.duration_sum
        );
        head(
            &mut o,
            "certplane_reconcile_total",
            "counter",
            "Reconciles by result.",
        );
        let _ = writeln!(
            o,
            "certplane_reconcile_total{{result=\"success\"}} {}\ncertplane_reconcile_total{{result=\"failure\"}} {}",
            self.success_total, self.failure_total
        );
        head(
            &mut o,
            "certplane_rejected_commits_total",
            "counter",
            "Commits refused by validation or signature verification.",
        );
        let _ = writeln!(
            o,
            "certplane_rejected_commits_total {}",
            self.rejected_total
        );
        head(
            &mut o,
            "certplane_last_applied_commit_info",
            "gauge",
            "The commit in force.",
        );
        if let Some(c) = &self.last_applied_commit {
            let _ = writeln!(
                o,
                "certplane_last_applied_commit_info{{commit=\"{}\"}} 1",
                escape(c)
            );
        }
        head(
            &mut o,
            "certplane_objects",
            "gauge",
            "Objects of the last plan by action.",
        );
        for (k, v) in &self.objects {
            let _ = writeln!(o, "certplane_objects{{action=\"{k}\"}} {v}");
        }
        head(
            &mut o,
            "certplane_drift_repairs_total",
            "counter",
            "Objects changed to repair drift (no new commit).",
        );
        let _ = writeln!(
            o,
            "certplane_drift_repairs_total {}",
            self.drift_repairs_total
        );
        head(
            &mut o,
            "certplane_vault_logins_total",
            "counter",
            "Vault logins made.",
        );
        let _ = writeln!(
            o,
            "certplane_vault_logins_total {}",
            self.vault_logins_total
        );
        head(
            &mut o,
            "certplane_vault_token_renewals_total",
            "counter",
            "Vault token renewals made.",
        );
        let _ = writeln!(
            o,
            "certplane_vault_token_renewals_total {}",
            self.vault_token_renewals_total
        );
        head(
            &mut o,
            "certplane_ca_not_after_seconds",
            "gauge",
            "notAfter (Unix seconds) of each managed CA issuer.",
        );
        for ((mount, issuer), t) in &self.ca_not_after {
            let _ = writeln!(
                o,
                "certplane_ca_not_after_seconds{{mount=\"{}\",issuer=\"{}\"}} {t}",
                escape(mount),
                escape(issuer)
            );
        }
        if let Some(leader) = self.leader {
            head(
                &mut o,
                "certplane_leader",
                "gauge",
                "1 when this replica is the leader (it plans and applies), 0 when it follows.",
            );
            let _ = writeln!(o, "certplane_leader {}", u8::from(leader));
        }
        head(
            &mut o,
            "certplane_ready",
            "gauge",
            "1 when /readyz answers 200.",
        );
        let ready = self.readiness(Instant::now()).is_none();
        let _ = writeln!(o, "certplane_ready {}", u8::from(ready));
        o
    }
}

/// Seconds, with a fraction only when there is one.
fn secs(d: Duration) -> String {
    if d.subsec_millis() == 0 {
        d.as_secs().to_string()
    } else {
        format!("{:.1}", d.as_secs_f64())
    }
}

fn escape(v: &str) -> String {
    v.replace('\\', r"\\")
        .replace('"', "\\\"")
        .replace('\n', r"\n")
}

#[cfg(test)]
mod tests {
    use super::*;

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
        let text = s.render();
        assert!(text.contains("certplane_reconcile_duration_seconds_bucket{le=\"0.25\"} 1\n"));
        assert!(text.contains("certplane_reconcile_duration_seconds_bucket{le=\"5\"} 2\n"));
        assert!(text.contains("certplane_reconcile_duration_seconds_count 2\n"));
        assert!(text.contains("issuer=\"a\\\"b\"} 42\n"), "{text}");
        assert!(!text.contains("certplane_leader"), "{text}");
        s.leader = Some(false);
        assert!(s.render().contains("\ncertplane_leader 0\n"));
        s.leader = Some(true);
        assert!(s.render().contains("\ncertplane_leader 1\n"));
    }
}
