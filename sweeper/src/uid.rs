//! A pod's `metadata.uid`, held in 16 bytes.
//!
//! The apiserver writes a random UUID in its canonical lowercase form (36 characters); held as a
//! `String` that is 24 bytes inline plus a 48-byte allocation per pod (7 MB at 150,000 pods). A uid
//! in any other form (one a test or another apiserver wrote) is kept as written. Either way it prints
//! back exactly as the apiserver sent it: the delete's precondition and the report carry it.

use std::fmt;

use serde::{Serialize, Serializer};

#[derive(Clone, PartialEq, Eq, Hash)]
pub enum Uid {
    /// A canonical lowercase UUID (`8-4-4-4-12` hex digits), as its 16 bytes.
    Uuid([u8; 16]),
    /// Anything else, as written.
    Other(Box<str>),
}

impl Uid {
    pub fn new(s: &str) -> Uid {
        parse_uuid(s).map_or_else(|| Uid::Other(s.into()), Uid::Uuid)
    }
}

/// The 16 bytes of a canonical lowercase UUID; `None` for any other text (upper case included, so
/// that printing it back gives the same text).
fn parse_uuid(s: &str) -> Option<[u8; 16]> {
    let b = s.as_bytes();
    if b.len() != 36 || [8, 13, 18, 23].iter().any(|&i| b[i] != b'-') {
        return None;
    }
    let nibble = |c: u8| match c {
        b'0'..=b'9' => Some(c - b'0'),
        b'a'..=b'f' => Some(c - b'a' + 10),
        _ => None,
    };
    let mut out = [0u8; 16];
    let mut digits = b.iter().filter(|&&c| c != b'-');
    for byte in &mut out {
        let (hi, lo) = (digits.next()?, digits.next()?);
        *byte = nibble(*hi)? << 4 | nibble(*lo)?;
    }
    Some(out)
}

impl fmt::Display for Uid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Uid::Other(s) => f.write_str(s),
            Uid::Uuid(b) => {
                // One write of 36 bytes (the report prints 150,000 of them).
                const HEX: &[u8; 16] = b"0123456789abcdef";
                let mut out = [b'-'; 36];
                let mut at = 0;
                for (i, byte) in b.iter().enumerate() {
                    if matches!(i, 4 | 6 | 8 | 10) {
                        at += 1;
                    }
                    out[at] = HEX[usize::from(byte >> 4)];
                    out[at + 1] = HEX[usize::from(byte & 0xf)];
                    at += 2;
                }
                f.write_str(std::str::from_utf8(&out).expect("hex digits and dashes"))
            }
        }
    }
}

impl fmt::Debug for Uid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:?}", self.to_string())
    }
}

impl From<&str> for Uid {
    fn from(s: &str) -> Uid {
        Uid::new(s)
    }
}

impl From<String> for Uid {
    fn from(s: String) -> Uid {
        Uid::new(&s)
    }
}

impl PartialEq<str> for Uid {
    fn eq(&self, other: &str) -> bool {
        match (self, parse_uuid(other)) {
            (Uid::Uuid(a), Some(b)) => *a == b,
            (Uid::Other(a), None) => **a == *other,
            _ => false,
        }
    }
}

impl Serialize for Uid {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_apiservers_uid_is_16_bytes_and_prints_back_exactly() {
        let text = "0f8fad5b-d9cb-469f-a165-70867728950e";
        let uid = Uid::new(text);
        assert!(matches!(uid, Uid::Uuid(_)), "{uid:?}");
        assert_eq!(uid.to_string(), text);
        assert_eq!(serde_json::to_value(&uid).unwrap(), text);
        assert!(uid == *text);
        assert!(std::mem::size_of::<Uid>() <= 24);
    }

    #[test]
    fn any_other_uid_is_kept_as_written() {
        for text in [
            "uid-1",
            "",
            // Upper case, braces, no dashes, a dash moved, a non-hex digit: kept as text, so
            // printing gives back the very same string.
            "0F8FAD5B-D9CB-469F-A165-70867728950E",
            "{0f8fad5b-d9cb-469f-a165-70867728950e}",
            "0f8fad5bd9cb469fa16570867728950e",
            "0f8fad5-bd9cb-469f-a165-70867728950e",
            "0f8fad5b-d9cb-469f-a165-70867728950g",
            "0f8fad5b-d9cb-469f-a165-70867728950é",
        ] {
            let uid = Uid::new(text);
            assert!(matches!(uid, Uid::Other(_)), "{text}: {uid:?}");
            assert_eq!(uid.to_string(), text);
            assert!(uid == *text);
        }
        assert!(Uid::new("uid-1") != *"uid-2");
        assert!(
            Uid::new("0f8fad5b-d9cb-469f-a165-70867728950e")
                != *"0f8fad5b-d9cb-469f-a165-70867728950f"
        );
    }
}
