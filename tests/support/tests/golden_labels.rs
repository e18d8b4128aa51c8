//! `kpo_pod`'s labels equal, bit for bit, the labels KPO 10.25.0 itself built for the golden inputs
//! (tikey/golden/kpo_labels.json, generated from the pinned PyPI packages).
#![forbid(unsafe_code)]
#![deny(warnings, rust_2018_idioms)]

use std::collections::BTreeMap;

use testsupport::TiSpec;

#[test]
fn kpo_pod_labels_match_kpo_golden_label_sets() {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../tikey/golden/kpo_labels.json"
    );
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{path}: {e}"));
    let golden: serde_json::Value = serde_json::from_str(&text).expect("golden JSON");
    let cases = golden["cases"].as_array().expect("cases");
    assert!(cases.len() >= 100, "too few golden cases: {}", cases.len());
    for case in cases {
        let input = &case["input"];
        let s = |k: &str| {
            input[k]
                .as_str()
                .unwrap_or_else(|| panic!("{k} in {input}"))
        };
        let i = |k: &str| {
            input[k]
                .as_i64()
                .unwrap_or_else(|| panic!("{k} in {input}"))
        };
        let ti = TiSpec::new(s("dag_id"), s("task_id"), s("run_id"))
            .map_index(i("map_index"))
            .try_number(i("try_number"));
        let want: BTreeMap<String, String> =
            serde_json::from_value(case["labels"].clone()).expect("labels");
        let pod = testsupport::kpo_pod("p", &ti);
        assert_eq!(pod.metadata.labels.as_ref(), Some(&want), "input {input}");
        // And the key parsed back from those labels is the key the sweeper builds from the DB row.
        let (key, try_number) = tikey::TiKey::from_pod_labels(&want).expect("parse");
        assert_eq!(key, ti.key(), "input {input}");
        assert_eq!(try_number, ti.try_number);
    }
}
