//! `cargo bench -p tikey`: ns per call of make_safe_label_value and TiKey::from_pod_labels on realistic
//! ids (the golden KPO label sets' raw DB values and labels). A plain timer, no harness: it prints figures.

use std::collections::BTreeMap;
use std::hint::black_box;
use std::time::Instant;

use serde::Deserialize;
use tikey::{TiKey, make_safe_label_value};

#[derive(Deserialize)]
struct File {
    cases: Vec<Case>,
}
#[derive(Deserialize)]
struct Case {
    input: Raw,
    labels: BTreeMap<String, String>,
}
#[derive(Deserialize)]
struct Raw {
    dag_id: String,
    task_id: String,
    run_id: String,
    map_index: i64,
}

fn time_per_call(label: &str, calls_per_round: usize, mut f: impl FnMut()) {
    // Warm up, then take the best of several rounds (least disturbed by the other core's work).
    for _ in 0..3 {
        f();
    }
    let mut best = f64::INFINITY;
    for _ in 0..15 {
        let t = Instant::now();
        for _ in 0..20 {
            f();
        }
        let ns = t.elapsed().as_nanos() as f64 / (20 * calls_per_round) as f64;
        best = best.min(ns);
    }
    println!("{label:<58} {best:>8.1} ns/call");
}

fn main() {
    let text = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/golden/kpo_labels.json"
    ))
    .expect("golden/kpo_labels.json");
    let file: File = serde_json::from_str(&text).expect("parse golden/kpo_labels.json");
    let ids: Vec<&str> = file
        .cases
        .iter()
        .flat_map(|c| {
            [
                c.input.dag_id.as_str(),
                c.input.task_id.as_str(),
                c.input.run_id.as_str(),
            ]
        })
        .collect();
    let clean: Vec<&str> = ids
        .iter()
        .copied()
        .filter(|s| make_safe_label_value(s) == *s)
        .collect();
    let dirty: Vec<&str> = ids
        .iter()
        .copied()
        .filter(|s| make_safe_label_value(s) != *s)
        .collect();
    println!(
        "tikey benchmark over {} golden KPO label sets ({} ids: {} already label-safe, {} hashed)",
        file.cases.len(),
        ids.len(),
        clean.len(),
        dirty.len()
    );
    time_per_call(
        "make_safe_label_value, all realistic ids",
        ids.len(),
        || {
            for s in &ids {
                black_box(make_safe_label_value(black_box(s)));
            }
        },
    );
    time_per_call(
        "make_safe_label_value, label-safe ids (no hash)",
        clean.len(),
        || {
            for s in &clean {
                black_box(make_safe_label_value(black_box(s)));
            }
        },
    );
    time_per_call(
        "make_safe_label_value, ids needing the md5 suffix",
        dirty.len(),
        || {
            for s in &dirty {
                black_box(make_safe_label_value(black_box(s)));
            }
        },
    );
    time_per_call(
        "TiKey::from_db (3 normalizations)",
        file.cases.len(),
        || {
            for c in &file.cases {
                let r = &c.input;
                black_box(TiKey::from_db(
                    &r.dag_id,
                    &r.task_id,
                    &r.run_id,
                    r.map_index,
                ));
            }
        },
    );
    time_per_call("TiKey::from_pod_labels", file.cases.len(), || {
        for c in &file.cases {
            black_box(TiKey::from_pod_labels(black_box(&c.labels)).expect("golden labels parse"));
        }
    });
}
