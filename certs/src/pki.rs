//! Pure certificate work: make a CA and a serving certificate, read back what a PEM holds.
//!
//! No I/O: PEM strings in, PEM strings out, time passed in as Unix seconds.

use std::net::IpAddr;

use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa,
    Issuer, KeyPair, KeyUsagePurpose,
};
use time::OffsetDateTime;
use x509_parser::prelude::{FromDer, GeneralName, X509Certificate};

use crate::{Error, Result};

/// How far back `notBefore` is set, so a node whose clock runs a little behind accepts a new cert.
pub const BACKDATE_SECS: i64 = 5 * 60;

/// The four PEM documents the tool keeps in the Secret (`ca.crt`, `ca.key`, `tls.crt`, `tls.key`).
#[derive(Clone, PartialEq, Eq)]
pub struct Material {
    pub ca_cert: String,
    pub ca_key: String,
    pub tls_cert: String,
    pub tls_key: String,
}

impl std::fmt::Debug for Material {
    // Keys never appear in logs or panics.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Material")
            .field("ca_cert", &self.ca_cert)
            .field("ca_key", &"<redacted>")
            .field("tls_cert", &self.tls_cert)
            .field("tls_key", &"<redacted>")
            .finish()
    }
}

/// The DNS names a webhook Service answers to inside the cluster:
/// `svc`, `svc.ns`, `svc.ns.svc`, `svc.ns.svc.cluster.local`, then `extra` (DNS names or IP addresses,
/// e.g. `127.0.0.1` for a webhook run on loopback), without duplicates, in that order.
pub fn service_names(service: &str, namespace: &str, extra: &[String]) -> Vec<String> {
    let mut names = vec![
        service.to_string(),
        format!("{service}.{namespace}"),
        format!("{service}.{namespace}.svc"),
        format!("{service}.{namespace}.svc.cluster.local"),
    ];
    for e in extra {
        let e = e.trim();
        if !e.is_empty() && !names.iter().any(|n| n == e) {
            names.push(e.to_string());
        }
    }
    names
}

/// A new self-signed CA valid from `now - BACKDATE_SECS` for `validity_secs`.
pub fn generate_ca(now: i64, validity_secs: i64) -> Result<(String, String)> {
    let key = KeyPair::generate().map_err(|e| Error::Generate(e.to_string()))?;
    let mut params = CertificateParams::default();
    let mut dn = DistinguishedName::new();
    // The epoch in the CN tells generations apart in `openssl x509 -text` and in the caBundle.
    dn.push(DnType::CommonName, format!("kpo-sweeper webhook CA {now}"));
    dn.push(DnType::OrganizationName, "kpo-sweeper");
    params.distinguished_name = dn;
    params.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
    params.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    params.not_before = to_time(now - BACKDATE_SECS)?;
    params.not_after = to_time(now + validity_secs)?;
    let cert = params
        .self_signed(&key)
        .map_err(|e| Error::Generate(e.to_string()))?;
    Ok((cert.pem(), key.serialize_pem()))
}

/// A serving certificate for `names` signed by the CA, valid for `validity_secs` but never past the CA.
pub fn issue_serving(
    ca_cert: &str,
    ca_key: &str,
    names: &[String],
    now: i64,
    validity_secs: i64,
) -> Result<(String, String)> {
    let ca_info = CertInfo::parse(ca_cert)?;
    let ca_key = KeyPair::from_pem(ca_key).map_err(|e| Error::Invalid {
        what: "ca.key",
        detail: e.to_string(),
    })?;
    let issuer = Issuer::from_ca_cert_pem(ca_cert, ca_key).map_err(|e| Error::Invalid {
        what: "ca.crt",
        detail: e.to_string(),
    })?;
    let key = KeyPair::generate().map_err(|e| Error::Generate(e.to_string()))?;
    let mut params = CertificateParams::new(names.to_vec()).map_err(|e| Error::Invalid {
        what: "subject alternative name",
        detail: format!("{names:?}: {e}"),
    })?;
    let mut dn = DistinguishedName::new();
    dn.push(
        DnType::CommonName,
        names.first().cloned().unwrap_or_default(),
    );
    params.distinguished_name = dn;
    params.is_ca = IsCa::ExplicitNoCa;
    params.key_usages = vec![
        KeyUsagePurpose::DigitalSignature,
        KeyUsagePurpose::KeyEncipherment,
    ];
    params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
    params.use_authority_key_identifier_extension = true;
    params.not_before = to_time(now - BACKDATE_SECS)?;
    params.not_after = to_time((now + validity_secs).min(ca_info.not_after))?;
    let cert = params
        .signed_by(&key, &issuer)
        .map_err(|e| Error::Generate(e.to_string()))?;
    Ok((cert.pem(), key.serialize_pem()))
}

/// A fresh CA and a serving certificate for `names`.
pub fn generate(
    names: &[String],
    now: i64,
    validity_secs: i64,
    ca_validity_secs: i64,
) -> Result<Material> {
    let (ca_cert, ca_key) = generate_ca(now, ca_validity_secs)?;
    let (tls_cert, tls_key) = issue_serving(&ca_cert, &ca_key, names, now, validity_secs)?;
    Ok(Material {
        ca_cert,
        ca_key,
        tls_cert,
        tls_key,
    })
}

/// What the tool needs to know about one certificate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CertInfo {
    /// The DER bytes: identity of the certificate (two PEMs of one cert compare equal).
    pub der: Vec<u8>,
    pub subject: String,
    pub not_before: i64,
    pub not_after: i64,
    pub is_ca: bool,
    /// DNS names and IP addresses (as text), in certificate order.
    pub sans: Vec<String>,
}

impl CertInfo {
    /// The first certificate of a PEM document.
    pub fn parse(pem: &str) -> Result<Self> {
        parse_bundle(pem)?
            .into_iter()
            .next()
            .ok_or_else(|| Error::Invalid {
                what: "certificate",
                detail: "no CERTIFICATE block in PEM".into(),
            })
    }

    pub fn to_pem(&self) -> String {
        pem_encode("CERTIFICATE", &self.der)
    }

    /// Seconds left before `notAfter` (negative once expired).
    pub fn remaining(&self, now: i64) -> i64 {
        self.not_after - now
    }

    /// Whether `self` carries a valid signature by `issuer`'s key.
    pub fn signed_by(&self, issuer: &CertInfo) -> bool {
        let (Ok((_, c)), Ok((_, i))) = (
            X509Certificate::from_der(&self.der),
            X509Certificate::from_der(&issuer.der),
        ) else {
            return false;
        };
        c.issuer().as_raw() == i.subject().as_raw()
            && c.verify_signature(Some(i.public_key())).is_ok()
    }
}

/// Every certificate of a PEM bundle (a caBundle may hold several), in order. Blocks that are not
/// `CERTIFICATE` are ignored; an unparsable certificate is an error.
pub fn parse_bundle(pem: &str) -> Result<Vec<CertInfo>> {
    let mut out = Vec::new();
    for block in x509_parser::pem::Pem::iter_from_buffer(pem.as_bytes()) {
        let block = block.map_err(|e| Error::Invalid {
            what: "PEM",
            detail: e.to_string(),
        })?;
        if block.label != "CERTIFICATE" {
            continue;
        }
        let (_, cert) = X509Certificate::from_der(&block.contents).map_err(|e| Error::Invalid {
            what: "certificate",
            detail: e.to_string(),
        })?;
        let mut sans = Vec::new();
        if let Ok(Some(ext)) = cert.subject_alternative_name() {
            for name in &ext.value.general_names {
                match name {
                    GeneralName::DNSName(d) => sans.push((*d).to_string()),
                    GeneralName::IPAddress(b) => {
                        let ip: Option<IpAddr> = match b.len() {
                            4 => <[u8; 4]>::try_from(*b).ok().map(IpAddr::from),
                            16 => <[u8; 16]>::try_from(*b).ok().map(IpAddr::from),
                            _ => None,
                        };
                        if let Some(ip) = ip {
                            sans.push(ip.to_string());
                        }
                    }
                    _ => {}
                }
            }
        }
        out.push(CertInfo {
            subject: cert.subject().to_string(),
            not_before: cert.validity().not_before.timestamp(),
            not_after: cert.validity().not_after.timestamp(),
            is_ca: cert.is_ca(),
            sans,
            der: block.contents.clone(),
        });
    }
    Ok(out)
}

/// Whether the PEM private key `key` is the key of `cert`.
pub fn key_matches(cert: &CertInfo, key_pem: &str) -> bool {
    let Ok(key) = KeyPair::from_pem(key_pem) else {
        return false;
    };
    let Ok((_, c)) = X509Certificate::from_der(&cert.der) else {
        return false;
    };
    c.public_key().subject_public_key.data.as_ref() == key.public_key_raw()
}

/// Whether a certificate's SANs are exactly `names` (order ignored; IPs compared as addresses).
pub fn sans_match(cert: &CertInfo, names: &[String]) -> bool {
    let norm = |s: &str| match s.parse::<IpAddr>() {
        Ok(ip) => ip.to_string(),
        Err(_) => s.to_ascii_lowercase(),
    };
    let mut have: Vec<String> = cert.sans.iter().map(|s| norm(s)).collect();
    let mut want: Vec<String> = names.iter().map(|s| norm(s)).collect();
    have.sort();
    have.dedup();
    want.sort();
    want.dedup();
    have == want
}

/// PEM-encode DER bytes (64-column base64, `\n` line ends).
pub fn pem_encode(label: &str, der: &[u8]) -> String {
    let b64 = base64(der);
    let mut s = format!("-----BEGIN {label}-----\n");
    for chunk in b64.as_bytes().chunks(64) {
        s.push_str(std::str::from_utf8(chunk).unwrap_or_default());
        s.push('\n');
    }
    s.push_str(&format!("-----END {label}-----\n"));
    s
}

/// Standard base64 with padding (the encoding of `caBundle` and of Secret data in JSON).
pub fn base64(data: &[u8]) -> String {
    const T: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(data.len().div_ceil(3) * 4);
    for chunk in data.chunks(3) {
        let b = [
            chunk[0],
            chunk.get(1).copied().unwrap_or(0),
            chunk.get(2).copied().unwrap_or(0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        out.push(T[(n >> 18) as usize & 63] as char);
        out.push(T[(n >> 12) as usize & 63] as char);
        out.push(if chunk.len() > 1 {
            T[(n >> 6) as usize & 63] as char
        } else {
            '='
        });
        out.push(if chunk.len() > 2 {
            T[n as usize & 63] as char
        } else {
            '='
        });
    }
    out
}

fn to_time(unix: i64) -> Result<OffsetDateTime> {
    OffsetDateTime::from_unix_timestamp(unix).map_err(|e| Error::Generate(e.to_string()))
}

/// Whether `names` contains IP addresses (callers print them for the operator).
pub fn ip_sans(cert: &CertInfo) -> Vec<IpAddr> {
    cert.sans.iter().filter_map(|s| s.parse().ok()).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: i64 = 1_800_000_000;
    const DAY: i64 = 86_400;

    fn names() -> Vec<String> {
        service_names("kpo-sweeper-webhook", "kpo-sweeper", &["127.0.0.1".into()])
    }

    #[test]
    fn service_names_cover_the_four_forms_then_extras_without_duplicates() {
        let n = service_names(
            "wh",
            "ns",
            &["wh".into(), " 127.0.0.1 ".into(), "".into(), "::1".into()],
        );
        assert_eq!(
            n,
            vec![
                "wh",
                "wh.ns",
                "wh.ns.svc",
                "wh.ns.svc.cluster.local",
                "127.0.0.1",
                "::1"
            ]
        );
    }

    #[test]
    fn generated_material_is_a_ca_and_a_serving_cert_it_signed() {
        let m = generate(&names(), NOW, 365 * DAY, 3650 * DAY).unwrap();
        let ca = CertInfo::parse(&m.ca_cert).unwrap();
        let tls = CertInfo::parse(&m.tls_cert).unwrap();
        assert!(ca.is_ca);
        assert!(!tls.is_ca);
        assert!(tls.signed_by(&ca));
        assert!(ca.signed_by(&ca), "the CA is self-signed");
        assert!(!ca.signed_by(&tls));
        assert!(key_matches(&ca, &m.ca_key));
        assert!(key_matches(&tls, &m.tls_key));
        assert!(!key_matches(&tls, &m.ca_key));
        assert!(sans_match(&tls, &names()));
        assert_eq!(ip_sans(&tls), vec!["127.0.0.1".parse::<IpAddr>().unwrap()]);
        assert_eq!(tls.not_before, NOW - BACKDATE_SECS);
        assert_eq!(tls.not_after, NOW + 365 * DAY);
        assert_eq!(ca.not_after, NOW + 3650 * DAY);
        assert!(m.tls_key.contains("PRIVATE KEY"));
        assert!(
            !format!("{m:?}").contains("PRIVATE KEY"),
            "Debug redacts keys"
        );
    }

    #[test]
    fn a_cert_from_another_ca_is_not_signed_by_this_one() {
        let a = generate(&names(), NOW, DAY, 10 * DAY).unwrap();
        let b = generate(&names(), NOW, DAY, 10 * DAY).unwrap();
        let ca_a = CertInfo::parse(&a.ca_cert).unwrap();
        let tls_b = CertInfo::parse(&b.tls_cert).unwrap();
        assert!(!tls_b.signed_by(&ca_a));
    }

    #[test]
    fn serving_cert_never_outlives_its_ca() {
        let m = generate(&names(), NOW, 365 * DAY, 10 * DAY).unwrap();
        let tls = CertInfo::parse(&m.tls_cert).unwrap();
        assert_eq!(tls.not_after, NOW + 10 * DAY);
    }

    #[test]
    fn sans_compare_as_a_set() {
        let m = generate(&names(), NOW, DAY, 10 * DAY).unwrap();
        let tls = CertInfo::parse(&m.tls_cert).unwrap();
        let mut shuffled = names();
        shuffled.reverse();
        assert!(sans_match(&tls, &shuffled));
        assert!(!sans_match(&tls, &names()[..4]));
    }

    #[test]
    fn bundle_parses_every_certificate_and_round_trips_pem() {
        let a = generate(&names(), NOW, DAY, 10 * DAY).unwrap();
        let b = generate(&names(), NOW, DAY, 10 * DAY).unwrap();
        let bundle = format!("{}{}", a.ca_cert, b.ca_cert);
        let certs = parse_bundle(&bundle).unwrap();
        assert_eq!(certs.len(), 2);
        assert_eq!(CertInfo::parse(&certs[1].to_pem()).unwrap(), certs[1]);
        assert_eq!(certs[0].to_pem(), a.ca_cert.replace("\r\n", "\n"));
        assert!(parse_bundle("").unwrap().is_empty());
        assert!(CertInfo::parse("").is_err());
        assert!(
            parse_bundle("-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n").is_err()
        );
    }

    #[test]
    fn base64_matches_rfc4648_vectors() {
        for (i, o) in [
            ("", ""),
            ("f", "Zg=="),
            ("fo", "Zm8="),
            ("foo", "Zm9v"),
            ("foob", "Zm9vYg=="),
            ("fooba", "Zm9vYmE="),
            ("foobar", "Zm9vYmFy"),
        ] {
            assert_eq!(base64(i.as_bytes()), o);
        }
    }
}
