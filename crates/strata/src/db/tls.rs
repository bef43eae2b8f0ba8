//! TLS for each `sslmode`, on the system's OpenSSL (native-tls).
//!
//! Building a connector loads the system's CA certificates, about 45 ms of
//! CPU, and an `up` opens three connections. Most servers Strata talks to
//! over TCP in development refuse TLS (`sslmode=prefer` then goes on in
//! plain text), so the connector is built only when the server has said
//! yes to TLS, and then once per process and settings: [`LazyTls`] is what
//! tokio-postgres gets, and it builds nothing until the handshake starts.

use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex, OnceLock};

use tokio::io::{AsyncRead, AsyncWrite};
use tokio_postgres::tls::{MakeTlsConnect, TlsConnect};

use super::conninfo::{SslMode, TlsSettings};

/// The certificate files of one set of settings, read and parsed (cheap),
/// and the connector built from them on first use (costly).
struct Shared {
    settings: TlsSettings,
    root: Option<native_tls::Certificate>,
    identity: Option<native_tls::Identity>,
    built: OnceLock<Result<native_tls::TlsConnector, String>>,
}

/// The settings of this process's connections so far; a run has one or
/// two, so a list is enough.
static SHARED: Mutex<Vec<Arc<Shared>>> = Mutex::new(Vec::new());

/// What tokio-postgres calls per connection attempt. Cloning shares the
/// connector.
#[derive(Clone)]
pub(super) struct LazyTls(Arc<Shared>);

/// Reads the certificate files the settings name, so that a missing or
/// malformed file is reported as a bad target before connecting, and
/// returns the process's connector for these settings (not built yet).
pub(super) fn connector(settings: &TlsSettings) -> Result<LazyTls, String> {
    let mut all = SHARED.lock().unwrap_or_else(|p| p.into_inner());
    if let Some(shared) = all.iter().find(|s| &s.settings == settings) {
        return Ok(LazyTls(shared.clone()));
    }
    let shared = Arc::new(load(settings)?);
    all.push(shared.clone());
    Ok(LazyTls(shared))
}

fn load(settings: &TlsSettings) -> Result<Shared, String> {
    let root = match &settings.root_cert {
        Some(path) => {
            let pem = std::fs::read(path)
                .map_err(|e| format!("cannot read sslrootcert {}: {e}", path.display()))?;
            Some(native_tls::Certificate::from_pem(&pem).map_err(|e| {
                format!(
                    "sslrootcert {} is not a PEM certificate: {e}",
                    path.display()
                )
            })?)
        }
        None => None,
    };
    let identity = match (&settings.client_cert, &settings.client_key) {
        (Some(cert), Some(key)) => {
            let cert = std::fs::read(cert)
                .map_err(|e| format!("cannot read sslcert {}: {e}", cert.display()))?;
            let key = std::fs::read(key)
                .map_err(|e| format!("cannot read sslkey {}: {e}", key.display()))?;
            Some(native_tls::Identity::from_pkcs8(&cert, &key).map_err(|e| {
                format!("sslcert/sslkey are not a PEM certificate and PKCS#8 key: {e}")
            })?)
        }
        _ => None,
    };
    Ok(Shared {
        settings: settings.clone(),
        root,
        identity,
        built: OnceLock::new(),
    })
}

impl Shared {
    /// The connector, built on the first call.
    fn get(&self) -> Result<native_tls::TlsConnector, String> {
        self.built.get_or_init(|| self.build()).clone()
    }

    fn build(&self) -> Result<native_tls::TlsConnector, String> {
        tracing::debug!("building the TLS connector (loads the system's CA certificates)");
        let settings = &self.settings;
        let mut builder = native_tls::TlsConnector::builder();
        let verify_chain = match settings.mode {
            SslMode::VerifyCa | SslMode::VerifyFull => true,
            // libpq: with `require`, a root certificate file turns on verify-ca.
            SslMode::Require => settings.root_cert.is_some(),
            SslMode::Disable | SslMode::Prefer => false,
        };
        if let Some(cert) = &self.root {
            builder.add_root_certificate(cert.clone());
        }
        if let Some(identity) = &self.identity {
            builder.identity(identity.clone());
        }
        builder.danger_accept_invalid_certs(!verify_chain);
        builder.danger_accept_invalid_hostnames(settings.mode != SslMode::VerifyFull);
        builder
            .build()
            .map_err(|e| format!("cannot set up TLS: {e}"))
    }
}

impl<S> MakeTlsConnect<S> for LazyTls
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    type Stream = postgres_native_tls::TlsStream<S>;
    type TlsConnect = LazyConnect;
    type Error = std::convert::Infallible;

    /// Called before the server has answered whether it speaks TLS: builds
    /// nothing.
    fn make_tls_connect(&mut self, domain: &str) -> Result<LazyConnect, Self::Error> {
        Ok(LazyConnect {
            shared: self.0.clone(),
            domain: domain.to_owned(),
        })
    }
}

/// One connection's handshake; the connector is built (once per process)
/// only when the handshake starts, that is, after the server said yes.
pub(super) struct LazyConnect {
    shared: Arc<Shared>,
    domain: String,
}

type BoxError = Box<dyn std::error::Error + Send + Sync>;

impl<S> TlsConnect<S> for LazyConnect
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    type Stream = postgres_native_tls::TlsStream<S>;
    type Error = BoxError;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Stream, BoxError>> + Send>>;

    fn connect(self, stream: S) -> Self::Future {
        Box::pin(async move {
            let connector = self.shared.get()?;
            let tls = postgres_native_tls::TlsConnector::new(connector, &self.domain);
            tls.connect(stream).await.map_err(BoxError::from)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    fn settings(mode: SslMode) -> TlsSettings {
        TlsSettings {
            mode,
            root_cert: None,
            client_cert: None,
            client_key: None,
        }
    }

    /// A listener that answers the client's SSLRequest with `answer`
    /// (`N`: no TLS, `S`: go ahead) and then hangs up: the part of the
    /// protocol that decides whether a connector is needed.
    async fn answering(answer: u8) -> u16 {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        tokio::spawn(async move {
            let (mut socket, _) = listener.accept().await.unwrap();
            let mut request = [0u8; 8];
            socket.read_exact(&mut request).await.unwrap();
            // Length 8, then the SSLRequest code 80877103.
            assert_eq!(request, [0, 0, 0, 8, 4, 210, 22, 47]);
            socket.write_all(&[answer]).await.unwrap();
            let mut rest = [0u8; 64];
            let _ = socket.read(&mut rest).await;
        });
        port
    }

    async fn connect_once(port: u16, tls: &LazyTls, mode: tokio_postgres::config::SslMode) {
        let mut config = tokio_postgres::Config::new();
        config
            .host("127.0.0.1")
            .port(port)
            .user("nobody")
            .ssl_mode(mode)
            .connect_timeout(std::time::Duration::from_secs(5));
        // The stub hangs up after its answer: the connection fails either way.
        assert!(config.connect(tls.clone()).await.is_err());
    }

    #[tokio::test]
    async fn no_connector_is_built_when_the_server_refuses_tls() {
        let tls = LazyTls(Arc::new(load(&settings(SslMode::Prefer)).unwrap()));
        let port = answering(b'N').await;
        connect_once(port, &tls, tokio_postgres::config::SslMode::Prefer).await;
        assert!(tls.0.built.get().is_none());
    }

    #[tokio::test]
    async fn the_connector_is_built_once_the_server_accepts_tls() {
        let tls = LazyTls(Arc::new(load(&settings(SslMode::Require)).unwrap()));
        let port = answering(b'S').await;
        connect_once(port, &tls, tokio_postgres::config::SslMode::Require).await;
        assert!(matches!(tls.0.built.get(), Some(Ok(_))));
    }

    #[test]
    fn one_connector_per_process_and_settings() {
        let a = connector(&settings(SslMode::VerifyCa)).unwrap();
        let b = connector(&settings(SslMode::VerifyCa)).unwrap();
        let c = connector(&settings(SslMode::VerifyFull)).unwrap();
        assert!(Arc::ptr_eq(&a.0, &b.0));
        assert!(!Arc::ptr_eq(&a.0, &c.0));
    }

    #[test]
    fn a_missing_root_certificate_is_reported_before_connecting() {
        let mut s = settings(SslMode::VerifyFull);
        s.root_cert = Some("/nonexistent/strata-root.pem".into());
        let error = connector(&s).err().unwrap();
        assert!(error.contains("cannot read sslrootcert /nonexistent/strata-root.pem"));
    }
}
