//! The actor: DELETE with a UID precondition, then one events.k8s.io/v1 Event per deleted pod.

use futures::StreamExt;
use k8s_openapi::api::core::v1::{ObjectReference, Pod};
use k8s_openapi::api::events::v1::Event;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{MicroTime, ObjectMeta};
use kube::Client;
use kube::api::{Api, DeleteParams, PostParams, Preconditions};

use crate::decide::{Decision, PodMeta};
use crate::retry;

pub const EVENT_REASON: &str = "ZombiePodDeleted";
pub const REPORTING_CONTROLLER: &str = "kpo-sweeper.io/sweeper";
pub const EVENT_ACTION: &str = "Delete";
/// Deletes in flight at once.
pub const CONCURRENCY: usize = 8;

/// What happened to one delete.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// Deleted (or, with a grace period, its deletion started).
    Deleted,
    /// 404: already gone.
    Gone,
    /// 409: the UID precondition failed: a new pod took the name.
    Conflict,
    /// Any other failure, after retries.
    Failed(String),
    /// Not sent: the re-read that justified the delete is older than the window (a run that went
    /// slow). The pod goes back for another re-read.
    Late,
}

/// One pod to delete.
pub struct Target<'a> {
    pub pod: &'a PodMeta,
    pub decision: Decision,
}

#[derive(Debug, Clone)]
pub struct ActConfig {
    /// `--grace-period`; a pod stuck past its deletionTimestamp always gets 0.
    pub grace_period: u32,
    /// The Event's reportingInstance.
    pub instance: String,
    /// No DELETE (first attempt or retry) is sent at or after this instant: the moment the
    /// re-read that justified it was sent, plus the window (10 s). Each DELETE carries the time
    /// left as its request timeout (`?timeout=`, and a client-side limit).
    pub send_by: Option<tokio::time::Instant>,
    /// Deletes in flight at once ([`CONCURRENCY`]).
    pub concurrency: usize,
}

/// The reportingInstance: this process's pod (HOSTNAME in a pod), else `kpo-sweeper`.
pub fn default_instance() -> String {
    let host = std::env::var("HOSTNAME").unwrap_or_default();
    let mut s = if host.is_empty() {
        "kpo-sweeper".to_owned()
    } else {
        host
    };
    s.truncate(128);
    s
}

/// Deletes every target, `cfg.concurrency` at a time; the outcomes come back in the targets' order.
pub async fn delete_all(client: &Client, targets: &[Target<'_>], cfg: &ActConfig) -> Vec<Outcome> {
    futures::stream::iter(targets.iter().map(|t| delete_one(client, t, cfg)))
        .buffered(cfg.concurrency.max(1))
        .collect()
        .await
}

async fn delete_one(client: &Client, t: &Target<'_>, cfg: &ActConfig) -> Outcome {
    let pod = t.pod;
    let api: Api<Pod> = Api::namespaced(client.clone(), &pod.namespace);
    let grace = if t.decision.stuck_terminating {
        0
    } else {
        cfg.grace_period
    };
    let dp = DeleteParams {
        grace_period_seconds: Some(grace),
        preconditions: Some(Preconditions {
            uid: Some(pod.uid.to_string()),
            resource_version: None,
        }),
        ..Default::default()
    };
    let what = format!("deleting pod {}/{}", pod.namespace, pod.name);
    let call = || delete_within(client, &api, &pod.namespace, &pod.name, &dp, cfg.send_by);
    let outcome = match retry::kube_by(&what, cfg.send_by, call).await {
        Ok(Some(Some(()))) => Outcome::Deleted,
        // Not sent (the window was gone), or not answered within it.
        Ok(Some(None)) | Ok(None) => Outcome::Late,
        Err(kube::Error::Api(s)) if s.code == 404 => Outcome::Gone,
        Err(kube::Error::Api(s)) if s.code == 409 => Outcome::Conflict,
        Err(e) => Outcome::Failed(e.to_string()),
    };
    match &outcome {
        Outcome::Deleted => {
            tracing::info!(namespace = %pod.namespace, pod = %pod.name, reason = t.decision.reason.as_str(), grace, "deleted zombie pod");
            if let Err(e) = record_event(client, t, grace, cfg).await {
                tracing::warn!(namespace = %pod.namespace, pod = %pod.name, error = %e, "pod deleted, but its Event could not be created");
            }
        }
        Outcome::Gone => {
            tracing::info!(namespace = %pod.namespace, pod = %pod.name, "pod already gone")
        }
        Outcome::Conflict => {
            tracing::warn!(namespace = %pod.namespace, pod = %pod.name, "pod was replaced by a new one with the same name (UID precondition failed); not deleted")
        }
        Outcome::Failed(e) => {
            tracing::error!(namespace = %pod.namespace, pod = %pod.name, error = %e, "delete failed")
        }
        Outcome::Late => {
            tracing::info!(namespace = %pod.namespace, pod = %pod.name, "delete not sent: its re-read is older than the window; reading its TI again")
        }
    }
    outcome
}

/// One DELETE that carries the time left before `send_by` as its request timeout: the apiserver's
/// `?timeout=` (it gives up on the request after that), and the same limit on the client's wait.
/// `Ok(None)`: no time was left, or no answer came within it (the pod is read again).
async fn delete_within(
    client: &Client,
    api: &Api<Pod>,
    namespace: &str,
    name: &str,
    dp: &DeleteParams,
    send_by: Option<tokio::time::Instant>,
) -> Result<Option<()>, kube::Error> {
    let Some(send_by) = send_by else {
        return api.delete(name, dp).await.map(|_| Some(()));
    };
    let left = send_by.saturating_duration_since(tokio::time::Instant::now());
    if left.is_zero() {
        return Ok(None);
    }
    let url = <Pod as kube::Resource>::url_path(&(), Some(namespace));
    let mut req = kube::core::Request::new(url)
        .delete(name, dp)
        .map_err(kube::Error::BuildRequest)?;
    let uri = req.uri().to_string();
    let sep = if uri.contains('?') { '&' } else { '?' };
    *req.uri_mut() = format!("{uri}{sep}timeout={}ms", left.as_millis().max(1))
        .parse()
        .expect("a URI with a timeout parameter appended is a URI");
    match tokio::time::timeout(left, client.request::<serde_json::Value>(req)).await {
        Ok(r) => r.map(|_| Some(())),
        Err(_) => Ok(None),
    }
}

/// The Event's note: the rule and the TI key.
pub fn event_note(t: &Target<'_>, grace: u32) -> String {
    let (key, try_number) = match t.pod.key() {
        Some((k, n)) => (k.encode(), n.to_string()),
        None => ("?".to_owned(), "?".to_owned()),
    };
    let mut note = format!(
        "kpo-sweeper deleted zombie KubernetesPodOperator pod: rule {} ({}), TI {key}, try {try_number}, grace {grace}s",
        t.decision.reason.row(),
        t.decision.reason.as_str(),
    );
    if t.decision.stuck_terminating {
        note.push_str(", was stuck in Terminating past its deletionTimestamp");
    }
    note.truncate(1024);
    note
}

async fn record_event(
    client: &Client,
    t: &Target<'_>,
    grace: u32,
    cfg: &ActConfig,
) -> Result<Event, kube::Error> {
    let pod = t.pod;
    let api: Api<Event> = Api::namespaced(client.clone(), &pod.namespace);
    // client-go's naming: `<regarding name>.<unix nanos in hex>` (generateName must itself be a
    // valid name, so it cannot end in `.`).
    let now = k8s_openapi::jiff::Timestamp::now();
    let prefix: String = pod.name.chars().take(200).collect();
    let ev = Event {
        metadata: ObjectMeta {
            name: Some(format!("{prefix}.{:x}", now.as_nanosecond())),
            namespace: Some(pod.namespace.to_string()),
            ..Default::default()
        },
        event_time: Some(MicroTime(now)),
        type_: Some("Normal".to_owned()),
        reason: Some(EVENT_REASON.to_owned()),
        action: Some(EVENT_ACTION.to_owned()),
        note: Some(event_note(t, grace)),
        reporting_controller: Some(REPORTING_CONTROLLER.to_owned()),
        reporting_instance: Some(cfg.instance.clone()),
        regarding: Some(ObjectReference {
            api_version: Some("v1".to_owned()),
            kind: Some("Pod".to_owned()),
            name: Some(pod.name.clone()),
            namespace: Some(pod.namespace.to_string()),
            uid: Some(pod.uid.to_string()),
            ..Default::default()
        }),
        ..Default::default()
    };
    let pp = PostParams::default();
    retry::kube("creating Event", || api.create(&pp, &ev)).await
}
