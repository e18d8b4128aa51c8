//! The run's report: docs/design.md §8's JSON document, or a kubectl-like table; and the one-line
//! summary for stderr.

use std::fmt::Write as _;
use std::io::Write as _;

use serde::Serialize;
use tikey::TiKey;

use crate::decide::{Decision, PodMeta, Reason, Uid, Verdict};

/// What was done to a pod.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Action {
    None,
    WouldDelete,
    Deleted,
    Gone,
    Conflict,
    Failed,
}

/// The report's pods: every listed pod as the run read it, with its decision and what was done to
/// it, in the run's order. The report keeps the run's own records and refers to their strings: at
/// 150,000 pods, a copy of each into a row of its own took 50 MB. [`Pods::iter`] reads them as
/// [`PodRow`]s; the JSON and the table are written from those, row by row.
#[derive(Debug, Clone, Default)]
pub struct Pods {
    pods: Vec<PodMeta>,
    decisions: Vec<Decision>,
    actions: Vec<Action>,
    /// Each pod's cluster: an index into `clusters`.
    cluster: Vec<usize>,
    /// The clusters' names (`--context`); `None` without it.
    clusters: Vec<Option<String>>,
    /// When the run ended, Unix seconds (the pods' ages).
    now: i64,
}

impl Pods {
    /// # Panics
    /// When `decisions`, `actions` and `cluster` do not hold one entry per pod, or a pod's cluster
    /// is not in `clusters`.
    pub fn new(
        pods: Vec<PodMeta>,
        decisions: Vec<Decision>,
        actions: Vec<Action>,
        cluster: Vec<usize>,
        clusters: Vec<Option<String>>,
        now: i64,
    ) -> Pods {
        let n = pods.len();
        assert!(
            decisions.len() == n && actions.len() == n && cluster.len() == n,
            "one decision, action and cluster per pod"
        );
        assert!(
            cluster.iter().all(|&c| c < clusters.len()),
            "known clusters"
        );
        Pods {
            pods,
            decisions,
            actions,
            cluster,
            clusters,
            now,
        }
    }

    pub fn len(&self) -> usize {
        self.pods.len()
    }

    pub fn is_empty(&self) -> bool {
        self.pods.is_empty()
    }

    pub fn iter(&self) -> impl ExactSizeIterator<Item = PodRow<'_>> {
        (0..self.pods.len()).map(|i| self.row(i))
    }

    fn row(&self, i: usize) -> PodRow<'_> {
        let p = &self.pods[i];
        let d = self.decisions[i];
        PodRow {
            namespace: &p.namespace,
            name: &p.name,
            uid: &p.uid,
            ti_key: p.key().map(|(k, _)| k),
            try_number: p.key().map(|(_, t)| t),
            decision: d.verdict,
            reason: d.reason,
            cluster: self.clusters[self.cluster[i]].as_deref(),
            action: self.actions[i],
            age_secs: p.created_at.map(|c| self.now - c),
        }
    }
}

impl Serialize for Pods {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_seq(self.iter())
    }
}

/// One pod of the report (docs/design.md §8's `pods[]`).
#[derive(Debug, Clone, Copy, Serialize)]
pub struct PodRow<'a> {
    pub namespace: &'a str,
    pub name: &'a str,
    pub uid: &'a Uid,
    /// The key in the stamp's form (`dag/task/run/map_index`).
    #[serde(serialize_with = "encoded")]
    pub ti_key: Option<&'a TiKey>,
    pub try_number: Option<i64>,
    pub decision: Verdict,
    pub reason: Reason,
    /// The kubeconfig context of the pod's cluster (`--context`); `None` without it.
    pub cluster: Option<&'a str>,
    pub action: Action,
    /// For the table's AGE column only.
    #[serde(skip)]
    pub age_secs: Option<i64>,
}

/// [`TiKey::encode`], written straight into the output.
fn encoded<S: serde::Serializer>(key: &Option<&TiKey>, s: S) -> Result<S::Ok, S::Error> {
    match key {
        Some(k) => s.collect_str(k),
        None => s.serialize_none(),
    }
}

#[derive(Debug, Clone, Default, Serialize, PartialEq, Eq)]
pub struct Summary {
    pub listed: usize,
    pub active_tis: usize,
    pub zombies: usize,
    pub deleted: usize,
    pub failed: usize,
    /// Pods in scope without the webhook's stamp (row 2, or judged with `--unstamped sweep`): the
    /// webhook was bypassed or absent when they were created.
    pub unstamped: usize,
    /// Pods kept because this database is behind the cluster: their TI's row has a lower or NULL
    /// `try_number` (row 10: a restored backup, a lagging replica).
    pub newer_than_db: usize,
    /// Pods kept because this database holds no row for their TI (row 11: run deleted, rows
    /// purged, or not this Airflow's database), or swept by `--sweep-unknown-ti-after`.
    pub unknown_ti: usize,
}

/// How one cluster's part of the run went.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum ClusterStatus {
    /// Listed and judged; its zombies deleted (or would be, in a dry run).
    Ok,
    /// Its own circuit breaker tripped: nothing deleted there.
    Breaker,
    /// Not reached (client, credentials or LIST failed): its pods neither judged nor deleted.
    Failed,
}

/// One cluster of the run: with `--context`, one per context; without it, the one cluster
/// (`name` null).
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct ClusterReport {
    /// The kubeconfig context; `None` without `--context`.
    pub name: Option<String>,
    pub status: ClusterStatus,
    /// Pods listed there (0 when the cluster failed).
    pub listed: usize,
    pub zombies: usize,
    pub deleted: usize,
    pub failed: usize,
    /// How long its LIST took, milliseconds (the clusters are listed at the same time).
    pub list_ms: u64,
    /// Why the cluster failed, or why its breaker tripped.
    pub error: Option<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Report {
    pub version: u32,
    pub dry_run: bool,
    pub started_at: String,
    pub duration_ms: u64,
    pub summary: Summary,
    /// Added with `--context` (issue 23); a reader of version 1 may ignore it.
    pub clusters: Vec<ClusterReport>,
    pub pods: Pods,
}

impl Report {
    pub fn to_json(&self) -> String {
        serde_json::to_string(self).expect("the report serializes")
    }

    /// Writes the report as `--output` asks, JSON streamed (a report of 50,000 pods is never held as
    /// one string), and flushes.
    pub fn write(
        &self,
        output: crate::args::Output,
        w: impl std::io::Write,
    ) -> std::io::Result<()> {
        let mut w = std::io::BufWriter::with_capacity(64 * 1024, w);
        match output {
            crate::args::Output::Json => {
                serde_json::to_writer(&mut w, self)?;
                w.write_all(b"\n")?;
            }
            crate::args::Output::Table => self.write_table(&mut w)?,
        }
        w.flush()
    }

    /// Whether the run named its clusters (`--context`).
    pub fn multi_cluster(&self) -> bool {
        self.clusters.iter().any(|c| c.name.is_some())
    }

    /// [CLUSTER] NAMESPACE POD TI-KEY TRY DECISION REASON AGE, columns padded like kubectl's (CLUSTER
    /// only with `--context`).
    pub fn to_table(&self) -> String {
        let mut out = Vec::new();
        self.write_table(&mut out).expect("writing to a Vec");
        String::from_utf8(out).expect("the table is UTF-8")
    }

    /// [`Report::to_table`], written row by row: one pass over the pods measures the columns, a
    /// second writes them (no table of 150,000 rows is held).
    pub fn write_table(&self, w: &mut impl std::io::Write) -> std::io::Result<()> {
        let with_cluster = self.multi_cluster();
        let header = [
            "CLUSTER",
            "NAMESPACE",
            "POD",
            "TI-KEY",
            "TRY",
            "DECISION",
            "REASON",
            "AGE",
        ];
        let mut cells: [String; 8] = Default::default();
        let mut widths = header.map(str::len);
        for r in self.pods.iter() {
            table_cells(&r, &mut cells);
            for (w, c) in widths.iter_mut().zip(&cells) {
                *w = (*w).max(c.chars().count());
            }
        }
        let skip = usize::from(!with_cluster);
        let mut line = String::new();
        let mut write_line = |w: &mut dyn std::io::Write, cells: &[&str]| {
            line.clear();
            let last = cells.len() - 1;
            for (i, c) in cells.iter().enumerate().skip(skip) {
                if i == last {
                    line.push_str(c);
                } else {
                    let _ = write!(line, "{c:<w$}   ", w = widths[i]);
                }
            }
            line.push('\n');
            w.write_all(line.as_bytes())
        };
        write_line(w, &header)?;
        for r in self.pods.iter() {
            table_cells(&r, &mut cells);
            write_line(w, &cells.each_ref().map(String::as_str))?;
        }
        Ok(())
    }

    /// `kpo-sweeper: dry run: listed 5 pods, 3 active TIs, 2 zombies, 0 deleted, 0 failed`.
    pub fn summary_line(&self) -> String {
        let s = &self.summary;
        format!(
            "kpo-sweeper: {}: listed {} pods, {} active TIs, {} zombies, {} deleted, {} failed, {} unstamped, {} newer-than-db, {} unknown-ti ({} ms)",
            if self.dry_run {
                "dry run (pass --delete to act)"
            } else {
                "delete"
            },
            s.listed,
            s.active_tis,
            s.zombies,
            s.deleted,
            s.failed,
            s.unstamped,
            s.newer_than_db,
            s.unknown_ti,
            self.duration_ms
        )
    }

    /// One line per cluster that failed (for stderr; a tripped breaker has its own message).
    pub fn failed_clusters(&self) -> Vec<String> {
        self.clusters
            .iter()
            .filter(|c| c.status == ClusterStatus::Failed)
            .map(|c| {
                format!(
                    "kpo-sweeper: cluster {} failed, its pods were neither judged nor deleted (the other clusters were swept): {}",
                    c.name.as_deref().unwrap_or("<current context>"),
                    c.error.as_deref().unwrap_or("unknown error")
                )
            })
            .collect()
    }
}

/// One row's cells, written into `cells` (reused from row to row).
fn table_cells(r: &PodRow<'_>, cells: &mut [String; 8]) {
    for c in cells.iter_mut() {
        c.clear();
    }
    let [cluster, ns, pod, key, try_number, decision, reason, age] = cells;
    cluster.push_str(r.cluster.unwrap_or("<none>"));
    ns.push_str(r.namespace);
    pod.push_str(r.name);
    match r.ti_key {
        Some(k) => {
            let _ = write!(key, "{k}");
        }
        None => key.push_str("<none>"),
    }
    match r.try_number {
        Some(t) => {
            let _ = write!(try_number, "{t}");
        }
        None => try_number.push_str("<none>"),
    }
    decision.push_str(r.decision.as_str());
    reason.push_str(r.reason.as_str());
    age.push_str(&r.age_secs.map_or_else(|| "<unknown>".to_owned(), human_age));
}

/// kubectl's short age: `45s`, `12m`, `5h`, `3d`.
pub fn human_age(secs: i64) -> String {
    let s = secs.max(0);
    match s {
        0..60 => format!("{s}s"),
        60..3600 => format!("{}m", s / 60),
        3600..86400 => format!("{}h", s / 3600),
        _ => format!("{}d", s / 86400),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn report() -> Report {
        Report {
            version: 1,
            dry_run: true,
            started_at: "2026-01-01T00:00:00Z".into(),
            duration_ms: 12,
            summary: Summary {
                listed: 2,
                active_tis: 1,
                zombies: 1,
                deleted: 0,
                failed: 0,
                unstamped: 0,
                newer_than_db: 0,
                unknown_ti: 0,
            },
            clusters: vec![ClusterReport {
                name: None,
                status: ClusterStatus::Ok,
                listed: 2,
                zombies: 1,
                deleted: 0,
                failed: 0,
                list_ms: 3,
                error: None,
            }],
            pods: pods(&[None, None]),
        }
    }

    /// The two pods of [`report`]: a zombie two hours old and a legacy pod of unknown age, in the
    /// clusters given.
    fn pods(clusters: &[Option<&str>]) -> Pods {
        let labels = |pairs: &[(&str, &str)]| -> std::collections::BTreeMap<String, String> {
            pairs
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect()
        };
        let zombie = labels(&[
            ("kubernetes_pod_operator", "True"),
            ("dag_id", "kpo_zombie_dag"),
            ("task_id", "zombie_kpo_task"),
            ("run_id", "manual__x"),
            ("try_number", "1"),
        ]);
        let legacy = labels(&[
            ("kubernetes_pod_operator", "True"),
            ("dag_id", "d"),
            ("task_id", "t"),
            ("execution_date", "2020-01-01T0000000000-767bd5b4a"),
            ("try_number", "1"),
        ]);
        let none = Default::default();
        let now = 1_800_000_000;
        let pods = vec![
            PodMeta::from_parts(
                "airflow",
                "zombie-pod",
                "u1",
                &zombie,
                &none,
                false,
                Some(now - 7200),
                None,
            ),
            PodMeta::from_parts("airflow", "legacy", "u2", &legacy, &none, false, None, None),
        ];
        let decision = |verdict, reason| Decision {
            verdict,
            reason,
            stuck_terminating: false,
        };
        Pods::new(
            pods,
            vec![
                decision(Verdict::Zombie, Reason::NoActiveTi),
                decision(Verdict::Skip, Reason::Unidentifiable),
            ],
            vec![Action::WouldDelete, Action::None],
            vec![0, 0],
            clusters.iter().map(|c| c.map(str::to_owned)).collect(),
            now,
        )
    }

    #[test]
    fn json_is_designs_section_8_exactly() {
        let v: serde_json::Value = serde_json::from_str(&report().to_json()).unwrap();
        let expected = serde_json::json!({
            "version": 1, "dry_run": true, "started_at": "2026-01-01T00:00:00Z", "duration_ms": 12,
            "summary": {"listed": 2, "active_tis": 1, "zombies": 1, "deleted": 0, "failed": 0, "unstamped": 0, "newer_than_db": 0, "unknown_ti": 0},
            "clusters": [{"name": null, "status": "ok", "listed": 2, "zombies": 1, "deleted": 0, "failed": 0,
                          "list_ms": 3, "error": null}],
            "pods": [
                {"namespace": "airflow", "name": "zombie-pod", "uid": "u1",
                 "ti_key": "kpo_zombie_dag/zombie_kpo_task/manual__x/-1", "try_number": 1,
                 "decision": "zombie", "reason": "no-active-ti", "cluster": null, "action": "would-delete"},
                {"namespace": "airflow", "name": "legacy", "uid": "u2", "ti_key": null, "try_number": null,
                 "decision": "skip", "reason": "unidentifiable", "cluster": null, "action": "none"}
            ]
        });
        assert_eq!(v, expected);
    }

    #[test]
    fn table_has_kubectl_columns() {
        let t = report().to_table();
        let lines: Vec<&str> = t.lines().collect();
        assert!(
            lines[0].starts_with("NAMESPACE   POD          TI-KEY"),
            "{t}"
        );
        assert!(lines[0].ends_with("REASON           AGE"), "{t}");
        assert!(
            lines[1].contains("zombie     no-active-ti") && lines[1].ends_with("2h"),
            "{t}"
        );
        assert!(
            lines[2].contains("<none>") && lines[2].ends_with("<unknown>"),
            "{t}"
        );
    }

    #[test]
    fn table_and_json_name_the_cluster_with_context() {
        let mut r = report();
        r.clusters = vec![
            ClusterReport {
                name: Some("home".into()),
                status: ClusterStatus::Ok,
                listed: 2,
                zombies: 1,
                deleted: 0,
                failed: 0,
                list_ms: 3,
                error: None,
            },
            ClusterReport {
                name: Some("gke-prod".into()),
                status: ClusterStatus::Failed,
                listed: 0,
                zombies: 0,
                deleted: 0,
                failed: 0,
                list_ms: 9,
                error: Some("connection refused".into()),
            },
        ];
        r.pods = pods(&[Some("home"), Some("gke-prod")]);
        let t = r.to_table();
        let lines: Vec<&str> = t.lines().collect();
        assert!(lines[0].starts_with("CLUSTER   NAMESPACE"), "{t}");
        assert!(lines[1].starts_with("home      airflow"), "{t}");
        let v: serde_json::Value = serde_json::from_str(&r.to_json()).unwrap();
        assert_eq!(v["pods"][0]["cluster"], "home");
        assert_eq!(v["clusters"][1]["status"], "failed");
        assert_eq!(v["clusters"][1]["error"], "connection refused");
        let msgs = r.failed_clusters();
        assert_eq!(msgs.len(), 1);
        assert!(msgs[0].contains("gke-prod failed") && msgs[0].contains("connection refused"));
    }

    #[test]
    fn ages_are_short() {
        assert_eq!(human_age(5), "5s");
        assert_eq!(human_age(600), "10m");
        assert_eq!(human_age(7200), "2h");
        assert_eq!(human_age(3 * 86400 + 5), "3d");
        assert_eq!(human_age(-3), "0s");
    }
}
