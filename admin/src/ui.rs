//! The web UI's files: a shell shared by both servers (`admin/ui/`: the
//! page, its style, and `app.js` with login, the first-run wizard,
//! Japanese and English, and forms that show an API error next to the field
//! it names) and each server's own `pages.js`. Everything is compiled into
//! the binary; nothing is loaded from elsewhere, and the Content Security
//! Policy says so to the browser. The files hold no data: they need no
//! authentication, and every datum they show comes from the API.

use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::get;

const INDEX: &str = include_str!("../ui/index.html");
const APP_JS: &str = include_str!("../ui/app.js");
const APP_CSS: &str = include_str!("../ui/app.css");

/// What the browser may load and run: this server's own files only.
const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; \
                   connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'";

fn file(content_type: &'static str, body: &'static str) -> Response {
    let mut r = body.into_response();
    let h = r.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    h.insert(header::CONTENT_SECURITY_POLICY, HeaderValue::from_static(CSP));
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    r
}

/// What the browser may do with anything else the admin port answers (API
/// JSON, errors, redirects): render nothing, load nothing.
const CSP_DATA: &str = "default-src 'none'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'";

/// Security headers on every answer of the admin port, the UI's files, the
/// API's data and its errors alike (a layer over the whole router, see
/// [`crate::serve`]): no content sniffing, no framing, no referrer, HTTPS
/// only from now on (HSTS), no caching of data; a response's own policy
/// (the UI's files) is kept.
pub(crate) async fn security_headers(mut r: Response) -> Response {
    let h = r.headers_mut();
    h.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    h.insert(header::REFERRER_POLICY, HeaderValue::from_static("no-referrer"));
    h.insert(header::STRICT_TRANSPORT_SECURITY, HeaderValue::from_static("max-age=31536000"));
    h.insert("cross-origin-opener-policy", HeaderValue::from_static("same-origin"));
    h.insert("cross-origin-resource-policy", HeaderValue::from_static("same-origin"));
    h.entry(header::CONTENT_SECURITY_POLICY).or_insert(HeaderValue::from_static(CSP_DATA));
    h.entry(header::CACHE_CONTROL).or_insert(HeaderValue::from_static("no-store"));
    r
}

/// The UI's routes: `/` (to `/ui/`), `/ui/`, `/ui/app.js`, `/ui/app.css`
/// and `/ui/pages.js` (the server's pages, `pages_js`).
pub fn routes(pages_js: &'static str) -> axum::Router {
    axum::Router::new()
        .route("/", get(|| async { Redirect::to("/ui/") }))
        .route("/ui/", get(|| async { file("text/html; charset=utf-8", INDEX) }))
        .route("/ui/app.js", get(|| async { file("text/javascript; charset=utf-8", APP_JS) }))
        .route("/ui/app.css", get(|| async { file("text/css; charset=utf-8", APP_CSS) }))
        .route("/ui/pages.js", get(move || async move { file("text/javascript; charset=utf-8", pages_js) }))
}
