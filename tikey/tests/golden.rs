//! Golden vectors from Airflow's own code (`tikey/golden/generate`): every one must match bit-exact.

use std::collections::BTreeMap;
use std::io::Write;

use serde::Deserialize;
use tikey::{TiKey, labels, make_safe_label_value};

#[derive(Deserialize)]
struct File<C> {
    versions: BTreeMap<String, String>,
    count: usize,
    cases: Vec<C>,
}

#[derive(Deserialize)]
struct SafeLabelCase {
    input: String,
    output: String,
}

#[derive(Deserialize)]
struct LabelCase {
    input: RawTi,
    labels: BTreeMap<String, String>,
}

#[derive(Deserialize)]
struct RawTi {
    dag_id: String,
    task_id: String,
    run_id: String,
    map_index: i64,
    try_number: i64,
}

/// Writes straight to stdout, past libtest's capture, so `cargo test` shows the counts.
fn say(line: String) {
    let _ = writeln!(std::io::stdout().lock(), "{line}");
}

fn load<C: for<'de> Deserialize<'de>>(name: &str) -> File<C> {
    let path = format!("{}/golden/{name}", env!("CARGO_MANIFEST_DIR"));
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("read {path}: {e}"));
    let file: File<C> = serde_json::from_str(&text).unwrap_or_else(|e| panic!("parse {path}: {e}"));
    assert_eq!(
        file.count,
        file.cases.len(),
        "{path}: count does not match cases"
    );
    file
}

#[test]
fn make_safe_label_value_matches_airflow_bit_exact() {
    let file: File<SafeLabelCase> = load("safe_label_values.json");
    assert!(
        file.cases.len() >= 5000,
        "expected >= 5000 vectors, got {}",
        file.cases.len()
    );
    let mut mismatches = Vec::new();
    for c in &file.cases {
        let ours = make_safe_label_value(&c.input);
        if ours != c.output {
            mismatches.push(format!(
                "{:?}: airflow {:?}, tikey {:?}",
                c.input, c.output, ours
            ));
        }
    }
    say(format!(
        "make_safe_label_value: {} of {} golden vectors match ({:?})",
        file.cases.len() - mismatches.len(),
        file.cases.len(),
        file.versions
    ));
    assert!(
        mismatches.is_empty(),
        "{} mismatches:\n{}",
        mismatches.len(),
        mismatches.join("\n")
    );
}

#[test]
fn kpo_label_sets_give_the_same_key_as_the_db_values() {
    let file: File<LabelCase> = load("kpo_labels.json");
    assert!(
        file.cases.len() >= 300,
        "expected >= 300 label sets, got {}",
        file.cases.len()
    );
    for c in &file.cases {
        assert_eq!(
            c.labels.get(labels::KPO).map(String::as_str),
            Some(labels::KPO_VALUE)
        );
        let (from_labels, try_number) = TiKey::from_pod_labels(&c.labels)
            .unwrap_or_else(|e| panic!("labels {:?}: {e}", c.labels));
        let from_db = TiKey::from_db(
            &c.input.dag_id,
            &c.input.task_id,
            &c.input.run_id,
            c.input.map_index,
        );
        assert_eq!(
            from_labels, from_db,
            "labels {:?} vs input {:?}",
            c.labels, c.input.dag_id
        );
        assert_eq!(try_number, c.input.try_number);
        // The key survives the stamp's encoding.
        assert_eq!(TiKey::decode(&from_labels.encode()), Ok(from_labels));
    }
    say(format!(
        "kpo labels: {} of {} golden label sets give TiKey::from_pod_labels == TiKey::from_db ({:?})",
        file.cases.len(),
        file.cases.len(),
        file.versions
    ));
}
