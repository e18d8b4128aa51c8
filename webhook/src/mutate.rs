//! The stamp, as a pure function: an `admission.k8s.io/v1` AdmissionReview in, the response's
//! JSON patch, warnings and audit annotations out (docs/design.md §4). No I/O, no clock: the admission
//! time is a parameter.
//!
//! Only the fields the stamp needs are deserialized (`apiVersion`, `kind`, and from `request`: `uid`,
//! `kind`, `resource`, `subResource`, `operation`, `userInfo.username`, `object.metadata.labels` and
//! which stamp annotations `object.metadata.annotations` already has); everything else is skipped
//! without being built, and in the apiserver's field order the parse stops after `object.metadata`
//! (see [`parse`]). Strings borrow from the request body where JSON allows it.

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::fmt;

use base64::Engine as _;
use serde::de::{self, DeserializeSeed, Deserializer, IgnoredAny, MapAccess, Visitor};
use serde::{Deserialize, Serialize};
use tikey::{LabelError, TiKey, labels, stamp};

use crate::Error;

/// The only AdmissionReview version served (the apiserver offers what `admissionReviewVersions` lists).
pub const API_VERSION: &str = "admission.k8s.io/v1";
/// The AdmissionReview kind.
pub const KIND: &str = "AdmissionReview";

/// A string that borrows from the input when it has no JSON escapes (serde's own `Cow<str>` impl
/// always allocates, and `&str` fails on escapes).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Str<'a>(pub Cow<'a, str>);

impl Str<'_> {
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl<'de: 'a, 'a> Deserialize<'de> for Str<'a> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Str<'de>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a string")
            }
            fn visit_borrowed_str<E: de::Error>(self, v: &'de str) -> Result<Self::Value, E> {
                Ok(Str(Cow::Borrowed(v)))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
                Ok(Str(Cow::Owned(v.to_owned())))
            }
            fn visit_string<E: de::Error>(self, v: String) -> Result<Self::Value, E> {
                Ok(Str(Cow::Owned(v)))
            }
        }
        d.deserialize_str(V)
    }
}

/// The AdmissionReview's type (what [`parse`] checks).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Review<'a> {
    pub api_version: Str<'a>,
    pub kind: Str<'a>,
}

/// `request` of an AdmissionReview, reduced.
#[derive(Debug)]
pub struct Request<'a> {
    pub uid: Str<'a>,
    pub kind: GroupVersionKind<'a>,
    pub resource: GroupVersionResource<'a>,
    pub sub_resource: Option<Str<'a>>,
    pub operation: Str<'a>,
    pub user_info: UserInfo<'a>,
    pub object: Option<Object>,
}

#[derive(Debug, Deserialize)]
pub struct GroupVersionKind<'a> {
    #[serde(borrow, default)]
    pub group: Str<'a>,
    #[serde(borrow, default)]
    pub version: Str<'a>,
    #[serde(borrow)]
    pub kind: Str<'a>,
}

#[derive(Debug, Deserialize)]
pub struct GroupVersionResource<'a> {
    #[serde(borrow, default)]
    pub group: Str<'a>,
    #[serde(borrow, default)]
    pub version: Str<'a>,
    #[serde(borrow)]
    pub resource: Str<'a>,
}

#[derive(Debug, Default, Deserialize)]
pub struct UserInfo<'a> {
    #[serde(borrow, default)]
    pub username: Option<Str<'a>>,
}

/// `request.object`, reduced to its metadata.
#[derive(Debug, Default)]
pub struct Object {
    pub metadata: Option<Metadata>,
}

#[derive(Debug, Default, Deserialize)]
pub struct Metadata {
    #[serde(default)]
    pub labels: Option<BTreeMap<String, String>>,
    #[serde(default)]
    pub annotations: Option<StampAnnotations>,
}

/// Which stamp annotations an object's `metadata.annotations` already has (the values and the other
/// annotations are skipped, not built).
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct StampAnnotations {
    pub ti_key: bool,
    pub try_number: bool,
}

impl<'de> Deserialize<'de> for StampAnnotations {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = StampAnnotations;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a map of annotations")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
                let mut seen = StampAnnotations::default();
                while let Some(key) = map.next_key::<Str<'de>>()? {
                    match key.as_str() {
                        stamp::TI_KEY => seen.ti_key = true,
                        stamp::TRY_NUMBER => seen.try_number = true,
                        _ => {}
                    }
                    map.next_value::<IgnoredAny>()?;
                }
                Ok(seen)
            }
        }
        d.deserialize_map(V)
    }
}

/// Parses a request body as an `admission.k8s.io/v1` AdmissionReview that carries a `request`.
///
/// One pass over the body, keeping only what the stamp reads. When the body comes in the order the
/// apiserver writes it (the review's `apiVersion` and `kind`, then the request's `uid` … `userInfo`,
/// then `object` with `metadata` before `spec`), the parse stops once `object.metadata` is read: the
/// pod spec, `oldObject` and `options` (most of the bytes) are neither needed nor scanned. In any other
/// order the whole body is parsed.
pub fn parse(body: &[u8]) -> Result<(Review<'_>, Request<'_>), Error> {
    let mut c = Collect::default();
    let mut de = serde_json::Deserializer::from_slice(body);
    let parsed = ReviewSeed(&mut c)
        .deserialize(&mut de)
        .and_then(|()| de.end());
    if let Err(e) = parsed
        && !c.complete
    {
        return Err(Error::NotAdmissionReview(one_line(&e.to_string())));
    }
    let api_version = c.api_version.unwrap_or_default();
    let kind = c.kind.unwrap_or_default();
    if api_version.as_str() != API_VERSION || kind.as_str() != KIND {
        return Err(Error::WrongReviewType {
            api_version: one_line(api_version.as_str()),
            kind: one_line(kind.as_str()),
        });
    }
    if !c.request {
        return Err(Error::MissingRequest);
    }
    let missing = |field: &str| Error::NotAdmissionReview(format!("request has no `{field}`"));
    let request = Request {
        uid: c.uid.ok_or_else(|| missing("uid"))?,
        kind: c.req_kind.ok_or_else(|| missing("kind"))?,
        resource: c.resource.ok_or_else(|| missing("resource"))?,
        sub_resource: c.sub_resource,
        operation: c.operation.ok_or_else(|| missing("operation"))?,
        user_info: c.user_info.unwrap_or_default(),
        object: c.object,
    };
    Ok((Review { api_version, kind }, request))
}

/// What [`parse`] collects while it walks the body.
#[derive(Default)]
struct Collect<'de> {
    api_version: Option<Str<'de>>,
    kind: Option<Str<'de>>,
    /// `request` is present and not null.
    request: bool,
    uid: Option<Str<'de>>,
    req_kind: Option<GroupVersionKind<'de>>,
    resource: Option<GroupVersionResource<'de>>,
    sub_resource: Option<Str<'de>>,
    operation: Option<Str<'de>>,
    user_info: Option<UserInfo<'de>>,
    object: Option<Object>,
    /// Everything needed was read and the walk was stopped on purpose.
    complete: bool,
}

impl Collect<'_> {
    /// Everything but `object` is read, so `object.metadata` is the last thing needed. (`subResource`
    /// comes before `object` in the apiserver's order; and no CREATE of a pod subresource carries the
    /// kind `Pod`, so [`is_pod_create`] does not depend on it.)
    fn all_but_object(&self) -> bool {
        self.api_version.is_some()
            && self.kind.is_some()
            && self.uid.is_some()
            && self.req_kind.is_some()
            && self.resource.is_some()
            && self.operation.is_some()
            && self.user_info.is_some()
    }
}

/// The error that stops the walk once [`Collect::complete`] (never shown: [`parse`] checks the flag).
const STOP: &str = "stop: everything needed is read";

struct ReviewSeed<'s, 'de>(&'s mut Collect<'de>);

impl<'de> DeserializeSeed<'de> for ReviewSeed<'_, 'de> {
    type Value = ();
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_map(self)
    }
}

impl<'de> Visitor<'de> for ReviewSeed<'_, 'de> {
    type Value = ();
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("an AdmissionReview object")
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        while let Some(key) = map.next_key::<Str<'de>>()? {
            match key.as_str() {
                "apiVersion" => self.0.api_version = map.next_value()?,
                "kind" => self.0.kind = map.next_value()?,
                "request" => map.next_value_seed(RequestSeed(&mut *self.0))?,
                _ => {
                    map.next_value::<IgnoredAny>()?;
                }
            }
        }
        Ok(())
    }
}

struct RequestSeed<'s, 'de>(&'s mut Collect<'de>);

impl<'de> DeserializeSeed<'de> for RequestSeed<'_, 'de> {
    type Value = ();
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_option(self)
    }
}

impl<'de> Visitor<'de> for RequestSeed<'_, 'de> {
    type Value = ();
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("an AdmissionRequest object")
    }
    fn visit_none<E: de::Error>(self) -> Result<(), E> {
        Ok(())
    }
    fn visit_unit<E: de::Error>(self) -> Result<(), E> {
        Ok(())
    }
    fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_map(self)
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        let c = self.0;
        c.request = true;
        while let Some(key) = map.next_key::<Str<'de>>()? {
            match key.as_str() {
                "uid" => c.uid = Some(map.next_value()?),
                "kind" => c.req_kind = Some(map.next_value()?),
                "resource" => c.resource = Some(map.next_value()?),
                "subResource" => c.sub_resource = map.next_value()?,
                "operation" => c.operation = Some(map.next_value()?),
                "userInfo" => c.user_info = Some(map.next_value()?),
                "object" => map.next_value_seed(ObjectSeed(&mut *c))?,
                _ => {
                    map.next_value::<IgnoredAny>()?;
                }
            }
        }
        Ok(())
    }
}

struct ObjectSeed<'s, 'de>(&'s mut Collect<'de>);

impl<'de> DeserializeSeed<'de> for ObjectSeed<'_, 'de> {
    type Value = ();
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_option(self)
    }
}

impl<'de> Visitor<'de> for ObjectSeed<'_, 'de> {
    type Value = ();
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("an object")
    }
    fn visit_none<E: de::Error>(self) -> Result<(), E> {
        Ok(())
    }
    fn visit_unit<E: de::Error>(self) -> Result<(), E> {
        Ok(())
    }
    fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_map(self)
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        let c = self.0;
        let mut object = Object::default();
        while let Some(key) = map.next_key::<Str<'de>>()? {
            if key.as_str() == "metadata" {
                object.metadata = map.next_value()?;
                if c.all_but_object() {
                    c.object = Some(object);
                    c.complete = true;
                    return Err(de::Error::custom(STOP));
                }
            } else {
                map.next_value::<IgnoredAny>()?;
            }
        }
        c.object = Some(object);
        Ok(())
    }
}

/// What the webhook did with a request (the `outcome` label of the requests metric, minus
/// `bad-request`, which never reaches [`mutate`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Outcome {
    /// A KPO pod CREATE whose labels name its task instance: full stamp.
    Stamped,
    /// Anything that is not the CREATE of a pod labelled `kubernetes_pod_operator=True`: no patch.
    NotKpo,
    /// A KPO pod CREATE without a usable identity: `admitted-at` and `created-by` only, and a warning.
    Unidentifiable,
}

impl Outcome {
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Stamped => "stamped",
            Outcome::NotKpo => "not-kpo",
            Outcome::Unidentifiable => "unidentifiable",
        }
    }
}

/// One JSON-patch (RFC 6902) operation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "op", rename_all = "lowercase")]
pub enum PatchOp {
    Add {
        path: &'static str,
        value: PatchValue,
    },
    Remove {
        path: &'static str,
    },
}

/// The value of an `add`: a string, or a whole string map (when `metadata.annotations` or
/// `metadata.labels` is absent).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(untagged)]
pub enum PatchValue {
    Str(String),
    Map(BTreeMap<&'static str, String>),
}

/// The answer to one admission request (always `allowed: true`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mutation {
    pub outcome: Outcome,
    /// Empty: no patch in the response.
    pub patch: Vec<PatchOp>,
    pub warnings: Vec<String>,
    /// `auditAnnotations`, keys without prefix.
    pub audit: BTreeMap<&'static str, String>,
    /// Why a KPO pod is unidentifiable (for metrics and debug logs).
    pub unidentified: Option<LabelError>,
}

impl Mutation {
    fn none() -> Self {
        Mutation {
            outcome: Outcome::NotKpo,
            patch: Vec::new(),
            warnings: Vec::new(),
            audit: BTreeMap::new(),
            unidentified: None,
        }
    }
}

/// Whether the request is the CREATE of a core/v1 Pod (not of a subresource such as
/// `pods/eviction` or `pods/binding`, whose CREATEs carry other kinds).
pub fn is_pod_create(req: &Request<'_>) -> bool {
    req.operation.as_str() == "CREATE"
        && req.kind.group.as_str().is_empty()
        && req.kind.version.as_str() == "v1"
        && req.kind.kind.as_str() == "Pod"
        && req.resource.group.as_str().is_empty()
        && req.resource.resource.as_str() == "pods"
        && req
            .sub_resource
            .as_ref()
            .is_none_or(|s| s.as_str().is_empty())
}

/// The stamp for one admission request, admitted at Unix time `admitted_at` (seconds).
///
/// * not the CREATE of a pod labelled `kubernetes_pod_operator=True`: no patch;
/// * a KPO pod whose labels name a task instance: `ti-key`, `try-number`, `admitted-at`, `created-by`
///   annotations, the `kpo-sweeper.io/stamped` label and the same facts as audit annotations;
/// * a KPO pod without a usable identity: `admitted-at` and `created-by` (stale `ti-key` and
///   `try-number` removed), the label, and a warning.
///
/// `add` replaces a member that exists, so stamps present at CREATE are overwritten.
pub fn mutate(req: &Request<'_>, admitted_at: i64) -> Mutation {
    if !is_pod_create(req) {
        return Mutation::none();
    }
    let Some(meta) = req.object.as_ref().and_then(|o| o.metadata.as_ref()) else {
        return Mutation::none();
    };
    let Some(pod_labels) = meta.labels.as_ref() else {
        return Mutation::none();
    };
    if pod_labels.get(labels::KPO).map(String::as_str) != Some(labels::KPO_VALUE) {
        return Mutation::none();
    }

    let created_by = req
        .user_info
        .username
        .as_ref()
        .map(|u| u.as_str().to_owned())
        .unwrap_or_default();
    // (annotation key, its patch path, audit annotation key, value)
    let mut facts: Vec<(&'static str, &'static str, &'static str, String)> = Vec::with_capacity(4);
    let (outcome, unidentified) = match TiKey::from_pod_labels(pod_labels) {
        Ok((key, try_number)) => {
            facts.push((
                stamp::TI_KEY,
                paths::TI_KEY,
                stamp::audit::TI_KEY,
                key.encode(),
            ));
            facts.push((
                stamp::TRY_NUMBER,
                paths::TRY_NUMBER,
                stamp::audit::TRY_NUMBER,
                try_number.to_string(),
            ));
            (Outcome::Stamped, None)
        }
        Err(e) => (Outcome::Unidentifiable, Some(e)),
    };
    facts.push((
        stamp::ADMITTED_AT,
        paths::ADMITTED_AT,
        stamp::audit::ADMITTED_AT,
        admitted_at.to_string(),
    ));
    facts.push((
        stamp::CREATED_BY,
        paths::CREATED_BY,
        stamp::audit::CREATED_BY,
        created_by,
    ));

    let mut patch = Vec::with_capacity(8);
    match meta.annotations {
        None => patch.push(PatchOp::Add {
            path: paths::ANNOTATIONS,
            value: PatchValue::Map(facts.iter().map(|(k, _, _, v)| (*k, v.clone())).collect()),
        }),
        Some(existing) => {
            for (_, path, _, v) in &facts {
                patch.push(PatchOp::Add {
                    path,
                    value: PatchValue::Str(v.clone()),
                });
            }
            if unidentified.is_some() {
                // A stale identity must not survive next to a stamp that could not make one.
                if existing.ti_key {
                    patch.push(PatchOp::Remove {
                        path: paths::TI_KEY,
                    });
                }
                if existing.try_number {
                    patch.push(PatchOp::Remove {
                        path: paths::TRY_NUMBER,
                    });
                }
            }
        }
    }
    patch.push(PatchOp::Add {
        path: paths::STAMPED_LABEL,
        value: PatchValue::Str(stamp::STAMPED_VALUE.to_owned()),
    });

    let warnings = unidentified.as_ref().map(warning).into_iter().collect();
    let audit = facts.into_iter().map(|(_, _, a, v)| (a, v)).collect();
    Mutation {
        outcome,
        patch,
        warnings,
        audit,
        unidentified,
    }
}

/// The JSON-pointer paths the patch writes: the stamp's keys with `/` escaped as `~1` (RFC 6901),
/// spelled out so the hot path builds no strings; a test checks them against [`escape_pointer_token`]
/// of `tikey`'s keys.
pub mod paths {
    pub const ANNOTATIONS: &str = "/metadata/annotations";
    pub const TI_KEY: &str = "/metadata/annotations/kpo-sweeper.io~1ti-key";
    pub const TRY_NUMBER: &str = "/metadata/annotations/kpo-sweeper.io~1try-number";
    pub const ADMITTED_AT: &str = "/metadata/annotations/kpo-sweeper.io~1admitted-at";
    pub const CREATED_BY: &str = "/metadata/annotations/kpo-sweeper.io~1created-by";
    pub const STAMPED_LABEL: &str = "/metadata/labels/kpo-sweeper.io~1stamped";
}

/// RFC 6901: `~` as `~0`, `/` as `~1`.
pub fn escape_pointer_token(token: &str) -> Cow<'_, str> {
    if token.contains(['~', '/']) {
        Cow::Owned(token.replace('~', "~0").replace('/', "~1"))
    } else {
        Cow::Borrowed(token)
    }
}

/// The warning returned for a KPO pod without a usable identity (short: kubectl prints it as is).
fn warning(e: &LabelError) -> String {
    let why = match e {
        LabelError::MissingLabel(label) => format!("no `{label}` label"),
        LabelError::LegacyExecutionDate => {
            "provider < 3.1.0 labels: execution_date, no run_id".to_owned()
        }
        LabelError::NotAnInteger { label, .. } => format!("label `{label}` is not an integer"),
    };
    format!("kpo-sweeper: no task-instance identity ({why}); stamped without ti-key")
}

#[derive(Serialize)]
struct ReviewOut<'a> {
    #[serde(rename = "apiVersion")]
    api_version: &'static str,
    kind: &'static str,
    response: ResponseOut<'a>,
}

#[derive(Serialize)]
struct ResponseOut<'a> {
    uid: &'a str,
    allowed: bool,
    #[serde(rename = "patchType", skip_serializing_if = "Option::is_none")]
    patch_type: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    patch: Option<String>,
    #[serde(skip_serializing_if = "<[String]>::is_empty")]
    warnings: &'a [String],
    #[serde(
        rename = "auditAnnotations",
        skip_serializing_if = "BTreeMap::is_empty"
    )]
    audit_annotations: &'a BTreeMap<&'static str, String>,
}

/// The response AdmissionReview for `uid`: `allowed: true`, and the base64 JSON patch
/// (`patchType: JSONPatch`), warnings and audit annotations when there are any.
pub fn response(uid: &str, m: &Mutation) -> Vec<u8> {
    let patch = (!m.patch.is_empty()).then(|| {
        let json = serde_json::to_vec(&m.patch).unwrap_or_default();
        base64::engine::general_purpose::STANDARD.encode(json)
    });
    let out = ReviewOut {
        api_version: API_VERSION,
        kind: KIND,
        response: ResponseOut {
            uid,
            allowed: true,
            patch_type: patch.as_ref().map(|_| "JSONPatch"),
            patch,
            warnings: &m.warnings,
            audit_annotations: &m.audit,
        },
    };
    // Serializing strings and maps of strings into a Vec cannot fail.
    serde_json::to_vec(&out).unwrap_or_default()
}

/// One line, at most 300 characters: error text that ends up in a response and a log line.
pub(crate) fn one_line(s: &str) -> String {
    const MAX: usize = 300;
    let mut out: String = s
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .take(MAX)
        .collect();
    if s.chars().count() > MAX {
        out.push('…');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn review(object: &str, op: &str) -> String {
        format!(
            r#"{{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview","request":{{
            "uid":"u-1","kind":{{"group":"","version":"v1","kind":"Pod"}},
            "resource":{{"group":"","version":"v1","resource":"pods"}},"operation":"{op}",
            "userInfo":{{"username":"system:serviceaccount:airflow:worker"}},"object":{object}}}}}"#
        )
    }

    #[test]
    fn escaped_strings_are_decoded() {
        let body = review(
            r#"{"metadata":{"labels":{"kubernetes_pod_operator":"True","dag_id":"d\u0041","task_id":"t","run_id":"r","try_number":"1"}}}"#,
            "CREATE",
        )
        .replace("system:serviceaccount", "system\\u003aserviceaccount");
        let (_, req) = parse(body.as_bytes()).unwrap();
        let m = mutate(&req, 7);
        assert_eq!(m.outcome, Outcome::Stamped);
        assert_eq!(m.audit["ti-key"], "dA/t/r/-1");
        assert_eq!(
            m.audit["created-by"],
            "system:serviceaccount:airflow:worker"
        );
    }

    const FIXTURE: &str = include_str!("../tests/data/kpo_pod_review.json");

    #[test]
    fn apiserver_order_stops_after_object_metadata() {
        // The fixture is in the apiserver's order: cut it right before the pod spec and it still
        // parses, with everything the stamp needs.
        let cut = &FIXTURE[..FIXTURE.find(r#","spec":"#).unwrap()];
        let (_, req) = parse(cut.as_bytes()).unwrap();
        assert_eq!(req.uid.as_str(), "705ab4f5-6393-11e8-b7cc-42010a800002");
        assert_eq!(mutate(&req, 1).outcome, Outcome::Stamped);
        // Cut before `metadata` is read, it is a bad body.
        let early = &FIXTURE[..FIXTURE.find(r#""metadata":"#).unwrap()];
        assert!(matches!(
            parse(early.as_bytes()),
            Err(Error::NotAdmissionReview(_))
        ));
    }

    #[test]
    fn any_field_order_gives_the_same_stamp() {
        let review: serde_json::Value = serde_json::from_str(FIXTURE).unwrap();
        let req = review["request"].as_object().unwrap();
        let (_, in_order) = parse(FIXTURE.as_bytes()).unwrap();
        let want = mutate(&in_order, 1);
        // `object` first, then the rest; and the review's own fields last.
        let mut fields = vec![format!(r#""object":{}"#, req["object"])];
        fields.extend(
            req.iter()
                .filter(|(k, _)| *k != "object")
                .map(|(k, v)| format!("{}:{v}", serde_json::to_string(k).unwrap())),
        );
        let body = format!(
            r#"{{"request":{{{}}},"kind":"AdmissionReview","apiVersion":"admission.k8s.io/v1"}}"#,
            fields.join(",")
        );
        let (_, reordered) = parse(body.as_bytes()).unwrap();
        assert_eq!(mutate(&reordered, 1), want);
        assert_eq!(want.outcome, Outcome::Stamped);
        // Trailing garbage is still caught when the whole body is walked.
        let bad = format!("{body} x");
        assert!(matches!(
            parse(bad.as_bytes()),
            Err(Error::NotAdmissionReview(_))
        ));
    }

    #[test]
    fn sub_resource_before_object_is_seen() {
        let body = r#"{"kind":"AdmissionReview","apiVersion":"admission.k8s.io/v1","request":{"uid":"u",
            "kind":{"group":"","version":"v1","kind":"Pod"},"resource":{"group":"","version":"v1","resource":"pods"},
            "subResource":"binding","operation":"CREATE","userInfo":{"username":"x"},
            "object":{"metadata":{"labels":{"kubernetes_pod_operator":"True"}},"spec":{}}}}"#;
        let (_, req) = parse(body.as_bytes()).unwrap();
        assert_eq!(req.sub_resource.as_ref().map(Str::as_str), Some("binding"));
        assert_eq!(mutate(&req, 1).outcome, Outcome::NotKpo);
    }

    #[test]
    fn annotation_keys_are_seen_without_values() {
        let body = review(
            r#"{"metadata":{"labels":{"kubernetes_pod_operator":"True"},"annotations":{"kpo-sweeper.io/ti-key":"x","a":{"nested":[1,2]}}}}"#,
            "CREATE",
        );
        let (_, req) = parse(body.as_bytes()).unwrap();
        let seen = req.object.unwrap().metadata.unwrap().annotations.unwrap();
        assert_eq!(
            seen,
            StampAnnotations {
                ti_key: true,
                try_number: false
            }
        );
    }

    #[test]
    fn patch_paths_are_tikeys_keys_escaped() {
        let ann = |k: &str| format!("/metadata/annotations/{}", escape_pointer_token(k));
        assert_eq!(paths::TI_KEY, ann(stamp::TI_KEY));
        assert_eq!(paths::TRY_NUMBER, ann(stamp::TRY_NUMBER));
        assert_eq!(paths::ADMITTED_AT, ann(stamp::ADMITTED_AT));
        assert_eq!(paths::CREATED_BY, ann(stamp::CREATED_BY));
        assert_eq!(
            paths::STAMPED_LABEL,
            format!(
                "/metadata/labels/{}",
                escape_pointer_token(stamp::STAMPED_LABEL)
            )
        );
    }

    #[test]
    fn pointer_tokens_are_escaped() {
        assert_eq!(
            escape_pointer_token("kpo-sweeper.io/ti-key"),
            "kpo-sweeper.io~1ti-key"
        );
        assert_eq!(escape_pointer_token("a~b/c"), "a~0b~1c");
        assert_eq!(escape_pointer_token("plain"), "plain");
    }

    #[test]
    fn warnings_stay_short() {
        for e in [
            LabelError::MissingLabel("try_number"),
            LabelError::LegacyExecutionDate,
            LabelError::NotAnInteger {
                label: "map_index",
                value: "x".repeat(63),
            },
        ] {
            let w = warning(&e);
            assert!(w.len() <= 120, "{w:?} is {} long", w.len());
        }
    }

    #[test]
    fn one_line_strips_newlines_and_truncates() {
        assert_eq!(one_line("a\nb"), "a b");
        assert_eq!(one_line(&"x".repeat(400)).chars().count(), 301);
    }
}
