//! Capabilities: what a peer may do with a document.

use crate::error::{CapabilityError, KeyParseError, ReadOnlyError};
use crate::keys::{KEY_LEN, NamespaceId, NamespaceSecret};

/// The kind of a capability, with the numbering the reference stores on disk.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[repr(u8)]
pub enum CapabilityKind {
    /// Holding the namespace secret: may read and write.
    Write = 1,
    /// Holding the namespace id only: may read (sync) but not write.
    Read = 2,
}

impl CapabilityKind {
    /// The kind with this storage number.
    pub fn from_u8(kind: u8) -> Option<Self> {
        match kind {
            1 => Some(Self::Write),
            2 => Some(Self::Read),
            _ => None,
        }
    }
}

/// The right to read, or to read and write, one document.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Capability {
    /// Write (and read) access: the namespace secret.
    Write(NamespaceSecret),
    /// Read access: the namespace id.
    Read(NamespaceId),
}

impl Capability {
    /// The id of the document this capability is for.
    pub fn id(&self) -> NamespaceId {
        match self {
            Self::Write(secret) => secret.id(),
            Self::Read(id) => *id,
        }
    }

    /// The kind of this capability.
    pub fn kind(&self) -> CapabilityKind {
        match self {
            Self::Write(_) => CapabilityKind::Write,
            Self::Read(_) => CapabilityKind::Read,
        }
    }

    /// The namespace secret, if this is a write capability.
    pub fn secret(&self) -> Result<&NamespaceSecret, ReadOnlyError> {
        match self {
            Self::Write(secret) => Ok(secret),
            Self::Read(_) => Err(ReadOnlyError),
        }
    }

    /// The storage form: the kind number and the secret (write) or the id (read).
    pub fn to_raw(&self) -> (u8, [u8; KEY_LEN]) {
        match self {
            Self::Write(secret) => (CapabilityKind::Write as u8, secret.to_bytes()),
            Self::Read(id) => (CapabilityKind::Read as u8, *id.as_bytes()),
        }
    }

    /// Parses the storage form. `None` for an unknown kind number.
    pub fn from_raw(kind: u8, bytes: &[u8; KEY_LEN]) -> Option<Self> {
        match CapabilityKind::from_u8(kind)? {
            CapabilityKind::Write => Some(Self::Write(NamespaceSecret::from_bytes(bytes))),
            CapabilityKind::Read => Some(Self::Read(NamespaceId::from_bytes(*bytes))),
        }
    }

    /// Merges `other` into `self`: a read capability is upgraded to write; a write capability is
    /// never downgraded. Returns whether `self` changed.
    pub fn merge(&mut self, other: Capability) -> Result<bool, CapabilityError> {
        if other.id() != self.id() {
            return Err(CapabilityError::NamespaceMismatch);
        }
        match (&*self, other) {
            (Self::Read(_), Self::Write(secret)) => {
                *self = Self::Write(secret);
                Ok(true)
            }
            _ => Ok(false),
        }
    }

    /// Parses the text form used by the command line: a namespace secret (64 hex characters)
    /// is a write capability; prefix `read:` followed by an id is a read capability.
    pub fn parse_text(s: &str) -> Result<Self, KeyParseError> {
        match s.strip_prefix("read:") {
            Some(id) => Ok(Self::Read(id.parse()?)),
            None => Ok(Self::Write(s.parse()?)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn merge_upgrades_read_to_write_only() {
        let secret = NamespaceSecret::from_bytes(&[3; 32]);
        let mut cap = Capability::Read(secret.id());
        assert_eq!(cap.merge(Capability::Read(secret.id())), Ok(false));
        assert_eq!(cap.kind(), CapabilityKind::Read);
        assert_eq!(cap.merge(Capability::Write(secret.clone())), Ok(true));
        assert_eq!(cap, Capability::Write(secret.clone()));
        assert_eq!(cap.merge(Capability::Read(secret.id())), Ok(false));
        assert_eq!(cap, Capability::Write(secret.clone()));
        let other = NamespaceSecret::from_bytes(&[4; 32]);
        assert_eq!(
            cap.merge(Capability::Write(other)),
            Err(CapabilityError::NamespaceMismatch)
        );
        assert_eq!(cap, Capability::Write(secret));
    }

    #[test]
    fn raw_round_trip() {
        let secret = NamespaceSecret::from_bytes(&[5; 32]);
        for cap in [
            Capability::Write(secret.clone()),
            Capability::Read(secret.id()),
        ] {
            let (kind, bytes) = cap.to_raw();
            assert_eq!(Capability::from_raw(kind, &bytes), Some(cap));
        }
        assert_eq!(Capability::from_raw(0, &[0; 32]), None);
        assert_eq!(Capability::from_raw(3, &[0; 32]), None);
        assert_eq!(CapabilityKind::Write as u8, 1);
        assert_eq!(CapabilityKind::Read as u8, 2);
    }

    #[test]
    fn text_form() {
        let secret = NamespaceSecret::from_bytes(&[5; 32]);
        let write = Capability::parse_text(&secret.to_string()).unwrap();
        assert_eq!(write, Capability::Write(secret.clone()));
        let read = Capability::parse_text(&format!("read:{}", secret.id())).unwrap();
        assert_eq!(read, Capability::Read(secret.id()));
        assert!(Capability::parse_text("read:xyz").is_err());
    }
}
