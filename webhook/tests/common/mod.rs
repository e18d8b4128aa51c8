//! Test helpers shared by the server and end-to-end tests: a test CA (rcgen), a Secret-volume-like
//! directory whose files are swapped the way the kubelet does it, and a TLS client.
#![allow(dead_code)]

pub mod hostile;
pub mod k8s;

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Once};
use std::time::Duration;

use rcgen::{
    BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair, KeyUsagePurpose, SanType,
};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;
use tokio_rustls::client::TlsStream;

pub fn install_provider() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        let _ = rustls::crypto::ring::default_provider().install_default();
    });
}

/// A CA that signs serving certificates for 127.0.0.1.
pub struct Ca {
    issuer: Issuer<'static, KeyPair>,
    /// PEM of the CA certificate.
    pub pem: String,
}

/// A date: (year, month, day).
pub type Ymd = (i32, u8, u8);

/// A serving certificate (PEM chain, leaf first) and its key.
#[derive(Clone)]
pub struct Leaf {
    pub chain_pem: String,
    pub key_pem: String,
    pub der: CertificateDer<'static>,
}

impl Ca {
    pub fn new(name: &str) -> Ca {
        let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
        params.distinguished_name.push(DnType::CommonName, name);
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
        let key = KeyPair::generate().unwrap();
        let cert = params.self_signed(&key).unwrap();
        Ca {
            pem: cert.pem(),
            issuer: Issuer::new(params, key),
        }
    }

    /// An intermediate CA signed by this one (its PEM is the intermediate's certificate only).
    pub fn intermediate(&self, name: &str) -> Ca {
        let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
        params.distinguished_name.push(DnType::CommonName, name);
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
        let key = KeyPair::generate().unwrap();
        let cert = params.signed_by(&key, &self.issuer).unwrap();
        Ca {
            pem: cert.pem(),
            issuer: Issuer::new(params, key),
        }
    }

    /// A serving certificate for `127.0.0.1`, `::1` and `localhost`. For an intermediate, the chain
    /// holds the leaf then the intermediate.
    pub fn leaf(&self, cn: &str, chain_with_self: bool) -> Leaf {
        self.leaf_valid(cn, chain_with_self, None)
    }

    /// [`Ca::leaf`], valid from `validity.0` to `validity.1` (`(year, month, day)`, UTC midnight) when
    /// given (rcgen's default otherwise: 1975 to 4096).
    pub fn leaf_valid(
        &self,
        cn: &str,
        chain_with_self: bool,
        validity: Option<(Ymd, Ymd)>,
    ) -> Leaf {
        let mut params = CertificateParams::new(vec!["localhost".to_owned()]).unwrap();
        params.distinguished_name.push(DnType::CommonName, cn);
        if let Some(((y0, m0, d0), (y1, m1, d1))) = validity {
            params.not_before = rcgen::date_time_ymd(y0, m0, d0);
            params.not_after = rcgen::date_time_ymd(y1, m1, d1);
        }
        params
            .subject_alt_names
            .push(SanType::IpAddress(IpAddr::V4(Ipv4Addr::LOCALHOST)));
        params
            .subject_alt_names
            .push(SanType::IpAddress(IpAddr::V6(Ipv6Addr::LOCALHOST)));
        let key = KeyPair::generate().unwrap();
        let cert = params.signed_by(&key, &self.issuer).unwrap();
        let mut chain_pem = cert.pem();
        if chain_with_self {
            chain_pem.push_str(&self.pem);
        }
        Leaf {
            chain_pem,
            key_pem: key.serialize_pem(),
            der: cert.der().clone(),
        }
    }
}

/// A directory laid out like a Secret volume: `tls.crt -> ..data/tls.crt`, `..data -> ..<n>`, and
/// [`SecretDir::swap`] replaces the content the kubelet's way (new directory, `..data` symlink renamed
/// over atomically, old directory removed).
pub struct SecretDir {
    pub root: PathBuf,
    generation: usize,
}

impl SecretDir {
    pub fn new(root: &Path, leaf: &Leaf) -> SecretDir {
        std::fs::create_dir_all(root).unwrap();
        let mut dir = SecretDir {
            root: root.to_owned(),
            generation: 0,
        };
        dir.swap_raw(leaf.chain_pem.as_bytes(), leaf.key_pem.as_bytes());
        std::os::unix::fs::symlink("..data/tls.crt", root.join("tls.crt")).unwrap();
        std::os::unix::fs::symlink("..data/tls.key", root.join("tls.key")).unwrap();
        dir
    }

    pub fn cert(&self) -> PathBuf {
        self.root.join("tls.crt")
    }

    pub fn key(&self) -> PathBuf {
        self.root.join("tls.key")
    }

    pub fn swap(&mut self, leaf: &Leaf) {
        self.swap_raw(leaf.chain_pem.as_bytes(), leaf.key_pem.as_bytes());
    }

    pub fn swap_raw(&mut self, cert: &[u8], key: &[u8]) {
        let old = format!("..gen_{}", self.generation);
        self.generation += 1;
        let new = format!("..gen_{}", self.generation);
        let new_dir = self.root.join(&new);
        std::fs::create_dir(&new_dir).unwrap();
        std::fs::write(new_dir.join("tls.crt"), cert).unwrap();
        std::fs::write(new_dir.join("tls.key"), key).unwrap();
        let tmp = self.root.join("..data_tmp");
        let _ = std::fs::remove_file(&tmp);
        std::os::unix::fs::symlink(&new, &tmp).unwrap();
        std::fs::rename(&tmp, self.root.join("..data")).unwrap();
        let _ = std::fs::remove_dir_all(self.root.join(old));
    }
}

/// A TLS client trusting `roots` (PEM), offering `alpn`.
pub fn connector(roots: &[&str], alpn: &[&[u8]]) -> TlsConnector {
    install_provider();
    let mut store = rustls::RootCertStore::empty();
    for pem in roots {
        for cert in CertificateDer::pem_slice_iter(pem.as_bytes()) {
            store.add(cert.unwrap()).unwrap();
        }
    }
    let mut config = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_root_certificates(store)
    .with_no_client_auth();
    config.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
    TlsConnector::from(Arc::new(config))
}

pub async fn tls_connect(
    addr: SocketAddr,
    connector: &TlsConnector,
) -> std::io::Result<TlsStream<TcpStream>> {
    let tcp = TcpStream::connect(addr).await?;
    connector
        .connect(ServerName::IpAddress(addr.ip().into()), tcp)
        .await
}

/// The leaf certificate the server at `addr` presents to a client trusting `roots`, or the error.
pub async fn served_leaf(
    addr: SocketAddr,
    roots: &[&str],
) -> Result<CertificateDer<'static>, String> {
    let tls = tls_connect(addr, &connector(roots, &[b"http/1.1"]))
        .await
        .map_err(|e| e.to_string())?;
    let (_, conn) = tls.get_ref();
    conn.peer_certificates()
        .and_then(|c| c.first().cloned())
        .ok_or_else(|| "no peer certificate".to_owned())
}

/// Waits until the server presents `want` (polling every 50 ms, at most `timeout`).
pub async fn wait_for_leaf(
    addr: SocketAddr,
    roots: &[&str],
    want: &CertificateDer<'static>,
    timeout: Duration,
) -> bool {
    let deadline = tokio::time::Instant::now() + timeout;
    while tokio::time::Instant::now() < deadline {
        if served_leaf(addr, roots).await.ok().as_ref() == Some(want) {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    false
}

/// A raw HTTP/1.1 request (`Connection: close`); returns the status code and the body.
pub async fn http1<S>(
    stream: &mut S,
    method: &str,
    path: &str,
    content_type: &str,
    body: &[u8],
) -> (u16, String)
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
{
    let head = format!(
        "{method} {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    stream.write_all(head.as_bytes()).await.unwrap();
    stream.write_all(body).await.unwrap();
    stream.flush().await.unwrap();
    read_response(stream).await
}

/// Reads an HTTP/1.1 response until the server closes the connection.
pub async fn read_response<S>(stream: &mut S) -> (u16, String)
where
    S: tokio::io::AsyncRead + Unpin,
{
    let mut buf = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(10), stream.read_to_end(&mut buf)).await;
    parse_response(&buf)
}

pub fn parse_response(buf: &[u8]) -> (u16, String) {
    let text = String::from_utf8_lossy(buf);
    let status = text
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("not an HTTP response: {text:?}"));
    let body = text
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_owned())
        .unwrap_or_default();
    (status, body)
}

/// Plain HTTP GET (metrics listener).
pub async fn http_get(addr: SocketAddr, path: &str) -> Result<(u16, String), String> {
    let mut tcp = TcpStream::connect(addr).await.map_err(|e| e.to_string())?;
    let head = format!("GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n");
    tcp.write_all(head.as_bytes())
        .await
        .map_err(|e| e.to_string())?;
    Ok(read_response(&mut tcp).await)
}

/// A free loopback port (bound then released).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// The realistic KPO pod AdmissionReview fixture (≈ 6 KB).
pub const KPO_REVIEW: &str = include_str!("../data/kpo_pod_review.json");
