//! Ferry's references: how a document is named in the ERP so it can be found again.

/// How Ferry names its documents in one ERP: `PREFIX-<kind>-<id>`, or
/// `PREFIX-<hash of that>` when it would not fit the ERP's reference length
/// (the ERP connector declares it). The hash has 24 hex characters where the
/// field allows, fewer (never under [`MIN_HASH_LEN`]) where it is short, such as
/// a 20-character customer number. The rule never changes for a deployed
/// tenant: the reference is how a document is found again.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct References {
    prefix: String,
    max_len: usize,
    hash_len: usize,
}

/// Hex characters of the hash in a shortened reference, where the field allows.
pub(crate) const REFERENCE_HASH_LEN: usize = 24;

/// The fewest hex characters a shortened reference keeps: 48 bits, so two of a
/// tenant's million documents share one by a chance of about one in 500.
pub(crate) const MIN_HASH_LEN: usize = 12;

impl References {
    /// Fails when even the shortest form would not fit.
    pub fn new(prefix: &str, max_len: usize) -> Result<Self, String> {
        let room = max_len.saturating_sub(prefix.len() + 1);
        if room < MIN_HASH_LEN {
            return Err(format!(
                "defaults.reference_prefix {prefix:?} is too long for this ERP: its references \
                 hold {max_len} characters, and Ferry needs the prefix plus {} more",
                1 + MIN_HASH_LEN
            ));
        }
        Ok(Self {
            prefix: prefix.to_string(),
            max_len,
            hash_len: room.min(REFERENCE_HASH_LEN),
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
            format!("{}-{}", self.prefix, &h[..self.hash_len])
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_reference_that_does_not_fit_is_hashed_as_long_as_the_field_allows() {
        let wide = References::new("FERRY", 50).expect("fits");
        assert_eq!(wide.make("C", "19"), "FERRY-C-19");
        let long = wide.make("S-project_billing", &"9".repeat(60));
        assert_eq!(long.len(), "FERRY-".len() + REFERENCE_HASH_LEN, "{long}");
        let narrow = References::new("FERRY", 20).expect("fits");
        let short = narrow.make("S-project_billing", "1086-202611");
        assert_eq!(short.len(), 20, "{short}");
        assert!(short.starts_with("FERRY-"));
        assert_ne!(short, narrow.make("S-project_billing", "1087-202611"));
        assert_eq!(
            narrow.make("C", "140"),
            "FERRY-C-140",
            "what fits is kept as it is"
        );
        // The hash of a wide field is unchanged by this rule (deployed tenants keep their references).
        assert_eq!(
            &long[6..],
            &crate::hash::sha256_hex(
                format!("FERRY-S-project_billing-{}", "9".repeat(60)).as_bytes()
            )[..24]
        );
        assert!(References::new("FERRY", 5 + 1 + MIN_HASH_LEN).is_ok());
        assert!(References::new("FERRY", 5 + MIN_HASH_LEN).is_err());
    }
}
