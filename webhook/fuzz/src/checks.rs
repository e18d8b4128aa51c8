//! What the fuzz targets check, shared with the corpus replay test (`webhook/tests/fuzz_corpus.rs`,
//! included there with `#[path]`). Every check panics on a violation, which AFL++ records as a crash.
//!
//! * [`Admission::check`]: a request body through the whole `/mutate` handler (the real axum router,
//!   content type and body read included) and through the pure parse → stamp → answer functions:
//!   - the answer is HTTP 200 or 400, nothing else (400 is fail-open: `failurePolicy: Ignore`);
//!   - a 200 is an `admission.k8s.io/v1` AdmissionReview with `allowed: true` and the request's uid;
//!   - its JSON patch, when there is one, applies to the request's object (a patch the apiserver
//!     cannot apply is an error there, and the pod goes unstamped), and the stamped pod's annotations
//!     read back as a stamp ([`tikey::stamp::Stamp::from_annotations`]) whose key is the labels' key
//!     (unless a label value is invalid: the apiserver then rejects the pod after admission; and only
//!     for inputs whose labels and annotations are maps of strings, the only kind it sends).
//! * [`tikey`]: the text as a ti-key, label values and label/annotation maps:
//!   - [`tikey::TiKey::decode`] accepts only what [`tikey::TiKey::encode`] gives back unchanged;
//!   - [`tikey::make_safe_label_value`] yields a valid label value, unchanged for a valid one of at most
//!     63 characters (or an input without any ASCII letter or digit, Airflow's own edge case);
//!   - a key read from labels, and a stamp read from annotations, survive a write/read round trip.
//!
//! A hang (an input that takes more than AFL's timeout) is reported by AFL itself.

#![allow(dead_code)]

use std::collections::BTreeMap;

use axum::body::Body;
use axum::http::{Request, StatusCode};
use base64::Engine as _;
use serde_json::Value;
use tower::ServiceExt as _;

/// Fixed admission time, so answers are deterministic.
pub const NOW: i64 = 1_764_000_000;

/// The `/mutate` handler on a current-thread runtime, built once per process.
pub struct Admission {
    rt: tokio::runtime::Runtime,
    router: axum::Router,
}

impl Default for Admission {
    fn default() -> Self {
        Self::new()
    }
}

impl Admission {
    pub fn new() -> Self {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_time()
            .build()
            .expect("runtime");
        let state = webhook::AppState::new(webhook::tls::Readiness::ready()).with_clock(|| NOW);
        Admission {
            rt,
            router: webhook::router(state),
        }
    }

    pub fn check(&self, data: &[u8]) {
        // The pure functions the handler is made of.
        if let Ok((_, req)) = webhook::mutate::parse(data) {
            let m = webhook::mutate::mutate(&req, NOW);
            let out = webhook::mutate::response(req.uid.as_str(), &m);
            check_answer(data, &out);
        }
        // The handler itself.
        let req = Request::post("/mutate")
            .header("content-type", "application/json")
            .body(Body::from(data.to_vec()))
            .expect("request");
        let (status, body) = self.rt.block_on(async {
            let resp = self.router.clone().oneshot(req).await.expect("infallible");
            let status = resp.status();
            let body = axum::body::to_bytes(resp.into_body(), usize::MAX)
                .await
                .expect("body");
            (status, body)
        });
        match status {
            StatusCode::OK => check_answer(data, &body),
            StatusCode::BAD_REQUEST => {
                let v: Value = serde_json::from_slice(&body).expect("400 body is JSON");
                assert!(v["reason"].is_string() && v["error"].is_string(), "{v}");
            }
            other => panic!("/mutate answered {other} (only 200 and 400 are fail-open here)"),
        }
    }
}

/// The checks on a 200 answer to `input`.
fn check_answer(input: &[u8], out: &[u8]) {
    let v: Value = serde_json::from_slice(out).expect("the answer is JSON");
    assert_eq!(v["apiVersion"], "admission.k8s.io/v1", "{v}");
    assert_eq!(v["kind"], "AdmissionReview", "{v}");
    let resp = &v["response"];
    assert_eq!(resp["allowed"], true, "not fail-open: {v}");
    assert!(resp["uid"].is_string(), "{v}");
    let Some(patch) = resp["patch"].as_str() else {
        assert!(resp.get("patchType").is_none(), "{v}");
        return;
    };
    assert_eq!(resp["patchType"], "JSONPatch", "{v}");
    let patch = base64::engine::general_purpose::STANDARD
        .decode(patch)
        .expect("patch is base64");
    let patch: json_patch::Patch = serde_json::from_slice(&patch).expect("patch is a JSON patch");
    // The handler may stop reading once it has the object's metadata; the apiserver sends whole JSON,
    // so only such inputs are compared with the object they carry.
    let Ok(review) = serde_json::from_slice::<Value>(input) else {
        return;
    };
    if review["request"]["uid"].is_string() {
        assert_eq!(resp["uid"], review["request"]["uid"], "uid not echoed");
    }
    let mut object = review["request"]["object"].clone();
    if !object["metadata"].is_object() {
        return;
    }
    json_patch::patch(&mut object, &patch).unwrap_or_else(|e| {
        panic!("the patch does not apply to the request's object: {e}; patch {patch:?}")
    });
    let meta = &object["metadata"];
    assert_eq!(
        meta["labels"][tikey::stamp::STAMPED_LABEL],
        tikey::stamp::STAMPED_VALUE
    );
    let strings = |v: &Value| -> Option<BTreeMap<String, String>> {
        v.as_object()?
            .iter()
            .map(|(k, v)| Some((k.clone(), v.as_str()?.to_owned())))
            .collect()
    };
    // The apiserver decodes a pod into its typed form before admission: its labels and annotations
    // are always maps of strings. The read-back is checked only for such inputs.
    let input_meta = &review["request"]["object"]["metadata"];
    let typed = |v: &Value| v.is_null() || strings(v).is_some();
    if !typed(&input_meta["annotations"]) || !typed(&input_meta["labels"]) {
        return;
    }
    let Some(annotations) = strings(&meta["annotations"]) else {
        panic!("stamped annotations are not all strings: {meta}");
    };
    let labels = strings(&meta["labels"]).unwrap_or_default();
    let stamp = match tikey::stamp::Stamp::from_annotations(&annotations) {
        Ok(stamp) => stamp.expect("a stamp"),
        // The apiserver validates labels after mutating admission, so a pod with a label value that
        // is not a valid label value is rejected there and its stamp is never stored. Only such a
        // pod may carry a stamp that does not read back.
        Err(e) => {
            assert!(
                labels.values().any(|v| !tikey::is_valid_label_value(v)),
                "the stamp of a pod with valid labels does not read back: {e}; labels {labels:?}"
            );
            return;
        }
    };
    assert_eq!(stamp.admitted_at, Some(NOW));
    if let (Some(key), Ok((from_labels, try_number))) =
        (&stamp.ti_key, tikey::TiKey::from_pod_labels(&labels))
    {
        // Duplicate JSON keys aside (the apiserver never sends them), the stamp is the labels' key.
        if !has_duplicate_keys(input) {
            assert_eq!(key, &from_labels);
            assert_eq!(stamp.try_number, Some(try_number));
        }
    }
}

/// Whether the JSON text repeats a key in one object somewhere (serde_json keeps the last, a
/// streaming reader may keep the first).
fn has_duplicate_keys(input: &[u8]) -> bool {
    #[derive(Default)]
    struct Dup(bool);
    impl<'de> serde::de::Visitor<'de> for &mut Dup {
        type Value = ();
        fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str("json")
        }
        fn visit_map<A: serde::de::MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
            let mut seen = std::collections::HashSet::new();
            while let Some(k) = map.next_key::<String>()? {
                if !seen.insert(k) {
                    self.0 = true;
                }
                map.next_value_seed(&mut *self)?;
            }
            Ok(())
        }
        fn visit_seq<A: serde::de::SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
            while seq.next_element_seed(&mut *self)?.is_some() {}
            Ok(())
        }
        fn visit_str<E>(self, _: &str) -> Result<(), E> {
            Ok(())
        }
        fn visit_bool<E>(self, _: bool) -> Result<(), E> {
            Ok(())
        }
        fn visit_i64<E>(self, _: i64) -> Result<(), E> {
            Ok(())
        }
        fn visit_u64<E>(self, _: u64) -> Result<(), E> {
            Ok(())
        }
        fn visit_f64<E>(self, _: f64) -> Result<(), E> {
            Ok(())
        }
        fn visit_unit<E>(self) -> Result<(), E> {
            Ok(())
        }
    }
    impl<'de> serde::de::DeserializeSeed<'de> for &mut Dup {
        type Value = ();
        fn deserialize<D: serde::Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
            d.deserialize_any(self)
        }
    }
    let mut dup = Dup::default();
    let mut de = serde_json::Deserializer::from_slice(input);
    let _ = serde::de::DeserializeSeed::deserialize(&mut dup, &mut de);
    dup.0
}

/// tikey's parsers on `data`: the whole text as a key and a label value, and its lines (`k=v`) as a
/// label map and an annotation map.
pub fn tikey(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(key) = tikey::TiKey::decode(text) {
        assert_eq!(
            key.encode(),
            text,
            "decode accepted what encode does not give"
        );
    }
    for value in std::iter::once(text).chain(text.lines()) {
        let safe = tikey::make_safe_label_value(value);
        if value.bytes().any(|b| b.is_ascii_alphanumeric()) {
            assert!(
                tikey::is_valid_label_value(&safe),
                "{value:?} -> {safe:?} is not a valid label value"
            );
        }
        if tikey::is_valid_label_value(value) && !value.is_empty() {
            assert_eq!(safe, value, "a valid label value was changed");
        }
    }
    let map: BTreeMap<String, String> = text
        .lines()
        .filter_map(|l| l.split_once('='))
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect();
    if let Ok((key, _try)) = tikey::TiKey::from_pod_labels(&map) {
        let label_form = [&key.dag_id, &key.task_id, &key.run_id]
            .iter()
            .all(|c| !c.is_empty() && tikey::is_valid_label_value(c));
        if label_form && key.map_index >= -1 {
            assert_eq!(
                tikey::TiKey::decode(&key.encode()).as_ref(),
                Ok(&key),
                "a key read from labels does not survive its stamp form"
            );
        }
    }
    if let Ok(Some(stamp)) = tikey::stamp::Stamp::from_annotations(&map) {
        assert_eq!(
            tikey::stamp::Stamp::from_annotations(&stamp.to_annotations()),
            Ok(Some(stamp.clone())),
            "a stamp does not survive a write/read round trip"
        );
    }
}
