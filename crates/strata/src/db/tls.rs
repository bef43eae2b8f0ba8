//! TLS connectors for each `sslmode`, on the system's OpenSSL (native-tls).

use postgres_native_tls::MakeTlsConnector;

use super::conninfo::{SslMode, TlsSettings};

/// Builds the connector for the requested mode. `disable` still gets a
/// connector; tokio-postgres then never starts TLS.
pub(super) fn connector(settings: &TlsSettings) -> Result<MakeTlsConnector, String> {
    let mut builder = native_tls::TlsConnector::builder();
    let verify_chain = match settings.mode {
        SslMode::VerifyCa | SslMode::VerifyFull => true,
        // libpq: with `require`, a root certificate file turns on verify-ca.
        SslMode::Require => settings.root_cert.is_some(),
        SslMode::Disable | SslMode::Prefer => false,
    };
    if let Some(path) = &settings.root_cert {
        let pem = std::fs::read(path)
            .map_err(|e| format!("cannot read sslrootcert {}: {e}", path.display()))?;
        let cert = native_tls::Certificate::from_pem(&pem).map_err(|e| {
            format!(
                "sslrootcert {} is not a PEM certificate: {e}",
                path.display()
            )
        })?;
        builder.add_root_certificate(cert);
    }
    if let (Some(cert), Some(key)) = (&settings.client_cert, &settings.client_key) {
        let cert = std::fs::read(cert)
            .map_err(|e| format!("cannot read sslcert {}: {e}", cert.display()))?;
        let key =
            std::fs::read(key).map_err(|e| format!("cannot read sslkey {}: {e}", key.display()))?;
        let identity = native_tls::Identity::from_pkcs8(&cert, &key)
            .map_err(|e| format!("sslcert/sslkey are not a PEM certificate and PKCS#8 key: {e}"))?;
        builder.identity(identity);
    }
    builder.danger_accept_invalid_certs(!verify_chain);
    builder.danger_accept_invalid_hostnames(settings.mode != SslMode::VerifyFull);
    let connector = builder
        .build()
        .map_err(|e| format!("cannot set up TLS: {e}"))?;
    Ok(MakeTlsConnector::new(connector))
}
