//! The pure decision: given what the cluster holds now, what the Secret and the caBundle should hold.
//!
//! `install` and `rotate` share it; `install` only replaces what is missing, invalid or expired, `rotate`
//! also renews what expires within its thresholds. The caBundle always carries the current CA; during a CA
//! rotation it carries the old CA too, and it keeps older CAs for `ca_overlap` after the rotation (the
//! webhook pods pick the new pair up only after the kubelet refreshes the Secret volume and the webhook's
//! reload notices it). Expired CAs are always dropped.

use std::fmt;

use crate::pki::{self, CertInfo, Material};
use crate::{Error, Result};

/// What the operator asked for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Policy {
    /// The serving certificate's SANs (see [`pki::service_names`]).
    pub names: Vec<String>,
    /// Lifetime of a new serving certificate, seconds.
    pub validity: i64,
    /// Lifetime of a new CA, seconds.
    pub ca_validity: i64,
    /// Renew the serving certificate when it expires within this many seconds (0: only once expired).
    pub renew_before: i64,
    /// Renew the CA when it expires within this many seconds (0: only once expired).
    pub ca_renew_before: i64,
    /// Keep CAs other than the current one in the caBundle for this long after the last CA rotation.
    pub ca_overlap: i64,
}

impl Policy {
    /// Rejects thresholds that would renew on every run.
    pub fn validate(&self) -> Result<()> {
        if self.names.is_empty() {
            return Err(Error::Config(
                "no DNS names for the serving certificate".into(),
            ));
        }
        if self.validity <= self.renew_before {
            return Err(Error::Config(format!(
                "--validity ({}s) must be longer than --renew-before ({}s), or every run would renew",
                self.validity, self.renew_before
            )));
        }
        if self.ca_validity <= self.ca_renew_before.max(self.renew_before) {
            return Err(Error::Config(format!(
                "--ca-validity ({}s) must be longer than --ca-renew-before ({}s) and --renew-before ({}s)",
                self.ca_validity, self.ca_renew_before, self.renew_before
            )));
        }
        if self.renew_before < 0 || self.ca_renew_before < 0 || self.ca_overlap < 0 {
            return Err(Error::Config("durations must not be negative".into()));
        }
        Ok(())
    }
}

/// Why something is (re)generated.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reason {
    /// No Secret, or a Secret without all four keys.
    Missing,
    /// A PEM that does not parse, a key that does not match its certificate, a CA that is not a CA.
    Invalid,
    /// Expires within the threshold (or has expired).
    Expiring,
    /// The serving certificate's SANs are not the names asked for.
    NamesChanged,
    /// The serving certificate was not signed by the Secret's CA.
    WrongIssuer,
    /// The CA was replaced, so the serving certificate must be reissued.
    NewCa,
}

impl Reason {
    pub fn as_str(self) -> &'static str {
        match self {
            Reason::Missing => "missing",
            Reason::Invalid => "invalid",
            Reason::Expiring => "expiring",
            Reason::NamesChanged => "names-changed",
            Reason::WrongIssuer => "wrong-issuer",
            Reason::NewCa => "new-ca",
        }
    }
}

impl fmt::Display for Reason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The outcome of [`plan`].
#[derive(Debug, Clone)]
pub struct Plan {
    /// What the Secret must hold.
    pub material: Material,
    /// `Some(reason)` when a new CA was generated.
    pub ca_renewed: Option<Reason>,
    /// `Some(reason)` when a new serving certificate was issued.
    pub serving_renewed: Option<Reason>,
    /// Unix seconds of the last CA rotation (stored as a Secret annotation).
    pub rotated_at: i64,
    /// The caBundle every webhook must carry: the current CA first, then the CAs still kept.
    pub bundle: Vec<CertInfo>,
    /// CAs that were in some caBundle and are dropped now.
    pub dropped: Vec<CertInfo>,
}

impl Plan {
    pub fn material_changed(&self) -> bool {
        self.ca_renewed.is_some() || self.serving_renewed.is_some()
    }

    /// The caBundle as PEM.
    pub fn bundle_pem(&self) -> String {
        self.bundle.iter().map(CertInfo::to_pem).collect()
    }
}

/// Whether a caBundle (PEM) holds exactly the certificates of `want`, in order (formatting ignored).
pub fn bundle_is(current: &str, want: &[CertInfo]) -> bool {
    match pki::parse_bundle(current) {
        Ok(have) => have.len() == want.len() && have.iter().zip(want).all(|(h, w)| h.der == w.der),
        Err(_) => false,
    }
}

/// Decide. `current` is the Secret's material when it has all four keys; `rotated_at` its annotation;
/// `bundles` the caBundle of every webhook of the configuration (PEM, empty when unset).
pub fn plan(
    now: i64,
    policy: &Policy,
    current: Option<&Material>,
    rotated_at: Option<i64>,
    bundles: &[String],
) -> Result<Plan> {
    policy.validate()?;

    // 1. The CA.
    let current_ca = current.map(|m| (m, CertInfo::parse(&m.ca_cert)));
    let ca_reason = match &current_ca {
        None => Some(Reason::Missing),
        Some((_, Err(_))) => Some(Reason::Invalid),
        Some((m, Ok(ca))) if !ca.is_ca || !pki::key_matches(ca, &m.ca_key) => Some(Reason::Invalid),
        Some((_, Ok(ca)))
            if ca.remaining(now) <= policy.ca_renew_before.max(policy.renew_before) =>
        {
            Some(Reason::Expiring)
        }
        Some(_) => None,
    };

    // 2. The serving certificate.
    let serving_reason = match (ca_reason, current) {
        (Some(_), _) => Some(Reason::NewCa),
        (None, None) => Some(Reason::Missing),
        (None, Some(m)) => match (CertInfo::parse(&m.tls_cert), CertInfo::parse(&m.ca_cert)) {
            (Ok(tls), Ok(ca)) => {
                if !pki::key_matches(&tls, &m.tls_key) || tls.is_ca {
                    Some(Reason::Invalid)
                } else if !tls.signed_by(&ca) {
                    Some(Reason::WrongIssuer)
                } else if !pki::sans_match(&tls, &policy.names) {
                    Some(Reason::NamesChanged)
                } else if tls.remaining(now) <= policy.renew_before {
                    Some(Reason::Expiring)
                } else {
                    None
                }
            }
            _ => Some(Reason::Invalid),
        },
    };

    // 3. The new material.
    let material = match (ca_reason, serving_reason, current) {
        (None, None, Some(m)) => m.clone(),
        (None, Some(_), Some(m)) => {
            let (tls_cert, tls_key) =
                pki::issue_serving(&m.ca_cert, &m.ca_key, &policy.names, now, policy.validity)?;
            Material {
                ca_cert: m.ca_cert.clone(),
                ca_key: m.ca_key.clone(),
                tls_cert,
                tls_key,
            }
        }
        _ => pki::generate(&policy.names, now, policy.validity, policy.ca_validity)?,
    };
    let rotated_at = match (ca_reason, rotated_at) {
        (Some(_), _) | (None, None) => now,
        (None, Some(r)) => r,
    };

    // 4. The caBundle: the current CA, the CA just replaced (always, while it is valid), and every other
    //    CA found in a caBundle while the overlap since the last rotation lasts.
    let ca = CertInfo::parse(&material.ca_cert)?;
    let mut bundle = vec![ca];
    let mut dropped = Vec::new();
    if ca_reason.is_some()
        && let Some((_, Ok(old))) = &current_ca
        && old.remaining(now) > 0
        && !bundle.iter().any(|c| c.der == old.der)
    {
        bundle.push(old.clone());
    }
    let in_overlap = now - rotated_at < policy.ca_overlap;
    for pem in bundles {
        // An unparsable caBundle is replaced whole: nothing in it can be trusted to verify anything.
        for c in pki::parse_bundle(pem).unwrap_or_default() {
            if bundle.iter().chain(&dropped).any(|b| b.der == c.der) {
                continue;
            }
            if in_overlap && c.remaining(now) > 0 {
                bundle.push(c);
            } else {
                dropped.push(c);
            }
        }
    }

    Ok(Plan {
        material,
        ca_renewed: ca_reason,
        serving_renewed: serving_reason,
        rotated_at,
        bundle,
        dropped,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: i64 = 1_800_000_000;
    const DAY: i64 = 86_400;

    fn policy() -> Policy {
        Policy {
            names: pki::service_names("wh", "ns", &[]),
            validity: 365 * DAY,
            ca_validity: 3650 * DAY,
            renew_before: 30 * DAY,
            ca_renew_before: 90 * DAY,
            ca_overlap: DAY,
        }
    }

    fn install(now: i64) -> Plan {
        plan(now, &policy(), None, None, &[String::new()]).unwrap()
    }

    #[test]
    fn nothing_there_generates_everything() {
        let p = install(NOW);
        assert_eq!(p.ca_renewed, Some(Reason::Missing));
        assert_eq!(p.serving_renewed, Some(Reason::NewCa));
        assert_eq!(p.rotated_at, NOW);
        assert_eq!(p.bundle.len(), 1);
        assert_eq!(p.bundle_pem(), p.material.ca_cert);
        assert!(p.dropped.is_empty());
    }

    #[test]
    fn current_material_and_bundle_is_a_no_op() {
        let p0 = install(NOW);
        let b = vec![p0.bundle_pem(), p0.bundle_pem()];
        let p = plan(NOW + DAY, &policy(), Some(&p0.material), Some(NOW), &b).unwrap();
        assert!(!p.material_changed());
        assert_eq!(p.material, p0.material);
        assert_eq!(p.rotated_at, NOW);
        assert!(b.iter().all(|b| bundle_is(b, &p.bundle)));
        assert!(p.dropped.is_empty());
    }

    #[test]
    fn serving_cert_inside_threshold_is_reissued_by_the_same_ca() {
        let p0 = install(NOW);
        let later = NOW + 365 * DAY - 29 * DAY;
        let p = plan(
            later,
            &policy(),
            Some(&p0.material),
            Some(NOW),
            &[p0.bundle_pem()],
        )
        .unwrap();
        assert_eq!(p.ca_renewed, None);
        assert_eq!(p.serving_renewed, Some(Reason::Expiring));
        assert_eq!(p.material.ca_cert, p0.material.ca_cert);
        assert_ne!(p.material.tls_cert, p0.material.tls_cert);
        let tls = CertInfo::parse(&p.material.tls_cert).unwrap();
        assert!(tls.signed_by(&p.bundle[0]));
        assert!(bundle_is(&p0.bundle_pem(), &p.bundle), "bundle unchanged");
    }

    #[test]
    fn just_outside_threshold_keeps_everything() {
        let p0 = install(NOW);
        let later = NOW + 365 * DAY - 31 * DAY;
        let p = plan(
            later,
            &policy(),
            Some(&p0.material),
            Some(NOW),
            &[p0.bundle_pem()],
        )
        .unwrap();
        assert!(!p.material_changed());
    }

    #[test]
    fn ca_inside_threshold_rotates_ca_and_bundle_carries_old_and_new_until_overlap_ends() {
        let p0 = install(NOW);
        let t1 = NOW + 3650 * DAY - 89 * DAY;
        let p1 = plan(
            t1,
            &policy(),
            Some(&p0.material),
            Some(NOW),
            &[p0.bundle_pem()],
        )
        .unwrap();
        assert_eq!(p1.ca_renewed, Some(Reason::Expiring));
        assert_eq!(p1.serving_renewed, Some(Reason::NewCa));
        assert_eq!(p1.rotated_at, t1);
        assert_ne!(p1.material.ca_cert, p0.material.ca_cert);
        let (old, new) = (
            CertInfo::parse(&p0.material.ca_cert).unwrap(),
            &p1.bundle[0],
        );
        assert_eq!(p1.bundle.len(), 2);
        assert_eq!(p1.bundle[1].der, old.der, "old CA kept during the rotation");
        // Both serving certs verify against the bundle: no admission fails whichever pair a pod serves.
        for tls in [&p0.material.tls_cert, &p1.material.tls_cert] {
            let tls = CertInfo::parse(tls).unwrap();
            assert!(p1.bundle.iter().any(|ca| tls.signed_by(ca)));
        }
        assert!(
            CertInfo::parse(&p1.material.tls_cert)
                .unwrap()
                .signed_by(new)
        );

        // Within the overlap: nothing changes.
        let t2 = t1 + DAY - 1;
        let p2 = plan(
            t2,
            &policy(),
            Some(&p1.material),
            Some(t1),
            &[p1.bundle_pem()],
        )
        .unwrap();
        assert!(!p2.material_changed());
        assert!(bundle_is(&p1.bundle_pem(), &p2.bundle));

        // After it: the old CA is dropped, the rest stays.
        let t3 = t1 + DAY;
        let p3 = plan(
            t3,
            &policy(),
            Some(&p1.material),
            Some(t1),
            &[p1.bundle_pem()],
        )
        .unwrap();
        assert!(!p3.material_changed());
        assert_eq!(p3.bundle.len(), 1);
        assert_eq!(p3.bundle[0].der, new.der);
        assert_eq!(p3.dropped.len(), 1);
        assert_eq!(p3.dropped[0].der, old.der);
    }

    #[test]
    fn zero_overlap_still_keeps_the_replaced_ca_in_the_rotating_run() {
        let pol = Policy {
            ca_overlap: 0,
            ..policy()
        };
        let p0 = install(NOW);
        let t1 = NOW + 3650 * DAY - DAY;
        let p1 = plan(t1, &pol, Some(&p0.material), Some(NOW), &[p0.bundle_pem()]).unwrap();
        assert_eq!(p1.bundle.len(), 2);
        let p2 = plan(t1, &pol, Some(&p1.material), Some(t1), &[p1.bundle_pem()]).unwrap();
        assert_eq!(p2.bundle.len(), 1);
    }

    #[test]
    fn expired_cas_are_dropped_even_within_overlap() {
        let pol = Policy {
            ca_overlap: 10_000 * DAY,
            ..policy()
        };
        let short = Policy {
            ca_validity: 100 * DAY,
            validity: 50 * DAY,
            ..policy()
        };
        let foreign = plan(NOW, &short, None, None, &[]).unwrap();
        let p0 = install(NOW);
        let bundle = format!("{}{}", p0.bundle_pem(), foreign.bundle_pem());
        let p = plan(
            NOW + 101 * DAY,
            &pol,
            Some(&p0.material),
            Some(NOW),
            &[bundle],
        )
        .unwrap();
        assert_eq!(p.bundle.len(), 1);
        assert_eq!(p.dropped.len(), 1);
    }

    #[test]
    fn names_change_reissues_serving_cert_only() {
        let p0 = install(NOW);
        let pol = Policy {
            names: pki::service_names("wh", "ns", &["127.0.0.1".into()]),
            ..policy()
        };
        let p = plan(NOW, &pol, Some(&p0.material), Some(NOW), &[p0.bundle_pem()]).unwrap();
        assert_eq!(p.ca_renewed, None);
        assert_eq!(p.serving_renewed, Some(Reason::NamesChanged));
    }

    #[test]
    fn mismatched_or_foreign_material_is_replaced() {
        let a = install(NOW).material;
        let b = install(NOW).material;
        // tls.key of another pair.
        let m = Material {
            tls_key: b.tls_key.clone(),
            ..a.clone()
        };
        let p = plan(NOW, &policy(), Some(&m), Some(NOW), &[]).unwrap();
        assert_eq!(
            (p.ca_renewed, p.serving_renewed),
            (None, Some(Reason::Invalid))
        );
        // tls pair from another CA.
        let m = Material {
            tls_cert: b.tls_cert.clone(),
            tls_key: b.tls_key.clone(),
            ..a.clone()
        };
        let p = plan(NOW, &policy(), Some(&m), Some(NOW), &[]).unwrap();
        assert_eq!(p.serving_renewed, Some(Reason::WrongIssuer));
        // ca.key of another CA.
        let m = Material {
            ca_key: b.ca_key.clone(),
            ..a.clone()
        };
        let p = plan(NOW, &policy(), Some(&m), Some(NOW), &[]).unwrap();
        assert_eq!(p.ca_renewed, Some(Reason::Invalid));
        // garbage.
        let m = Material {
            ca_cert: "nope".into(),
            ..a
        };
        let p = plan(NOW, &policy(), Some(&m), Some(NOW), &[]).unwrap();
        assert_eq!(p.ca_renewed, Some(Reason::Invalid));
    }

    #[test]
    fn an_unparsable_bundle_is_replaced_and_install_fills_empty_ones() {
        let p0 = install(NOW);
        let b = vec!["garbage".to_string(), String::new()];
        let p = plan(NOW, &policy(), Some(&p0.material), Some(NOW), &b).unwrap();
        assert!(!p.material_changed());
        assert_eq!(p.bundle.len(), 1);
        assert!(!bundle_is(&b[0], &p.bundle));
        assert!(!bundle_is(&b[1], &p.bundle));
    }

    #[test]
    fn thresholds_that_would_renew_every_run_are_rejected() {
        let bad = Policy {
            renew_before: 400 * DAY,
            ..policy()
        };
        assert!(matches!(
            plan(NOW, &bad, None, None, &[]),
            Err(Error::Config(_))
        ));
        let bad = Policy {
            ca_renew_before: 3650 * DAY,
            ..policy()
        };
        assert!(matches!(bad.validate(), Err(Error::Config(_))));
        let bad = Policy {
            names: vec![],
            ..policy()
        };
        assert!(bad.validate().is_err());
    }
}
