//! TLS 1.3 as libp2p specifies it (`/tls/1.0.0`: a self-signed certificate carrying
//! the node's key in the libp2p extension, client authentication mandatory, no SNI),
//! with the cipher suite chosen by this machine's hardware: AES-GCM first where the CPU
//! has AES instructions, ChaCha20-Poly1305 first where it has not.
//!
//! libp2p-tls offers ChaCha20-Poly1305 first whatever the CPU, and a TLS 1.3 server
//! follows the client's order; measured on this project's machine (AES-NI, AVX-512),
//! one bare 1 GiB stream over TCP + TLS + yamux took 3.4 CPU-seconds with ChaCha and
//! 1.8 with AES-128-GCM (docs/benchmarks.md, figure 7). The certificate itself, and
//! checking one, are libp2p-tls's (`libp2p::tls::certificate`): what this module adds
//! is the rustls configuration around them and the upgrade. All three TLS 1.3 suites
//! stay offered, so any libp2p TLS peer can connect; our server picks by its own order
//! (`ignore_client_order`), so a peer that lists ChaCha first still gets AES here.

use std::io;
use std::net::{IpAddr, Ipv4Addr};
use std::sync::Arc;

use futures::{AsyncRead, AsyncWrite};
use futures_rustls::TlsStream;
use libp2p::tls::certificate;
use libp2p::{identity, PeerId};
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::client::ResolvesClientCert;
use rustls::crypto::aws_lc_rs::{cipher_suite, default_provider};
use rustls::crypto::CryptoProvider;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::server::danger::{ClientCertVerified, ClientCertVerifier};
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;
use rustls::{DigitallySignedStruct, DistinguishedName, SignatureScheme, SupportedCipherSuite};

/// The protocol id multistream-select negotiates.
pub const PROTOCOL: &str = "/tls/1.0.0";
/// The ALPN value libp2p's TLS handshake carries.
const ALPN: &[u8] = b"libp2p";

/// Whether this CPU encrypts AES-GCM in hardware.
fn has_aes_hardware() -> bool {
    #[cfg(any(target_arch = "x86", target_arch = "x86_64"))]
    {
        std::arch::is_x86_feature_detected!("aes")
            && std::arch::is_x86_feature_detected!("pclmulqdq")
    }
    #[cfg(target_arch = "aarch64")]
    {
        std::arch::is_aarch64_feature_detected!("aes")
            && std::arch::is_aarch64_feature_detected!("pmull")
    }
    #[cfg(not(any(target_arch = "x86", target_arch = "x86_64", target_arch = "aarch64")))]
    {
        false
    }
}

/// The TLS 1.3 suites in our order of preference: the fastest on this CPU first.
fn cipher_suites(aes_hardware: bool) -> Vec<SupportedCipherSuite> {
    let aes = [
        cipher_suite::TLS13_AES_128_GCM_SHA256,
        cipher_suite::TLS13_AES_256_GCM_SHA384,
    ];
    let chacha = cipher_suite::TLS13_CHACHA20_POLY1305_SHA256;
    if aes_hardware {
        vec![aes[0], aes[1], chacha]
    } else {
        vec![chacha, aes[0], aes[1]]
    }
}

fn provider(aes_hardware: bool) -> Arc<CryptoProvider> {
    let mut provider = default_provider();
    provider.cipher_suites = cipher_suites(aes_hardware);
    Arc::new(provider)
}

/// Checks certificates as libp2p's TLS specification asks: exactly one, self-signed,
/// with a valid libp2p extension (all checked by `certificate::parse`), TLS 1.3 only.
/// The peer id it names is read after the handshake; the swarm compares it with the
/// one a dial asked for.
#[derive(Debug)]
pub(super) struct Libp2pCertificates;

/// The signature schemes libp2p's certificates may use, most preferred first.
const SCHEMES: [SignatureScheme; 9] = [
    SignatureScheme::ECDSA_NISTP384_SHA384,
    SignatureScheme::ECDSA_NISTP256_SHA256,
    SignatureScheme::ED25519,
    SignatureScheme::RSA_PSS_SHA512,
    SignatureScheme::RSA_PSS_SHA384,
    SignatureScheme::RSA_PSS_SHA256,
    SignatureScheme::RSA_PKCS1_SHA512,
    SignatureScheme::RSA_PKCS1_SHA384,
    SignatureScheme::RSA_PKCS1_SHA256,
];

fn bad_certificate(e: impl std::error::Error + Send + Sync + 'static) -> rustls::Error {
    rustls::Error::InvalidCertificate(rustls::CertificateError::Other(rustls::OtherError(
        Arc::new(e),
    )))
}

impl Libp2pCertificates {
    fn check_chain(
        end_entity: &CertificateDer,
        intermediates: &[CertificateDer],
    ) -> Result<(), rustls::Error> {
        if !intermediates.is_empty() {
            return Err(rustls::Error::General(
                "a libp2p peer presents exactly one certificate".into(),
            ));
        }
        certificate::parse(end_entity).map_err(bad_certificate)?;
        Ok(())
    }

    fn no_tls12() -> Result<HandshakeSignatureValid, rustls::Error> {
        Err(rustls::Error::General(
            "libp2p's TLS is TLS 1.3 only".into(),
        ))
    }

    fn check_signature(
        message: &[u8],
        cert: &CertificateDer,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        certificate::parse(cert)
            .map_err(bad_certificate)?
            .verify_signature(dss.scheme, message, dss.signature())
            .map_err(bad_certificate)?;
        Ok(HandshakeSignatureValid::assertion())
    }
}

impl ServerCertVerifier for Libp2pCertificates {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer,
        intermediates: &[CertificateDer],
        _server_name: &ServerName,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Self::check_chain(end_entity, intermediates)?;
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        _message: &[u8],
        _cert: &CertificateDer,
        _dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        Self::no_tls12()
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        Self::check_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        SCHEMES.to_vec()
    }
}

impl ClientCertVerifier for Libp2pCertificates {
    fn offer_client_auth(&self) -> bool {
        true
    }

    fn client_auth_mandatory(&self) -> bool {
        true
    }

    fn root_hint_subjects(&self) -> &[DistinguishedName] {
        &[]
    }

    fn verify_client_cert(
        &self,
        end_entity: &CertificateDer,
        intermediates: &[CertificateDer],
        _now: UnixTime,
    ) -> Result<ClientCertVerified, rustls::Error> {
        Self::check_chain(end_entity, intermediates)?;
        Ok(ClientCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        _message: &[u8],
        _cert: &CertificateDer,
        _dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        Self::no_tls12()
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        Self::check_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        SCHEMES.to_vec()
    }
}

/// Our one certificate and its key, presented as client and as server.
#[derive(Debug)]
struct OurCertificate(Arc<CertifiedKey>);

impl ResolvesClientCert for OurCertificate {
    fn resolve(&self, _hints: &[&[u8]], _schemes: &[SignatureScheme]) -> Option<Arc<CertifiedKey>> {
        Some(self.0.clone())
    }

    fn has_certs(&self) -> bool {
        true
    }
}

impl ResolvesServerCert for OurCertificate {
    fn resolve(&self, _hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        Some(self.0.clone())
    }
}

/// The TLS security upgrade for one node's key: both ends' rustls configurations.
#[derive(Clone)]
pub struct Config {
    client: Arc<rustls::ClientConfig>,
    server: Arc<rustls::ServerConfig>,
}

impl Config {
    /// The configuration for `key`, ordering the suites for this CPU.
    pub fn new(key: &identity::Keypair) -> io::Result<Self> {
        Self::with_suites_for(key, has_aes_hardware())
    }

    /// The configuration for `key`, ordering the suites as for a CPU with or without
    /// AES instructions (tests check both orders).
    pub fn with_suites_for(key: &identity::Keypair, aes_hardware: bool) -> io::Result<Self> {
        let (cert, private_key) = certificate::generate(key).map_err(io::Error::other)?;
        let provider = provider(aes_hardware);
        let signing_key = provider
            .key_provider
            .load_private_key(private_key)
            .map_err(io::Error::other)?;
        // Our own resolver, not rustls's `with_single_cert`: rustls would parse the
        // certificate to check it against the key, and refuses the libp2p extension,
        // which is marked critical.
        let ours = Arc::new(OurCertificate(Arc::new(CertifiedKey::new(
            vec![cert],
            signing_key,
        ))));
        let versions = &[&rustls::version::TLS13];
        let mut client = rustls::ClientConfig::builder_with_provider(provider.clone())
            .with_protocol_versions(versions)
            .map_err(io::Error::other)?
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(Libp2pCertificates))
            .with_client_cert_resolver(ours.clone());
        client.alpn_protocols = vec![ALPN.to_vec()];
        let mut server = rustls::ServerConfig::builder_with_provider(provider)
            .with_protocol_versions(versions)
            .map_err(io::Error::other)?
            .with_client_cert_verifier(Arc::new(Libp2pCertificates))
            .with_cert_resolver(ours);
        server.alpn_protocols = vec![ALPN.to_vec()];
        server.ignore_client_order = true;
        Ok(Config {
            client: Arc::new(client),
            server: Arc::new(server),
        })
    }
}

/// The peer id in the one certificate the peer presented.
fn peer_of<C>(stream: &TlsStream<C>) -> io::Result<PeerId> {
    let state = match stream {
        TlsStream::Client(s) => s.get_ref().1.peer_certificates(),
        TlsStream::Server(s) => s.get_ref().1.peer_certificates(),
    };
    let [cert] = state.unwrap_or_default() else {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            "the peer presented no single certificate",
        ));
    };
    certificate::parse(cert)
        .map(|c| c.peer_id())
        .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))
}

/// The cipher suite a finished handshake settled on.
#[cfg(test)]
pub(crate) fn negotiated_suite<C>(stream: &TlsStream<C>) -> Option<SupportedCipherSuite> {
    match stream {
        TlsStream::Client(s) => s.get_ref().1.negotiated_cipher_suite(),
        TlsStream::Server(s) => s.get_ref().1.negotiated_cipher_suite(),
    }
}

impl Config {
    /// The server side of the handshake on `socket`.
    pub async fn accept<C>(self, socket: C) -> io::Result<(PeerId, TlsStream<C>)>
    where
        C: AsyncRead + AsyncWrite + Unpin,
    {
        let stream: TlsStream<C> = futures_rustls::TlsAcceptor::from(self.server)
            .accept(socket)
            .await?
            .into();
        Ok((peer_of(&stream)?, stream))
    }

    /// The client side of the handshake on `socket`. libp2p's TLS sends no server
    /// name: an unspecified IP address turns SNI off.
    pub async fn connect<C>(self, socket: C) -> io::Result<(PeerId, TlsStream<C>)>
    where
        C: AsyncRead + AsyncWrite + Unpin,
    {
        let no_name = ServerName::IpAddress(IpAddr::V4(Ipv4Addr::UNSPECIFIED).into());
        let stream: TlsStream<C> = futures_rustls::TlsConnector::from(self.client)
            .connect(no_name, socket)
            .await?
            .into();
        Ok((peer_of(&stream)?, stream))
    }
}
