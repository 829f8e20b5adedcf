//! Ferry's references: how a document is named in the ERP so it can be found again.

/// How Ferry names its documents in one ERP: `PREFIX-<kind>-<id>`, or
/// `PREFIX-<hash of that>` when it would not fit the ERP's reference length
/// (the ERP connector declares it). The rule never changes for a deployed
/// tenant: the reference is how a document is found again.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct References {
    prefix: String,
    max_len: usize,
}

/// Hex characters of the hash in a shortened reference.
pub(crate) const REFERENCE_HASH_LEN: usize = 24;

impl References {
    /// Fails when even the shortened form would not fit.
    pub fn new(prefix: &str, max_len: usize) -> Result<Self, String> {
        let shortest = prefix.len() + 1 + REFERENCE_HASH_LEN;
        if shortest > max_len {
            return Err(format!(
                "defaults.reference_prefix {prefix:?} is too long for this ERP: its references \
                 hold {max_len} characters, and Ferry needs the prefix plus {} more",
                1 + REFERENCE_HASH_LEN
            ));
        }
        Ok(Self {
            prefix: prefix.to_string(),
            max_len,
        })
    }

    pub fn prefix(&self) -> &str {
        &self.prefix
    }

    /// The reference of document `id` of kind `kind` (a one-letter tag).
    pub fn make(&self, kind: &str, id: &str) -> String {
        let r = format!("{}-{}-{}", self.prefix, kind, id);
        if r.len() <= self.max_len {
            r
        } else {
            let h = crate::hash::sha256_hex(r.as_bytes());
            format!("{}-{}", self.prefix, &h[..REFERENCE_HASH_LEN])
        }
    }
}
