//! TLS from a certificate file and a key file, reloaded without restart.
//!
//! [`CertResolver`] hands rustls the current [`CertifiedKey`]. [`CertResolver::watch`] re-reads both
//! files every poll interval and compares their *content* with what it last saw: following the paths
//! on every read is what makes Kubernetes' Secret-volume update work, where `tls.crt` is a symlink to
//! `..data/tls.crt` and the kubelet swaps the `..data` symlink to a new directory atomically (inotify on
//! the paths alone never fires for that). A new pair replaces the served one only if the chain parses,
//! the key parses, and the key matches the leaf certificate; otherwise the old pair keeps serving and one
//! error is logged per new content seen. Chains (leaf first, then intermediates) are served whole.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};
use std::sync::{Arc, Mutex, PoisonError, RwLock};
use std::time::Duration;

use rustls::ServerConfig;
use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;
use tokio::sync::watch;

use crate::metrics::Metrics;
use crate::{Error, Result};

/// Whether a certificate is loaded, and its validity (what `/readyz` reports).
#[derive(Clone, Debug, Default)]
pub struct Readiness(Arc<Validity>);

#[derive(Debug, Default)]
struct Validity {
    loaded: AtomicBool,
    not_before: AtomicI64,
    not_after: AtomicI64,
}

impl Readiness {
    /// Always ready (router tests without TLS).
    pub fn ready() -> Self {
        let r = Readiness::default();
        r.set(i64::MIN, i64::MAX);
        r
    }

    /// A certificate is loaded (valid or not).
    pub fn is_ready(&self) -> bool {
        self.0.loaded.load(Ordering::Acquire)
    }

    /// Ready at Unix second `now`: a certificate is loaded, and `now` is within its validity.
    pub fn check(&self, now: i64) -> Result<()> {
        if !self.is_ready() {
            return Err(Error::NotReady);
        }
        let not_before = self.0.not_before.load(Ordering::Acquire);
        let not_after = self.0.not_after.load(Ordering::Acquire);
        if now < not_before {
            Err(Error::CertNotYetValid { not_before })
        } else if now > not_after {
            Err(Error::CertExpired { not_after })
        } else {
            Ok(())
        }
    }

    /// `(notBefore, notAfter)` of the served leaf, Unix seconds (`None` before one is loaded).
    pub fn validity(&self) -> Option<(i64, i64)> {
        self.is_ready().then(|| {
            (
                self.0.not_before.load(Ordering::Acquire),
                self.0.not_after.load(Ordering::Acquire),
            )
        })
    }

    fn set(&self, not_before: i64, not_after: i64) {
        self.0.not_before.store(not_before, Ordering::Release);
        self.0.not_after.store(not_after, Ordering::Release);
        self.0.loaded.store(true, Ordering::Release);
    }
}

/// The certificate and key files.
#[derive(Clone, Debug)]
pub struct CertFiles {
    pub cert: PathBuf,
    pub key: PathBuf,
}

/// Serves the current certificate; swapped by [`CertResolver::watch`].
#[derive(Debug)]
pub struct CertResolver {
    files: CertFiles,
    current: RwLock<Option<Arc<CertifiedKey>>>,
    /// The file content [`CertResolver::load`] last judged: [`CertResolver::watch`] starts from it, so
    /// a change between the first load and the watcher's first poll is not taken for the baseline.
    loaded: Mutex<Seen>,
    ready: Readiness,
    metrics: Metrics,
    provider: Arc<CryptoProvider>,
}

impl ResolvesServerCert for CertResolver {
    fn resolve(&self, _hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        self.current
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }
}

/// Content last read from the files (empty when unreadable).
type Seen = (Vec<u8>, Vec<u8>);

impl CertResolver {
    /// A resolver for `files`, without a certificate yet (call [`CertResolver::load`]).
    pub fn new(files: CertFiles, ready: Readiness, metrics: Metrics) -> Self {
        CertResolver {
            files,
            current: RwLock::new(None),
            loaded: Mutex::new(Seen::default()),
            ready,
            metrics,
            provider: Arc::new(rustls::crypto::ring::default_provider()),
        }
    }

    pub fn files(&self) -> &CertFiles {
        &self.files
    }

    /// The leaf certificate served now, if any.
    pub fn current_leaf(&self) -> Option<CertificateDer<'static>> {
        let current = self.current.read().unwrap_or_else(PoisonError::into_inner);
        current.as_ref().and_then(|c| c.cert.first().cloned())
    }

    /// Reads both files and, if they hold a valid matching pair, serves it.
    pub async fn load(&self) -> Result<()> {
        let seen = read_pair(&self.files).await;
        let result = self.install(&seen);
        *self.loaded.lock().unwrap_or_else(PoisonError::into_inner) = seen;
        result
    }

    fn install(&self, (cert, key): &Seen) -> Result<()> {
        let result = certified_key(cert, key, &self.provider)
            .and_then(|ck| {
                let validity = leaf_validity(&ck.cert[0])?;
                Ok((ck, validity))
            })
            .map_err(|reason| Error::Certificate {
                cert: self.files.cert.clone(),
                key: self.files.key.clone(),
                reason,
            });
        self.metrics.tls_reload(result.is_ok());
        let (ck, (not_before, not_after)) = result?;
        *self.current.write().unwrap_or_else(PoisonError::into_inner) = Some(Arc::new(ck));
        self.ready.set(not_before, not_after);
        self.metrics.cert_validity(not_before, not_after);
        let now = crate::api::state::unix_now();
        if let Err(e) = self.ready.check(now) {
            tracing::error!(
                error = %e,
                reason = e.metric_label(),
                cert = %self.files.cert.display(),
                "loaded TLS certificate is outside its validity; /readyz fails until a valid one is loaded"
            );
        }
        Ok(())
    }

    /// Polls the files every `interval` until `shutdown` turns true, swapping in every new valid pair.
    pub async fn watch(self: Arc<Self>, interval: Duration, mut shutdown: watch::Receiver<bool>) {
        let mut seen = self
            .loaded
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone();
        let mut ticker = tokio::time::interval(interval);
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        ticker.tick().await;
        loop {
            tokio::select! {
                _ = ticker.tick() => {}
                () = crate::server::stopped(&mut shutdown) => return,
            }
            let now = read_pair(&self.files).await;
            if now == seen {
                continue;
            }
            seen = now;
            if let Err(first) = self.install(&seen) {
                // The files may be caught mid-update (a Secret-volume swap between our two reads, or a
                // writer that is not atomic): look once more shortly before calling it an error.
                tokio::time::sleep(Duration::from_millis(250)).await;
                let again = read_pair(&self.files).await;
                let result = if again != seen {
                    seen = again;
                    self.install(&seen)
                } else {
                    Err(first)
                };
                match result {
                    Ok(()) => {
                        tracing::info!(cert = %self.files.cert.display(), "TLS certificate reloaded")
                    }
                    Err(e) => tracing::error!(
                        error = %e,
                        reason = e.metric_label(),
                        "new TLS certificate/key not loaded; still serving the previous one"
                    ),
                }
            } else {
                tracing::info!(cert = %self.files.cert.display(), "TLS certificate reloaded");
            }
        }
    }
}

async fn read_pair(files: &CertFiles) -> Seen {
    let (c, k) = tokio::join!(read_or_empty(&files.cert), read_or_empty(&files.key));
    (c, k)
}

async fn read_or_empty(p: &Path) -> Vec<u8> {
    tokio::fs::read(p).await.unwrap_or_default()
}

/// Parses a PEM certificate chain (leaf first) and a PEM private key (PKCS#8, PKCS#1 or SEC1), and
/// checks that the key belongs to the leaf.
pub fn certified_key(
    cert_pem: &[u8],
    key_pem: &[u8],
    provider: &CryptoProvider,
) -> Result<CertifiedKey, String> {
    if cert_pem.is_empty() {
        return Err("certificate file is empty or unreadable".to_owned());
    }
    if key_pem.is_empty() {
        return Err("key file is empty or unreadable".to_owned());
    }
    let chain = CertificateDer::pem_slice_iter(cert_pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| format!("certificate file: {e}"))?;
    if chain.is_empty() {
        return Err("certificate file holds no CERTIFICATE block".to_owned());
    }
    let key = PrivateKeyDer::from_pem_slice(key_pem).map_err(|e| format!("key file: {e}"))?;
    let signing = provider
        .key_provider
        .load_private_key(key)
        .map_err(|e| format!("key file: {e}"))?;
    let ck = CertifiedKey::new(chain, signing);
    ck.keys_match()
        .map_err(|e| format!("key does not match the certificate: {e}"))?;
    Ok(ck)
}

/// `(notBefore, notAfter)` of a DER certificate, Unix seconds.
pub fn leaf_validity(der: &CertificateDer<'_>) -> Result<(i64, i64), String> {
    let (_, cert) = x509_parser::parse_x509_certificate(der.as_ref())
        .map_err(|e| format!("certificate file: leaf certificate: {e}"))?;
    let v = cert.validity();
    Ok((v.not_before.timestamp(), v.not_after.timestamp()))
}

/// rustls server configuration: TLS 1.3 and 1.2 only, ring, no client auth, ALPN h2 and http/1.1
/// (the apiserver's webhook client speaks HTTP/2).
pub fn server_config(resolver: Arc<dyn ResolvesServerCert>) -> Result<ServerConfig> {
    let mut config =
        ServerConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
            .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])?
            .with_no_client_auth()
            .with_cert_resolver(resolver);
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(config)
}
