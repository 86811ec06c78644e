//! Who is joining: JWT verification and the `rooms` claim.
//!
//! Exactly one algorithm is accepted, the one the configured key is for. That single
//! rule refuses `alg: none` and algorithm confusion (an HS256 token "signed" with an RSA
//! public key as its secret) without special cases.

use std::path::Path;

use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use presence_protocol::{RoomName, UserId};
use serde::Deserialize;

/// Checks tokens against one key.
#[derive(Clone)]
pub struct Verifier {
    key: DecodingKey,
    validation: Validation,
}

impl std::fmt::Debug for Verifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Verifier")
            .field("algorithms", &self.validation.algorithms)
            .finish()
    }
}

/// What a valid token says about its bearer.
#[derive(Debug, Clone, PartialEq)]
pub struct Identity {
    /// The `sub` claim.
    pub user_id: UserId,
    /// The `name` claim.
    pub name: Option<String>,
    /// The `rooms` claim; `None` allows every room.
    pub rooms: Option<Vec<String>>,
}

#[derive(Deserialize)]
struct Claims {
    sub: String,
    name: Option<String>,
    rooms: Option<Vec<String>>,
}

/// Why a key could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    /// The key file could not be read.
    #[error("cannot read {path}: {source}")]
    Read {
        /// The file.
        path: String,
        /// Why.
        source: std::io::Error,
    },
    /// The file is not an RSA, EC P-256 or Ed25519 public key in PEM.
    #[error("{0} is not an RSA, EC (P-256) or Ed25519 public key in PEM form")]
    Unsupported(String),
}

/// Why a token was refused.
#[derive(Debug, thiserror::Error)]
pub enum TokenError {
    /// The join carried no token and the URL had none.
    #[error("a token is required to join")]
    Missing,
    /// Bad signature, wrong algorithm, expired, malformed, or a bad `sub`.
    #[error("invalid token: {0}")]
    Invalid(String),
}

impl Verifier {
    /// HS256 with a shared secret.
    pub fn from_secret(secret: &str) -> Self {
        Self::with(
            DecodingKey::from_secret(secret.as_bytes()),
            Algorithm::HS256,
        )
    }

    /// RS256, ES256 or EdDSA, whichever the PEM public key is for.
    pub fn from_public_key_file(path: &Path) -> Result<Self, KeyError> {
        let shown = path.display().to_string();
        let pem = std::fs::read(path).map_err(|source| KeyError::Read {
            path: shown.clone(),
            source,
        })?;
        Self::from_public_key_pem(&pem).ok_or(KeyError::Unsupported(shown))
    }

    /// Like [`Verifier::from_public_key_file`], from the PEM text.
    pub fn from_public_key_pem(pem: &[u8]) -> Option<Self> {
        if let Ok(key) = DecodingKey::from_rsa_pem(pem) {
            return Some(Self::with(key, Algorithm::RS256));
        }
        if let Ok(key) = DecodingKey::from_ec_pem(pem) {
            return Some(Self::with(key, Algorithm::ES256));
        }
        if let Ok(key) = DecodingKey::from_ed_pem(pem) {
            return Some(Self::with(key, Algorithm::EdDSA));
        }
        None
    }

    fn with(key: DecodingKey, algorithm: Algorithm) -> Self {
        let mut validation = Validation::new(algorithm);
        // `exp` is checked whenever present; the contract does not require it.
        validation.set_required_spec_claims(&["sub"]);
        validation.validate_exp = true;
        // A token not valid yet is refused like an expired one, with the same leeway.
        validation.validate_nbf = true;
        validation.leeway = 30;
        validation.validate_aud = false;
        Verifier { key, validation }
    }

    /// The algorithm this verifier accepts.
    pub fn algorithm(&self) -> Algorithm {
        self.validation
            .algorithms
            .first()
            .copied()
            .unwrap_or(Algorithm::HS256)
    }

    /// Checks a token and reads its claims.
    pub fn verify(&self, token: &str) -> Result<Identity, TokenError> {
        let data = jsonwebtoken::decode::<Claims>(token, &self.key, &self.validation)
            .map_err(|error| TokenError::Invalid(error.to_string()))?;
        let user_id = UserId::new(&data.claims.sub)
            .map_err(|_| TokenError::Invalid("sub must be 1 to 128 characters".to_owned()))?;
        Ok(Identity {
            user_id,
            name: data.claims.name,
            rooms: data.claims.rooms,
        })
    }
}

impl Identity {
    /// Whether the `rooms` claim lets the bearer into `room` (`*` suffix = prefix match).
    pub fn allows(&self, room: &RoomName) -> bool {
        let Some(rooms) = &self.rooms else {
            return true;
        };
        rooms.iter().any(|pattern| match pattern.strip_suffix('*') {
            Some(prefix) => room.as_str().starts_with(prefix),
            None => pattern == room.as_str(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use jsonwebtoken::{encode, EncodingKey, Header};
    use serde_json::json;

    fn hs256(secret: &str, claims: serde_json::Value) -> String {
        encode(
            &Header::new(Algorithm::HS256),
            &claims,
            &EncodingKey::from_secret(secret.as_bytes()),
        )
        .expect("encode")
    }

    #[test]
    fn a_valid_token_names_the_user_and_limits_rooms() {
        let verifier = Verifier::from_secret("s3cret");
        let token = hs256(
            "s3cret",
            json!({"sub": "alice", "name": "Alice", "rooms": ["doc-1", "team:*"]}),
        );
        let identity = verifier.verify(&token).expect("valid");
        assert_eq!(identity.user_id.as_str(), "alice");
        assert_eq!(identity.name.as_deref(), Some("Alice"));
        let room = |n: &str| RoomName::new(n).expect("room");
        assert!(identity.allows(&room("doc-1")));
        assert!(identity.allows(&room("team:design")));
        assert!(!identity.allows(&room("doc-2")));
    }

    #[test]
    fn wrong_secret_expired_and_unsigned_tokens_are_refused() {
        let verifier = Verifier::from_secret("s3cret");
        assert!(verifier
            .verify(&hs256("other", json!({"sub": "a"})))
            .is_err());
        assert!(verifier
            .verify(&hs256("s3cret", json!({"sub": "a", "exp": 1_000})))
            .is_err());
        assert!(verifier
            .verify(&hs256("s3cret", json!({"name": "no sub"})))
            .is_err());
        // alg: none, hand-made: header {"alg":"none","typ":"JWT"}, payload {"sub":"a"}.
        let none = "eyJhbGciOiJub25lIiwidHlwIjoiSldUIn0.eyJzdWIiOiJhIn0.";
        assert!(verifier.verify(none).is_err());
        assert!(verifier.verify("garbage").is_err());
    }
}
