//! The kube I/O at the edge: read the Secret and the MutatingWebhookConfiguration, apply a [`Plan`].
//!
//! Order matters for "no admission fails": the caBundle is written first (it then trusts the old and
//! the new CA), and only after `settle` the Secret, whose new pair the webhook pods pick up later.

use std::collections::BTreeMap;
use std::fmt;
use std::path::Path;
use std::time::Duration;

use k8s_openapi::ByteString;
use k8s_openapi::api::admissionregistration::v1::MutatingWebhookConfiguration;
use k8s_openapi::api::core::v1::Secret;
use kube::api::{Api, ObjectMeta, Patch, PatchParams, PostParams};
use kube::config::{KubeConfigOptions, Kubeconfig};
use kube::{Client, Config};
use serde_json::json;

use crate::files::{CA_CRT, CA_KEY, TLS_CRT, TLS_KEY};
use crate::pki::{self, Material};
use crate::plan::{self, Plan, Policy, Reason};
use crate::{Error, Result};

/// The Secret's annotation holding the Unix time of the last CA rotation.
pub const ROTATED_AT_ANNOTATION: &str = "kpo-sweeper.io/ca-rotated-at";
/// The field manager of the caBundle patch.
pub const FIELD_MANAGER: &str = "kpo-sweeper-certs";

/// Which objects the tool owns.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    pub namespace: String,
    pub secret: String,
    pub webhook_config: String,
}

/// A client from `--kubeconfig` when given, else `KUBECONFIG`, `~/.kube/config`, then in-cluster.
pub async fn client(kubeconfig: Option<&Path>) -> Result<Client> {
    let config = match kubeconfig {
        Some(p) => {
            let kc = Kubeconfig::read_from(p)
                .map_err(|e| Error::Client(format!("{}: {e}", p.display())))?;
            Config::from_custom_kubeconfig(kc, &KubeConfigOptions::default())
                .await
                .map_err(|e| Error::Client(format!("{}: {e}", p.display())))?
        }
        None => Config::infer()
            .await
            .map_err(|e| Error::Client(e.to_string()))?,
    };
    Client::try_from(config).map_err(|e| Error::Client(e.to_string()))
}

/// What the cluster holds now.
#[derive(Debug, Clone)]
pub struct Observed {
    pub secret: Option<Secret>,
    /// The Secret's four PEMs, when it has all four.
    pub material: Option<Material>,
    pub rotated_at: Option<i64>,
    pub webhook: MutatingWebhookConfiguration,
    /// Each webhook's caBundle as text (empty when unset).
    pub bundles: Vec<String>,
}

fn kube_err(action: String) -> impl FnOnce(kube::Error) -> Error {
    move |e| Error::Kube {
        action,
        source: Box::new(e),
    }
}

/// Reads the Secret (absent is fine) and the MutatingWebhookConfiguration (absent is an error).
pub async fn observe(client: &Client, t: &Target) -> Result<Observed> {
    let secrets: Api<Secret> = Api::namespaced(client.clone(), &t.namespace);
    let secret = secrets.get_opt(&t.secret).await.map_err(kube_err(format!(
        "cannot get secret {}/{}",
        t.namespace, t.secret
    )))?;
    let configs: Api<MutatingWebhookConfiguration> = Api::all(client.clone());
    let webhook = configs
        .get_opt(&t.webhook_config)
        .await
        .map_err(kube_err(format!(
            "cannot get mutatingwebhookconfiguration {}",
            t.webhook_config
        )))?
        .ok_or_else(|| {
            Error::NotFound(format!(
                "mutatingwebhookconfiguration {} not found: apply the manifests first \
                 (kubectl apply -k manifests/base), or pass --webhook-config",
                t.webhook_config
            ))
        })?;
    let hooks = webhook.webhooks.as_deref().unwrap_or_default();
    if hooks.is_empty() {
        return Err(Error::Invalid {
            what: "mutatingwebhookconfiguration",
            detail: format!("{} has no webhooks", t.webhook_config),
        });
    }
    let bundles = hooks
        .iter()
        .map(|w| {
            w.client_config
                .ca_bundle
                .as_ref()
                .map(|b| String::from_utf8_lossy(&b.0).into_owned())
                .unwrap_or_default()
        })
        .collect();

    let (material, rotated_at) = match &secret {
        Some(s) => {
            if let Some(ty) = s.type_.as_deref()
                && ty != "kubernetes.io/tls"
            {
                return Err(Error::Invalid {
                    what: "secret",
                    detail: format!(
                        "{}/{} has type {ty}, not kubernetes.io/tls (a Secret's type cannot change: \
                         delete it and run install again)",
                        t.namespace, t.secret
                    ),
                });
            }
            (
                material_of(s),
                s.metadata
                    .annotations
                    .as_ref()
                    .and_then(|a| a.get(ROTATED_AT_ANNOTATION))
                    .and_then(|v| v.parse().ok()),
            )
        }
        None => (None, None),
    };
    Ok(Observed {
        secret,
        material,
        rotated_at,
        webhook,
        bundles,
    })
}

/// The four PEMs of a Secret, when all four keys are present and UTF-8.
pub fn material_of(s: &Secret) -> Option<Material> {
    let data = s.data.as_ref()?;
    let get = |k: &str| {
        data.get(k)
            .and_then(|b| String::from_utf8(b.0.clone()).ok())
    };
    Some(Material {
        ca_cert: get(CA_CRT)?,
        ca_key: get(CA_KEY)?,
        tls_cert: get(TLS_CRT)?,
        tls_key: get(TLS_KEY)?,
    })
}

/// What happened to one object.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Change {
    Created,
    Updated,
    Unchanged,
}

impl fmt::Display for Change {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Change::Created => "created",
            Change::Updated => "updated",
            Change::Unchanged => "unchanged",
        })
    }
}

/// The outcome of one `install` or `rotate` run.
#[derive(Debug, Clone)]
pub struct Report {
    pub target: Target,
    pub secret: Change,
    pub webhook: Change,
    pub ca_renewed: Option<Reason>,
    pub serving_renewed: Option<Reason>,
    /// CAs in the caBundle after the run.
    pub bundle_cas: usize,
    /// CAs dropped from the caBundle by the run.
    pub dropped_cas: usize,
    /// The serving certificate's `notAfter` and the CA's, Unix seconds.
    pub serving_not_after: i64,
    pub ca_not_after: i64,
    /// What the Secret holds after the run.
    pub material: Material,
}

impl Report {
    /// Nothing was written.
    pub fn unchanged(&self) -> bool {
        self.secret == Change::Unchanged && self.webhook == Change::Unchanged
    }
}

impl fmt::Display for Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let t = &self.target;
        if self.unchanged() {
            write!(
                f,
                "unchanged: secret {}/{} and mutatingwebhookconfiguration {} are current",
                t.namespace, t.secret, t.webhook_config
            )?;
        } else {
            write!(f, "secret {}/{}: {}", t.namespace, t.secret, self.secret)?;
            match (self.ca_renewed, self.serving_renewed) {
                (Some(c), _) => write!(f, " (new CA: {c})")?,
                (None, Some(s)) => write!(f, " (new serving certificate: {s})")?,
                (None, None) => {}
            }
            write!(
                f,
                "; mutatingwebhookconfiguration {}: {} (caBundle: {} CA(s), {} dropped)",
                t.webhook_config, self.webhook, self.bundle_cas, self.dropped_cas
            )?;
        }
        write!(
            f,
            "; serving certificate expires {}, CA {}",
            rfc3339(self.serving_not_after),
            rfc3339(self.ca_not_after)
        )
    }
}

fn rfc3339(unix: i64) -> String {
    time::OffsetDateTime::from_unix_timestamp(unix)
        .ok()
        .and_then(|t| {
            t.format(&time::format_description::well_known::Rfc3339)
                .ok()
        })
        .unwrap_or_else(|| unix.to_string())
}

/// Observe, plan, apply.
pub async fn reconcile(
    client: &Client,
    t: &Target,
    policy: &Policy,
    settle: Duration,
) -> Result<Report> {
    policy.validate()?;
    let observed = observe(client, t).await?;
    let now = crate::now_unix();
    let plan = plan::plan(
        now,
        policy,
        observed.material.as_ref(),
        observed.rotated_at,
        &observed.bundles,
    )?;
    apply(client, t, &observed, &plan, settle).await
}

/// Writes what `plan` says differs from `observed`: the caBundle first, then (after `settle` when both
/// change) the Secret.
pub async fn apply(
    client: &Client,
    t: &Target,
    observed: &Observed,
    plan: &Plan,
    settle: Duration,
) -> Result<Report> {
    let bundle_pem = plan.bundle_pem();
    let hooks = observed.webhook.webhooks.as_deref().unwrap_or_default();
    let webhook_change = if observed
        .bundles
        .iter()
        .all(|b| plan::bundle_is(b, &plan.bundle))
    {
        Change::Unchanged
    } else {
        // A strategic merge patch keyed by webhook name, guarded by resourceVersion: a concurrent
        // writer makes this fail with a conflict instead of being overwritten.
        let b64 = pki::base64(bundle_pem.as_bytes());
        let patch = json!({
            "metadata": {"resourceVersion": observed.webhook.metadata.resource_version},
            "webhooks": hooks.iter().map(|w| json!({
                "name": w.name,
                "clientConfig": {"caBundle": b64},
            })).collect::<Vec<_>>(),
        });
        let configs: Api<MutatingWebhookConfiguration> = Api::all(client.clone());
        configs
            .patch(
                &t.webhook_config,
                &PatchParams {
                    field_manager: Some(FIELD_MANAGER.into()),
                    ..Default::default()
                },
                &Patch::Strategic(patch),
            )
            .await
            .map_err(kube_err(format!(
                "cannot patch caBundle of mutatingwebhookconfiguration {}",
                t.webhook_config
            )))?;
        tracing::info!(
            config = %t.webhook_config,
            webhooks = hooks.len(),
            cas = plan.bundle.len(),
            dropped = plan.dropped.len(),
            "caBundle updated"
        );
        Change::Updated
    };

    let rotated_at = plan.rotated_at.to_string();
    let secret_current = observed.material.as_ref() == Some(&plan.material)
        && observed
            .secret
            .as_ref()
            .and_then(|s| s.metadata.annotations.as_ref())
            .and_then(|a| a.get(ROTATED_AT_ANNOTATION))
            == Some(&rotated_at);
    let secret_change = if secret_current {
        Change::Unchanged
    } else {
        if webhook_change == Change::Updated && plan.material_changed() {
            // Let every apiserver's informer see the new caBundle before any webhook can serve the new
            // pair (in a cluster the kubelet's Secret refresh adds far more delay than this).
            tokio::time::sleep(settle).await;
        }
        let secrets: Api<Secret> = Api::namespaced(client.clone(), &t.namespace);
        let m = &plan.material;
        let data: BTreeMap<String, ByteString> = [
            (CA_CRT, &m.ca_cert),
            (CA_KEY, &m.ca_key),
            (TLS_CRT, &m.tls_cert),
            (TLS_KEY, &m.tls_key),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), ByteString(v.clone().into_bytes())))
        .collect();
        match &observed.secret {
            Some(old) => {
                let mut s = old.clone();
                s.data = Some(data);
                s.string_data = None;
                s.metadata
                    .annotations
                    .get_or_insert_with(BTreeMap::new)
                    .insert(ROTATED_AT_ANNOTATION.into(), rotated_at);
                s.metadata.managed_fields = None;
                secrets
                    .replace(&t.secret, &PostParams::default(), &s)
                    .await
                    .map_err(kube_err(format!(
                        "cannot update secret {}/{}",
                        t.namespace, t.secret
                    )))?;
                Change::Updated
            }
            None => {
                let s = Secret {
                    metadata: ObjectMeta {
                        name: Some(t.secret.clone()),
                        namespace: Some(t.namespace.clone()),
                        labels: Some(BTreeMap::from([(
                            "app.kubernetes.io/part-of".to_string(),
                            "kpo-sweeper".to_string(),
                        )])),
                        annotations: Some(BTreeMap::from([(
                            ROTATED_AT_ANNOTATION.to_string(),
                            rotated_at,
                        )])),
                        ..Default::default()
                    },
                    type_: Some("kubernetes.io/tls".into()),
                    data: Some(data),
                    ..Default::default()
                };
                secrets
                    .create(&PostParams::default(), &s)
                    .await
                    .map_err(kube_err(format!(
                        "cannot create secret {}/{}",
                        t.namespace, t.secret
                    )))?;
                Change::Created
            }
        }
    };
    if secret_change != Change::Unchanged {
        tracing::info!(
            secret = %format!("{}/{}", t.namespace, t.secret),
            change = %secret_change,
            ca_renewed = plan.ca_renewed.map(Reason::as_str),
            serving_renewed = plan.serving_renewed.map(Reason::as_str),
            "secret written"
        );
    }

    let serving = pki::CertInfo::parse(&plan.material.tls_cert)?;
    Ok(Report {
        target: t.clone(),
        secret: secret_change,
        webhook: webhook_change,
        ca_renewed: plan.ca_renewed,
        serving_renewed: plan.serving_renewed,
        bundle_cas: plan.bundle.len(),
        dropped_cas: plan.dropped.len(),
        serving_not_after: serving.not_after,
        ca_not_after: plan.bundle[0].not_after,
        material: plan.material.clone(),
    })
}
