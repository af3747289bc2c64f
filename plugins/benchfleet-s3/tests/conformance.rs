//! The shared blob-store behaviour suite against a real S3-compatible server
//! (`BENCHFLEET_TEST_S3_ENDPOINT`, …; skipped with a note when unset, failing under `CI=true`).

mod support;

use benchfleet_s3::S3Store;
use benchfleet_store::{BlobKey, BlobStore};
use benchfleet_testkit::Harness;
use object_store::aws::AmazonS3Builder;
use object_store::path::Path;
use object_store::{ObjectStoreExt, PutPayload};

struct S3(support::Server);

impl Harness for S3 {
    type Store = S3Store;

    async fn make(&self) -> S3Store {
        self.0.fresh()
    }

    /// Overwrite the object with one byte flipped, through a separate client.
    fn corrupt(&self, store: &S3Store, key: &BlobKey) -> bool {
        let s = &self.0;
        let raw = AmazonS3Builder::new()
            .with_endpoint(&s.endpoint)
            .with_bucket_name(&s.bucket)
            .with_region(&s.region)
            .with_access_key_id(&s.access_key)
            .with_secret_access_key(&s.secret_key)
            .with_allow_http(true)
            .build();
        let Ok(raw) = raw else { return false };
        let path = Path::from(store.object_path(key));
        tokio::task::block_in_place(|| {
            tokio::runtime::Handle::current().block_on(async {
                let Ok(got) = raw.get(&path).await else {
                    return false;
                };
                let Ok(bytes) = got.bytes().await else {
                    return false;
                };
                let mut v = bytes.to_vec();
                let Some(b) = v.first_mut() else { return false };
                *b ^= 1;
                raw.put(&path, PutPayload::from(v)).await.is_ok()
            })
        })
    }
}

benchfleet_testkit::blob_store_conformance!(match support::server("s3 conformance") {
    Some(s) => S3(s),
    None => return,
});

/// Credentials never show in Debug output or in error messages.
#[tokio::test]
async fn credentials_are_redacted() {
    let opts = benchfleet_s3::S3Options {
        endpoint: Some("http://127.0.0.1:9".into()),
        bucket: "b".into(),
        access_key: Some("AKIDSECRETVALUE".into()),
        secret_key: Some("hunter2-secret".into()),
        allow_http: true,
        retry: benchfleet_s3::S3Retry {
            max_retries: 0,
            ..Default::default()
        },
        connect_timeout: std::time::Duration::from_millis(300),
        ..Default::default()
    };
    let shown = format!("{opts:?}");
    let store = S3Store::new(opts).expect("configure");
    let err = store
        .get(&BlobKey::new("k").unwrap())
        .await
        .expect_err("nothing listens on port 9");
    let texts = [
        shown,
        format!("{store:?}"),
        err.to_string(),
        format!("{err:?}"),
    ];
    for t in &texts {
        assert!(
            !t.contains("hunter2-secret") && !t.contains("AKIDSECRETVALUE"),
            "{t}"
        );
    }
    assert!(texts[0].contains("<redacted>"), "{}", texts[0]);
}

/// Plain HTTP is refused unless allowed; bad prefixes and part sizes are refused up front.
#[test]
fn configuration_is_checked() {
    let base = || benchfleet_s3::S3Options {
        endpoint: Some("http://127.0.0.1:9000".into()),
        bucket: "b".into(),
        allow_http: true,
        ..Default::default()
    };
    let cases: Vec<(benchfleet_s3::S3Options, Option<&str>)> = vec![
        (base(), None),
        (
            benchfleet_s3::S3Options {
                allow_http: false,
                ..base()
            },
            Some("plain HTTP"),
        ),
        (
            benchfleet_s3::S3Options {
                bucket: String::new(),
                ..base()
            },
            Some("no bucket"),
        ),
        (
            benchfleet_s3::S3Options {
                prefix: "a/../b".into(),
                ..base()
            },
            Some("prefix"),
        ),
        (
            benchfleet_s3::S3Options {
                prefix: "/team/x/".into(),
                ..base()
            },
            None,
        ),
        (
            benchfleet_s3::S3Options {
                part_size: 1024,
                ..base()
            },
            Some("5 MiB"),
        ),
    ];
    for (opts, want) in cases {
        let shown = format!("{opts:?}");
        match (S3Store::new(opts), want) {
            (Ok(_), None) => {}
            (Err(e), Some(w)) => assert!(e.to_string().contains(w), "{shown}: {e}"),
            (Ok(_), Some(w)) => panic!("{shown}: accepted, expected an error about {w}"),
            (Err(e), None) => panic!("{shown}: {e}"),
        }
    }
}
