//! Which structure holds a sweep's bytes (not a test): `sweeper/bench/run.sh --mem --namespace NS`.
//!
//! On a namespace that holds the bench's pods (a `run.sh --namespace NS` run leaves them), builds the
//! three structures a dry run holds at its peak, one after the other, and prints the growth of this
//! process's resident memory (VmRSS) each one causes, in MB and bytes per pod:
//! 1. the listed pods (`sweeper::pods::list`: `Vec<PodMeta>`, as a sweep lists them);
//! 2. the active-TI map, one entry per pod's key (`decide::ActiveMap`: `HashMap<TiKey, ActiveTi>`, as the
//!    DB read fills it when every pod's TI is active, the bench's case);
//! 3. the report's rows (`report::PodRow`: namespace, name, uid and the encoded key copied per pod).
//!
//! Usage: mem_breakdown --namespace NS
#![forbid(unsafe_code)]
#![deny(warnings, rust_2018_idioms)]

use sweeper::decide::{ActiveMap, ActiveTi, Reason, Verdict};
use sweeper::report::{Action, PodRow};

fn rss() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next()?.parse::<u64>().ok())
        .map_or(0, |kb| kb * 1024)
}

fn line(what: &str, bytes: u64, n: usize) {
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
    line("1. listed pods (Vec<PodMeta>)", after_list - before, n);

    let mut active = ActiveMap::with_capacity(n);
    for p in &pods {
        if let Some((key, t)) = p.key() {
            active.insert(key.clone(), ActiveTi::new(t, Some("running")));
        }
    }
    let after_map = rss();
    line(
        "2. active-TI map (HashMap<TiKey, ActiveTi>)",
        after_map - after_list,
        n,
    );

    let rows: Vec<PodRow> = pods
        .iter()
        .map(|p| PodRow {
            namespace: p.namespace.to_string(),
            name: p.name.clone(),
            uid: p.uid.clone(),
            ti_key: p.key().map(|(k, _)| k.encode()),
            try_number: p.key().map(|(_, t)| t),
            decision: Verdict::Keep,
            reason: Reason::Active,
            cluster: None,
            action: Action::None,
            age_secs: None,
        })
        .collect();
    let after_rows = rss();
    line("3. report rows (Vec<PodRow>)", after_rows - after_map, n);
    line("all three", after_rows - before, n);
    println!(
        "sizes: PodMeta {} B, TiKey {} B, ActiveTi {} B, PodRow {} B (inline, before heap strings)",
        std::mem::size_of::<sweeper::decide::PodMeta>(),
        std::mem::size_of::<tikey::TiKey>(),
        std::mem::size_of::<ActiveTi>(),
        std::mem::size_of::<PodRow>()
    );
    drop((pods, active, rows));
}
