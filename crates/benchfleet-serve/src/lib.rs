//! `benchfleet serve`: the live dashboard. An axum server over an opened
//! [`Storage`](benchfleet::store::Storage) with a JSON API (`/api/…`, documented in
//! `docs/api.md`), server-sent events of what changes in the catalog (`/api/events`, resumable
//! with `Last-Event-ID`) and the pages (Runs, Run, History, Compare, Alerts) embedded in the
//! binary, plots drawn in the browser with the vendored uPlot.
//!
//! The live view follows the catalog, not the runner's in-process events: a suite running in
//! another process (or on a fleet worker) is only visible through what it stores, so
//! [`live`] polls the running runs' rows and record entries a few times a second and turns
//! what changed into events.
//!
//! **Architecture invariant:** depends on the facade `benchfleet` (and what it re-exports)
//! only; knows nothing about clap or the terminal. Every answer is JSON or an embedded asset;
//! no page loads anything from another host (a Content-Security-Policy of `'self'` says so to
//! the browser).
//!
//! ```no_run
//! # async fn demo(storage: benchfleet::store::Storage) -> Result<(), benchfleet_serve::ServeError> {
//! let opts = benchfleet_serve::ServeOptions::new("127.0.0.1:0".parse().unwrap());
//! let server = benchfleet_serve::bind(storage, opts).await?;
//! eprintln!("serving on http://{}", server.local_addr());
//! server.run(std::future::pending()).await?;
//! # Ok(()) }
//! ```

mod api;
pub mod assets;
mod error;
pub mod live;
pub mod metrics;

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::{Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::Response;
use tower_http::compression::CompressionLayer;
use tower_http::timeout::TimeoutLayer;
use tower_http::trace::TraceLayer;

use benchfleet::store::Storage;

pub use error::ApiError;

/// How to serve.
#[derive(Clone, PartialEq, Eq)]
pub struct ServeOptions {
    /// Where to listen; port 0 picks a free port.
    pub listen: SocketAddr,
    /// A bearer token every API request must carry (`Authorization: Bearer T`, or `?token=T`
    /// where a browser cannot set headers: `EventSource`). Required off loopback.
    pub token: Option<String>,
    /// Accept triage (`POST`) off loopback. On loopback writes are always accepted.
    pub allow_writes: bool,
    /// How often the running runs are looked at for the live view.
    pub poll: Duration,
}

impl std::fmt::Debug for ServeOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ServeOptions")
            .field("listen", &self.listen)
            .field("token", &self.token.as_ref().map(|_| "<redacted>"))
            .field("allow_writes", &self.allow_writes)
            .field("poll", &self.poll)
            .finish()
    }
}

impl ServeOptions {
    pub fn new(listen: SocketAddr) -> Self {
        ServeOptions {
            listen,
            token: None,
            allow_writes: false,
            poll: live::DEFAULT_POLL,
        }
    }

    /// Whether `POST` requests are accepted.
    pub fn writes(&self) -> bool {
        self.listen.ip().is_loopback() || self.allow_writes
    }
}

/// Why the server could not start.
#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    /// Options that cannot work together; the message says what to change.
    #[error("{0}")]
    Usage(String),
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        addr: SocketAddr,
        source: std::io::Error,
    },
    #[error("serving failed: {0}")]
    Io(#[from] std::io::Error),
}

/// Refuse options that would expose the catalog: any address but loopback needs a token.
pub fn check(opts: &ServeOptions) -> Result<(), ServeError> {
    if let Some(t) = &opts.token
        && t.trim().is_empty()
    {
        return Err(ServeError::Usage(
            "--token is empty; give a secret string".into(),
        ));
    }
    if !opts.listen.ip().is_loopback() && opts.token.is_none() {
        return Err(ServeError::Usage(format!(
            "--listen {}: serving on a non-loopback address needs --token (a bearer secret \
             every API request must carry); it is read-only unless --allow-writes",
            opts.listen
        )));
    }
    Ok(())
}

/// What every handler shares.
#[derive(Debug, Clone)]
pub(crate) struct AppState {
    pub storage: Storage,
    pub live: Arc<live::Live>,
    pub token: Option<Arc<str>>,
    pub writes: bool,
    pub cache: Arc<api::ResponseCache>,
    /// Every run's row and commit, with the generation they were listed at
    /// (`api::run_rows`).
    #[allow(clippy::type_complexity)]
    pub runs: Arc<std::sync::Mutex<Option<(u64, Arc<api::RunRows>)>>>,
}

/// A bound server: the port is known, nothing is served yet.
#[derive(Debug)]
pub struct Server {
    listener: tokio::net::TcpListener,
    app: Router,
    addr: SocketAddr,
    follower: tokio::task::JoinHandle<()>,
    /// The server's own metrics (`GET /metrics`: the machine's CPU and memory, read every
    /// second).
    exposition: benchfleet::prom::Exposition,
}

/// Check `opts`, bind the listener and start following the catalog.
pub async fn bind(storage: Storage, opts: ServeOptions) -> Result<Server, ServeError> {
    check(&opts)?;
    let listener = tokio::net::TcpListener::bind(opts.listen)
        .await
        .map_err(|source| ServeError::Bind {
            addr: opts.listen,
            source,
        })?;
    let addr = listener.local_addr()?;
    let live = Arc::new(live::Live::new());
    let follower = tokio::spawn(live::follow(storage.clone(), live.clone(), opts.poll));
    let exposition = benchfleet::prom::start(
        Arc::new(benchfleet::prom::RunnerMetrics::new()),
        &benchfleet::prom::PromOptions::default(),
    )
    .await
    .map_err(|e| ServeError::Usage(e.to_string()))?;
    let state = AppState {
        storage,
        live,
        token: opts.token.as_deref().map(Arc::from),
        writes: opts.writes(),
        cache: Arc::default(),
        runs: Arc::default(),
    };
    Ok(Server {
        listener,
        app: router(state, exposition.metrics().clone()),
        addr,
        follower,
        exposition,
    })
}

impl Server {
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// Serve until `shutdown` completes; open event streams end then.
    pub async fn run(
        self,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> std::io::Result<()> {
        let res = axum::serve(self.listener, self.app)
            .with_graceful_shutdown(shutdown)
            .await;
        self.follower.abort();
        let _ = self.exposition.finish().await;
        res
    }
}

/// Requests slower than this are answered 408 (event streams are not: their response starts
/// at once).
const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);

fn router(state: AppState, metrics: Arc<benchfleet::prom::RunnerMetrics>) -> Router {
    // The metrics need the token too when one is set (they describe the machine).
    let guarded = metrics::metrics_route(metrics)
        .layer(middleware::from_fn_with_state(state.clone(), authorize));
    let api = api::routes()
        .layer(middleware::from_fn_with_state(state.clone(), authorize))
        .with_state(state);
    Router::new()
        .merge(api)
        .merge(guarded)
        .merge(assets::routes())
        .layer(middleware::from_fn(security_headers))
        .layer(CompressionLayer::new())
        .layer(TimeoutLayer::with_status_code(
            StatusCode::REQUEST_TIMEOUT,
            REQUEST_TIMEOUT,
        ))
        .layer(TraceLayer::new_for_http())
}

/// The bearer token, when one is set: from `Authorization`, or `?token=` for `EventSource`.
async fn authorize(State(state): State<AppState>, req: Request, next: Next) -> Response {
    let Some(want) = &state.token else {
        return next.run(req).await;
    };
    let from_header = req
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(str::to_owned);
    let from_query = req.uri().query().and_then(|q| {
        q.split('&')
            .find_map(|kv| kv.strip_prefix("token="))
            .map(api::percent_decode)
    });
    let given = from_header.or(from_query);
    if given
        .as_deref()
        .is_some_and(|g| constant_time_eq(g.as_bytes(), want.as_bytes()))
    {
        return next.run(req).await;
    }
    let mut resp = ApiError::unauthorized(if given.is_some() {
        "wrong token"
    } else {
        "this server needs a token: send `Authorization: Bearer TOKEN` (or `?token=TOKEN`)"
    })
    .into_response_json();
    resp.headers_mut()
        .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
    resp
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// Nothing from another origin: scripts, styles, images and connections stay on this server.
async fn security_headers(req: Request, next: Next) -> Response {
    let mut resp = next.run(req).await;
    let h = resp.headers_mut();
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(
            "default-src 'self'; img-src 'self' data:; style-src 'self' 'unsafe-inline'; \
             connect-src 'self'; frame-ancestors 'none'",
        ),
    );
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    resp
}

#[cfg(test)]
mod tests {
    use super::*;

    fn opts(listen: &str, token: Option<&str>, allow_writes: bool) -> ServeOptions {
        ServeOptions {
            token: token.map(str::to_owned),
            allow_writes,
            ..ServeOptions::new(listen.parse().unwrap())
        }
    }

    #[test]
    fn off_loopback_needs_a_token_and_is_read_only_unless_allowed() {
        assert!(check(&opts("127.0.0.1:0", None, false)).is_ok());
        assert!(check(&opts("[::1]:0", None, false)).is_ok());
        let err = check(&opts("0.0.0.0:8417", None, false)).unwrap_err();
        assert!(err.to_string().contains("--token"), "{err}");
        assert!(check(&opts("127.0.0.1:0", Some(" "), false)).is_err());
        assert!(check(&opts("0.0.0.0:0", Some("t"), false)).is_ok());
        assert!(opts("127.0.0.1:0", None, false).writes());
        assert!(!opts("0.0.0.0:0", Some("t"), false).writes());
        assert!(opts("0.0.0.0:0", Some("t"), true).writes());
        let shown = format!("{:?}", opts("0.0.0.0:0", Some("hunter2"), false));
        assert!(!shown.contains("hunter2"), "{shown}");
    }

    /// `GET` of `path` with optional headers: (status line, whole answer).
    async fn get(addr: SocketAddr, path: &str, headers: &str) -> String {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
        let req = format!("GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n{headers}\r\n");
        s.write_all(req.as_bytes()).await.unwrap();
        let mut out = String::new();
        s.read_to_string(&mut out).await.unwrap();
        out
    }

    #[tokio::test]
    async fn serve_exposes_its_metrics_behind_its_token() {
        use benchfleet::store::mem::{MemBlobStore, MemCatalog};
        let storage = Storage::new(
            Arc::new(MemCatalog::default()),
            Arc::new(MemBlobStore::new()),
        );
        let server = bind(
            storage,
            ServeOptions {
                token: Some("t0k".into()),
                ..ServeOptions::new("127.0.0.1:0".parse().unwrap())
            },
        )
        .await
        .unwrap();
        let addr = server.local_addr();
        let task = tokio::spawn(server.run(std::future::pending()));
        let denied = get(addr, "/metrics", "").await;
        assert!(denied.starts_with("HTTP/1.1 401"), "{denied}");
        let ok = get(addr, "/metrics", "Authorization: Bearer t0k\r\n").await;
        assert!(ok.starts_with("HTTP/1.1 200"), "{ok}");
        assert!(ok.contains("application/openmetrics-text"), "{ok}");
        let (_, body) = ok.split_once("\r\n\r\n").unwrap();
        let series = benchfleet::prom::parse_exposition(body).unwrap();
        assert!(
            series.contains_key("benchfleet_memory_used_bytes"),
            "{body}"
        );
        task.abort();
    }

    #[test]
    fn tokens_compare_whole() {
        assert!(constant_time_eq(b"abc", b"abc"));
        assert!(!constant_time_eq(b"abc", b"abd"));
        assert!(!constant_time_eq(b"abc", b"ab"));
        assert_eq!(api::percent_decode("a%20b+c%2F"), "a b c/");
        assert_eq!(api::percent_decode("100%"), "100%");
        assert_eq!(api::percent_decode("%zz"), "%zz");
    }
}
