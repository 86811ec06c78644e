//! How a fact looks on a shared wire, and the cluster secret that signs it.
//!
//! Whoever can publish to the cluster channel could otherwise add users to any room or
//! erase a live node's users with a forged `leaving` fact. With `--cluster-secret`, each
//! payload is the fact's JSON behind a signature:
//!
//! ```text
//! v1,<base64 of HMAC-SHA256(secret, JSON)>.<JSON>
//! ```
//!
//! The MAC covers the exact JSON bytes that follow it, so nothing is canonicalised, and
//! the prefix cannot be mistaken for JSON (which starts with `{`). A node with a secret
//! drops (and counts) every payload that is unsigned, badly signed or undecodable. A node
//! without one accepts a fact signed or not, checking nothing, as before signing existed.
//!
//! A signature proves a cluster member wrote the fact, not when: a recorded fact can be
//! replayed. The trackers heal a replayed `leaving` (see presence-core's `remote.rs`); the
//! secret keeps out everyone who never held it.

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use hmac::{Hmac, Mac};
use presence_core::Fact;
use sha2::Sha256;

use super::BackendError;

/// Names the signing scheme, so a later one can be told apart.
const SCHEME: &[u8] = b"v1,";

/// Why an arriving payload was dropped instead of applied.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, thiserror::Error)]
pub enum RejectedFact {
    /// A node with a secret received a payload without a signature.
    #[error("unsigned fact")]
    Unsigned,
    /// The signature is malformed or does not match the payload.
    #[error("fact with a bad signature")]
    BadSignature,
    /// The payload (signed correctly, or on a node without a secret) is not a fact this
    /// node can read: garbage, or a kind a newer node sends.
    #[error("undecodable fact")]
    Undecodable,
}

impl RejectedFact {
    /// Every reason, for metrics that start at zero.
    pub const ALL: [RejectedFact; 3] = [
        RejectedFact::Unsigned,
        RejectedFact::BadSignature,
        RejectedFact::Undecodable,
    ];

    /// The `reason` label in `/metrics`.
    pub fn label(self) -> &'static str {
        match self {
            RejectedFact::Unsigned => "unsigned",
            RejectedFact::BadSignature => "bad_signature",
            RejectedFact::Undecodable => "undecodable",
        }
    }
}

/// Encodes facts for the wire and decodes them, signing and checking with the cluster
/// secret when there is one.
#[derive(Clone)]
pub struct FactCodec {
    /// The HMAC keyed with the secret, cloned for each fact (keying it is the costly part).
    key: Option<Hmac<Sha256>>,
}

impl FactCodec {
    /// Signs and checks with `secret`; `None` signs nothing and checks nothing.
    pub fn new(secret: Option<&str>) -> Self {
        // HMAC takes a key of any length, so keying cannot fail; an empty secret is
        // refused earlier, by the configuration.
        let key = secret.and_then(|secret| Hmac::<Sha256>::new_from_slice(secret.as_bytes()).ok());
        FactCodec { key }
    }

    /// Whether facts are signed and checked.
    pub fn is_signing(&self) -> bool {
        self.key.is_some()
    }

    /// The payload to publish for `fact`.
    pub fn encode(&self, fact: &Fact) -> Result<Vec<u8>, BackendError> {
        let json = serde_json::to_vec(fact)?;
        let Some(key) = &self.key else {
            return Ok(json);
        };
        let mut mac = key.clone();
        mac.update(&json);
        let tag = STANDARD.encode(mac.finalize().into_bytes());
        let mut payload = Vec::with_capacity(SCHEME.len() + tag.len() + 1 + json.len());
        payload.extend_from_slice(SCHEME);
        payload.extend_from_slice(tag.as_bytes());
        payload.push(b'.');
        payload.extend_from_slice(&json);
        Ok(payload)
    }

    /// The fact in an arriving payload, or why it is dropped.
    pub fn decode(&self, payload: &[u8]) -> Result<Fact, RejectedFact> {
        let json = match (payload.strip_prefix(SCHEME), &self.key) {
            (None, Some(_)) => return Err(RejectedFact::Unsigned),
            (None, None) => payload,
            (Some(signed), key) => {
                let dot = signed
                    .iter()
                    .position(|&byte| byte == b'.')
                    .ok_or(RejectedFact::BadSignature)?;
                let (tag, json) = (&signed[..dot], &signed[dot + 1..]);
                if let Some(key) = key {
                    let tag = STANDARD
                        .decode(tag)
                        .map_err(|_| RejectedFact::BadSignature)?;
                    let mut mac = key.clone();
                    mac.update(json);
                    // `verify_slice` compares in constant time and refuses a short tag.
                    mac.verify_slice(&tag)
                        .map_err(|_| RejectedFact::BadSignature)?;
                }
                json
            }
        };
        serde_json::from_slice(json).map_err(|_| RejectedFact::Undecodable)
    }
}

impl std::fmt::Debug for FactCodec {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never the key.
        f.debug_struct("FactCodec")
            .field("signing", &self.is_signing())
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use presence_core::NodeId;

    use super::*;

    fn leaving() -> Fact {
        Fact::Leaving { node: NodeId(7) }
    }

    #[test]
    fn a_signed_fact_round_trips_and_carries_its_scheme() {
        let codec = FactCodec::new(Some("a shared secret"));
        let payload = codec.encode(&leaving()).expect("encode");
        assert!(payload.starts_with(b"v1,"));
        assert!(payload.ends_with(br#"{"kind":"leaving","node":7}"#));
        assert_eq!(codec.decode(&payload), Ok(leaving()));
    }

    #[test]
    fn a_node_with_a_secret_drops_unsigned_forged_and_garbled_facts() {
        let codec = FactCodec::new(Some("a shared secret"));
        let unsigned = serde_json::to_vec(&leaving()).expect("json");
        assert_eq!(codec.decode(&unsigned), Err(RejectedFact::Unsigned));

        let forged = FactCodec::new(Some("another secret"))
            .encode(&leaving())
            .expect("encode");
        assert_eq!(codec.decode(&forged), Err(RejectedFact::BadSignature));

        let mut tampered = codec.encode(&leaving()).expect("encode");
        let last = tampered.len() - 2;
        tampered[last] = b'8'; // node 7 becomes node 8
        assert_eq!(codec.decode(&tampered), Err(RejectedFact::BadSignature));

        for bad in [&b"v1,"[..], b"v1,no-dot", b"v1,!!!.{}", b"v1,AAAA.{}"] {
            assert_eq!(
                codec.decode(bad),
                Err(RejectedFact::BadSignature),
                "{bad:?}"
            );
        }

        let signed_garbage = {
            let mut mac = Hmac::<Sha256>::new_from_slice(b"a shared secret").expect("key");
            mac.update(b"not json");
            let tag = STANDARD.encode(mac.finalize().into_bytes());
            format!("v1,{tag}.not json").into_bytes()
        };
        assert_eq!(
            codec.decode(&signed_garbage),
            Err(RejectedFact::Undecodable)
        );
    }

    #[test]
    fn without_a_secret_facts_go_unsigned_and_any_readable_one_is_taken() {
        let open = FactCodec::new(None);
        let payload = open.encode(&leaving()).expect("encode");
        assert_eq!(payload, serde_json::to_vec(&leaving()).expect("json"));
        assert_eq!(open.decode(&payload), Ok(leaving()));
        let signed = FactCodec::new(Some("s"))
            .encode(&leaving())
            .expect("encode");
        assert_eq!(
            open.decode(&signed),
            Ok(leaving()),
            "nothing to check it with"
        );
        assert_eq!(open.decode(b"{"), Err(RejectedFact::Undecodable));
    }

    #[test]
    fn the_secret_never_shows_in_debug_output() {
        let codec = FactCodec::new(Some("hunter2-hunter2"));
        assert!(!format!("{codec:?}").contains("hunter2"));
    }
}
