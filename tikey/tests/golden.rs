//! Golden vectors from Airflow's own code (`tikey/golden/generate`): every one must match bit-exact.

use std::collections::BTreeMap;
use std::io::Write;

use serde::Deserialize;
use tikey::{LabelError, TiKey, labels, make_safe_label_value};

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

/// Every label-set file the generator writes: the baseline (Airflow 3.3.2 + provider 10.25.0) and one
/// provider release per major, each beside an Airflow release it supports (tikey/golden/README.md).
const LABEL_SET_FILES: &[&str] = &[
    "kpo_labels.json",
    "kpo_labels.provider-2.2.0.json",
    "kpo_labels.provider-3.0.2.json",
    "kpo_labels.provider-4.4.0.json",
    "kpo_labels.provider-5.3.0.json",
    "kpo_labels.provider-6.1.0.json",
    "kpo_labels.provider-7.14.0.json",
    "kpo_labels.provider-8.4.2.json",
    "kpo_labels.provider-9.0.1.json",
    "kpo_labels.provider-10.5.0.json",
    "kpo_labels.provider-10.25.0.json",
];

/// `"3.0.2"` → `(3, 0, 2)`.
fn release(v: &str) -> (u32, u32, u32) {
    let mut parts = v.split('.').map(|p| {
        p.parse::<u32>()
            .unwrap_or_else(|e| panic!("version {v:?}: {e}"))
    });
    let mut next = || parts.next().unwrap_or(0);
    (next(), next(), next())
}

#[test]
fn the_golden_dir_holds_exactly_the_listed_label_sets() {
    let dir = format!("{}/golden", env!("CARGO_MANIFEST_DIR"));
    let mut found: Vec<String> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("read {dir}: {e}"))
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .filter(|n| n.starts_with("kpo_labels") && n.ends_with(".json"))
        .collect();
    found.sort();
    let mut listed: Vec<String> = LABEL_SET_FILES.iter().map(|s| s.to_string()).collect();
    listed.sort();
    assert_eq!(
        found, listed,
        "label-set files in {dir} differ from LABEL_SET_FILES: update the list with the generator's PAIRS"
    );
}

/// A label set from a provider that labels pods with `run_id` (>= 3.1.0): every pod's labels give the
/// key and the try number that the metadata-DB values give.
fn check_run_id_era(name: &str, file: &File<LabelCase>) {
    let mut mapped = 0;
    let mut hashed_run_ids = 0;
    for c in &file.cases {
        assert_eq!(
            c.labels.get(labels::KPO).map(String::as_str),
            Some(labels::KPO_VALUE),
            "{name}: {:?}",
            c.labels
        );
        let (from_labels, try_number) = TiKey::from_pod_labels(&c.labels)
            .unwrap_or_else(|e| panic!("{name}: labels {:?}: {e}", c.labels));
        let from_db = TiKey::from_db(
            &c.input.dag_id,
            &c.input.task_id,
            &c.input.run_id,
            c.input.map_index,
        );
        assert_eq!(
            from_labels, from_db,
            "{name}: labels {:?} vs input {:?}",
            c.labels, c.input.dag_id
        );
        assert_eq!(try_number, c.input.try_number, "{name}: {:?}", c.labels);
        // The key survives the stamp's encoding.
        assert_eq!(
            TiKey::decode(&from_labels.encode()),
            Ok(from_labels.clone())
        );
        mapped += usize::from(from_labels.map_index >= 0);
        hashed_run_ids += usize::from(tikey::looks_hashed(&from_labels.run_id));
    }
    // The set covers what it is meant to: mapped and unmapped tasks, hashed and kept run_ids.
    assert!(
        mapped > 0 && mapped < file.cases.len(),
        "{name}: {mapped} mapped"
    );
    assert!(
        hashed_run_ids > 0 && hashed_run_ids < file.cases.len(),
        "{name}: {hashed_run_ids} hashed run_ids"
    );
}

/// A label set from a provider < 3.1.0, which labelled pods with `execution_date` instead of `run_id`:
/// DESIGN.md §5 row 4, every such pod is unidentifiable (its labels name no task instance).
fn check_execution_date_era(name: &str, file: &File<LabelCase>) {
    for c in &file.cases {
        assert!(
            c.labels.contains_key(labels::EXECUTION_DATE)
                && !c.labels.contains_key(labels::RUN_ID)
                && c.labels.contains_key(labels::DAG_ID)
                && c.labels.contains_key(labels::TASK_ID)
                && c.labels.contains_key(labels::TRY_NUMBER),
            "{name}: not the execution_date era's labels: {:?}",
            c.labels
        );
        assert_eq!(
            TiKey::from_pod_labels(&c.labels),
            Err(LabelError::LegacyExecutionDate),
            "{name}: {:?}",
            c.labels
        );
    }
}

#[test]
fn every_provider_releases_label_sets_read_right() {
    for name in LABEL_SET_FILES {
        let file: File<LabelCase> = load(name);
        assert!(
            file.cases.len() >= 300,
            "{name}: expected >= 300 label sets, got {}",
            file.cases.len()
        );
        let provider = &file.versions["apache-airflow-providers-cncf-kubernetes"];
        let legacy = release(provider) < (3, 1, 0);
        if legacy {
            check_execution_date_era(name, &file);
        } else {
            check_run_id_era(name, &file);
        }
        say(format!(
            "kpo labels {name}: {} of {} label sets {} ({:?})",
            file.cases.len(),
            file.cases.len(),
            if legacy {
                "unidentifiable (LegacyExecutionDate), as DESIGN.md §5 row 4 says"
            } else {
                "give TiKey::from_pod_labels == TiKey::from_db"
            },
            file.versions
        ));
    }
}
