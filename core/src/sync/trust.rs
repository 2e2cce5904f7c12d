//! Which servers the sync client trusts: the platform's roots by default,
//! or only the certificate authorities the app ships (an agency's own CA),
//! and optionally a pin on the server's public key on top of either.

use std::sync::Arc;

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{CertificateError, DigitallySignedStruct, RootCertStore, SignatureScheme};
use rustls_pki_types::pem::PemObject;

use crate::error::Error;

/// The server trust an app configures.
///
/// ```
/// use sambung_core::sync::ServerTrust;
/// // The default: the platform's certificate authorities, no pin.
/// let trust = ServerTrust::default();
/// assert!(trust.roots.is_empty() && trust.pins.is_empty());
/// // Garbage is refused with a clear error, never ignored.
/// assert!(ServerTrust::default().with_roots_pem(b"not a certificate").is_err());
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ServerTrust {
    /// Root certificates (DER) to trust instead of the platform's; empty:
    /// the platform's roots.
    pub roots: Vec<Vec<u8>>,
    /// SHA-256 digests of SubjectPublicKeyInfo: when not empty, the
    /// server's own certificate must carry one of these keys, on top of a
    /// valid chain (pin the next key too before rotating).
    pub pins: Vec<[u8; 32]>,
}

impl ServerTrust {
    /// Adds the root certificates of a PEM file's text (one or more
    /// `CERTIFICATE` blocks).
    pub fn with_roots_pem(mut self, pem: &[u8]) -> Result<Self, Error> {
        let mut found = 0;
        for cert in CertificateDer::pem_slice_iter(pem) {
            let cert = cert.map_err(|_| bad("the CA file is not valid PEM"))?;
            webpki::anchor_from_trusted_cert(&cert)
                .map_err(|_| bad("a certificate in the CA file cannot be parsed"))?;
            self.roots.push(cert.as_ref().to_vec());
            found += 1;
        }
        if found == 0 {
            return Err(bad("the CA file holds no certificate"));
        }
        Ok(self)
    }

    /// Adds a key pin given as 64 hex digits (the SHA-256 of the server
    /// certificate's SubjectPublicKeyInfo; see [`spki_sha256`]).
    pub fn with_pin_hex(mut self, hex_pin: &str) -> Result<Self, Error> {
        let pin = hex::decode(hex_pin.trim())
            .ok()
            .and_then(|b| <[u8; 32]>::try_from(b).ok())
            .ok_or_else(|| bad("a key pin is 64 hex digits (SHA-256 of the key)"))?;
        self.pins.push(pin);
        Ok(self)
    }

    /// The rustls configuration for this trust (ring provider, HTTP/1.1).
    pub(crate) fn client_config(&self) -> Result<rustls::ClientConfig, Error> {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        // On Android the platform verifier needs a JNI initialisation from
        // the app's process that a JNA-loaded library cannot do: the app
        // gives its agency's CA (or pins) instead — refused clearly here
        // rather than failing inside a handshake.
        if cfg!(target_os = "android") && self.roots.is_empty() {
            return Err(bad(
                "on Android, configure the agency's CA certificate (ca_pem) for the server",
            ));
        }
        let chain: Arc<dyn ServerCertVerifier> = if self.roots.is_empty() {
            Arc::new(
                rustls_platform_verifier::Verifier::new(provider.clone())
                    .map_err(|_| bad("the platform's certificate store cannot be used"))?,
            )
        } else {
            let mut store = RootCertStore::empty();
            for der in &self.roots {
                store
                    .add(CertificateDer::from(der.clone()))
                    .map_err(|_| bad("a root certificate is not valid"))?;
            }
            rustls::client::WebPkiServerVerifier::builder_with_provider(
                Arc::new(store),
                provider.clone(),
            )
            .build()
            .map_err(|_| bad("the root certificates cannot be used"))?
        };
        let verifier: Arc<dyn ServerCertVerifier> = if self.pins.is_empty() {
            chain
        } else {
            Arc::new(Pinned {
                chain,
                pins: self.pins.clone(),
            })
        };
        let config = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(|_| bad("no TLS version is available"))?
            .dangerous() // a verifier of our own: the chain check plus the pin
            .with_custom_certificate_verifier(verifier)
            .with_no_client_auth();
        Ok(config)
    }
}

impl From<&crate::store::Enrollment> for ServerTrust {
    /// The trust recorded at enrollment.
    fn from(e: &crate::store::Enrollment) -> Self {
        ServerTrust {
            roots: e.ca_roots.clone(),
            pins: e.pins.clone(),
        }
    }
}

fn bad(why: &str) -> Error {
    Error::ServerTrust(why.to_owned())
}

/// The pin of a certificate (DER): SHA-256 of its SubjectPublicKeyInfo, the
/// value [`ServerTrust::pins`] holds. Stays the same when a certificate is
/// renewed with the same key.
pub fn spki_sha256(cert_der: &[u8]) -> Result<[u8; 32], Error> {
    let der = CertificateDer::from(cert_der);
    let cert = webpki::EndEntityCert::try_from(&der)
        .map_err(|_| bad("the certificate cannot be parsed"))?;
    Ok(crate::crypto::sha256(
        cert.subject_public_key_info().as_ref(),
    ))
}

/// A valid chain first, then the server's own key among the pins. Only the
/// end-entity certificate is checked against the pins: an intermediate the
/// server merely presents proves nothing.
#[derive(Debug)]
struct Pinned {
    chain: Arc<dyn ServerCertVerifier>,
    pins: Vec<[u8; 32]>,
}

impl ServerCertVerifier for Pinned {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        let verified = self.chain.verify_server_cert(
            end_entity,
            intermediates,
            server_name,
            ocsp_response,
            now,
        )?;
        let pin = spki_sha256(end_entity.as_ref())
            .map_err(|_| rustls::Error::InvalidCertificate(CertificateError::BadEncoding))?;
        if self.pins.contains(&pin) {
            Ok(verified)
        } else {
            Err(rustls::Error::InvalidCertificate(
                CertificateError::ApplicationVerificationFailure,
            ))
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.chain.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.chain.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.chain.supported_verify_schemes()
    }

    fn requires_raw_public_keys(&self) -> bool {
        false
    }
}
