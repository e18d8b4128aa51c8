//! The pod source: a metadata-only, paged LIST of KPO pods.
//!
//! `GET /api/v1/[namespaces/NS/]pods?labelSelector=kubernetes_pod_operator=True&fieldSelector=…&limit=…`
//! with `Accept: application/json;as=PartialObjectMetadataList`: the apiserver sends metadata only.
//! Each page is decoded into a lean struct that keeps only what the decision reads (the KPO labels,
//! the `kpo-sweeper.io/` annotations, ownerReferences' presence, the timestamps); everything else,
//! managedFields included, is skipped while parsing. A `410 Gone` (the continue token expired)
//! restarts the listing of that scope from the beginning.

use std::collections::BTreeMap;
use std::fmt;
use std::sync::Arc;

use kube::Client;
use serde::de::{IgnoredAny, MapAccess, Visitor};
use serde::{Deserialize, Deserializer};
use tikey::{labels, stamp};

use crate::decide::PodMeta;
use crate::error::{Error, Result};
use crate::retry;

/// Pods per page.
pub const PAGE_SIZE: u32 = 500;
/// How many times a scope's listing restarts after 410 Gone before giving up.
pub const MAX_RESTARTS: u32 = 5;
/// Leaves completed pods out (DESIGN.md §5): they hold nothing and KPO keeps them on purpose.
pub const NOT_COMPLETED: &str = "status.phase!=Succeeded,status.phase!=Failed";

/// What to list.
#[derive(Debug, Clone)]
pub struct ListScope {
    /// `None`: all namespaces.
    pub namespaces: Option<Vec<String>>,
    pub include_completed: bool,
    pub page_size: u32,
}

impl ListScope {
    fn paths(&self) -> Vec<String> {
        match &self.namespaces {
            None => vec!["/api/v1/pods".to_owned()],
            Some(nss) => nss
                .iter()
                .map(|ns| format!("/api/v1/namespaces/{ns}/pods"))
                .collect(),
        }
    }

    fn params(&self, continue_token: Option<String>) -> kube::api::ListParams {
        kube::api::ListParams {
            label_selector: Some(labels::KPO_SELECTOR.to_owned()),
            field_selector: (!self.include_completed).then(|| NOT_COMPLETED.to_owned()),
            limit: Some(self.page_size),
            continue_token,
            ..Default::default()
        }
    }
}

/// Lists every KPO pod in scope.
pub async fn list(client: &Client, scope: &ListScope) -> Result<Vec<PodMeta>> {
    let mut pods = MetaSink::default();
    for path in scope.paths() {
        pods.scope_start = pods.pods.len();
        list_path::<PodPage, _>(client, scope, &path, &mut pods).await?;
    }
    Ok(pods.pods)
}

/// The same LIST with nothing decoded but the continue token: the floor the sweeper is measured
/// against (`sweeper/bench`). Returns the number of pods.
pub async fn bare_list(client: &Client, scope: &ListScope) -> Result<usize> {
    let mut total = 0;
    for path in scope.paths() {
        let mut n = CountSink(0);
        list_path::<BarePage, _>(client, scope, &path, &mut n).await?;
        total += n.0;
    }
    Ok(total)
}

trait Page {
    fn continue_token(&mut self) -> Option<String>;
}

/// Where pages go; `restart` forgets what a listing that expired had collected.
trait Sink<P> {
    fn page(&mut self, page: P);
    fn restart(&mut self);
}

/// Every scope's pods in one vector (no copy at the end), with the strings many pods repeat (the
/// namespace, the creator) shared.
#[derive(Default)]
struct MetaSink {
    pods: Vec<PodMeta>,
    /// Where the scope being listed starts in `pods`.
    scope_start: usize,
    shared: std::collections::HashSet<Arc<str>>,
}

impl MetaSink {
    fn share(&mut self, s: Arc<str>) -> Arc<str> {
        match self.shared.get(&s) {
            Some(one) => one.clone(),
            None => {
                self.shared.insert(s.clone());
                s
            }
        }
    }
}

impl Sink<PodPage> for MetaSink {
    fn page(&mut self, page: PodPage) {
        for item in page.items.unwrap_or_default() {
            let mut meta = item.into_meta();
            meta.namespace = self.share(meta.namespace);
            meta.created_by = meta.created_by.map(|c| self.share(c));
            self.pods.push(meta);
        }
    }
    fn restart(&mut self) {
        self.pods.truncate(self.scope_start);
    }
}

struct CountSink(usize);
impl Sink<BarePage> for CountSink {
    fn page(&mut self, page: BarePage) {
        self.0 += page.items.map_or(0, |i| i.len());
    }
    fn restart(&mut self) {
        self.0 = 0;
    }
}

/// One page's body, with retries of transient failures.
async fn fetch(
    client: Client,
    path: String,
    lp: kube::api::ListParams,
) -> Result<String, kube::Error> {
    let what = format!("listing pods at {path}");
    retry::kube(&what, || async {
        let req = kube::core::Request::new(&path)
            .list_metadata(&lp)
            .map_err(kube::Error::BuildRequest)?;
        client.request_text(req).await
    })
    .await
}

/// The list's continue token, read from the top of the body without parsing the items: the
/// apiserver writes `kind`, `apiVersion`, `metadata`, then `items`. `None` when the body is not in
/// that order (the caller then waits for the full parse).
fn peek_continue(text: &str) -> Option<Option<String>> {
    let i = text.find("\"metadata\":")?;
    if text[..i].contains("\"items\"") {
        return None;
    }
    let mut it = serde_json::Deserializer::from_str(&text[i + 11..]).into_iter::<PageMeta>();
    match it.next() {
        Some(Ok(m)) => Some(m.continue_token.filter(|t| !t.is_empty())),
        _ => None,
    }
}

/// Lists one scope page by page. The next page is requested as soon as the current one's continue
/// token is read, so its fetch overlaps the decoding of the current page.
async fn list_path<P, S>(client: &Client, scope: &ListScope, path: &str, sink: &mut S) -> Result<()>
where
    P: Page + serde::de::DeserializeOwned,
    S: Sink<P>,
{
    let what = || format!("listing pods at {path}");
    let spawn = |token: Option<String>| {
        tokio::spawn(fetch(client.clone(), path.to_owned(), scope.params(token)))
    };
    let mut restarts = 0;
    let mut pending = spawn(None);
    loop {
        let res = match pending.await {
            Ok(res) => res,
            Err(join) => std::panic::resume_unwind(join.into_panic()),
        };
        let text = match res {
            Ok(text) => text,
            Err(kube::Error::Api(s)) if s.code == 410 => {
                restarts += 1;
                if restarts > MAX_RESTARTS {
                    return Err(Error::ListExpired(MAX_RESTARTS));
                }
                tracing::warn!(path, restarts, "pod list expired (410 Gone); restarting it");
                sink.restart();
                pending = spawn(None);
                continue;
            }
            Err(source) => {
                return Err(Error::Kube {
                    what: what(),
                    source,
                });
            }
        };
        let peeked = peek_continue(&text);
        let prefetch = match &peeked {
            Some(Some(t)) => Some(spawn(Some(t.clone()))),
            _ => None,
        };
        let mut page: P = serde_json::from_str(&text).map_err(|e| Error::Kube {
            what: what(),
            source: kube::Error::SerdeError(e),
        })?;
        drop(text);
        let token = page.continue_token().filter(|t| !t.is_empty());
        sink.page(page);
        match (prefetch, token) {
            (Some(next), Some(t)) if peeked.as_ref().and_then(Option::as_ref) == Some(&t) => {
                pending = next
            }
            (Some(next), _) => {
                // The peek disagreed with the full parse: never trust it.
                next.abort();
                return Err(Error::ListInconsistent(what()));
            }
            (None, Some(t)) => pending = spawn(Some(t)),
            (None, None) => return Ok(()),
        }
    }
}

#[derive(Deserialize)]
struct PodPage {
    #[serde(default)]
    metadata: PageMeta,
    /// `null` on an empty page.
    #[serde(default)]
    items: Option<Vec<Item>>,
}

#[derive(Deserialize)]
struct BarePage {
    #[serde(default)]
    metadata: PageMeta,
    #[serde(default)]
    items: Option<Vec<IgnoredAny>>,
}

impl Page for PodPage {
    fn continue_token(&mut self) -> Option<String> {
        self.metadata.continue_token.take()
    }
}

impl Page for BarePage {
    fn continue_token(&mut self) -> Option<String> {
        self.metadata.continue_token.take()
    }
}

#[derive(Deserialize, Default, Debug)]
struct PageMeta {
    #[serde(rename = "continue", default)]
    continue_token: Option<String>,
}

#[derive(Deserialize)]
struct Item {
    metadata: ItemMeta,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct ItemMeta {
    #[serde(default)]
    name: String,
    #[serde(default)]
    namespace: String,
    #[serde(default)]
    uid: String,
    #[serde(default)]
    labels: Kept<KpoLabels>,
    #[serde(default)]
    annotations: Kept<StampAnnotations>,
    #[serde(default)]
    owner_references: Option<Vec<IgnoredAny>>,
    #[serde(default)]
    creation_timestamp: Option<String>,
    #[serde(default)]
    deletion_timestamp: Option<String>,
}

impl Item {
    fn into_meta(self) -> PodMeta {
        let m = self.metadata;
        PodMeta::from_parts(
            m.namespace,
            m.name,
            m.uid,
            &m.labels.map,
            &m.annotations.map,
            m.owner_references.is_some_and(|o| !o.is_empty()),
            m.creation_timestamp.as_deref().and_then(parse_time),
            m.deletion_timestamp.as_deref().and_then(parse_time),
        )
    }
}

/// RFC 3339 (`2025-01-01T00:00:00Z`) to Unix seconds.
pub fn parse_time(s: &str) -> Option<i64> {
    s.parse::<k8s_openapi::jiff::Timestamp>()
        .ok()
        .map(|t| t.as_second())
}

/// Which keys of a string map to keep.
trait KeyFilter {
    fn keep(key: &str) -> bool;
}

/// The labels the decision reads.
struct KpoLabels;
impl KeyFilter for KpoLabels {
    fn keep(key: &str) -> bool {
        matches!(
            key,
            labels::DAG_ID
                | labels::TASK_ID
                | labels::RUN_ID
                | labels::MAP_INDEX
                | labels::TRY_NUMBER
                | labels::ALREADY_CHECKED
                | labels::EXECUTION_DATE
        )
    }
}

/// The stamp's annotations.
struct StampAnnotations;
impl KeyFilter for StampAnnotations {
    fn keep(key: &str) -> bool {
        key.starts_with(stamp::PREFIX)
    }
}

/// A string map of which only the keys `F` keeps are stored.
struct Kept<F> {
    map: BTreeMap<String, String>,
    _f: std::marker::PhantomData<F>,
}

impl<F> Default for Kept<F> {
    fn default() -> Self {
        Kept {
            map: BTreeMap::new(),
            _f: std::marker::PhantomData,
        }
    }
}

impl<'de, F: KeyFilter> Deserialize<'de> for Kept<F> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        struct V<F>(std::marker::PhantomData<F>);
        impl<'de, F: KeyFilter> Visitor<'de> for V<F> {
            type Value = Kept<F>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a map of strings")
            }
            fn visit_unit<E>(self) -> std::result::Result<Self::Value, E> {
                Ok(Kept::default())
            }
            fn visit_map<A: MapAccess<'de>>(
                self,
                mut a: A,
            ) -> std::result::Result<Self::Value, A::Error> {
                let mut out = Kept::default();
                while let Some(k) = a.next_key::<std::borrow::Cow<'de, str>>()? {
                    if F::keep(&k) {
                        let v: String = a.next_value()?;
                        out.map.insert(k.into_owned(), v);
                    } else {
                        a.next_value::<IgnoredAny>()?;
                    }
                }
                Ok(out)
            }
        }
        d.deserialize_any(V::<F>(std::marker::PhantomData))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_page_keeps_only_what_the_decision_reads() {
        let json = r#"{"kind":"PartialObjectMetadataList","apiVersion":"meta.k8s.io/v1",
          "metadata":{"resourceVersion":"42","continue":"abc"},
          "items":[{"kind":"PartialObjectMetadata","apiVersion":"meta.k8s.io/v1","metadata":{
            "name":"p","namespace":"airflow","uid":"u-1","creationTimestamp":"2025-01-01T00:00:00Z",
            "deletionTimestamp":"2025-01-01T00:01:00Z",
            "labels":{"dag_id":"d","task_id":"t","run_id":"r","try_number":"2","map_index":"3",
                      "already_checked":"True","kubernetes_pod_operator":"True","other":"x"},
            "annotations":{"kpo-sweeper.io/ti-key":"d/t/r/3","kpo-sweeper.io/try-number":"2",
                           "kpo-sweeper.io/admitted-at":"1735689600","big":"xxxxxxxx"},
            "ownerReferences":[{"apiVersion":"batch/v1","kind":"Job","name":"j","uid":"x"}],
            "managedFields":[{"manager":"m","fieldsV1":{"f:metadata":{}}}]}}]}"#;
        let mut page: PodPage = serde_json::from_str(json).unwrap();
        assert_eq!(page.continue_token().as_deref(), Some("abc"));
        let meta = page.items.take().unwrap().remove(0).into_meta();
        assert_eq!(
            (&*meta.namespace, meta.name.as_str(), meta.uid.as_str()),
            ("airflow", "p", "u-1")
        );
        let (key, t) = meta.key().unwrap();
        assert_eq!((key.encode(), t), ("d/t/r/3".to_owned(), 2));
        assert!(meta.already_checked && meta.owned);
        assert_eq!(meta.created_at, Some(1_735_689_600));
        assert_eq!(meta.deletion_at, Some(1_735_689_660));
        assert_eq!(meta.stamp, crate::decide::StampCheck::Agrees);
        assert_eq!(meta.admitted_at, Some(1_735_689_600));
    }

    #[test]
    fn pods_of_one_namespace_and_creator_share_those_strings() {
        let item = |name: &str| {
            format!(
                r#"{{"metadata":{{"name":"{name}","namespace":"airflow","uid":"u-{name}",
                  "labels":{{"dag_id":"d","task_id":"{name}","run_id":"r","try_number":"1"}},
                  "annotations":{{"kpo-sweeper.io/ti-key":"d/{name}/r/-1","kpo-sweeper.io/try-number":"1",
                    "kpo-sweeper.io/created-by":"system:serviceaccount:airflow:worker"}}}}}}"#
            )
        };
        let json = format!(
            r#"{{"metadata":{{}},"items":[{},{}]}}"#,
            item("a"),
            item("b")
        );
        let mut sink = MetaSink::default();
        sink.page(serde_json::from_str(&json).unwrap());
        let [a, b] = &sink.pods[..] else {
            panic!("two pods")
        };
        assert!(Arc::ptr_eq(&a.namespace, &b.namespace));
        let (ca, cb) = (
            a.created_by.as_ref().unwrap(),
            b.created_by.as_ref().unwrap(),
        );
        assert!(Arc::ptr_eq(ca, cb));
        assert_eq!(&**ca, "system:serviceaccount:airflow:worker");
        assert_eq!(a.stamp, crate::decide::StampCheck::Agrees);
    }

    #[test]
    fn null_and_absent_maps_are_empty() {
        let empty: PodPage = serde_json::from_str(r#"{"metadata":{},"items":null}"#).unwrap();
        assert!(empty.items.is_none());
        let json = r#"{"metadata":{},"items":[{"metadata":{"name":"p","namespace":"n","uid":"u","labels":null}}]}"#;
        let mut page: PodPage = serde_json::from_str(json).unwrap();
        assert_eq!(page.continue_token(), None);
        let meta = page.items.take().unwrap().remove(0).into_meta();
        assert!(
            meta.key().is_none()
                && !meta.owned
                && meta.stamp == crate::decide::StampCheck::Unstamped
        );
    }

    #[test]
    fn scope_builds_selectors() {
        let s = ListScope {
            namespaces: Some(vec!["a".into(), "b".into()]),
            include_completed: false,
            page_size: 7,
        };
        assert_eq!(
            s.paths(),
            ["/api/v1/namespaces/a/pods", "/api/v1/namespaces/b/pods"]
        );
        let lp = s.params(Some("t".into()));
        assert_eq!(
            lp.label_selector.as_deref(),
            Some("kubernetes_pod_operator=True")
        );
        assert_eq!(lp.field_selector.as_deref(), Some(NOT_COMPLETED));
        assert_eq!(
            (lp.limit, lp.continue_token.as_deref()),
            (Some(7), Some("t"))
        );
        let all = ListScope {
            namespaces: None,
            include_completed: true,
            page_size: 1,
        };
        assert_eq!(all.paths(), ["/api/v1/pods"]);
        assert_eq!(all.params(None).field_selector, None);
    }
}

#[cfg(test)]
mod peek_tests {
    use super::*;

    #[test]
    fn continue_token_is_read_from_the_top_of_the_body() {
        let t = r#"{"kind":"PartialObjectMetadataList","apiVersion":"meta.k8s.io/v1","metadata":{"resourceVersion":"9","continue":"abc"},"items":[{"metadata":{"name":"x"}}]}"#;
        assert_eq!(peek_continue(t), Some(Some("abc".to_owned())));
        let last = r#"{"kind":"PartialObjectMetadataList","metadata":{"resourceVersion":"9"},"items":null}"#;
        assert_eq!(peek_continue(last), Some(None));
        // Items before the list's metadata: no peeking (an item's metadata is not the list's).
        let odd = r#"{"items":[{"metadata":{"name":"x"}}],"metadata":{"continue":"abc"}}"#;
        assert_eq!(peek_continue(odd), None);
    }
}
