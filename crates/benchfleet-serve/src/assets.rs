//! The pages and their scripts, styles and the vendored uPlot, embedded in the binary
//! (`include_bytes!`): the server reads no file at run time.

use axum::Router;
use axum::extract::Path;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;

/// A page: the shared head (`assets/parts/`), its title, the shared links, its `data-page`, the
/// shared navigation, then its own body (`assets/NAME.html`), put together at compile time.
macro_rules! page {
    ($title:literal, $page:literal, $file:literal) => {
        concat!(
            include_str!("../assets/parts/head.html"),
            "<title>",
            $title,
            " · benchfleet</title>\n",
            include_str!("../assets/parts/links.html"),
            "<body data-page=\"",
            $page,
            "\">\n",
            include_str!("../assets/parts/nav.html"),
            include_str!(concat!("../assets/", $file)),
        )
        .as_bytes()
    };
}

/// (path under `/`, content type, bytes)
const ASSETS: &[(&str, &str, &[u8])] = &[
    ("index.html", HTML, page!("Runs", "runs", "index.html")),
    ("run.html", HTML, page!("Run", "run", "run.html")),
    (
        "history.html",
        HTML,
        page!("History", "history", "history.html"),
    ),
    (
        "compare.html",
        HTML,
        page!("Compare", "compare", "compare.html"),
    ),
    (
        "alerts.html",
        HTML,
        page!("Alerts", "alerts", "alerts.html"),
    ),
    ("assets/app.js", JS, include_bytes!("../assets/app.js")),
    ("assets/app.css", CSS, include_bytes!("../assets/app.css")),
    (
        "assets/uPlot.iife.min.js",
        JS,
        include_bytes!("../assets/vendor/uplot/uPlot.iife.min.js"),
    ),
    (
        "assets/uPlot.min.css",
        CSS,
        include_bytes!("../assets/vendor/uplot/uPlot.min.css"),
    ),
];

const HTML: &str = "text/html; charset=utf-8";
const JS: &str = "text/javascript; charset=utf-8";
const CSS: &str = "text/css; charset=utf-8";

/// Every embedded asset: (path, content type, bytes). For tests and size figures.
pub fn all() -> impl Iterator<Item = (&'static str, &'static str, &'static [u8])> {
    ASSETS.iter().copied()
}

pub(crate) fn routes<S: Clone + Send + Sync + 'static>() -> Router<S> {
    Router::new()
        .route("/", get(|| async { asset("index.html") }))
        .route(
            "/{*path}",
            get(|Path(p): Path<String>| async move { asset(&p) }),
        )
}

fn asset(path: &str) -> Response {
    match ASSETS.iter().find(|(p, _, _)| *p == path) {
        Some((_, ct, bytes)) => (
            [
                (header::CONTENT_TYPE, *ct),
                (header::CACHE_CONTROL, "no-cache"),
            ],
            *bytes,
        )
            .into_response(),
        None => (
            StatusCode::NOT_FOUND,
            [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
            "not found",
        )
            .into_response(),
    }
}

#[cfg(test)]
mod tests {
    use sha2::{Digest, Sha256};

    /// Every vendored file is the one `VENDOR.md` records (version and checksum).
    #[test]
    fn vendored_files_match_vendor_md() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("assets/vendor");
        let doc = std::fs::read_to_string(dir.join("VENDOR.md")).unwrap();
        for f in ["uPlot.iife.min.js", "uPlot.min.css", "LICENSE"] {
            let bytes = std::fs::read(dir.join("uplot").join(f)).unwrap();
            let sum = hex::encode(Sha256::digest(&bytes));
            let row = format!("`uplot/{f}`");
            let line = doc
                .lines()
                .find(|l| l.contains(&row))
                .unwrap_or_else(|| panic!("VENDOR.md has no row for {row}"));
            assert!(
                line.contains(&sum),
                "{f}: sha256 {sum} is not the one VENDOR.md records"
            );
        }
    }

    /// The pages reference only embedded assets, by absolute path on this server.
    #[test]
    fn pages_load_only_embedded_assets() {
        let paths: Vec<&str> = super::all().map(|(p, _, _)| p).collect();
        for (p, _, bytes) in super::all().filter(|(p, _, _)| p.ends_with(".html")) {
            let text = std::str::from_utf8(bytes).unwrap();
            for attr in ["src=\"", "href=\""] {
                for part in text.split(attr).skip(1) {
                    let url = part.split('"').next().unwrap();
                    if url.starts_with("data:") || url.ends_with(".html") || url == "/" {
                        continue;
                    }
                    let local = url
                        .strip_prefix('/')
                        .unwrap_or_else(|| panic!("{p}: {url}"));
                    assert!(
                        paths.contains(&local),
                        "{p} loads {url}, which is not embedded"
                    );
                }
            }
            assert!(
                !text.contains("http://") && !text.contains("https://"),
                "{p}"
            );
        }
    }
}
