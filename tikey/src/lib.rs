//! `tikey`: the contract between kpo-sweeper's webhook and sweeper.
//!
//! * [`make_safe_label_value`]: Airflow's own label normalization, bit-exact (checked against golden
//!   vectors produced by the real `apache-airflow-providers-cncf-kubernetes`).
//! * [`TiKey`]: a task instance's identity in label form, built either from a KubernetesPodOperator
//!   pod's labels ([`TiKey::from_pod_labels`]) or from raw metadata-DB values ([`TiKey::from_db`]).
//!   Both sides produce equal keys for the same task instance; that is what the golden label sets prove.
//! * [`run_id::raw_run_ids`]: the raw run_id behind a hashed `run_id` label, where its md5 proves it
//!   (Airflow's own `<type>__<timestamp>` ids), so the sweeper can look rows up by index.
//! * [`stamp`]: the annotation keys the webhook writes and the sweeper reads, and their decoding.
//!
//! No I/O, no async: plain data in, plain data out.
#![forbid(unsafe_code)]
#![deny(warnings, rust_2018_idioms)]

use std::collections::BTreeMap;
use std::fmt;
use std::str::FromStr;

pub mod run_id;
pub mod stamp;

/// The longest label value Kubernetes accepts.
pub const MAX_LABEL_LEN: usize = 63;

/// Label keys KubernetesPodOperator puts on the pods it creates (cncf-kubernetes provider ≥ 3.1.0).
pub mod labels {
    pub const DAG_ID: &str = "dag_id";
    pub const TASK_ID: &str = "task_id";
    pub const RUN_ID: &str = "run_id";
    pub const MAP_INDEX: &str = "map_index";
    pub const TRY_NUMBER: &str = "try_number";
    /// `kubernetes_pod_operator=True` marks every KPO pod; the webhook and the sweeper select on it.
    pub const KPO: &str = "kubernetes_pod_operator";
    pub const KPO_VALUE: &str = "True";
    /// Set by KPO's own cleanup (`True`), right before it deletes or keeps the pod.
    pub const ALREADY_CHECKED: &str = "already_checked";
    pub const ALREADY_CHECKED_VALUE: &str = "True";
    /// The label providers < 3.1.0 used instead of `run_id`.
    pub const EXECUTION_DATE: &str = "execution_date";
    /// The label selector that matches every KPO pod.
    pub const KPO_SELECTOR: &str = "kubernetes_pod_operator=True";
}

/// Airflow's `make_safe_label_value` (cncf-kubernetes provider, `pod_generator.py`), bit-exact.
///
/// Airflow removes, with one regex (`^[^a-z0-9A-Z]*|[^a-zA-Z0-9_\-\.]|[^a-z0-9A-Z]*$`), every leading and
/// trailing character that is not an ASCII letter or digit and every inner character outside
/// `[A-Za-z0-9_.-]`. If that changed anything, or the result is longer than 63 characters, it keeps the
/// first 53 characters and appends `-` and the first 9 hex digits of the MD5 of the *original* string's
/// UTF-8 bytes.
///
/// Note Airflow's own edge case, kept here: an input without any ASCII letter or digit (`"!!"`, `"日本"`)
/// normalizes to `-` followed by the hash, which is not a valid label value (a pod carrying it would be
/// rejected by the apiserver, so no KPO pod can have it).
pub fn make_safe_label_value(s: &str) -> String {
    // A valid label value comes back unchanged (what Airflow computes, stripped and filtered, equals
    // it and is short enough); one exact copy.
    if is_valid_label_value(s) {
        return s.to_owned();
    }
    let bytes = s.as_bytes();
    // Leading and trailing runs of non-alphanumerics (non-ASCII bytes are never alphanumeric, so byte
    // offsets found this way are always char boundaries).
    let start = bytes
        .iter()
        .position(u8::is_ascii_alphanumeric)
        .unwrap_or(bytes.len());
    let end = bytes
        .iter()
        .rposition(u8::is_ascii_alphanumeric)
        .map_or(start, |i| i + 1);
    let inner = &bytes[start..end.max(start)];
    // Anything else is cut and hashed. Inner characters: keep only the allowed ASCII set; bytes of
    // multi-byte chars are all >= 0x80 and therefore dropped as a whole.
    let keep = MAX_LABEL_LEN - HASH_LEN - 1;
    let mut safe = String::with_capacity(inner.len().min(keep) + 1 + HASH_LEN);
    safe.extend(
        inner
            .iter()
            .filter(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.'))
            .take(keep)
            .map(|&b| b as char),
    );
    safe.push('-');
    push_md5_hex9(&mut safe, bytes);
    safe
}

/// Whether a label value has the shape of a normalized one (`…-` + 9 lowercase hex digits): any
/// value `make_safe_label_value` changed has it; a value without it is its own raw value.
pub fn looks_hashed(v: &str) -> bool {
    let b = v.as_bytes();
    b.len() > HASH_LEN
        && b[b.len() - HASH_LEN - 1] == b'-'
        && b[b.len() - HASH_LEN..]
            .iter()
            .all(|c| c.is_ascii_digit() || (b'a'..=b'f').contains(c))
}

/// The length of the hash `make_safe_label_value` appends: md5's first 9 hex digits.
const HASH_LEN: usize = 9;

fn push_md5_hex9(out: &mut String, bytes: &[u8]) {
    use md5::{Digest, Md5};
    let end = out.len() + HASH_LEN;
    for b in Md5::digest(bytes).iter().take(HASH_LEN.div_ceil(2)) {
        out.push(hex_digit(b >> 4));
        out.push(hex_digit(b & 0xf));
    }
    out.truncate(end);
}

fn hex_digit(n: u8) -> char {
    char::from_digit(u32::from(n), 16).expect("a nibble is a hex digit")
}

/// Whether `s` is a valid Kubernetes label value: empty, or at most 63 characters of `[-A-Za-z0-9_.]`
/// beginning and ending with an ASCII letter or digit.
pub fn is_valid_label_value(s: &str) -> bool {
    let b = s.as_bytes();
    if b.is_empty() {
        return true;
    }
    b.len() <= MAX_LABEL_LEN
        && b[0].is_ascii_alphanumeric()
        && b[b.len() - 1].is_ascii_alphanumeric()
        && b.iter()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, b'-' | b'_' | b'.'))
}

/// A task instance's identity in label form: `dag_id`, `task_id` and `run_id` as
/// [`make_safe_label_value`] leaves them, and `map_index` (`-1` for an unmapped task).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct TiKey {
    pub dag_id: String,
    pub task_id: String,
    pub run_id: String,
    pub map_index: i64,
}

/// Why a pod's labels do not name a task instance.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LabelError {
    #[error(
        "pod has no `{0}` label: not a KubernetesPodOperator pod, or one this version cannot identify"
    )]
    MissingLabel(&'static str),
    #[error(
        "pod is labelled with `execution_date` and no `run_id`: it was created by \
         apache-airflow-providers-cncf-kubernetes < 3.1.0, whose labels cannot be matched to a task instance"
    )]
    LegacyExecutionDate,
    #[error("label `{label}` is `{value}`, not an integer")]
    NotAnInteger { label: &'static str, value: String },
}

impl LabelError {
    /// A bounded label for metrics.
    pub fn metric_label(&self) -> &'static str {
        match self {
            LabelError::MissingLabel(_) => "missing-label",
            LabelError::LegacyExecutionDate => "legacy-execution-date",
            LabelError::NotAnInteger { .. } => "not-an-integer",
        }
    }
}

impl TiKey {
    /// Reads the key and the try number from a KPO pod's labels.
    ///
    /// KPO labels the pod with the normalized `dag_id`, `task_id`, `run_id`, `try_number` and, for a
    /// mapped task only, `map_index`; an absent `map_index` means `-1`. Label values are taken as they
    /// are (they are already in label form).
    pub fn from_pod_labels(labels: &BTreeMap<String, String>) -> Result<(TiKey, i64), LabelError> {
        Self::from_label_lookup(|k| labels.get(k).map(String::as_str))
    }

    /// [`TiKey::from_pod_labels`] over any label lookup (`get(key)` is the label's value): a
    /// reader that never builds the map, like the sweeper's LIST decoding, reads the same way.
    pub fn from_label_lookup<'a>(
        get: impl Fn(&'static str) -> Option<&'a str>,
    ) -> Result<(TiKey, i64), LabelError> {
        let dag_id = get(labels::DAG_ID).ok_or(LabelError::MissingLabel(labels::DAG_ID))?;
        let task_id = get(labels::TASK_ID).ok_or(LabelError::MissingLabel(labels::TASK_ID))?;
        let run_id = match get(labels::RUN_ID) {
            Some(r) => r,
            None if get(labels::EXECUTION_DATE).is_some() => {
                return Err(LabelError::LegacyExecutionDate);
            }
            None => return Err(LabelError::MissingLabel(labels::RUN_ID)),
        };
        let try_number =
            get(labels::TRY_NUMBER).ok_or(LabelError::MissingLabel(labels::TRY_NUMBER))?;
        let try_number = parse_int(labels::TRY_NUMBER, try_number)?;
        let map_index = match get(labels::MAP_INDEX) {
            Some(m) => parse_int(labels::MAP_INDEX, m)?,
            None => -1,
        };
        Ok((
            TiKey {
                dag_id: dag_id.to_owned(),
                task_id: task_id.to_owned(),
                run_id: run_id.to_owned(),
                map_index,
            },
            try_number,
        ))
    }

    /// Builds the key from raw metadata-DB values, normalizing them exactly as KPO does for labels.
    pub fn from_db(dag_id: &str, task_id: &str, run_id: &str, map_index: i64) -> TiKey {
        TiKey {
            dag_id: make_safe_label_value(dag_id),
            task_id: make_safe_label_value(task_id),
            run_id: make_safe_label_value(run_id),
            map_index,
        }
    }
}

/// Builds keys from metadata-DB rows exactly like [`TiKey::from_db`], remembering the last `dag_id`
/// and `run_id` it normalized: the rows of one DAG run share both (and a run_id of a real Airflow,
/// with its `:` and `+`, is always cut and hashed), so most rows normalize only their `task_id`.
#[derive(Debug, Default)]
pub struct DbKeys {
    /// (raw, label form) of the last `dag_id` and `run_id`; `("", "")` is a true pair.
    dag_id: (String, String),
    run_id: (String, String),
}

impl DbKeys {
    /// The key of one row: equal to `TiKey::from_db(dag_id, task_id, run_id, map_index)`.
    pub fn key(&mut self, dag_id: &str, task_id: &str, run_id: &str, map_index: i64) -> TiKey {
        TiKey {
            dag_id: Self::normalize(&mut self.dag_id, dag_id),
            task_id: make_safe_label_value(task_id),
            run_id: Self::normalize(&mut self.run_id, run_id),
            map_index,
        }
    }

    fn normalize(last: &mut (String, String), raw: &str) -> String {
        if last.0 != raw {
            last.1 = make_safe_label_value(raw);
            last.0.clear();
            last.0.push_str(raw);
        }
        last.1.clone()
    }
}

fn parse_int(label: &'static str, value: &str) -> Result<i64, LabelError> {
    // Strict: what Python's str(int) produces ("-1", "0", "12"), nothing else (no "+1", no " 1").
    let ok = !value.is_empty()
        && value
            .strip_prefix('-')
            .unwrap_or(value)
            .bytes()
            .all(|b| b.is_ascii_digit())
        && value != "-";
    match value.parse::<i64>() {
        Ok(n) if ok => Ok(n),
        _ => Err(LabelError::NotAnInteger {
            label,
            value: value.to_owned(),
        }),
    }
}

/// Why a `kpo-sweeper.io/ti-key` value cannot be decoded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum KeyError {
    #[error("ti-key `{0}` does not have the form <dag_id>/<task_id>/<run_id>/<map_index>")]
    Shape(String),
    #[error("ti-key `{value}`: {part} `{found}` is not a valid label value")]
    NotLabelForm {
        value: String,
        part: &'static str,
        found: String,
    },
    #[error("ti-key `{0}`: map_index is not an integer >= -1")]
    MapIndex(String),
}

/// `<dag_id>/<task_id>/<run_id>/<map_index>`: the stamp's `kpo-sweeper.io/ti-key` value. `/` cannot
/// occur in a label value, so the form is unambiguous.
impl fmt::Display for TiKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}/{}/{}/{}",
            self.dag_id, self.task_id, self.run_id, self.map_index
        )
    }
}

impl TiKey {
    /// The stamp form, `<dag_id>/<task_id>/<run_id>/<map_index>`.
    pub fn encode(&self) -> String {
        self.to_string()
    }

    /// Parses the stamp form, rejecting anything [`TiKey::encode`] of a label-form key cannot produce.
    pub fn decode(value: &str) -> Result<TiKey, KeyError> {
        let parts: Vec<&str> = value.split('/').collect();
        let [dag_id, task_id, run_id, map_index] = parts[..] else {
            return Err(KeyError::Shape(value.to_owned()));
        };
        for (part, found) in [("dag_id", dag_id), ("task_id", task_id), ("run_id", run_id)] {
            if !is_key_component(found) {
                return Err(KeyError::NotLabelForm {
                    value: value.to_owned(),
                    part,
                    found: found.to_owned(),
                });
            }
        }
        // Only the form `encode` writes: `-1`, `0`, `12` (not `-0`, `007`).
        let map_index = match parse_int(labels::MAP_INDEX, map_index) {
            Ok(n) if n >= -1 && n.to_string() == map_index => n,
            _ => return Err(KeyError::MapIndex(value.to_owned())),
        };
        Ok(TiKey {
            dag_id: dag_id.to_owned(),
            task_id: task_id.to_owned(),
            run_id: run_id.to_owned(),
            map_index,
        })
    }
}

impl FromStr for TiKey {
    type Err = KeyError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        TiKey::decode(s)
    }
}

/// A key component is a valid label value or Airflow's hash-only form (`-` + 9 hex digits) that
/// [`make_safe_label_value`] gives an input without ASCII letters or digits.
fn is_key_component(s: &str) -> bool {
    is_valid_label_value(s)
        || (s.len() == 10
            && s.starts_with('-')
            && s[1..]
                .bytes()
                .all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decode_accepts_only_the_canonical_map_index() {
        assert_eq!(TiKey::decode("d/t/r/-1").unwrap().map_index, -1);
        assert_eq!(TiKey::decode("d/t/r/12").unwrap().map_index, 12);
        for bad in [
            "d/t/r/-0",
            "d/t/r/-00",
            "d/t/r/007",
            "d/t/r/00",
            "d/t/r/-2",
            "d/t/r/+1",
        ] {
            assert!(
                matches!(TiKey::decode(bad), Err(KeyError::MapIndex(_))),
                "{bad}"
            );
        }
    }

    fn labels(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn unchanged_short_ids_stay_as_they_are() {
        assert_eq!(make_safe_label_value("kpo_zombie_dag"), "kpo_zombie_dag");
        assert_eq!(make_safe_label_value("group.task-1"), "group.task-1");
        assert_eq!(make_safe_label_value(""), "");
    }

    #[test]
    fn changed_ids_get_the_md5_suffix_of_the_original() {
        // `:` and `+` are dropped, so the md5 of the original is appended.
        let out = make_safe_label_value("scheduled__2024-01-01T00:00:00+00:00");
        assert_eq!(out, "scheduled__2024-01-01T0000000000-654f198ec");
    }

    #[test]
    fn long_ids_are_truncated_to_53_plus_hash() {
        let s = "a".repeat(64);
        let out = make_safe_label_value(&s);
        assert_eq!(out.len(), 63);
        assert_eq!(&out[..54], &format!("{}-", "a".repeat(53)));
        assert_eq!(make_safe_label_value(&"a".repeat(63)), "a".repeat(63));
    }

    #[test]
    fn no_alphanumerics_gives_airflows_hash_only_value() {
        let out = make_safe_label_value("!!");
        assert_eq!(out.len(), 10);
        assert!(out.starts_with('-'));
    }

    #[test]
    fn from_pod_labels_reads_key_and_try() {
        let l = labels(&[
            ("dag_id", "d"),
            ("task_id", "t"),
            ("run_id", "r"),
            ("try_number", "2"),
            ("kubernetes_pod_operator", "True"),
        ]);
        let (k, t) = TiKey::from_pod_labels(&l).unwrap();
        assert_eq!(k, TiKey::from_db("d", "t", "r", -1));
        assert_eq!(t, 2);
        let mut l2 = l.clone();
        l2.insert("map_index".into(), "7".into());
        assert_eq!(TiKey::from_pod_labels(&l2).unwrap().0.map_index, 7);
    }

    #[test]
    fn from_pod_labels_errors_are_typed() {
        let base = [("dag_id", "d"), ("task_id", "t"), ("try_number", "1")];
        let mut legacy = labels(&base);
        legacy.insert("execution_date".into(), "2024-01-01T0000000000-abc".into());
        assert_eq!(
            TiKey::from_pod_labels(&legacy),
            Err(LabelError::LegacyExecutionDate)
        );
        assert_eq!(
            TiKey::from_pod_labels(&labels(&base)),
            Err(LabelError::MissingLabel("run_id"))
        );
        assert_eq!(
            TiKey::from_pod_labels(&labels(&[("task_id", "t")])),
            Err(LabelError::MissingLabel("dag_id"))
        );
        let mut bad_try = labels(&base);
        bad_try.insert("run_id".into(), "r".into());
        bad_try.insert("try_number".into(), "one".into());
        assert!(matches!(
            TiKey::from_pod_labels(&bad_try),
            Err(LabelError::NotAnInteger {
                label: "try_number",
                ..
            })
        ));
        let mut bad_map = labels(&base);
        bad_map.insert("run_id".into(), "r".into());
        bad_map.insert("map_index".into(), "+1".into());
        assert!(matches!(
            TiKey::from_pod_labels(&bad_map),
            Err(LabelError::NotAnInteger {
                label: "map_index",
                ..
            })
        ));
    }

    #[test]
    fn key_encoding_round_trips_and_rejects_malformed() {
        let k = TiKey::from_db("kpo_zombie_dag", "mapped_kpo_task", "manual__2025-01-01", 3);
        assert_eq!(TiKey::decode(&k.encode()), Ok(k));
        for bad in [
            "",
            "a/b/c",
            "a/b/c/d/e",
            "a/b/c/x",
            "a/b/c/-2",
            "a/b/c/+1",
            "a b/c/d/1",
            "-a/b/c/1",
        ] {
            assert!(TiKey::decode(bad).is_err(), "{bad:?} must not decode");
        }
    }
}
