//! The system's trusted roots and the one TLS client configuration built on them, shared by
//! every HTTPS client the process makes itself (reqwest, Sentry's transport) and by PostgreSQL
//! `verify-full` without `sslrootcert`. Reading the system store costs milliseconds (it is
//! hundreds of PEM files on some systems), so it happens once per process, at the first
//! handshake that verifies a certificate, never at start-up.

use std::sync::{Arc, OnceLock};

use rustls::client::WebPkiServerVerifier;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::CryptoProvider;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{DigitallySignedStruct, RootCertStore, SignatureScheme};

/// rustls with aws-lc-rs, as reqwest and the AWS SDK use it.
pub fn provider() -> Arc<CryptoProvider> {
    static PROVIDER: OnceLock<Arc<CryptoProvider>> = OnceLock::new();
    Arc::clone(PROVIDER.get_or_init(|| Arc::new(rustls::crypto::aws_lc_rs::default_provider())))
}

/// The system's roots as rustls-native-certs finds them (`SSL_CERT_FILE`, `SSL_CERT_DIR`, the
/// usual bundle locations), read on the first call. Unreadable certificates are skipped, as
/// reqwest's verifier skipped them; an empty store is an error.
pub(crate) fn system_roots() -> Result<Arc<RootCertStore>, rustls::Error> {
    static ROOTS: OnceLock<Result<Arc<RootCertStore>, rustls::Error>> = OnceLock::new();
    ROOTS
        .get_or_init(|| {
            let mut roots = RootCertStore::empty();
            roots.add_parsable_certificates(rustls_native_certs::load_native_certs().certs);
            if roots.is_empty() {
                return Err(rustls::Error::General("no CA certificates were found on this system".to_owned()));
            }
            Ok(Arc::new(roots))
        })
        .clone()
}

/// The system's roots, found as [`system_roots`] finds them, as PEM for libpq (`PGSSLROOTCERT`).
pub(crate) fn system_roots_pem() -> Result<String, rustls::Error> {
    use base64::Engine;
    let found = rustls_native_certs::load_native_certs().certs;
    if found.is_empty() {
        return Err(rustls::Error::General("no CA certificates were found on this system".to_owned()));
    }
    let mut pem = String::new();
    for cert in found {
        let body = base64::engine::general_purpose::STANDARD.encode(cert.as_ref());
        pem.push_str("-----BEGIN CERTIFICATE-----\n");
        for line in body.as_bytes().chunks(64) {
            pem.push_str(&String::from_utf8_lossy(line));
            pem.push('\n');
        }
        pem.push_str("-----END CERTIFICATE-----\n");
    }
    Ok(pem)
}

/// The client configuration for HTTPS: TLS 1.2 and 1.3, HTTP/1.1, server certificates checked
/// against [`system_roots`]. Cheap to call: clones share the verifier and its roots.
pub(crate) fn https_config() -> Result<rustls::ClientConfig, rustls::Error> {
    static CONFIG: OnceLock<Result<rustls::ClientConfig, rustls::Error>> = OnceLock::new();
    CONFIG
        .get_or_init(|| {
            let provider = provider();
            let mut config = rustls::ClientConfig::builder_with_provider(Arc::clone(&provider))
                .with_safe_default_protocol_versions()?
                .dangerous()
                .with_custom_certificate_verifier(Arc::new(SystemRootsVerifier::new(provider)))
                .with_no_client_auth();
            config.alpn_protocols = vec![b"http/1.1".to_vec()];
            Ok(config)
        })
        .clone()
}

/// WebPKI verification against [`system_roots`], built at the first certificate to verify.
/// Handshake signatures need no roots and are checked as WebPKI checks them.
#[derive(Debug)]
struct SystemRootsVerifier {
    provider: Arc<CryptoProvider>,
    verifier: OnceLock<Result<Arc<WebPkiServerVerifier>, rustls::Error>>,
}

impl SystemRootsVerifier {
    fn new(provider: Arc<CryptoProvider>) -> Self {
        SystemRootsVerifier { provider, verifier: OnceLock::new() }
    }

    fn verifier(&self) -> Result<&Arc<WebPkiServerVerifier>, rustls::Error> {
        self.verifier
            .get_or_init(|| {
                WebPkiServerVerifier::builder_with_provider(system_roots()?, Arc::clone(&self.provider))
                    .build()
                    .map_err(|e| rustls::Error::General(e.to_string()))
            })
            .as_ref()
            .map_err(Clone::clone)
    }
}

impl ServerCertVerifier for SystemRootsVerifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        self.verifier()?.verify_server_cert(end_entity, intermediates, server_name, ocsp_response, now)
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(message, cert, dss, &self.provider.signature_verification_algorithms)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, &self.provider.signature_verification_algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.provider.signature_verification_algorithms.supported_schemes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_system_roots_are_read_once() {
        let first = system_roots().expect("this machine has CA certificates");
        assert!(!first.is_empty());
        assert!(Arc::ptr_eq(&first, &system_roots().expect("roots")), "a second read");
    }

    #[test]
    fn https_speaks_http_1_1_as_reqwest_would() {
        let config = https_config().expect("config");
        assert_eq!(config.alpn_protocols, vec![b"http/1.1".to_vec()]);
        assert!(config.enable_sni);
    }
}
