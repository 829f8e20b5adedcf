//! Stable content hashes (SHA-256, hex) for payload hashes, source hashes and keys.

use serde::Serialize;
use sha2::{Digest, Sha256};

/// SHA-256 of bytes as lower-case hex.
pub fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

/// SHA-256 of a value's JSON form. `serde_json` writes struct fields in
/// declaration order and maps in key order (`BTreeMap`), so equal values hash equally.
pub fn hash_json<T: Serialize>(value: &T) -> String {
    let bytes = serde_json::to_vec(value).expect("serialisable value");
    sha256_hex(&bytes)
}

/// SHA-256 of `parts` joined with a separator that cannot occur in them.
pub fn hash_parts(parts: &[&str]) -> String {
    let mut h = Sha256::new();
    for p in parts {
        h.update(p.as_bytes());
        h.update([0x1f]);
    }
    hex::encode(h.finalize())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn part_boundaries_matter() {
        assert_ne!(hash_parts(&["ab", "c"]), hash_parts(&["a", "bc"]));
        assert_eq!(hash_parts(&["a", "b"]), hash_parts(&["a", "b"]));
    }
}
