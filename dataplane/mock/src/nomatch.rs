//! The answer to a request nothing recorded matches: a JSON body that names the request, where
//! the matcher looked, and the closest recorded requests with their scores.
//!
//! ```json
//! {"error":"tapline mock: no recorded response matches this request",
//!  "request":{"method":"GET","target":"/nope","host":"users:8080","body_len":0},
//!  "scope":"users:8080","min_score":0.6,
//!  "closest":[{"pair":"1f…","method":"GET","target":"/users/1","host":"users:8080",
//!              "score":0.41,"path":0.5,"query":1.0,"headers":0.2,"body":1.0,"same_method":true}]}
//! ```

use serde_json::{Value, json};

use crate::index::{Candidate, Index, Request, Scope};
use crate::recorded::header;

/// Status of a no-match answer by default: outside what real servers send, so it is never
/// mistaken for a recorded answer.
pub const NO_MATCH_STATUS: u16 = 599;
/// Its reason phrase.
pub const NO_MATCH_REASON: &str = "Tapline Mock No Match";

/// The JSON body describing why `request` got no match.
pub fn body(index: &Index, request: &Request<'_>, scope: Scope, candidates: &[Candidate]) -> Value {
    let round = |x: f64| (x * 1000.0).round() / 1000.0;
    let closest: Vec<Value> = candidates
        .iter()
        .filter_map(|c| {
            let r = index.recorded().get(c.recorded)?;
            Some(json!({
                "pair": r.id_hex(),
                "method": r.method,
                "target": String::from_utf8_lossy(&r.target),
                "host": header(&r.headers, "host").map(String::from_utf8_lossy),
                "server": r.server.to_string(),
                "score": round(c.score.total),
                "path": round(c.score.path),
                "query": round(c.score.query),
                "headers": round(c.score.headers),
                "body": round(c.score.body),
                "same_method": c.same_method,
            }))
        })
        .collect();
    json!({
        "error": "tapline mock: no recorded response matches this request",
        "request": {
            "method": request.method,
            "target": String::from_utf8_lossy(request.target),
            "host": request.host().map(String::from_utf8_lossy),
            "body_len": request.body.len(),
        },
        "scope": index.scope_name(scope),
        "min_score": index.config().min_score,
        "closest": closest,
    })
}

/// One line for the log: the request and its best candidate.
pub fn summary(index: &Index, request: &Request<'_>, candidates: &[Candidate]) -> String {
    let best = candidates.first().and_then(|c| {
        let r = index.recorded().get(c.recorded)?;
        Some(format!(
            "closest {} {} (score {:.2})",
            r.method,
            String::from_utf8_lossy(&r.target),
            c.score.total
        ))
    });
    format!(
        "{} {}{}: {}",
        request.method,
        String::from_utf8_lossy(request.target),
        request
            .host()
            .map(|h| format!(" (Host {})", String::from_utf8_lossy(h)))
            .unwrap_or_default(),
        best.unwrap_or_else(|| "no candidate".to_owned())
    )
}
