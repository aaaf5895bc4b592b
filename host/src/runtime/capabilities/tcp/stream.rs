//! Opening a plain or TLS stream to addresses the policy already allowed, and checking
//! whether a pooled one is still open.

use std::net::SocketAddr;
use std::sync::{Arc, LazyLock};
use std::time::Duration;

use futures::FutureExt;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_rustls::rustls::pki_types::pem::PemObject;
use tokio_rustls::rustls::pki_types::{CertificateDer, ServerName};
use tokio_rustls::rustls::{self, ClientConfig, RootCertStore};
use tokio_rustls::TlsConnector;

/// TLS settings of one connect.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct TlsSettings {
    /// Name checked against the certificate.
    pub server_name: String,
    /// Extra trusted CAs (PEM).
    pub ca_pem: Option<String>,
}

/// An open connection.
#[derive(Debug)]
pub enum Stream {
    /// Plain TCP.
    Plain(TcpStream),
    /// TLS over TCP.
    Tls(Box<tokio_rustls::client::TlsStream<TcpStream>>),
}

/// Why opening failed (policy checks happen before; these are network failures).
#[derive(Debug)]
pub enum OpenError {
    /// No address answered in time.
    Timeout,
    /// Bad TLS settings (server name, CA PEM).
    Config(String),
    /// Connection or handshake failure.
    Io(String),
}

fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

fn client_config(roots: RootCertStore) -> Result<Arc<ClientConfig>, String> {
    ClientConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .map_err(|e| e.to_string())
        .map(|b| Arc::new(b.with_root_certificates(roots).with_no_client_auth()))
}

fn webpki_roots() -> RootCertStore {
    RootCertStore {
        roots: webpki_roots::TLS_SERVER_ROOTS.to_vec(),
    }
}

/// The client configuration with the public web roots, built once.
static DEFAULT_TLS: LazyLock<Result<Arc<ClientConfig>, String>> =
    LazyLock::new(|| client_config(webpki_roots()));

fn tls_config(ca_pem: Option<&str>) -> Result<Arc<ClientConfig>, OpenError> {
    let Some(pem) = ca_pem.filter(|p| !p.trim().is_empty()) else {
        return (*DEFAULT_TLS).clone().map_err(OpenError::Config);
    };
    let mut roots = webpki_roots();
    let mut added = 0usize;
    for cert in CertificateDer::pem_slice_iter(pem.as_bytes()) {
        let cert = cert.map_err(|e| OpenError::Config(format!("ca-pem: {e}")))?;
        roots
            .add(cert)
            .map_err(|e| OpenError::Config(format!("ca-pem: {e}")))?;
        added += 1;
    }
    if added == 0 {
        return Err(OpenError::Config(
            "ca-pem holds no PEM certificate".to_owned(),
        ));
    }
    client_config(roots).map_err(OpenError::Config)
}

impl Stream {
    /// Connect to the first of `addrs` that answers within `timeout` (overall), then run
    /// the TLS handshake if asked, within the same budget.
    pub async fn open(
        addrs: &[SocketAddr],
        tls: Option<&TlsSettings>,
        timeout: Duration,
    ) -> Result<Stream, OpenError> {
        let connector = match tls {
            Some(t) => Some((
                TlsConnector::from(tls_config(t.ca_pem.as_deref())?),
                ServerName::try_from(t.server_name.clone()).map_err(|_| {
                    OpenError::Config(format!("`{}` is not a valid server name", t.server_name))
                })?,
            )),
            None => None,
        };
        let work = async move {
            let mut last = None;
            let mut tcp = None;
            for addr in addrs {
                match TcpStream::connect(addr).await {
                    Ok(s) => {
                        tcp = Some(s);
                        break;
                    }
                    Err(e) => last = Some(format!("{addr}: {e}")),
                }
            }
            let tcp = tcp.ok_or_else(|| {
                OpenError::Io(last.unwrap_or_else(|| "no address to connect to".into()))
            })?;
            let _ = tcp.set_nodelay(true);
            match connector {
                None => Ok(Stream::Plain(tcp)),
                Some((connector, name)) => connector
                    .connect(name, tcp)
                    .await
                    .map(|s| Stream::Tls(Box::new(s)))
                    .map_err(|e| OpenError::Io(format!("TLS handshake: {e}"))),
            }
        };
        tokio::time::timeout(timeout, work)
            .await
            .unwrap_or(Err(OpenError::Timeout))
    }

    /// Whether a pooled connection is still usable: the peer has not closed it and sent
    /// nothing unasked (a broker's "connection closed" frame, a ping it expects an answer
    /// to). Either makes the plugin's stored session meaningless, so the caller drops it.
    pub fn is_idle_and_open(&mut self) -> bool {
        let mut probe = [0u8; 1];
        match self.read(&mut probe).now_or_never() {
            None => true,         // nothing to read: open and quiet
            Some(Ok(_)) => false, // EOF (0) or unexpected bytes
            Some(Err(_)) => false,
        }
    }

    /// Read into `buf`.
    pub async fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        match self {
            Stream::Plain(s) => s.read(buf).await,
            Stream::Tls(s) => s.read(buf).await,
        }
    }

    /// Write all of `bytes` and flush.
    pub async fn write_all(&mut self, bytes: &[u8]) -> std::io::Result<()> {
        async fn go<S: AsyncRead + AsyncWrite + Unpin>(s: &mut S, b: &[u8]) -> std::io::Result<()> {
            s.write_all(b).await?;
            s.flush().await
        }
        match self {
            Stream::Plain(s) => go(s, bytes).await,
            Stream::Tls(s) => go(s.as_mut(), bytes).await,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::net::TcpListener;

    #[tokio::test]
    async fn liveness_probe_sees_close_and_unasked_bytes() {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let timeout = Duration::from_secs(5);

        let mut quiet = Stream::open(&[addr], None, timeout).await.unwrap();
        let (server_side, _) = listener.accept().await.unwrap();
        assert!(quiet.is_idle_and_open());
        drop(server_side);
        // The FIN arrives asynchronously; a read that completes proves it did.
        let mut buf = [0u8; 1];
        let mut closed = Stream::open(&[addr], None, timeout).await.unwrap();
        let (peer, _) = listener.accept().await.unwrap();
        drop(peer);
        assert_eq!(closed.read(&mut buf).await.unwrap(), 0);
        assert!(!closed.is_idle_and_open());

        let mut chatty = Stream::open(&[addr], None, timeout).await.unwrap();
        let (mut peer, _) = listener.accept().await.unwrap();
        peer.write_all(b"PING\r\n").await.unwrap();
        peer.flush().await.unwrap();
        // Wait until the bytes are readable, without consuming them.
        if let Stream::Plain(s) = &chatty {
            s.readable().await.unwrap();
        }
        assert!(!chatty.is_idle_and_open());
    }

    #[test]
    fn bad_ca_pem_is_a_config_error() {
        assert!(matches!(
            tls_config(Some("not a certificate")),
            Err(OpenError::Config(_))
        ));
        assert!(tls_config(None).is_ok());
    }
}
