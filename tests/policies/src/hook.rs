//! Our webhook, in process, registered with the real apiserver through `manifests/base`'s own
//! MutatingWebhookConfiguration (scoped to one test namespace, pointed at the loopback server with a
//! test CA's caBundle): what the guards must never block, and the benchmark's "webhook" case.

use std::net::SocketAddr;
use std::time::Duration;

use k8s_openapi::ByteString;
use k8s_openapi::api::admissionregistration::v1::MutatingWebhookConfiguration;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelectorRequirement;
use kube::Client;
use kube::api::{Api, DeleteParams, ObjectMeta, PostParams};
use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair, SanType};
use tokio::net::TcpListener;
use tokio::sync::watch;
use webhook::tls::CertFiles;
use webhook::{Config, Server};

/// The webhook server running on 127.0.0.1 with a fresh CA.
pub struct RunningWebhook {
    pub addr: SocketAddr,
    /// PEM of the CA that signed the serving certificate (the caBundle).
    pub ca_pem: String,
    pub state: webhook::AppState,
    stop: watch::Sender<bool>,
    task: tokio::task::JoinHandle<()>,
    _dir: tempfile::TempDir,
}

impl RunningWebhook {
    /// Starts the webhook exactly as the binary serves (TLS, HTTP/1.1 and HTTP/2) on a port-0 listener.
    pub async fn start() -> RunningWebhook {
        let _ = rustls::crypto::ring::default_provider().install_default();
        let dir = tempfile::tempdir().unwrap();
        let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
        ca_params
            .distinguished_name
            .push(DnType::CommonName, "policies test CA");
        ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        let ca_key = KeyPair::generate().unwrap();
        let ca_cert = ca_params.self_signed(&ca_key).unwrap();
        let ca_pem = ca_cert.pem();
        let issuer = Issuer::new(ca_params, ca_key);
        let mut leaf = CertificateParams::new(vec!["localhost".to_owned()]).unwrap();
        leaf.subject_alt_names
            .push(SanType::IpAddress(std::net::Ipv4Addr::LOCALHOST.into()));
        let key = KeyPair::generate().unwrap();
        let cert = leaf.signed_by(&key, &issuer).unwrap();
        let files = CertFiles {
            cert: dir.path().join("tls.crt"),
            key: dir.path().join("tls.key"),
        };
        std::fs::write(&files.cert, cert.pem()).unwrap();
        std::fs::write(&files.key, key.serialize_pem()).unwrap();
        let server = Server::bind(Config {
            listen: "127.0.0.1:0".parse().unwrap(),
            metrics_listen: None,
            cert: files,
            cert_poll_interval: Duration::from_secs(60),
            drain_timeout: Duration::from_secs(2),
            limits: webhook::Limits::default(),
        })
        .await
        .expect("the webhook binds 127.0.0.1:0");
        let addr = server.local_addr().unwrap();
        let state = server.state().clone();
        let (stop, mut rx) = watch::channel(false);
        let task = tokio::spawn(async move {
            server
                .run(async move { webhook::server::stopped(&mut rx).await })
                .await
                .expect("the webhook serves");
        });
        RunningWebhook {
            addr,
            ca_pem,
            state,
            stop,
            task,
            _dir: dir,
        }
    }

    pub async fn stop(self) {
        let _ = self.stop.send(true);
        let _ = self.task.await;
    }

    /// The serving certificate and key (signed by [`RunningWebhook::ca_pem`]), for another server on
    /// the same TLS stack and trust (the benchmark's variants).
    pub fn cert_files(&self) -> CertFiles {
        CertFiles {
            cert: self._dir.path().join("tls.crt"),
            key: self._dir.path().join("tls.key"),
        }
    }
}

/// A TCP listener that accepts and drops every connection: a webhook that is down, so the apiserver
/// fails open. Bound on port 0 and kept for as long as it is needed.
pub async fn dead_webhook() -> (SocketAddr, tokio::task::JoinHandle<()>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let task = tokio::spawn(async move {
        while let Ok((sock, _)) = listener.accept().await {
            drop(sock);
        }
    });
    (addr, task)
}

/// Registers `manifests/base/mutatingwebhookconfiguration.yaml` for `https://<addr>/mutate` trusting
/// `ca_pem`, renamed and scoped to namespace `ns` (its own selectors kept). Returns its name.
pub async fn register(client: &Client, ns: &str, addr: SocketAddr, ca_pem: &str) -> String {
    register_url(client, ns, &format!("https://{addr}/mutate"), ca_pem, None).await
}

/// Like [`register`], for any server trusting `ca_pem`: the webhook calls `url`, and when `hook_name`
/// is given, the configuration's webhook is renamed to it (the apiserver's per-webhook metrics and
/// audit annotations are keyed by that name). Returns the configuration's name.
pub async fn register_url(
    client: &Client,
    ns: &str,
    url: &str,
    ca_pem: &str,
    hook_name: Option<&str>,
) -> String {
    let path = testsupport::admission::repo_root()
        .join("manifests/base/mutatingwebhookconfiguration.yaml");
    let objs = testsupport::admission::manifest_objects(&path);
    let mut mwc: MutatingWebhookConfiguration =
        serde_json::from_value(objs.into_iter().next().expect("one object")).unwrap();
    let name = format!("kpo-sweeper-policies-{ns}");
    mwc.metadata = ObjectMeta {
        name: Some(name.clone()),
        labels: Some([(testsupport::TEST_LABEL.to_owned(), "true".to_owned())].into()),
        ..ObjectMeta::default()
    };
    for h in mwc.webhooks.iter_mut().flatten() {
        if let Some(hook_name) = hook_name {
            hook_name.clone_into(&mut h.name);
        }
        h.client_config.service = None;
        h.client_config.url = Some(url.to_owned());
        h.client_config.ca_bundle = Some(ByteString(ca_pem.as_bytes().to_vec()));
        h.namespace_selector
            .get_or_insert_with(Default::default)
            .match_expressions
            .get_or_insert_with(Vec::new)
            .push(LabelSelectorRequirement {
                key: "kubernetes.io/metadata.name".to_owned(),
                operator: "In".to_owned(),
                values: Some(vec![ns.to_owned()]),
            });
    }
    Api::<MutatingWebhookConfiguration>::all(client.clone())
        .create(&PostParams::default(), &mwc)
        .await
        .unwrap_or_else(|e| panic!("cannot create MutatingWebhookConfiguration {name}: {e}"));
    name
}

pub async fn unregister(client: &Client, name: &str) {
    let _ = Api::<MutatingWebhookConfiguration>::all(client.clone())
        .delete(name, &DeleteParams::default())
        .await;
}
