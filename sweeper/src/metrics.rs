//! Prometheus metrics of interval mode (prometheus-client), registered under the `kpo_sweeper`
//! prefix (docs/design.md §8):
//!
//! * `kpo_sweeper_runs_total{outcome}`: runs by outcome, `ok`, `error`, `breaker`, `delete-failed`
//!   (the exit codes 0, 1, 2, 3 of a one-shot run);
//! * `kpo_sweeper_run_errors_total{kind}`: runs that failed, by [`crate::Error::metric_label`];
//! * `kpo_sweeper_pods{decision,reason}`: pods judged by the last run that judged any (a gauge);
//! * `kpo_sweeper_deletions_total`, `kpo_sweeper_delete_failures_total`: pods deleted, and deletes
//!   that failed after retries (404 and UID conflicts are neither);
//! * `kpo_sweeper_active_tis`, `kpo_sweeper_unstamped_pods`: as the last run's report says;
//! * `kpo_sweeper_run_duration_seconds{phase}`: a histogram per phase, `list` (the pod LIST),
//!   `db` (connect, active TIs, the re-read before deleting), `decide`, `delete`;
//! * `kpo_sweeper_last_success_timestamp_seconds`: end of the last `ok` run, Unix seconds (0: none
//!   yet);
//! * `kpo_sweeper_interval_seconds`: `--interval`, so an alert can say "no success for 3 intervals".
//!
//! With `--context` (several clusters), `kpo_sweeper_pods` also carries `cluster` (the context),
//! and per cluster: `kpo_sweeper_cluster_up{cluster}` (1: the last run listed it, 0: it failed),
//! `kpo_sweeper_cluster_failures_total{cluster}` (runs in which it failed),
//! `kpo_sweeper_cluster_breaker_trips_total{cluster}`, `kpo_sweeper_cluster_deletions_total{cluster}`
//! and `kpo_sweeper_cluster_delete_failures_total{cluster}`. Without `--context` every series is as
//! before, with no `cluster` label.

use std::collections::HashMap;
use std::sync::Mutex;
use std::sync::atomic::AtomicU64;
use std::time::Duration;

use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

use crate::Outcome;
use crate::exit;

type Label1 = [(&'static str, &'static str); 1];
/// `[cluster,] decision, reason`: the cluster only with `--context`.
type PodLabels = Vec<(&'static str, String)>;
type ClusterLabel = [(&'static str, String); 1];

/// How long each phase of one run took. `None`: the phase did not run (no delete in a dry run, or
/// when the breaker tripped).
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Phases {
    pub list: Option<Duration>,
    pub db: Option<Duration>,
    pub decide: Option<Duration>,
    pub delete: Option<Duration>,
}

impl Phases {
    /// Adds `d` to a phase (the DB phase is timed in two parts: before deciding, and the re-read).
    pub fn add(slot: &mut Option<Duration>, d: Duration) {
        *slot = Some(slot.unwrap_or_default() + d);
    }
}

/// Runs `f` and returns its output with the time it took.
pub async fn timed<T>(f: impl Future<Output = T>) -> (T, Duration) {
    let t = std::time::Instant::now();
    let out = f.await;
    (out, t.elapsed())
}

/// The outcome label of a finished run, by its exit code.
pub fn outcome_label(exit_code: u8) -> &'static str {
    match exit_code {
        exit::OK => "ok",
        exit::BREAKER => "breaker",
        exit::DELETE_FAILED => "delete-failed",
        _ => "error",
    }
}

fn histogram() -> Histogram {
    // 5 ms … ~80 s: a LIST of 50,000 pods or a slow DB still lands in a bucket.
    Histogram::new(exponential_buckets(0.005, 2.0, 15))
}

/// The sweeper's metrics. Cheap to clone (handles to shared values).
#[derive(Clone, Debug)]
pub struct Metrics {
    runs: Family<Label1, Counter>,
    run_errors: Family<Label1, Counter>,
    pods: Family<PodLabels, Gauge>,
    deletions: Counter,
    delete_failures: Counter,
    active_tis: Gauge,
    unstamped: Gauge,
    duration: Family<Label1, Histogram, fn() -> Histogram>,
    last_success: Gauge<f64, AtomicU64>,
    interval: Gauge,
    cluster_up: Family<ClusterLabel, Gauge>,
    cluster_failures: Family<ClusterLabel, Counter>,
    cluster_breaker_trips: Family<ClusterLabel, Counter>,
    cluster_deletions: Family<ClusterLabel, Counter>,
    cluster_delete_failures: Family<ClusterLabel, Counter>,
    /// The `{[cluster,]decision,reason}` series set by the last judged run, so the next one zeroes
    /// those it no longer sees (a gauge of the last run, not a sum).
    seen: std::sync::Arc<Mutex<HashMap<PodLabels, i64>>>,
}

impl Default for Metrics {
    fn default() -> Self {
        let runs = Family::<Label1, Counter>::default();
        // Every outcome is exported from the start (at 0), so `increase()` sees the first one.
        for o in ["ok", "error", "breaker", "delete-failed"] {
            let _ = runs.get_or_create(&[("outcome", o)]);
        }
        let duration =
            Family::<Label1, Histogram, fn() -> Histogram>::new_with_constructor(histogram);
        Metrics {
            runs,
            run_errors: Family::default(),
            pods: Family::default(),
            deletions: Counter::default(),
            delete_failures: Counter::default(),
            active_tis: Gauge::default(),
            unstamped: Gauge::default(),
            duration,
            last_success: Gauge::default(),
            interval: Gauge::default(),
            cluster_up: Family::default(),
            cluster_failures: Family::default(),
            cluster_breaker_trips: Family::default(),
            cluster_deletions: Family::default(),
            cluster_delete_failures: Family::default(),
            seen: Default::default(),
        }
    }
}

impl Metrics {
    /// Registers every metric in `registry` (give it the `kpo_sweeper` prefix).
    pub fn register(self, registry: &mut Registry) -> Self {
        registry.register("runs", "Sweeper runs by outcome", self.runs.clone());
        registry.register(
            "run_errors",
            "Sweeper runs that ended in an error, by kind",
            self.run_errors.clone(),
        );
        registry.register(
            "pods",
            "Pods judged by the last run, by decision and reason",
            self.pods.clone(),
        );
        registry.register("deletions", "Pods deleted", self.deletions.clone());
        registry.register(
            "delete_failures",
            "Pod deletes that failed after retries",
            self.delete_failures.clone(),
        );
        registry.register(
            "active_tis",
            "Active task instances read by the last run",
            self.active_tis.clone(),
        );
        registry.register(
            "unstamped_pods",
            "KPO pods without the webhook's stamp seen by the last run",
            self.unstamped.clone(),
        );
        registry.register(
            "run_duration_seconds",
            "Time spent per run phase (list, db, decide, delete)",
            self.duration.clone(),
        );
        registry.register(
            "last_success_timestamp_seconds",
            "When the last run with outcome ok ended, Unix seconds (0: none yet)",
            self.last_success.clone(),
        );
        registry.register(
            "interval_seconds",
            "The --interval between runs",
            self.interval.clone(),
        );
        registry.register(
            "cluster_up",
            "With --context: 1 when the last run listed the cluster, 0 when it failed",
            self.cluster_up.clone(),
        );
        registry.register(
            "cluster_failures",
            "With --context: runs in which the cluster failed (its pods neither judged nor deleted)",
            self.cluster_failures.clone(),
        );
        registry.register(
            "cluster_breaker_trips",
            "With --context: runs in which the cluster's circuit breaker tripped",
            self.cluster_breaker_trips.clone(),
        );
        registry.register(
            "cluster_deletions",
            "With --context: pods deleted, by cluster",
            self.cluster_deletions.clone(),
        );
        registry.register(
            "cluster_delete_failures",
            "With --context: pod deletes that failed after retries, by cluster",
            self.cluster_delete_failures.clone(),
        );
        self
    }

    pub fn set_interval(&self, every: Duration) {
        self.interval
            .set(i64::try_from(every.as_secs()).unwrap_or(i64::MAX));
    }

    /// Records one finished run. `unstamped`: the KPO pods without a stamp it saw.
    pub fn record_outcome(&self, out: &Outcome, unstamped: usize, now_unix: f64) {
        let label = outcome_label(out.exit);
        self.runs.get_or_create(&[("outcome", label)]).inc();
        let s = &out.report.summary;
        self.deletions.inc_by(s.deleted as u64);
        self.delete_failures.inc_by(s.failed as u64);
        self.active_tis
            .set(i64::try_from(s.active_tis).unwrap_or(i64::MAX));
        self.unstamped
            .set(i64::try_from(unstamped).unwrap_or(i64::MAX));
        let mut counts: HashMap<PodLabels, i64> = HashMap::new();
        for p in out.report.pods.iter() {
            let mut labels = Vec::with_capacity(3);
            if let Some(c) = p.cluster {
                labels.push(("cluster", c.to_owned()));
            }
            labels.push(("decision", p.decision.as_str().to_owned()));
            labels.push(("reason", p.reason.as_str().to_owned()));
            *counts.entry(labels).or_default() += 1;
        }
        for c in &out.report.clusters {
            let Some(name) = &c.name else { continue };
            let l = [("cluster", name.clone())];
            let up = c.status != crate::report::ClusterStatus::Failed;
            self.cluster_up.get_or_create(&l).set(i64::from(up));
            // Every series exists from the cluster's first run on (at 0), so increase() sees the
            // first failure.
            let failures = self.cluster_failures.get_or_create(&l);
            let trips = self.cluster_breaker_trips.get_or_create(&l);
            match c.status {
                crate::report::ClusterStatus::Failed => {
                    failures.inc();
                }
                crate::report::ClusterStatus::Breaker => {
                    trips.inc();
                }
                crate::report::ClusterStatus::Ok => {}
            }
            self.cluster_deletions
                .get_or_create(&l)
                .inc_by(c.deleted as u64);
            self.cluster_delete_failures
                .get_or_create(&l)
                .inc_by(c.failed as u64);
        }
        {
            let mut seen = self.seen.lock().unwrap_or_else(|e| e.into_inner());
            for old in seen.keys() {
                if !counts.contains_key(old) {
                    self.pods.get_or_create(old).set(0);
                }
            }
            for (k, n) in &counts {
                self.pods.get_or_create(k).set(*n);
            }
            *seen = counts;
        }
        let p = &out.phases;
        for (phase, d) in [
            ("list", p.list),
            ("db", p.db),
            ("decide", p.decide),
            ("delete", p.delete),
        ] {
            if let Some(d) = d {
                self.duration
                    .get_or_create(&[("phase", phase)])
                    .observe(d.as_secs_f64());
            }
        }
        if out.exit == exit::OK {
            self.last_success.set(now_unix);
        }
    }

    /// Records a run that ended in an error (nothing deleted after it).
    pub fn record_error(&self, kind: &'static str) {
        self.runs.get_or_create(&[("outcome", "error")]).inc();
        self.run_errors.get_or_create(&[("kind", kind)]).inc();
    }

    /// The count of runs with `outcome`.
    pub fn runs(&self, outcome: &'static str) -> u64 {
        self.runs.get_or_create(&[("outcome", outcome)]).get()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::decide::{Decision, PodMeta};
    use crate::decide::{Reason, Verdict};
    use crate::report::{Action, ClusterReport, ClusterStatus, Pods, Report, Summary};

    /// One pod's decision and action.
    type Row = (Verdict, Reason, Action);

    /// The report's pods: one per row, all in the cluster named `cluster` (`None`: no `--context`).
    fn pods(rows: &[Row], cluster: Option<&str>) -> Pods {
        let none = Default::default();
        let metas = (0..rows.len())
            .map(|i| {
                PodMeta::from_parts("ns", format!("p{i}"), "u", &none, &none, false, None, None)
            })
            .collect();
        let decisions = rows
            .iter()
            .map(|&(verdict, reason, _)| Decision {
                verdict,
                reason,
                stuck_terminating: false,
            })
            .collect();
        Pods::new(
            metas,
            decisions,
            rows.iter().map(|r| r.2).collect(),
            vec![0; rows.len()],
            vec![cluster.map(str::to_owned)],
            0,
        )
    }

    fn outcome(exit: u8, pods: Pods, deleted: usize, failed: usize) -> Outcome {
        Outcome {
            report: Report {
                version: 1,
                dry_run: false,
                started_at: "2026-01-01T00:00:00Z".into(),
                duration_ms: 1,
                summary: Summary {
                    listed: pods.len(),
                    active_tis: 7,
                    deleted,
                    failed,
                    ..Default::default()
                },
                clusters: Vec::new(),
                pods,
            },
            exit,
            breaker: None,
            phases: Phases {
                list: Some(Duration::from_millis(3)),
                db: Some(Duration::from_millis(2)),
                decide: Some(Duration::from_millis(1)),
                delete: None,
            },
            error: None,
        }
    }

    fn text(m: &Metrics) -> String {
        let mut r = Registry::with_prefix("kpo_sweeper");
        m.clone().register(&mut r);
        let mut s = String::new();
        prometheus_client::encoding::text::encode(&mut s, &r).unwrap();
        s
    }

    #[test]
    fn pods_gauge_is_the_last_run_and_counters_add_up() {
        let m = Metrics::default();
        let z = (Verdict::Zombie, Reason::NoActiveTi, Action::Deleted);
        let k = (Verdict::Keep, Reason::Active, Action::None);
        m.record_outcome(&outcome(exit::OK, pods(&[z, k], None), 1, 0), 0, 42.0);
        m.record_outcome(
            &outcome(exit::DELETE_FAILED, pods(&[k], None), 0, 2),
            3,
            50.0,
        );
        m.record_error("db-connect");
        let t = text(&m);
        for line in [
            "kpo_sweeper_runs_total{outcome=\"ok\"} 1",
            "kpo_sweeper_runs_total{outcome=\"delete-failed\"} 1",
            "kpo_sweeper_runs_total{outcome=\"error\"} 1",
            "kpo_sweeper_runs_total{outcome=\"breaker\"} 0",
            "kpo_sweeper_run_errors_total{kind=\"db-connect\"} 1",
            "kpo_sweeper_pods{decision=\"zombie\",reason=\"no-active-ti\"} 0",
            "kpo_sweeper_pods{decision=\"keep\",reason=\"active\"} 1",
            "kpo_sweeper_deletions_total 1",
            "kpo_sweeper_delete_failures_total 2",
            "kpo_sweeper_active_tis 7",
            "kpo_sweeper_unstamped_pods 3",
            // Only the ok run counts as a success.
            "kpo_sweeper_last_success_timestamp_seconds 42.0",
            "kpo_sweeper_run_duration_seconds_count{phase=\"list\"} 2",
        ] {
            assert!(t.lines().any(|l| l == line), "missing {line:?} in\n{t}");
        }
        assert!(!t.contains("phase=\"delete\""), "no delete phase ran:\n{t}");
    }

    #[test]
    fn clusters_get_their_own_series_with_context() {
        let m = Metrics::default();
        let z = (Verdict::Zombie, Reason::NoActiveTi, Action::Deleted);
        let mut out = outcome(exit::ERROR, pods(&[z], Some("home")), 1, 0);
        let c = |name: &str, status, deleted| ClusterReport {
            name: Some(name.into()),
            status,
            listed: 1,
            zombies: deleted,
            deleted,
            failed: 0,
            list_ms: 1,
            error: None,
        };
        out.report.clusters = vec![
            c("home", ClusterStatus::Ok, 1),
            c("gke", ClusterStatus::Failed, 0),
        ];
        m.record_outcome(&out, 0, 1.0);
        let t = text(&m);
        for line in [
            "kpo_sweeper_pods{cluster=\"home\",decision=\"zombie\",reason=\"no-active-ti\"} 1",
            "kpo_sweeper_cluster_up{cluster=\"home\"} 1",
            "kpo_sweeper_cluster_up{cluster=\"gke\"} 0",
            "kpo_sweeper_cluster_failures_total{cluster=\"gke\"} 1",
            "kpo_sweeper_cluster_failures_total{cluster=\"home\"} 0",
            "kpo_sweeper_cluster_deletions_total{cluster=\"home\"} 1",
            "kpo_sweeper_deletions_total 1",
        ] {
            assert!(t.lines().any(|l| l == line), "missing {line:?} in\n{t}");
        }
    }

    #[test]
    fn outcome_labels_follow_the_exit_codes() {
        assert_eq!(outcome_label(exit::OK), "ok");
        assert_eq!(outcome_label(exit::ERROR), "error");
        assert_eq!(outcome_label(exit::BREAKER), "breaker");
        assert_eq!(outcome_label(exit::DELETE_FAILED), "delete-failed");
    }
}
