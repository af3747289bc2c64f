//! The pages and their scripts, styles and the vendored uPlot, embedded in the binary
//! (`include_bytes!`): the server reads no file at run time.

use axum::Router;
use axum::extract::Path;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;

/// (path under `/`, content type, bytes)
const ASSETS: &[(&str, &str, &[u8])] = &[
    ("index.html", HTML, include_bytes!("../assets/index.html")),
    ("run.html", HTML, include_bytes!("../assets/run.html")),
    (
        "history.html",
        HTML,
        include_bytes!("../assets/history.html"),
    ),
    (
        "compare.html",
        HTML,
        include_bytes!("../assets/compare.html"),
    ),
    ("alerts.html", HTML, include_bytes!("../assets/alerts.html")),
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
