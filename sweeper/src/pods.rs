//! The pod source: a metadata-only, paged LIST of KPO pods.
//!
//! `GET /api/v1/[namespaces/NS/]pods?labelSelector=kubernetes_pod_operator=True&fieldSelector=…&limit=…`
//! with `Accept: application/json;as=PartialObjectMetadataList`: the apiserver sends metadata only.
//! Each page is decoded into a lean struct that keeps only what the decision reads (the KPO labels,
//! the stamp's annotations, ownerReferences' presence, the timestamps), borrowing the strings from
//! the page's text; everything else, managedFields included, is skipped while parsing. Only what
//! [`PodMeta`] keeps is copied out (about 7 small allocations a pod, not 35). A `410 Gone` (the
//! continue token expired) restarts the listing of that scope from the beginning.

use std::borrow::Cow;
use std::collections::HashSet;
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
/// Leaves completed pods out (docs/design.md §5): they hold nothing and KPO keeps them on purpose.
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
        list_path(client, &path, scope, &mut pods).await?;
    }
    Ok(pods.pods)
}

/// The same LIST with nothing decoded but the continue token: the floor the sweeper is measured
/// against (`sweeper/bench`). Returns the number of pods.
pub async fn bare_list(client: &Client, scope: &ListScope) -> Result<usize> {
    let mut total = 0;
    for path in scope.paths() {
        let mut n = CountSink(0);
        list_path(client, &path, scope, &mut n).await?;
        total += n.0;
    }
    Ok(total)
}

/// Where pages go: `page` decodes one page's body and returns its continue token; `restart`
/// forgets what a listing that expired had collected.
trait Sink {
    fn page(&mut self, text: &str) -> serde_json::Result<Option<String>>;
    fn restart(&mut self);
}

/// Every scope's pods in one vector (no copy at the end), with the strings many pods repeat (the
/// namespace, the creator) shared.
#[derive(Default)]
struct MetaSink {
    pods: Vec<PodMeta>,
    /// Where the scope being listed starts in `pods`.
    scope_start: usize,
    shared: HashSet<Arc<str>>,
}

/// The one `Arc` of `s` in `shared` (made on first sight).
fn share(shared: &mut HashSet<Arc<str>>, s: &str) -> Arc<str> {
    match shared.get(s) {
        Some(one) => one.clone(),
        None => {
            let one: Arc<str> = Arc::from(s);
            shared.insert(one.clone());
            one
        }
    }
}

impl Sink for MetaSink {
    fn page(&mut self, text: &str) -> serde_json::Result<Option<String>> {
        let page: PodPage<'_> = serde_json::from_str(text)?;
        for item in page.items.unwrap_or_default() {
            let m = item.metadata;
            let shared = &mut self.shared;
            let namespace = share(shared, &m.namespace.0);
            self.pods.push(PodMeta::from_lookups(
                namespace,
                m.name.0.into_owned(),
                crate::uid::Uid::new(&m.uid.0),
                |k| m.labels.get(k),
                |k| m.annotations.get(k),
                |c| share(shared, c),
                m.owner_references.is_some_and(|o| !o.is_empty()),
                m.creation_timestamp.as_ref().and_then(|t| parse_time(&t.0)),
                m.deletion_timestamp.as_ref().and_then(|t| parse_time(&t.0)),
            ));
        }
        Ok(page.metadata.continue_token)
    }
    fn restart(&mut self) {
        self.pods.truncate(self.scope_start);
    }
}

struct CountSink(usize);
impl Sink for CountSink {
    fn page(&mut self, text: &str) -> serde_json::Result<Option<String>> {
        let page: BarePage = serde_json::from_str(text)?;
        self.0 += page.items.map_or(0, |i| i.len());
        Ok(page.metadata.continue_token)
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
async fn list_path(
    client: &Client,
    path: &str,
    scope: &ListScope,
    sink: &mut impl Sink,
) -> Result<()> {
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
        if prefetch.is_some() {
            // The sweeper runs on one thread: the fetch starts when this task yields. Let it send
            // its request now, so the apiserver builds the next page while this one is decoded.
            tokio::task::yield_now().await;
        }
        let token = sink
            .page(&text)
            .map_err(|e| Error::Kube {
                what: what(),
                source: kube::Error::SerdeError(e),
            })?
            .filter(|t| !t.is_empty());
        drop(text);
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
struct PodPage<'a> {
    #[serde(default)]
    metadata: PageMeta,
    /// `null` on an empty page.
    #[serde(default, borrow)]
    items: Option<Vec<Item<'a>>>,
}

#[derive(Deserialize)]
struct BarePage {
    #[serde(default)]
    metadata: PageMeta,
    #[serde(default)]
    items: Option<Vec<IgnoredAny>>,
}

#[derive(Deserialize, Default, Debug)]
struct PageMeta {
    #[serde(rename = "continue", default)]
    continue_token: Option<String>,
}

#[derive(Deserialize)]
struct Item<'a> {
    #[serde(borrow)]
    metadata: ItemMeta<'a>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct ItemMeta<'a> {
    #[serde(default, borrow)]
    name: Text<'a>,
    #[serde(default, borrow)]
    namespace: Text<'a>,
    #[serde(default, borrow)]
    uid: Text<'a>,
    #[serde(default, borrow)]
    labels: Kept<'a, KpoLabels>,
    #[serde(default, borrow)]
    annotations: Kept<'a, StampAnnotations>,
    #[serde(default)]
    owner_references: Option<Vec<IgnoredAny>>,
    #[serde(default, borrow)]
    creation_timestamp: Option<Text<'a>>,
    #[serde(default, borrow)]
    deletion_timestamp: Option<Text<'a>>,
}

/// A JSON string, borrowed from the page's text unless it holds escapes (serde's own `Cow<str>`
/// always copies).
#[derive(Default, Debug)]
struct Text<'a>(Cow<'a, str>);

impl<'de: 'a, 'a> Deserialize<'de> for Text<'a> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Text<'de>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a string")
            }
            fn visit_borrowed_str<E>(self, v: &'de str) -> std::result::Result<Text<'de>, E> {
                Ok(Text(Cow::Borrowed(v)))
            }
            fn visit_str<E>(self, v: &str) -> std::result::Result<Text<'de>, E> {
                Ok(Text(Cow::Owned(v.to_owned())))
            }
            fn visit_string<E>(self, v: String) -> std::result::Result<Text<'de>, E> {
                Ok(Text(Cow::Owned(v)))
            }
        }
        d.deserialize_str(V)
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
    /// At most [`MAX_KEPT`] keys.
    const KEYS: &'static [&'static str];
}

/// The most keys a [`KeyFilter`] keeps.
const MAX_KEPT: usize = 8;

/// The labels the decision reads.
struct KpoLabels;
impl KeyFilter for KpoLabels {
    const KEYS: &'static [&'static str] = &[
        labels::DAG_ID,
        labels::TASK_ID,
        labels::RUN_ID,
        labels::MAP_INDEX,
        labels::TRY_NUMBER,
        labels::ALREADY_CHECKED,
        labels::EXECUTION_DATE,
    ];
}

/// The stamp's annotations.
struct StampAnnotations;
impl KeyFilter for StampAnnotations {
    const KEYS: &'static [&'static str] = &stamp::KEYS;
}

/// A string map of which only the values of `F`'s keys are stored, each in its key's slot (a
/// key given twice: the last one, as in a map).
struct Kept<'a, F> {
    vals: [Option<Text<'a>>; MAX_KEPT],
    _f: std::marker::PhantomData<F>,
}

impl<F> Default for Kept<'_, F> {
    fn default() -> Self {
        Kept {
            vals: Default::default(),
            _f: std::marker::PhantomData,
        }
    }
}

impl<F: KeyFilter> Kept<'_, F> {
    fn slot(key: &str) -> Option<usize> {
        F::KEYS.iter().position(|k| *k == key)
    }

    fn get(&self, key: &str) -> Option<&str> {
        Self::slot(key).and_then(|i| self.vals[i].as_ref().map(|t| &*t.0))
    }
}

impl<'de: 'a, 'a, F: KeyFilter> Deserialize<'de> for Kept<'a, F> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        struct V<F>(std::marker::PhantomData<F>);
        impl<'de, F: KeyFilter> Visitor<'de> for V<F> {
            type Value = Kept<'de, F>;
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
                while let Some(k) = a.next_key::<Text<'de>>()? {
                    match Kept::<F>::slot(&k.0) {
                        Some(i) => out.vals[i] = Some(a.next_value()?),
                        None => {
                            a.next_value::<IgnoredAny>()?;
                        }
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
        let mut sink = MetaSink::default();
        assert_eq!(sink.page(json).unwrap().as_deref(), Some("abc"));
        let meta = sink.pods.remove(0);
        assert_eq!(
            (&*meta.namespace, meta.name.as_str(), meta.uid.to_string()),
            ("airflow", "p", "u-1".to_owned())
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
        sink.page(&json).unwrap();
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
    fn escaped_strings_are_read_like_plain_ones() {
        // Go's encoder writes <, > and & as \u escapes; any string may carry escapes.
        let json = r#"{"metadata":{"continue":"a\u0026b"},"items":[{"metadata":{
            "name":"p\u002d1","namespace":"n","uid":"u",
            "labels":{"dag\u005fid":"d","task_id":"t","run_id":"r","try_number":"1"},
            "annotations":{"kpo-sweeper.io/created-by":"u\u003cx\u003e",
                           "kpo-sweeper.io/ti-key":"d/t/r/-1","kpo-sweeper.io/try-number":"1"}}}]}"#;
        let mut sink = MetaSink::default();
        assert_eq!(sink.page(json).unwrap().as_deref(), Some("a&b"));
        let meta = sink.pods.remove(0);
        assert_eq!(meta.name, "p-1");
        assert_eq!(meta.key().unwrap().0.encode(), "d/t/r/-1");
        assert_eq!(meta.created_by.as_deref(), Some("u<x>"));
        assert_eq!(meta.stamp, crate::decide::StampCheck::Agrees);
    }

    #[test]
    fn a_key_given_twice_counts_once_and_the_last_wins() {
        let json = r#"{"metadata":{},"items":[{"metadata":{"name":"p","namespace":"n","uid":"u",
            "labels":{"dag_id":"old","task_id":"t","run_id":"r","try_number":"1","dag_id":"d"}}}]}"#;
        let mut sink = MetaSink::default();
        sink.page(json).unwrap();
        assert_eq!(sink.pods[0].key().unwrap().0.encode(), "d/t/r/-1");
    }

    #[test]
    fn null_and_absent_maps_are_empty() {
        let mut sink = MetaSink::default();
        assert_eq!(sink.page(r#"{"metadata":{},"items":null}"#).unwrap(), None);
        assert!(sink.pods.is_empty());
        let json = r#"{"metadata":{},"items":[{"metadata":{"name":"p","namespace":"n","uid":"u","labels":null}}]}"#;
        assert_eq!(sink.page(json).unwrap(), None);
        let meta = sink.pods.remove(0);
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
