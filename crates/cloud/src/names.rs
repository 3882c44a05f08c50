//! AWS names built from Kubernetes names. STS session names, source identities and IAM
//! policy names share the charset `[\w+=,.@-]`; each has its own length limit. Names too
//! long are cut and end in a hash of the whole input, so two distinct long inputs never
//! share a name (a shared revocation policy name would let one partition's revocation
//! overwrite another's).

/// `wanted` mapped into the charset (anything else becomes `-`) and at most `max_chars`
/// long.
pub fn bounded(wanted: &str, max_chars: usize) -> String {
    let sanitized: String = wanted
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || "_+=,.@-".contains(c) {
                c
            } else {
                '-'
            }
        })
        .collect();
    if sanitized.len() <= max_chars {
        return sanitized;
    }
    let suffix = format!("-{:016x}", fnv1a(wanted.as_bytes()));
    // Every char is ASCII after the mapping, so this byte index is a char boundary.
    format!("{}{suffix}", &sanitized[..max_chars - suffix.len()])
}

/// A small stable hash for name shortening (not for security).
fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |hash, byte| {
        (hash ^ u64::from(*byte)).wrapping_mul(0x0100_0000_01b3)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn short_names_are_kept_and_mapped_into_the_charset() {
        assert_eq!(bounded("sp-ml-speech", 64), "sp-ml-speech");
        assert_eq!(bounded("a/b c:ü", 64), "a-b-c--");
    }

    #[test]
    fn long_names_are_cut_to_the_limit_and_stay_distinct() {
        let one = bounded(&format!("{}1", "x".repeat(200)), 128);
        let two = bounded(&format!("{}2", "x".repeat(200)), 128);
        assert_eq!((one.len(), two.len()), (128, 128));
        assert_ne!(one, two);
        assert_eq!(bounded(&"y".repeat(65), 64).len(), 64);
    }
}
