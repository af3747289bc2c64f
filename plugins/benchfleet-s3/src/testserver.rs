//! A loopback S3-compatible server for tests (feature `testserver`): [s3s-fs] serving a
//! directory, plus two things tests need that s3s-fs lacks.
//!
//! - **Fault injection**: the first `fail_first` requests are answered `503 SlowDown`, so a test
//!   can show that writes are retried and succeed.
//! - **Keys that are also prefixes**: s3s-fs stores `a/b` as a file in directory `a`, and answers
//!   a read of `a` with a 500; S3 says 404 `NoSuchKey`, and so does this server.
//! - **Atomic conditional writes**: s3s-fs checks `If-None-Match: *` and then writes, so two racing
//!   creators can both win. Real S3 (and MinIO) decide atomically; this server serialises
//!   conditional writes so that it behaves like them.
//!
//! [s3s-fs]: https://docs.rs/s3s-fs

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto::Builder as ConnBuilder;
use s3s::service::{S3Service, S3ServiceBuilder};
use tokio::net::TcpListener;

/// How to run the test server.
#[derive(Clone)]
pub struct ServerOptions {
    /// Directory holding the buckets (one subdirectory per bucket).
    pub root: PathBuf,
    /// Bucket created at start (a directory under `root`).
    pub bucket: String,
    /// Credentials the server accepts (SigV4); both or neither.
    pub access_key: Option<String>,
    pub secret_key: Option<String>,
    /// Answer this many requests with `503 SlowDown` before serving normally.
    pub fail_first: u64,
    /// Address to listen on; port 0 picks a free one. Use loopback.
    pub addr: SocketAddr,
}

impl std::fmt::Debug for ServerOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ServerOptions")
            .field("root", &self.root)
            .field("bucket", &self.bucket)
            .field(
                "access_key",
                &self.access_key.as_ref().map(|_| "<redacted>"),
            )
            .field(
                "secret_key",
                &self.secret_key.as_ref().map(|_| "<redacted>"),
            )
            .field("fail_first", &self.fail_first)
            .field("addr", &self.addr)
            .finish()
    }
}

struct State {
    s3: S3Service,
    root: PathBuf,
    fail_remaining: AtomicU64,
    injected: AtomicU64,
    create_lock: tokio::sync::Mutex<()>,
}

/// A running server; dropping it stops accepting connections.
#[derive(Debug)]
pub struct RunningServer {
    /// `http://127.0.0.1:PORT`
    pub endpoint: String,
    state: Arc<StateHandle>,
    task: tokio::task::JoinHandle<()>,
}

struct StateHandle(Arc<State>);

impl std::fmt::Debug for StateHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("State")
    }
}

impl RunningServer {
    /// How many requests were answered with an injected 503 so far.
    pub fn injected_faults(&self) -> u64 {
        self.state.0.injected.load(Ordering::SeqCst)
    }

    /// Answer the next `n` requests with 503.
    pub fn fail_next(&self, n: u64) {
        self.state.0.fail_remaining.store(n, Ordering::SeqCst);
    }
}

impl Drop for RunningServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Start the server on the current tokio runtime.
pub async fn start(opts: ServerOptions) -> std::io::Result<RunningServer> {
    let bucket_dir = opts.root.join(&opts.bucket);
    std::fs::create_dir_all(&bucket_dir)?;
    let fs = s3s_fs::FileSystem::new(&opts.root)
        .map_err(|e| std::io::Error::other(format!("s3s-fs at {}: {e:?}", opts.root.display())))?;
    let mut builder = S3ServiceBuilder::new(fs);
    if let (Some(ak), Some(sk)) = (opts.access_key.clone(), opts.secret_key.clone()) {
        builder.set_auth(s3s::auth::SimpleAuth::from_single(ak, sk));
    }
    let state = Arc::new(State {
        s3: builder.build(),
        root: opts.root.clone(),
        fail_remaining: AtomicU64::new(opts.fail_first),
        injected: AtomicU64::new(0),
        create_lock: tokio::sync::Mutex::new(()),
    });
    let listener = TcpListener::bind(opts.addr).await?;
    let endpoint = format!("http://{}", listener.local_addr()?);
    let accept_state = state.clone();
    let task = tokio::spawn(async move {
        let http = ConnBuilder::new(TokioExecutor::new());
        loop {
            let Ok((socket, _)) = listener.accept().await else {
                continue;
            };
            let st = accept_state.clone();
            let svc = hyper::service::service_fn(move |req: http::Request<Incoming>| {
                let st = st.clone();
                async move { handle(&st, req).await }
            });
            let conn = http
                .serve_connection(TokioIo::new(socket), svc)
                .into_owned();
            tokio::spawn(async move {
                let _ = conn.await;
            });
        }
    });
    Ok(RunningServer {
        endpoint,
        state: Arc::new(StateHandle(state)),
        task,
    })
}

async fn handle(
    st: &State,
    req: http::Request<Incoming>,
) -> Result<http::Response<s3s::Body>, s3s::HttpError> {
    let inject = st
        .fail_remaining
        .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
        .is_ok();
    if inject {
        st.injected.fetch_add(1, Ordering::SeqCst);
        return xml_error(503, "SlowDown", "injected fault");
    }
    if matches!(*req.method(), http::Method::GET | http::Method::HEAD) {
        let path = req.uri().path().trim_start_matches('/');
        let safe = path
            .split('/')
            .all(|s| !s.is_empty() && s != "." && s != "..");
        if safe && path.contains('/') && st.root.join(path).is_dir() {
            return xml_error(404, "NoSuchKey", "The specified key does not exist.");
        }
    }
    let conditional = matches!(*req.method(), http::Method::PUT | http::Method::POST)
        && req.headers().contains_key(http::header::IF_NONE_MATCH);
    let _guard = if conditional {
        Some(st.create_lock.lock().await)
    } else {
        None
    };
    st.s3.call(req.map(s3s::Body::from)).await
}

fn xml_error(
    status: u16,
    code: &str,
    message: &str,
) -> Result<http::Response<s3s::Body>, s3s::HttpError> {
    let body = format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?><Error><Code>{code}</Code><Message>{message}</Message></Error>"
    );
    http::Response::builder()
        .status(status)
        .header("content-type", "application/xml")
        .body(s3s::Body::from(body))
        .map_err(|e| s3s::HttpError::new(Box::new(e)))
}
