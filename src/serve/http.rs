//! The HTTP side of `tcpq serve`, with hyper on tokio: `/metrics` in the
//! format the client asks for, `/-/healthy` and `/-/ready` (Prometheus's
//! own spellings).
use std::convert::Infallible;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use http_body_util::Full;
use hyper::body::Bytes;
use hyper::header::{HeaderValue, ACCEPT, CONTENT_TYPE};
use hyper::{Method, Request, Response, StatusCode};

use super::collect::{self, Scrape};
use super::reload::{Reloads, ServedSet};

/// The Prometheus text format's content type.
pub const TEXT_0_0_4: &str = "text/plain; version=0.0.4; charset=utf-8";
/// OpenMetrics' content type.
pub const OPENMETRICS: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// What the handlers share: what is served (its clauses once every probe
/// of the first set is attached), replaced whole by a reload.
pub struct State {
    pub served: Mutex<ServedSet>,
    pub reloads: Mutex<Reloads>,
    /// How long the previous scrape took.
    pub last_scrape: Mutex<Option<Duration>>,
}

/// Whether `accept` (an `Accept` header) prefers OpenMetrics 1.0.0 to the
/// text format 0.0.4: the media range with the highest `q` among those
/// tcpq can serve wins, the first one on a tie; no header, or none that
/// applies, is the text format.
pub fn wants_openmetrics(accept: Option<&str>) -> bool {
    let Some(accept) = accept else {
        return false;
    };
    let mut best: Option<(f32, bool)> = None;
    for range in accept.split(',') {
        let mut parts = range.split(';').map(str::trim);
        let media = parts.next().unwrap_or("").to_ascii_lowercase();
        let mut q = 1.0f32;
        let mut version = None;
        for p in parts {
            if let Some((k, v)) = p.split_once('=') {
                match k.trim().to_ascii_lowercase().as_str() {
                    "q" => q = v.trim().parse().unwrap_or(0.0),
                    "version" => version = Some(v.trim().to_string()),
                    _ => {}
                }
            }
        }
        let openmetrics = match media.as_str() {
            "application/openmetrics-text" => match version.as_deref() {
                None | Some("1.0.0") => true,
                Some(_) => continue,
            },
            "text/plain" => match version.as_deref() {
                None | Some("0.0.4") => false,
                Some(_) => continue,
            },
            "text/*" | "*/*" => false,
            _ => continue,
        };
        if q > 0.0 && best.is_none_or(|(b, _)| q > b) {
            best = Some((q, openmetrics));
        }
    }
    best.is_some_and(|(_, om)| om)
}

fn reply(
    status: StatusCode,
    content_type: &'static str,
    body: impl Into<Bytes>,
) -> Response<Full<Bytes>> {
    let mut r = Response::new(Full::new(body.into()));
    *r.status_mut() = status;
    r.headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static(content_type));
    r
}

/// One request.
pub async fn handle(
    req: Request<hyper::body::Incoming>,
    state: Arc<State>,
) -> Result<Response<Full<Bytes>>, Infallible> {
    const PLAIN: &str = "text/plain; charset=utf-8";
    if req.method() != Method::GET && req.method() != Method::HEAD {
        return Ok(reply(
            StatusCode::METHOD_NOT_ALLOWED,
            PLAIN,
            "GET or HEAD\n",
        ));
    }
    // Ready once the first set is attached, and through every reload
    // (the previous set serves until the next one is in place).
    let ready = || {
        state
            .served
            .lock()
            .map(|s| s.clauses.is_some())
            .unwrap_or(false)
    };
    Ok(match req.uri().path() {
        "/-/healthy" => reply(StatusCode::OK, PLAIN, "tcpq is healthy.\n"),
        "/-/ready" => match ready() {
            true => reply(StatusCode::OK, PLAIN, "tcpq is ready.\n"),
            false => reply(
                StatusCode::SERVICE_UNAVAILABLE,
                PLAIN,
                "tcpq is attaching its probes.\n",
            ),
        },
        "/metrics" => {
            let om = wants_openmetrics(req.headers().get(ACCEPT).and_then(|v| v.to_str().ok()));
            // Reading the maps is a few system calls per clause: off the
            // thread that answers /-/healthy.
            let st = state.clone();
            let body = tokio::task::spawn_blocking(move || scrape(&st, om)).await;
            match body {
                Ok(Ok(text)) => reply(
                    StatusCode::OK,
                    if om { OPENMETRICS } else { TEXT_0_0_4 },
                    text,
                ),
                Ok(Err(e)) => reply(StatusCode::INTERNAL_SERVER_ERROR, PLAIN, format!("{e}\n")),
                Err(e) => reply(StatusCode::INTERNAL_SERVER_ERROR, PLAIN, format!("{e}\n")),
            }
        }
        "/" => reply(
            StatusCode::OK,
            "text/html; charset=utf-8",
            "<html><body><a href=\"/metrics\">/metrics</a></body></html>\n",
        ),
        _ => reply(StatusCode::NOT_FOUND, PLAIN, "not found: try /metrics\n"),
    })
}

/// Read the maps now and encode them.
fn scrape(state: &State, openmetrics: bool) -> Result<String, String> {
    let t = Instant::now();
    let last = *state.last_scrape.lock().map_err(|e| e.to_string())?;
    let reloads = *state.reloads.lock().map_err(|e| e.to_string())?;
    let mut guard = state.served.lock().map_err(|e| e.to_string())?;
    let served = &mut *guard;
    let s = Scrape::read(
        &served.exported,
        served.clauses.as_deref_mut(),
        reloads,
        last,
    )
    .map_err(|e| e.to_string())?;
    drop(guard);
    let text = s.encode(openmetrics).map_err(|e| e.to_string())?;
    if let Ok(mut l) = state.last_scrape.lock() {
        *l = Some(t.elapsed());
    }
    Ok(text)
}

/// Idle expiry every `every` until the task is dropped ([`collect::expire`],
/// off the runtime's thread like a scrape). A failure is said once, not at
/// every tick.
pub async fn expire_every(state: Arc<State>, every: Duration) {
    let mut timer = tokio::time::interval(every);
    timer.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut said = false;
    loop {
        timer.tick().await;
        let st = state.clone();
        let r = tokio::task::spawn_blocking(move || -> Result<usize, String> {
            let mut served = st.served.lock().map_err(|e| e.to_string())?;
            match served.clauses.as_deref_mut() {
                Some(c) => collect::expire(c).map_err(|e| e.to_string()),
                None => Ok(0),
            }
        })
        .await;
        let err = match r {
            Ok(Ok(_)) => continue,
            Ok(Err(e)) => e,
            Err(e) => e.to_string(),
        };
        if !said {
            eprintln!("tcpq: warning: idle series expiry failed: {err}");
            said = true;
        }
    }
}

/// Accept connections until the task is dropped.
pub async fn serve(listener: tokio::net::TcpListener, state: Arc<State>) {
    loop {
        let Ok((stream, _)) = listener.accept().await else {
            // EMFILE and the like: wait a little rather than spin.
            tokio::time::sleep(Duration::from_millis(50)).await;
            continue;
        };
        let io = hyper_util::rt::TokioIo::new(stream);
        let state = state.clone();
        tokio::spawn(async move {
            let service = hyper::service::service_fn(move |req| handle(req, state.clone()));
            let _ = hyper::server::conn::http1::Builder::new()
                .serve_connection(io, service)
                .await;
        });
    }
}

#[cfg(test)]
mod tests {
    use super::wants_openmetrics;

    #[test]
    fn content_negotiation_follows_the_accept_header() {
        // Prometheus 2.42's scrape header.
        let prom = "application/openmetrics-text;version=1.0.0,application/openmetrics-text;version=0.0.1;q=0.75,text/plain;version=0.0.4;q=0.5,*/*;q=0.1";
        assert!(wants_openmetrics(Some(prom)));
        assert!(wants_openmetrics(Some("application/openmetrics-text")));
        assert!(!wants_openmetrics(None));
        assert!(!wants_openmetrics(Some("*/*")));
        assert!(!wants_openmetrics(Some("text/plain;version=0.0.4")));
        assert!(!wants_openmetrics(Some(
            "text/plain;version=0.0.4,application/openmetrics-text;q=0.5"
        )));
        assert!(wants_openmetrics(Some(
            "text/plain;q=0.2, application/openmetrics-text; version=1.0.0; q=0.9"
        )));
        // A version tcpq does not write is not chosen.
        assert!(!wants_openmetrics(Some(
            "application/openmetrics-text;version=2.0.0"
        )));
        assert!(!wants_openmetrics(Some("application/openmetrics-text;q=0")));
    }
}
