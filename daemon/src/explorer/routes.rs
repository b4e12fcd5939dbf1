//! The explorer's routes: each page at its path as HTML, the same data as JSON under `/api`, the
//! search box's `GET /search?q=` (a redirect to the page of what it names), `POST
//! /table/{table}/audit` (starts an audit), `GET /events` (new events as server-sent events:
//! `anchor` for each anchored batch, `event` for the rest) and `GET /health`. Bad input is a 400,
//! what does not exist a 404, a chain or database that cannot be asked a 503 — each with a page
//! or a JSON body that says why.

use super::html;
use super::state::Explorer;
use super::view::{self, ViewError};
use axum::Json;
use axum::Router;
use axum::extract::{MatchedPath, Path, Query, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use maud::Markup;
use serde::{Deserialize, Serialize};
use std::sync::Arc;
use std::time::Instant;

type X = State<Arc<Explorer>>;

/// Every route.
pub fn router(x: Arc<Explorer>) -> Router {
    let mut r = Router::new()
        .route("/", get(home))
        .route("/search", get(search))
        .route("/events", get(events))
        .route("/health", get(|| async { "ok" }))
        .route("/receipt/{table}/{key}/receipt.json", get(receipt_file))
        .route("/table/{table}/audit", post(audit))
        .route("/api/table/{table}/audit", post(audit));
    for prefix in ["", "/api"] {
        r = r
            .route(&format!("{prefix}/identity/{{address}}"), get(identity))
            .route(&format!("{prefix}/name/{{name}}"), get(name))
            .route(&format!("{prefix}/table/{{table}}"), get(table))
            .route(&format!("{prefix}/receipt/{{table}}/{{key}}"), get(receipt))
            .route(&format!("{prefix}/job/{{id}}"), get(job))
            .route(&format!("{prefix}/training/{{id}}"), get(training))
            .route(&format!("{prefix}/tx/{{hash}}"), get(tx));
    }
    r.route("/api/home", get(home)).fallback(not_found).with_state(x)
}

/// A JSON error body.
#[derive(Serialize)]
struct ErrorBody<'a> {
    error: &'a str,
    status: u16,
}

/// A view as JSON (under `/api`) or as its page; an error as either, with its status.
fn respond<T: Serialize>(
    x: &Explorer,
    path: &MatchedPath,
    started: Instant,
    title: impl FnOnce(&T) -> String,
    result: Result<T, ViewError>,
    render: impl FnOnce(&T) -> Markup,
) -> Response {
    let api = path.as_str().starts_with("/api");
    let (status, mut response) = match result {
        Ok(v) if api => (200, Json(&v).into_response()),
        Ok(v) => (200, page(x, &title(&v), render(&v)).into_response()),
        Err(e) => (e.status(), error_response(x, api, &e)),
    };
    let took = started.elapsed().as_secs_f64();
    // The server's time for the page, as browsers' developer tools show it (and the bench reads).
    if let Ok(v) = HeaderValue::from_str(&format!("page;dur={:.2}", took * 1e3)) {
        response.headers_mut().insert("server-timing", v);
    }
    x.metrics
        .requests
        .get_or_create(&vec![("route", path.as_str().to_string()), ("status", status.to_string())])
        .observe(took);
    response
}

fn error_response(x: &Explorer, api: bool, e: &ViewError) -> Response {
    let status = StatusCode::from_u16(e.status()).expect("a valid status");
    let message = e.to_string();
    if api {
        (status, Json(ErrorBody { error: &message, status: e.status() })).into_response()
    } else {
        (status, page(x, "error", html::error(e.status(), &message))).into_response()
    }
}

fn page(x: &Explorer, title: &str, body: Markup) -> Markup {
    let synced = x.index.read().expect("not poisoned").synced_to();
    html::page(title, synced, x.book.chain_id, body)
}

async fn home(State(x): X, path: MatchedPath) -> Response {
    let started = Instant::now();
    let v = view::home(&x);
    respond(&x, &path, started, |_| "deployment".into(), Ok(v), html::home)
}

#[derive(Deserialize)]
struct Q {
    #[serde(default)]
    q: String,
}

async fn search(State(x): X, Query(q): Query<Q>) -> Response {
    match view::search(&x, &q.q) {
        Ok(to) => Redirect::to(&to).into_response(),
        Err(e) => error_response(&x, false, &e),
    }
}

async fn identity(State(x): X, path: MatchedPath, Path(a): Path<String>) -> Response {
    let started = Instant::now();
    let v = view::identity(&x, &a).await;
    respond(&x, &path, started, |v| format!("identity {}", v.offline), v, html::identity)
}

async fn name(State(x): X, path: MatchedPath, Path(n): Path<String>) -> Response {
    let started = Instant::now();
    let v = view::name(&x, &n).await;
    respond(&x, &path, started, |v| v.name.clone(), v, html::name)
}

#[derive(Deserialize)]
struct RootQ {
    root: Option<String>,
}

async fn table(State(x): X, path: MatchedPath, Path(t): Path<String>, Query(q): Query<RootQ>) -> Response {
    let started = Instant::now();
    let v = match q.root.as_deref().map(str::parse) {
        Some(Err(_)) => Err(ViewError::BadInput("root must be 0x and 64 hex digits".into())),
        root => view::table(&x, &t, root.and_then(Result::ok)).await,
    };
    respond(&x, &path, started, |v| v.name.clone().unwrap_or_else(|| v.table_id.to_string()), v, html::table)
}

async fn audit(State(x): X, path: MatchedPath, Path(t): Path<String>) -> Response {
    let api = path.as_str().starts_with("/api");
    match view::start_audit(&x, &t).await {
        Ok(()) if api => (StatusCode::ACCEPTED, Json(serde_json::json!({ "started": t }))).into_response(),
        Ok(()) => Redirect::to(&format!("/table/{t}")).into_response(),
        Err(e) => error_response(&x, api, &e),
    }
}

async fn receipt(State(x): X, path: MatchedPath, Path((t, k)): Path<(String, String)>) -> Response {
    let started = Instant::now();
    let v = view::receipt(&x, &t, &k).await;
    respond(&x, &path, started, |v| format!("row {} of {}", v.key, v.table), v, html::receipt)
}

/// The receipt alone, as a file to check offline (`iotegrity receipt verify FILE`).
async fn receipt_file(State(x): X, Path((t, k)): Path<(String, String)>) -> Response {
    match view::receipt(&x, &t, &k).await {
        Ok(v) => {
            let mut r = Json(&v.receipt).into_response();
            let disposition = format!("attachment; filename=\"{}-{}.receipt.json\"", v.table, v.key);
            if let Ok(value) = HeaderValue::from_str(&disposition) {
                r.headers_mut().insert(header::CONTENT_DISPOSITION, value);
            }
            r
        }
        Err(e) => error_response(&x, true, &e),
    }
}

async fn job(State(x): X, path: MatchedPath, Path(id): Path<String>) -> Response {
    let started = Instant::now();
    let v = view::job(&x, &id).await;
    respond(&x, &path, started, |v| format!("job {}", v.id), v, html::job)
}

async fn training(State(x): X, path: MatchedPath, Path(id): Path<String>) -> Response {
    let started = Instant::now();
    let v = view::training(&x, &id).await;
    respond(&x, &path, started, |v| format!("training {}", v.id), v, html::training)
}

async fn tx(State(x): X, path: MatchedPath, Path(h): Path<String>) -> Response {
    let started = Instant::now();
    let v = view::transaction(&x, &h);
    respond(&x, &path, started, |_| format!("transaction {h}"), v, |list| html::transaction(&h, list))
}

async fn not_found(State(x): X, uri: axum::http::Uri) -> Response {
    let e = ViewError::NotFound(format!("there is no page at {}", uri.path()));
    error_response(&x, uri.path().starts_with("/api"), &e)
}

/// New events as the index adds them: `anchor` for an anchored batch, `event` for the rest; the
/// stream ends when the explorer stops.
async fn events(State(x): X) -> impl IntoResponse {
    let (news, stopped) = (x.news.subscribe(), x.stopped.clone());
    let stream = futures_util::stream::unfold((news, stopped), |(mut news, mut stopped)| async move {
        loop {
            tokio::select! {
                _ = stopped.changed() => return None,
                got = news.recv() => match got {
                    Ok(e) => {
                        let kind = if e.event.event == "RootHashStored" { "anchor" } else { "event" };
                        let data = serde_json::to_string(&*e).unwrap_or_default();
                        return Some((Ok::<_, std::convert::Infallible>(Event::default().event(kind).data(data)), (news, stopped)));
                    }
                    Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => continue,
                    Err(tokio::sync::broadcast::error::RecvError::Closed) => return None,
                },
            }
        }
    });
    Sse::new(stream).keep_alive(KeepAlive::default())
}
