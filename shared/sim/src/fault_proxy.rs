//! A loopback proxy in front of a real system (Redmine, Tryton) that puts the
//! stage's faults in its answers: the same malformed, failed and throttled
//! answers the simulators give, for connectors whose vendor runs here for
//! real. Everything else passes through unchanged (method, path, query,
//! headers, body; status, headers, body back).

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};

use crate::server::{Server, serve};
use crate::stage::Fault;

struct Inner {
    upstream: String,
    http: reqwest::Client,
    next: Mutex<Vec<Fault>>,
}

/// A running proxy; it stops when dropped.
pub struct FaultProxy {
    inner: Arc<Inner>,
    server: Server,
}

impl FaultProxy {
    /// Serves on a free loopback port, forwarding to `upstream` (an origin, `http://127.0.0.1:3000`).
    pub async fn start(upstream: &str) -> std::io::Result<FaultProxy> {
        let inner = Arc::new(Inner {
            upstream: upstream.trim_end_matches('/').to_string(),
            http: reqwest::Client::builder()
                .redirect(reqwest::redirect::Policy::none())
                .build()
                .map_err(std::io::Error::other)?,
            next: Mutex::new(Vec::new()),
        });
        let app = Router::new().fallback(forward).with_state(inner.clone());
        let addr: SocketAddr = "127.0.0.1:0".parse().expect("a loopback address");
        let server = serve(app, addr).await?;
        Ok(FaultProxy { inner, server })
    }

    /// Where clients reach the upstream through the proxy.
    pub fn origin(&self) -> String {
        self.server.origin()
    }

    /// Puts `fault` in the next answer (after those already armed).
    pub fn inject(&self, fault: Fault) {
        self.inner.next.lock().expect("not poisoned").push(fault);
    }
}

async fn forward(
    State(inner): State<Arc<Inner>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let fault = {
        let mut next = inner.next.lock().expect("not poisoned");
        (!next.is_empty()).then(|| next.remove(0))
    };
    match fault {
        Some(Fault::NotJson) => {
            return (StatusCode::OK, "<html>maintenance</html>").into_response();
        }
        Some(Fault::ServerError) => {
            return (StatusCode::INTERNAL_SERVER_ERROR, "simulated failure").into_response();
        }
        Some(Fault::Throttled) => {
            return (StatusCode::TOO_MANY_REQUESTS, [("retry-after", "1")], "").into_response();
        }
        None => {}
    }
    let path = uri.path_and_query().map_or("/", |p| p.as_str());
    let mut req = inner
        .http
        .request(method, format!("{}{path}", inner.upstream))
        .body(body);
    for (name, value) in headers.iter() {
        if name != axum::http::header::HOST && name != axum::http::header::CONTENT_LENGTH {
            req = req.header(name, value);
        }
    }
    let answer = match req.send().await {
        Ok(a) => a,
        Err(e) => {
            return (StatusCode::BAD_GATEWAY, format!("upstream: {e}")).into_response();
        }
    };
    let status = answer.status();
    let mut out = HeaderMap::new();
    for (name, value) in answer.headers() {
        if name != axum::http::header::TRANSFER_ENCODING
            && name != axum::http::header::CONTENT_LENGTH
            && name != axum::http::header::CONNECTION
        {
            out.append(name, value.clone());
        }
    }
    let body = answer.bytes().await.unwrap_or_default();
    (status, out, body).into_response()
}
