//! The stamp: what the webhook writes on a KPO pod at CREATE and the sweeper reads (docs/design.md §4).
//!
//! Annotations, all strings:
//! * `kpo-sweeper.io/ti-key`: `<dag_id>/<task_id>/<run_id>/<map_index>` ([`crate::TiKey::encode`]);
//! * `kpo-sweeper.io/try-number`: the pod's `try_number` label;
//! * `kpo-sweeper.io/admitted-at`: Unix epoch seconds at admission;
//! * `kpo-sweeper.io/created-by`: `userInfo.username` of the creating request.
//!
//! Plus the label `kpo-sweeper.io/stamped: "v1"`.

use std::collections::BTreeMap;

use crate::{KeyError, TiKey};

pub const PREFIX: &str = "kpo-sweeper.io/";
pub const TI_KEY: &str = "kpo-sweeper.io/ti-key";
pub const TRY_NUMBER: &str = "kpo-sweeper.io/try-number";
pub const ADMITTED_AT: &str = "kpo-sweeper.io/admitted-at";
pub const CREATED_BY: &str = "kpo-sweeper.io/created-by";
/// Every annotation of the stamp: what a reader keeps of a pod's annotations.
pub const KEYS: [&str; 4] = [TI_KEY, TRY_NUMBER, ADMITTED_AT, CREATED_BY];
/// The label that marks a stamped pod (`kubectl get pods -l kpo-sweeper.io/stamped`).
pub const STAMPED_LABEL: &str = "kpo-sweeper.io/stamped";
pub const STAMPED_VALUE: &str = "v1";

/// AdmissionResponse `auditAnnotations` keys (no prefix: the apiserver writes them into its audit
/// log as `<webhook name>/<key>`).
pub mod audit {
    pub const TI_KEY: &str = "ti-key";
    pub const TRY_NUMBER: &str = "try-number";
    pub const ADMITTED_AT: &str = "admitted-at";
    pub const CREATED_BY: &str = "created-by";
}

/// A decoded stamp. Every field is optional: a pod the webhook could not identify carries only
/// `admitted-at` and `created-by`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Stamp {
    pub ti_key: Option<TiKey>,
    pub try_number: Option<i64>,
    pub admitted_at: Option<i64>,
    pub created_by: Option<String>,
}

/// Why a stamp present on a pod cannot be trusted.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StampError {
    #[error(transparent)]
    Key(#[from] KeyError),
    #[error("annotation `{key}` is `{value}`, not an integer")]
    NotAnInteger { key: &'static str, value: String },
}

impl Stamp {
    /// Reads the stamp from a pod's annotations. `Ok(None)` when the pod carries no stamp annotation
    /// at all (created without the webhook).
    pub fn from_annotations(
        annotations: &BTreeMap<String, String>,
    ) -> Result<Option<Stamp>, StampError> {
        Self::from_lookup(|k| annotations.get(k).map(String::as_str))
    }

    /// [`Stamp::from_annotations`] over any annotation lookup (`get(key)` is the value).
    pub fn from_lookup<'a>(
        get: impl Fn(&'static str) -> Option<&'a str>,
    ) -> Result<Option<Stamp>, StampError> {
        if KEYS.iter().all(|k| get(k).is_none()) {
            return Ok(None);
        }
        let int = |key: &'static str| -> Result<Option<i64>, StampError> {
            get(key)
                .map(|v| {
                    v.parse::<i64>().map_err(|_| StampError::NotAnInteger {
                        key,
                        value: v.to_owned(),
                    })
                })
                .transpose()
        };
        Ok(Some(Stamp {
            ti_key: get(TI_KEY).map(TiKey::decode).transpose()?,
            try_number: int(TRY_NUMBER)?,
            admitted_at: int(ADMITTED_AT)?,
            created_by: get(CREATED_BY).map(str::to_owned),
        }))
    }

    /// The annotations this stamp is written as (only the fields it has).
    pub fn to_annotations(&self) -> BTreeMap<String, String> {
        let mut out = BTreeMap::new();
        if let Some(k) = &self.ti_key {
            out.insert(TI_KEY.to_owned(), k.encode());
        }
        if let Some(t) = self.try_number {
            out.insert(TRY_NUMBER.to_owned(), t.to_string());
        }
        if let Some(a) = self.admitted_at {
            out.insert(ADMITTED_AT.to_owned(), a.to_string());
        }
        if let Some(c) = &self.created_by {
            out.insert(CREATED_BY.to_owned(), c.clone());
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unstamped_pod_has_no_stamp() {
        let mut a = BTreeMap::new();
        a.insert("other/x".to_owned(), "y".to_owned());
        assert_eq!(Stamp::from_annotations(&a), Ok(None));
    }

    #[test]
    fn stamp_round_trips_through_annotations() {
        let s = Stamp {
            ti_key: Some(TiKey::from_db("d", "t", "r", -1)),
            try_number: Some(1),
            admitted_at: Some(1_700_000_000),
            created_by: Some("system:serviceaccount:airflow:airflow-worker".into()),
        };
        assert_eq!(Stamp::from_annotations(&s.to_annotations()), Ok(Some(s)));
    }

    #[test]
    fn malformed_values_are_errors() {
        let mut a = BTreeMap::new();
        a.insert(TI_KEY.to_owned(), "a/b".to_owned());
        assert!(matches!(
            Stamp::from_annotations(&a),
            Err(StampError::Key(_))
        ));
        let mut a = BTreeMap::new();
        a.insert(ADMITTED_AT.to_owned(), "yesterday".to_owned());
        assert!(matches!(
            Stamp::from_annotations(&a),
            Err(StampError::NotAnInteger { .. })
        ));
    }
}
