//! Author and namespace keys.
//!
//! Both kinds of key are Ed25519 key pairs. The 32-byte secret seed is the key itself; the 32-byte
//! compressed public key is its id. An id is plain bytes (anything a peer sends fits in it); turning
//! it into a public key that can verify signatures checks that the bytes are a valid curve point.
//!
//! Text form: 64 lowercase hex characters for ids and secrets alike, as iroh-docs 0.101 prints
//! them, so values copy between the two programs.

use std::fmt;
use std::str::FromStr;

use ed25519_dalek::{Signature, Signer, SigningKey, VerifyingKey};

use crate::error::{KeyParseError, VerifyError};

/// Length in bytes of a secret seed, a public key and an id.
pub const KEY_LEN: usize = 32;

/// Length in bytes of an Ed25519 signature.
pub const SIGNATURE_LEN: usize = 64;

/// Fills `buf` from the operating system's random number generator.
fn random_seed() -> [u8; KEY_LEN] {
    let mut seed = [0u8; KEY_LEN];
    // The OS generator failing is not a condition a program can continue from: every key
    // generated afterwards would be guessable.
    #[allow(clippy::expect_used)]
    getrandom::fill(&mut seed).expect("the operating system random number generator failed");
    seed
}

fn parse_hex32(s: &str) -> Result<[u8; KEY_LEN], KeyParseError> {
    let mut out = [0u8; KEY_LEN];
    if s.len() != 2 * KEY_LEN {
        return Err(KeyParseError::Length { len: s.len() });
    }
    hex::decode_to_slice(s, &mut out).map_err(|_| KeyParseError::NotHex)?;
    Ok(out)
}

fn write_hex(f: &mut fmt::Formatter<'_>, bytes: &[u8]) -> fmt::Result {
    for b in bytes {
        write!(f, "{b:02x}")?;
    }
    Ok(())
}

/// Strict Ed25519 verification of `msg` against the public key `key`.
fn verify_strict(key: &VerifyingKey, msg: &[u8], sig: &[u8; SIGNATURE_LEN]) -> Result<(), ()> {
    let sig = Signature::from_bytes(sig);
    key.verify_strict(msg, &sig).map_err(|_| ())
}

macro_rules! key_pair {
    (
        $(#[$secret_doc:meta])* $secret:ident,
        $(#[$public_doc:meta])* $public:ident,
        $(#[$id_doc:meta])* $id:ident,
        $role:ident
    ) => {
        $(#[$secret_doc])*
        #[derive(Clone)]
        pub struct $secret(SigningKey);

        impl $secret {
            /// Generates a new key from the operating system's random number generator.
            pub fn generate() -> Self {
                Self::from_bytes(&random_seed())
            }

            /// The key with this 32-byte secret seed.
            pub fn from_bytes(seed: &[u8; KEY_LEN]) -> Self {
                Self(SigningKey::from_bytes(seed))
            }

            /// The 32-byte secret seed.
            pub fn to_bytes(&self) -> [u8; KEY_LEN] {
                self.0.to_bytes()
            }

            /// The public key.
            pub fn public_key(&self) -> $public {
                $public(self.0.verifying_key())
            }

            /// The id: the public key's bytes.
            pub fn id(&self) -> $id {
                $id(self.0.verifying_key().to_bytes())
            }

            /// Signs `msg` (pure Ed25519, deterministic).
            pub fn sign(&self, msg: &[u8]) -> [u8; SIGNATURE_LEN] {
                self.0.sign(msg).to_bytes()
            }
        }

        impl fmt::Display for $secret {
            /// The secret seed in lowercase hex: handle with care.
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write_hex(f, &self.to_bytes())
            }
        }

        impl fmt::Debug for $secret {
            /// Prints the id, never the secret.
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, concat!(stringify!($secret), "(id {})"), self.id())
            }
        }

        impl FromStr for $secret {
            type Err = KeyParseError;
            fn from_str(s: &str) -> Result<Self, Self::Err> {
                Ok(Self::from_bytes(&parse_hex32(s)?))
            }
        }

        impl PartialEq for $secret {
            fn eq(&self, other: &Self) -> bool {
                self.to_bytes() == other.to_bytes()
            }
        }

        impl Eq for $secret {}

        $(#[$public_doc])*
        #[derive(Clone, Copy, PartialEq, Eq)]
        pub struct $public(VerifyingKey);

        impl $public {
            /// Parses a public key, failing if the bytes are not a valid curve point.
            pub fn from_bytes(bytes: &[u8; KEY_LEN]) -> Result<Self, KeyParseError> {
                VerifyingKey::from_bytes(bytes)
                    .map(Self)
                    .map_err(|_| KeyParseError::NotAPublicKey)
            }

            /// The id of this key.
            pub fn id(&self) -> $id {
                $id(self.0.to_bytes())
            }

            /// Verifies `signature` over `msg` with strict Ed25519 rules (no small-order keys, no
            /// non-canonical encodings).
            pub fn verify(
                &self,
                msg: &[u8],
                signature: &[u8; SIGNATURE_LEN],
            ) -> Result<(), VerifyError> {
                verify_strict(&self.0, msg, signature).map_err(|()| VerifyError::$role)
            }
        }

        impl fmt::Debug for $public {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, concat!(stringify!($public), "({})"), self.id())
            }
        }

        $(#[$id_doc])*
        #[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
        pub struct $id([u8; KEY_LEN]);

        impl $id {
            /// The id with these bytes. The bytes are not checked: see [`Self::public_key`].
            pub const fn from_bytes(bytes: [u8; KEY_LEN]) -> Self {
                Self(bytes)
            }

            /// The raw bytes.
            pub const fn as_bytes(&self) -> &[u8; KEY_LEN] {
                &self.0
            }

            /// The public key with these bytes, failing if they are not a valid curve point.
            pub fn public_key(&self) -> Result<$public, KeyParseError> {
                $public::from_bytes(&self.0)
            }

            /// The first 10 hex characters, for logs.
            pub fn fmt_short(&self) -> String {
                hex::encode(&self.0[..5])
            }
        }

        impl fmt::Display for $id {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write_hex(f, &self.0)
            }
        }

        impl fmt::Debug for $id {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, concat!(stringify!($id), "({})"), self)
            }
        }

        impl FromStr for $id {
            type Err = KeyParseError;
            /// Parses 64 hex characters and checks that they name a valid public key, as
            /// iroh-docs does: an id that cannot verify anything is a typo, not an id.
            fn from_str(s: &str) -> Result<Self, Self::Err> {
                let bytes = parse_hex32(s)?;
                $public::from_bytes(&bytes)?;
                Ok(Self(bytes))
            }
        }

        impl AsRef<[u8]> for $id {
            fn as_ref(&self) -> &[u8] {
                &self.0
            }
        }

        impl From<$public> for $id {
            fn from(key: $public) -> Self {
                key.id()
            }
        }

        impl From<&$secret> for $id {
            fn from(key: &$secret) -> Self {
                key.id()
            }
        }
    };
}

key_pair!(
    /// An author's signing key: whoever holds it can sign entries as this author.
    Author,
    /// An author's public key, able to verify signatures.
    AuthorPublicKey,
    /// An author's id: the 32 bytes of the public key.
    AuthorId,
    Author
);

key_pair!(
    /// A namespace secret: the write capability of one document.
    NamespaceSecret,
    /// A namespace public key, able to verify signatures.
    NamespacePublicKey,
    /// A namespace id: the 32 bytes of the namespace public key, which is the document id and the
    /// read capability.
    NamespaceId,
    Namespace
);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hex_round_trip_and_parse_errors() {
        let author = Author::from_bytes(&[0xa1; 32]);
        let text = author.to_string();
        assert_eq!(text, "a1".repeat(32));
        assert_eq!(text.parse::<Author>().unwrap(), author);
        let id_text = author.id().to_string();
        assert_eq!(id_text.parse::<AuthorId>().unwrap(), author.id());
        assert_eq!(
            "abc".parse::<AuthorId>(),
            Err(KeyParseError::Length { len: 3 })
        );
        assert_eq!(
            "zz".repeat(32).parse::<AuthorId>(),
            Err(KeyParseError::NotHex)
        );
        // Uppercase hex is accepted, as iroh-docs accepts it.
        assert_eq!(
            id_text.to_uppercase().parse::<AuthorId>().unwrap(),
            author.id()
        );
    }

    #[test]
    fn debug_never_prints_the_secret() {
        let secret = NamespaceSecret::from_bytes(&[0xb2; 32]);
        let debug = format!("{secret:?}");
        assert!(!debug.contains(&"b2".repeat(32)), "{debug}");
        assert!(debug.contains(&secret.id().to_string()));
    }

    #[test]
    fn id_of_an_invalid_point_does_not_parse() {
        // y = 2 is not the encoding of a point on the curve.
        let mut bytes = [0u8; 32];
        bytes[0] = 2;
        let id = AuthorId::from_bytes(bytes);
        assert_eq!(id.public_key(), Err(KeyParseError::NotAPublicKey));
        assert_eq!(
            id.to_string().parse::<AuthorId>(),
            Err(KeyParseError::NotAPublicKey)
        );
    }

    #[test]
    fn sign_and_verify() {
        let author = Author::generate();
        let sig = author.sign(b"msg");
        author.public_key().verify(b"msg", &sig).unwrap();
        assert_eq!(
            author.public_key().verify(b"msh", &sig),
            Err(VerifyError::Author)
        );
        assert_ne!(Author::generate(), author);
    }
}
