//! Building iroh endpoints: the offline recipe (loopback only) that every test and the demo use,
//! and a public-network endpoint that only an explicit option turns on.

use std::net::{Ipv4Addr, SocketAddr};

use iroh::endpoint::{BindError, InvalidSocketAddr, PortmapperConfig, presets};
use iroh::{Endpoint, EndpointAddr, NetReportConfig, RelayMode, SecretKey};

use crate::wire::{ALPN, COMPACT_ALPN};

/// How [`build_endpoint`] builds an endpoint.
///
/// The default is the offline recipe: one UDP socket on `127.0.0.1:0`, no relay, no address
/// lookup (discovery), no port mapping, no net report. Such an endpoint never sends a packet
/// past the machine; peers are dialed by direct address ([`dial_addr`]).
#[derive(Debug, Clone, Default)]
#[non_exhaustive]
pub struct EndpointOptions {
    /// The identity; a fresh one if `None`.
    pub secret_key: Option<SecretKey>,
    /// **Opt-in to the public network.** `true` builds the endpoint with iroh's `N0` preset:
    /// the n0 relay servers, pkarr/DNS publishing and lookup, sockets on every interface. Such
    /// an endpoint talks to servers on the internet as soon as it is bound. Never set in tests.
    pub public_network: bool,
    /// The socket of an offline endpoint; `127.0.0.1:0` if `None`. Ignored with
    /// `public_network`.
    pub bind_addr: Option<SocketAddr>,
}

impl EndpointOptions {
    /// The offline recipe (the default).
    pub fn offline() -> Self {
        Self::default()
    }

    /// The public network: relays and discovery of iroh's `N0` preset (see
    /// [`EndpointOptions::public_network`]).
    pub fn public_network() -> Self {
        Self {
            public_network: true,
            ..Self::default()
        }
    }

    /// With this identity.
    pub fn with_secret_key(mut self, secret_key: SecretKey) -> Self {
        self.secret_key = Some(secret_key);
        self
    }

    /// An offline endpoint on this socket address (which should be a loopback address).
    pub fn with_bind_addr(mut self, addr: SocketAddr) -> Self {
        self.bind_addr = Some(addr);
        self
    }
}

/// An endpoint could not be built.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum EndpointError {
    /// The bind address was refused.
    #[error("invalid bind address")]
    Address(#[source] InvalidSocketAddr),
    /// Binding failed.
    #[error("binding the endpoint failed")]
    Bind(#[source] BindError),
}

/// The offline endpoint: loopback only, no relay, no discovery, no port mapping; the sync ALPN
/// set (a [`Router`](iroh::protocol::Router) replaces the ALPN list with its own).
pub async fn offline_endpoint(secret_key: Option<SecretKey>) -> Result<Endpoint, EndpointError> {
    build_endpoint(EndpointOptions {
        secret_key,
        ..EndpointOptions::offline()
    })
    .await
}

/// Builds an endpoint as `options` say; see [`EndpointOptions`].
pub async fn build_endpoint(options: EndpointOptions) -> Result<Endpoint, EndpointError> {
    let builder = if options.public_network {
        Endpoint::builder(presets::N0)
    } else {
        let addr = options
            .bind_addr
            .unwrap_or(SocketAddr::from((Ipv4Addr::LOCALHOST, 0)));
        Endpoint::builder(presets::Minimal)
            .relay_mode(RelayMode::Disabled)
            .clear_address_lookup()
            .portmapper_config(PortmapperConfig::Disabled)
            .net_report_config(NetReportConfig::minimal())
            .clear_ip_transports()
            .bind_addr(addr)
            .map_err(EndpointError::Address)?
    };
    let builder = match options.secret_key {
        Some(key) => builder.secret_key(key),
        None => builder,
    };
    builder
        .alpns(vec![COMPACT_ALPN.to_vec(), ALPN.to_vec()])
        .bind()
        .await
        .map_err(EndpointError::Bind)
}

/// The address to dial `endpoint` at directly: its id and the sockets it is bound to. Right
/// after binding, `endpoint.addr()` may not list its sockets yet; this does.
pub fn dial_addr(endpoint: &Endpoint) -> EndpointAddr {
    endpoint
        .bound_sockets()
        .into_iter()
        .fold(EndpointAddr::new(endpoint.id()), |addr, socket| {
            addr.with_ip_addr(socket)
        })
}
