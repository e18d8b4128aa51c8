//! Which structure holds a sweep's bytes (not a test): `sweeper/bench/run.sh --mem --namespace NS`.
//!
//! On a namespace that holds the bench's pods (a `run.sh --namespace NS` run leaves them), builds the
//! structures a dry run holds, one after the other, and prints the growth of this process's resident
//! memory (VmRSS) each one causes, in MB and bytes per pod:
//! 1. the listed pods (`sweeper::pods::list`: `Vec<PodMeta>`, as a sweep lists them);
//! 2. the active-TI map, one entry per pod's key (`decide::ActiveMap<&TiKey>`, keyed by the pods' own
//!    keys, as the DB read fills it when every pod's TI is active, the bench's case);
//! 3. the sibling index (row 14);
//! 4. the report (`report::Pods`: the pods themselves, with a decision, an action and a cluster each).
//!
//! 1 + 2 + 3 are what the plan holds while it decides: the run's peak.
//!
//! Usage: mem_breakdown --namespace NS
#![forbid(unsafe_code)]
#![deny(warnings, rust_2018_idioms)]

use std::collections::HashSet;

use sweeper::decide::{
    ActiveMap, ActiveTi, DecideConfig, Decision, Reason, SiblingIndex, Verdict, insert_active,
};
use sweeper::report::{Action, Pods};
use tikey::TiKey;

fn rss() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next()?.parse::<u64>().ok())
        .map_or(0, |kb| kb * 1024)
}

/// Growth from `from` to `to` (negative when memory was given back).
fn line(what: &str, from: u64, to: u64, n: usize) {
    let bytes = to as i64 - from as i64;
    println!(
        "{what:<44} {:>8.1} MB {:>7.0} B/pod",
        bytes as f64 / 1e6,
        bytes as f64 / n.max(1) as f64
    );
}

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let mut args = std::env::args().skip(1);
    let ns = match (args.next().as_deref(), args.next()) {
        (Some("--namespace"), Some(ns)) => ns,
        _ => panic!("usage: mem_breakdown --namespace NS"),
    };
    let client = testsupport::client().await;
    let start = rss();
    let scope = sweeper::pods::ListScope {
        namespaces: Some(vec![ns.clone()]),
        include_completed: false,
        page_size: sweeper::pods::PAGE_SIZE,
    };
    let before = rss();
    let pods = sweeper::pods::list(&client, &scope).await.expect("list");
    let after_list = rss();
    let n = pods.len();
    println!(
        "namespace {ns}: {n} pods; RSS at start {:.1} MB",
        start as f64 / 1e6
    );
    line("1. listed pods (Vec<PodMeta>)", before, after_list, n);

    // What the sweep's main read keeps when every pod's TI is active (the bench's case): one entry
    // per pod, keyed by the pod's own key.
    let wanted: HashSet<&TiKey> = pods
        .iter()
        .filter_map(|p| p.key().map(|(k, _)| k))
        .collect();
    let mut active: ActiveMap<&TiKey> = ActiveMap::with_capacity(wanted.len());
    for p in &pods {
        if let Some((key, t)) = p.key() {
            insert_active(&mut active, key, ActiveTi::new(t, Some("running")));
        }
    }
    let after_map = rss();
    line(
        "2. active-TI map (HashMap<&TiKey, ActiveTi>) + keys",
        after_list,
        after_map,
        n,
    );

    let cfg = DecideConfig::default();
    let siblings = SiblingIndex::build(&pods, &cfg);
    let after_siblings = rss();
    line(
        "3. sibling index (sorted Vec<u32>)",
        after_map,
        after_siblings,
        n,
    );
    drop(siblings);
    drop(active);
    drop(wanted);

    // The report: the pods themselves, with a decision, an action and a cluster each.
    let before_report = rss();
    let report = Pods::new(
        pods,
        vec![
            Decision {
                verdict: Verdict::Keep,
                reason: Reason::Active,
                stuck_terminating: false
            };
            n
        ],
        vec![Action::None; n],
        vec![0; n],
        vec![None],
        0,
    );
    let after_report = rss();
    line(
        "4. report (Pods: the pods + 3 vectors)",
        before_report,
        after_report,
        n,
    );
    line("at the plan's peak (1 + 2 + 3)", before, after_siblings, n);
    println!(
        "sizes: PodMeta {} B, TiKey {} B, ActiveTi {} B, (&TiKey, ActiveTi) {} B, Uid {} B (inline, before heap strings)",
        std::mem::size_of::<sweeper::decide::PodMeta>(),
        std::mem::size_of::<TiKey>(),
        std::mem::size_of::<ActiveTi>(),
        std::mem::size_of::<(&TiKey, ActiveTi)>(),
        std::mem::size_of::<sweeper::decide::Uid>(),
    );
    drop(report);
}
