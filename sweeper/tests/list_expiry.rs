//! A continue token that expires mid-LIST on the real kube-apiserver (410 Gone → the listing of that
//! scope restarts from the beginning, and nothing is listed twice or lost).
//!
//! How a real token expires: since kube-apiserver 1.34 the next page is served from a snapshot of the
//! watch cache, which is dropped once the apiserver learns that etcd was compacted past it; then the
//! page is read from etcd, which answers "compacted", and the apiserver answers `410 Gone` ("The
//! provided continue parameter is too old"). The apiserver learns of a compaction from the
//! `compact_rev_key` key in etcd, which it watches (its cacher polls that every 15 s). So between the
//! first page and the second the test compacts etcd as another apiserver's compactor does (etcd's JSON
//! gateway, `ETCD_URL` of the env file): `compact_rev_key` set to the current revision, then etcd
//! compacted at it; and waits until the apiserver answers that very page 410. That is what a slow LIST
//! of 150,000 pods meets when the apiserver's compactor (every 5 min by default) runs under it.
//! Checked by hand first: compacting etcd without `compact_rev_key` does not expire the token (the cache
//! snapshot still serves it).
#![forbid(unsafe_code)]
#![deny(warnings, rust_2018_idioms)]

use std::collections::BTreeSet;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use k8s_openapi::api::core::v1::Pod;
use kube::api::{Api, PostParams};
use sweeper::pods::ListScope;
use testsupport::TiSpec;

const PODS: usize = 40;
const PAGE: u32 = 10;
/// How long the apiserver may take to learn of a compaction (its cacher polls every 15 s).
const EXPIRY_WAIT: Duration = Duration::from_secs(60);

type BoxFuture<T> = Pin<Box<dyn Future<Output = T> + Send>>;

/// What the apiserver was asked and answered: (had a continue token, status).
type Seen = Arc<Mutex<Vec<(bool, u16)>>>;

/// Before the first request that carries a continue token, expires it (see the module docs); records
/// every request's status.
#[derive(Clone)]
struct ExpireOnce<S> {
    inner: S,
    seen: Seen,
    fired: Arc<tokio::sync::Mutex<bool>>,
}

impl<S, B> tower::Service<http::Request<kube::client::Body>> for ExpireOnce<S>
where
    S: tower::Service<http::Request<kube::client::Body>, Response = http::Response<B>> + Send,
    S::Future: Send + 'static,
    S::Error: Send + 'static,
    B: Send + 'static,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = BoxFuture<Result<S::Response, S::Error>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: http::Request<kube::client::Body>) -> Self::Future {
        let with_token = req.uri().query().unwrap_or("").contains("continue=");
        let page = req
            .uri()
            .path_and_query()
            .map(|p| p.to_string())
            .unwrap_or_default();
        let (seen, fired) = (self.seen.clone(), self.fired.clone());
        // The request goes out when this future is first polled, after the hook.
        let fut = self.inner.call(req);
        Box::pin(async move {
            if with_token {
                let mut fired = fired.lock().await;
                if !*fired {
                    *fired = true;
                    expire_continue_tokens(&page).await;
                }
            }
            let resp = fut.await?;
            seen.lock()
                .unwrap()
                .push((with_token, resp.status().as_u16()));
            Ok(resp)
        })
    }
}

/// Compacts etcd at its current revision the way a kube-apiserver's compactor does, then waits until
/// the apiserver answers `page` (a path with a continue token) with 410 Gone.
async fn expire_continue_tokens(page: &str) {
    let etcd = testsupport::env().var("ETCD_URL").to_owned();
    let header = etcd_post(&etcd, "/v3/kv/range", r#"{"key":"AA=="}"#).await;
    let revision = header["header"]["revision"]
        .as_str()
        .expect("etcd's revision")
        .to_owned();
    let b64 = |s: &str| {
        use std::process::{Command, Stdio};
        let mut child = Command::new("base64")
            .args(["-w", "0"])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .expect("base64");
        std::io::Write::write_all(&mut child.stdin.take().unwrap(), s.as_bytes()).unwrap();
        String::from_utf8(child.wait_with_output().unwrap().stdout).unwrap()
    };
    etcd_post(
        &etcd,
        "/v3/kv/put",
        &format!(
            r#"{{"key":"{}","value":"{}"}}"#,
            b64("compact_rev_key"),
            b64(&revision)
        ),
    )
    .await;
    etcd_post(
        &etcd,
        "/v3/kv/compaction",
        &format!(r#"{{"revision":"{revision}","physical":true}}"#),
    )
    .await;
    let admin = testsupport::client().await;
    let started = std::time::Instant::now();
    loop {
        let req = http::Request::get(page).body(Vec::new()).unwrap();
        match admin.request_text(req).await {
            Err(kube::Error::Api(s)) if s.code == 410 => break,
            Err(e) => panic!("probing {page}: {e}"),
            Ok(_) => {
                assert!(
                    started.elapsed() < EXPIRY_WAIT,
                    "the apiserver still serves {page} {} s after etcd's compaction at {revision}",
                    EXPIRY_WAIT.as_secs()
                );
                tokio::time::sleep(Duration::from_millis(500)).await;
            }
        }
    }
    eprintln!(
        "etcd compacted at revision {revision}; the apiserver expired the token after {:.1} s",
        started.elapsed().as_secs_f64()
    );
}

/// POSTs `body` to etcd's JSON gateway (curl: Debian's, installed by tests/env/up).
async fn etcd_post(etcd: &str, path: &str, body: &str) -> serde_json::Value {
    let out = tokio::process::Command::new("curl")
        .args([
            "-sS",
            "--fail",
            "-X",
            "POST",
            &format!("{etcd}{path}"),
            "-d",
            body,
        ])
        .output()
        .await
        .expect("run curl");
    assert!(
        out.status.success(),
        "etcd {path}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("etcd's JSON answer")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_expired_continue_token_restarts_the_listing_on_the_real_apiserver() {
    let admin = testsupport::client().await;
    let ns = testsupport::fresh_namespace(&admin, "list-expiry").await;
    let _pods = testsupport::DeletePodsOnDrop::new(&ns);
    let api: Api<Pod> = Api::namespaced(admin.clone(), &ns);
    let mut want = BTreeSet::new();
    for i in 0..PODS {
        let ti = TiSpec::new("expiry_dag", &format!("t{i}"), "manual__2025-01-01");
        let name = format!("p{i}");
        api.create(&PostParams::default(), &testsupport::kpo_pod(&name, &ti))
            .await
            .expect("create pod");
        want.insert(name);
    }

    let seen: Seen = Arc::default();
    let kc = kube::config::Kubeconfig::read_from(&testsupport::env().kubeconfig).unwrap();
    let config =
        kube::Config::from_custom_kubeconfig(kc, &kube::config::KubeConfigOptions::default())
            .await
            .unwrap();
    let s = seen.clone();
    let fired = Arc::new(tokio::sync::Mutex::new(false));
    let client = kube::client::ClientBuilder::try_from(config)
        .unwrap()
        .with_layer(&tower::layer::layer_fn(move |inner| ExpireOnce {
            inner,
            seen: s.clone(),
            fired: fired.clone(),
        }))
        .build();
    let scope = ListScope {
        namespaces: Some(vec![ns.clone()]),
        include_completed: false,
        page_size: PAGE,
    };
    let listed = sweeper::pods::list(&client, &scope)
        .await
        .expect("the listing restarts after 410 Gone and completes");

    let seen = seen.lock().unwrap().clone();
    assert!(
        seen.contains(&(true, 410)),
        "the apiserver expired the continue token: {seen:?}"
    );
    let fresh_starts = seen.iter().filter(|(tok, _)| !tok).count();
    assert_eq!(fresh_starts, 2, "one restart from the beginning: {seen:?}");
    let names: Vec<String> = listed.iter().map(|p| p.name.clone()).collect();
    assert_eq!(names.len(), PODS, "no pod listed twice: {names:?}");
    assert_eq!(names.into_iter().collect::<BTreeSet<_>>(), want);
}
