//! The run's report: docs/design.md §8's JSON document, or a kubectl-like table; and the one-line
//! summary for stderr.

use std::fmt::Write as _;
use std::io::Write as _;

use serde::Serialize;

use crate::decide::{Reason, Verdict};

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

#[derive(Debug, Clone, Serialize)]
pub struct PodRow {
    pub namespace: String,
    pub name: String,
    pub uid: String,
    pub ti_key: Option<String>,
    pub try_number: Option<i64>,
    pub decision: Verdict,
    pub reason: Reason,
    pub action: Action,
    /// For the table's AGE column only.
    #[serde(skip)]
    pub age_secs: Option<i64>,
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

#[derive(Debug, Clone, Serialize)]
pub struct Report {
    pub version: u32,
    pub dry_run: bool,
    pub started_at: String,
    pub duration_ms: u64,
    pub summary: Summary,
    pub pods: Vec<PodRow>,
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
            crate::args::Output::Table => w.write_all(self.to_table().as_bytes())?,
        }
        w.flush()
    }

    /// NAMESPACE POD TI-KEY TRY DECISION REASON AGE, columns padded like kubectl's.
    pub fn to_table(&self) -> String {
        let header = [
            "NAMESPACE",
            "POD",
            "TI-KEY",
            "TRY",
            "DECISION",
            "REASON",
            "AGE",
        ];
        let rows: Vec<[String; 7]> = self
            .pods
            .iter()
            .map(|p| {
                [
                    p.namespace.clone(),
                    p.name.clone(),
                    p.ti_key.clone().unwrap_or_else(|| "<none>".to_owned()),
                    p.try_number
                        .map_or_else(|| "<none>".to_owned(), |t| t.to_string()),
                    p.decision.as_str().to_owned(),
                    p.reason.as_str().to_owned(),
                    p.age_secs.map_or_else(|| "<unknown>".to_owned(), human_age),
                ]
            })
            .collect();
        let mut widths = header.map(str::len);
        for r in &rows {
            for (w, c) in widths.iter_mut().zip(r) {
                *w = (*w).max(c.len());
            }
        }
        let mut out = String::new();
        let mut line = |cells: &[&str]| {
            let last = cells.len() - 1;
            for (i, c) in cells.iter().enumerate() {
                if i == last {
                    out.push_str(c);
                } else {
                    let _ = write!(out, "{c:<w$}   ", w = widths[i]);
                }
            }
            out.push('\n');
        };
        line(&header);
        for r in &rows {
            let cells: Vec<&str> = r.iter().map(String::as_str).collect();
            line(&cells);
        }
        out
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
            pods: vec![
                PodRow {
                    namespace: "airflow".into(),
                    name: "zombie-pod".into(),
                    uid: "u1".into(),
                    ti_key: Some("kpo_zombie_dag/zombie_kpo_task/manual__x/-1".into()),
                    try_number: Some(1),
                    decision: Verdict::Zombie,
                    reason: Reason::NoActiveTi,
                    action: Action::WouldDelete,
                    age_secs: Some(7200),
                },
                PodRow {
                    namespace: "airflow".into(),
                    name: "legacy".into(),
                    uid: "u2".into(),
                    ti_key: None,
                    try_number: None,
                    decision: Verdict::Skip,
                    reason: Reason::Unidentifiable,
                    action: Action::None,
                    age_secs: None,
                },
            ],
        }
    }

    #[test]
    fn json_is_designs_section_8_exactly() {
        let v: serde_json::Value = serde_json::from_str(&report().to_json()).unwrap();
        let expected = serde_json::json!({
            "version": 1, "dry_run": true, "started_at": "2026-01-01T00:00:00Z", "duration_ms": 12,
            "summary": {"listed": 2, "active_tis": 1, "zombies": 1, "deleted": 0, "failed": 0, "unstamped": 0, "newer_than_db": 0, "unknown_ti": 0},
            "pods": [
                {"namespace": "airflow", "name": "zombie-pod", "uid": "u1",
                 "ti_key": "kpo_zombie_dag/zombie_kpo_task/manual__x/-1", "try_number": 1,
                 "decision": "zombie", "reason": "no-active-ti", "action": "would-delete"},
                {"namespace": "airflow", "name": "legacy", "uid": "u2", "ti_key": null, "try_number": null,
                 "decision": "skip", "reason": "unidentifiable", "action": "none"}
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
    fn ages_are_short() {
        assert_eq!(human_age(5), "5s");
        assert_eq!(human_age(600), "10m");
        assert_eq!(human_age(7200), "2h");
        assert_eq!(human_age(3 * 86400 + 5), "3d");
        assert_eq!(human_age(-3), "0s");
    }
}
