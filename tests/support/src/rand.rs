//! Unique names without a random-number crate: std's randomly keyed SipHash over time, pid and a counter.

use std::collections::hash_map::RandomState;
use std::hash::{BuildHasher, Hasher};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

static COUNTER: AtomicU64 = AtomicU64::new(0);

fn random_u64() -> u64 {
    let mut h = RandomState::new().build_hasher();
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or_default();
    h.write_u128(nanos);
    h.write_u32(std::process::id());
    h.write_u64(COUNTER.fetch_add(1, Ordering::Relaxed));
    h.finish()
}

/// `len` characters of `[a-z0-9]`, usable in namespace, pod and database names.
pub fn random_suffix(len: usize) -> String {
    const ALPHABET: &[u8] = b"abcdefghijklmnopqrstuvwxyz0123456789";
    let mut out = String::with_capacity(len);
    let mut bits = random_u64();
    let mut left = 12; // 12 draws of 5 bits each from one u64
    for _ in 0..len {
        if left == 0 {
            bits = random_u64();
            left = 12;
        }
        out.push(ALPHABET[(bits & 31) as usize % ALPHABET.len()] as char);
        bits >>= 5;
        left -= 1;
    }
    out
}

/// A stable UUID-shaped value (8-4-4-4-12 lowercase hex) derived from `parts`: the same parts give the
/// same id, so helpers can find rows they made without reading them back.
pub(crate) fn stable_uuid(parts: &[&str]) -> String {
    let half = |salt: u64| {
        // SipHash with fixed keys: the same id in every run (std deprecates the type only in favour of
        // DefaultHasher, whose algorithm may change; a per-test database never outlives a toolchain).
        #[allow(deprecated)]
        let mut h = std::hash::SipHasher::new_with_keys(salt, 0x6b70_6f2d_7377_6565);
        for p in parts {
            h.write(p.as_bytes());
            h.write_u8(0xff);
        }
        h.finish()
    };
    let (a, b) = (half(1), half(2));
    let mut hex = format!("{a:016x}{b:016x}");
    // Version 4 / variant bits, so strict UUID parsers accept it.
    hex.replace_range(12..13, "4");
    let v = u8::from_str_radix(&hex[16..17], 16).unwrap_or(0);
    hex.replace_range(16..17, &format!("{:x}", (v & 0x3) | 0x8));
    format!(
        "{}-{}-{}-{}-{}",
        &hex[0..8],
        &hex[8..12],
        &hex[12..16],
        &hex[16..20],
        &hex[20..32]
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn suffixes_are_dns_safe_and_differ() {
        let a = random_suffix(10);
        let b = random_suffix(10);
        assert_eq!(a.len(), 10);
        assert!(
            a.bytes()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit())
        );
        assert_ne!(a, b);
        assert_eq!(random_suffix(30).len(), 30);
    }

    #[test]
    fn stable_uuid_is_stable_and_shaped() {
        let a = stable_uuid(&["dag_version", "d"]);
        assert_eq!(a, stable_uuid(&["dag_version", "d"]));
        assert_ne!(a, stable_uuid(&["dag_version", "e"]));
        assert_eq!(a.len(), 36);
        assert_eq!(&a[14..15], "4");
        assert!("89ab".contains(&a[19..20]));
    }
}
