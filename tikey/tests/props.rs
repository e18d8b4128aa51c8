//! Properties that hold for every input.

use proptest::prelude::*;
use tikey::stamp::Stamp;
use tikey::{TiKey, is_valid_label_value, make_safe_label_value};

fn label_value() -> impl Strategy<Value = String> {
    // Anything: normalize it, as KPO does, so the components are in label form.
    any::<String>().prop_map(|s| make_safe_label_value(&s))
}

fn ti_key() -> impl Strategy<Value = TiKey> {
    (label_value(), label_value(), label_value(), -1i64..100_000).prop_map(|(d, t, r, m)| TiKey {
        dag_id: d,
        task_id: t,
        run_id: r,
        map_index: m,
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn output_is_a_valid_label_value(s in any::<String>()) {
        let out = make_safe_label_value(&s);
        if s.bytes().any(|b| b.is_ascii_alphanumeric()) {
            prop_assert!(is_valid_label_value(&out), "{:?} -> {:?}", s, out);
        } else {
            // Airflow's own edge case: nothing survives, so the value is "" (unchanged empty input)
            // or "-" plus the hash, which is not a valid label value.
            prop_assert!(out.is_empty() || (out.len() == 10 && out.starts_with('-')), "{:?} -> {:?}", s, out);
        }
        prop_assert!(out.len() <= 63);
    }

    #[test]
    fn normalization_is_idempotent_on_valid_values(s in "[a-zA-Z0-9]([-a-zA-Z0-9_.]{0,61}[a-zA-Z0-9])?") {
        prop_assert_eq!(make_safe_label_value(&s), s);
    }

    #[test]
    fn db_keys_builds_what_from_db_builds(rows in proptest::collection::vec(
        // Few distinct values, so runs of equal dag_ids and run_ids (the memo's case) are common.
        (prop_oneof![Just(String::new()), Just("d".to_owned()), ".{0,70}"],
         ".{0,20}",
         prop_oneof![Just(String::new()), Just("scheduled__2025-06-01T00:00:00+00:00".to_owned()), ".{0,70}"],
         -1i64..3),
        0..40)) {
        let mut keys = tikey::DbKeys::default();
        for (d, t, r, m) in &rows {
            prop_assert_eq!(keys.key(d, t, r, *m), TiKey::from_db(d, t, r, *m));
        }
    }

    #[test]
    fn ti_key_encoding_round_trips(k in ti_key()) {
        prop_assert_eq!(TiKey::decode(&k.encode()), Ok(k));
    }

    #[test]
    fn stamp_round_trips(k in proptest::option::of(ti_key()), t in proptest::option::of(0i64..1000),
                         a in proptest::option::of(0i64..4_000_000_000), c in proptest::option::of(".*")) {
        let s = Stamp { ti_key: k, try_number: t, admitted_at: a, created_by: c };
        let decoded = Stamp::from_annotations(&s.to_annotations()).unwrap();
        if s == Stamp::default() {
            prop_assert_eq!(decoded, None);
        } else {
            prop_assert_eq!(decoded, Some(s));
        }
    }

    #[test]
    fn decoding_never_panics(s in ".*") {
        let _ = TiKey::decode(&s);
        let mut a = std::collections::BTreeMap::new();
        a.insert(tikey::stamp::TI_KEY.to_owned(), s.clone());
        a.insert(tikey::stamp::ADMITTED_AT.to_owned(), s.clone());
        let _ = Stamp::from_annotations(&a);
    }

    #[test]
    fn pod_label_parsing_never_panics(m in proptest::collection::btree_map(
        prop_oneof![Just("dag_id".to_owned()), Just("task_id".to_owned()), Just("run_id".to_owned()),
                    Just("try_number".to_owned()), Just("map_index".to_owned()), Just("execution_date".to_owned()), ".*"],
        ".*", 0..8)) {
        let _ = TiKey::from_pod_labels(&m);
    }
}
