//! `GET /metrics`: a runner's [`RunnerMetrics`] in the OpenMetrics text exposition, served
//! by axum. The facade's [`prom`](benchfleet::prom) keeps the metrics (fed only by the event
//! stream), the metrics file and the loopback rule; this module is the HTTP side, here because
//! this crate is the only one that speaks HTTP. Two users: `--metrics-listen` of `run`, `bench`,
//! `load` and `worker` ([`listen`]), and `benchfleet serve` itself ([`routes`], merged into the
//! dashboard).
//!
//! The exposition answers as it always has: `GET`/`HEAD` `/metrics` (and `/`) with the text,
//! 404 for other paths, 405 for other methods, header names written as `Content-Type`, one
//! request per connection (the answer says `Connection: close` and the connection is closed).
//! axum's own `serve` keeps connections alive and writes header names in lower case, so
//! [`listen`] drives hyper's HTTP/1 connection itself with those two settings.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::State;
use axum::http::{HeaderValue, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;

use benchfleet::prom::{CONTENT_TYPE, PromError, RunnerMetrics};

/// The exposition's routes: `/metrics` and `/`, any other path 404, any method but `GET` and
/// `HEAD` 405.
pub fn routes(metrics: Arc<RunnerMetrics>) -> Router {
    Router::new()
        .route("/metrics", get(exposition).fallback(not_allowed))
        .route("/", get(exposition).fallback(not_allowed))
        .fallback(not_found)
        .with_state(metrics)
}

/// Only the `/metrics` route (for `serve`, whose `/` is the dashboard).
pub(crate) fn metrics_route(metrics: Arc<RunnerMetrics>) -> Router {
    Router::new()
        .route("/metrics", get(exposition).fallback(not_allowed))
        .with_state(metrics)
}

async fn exposition(State(m): State<Arc<RunnerMetrics>>) -> Response {
    (
        [(header::CONTENT_TYPE, HeaderValue::from_static(CONTENT_TYPE))],
        m.encode(),
    )
        .into_response()
}

fn text(status: StatusCode, body: &'static str) -> Response {
    (
        status,
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("text/plain; charset=utf-8"),
        )],
        body,
    )
        .into_response()
}

async fn not_allowed() -> Response {
    text(StatusCode::METHOD_NOT_ALLOWED, "only GET /metrics\n")
}

async fn not_found(method: Method) -> Response {
    if method == Method::GET || method == Method::HEAD {
        text(
            StatusCode::NOT_FOUND,
            "not found; the metrics are at /metrics\n",
        )
    } else {
        not_allowed().await
    }
}

/// How long [`listen`] waits after its `failures`-th accept error in a row: 100 ms, doubling,
/// at most [`ACCEPT_BACKOFF_MAX`].
pub fn accept_backoff(failures: u32) -> Duration {
    let doublings = failures.saturating_sub(1).min(16);
    (Duration::from_millis(100) * 2u32.pow(doublings)).min(ACCEPT_BACKOFF_MAX)
}

/// The longest wait between accept attempts of [`listen`].
pub const ACCEPT_BACKOFF_MAX: Duration = Duration::from_secs(5);

/// A request head must arrive within this.
const HEAD_TIMEOUT: Duration = Duration::from_secs(5);

/// Serve `metrics` on `addr` (loopback only; port 0 picks one) until the returned task is
/// aborted ([`Exposition::attach_server`](benchfleet::prom::Exposition::attach_server) does it
/// when the exposition finishes). Returns the bound address.
///
/// A failing `accept` (e.g. `EMFILE`: out of file descriptors, which persists) is logged once
/// per streak and retried after [`accept_backoff`], not in a busy loop.
pub async fn listen(
    addr: SocketAddr,
    metrics: Arc<RunnerMetrics>,
) -> Result<(SocketAddr, tokio::task::JoinHandle<()>), PromError> {
    if !addr.ip().is_loopback() {
        return Err(PromError::NotLoopback {
            addr: addr.to_string(),
        });
    }
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .map_err(|source| PromError::Bind { addr, source })?;
    let bound = listener
        .local_addr()
        .map_err(|source| PromError::Bind { addr, source })?;
    let app = routes(metrics).layer(axum::middleware::map_response(close));
    let task = tokio::spawn(async move {
        let mut failures = 0u32;
        loop {
            let stream = match listener.accept().await {
                Ok((stream, _)) => {
                    failures = 0;
                    stream
                }
                Err(e) => {
                    failures = failures.saturating_add(1);
                    if failures == 1 {
                        tracing::warn!(
                            "the metrics server cannot accept connections: {e}; retrying"
                        );
                    }
                    tokio::time::sleep(accept_backoff(failures)).await;
                    continue;
                }
            };
            let service = hyper_util::service::TowerToHyperService::new(app.clone());
            tokio::spawn(async move {
                let _ = hyper::server::conn::http1::Builder::new()
                    .title_case_headers(true)
                    .keep_alive(false)
                    .timer(hyper_util::rt::TokioTimer::new())
                    .header_read_timeout(HEAD_TIMEOUT)
                    .serve_connection(hyper_util::rt::TokioIo::new(stream), service)
                    .await;
            });
        }
    });
    Ok((bound, task))
}

/// One request per connection: every answer says so.
async fn close(mut resp: Response) -> Response {
    resp.headers_mut()
        .insert(header::CONNECTION, HeaderValue::from_static("close"));
    resp
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    async fn raw(addr: SocketAddr, request: &str) -> String {
        let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
        s.write_all(request.as_bytes()).await.unwrap();
        let mut out = String::new();
        tokio::time::timeout(Duration::from_secs(10), s.read_to_string(&mut out))
            .await
            .expect("the server closes the connection after one answer")
            .unwrap();
        out
    }

    #[tokio::test]
    async fn http_responses_follow_the_request() {
        let m = Arc::new(RunnerMetrics::new());
        let (addr, task) = listen("127.0.0.1:0".parse().unwrap(), m).await.unwrap();
        for (request, status, has_body) in [
            ("GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n", "200 OK", true),
            ("GET /metrics?x=1 HTTP/1.1\r\n\r\n", "200 OK", true),
            ("GET / HTTP/1.1\r\n\r\n", "200 OK", true),
            ("HEAD /metrics HTTP/1.1\r\n\r\n", "200 OK", false),
            ("GET /other HTTP/1.1\r\n\r\n", "404 Not Found", true),
            (
                "POST /metrics HTTP/1.1\r\nContent-Length: 0\r\n\r\n",
                "405 Method Not Allowed",
                true,
            ),
            (
                "DELETE /other HTTP/1.1\r\n\r\n",
                "405 Method Not Allowed",
                true,
            ),
        ] {
            let r = raw(addr, request).await;
            let (head, body) = r.split_once("\r\n\r\n").unwrap();
            assert!(
                head.starts_with(&format!("HTTP/1.1 {status}\r\n")),
                "{request:?}: {head}"
            );
            assert!(
                head.contains("\r\nConnection: close"),
                "{request:?}: {head}"
            );
            let len: usize = head
                .lines()
                .find_map(|l| l.strip_prefix("Content-Length: "))
                .unwrap_or_else(|| panic!("{request:?}: no Content-Length in {head}"))
                .parse()
                .unwrap();
            assert_eq!(body.is_empty(), !has_body, "{request:?}");
            if has_body {
                assert_eq!(body.len(), len, "{request:?}");
            }
            if status == "200 OK" && has_body {
                assert!(
                    head.contains("Content-Type: application/openmetrics-text"),
                    "{head}"
                );
                benchfleet::prom::parse_exposition(body).unwrap();
            }
        }
        task.abort();
    }

    #[tokio::test]
    async fn only_loopback_is_served() {
        let m = Arc::new(RunnerMetrics::new());
        let err = listen("0.0.0.0:0".parse().unwrap(), m).await.unwrap_err();
        assert!(matches!(err, PromError::NotLoopback { .. }), "{err}");
    }

    /// A persistent accept error (EMFILE) is retried after a growing pause, never in a busy
    /// loop.
    #[test]
    fn accept_errors_back_off_growing_and_capped() {
        let ms = |n| accept_backoff(n).as_millis();
        assert_eq!([ms(1), ms(2), ms(3), ms(4)], [100, 200, 400, 800]);
        assert_eq!(ms(7), ACCEPT_BACKOFF_MAX.as_millis());
        assert_eq!(accept_backoff(u32::MAX), ACCEPT_BACKOFF_MAX);
    }
}
