//! Document tickets in the text form of iroh-docs 0.101, so tickets copy between the two.
//!
//! ```text
//! ticket  "doc" + lowercase base32 (no padding) of:
//!         0x00 (format variant 0) | Capability | varint(n) | n x EndpointAddr (postcard, iroh 1.x)
//! ```

use std::fmt;
use std::str::FromStr;

use iroh::EndpointAddr;
use sync_core::Capability;
use sync_core::encoding::{Decode, DecodeLimits, Encode, Reader};

/// A capability for one document plus the addresses of peers that serve it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DocTicket {
    /// Read or write access to the document.
    pub capability: Capability,
    /// Peers to sync with. Never empty in a parsed ticket.
    pub nodes: Vec<EndpointAddr>,
}

/// A ticket could not be parsed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum TicketError {
    /// The text does not start with `doc`.
    #[error("not a document ticket: it must start with \"doc\"")]
    Kind,
    /// The rest is not base32.
    #[error("not a document ticket: invalid base32")]
    Base32,
    /// The bytes are malformed.
    #[error("malformed ticket: {0}")]
    Malformed(String),
    /// The ticket names no peer.
    #[error("the ticket names no peer to sync with")]
    NoNodes,
}

const KIND: &str = "doc";

impl DocTicket {
    /// A ticket.
    pub fn new(capability: Capability, nodes: Vec<EndpointAddr>) -> Self {
        Self { capability, nodes }
    }

    /// The bytes behind the text form.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = vec![0u8];
        self.capability.encode(&mut out);
        // Endpoint addresses are iroh's type; their postcard form comes from iroh's serde.
        match postcard::to_stdvec(&self.nodes) {
            Ok(nodes) => out.extend_from_slice(&nodes),
            // Serialising plain data into a vector cannot fail; keep an empty list if it did.
            Err(_) => out.push(0),
        }
        out
    }

    /// Parses the bytes behind the text form.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, TicketError> {
        let mut reader = Reader::new(bytes, DecodeLimits::default());
        match reader.varint() {
            Ok(0) => {}
            Ok(v) => {
                return Err(TicketError::Malformed(format!(
                    "unknown format variant {v}"
                )));
            }
            Err(e) => return Err(TicketError::Malformed(e.to_string())),
        }
        let capability =
            Capability::decode(&mut reader).map_err(|e| TicketError::Malformed(e.to_string()))?;
        let rest = &bytes[bytes.len() - reader.remaining()..];
        let (nodes, trailing): (Vec<EndpointAddr>, &[u8]) =
            postcard::take_from_bytes(rest).map_err(|e| TicketError::Malformed(e.to_string()))?;
        if !trailing.is_empty() {
            return Err(TicketError::Malformed(format!(
                "{} trailing bytes",
                trailing.len()
            )));
        }
        if nodes.is_empty() {
            return Err(TicketError::NoNodes);
        }
        Ok(Self { capability, nodes })
    }
}

impl fmt::Display for DocTicket {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut out = KIND.to_string();
        data_encoding::BASE32_NOPAD.encode_append(&self.to_bytes(), &mut out);
        f.write_str(&out.to_ascii_lowercase())
    }
}

impl FromStr for DocTicket {
    type Err = TicketError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let rest = s.trim().strip_prefix(KIND).ok_or(TicketError::Kind)?;
        let bytes = data_encoding::BASE32_NOPAD
            .decode(rest.to_ascii_uppercase().as_bytes())
            .map_err(|_| TicketError::Base32)?;
        Self::from_bytes(&bytes)
    }
}
