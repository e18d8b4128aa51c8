//! The raw `run_id` behind a `run_id` label, where it can be proven.
//!
//! `make_safe_label_value` hashes nearly every real run_id: Airflow's own ids are
//! `<run type>__<ISO 8601 timestamp>[<suffix>]` (`scheduled__2024-01-01T00:00:00+00:00`,
//! `manual__2025-06-01T12:00:00.123456+00:00`, `asset_triggered__…`, 3.x manual runs with a
//! random `_xxxxxxxx` suffix), and cleaning drops their `:` and `+`. So the label cannot be looked
//! up in `task_instance.run_id` as it is. But the timestamp's shape says where the dropped
//! characters were: [`raw_run_ids`] puts them back and keeps a rebuilt id only when the label's own
//! md5 suffix proves it (`make_safe_label_value(raw) == label`). A run_id of another shape (a user's
//! own, or one cut at 53 characters) yields nothing, and the caller reads the task's rows instead.

use crate::make_safe_label_value;

/// Every raw run_id that may be behind `label`, when they can all be told; empty when they
/// cannot (the caller then reads the task's rows).
/// * A label without the hash shape is its own raw value: normalization changes a value only by
///   appending `-` and 9 hex digits.
/// * A label with the hash shape is its own value, or a hashed one: both are returned when the
///   Airflow-shaped id rebuilt from it is proven by its md5; otherwise nothing (a user's own
///   run_id, or one cut at 53 characters, cannot be rebuilt).
pub fn raw_run_ids(label: &str) -> Vec<String> {
    if !crate::looks_hashed(label) {
        return vec![label.to_owned()];
    }
    match rebuild(label) {
        Some(raw) if make_safe_label_value(&raw) == label => {
            let mut out = vec![raw];
            if make_safe_label_value(label) == label {
                out.push(label.to_owned());
            }
            out
        }
        _ => Vec::new(),
    }
}

/// The label's cleaned text (before `-` and 9 hex digits) with `:` and the offset's sign put back,
/// when it has the shape `PREFIX__YYYY-MM-DDTHHMMSS[.ffffff]HHMM[REST]` (`+` dropped) or
/// `…[.ffffff]-HHMM[REST]` (a negative offset keeps its `-`).
fn rebuild(label: &str) -> Option<String> {
    let b = label.as_bytes();
    if b.len() < 11 || b[b.len() - 10] != b'-' {
        return None;
    }
    let cleaned = &label[..label.len() - 10];
    let sep = cleaned.find("__")?;
    let (prefix, ts) = (&cleaned[..sep + 2], &cleaned[sep + 2..]);
    let t = ts.as_bytes();
    let digits = |r: std::ops::Range<usize>| {
        t.get(r.clone())
            .is_some_and(|s| s.iter().all(u8::is_ascii_digit))
    };
    // YYYY-MM-DDTHHMMSS
    if !(digits(0..4)
        && t.get(4) == Some(&b'-')
        && digits(5..7)
        && t.get(7) == Some(&b'-')
        && digits(8..10)
        && t.get(10) == Some(&b'T')
        && digits(11..17))
    {
        return None;
    }
    let mut raw = String::with_capacity(cleaned.len() + 4);
    raw.push_str(prefix);
    raw.push_str(&ts[..13]);
    raw.push(':');
    raw.push_str(&ts[13..15]);
    raw.push(':');
    raw.push_str(&ts[15..17]);
    let mut i = 17;
    // Python's isoformat writes microseconds as exactly 6 digits, only when nonzero.
    if t.get(i) == Some(&b'.') && digits(i + 1..i + 7) {
        raw.push_str(&ts[i..i + 7]);
        i += 7;
    }
    let sign = if t.get(i) == Some(&b'-') {
        i += 1;
        '-'
    } else {
        '+'
    };
    if !digits(i..i + 4) {
        return None;
    }
    raw.push(sign);
    raw.push_str(&ts[i..i + 2]);
    raw.push(':');
    raw.push_str(&ts[i + 2..i + 4]);
    raw.push_str(&ts[i + 4..]);
    Some(raw)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn round_trip(raw: &str) {
        let label = make_safe_label_value(raw);
        assert_ne!(label, raw, "{raw} needs cleaning");
        // The rebuilt id, and the label itself (a run_id may be literally that).
        assert_eq!(
            raw_run_ids(&label),
            vec![raw.to_owned(), label.clone()],
            "{raw} -> {label}"
        );
    }

    #[test]
    fn airflows_own_run_ids_are_rebuilt_and_proven() {
        for raw in [
            "scheduled__2024-01-01T00:00:00+00:00",
            "manual__2025-12-02T10:11:12.123456+00:00",
            "backfill__2023-05-06T07:08:09+00:00",
            "asset_triggered__2025-01-01T00:00:00.000001+00:00",
            "dataset_triggered__2024-02-29T23:59:59+00:00",
            "manual__2025-06-01T12:00:00+00:00_Ab3dE5gh",
            "manual__2025-06-01T12:00:00-05:00",
            "scheduled__2025-06-01T12:00:00+05:30",
        ] {
            round_trip(raw);
        }
    }

    #[test]
    fn a_run_id_that_needed_no_cleaning_is_its_own_label() {
        assert_eq!(raw_run_ids("my_run.1"), vec!["my_run.1".to_owned()]);
    }

    #[test]
    fn other_shapes_and_forged_hashes_yield_nothing() {
        // A user's run_id with a space: hashed, and not Airflow-shaped.
        let label = make_safe_label_value("my run 2024");
        assert!(raw_run_ids(&label).is_empty(), "{label}");
        // The right shape, the wrong hash: not proven.
        assert!(raw_run_ids("scheduled__2024-01-01T0000000000-000000000").is_empty());
        // Cut at 53 characters: the tail is lost.
        let long = format!("manual__2024-01-01T00:00:00+00:00_{}", "x".repeat(40));
        assert!(raw_run_ids(&make_safe_label_value(&long)).is_empty());
    }
}
