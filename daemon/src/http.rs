//! Every HTTP server of the daemon — the ingest API, the gateway's command API, metrics — is
//! served here, so each holds against hostile clients the same way (docs/daemon.md, "HTTP
//! servers"): at most `max_connections` at once (more wait in the kernel's queue), each on its own
//! task, so a slow client never delays the others; the request head must arrive within
//! `header_timeout_ms` (which also closes a connection idle between requests) and the whole body
//! within `body_timeout_ms`; a body announced larger than the route's limit is refused with 413
//! before a byte of it is read; shutdown lets requests in flight finish.

use alloy::primitives::B256;
use alloy::providers::DynProvider;
use axum::Router;
use axum::body::Body;
use axum::extract::Request;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use eyre::{Result, WrapErr};
use http_body::{Body as HttpBody, Frame, SizeHint};
use hyper::body::Incoming;
use hyper_util::rt::{TokioIo, TokioTimer};
use iotegrity_core::AddressBook;
use iotegrity_core::tls::{Channel, ClientNames, ReloadingCert, server_config};
use std::future::Future;
use std::path::Path;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;
use tokio::net::TcpListener;
use tokio::sync::{Semaphore, watch};
use tower::ServiceExt;
use tracing::{debug, info, warn};

/// `[http]`: the limits of every HTTP server of the daemon.
#[derive(Debug, Clone, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HttpConfig {
    /// Most time for a request's head (line and headers) to arrive, from the connection's start or
    /// the previous response; a connection idle longer between requests is closed too, ms.
    /// Default 10 000.
    #[serde(default = "default_header_timeout")]
    pub header_timeout_ms: u64,
    /// Most time for a request's whole body to arrive once its head has, ms; a slower body is
    /// answered 408 and its connection closed. Default 30 000.
    #[serde(default = "default_body_timeout")]
    pub body_timeout_ms: u64,
    /// Most connections served at once per server; further ones wait to be accepted. Default 1024
    /// (keep the process's file-descriptor limit, `ulimit -n`, above the sum over its servers).
    #[serde(default = "default_max_connections")]
    pub max_connections: usize,
}

fn default_header_timeout() -> u64 {
    10_000
}
fn default_body_timeout() -> u64 {
    30_000
}
fn default_max_connections() -> usize {
    1024
}

impl Default for HttpConfig {
    fn default() -> Self {
        Self {
            header_timeout_ms: default_header_timeout(),
            body_timeout_ms: default_body_timeout(),
            max_connections: default_max_connections(),
        }
    }
}

impl HttpConfig {
    /// Checks the values that TOML types cannot.
    pub fn check(&self) -> Result<()> {
        eyre::ensure!(self.header_timeout_ms >= 1 && self.body_timeout_ms >= 1, "http timeouts must be >= 1 ms");
        eyre::ensure!(self.max_connections >= 1, "http.max_connections must be >= 1");
        Ok(())
    }
}

/// Binds `addr` for one of the servers (`what` names it in errors and logs).
pub async fn bind(addr: &str, what: &str) -> Result<TcpListener> {
    let listener = TcpListener::bind(addr).await.wrap_err_with(|| format!("{what}: cannot listen on {addr}"))?;
    info!(%addr, "{what} listening");
    Ok(listener)
}

/// A server's TLS (docs/secure-channel.md): TLS 1.3 only, no resumption, the certificate read
/// again when its files change; with client names, mutual TLS — a client must present a key the
/// chain accepts now under one of them. Each request of a TLS connection carries the connection's
/// [`Channel`] as an extension; plain ones carry `None`.
#[derive(Clone)]
pub struct Tls {
    cert: Arc<ReloadingCert>,
    clients: Option<Arc<ClientNames>>,
    /// The acceptor when no client certificate is asked for (the same for every connection).
    open: tokio_rustls::TlsAcceptor,
    /// With client names: the acceptor for the last set of client keys the chain accepted, kept
    /// while that set does not change (it changes at most once a block).
    pinned: Arc<std::sync::Mutex<Option<PinnedAcceptor>>>,
}

/// An acceptor and the client keys it lets in.
type PinnedAcceptor = (Vec<B256>, tokio_rustls::TlsAcceptor);

impl Tls {
    /// The TLS of the server `what` (for errors and logs) as a config section sets it: its
    /// `tls_cert` and `tls_key` (neither: plain HTTP, `None`), and the names whose pinned keys may
    /// connect as clients, read from the chain of `provider` and `book` (none: no client
    /// certificate asked for).
    pub fn from_config(
        what: &str,
        cert: Option<&Path>,
        key: Option<&Path>,
        client_names: &[String],
        provider: &DynProvider,
        book: &AddressBook,
    ) -> Result<Option<Self>> {
        let Some(served) = ReloadingCert::open_pair(cert, key).wrap_err_with(|| what.to_string())? else {
            return Ok(None);
        };
        let open = tokio_rustls::TlsAcceptor::from(server_config(served.clone(), None)?);
        let clients = (!client_names.is_empty())
            .then(|| Arc::new(ClientNames::new(client_names.to_vec(), provider.clone(), book.clone())));
        let names = clients.as_ref().map(|c| c.names().join(", "));
        info!(key = %served.current().1, clients = names.as_deref().unwrap_or("any (no client certificate)"),
            "{what} over TLS 1.3 (no resumption; the files are read again when they change)");
        Ok(Some(Self { cert: served, clients, open, pinned: Arc::default() }))
    }

    /// The handshake with one client: with client names, against their pins at the latest block.
    async fn accept(&self, tcp: tokio::net::TcpStream) -> Result<(TlsStream, Option<Channel>), String> {
        let Some(clients) = &self.clients else {
            let stream = self.open.accept(tcp).await.map_err(|e| e.to_string())?;
            let channel = Channel::of(stream.get_ref().1, self.cert.current().1, None);
            return Ok((stream, channel));
        };
        // Fails closed: no client is let in while the chain cannot be read.
        let accepted = clients.accepted().await.map_err(|e| format!("cannot read the client names' pins: {e}"))?;
        let keys: Vec<B256> = accepted.iter().flat_map(|r| r.accepted.iter().copied()).collect();
        let acceptor = {
            let mut pinned = self.pinned.lock().expect("not poisoned");
            match pinned.as_ref().filter(|(k, _)| *k == keys) {
                Some((_, acceptor)) => acceptor.clone(),
                None => {
                    let config = server_config(self.cert.clone(), Some(&accepted)).map_err(|e| e.to_string())?;
                    let acceptor = tokio_rustls::TlsAcceptor::from(config);
                    *pinned = Some((keys, acceptor.clone()));
                    acceptor
                }
            }
        };
        let stream = acceptor.accept(tcp).await.map_err(|e| {
            let blocks: Vec<String> = accepted.iter().map(|r| format!("{} at block {}", r.name, r.block)).collect();
            format!("{e} (client keys accepted: those pinned under {})", blocks.join(", "))
        })?;
        let channel = Channel::of(stream.get_ref().1, self.cert.current().1, Some(&accepted));
        Ok((stream, channel))
    }
}

type TlsStream = tokio_rustls::server::TlsStream<tokio::net::TcpStream>;

/// One HTTP/1 connection over `io` (TCP, or TLS over it) until it ends or the server stops.
async fn serve_connection<IO>(
    io: IO,
    app: Router,
    header: Duration,
    body: Duration,
    mut stopped: watch::Receiver<bool>,
    peer: std::net::SocketAddr,
) where
    IO: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let service = hyper::service::service_fn(move |req: Request<Incoming>| {
        app.clone().oneshot(req.map(|b| Body::new(Deadline::new(b, body))))
    });
    let conn = hyper::server::conn::http1::Builder::new()
        .timer(TokioTimer::new())
        .header_read_timeout(header)
        .serve_connection(TokioIo::new(io), service);
    tokio::pin!(conn);
    let result = tokio::select! {
        r = conn.as_mut() => r,
        _ = stopped.changed() => {
            conn.as_mut().graceful_shutdown();
            conn.await
        }
    };
    if let Err(e) = result {
        debug!(%peer, error = %e, "connection closed");
    }
}

/// Serves `app` on `listener` until `shutdown` resolves, then lets the requests in flight finish;
/// with `tls`, over TLS (docs/secure-channel.md: TLS 1.3 only, no resumption).
pub async fn serve(
    listener: TcpListener,
    app: Router,
    cfg: &HttpConfig,
    tls: Option<Tls>,
    shutdown: impl Future<Output = ()>,
) {
    let permits = Arc::new(Semaphore::new(cfg.max_connections));
    let (header, body) = (Duration::from_millis(cfg.header_timeout_ms), Duration::from_millis(cfg.body_timeout_ms));
    let (stop, stopped) = watch::channel(false);
    tokio::pin!(shutdown);
    loop {
        let permit = tokio::select! {
            _ = &mut shutdown => break,
            permit = permits.clone().acquire_owned() => permit.expect("the semaphore is never closed"),
        };
        let (stream, peer) = tokio::select! {
            _ = &mut shutdown => break,
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(e) => {
                    // Out of file descriptors, say: wait a little instead of spinning.
                    warn!(error = %e, "cannot accept a connection");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
        };
        let (app, stopped, tls) = (app.clone(), stopped.clone(), tls.clone());
        tokio::spawn(async move {
            match tls {
                None => {
                    let app = app.layer(axum::Extension(None::<Channel>));
                    serve_connection(stream, app, header, body, stopped, peer).await
                }
                // The TLS handshake counts against the head's time, as the head would.
                Some(tls) => match tokio::time::timeout(header, tls.accept(stream)).await {
                    Ok(Ok((stream, channel))) => {
                        let app = app.layer(axum::Extension(channel));
                        serve_connection(stream, app, header, body, stopped, peer).await
                    }
                    Ok(Err(e)) if tls.clients.is_some() => warn!(%peer, error = %e, "TLS handshake refused"),
                    Ok(Err(e)) => debug!(%peer, error = %e, "TLS handshake refused"),
                    Err(_) => debug!(%peer, "TLS handshake timed out"),
                },
            }
            drop(permit);
        });
    }
    // Let the requests in flight finish: each connection gives its slot back when it ends (idle
    // ones at once, on the graceful shutdown), bounded by the time one request may take to arrive.
    let _ = stop.send(true);
    let all = u32::try_from(cfg.max_connections).unwrap_or(u32::MAX);
    if tokio::time::timeout(header + body, permits.acquire_many(all)).await.is_err() {
        warn!("connections still open at shutdown were cut");
    }
}

/// Refuses with 413 a request whose announced `Content-Length` is over `max` bytes, before its
/// body is read; `setting` names the limit in the answer. (A body without a length is cut at the
/// limit by axum's `DefaultBodyLimit`, which the routes set to the same value.)
pub async fn refuse_oversized(
    max: usize,
    setting: &'static str,
    req: Request,
    next: axum::middleware::Next,
) -> Response {
    let announced = req
        .headers()
        .get(axum::http::header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if let Some(len) = announced.filter(|len| *len > max as u64) {
        let body = iotegrity_core::wire::ErrorBody {
            error: format!("a body of {len} bytes is over the limit of {max} bytes ({setting})"),
            step: None,
        };
        return (StatusCode::PAYLOAD_TOO_LARGE, axum::Json(body)).into_response();
    }
    next.run(req).await
}

/// Whether `err` (or one of its causes) is a request body that missed its deadline.
pub fn is_body_timeout(err: &(dyn std::error::Error + 'static)) -> bool {
    let mut cause = Some(err);
    while let Some(e) = cause {
        if e.is::<BodyTimeout>() {
            return true;
        }
        cause = e.source();
    }
    false
}

/// A request body that did not arrive within `body_timeout_ms`.
#[derive(Debug, thiserror::Error)]
#[error("the request body did not arrive in time")]
pub struct BodyTimeout;

/// A body that fails with [`BodyTimeout`] once its deadline passes, however its bytes trickle in.
struct Deadline<B> {
    inner: B,
    deadline: Pin<Box<tokio::time::Sleep>>,
}

impl<B> Deadline<B> {
    fn new(inner: B, within: Duration) -> Self {
        Self { inner, deadline: Box::pin(tokio::time::sleep(within)) }
    }
}

impl<B> HttpBody for Deadline<B>
where
    B: HttpBody<Data = Bytes> + Unpin,
    B::Error: Into<axum::BoxError>,
{
    type Data = Bytes;
    type Error = axum::BoxError;

    fn poll_frame(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
        if let Poll::Ready(frame) = Pin::new(&mut self.inner).poll_frame(cx) {
            return Poll::Ready(frame.map(|f| f.map_err(Into::into)));
        }
        match self.deadline.as_mut().poll(cx) {
            Poll::Ready(()) => Poll::Ready(Some(Err(Box::new(BodyTimeout)))),
            Poll::Pending => Poll::Pending,
        }
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}
