//! An S3 server that fails for a while: writes and reads are retried with backoff and succeed.
//! A small proxy in front of the test server answers the first N requests `503 SlowDown`.

mod support;

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use benchfleet_s3::{S3Retry, S3Store};
use benchfleet_store::{BlobKey, BlobStore, ErrorKind, PutOutcome};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// A proxy to `upstream` answering its first `fail` requests with 503 (closing the connection).
/// Returns its address and the count of injected faults.
async fn faulty_proxy(upstream: String, fail: u64) -> (SocketAddr, Arc<AtomicU64>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind proxy");
    let addr = listener.local_addr().unwrap();
    let remaining = Arc::new(AtomicU64::new(fail));
    let injected = Arc::new(AtomicU64::new(0));
    let counter = injected.clone();
    tokio::spawn(async move {
        loop {
            let Ok((mut client, _)) = listener.accept().await else {
                continue;
            };
            let take = remaining
                .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
                .is_ok();
            let upstream = upstream.clone();
            let counter = counter.clone();
            tokio::spawn(async move {
                if take {
                    // Read the request head, answer 503, close.
                    let mut buf = vec![0u8; 64 * 1024];
                    let mut seen = Vec::new();
                    while !seen.windows(4).any(|w| w == b"\r\n\r\n") {
                        match client.read(&mut buf).await {
                            Ok(0) | Err(_) => return,
                            Ok(n) => seen.extend_from_slice(&buf[..n]),
                        }
                    }
                    counter.fetch_add(1, Ordering::SeqCst);
                    let body = "<Error><Code>SlowDown</Code><Message>injected</Message></Error>";
                    let resp = format!(
                        "HTTP/1.1 503 Service Unavailable\r\nContent-Type: application/xml\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                        body.len()
                    );
                    let _ = client.write_all(resp.as_bytes()).await;
                    let _ = client.shutdown().await;
                } else if let Ok(mut up) = TcpStream::connect(&upstream).await {
                    let _ = tokio::io::copy_bidirectional(&mut client, &mut up).await;
                }
            });
        }
    });
    (addr, injected)
}

fn host_port(endpoint: &str) -> String {
    endpoint
        .trim_start_matches("http://")
        .trim_start_matches("https://")
        .trim_end_matches('/')
        .to_string()
}

/// (faults injected, retries allowed, whether the put must succeed)
const CASES: &[(u64, usize, bool)] = &[
    (0, 0, true),
    (3, 10, true),
    (6, 10, true),
    (1, 0, false),
    (4, 2, false),
];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn writes_are_retried_through_a_failing_server() {
    let Some(server) = support::server("writes_are_retried_through_a_failing_server") else {
        return;
    };
    if !server.endpoint.starts_with("http://") {
        eprintln!(
            "writes_are_retried_through_a_failing_server: skipped, the fault proxy speaks plain HTTP only"
        );
        return;
    }
    for &(faults, max_retries, succeeds) in CASES {
        let (proxy, injected) = faulty_proxy(host_port(&server.endpoint), faults).await;
        let mut opts = server.options(&support::fresh_prefix());
        opts.endpoint = Some(format!("http://{proxy}"));
        opts.retry = S3Retry {
            max_retries,
            ..opts.retry
        };
        let store = S3Store::new(opts).expect("configure");
        let key = BlobKey::new("retry/blob").unwrap();
        let what = format!("{faults} faults, {max_retries} retries");
        match store.put_if_absent(&key, "payload".into()).await {
            Ok(outcome) => {
                assert!(succeeds, "{what}: put succeeded");
                assert_eq!(outcome, PutOutcome::Created, "{what}");
                assert_eq!(store.get(&key).await.expect("get"), "payload", "{what}");
                assert_eq!(
                    injected.load(Ordering::SeqCst),
                    faults,
                    "{what}: faults served"
                );
            }
            Err(e) => {
                assert!(!succeeds, "{what}: {e}");
                assert_eq!(e.kind, ErrorKind::Transient, "{what}: {e}");
                assert_eq!(
                    injected.load(Ordering::SeqCst),
                    max_retries as u64 + 1,
                    "{what}: attempts"
                );
            }
        }
    }
}
