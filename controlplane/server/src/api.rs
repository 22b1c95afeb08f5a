//! The HTTP API under `/api/v1` (axum): jobs, their events and reports, snapshots, health.
//! Every answer is JSON (reports excepted); every error is `{"error": "...", "field": ...}`.
//! API.md beside this crate documents it with examples.

use std::sync::Arc;

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::rejection::BytesRejection;
use axum::extract::{DefaultBodyLimit, Path, Query, Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde::Deserialize;

use crate::auth::{Tokens, Verdict, judge};
use crate::job::{Job, JobState};
use crate::report::ReportFormat;
use crate::scheduler::{JobError, Scheduler};
use crate::spec::JobSpec;

/// Most jobs one list answer holds.
const MAX_LIST: usize = 10_000;

/// What the handlers share.
#[derive(Clone, Debug)]
pub struct AppState {
    /// The scheduler (and through it the store).
    pub scheduler: Arc<Scheduler>,
    /// The accepted tokens.
    pub tokens: Arc<Tokens>,
}

/// What the connection a request came on proved: set by the server for each connection.
#[derive(Clone, Copy, Debug, Default)]
pub struct Peer {
    /// Whether the TLS handshake verified a client certificate.
    pub client_cert: bool,
}

/// An error answer: a status and `{"error": ..., "field": ...}`.
#[derive(Debug)]
pub struct ApiError {
    status: StatusCode,
    error: String,
    field: Option<String>,
}

impl ApiError {
    fn new(status: StatusCode, error: impl Into<String>) -> Self {
        ApiError {
            status,
            error: error.into(),
            field: None,
        }
    }

    fn field(status: StatusCode, field: &str, error: impl Into<String>) -> Self {
        ApiError {
            status,
            error: error.into(),
            field: Some(field.to_owned()),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut body = serde_json::json!({ "error": self.error });
        if let Some(field) = self.field {
            body["field"] = serde_json::Value::String(field);
        }
        let mut response = (self.status, axum::Json(body)).into_response();
        if self.status == StatusCode::UNAUTHORIZED {
            response.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static("Bearer realm=\"tapline\""),
            );
        }
        response
    }
}

impl From<JobError> for ApiError {
    fn from(e: JobError) -> Self {
        match e {
            JobError::Spec(spec) => ApiError {
                status: StatusCode::BAD_REQUEST,
                error: spec.message,
                field: spec.field,
            },
            JobError::NotFound(_) => ApiError::new(StatusCode::NOT_FOUND, e.to_string()),
            JobError::Ended { .. } => ApiError::new(StatusCode::CONFLICT, e.to_string()),
            JobError::ShuttingDown => ApiError::new(StatusCode::SERVICE_UNAVAILABLE, e.to_string()),
            JobError::Server(inner) => {
                tracing::error!(error = %inner, "internal error");
                ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, inner.to_string())
            }
        }
    }
}

impl From<crate::error::ServerError> for ApiError {
    fn from(e: crate::error::ServerError) -> Self {
        JobError::Server(e).into()
    }
}

/// The API's routes; `max_body` bounds request bodies.
pub fn router(state: AppState, max_body: usize) -> Router {
    let protected = Router::new()
        .route("/api/v1/jobs", post(submit).get(list))
        .route("/api/v1/jobs/{id}", get(show).delete(cancel))
        .route("/api/v1/jobs/{id}/cancel", post(cancel))
        .route("/api/v1/jobs/{id}/events", get(crate::events::stream))
        .route("/api/v1/jobs/{id}/report", get(report))
        .route("/api/v1/snapshots", get(snapshots))
        .fallback(not_found)
        .layer(middleware::from_fn_with_state(state.clone(), authenticate));
    Router::new()
        .route("/api/v1/health", get(health))
        .merge(protected)
        .layer(DefaultBodyLimit::max(max_body))
        .with_state(state)
}

async fn authenticate(State(state): State<AppState>, request: Request, next: Next) -> Response {
    let client_cert = request
        .extensions()
        .get::<Peer>()
        .is_some_and(|p| p.client_cert);
    let authorization = request
        .headers()
        .get(header::AUTHORIZATION)
        .map(HeaderValue::as_bytes);
    match judge(&state.tokens, authorization, client_cert) {
        Verdict::Allowed => next.run(request).await,
        Verdict::Missing(why) => ApiError::new(StatusCode::UNAUTHORIZED, why).into_response(),
        Verdict::Refused => {
            ApiError::new(StatusCode::FORBIDDEN, "the bearer token is not accepted").into_response()
        }
    }
}

async fn health() -> axum::Json<serde_json::Value> {
    axum::Json(serde_json::json!({
        "status": "ok",
        "version": env!("CARGO_PKG_VERSION"),
    }))
}

async fn not_found(request: Request) -> ApiError {
    ApiError::new(
        StatusCode::NOT_FOUND,
        format!(
            "no such endpoint: {} {}",
            request.method(),
            request.uri().path()
        ),
    )
}

/// Parses a job id from the path.
pub(crate) fn job_id(text: &str) -> Result<u64, ApiError> {
    text.parse::<u64>().map_err(|_| {
        ApiError::field(
            StatusCode::BAD_REQUEST,
            "id",
            format!("{text:?} is not a job id (a positive number)"),
        )
    })
}

async fn submit(
    State(state): State<AppState>,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, ApiError> {
    let body = body.map_err(|e| ApiError::new(e.status(), e.body_text()))?;
    let spec = JobSpec::from_json(&body).map_err(|e| ApiError {
        status: StatusCode::BAD_REQUEST,
        error: e.message,
        field: e.field,
    })?;
    let job = state.scheduler.submit(&spec)?;
    let location = format!("/api/v1/jobs/{}", job.id);
    let mut response = (StatusCode::CREATED, axum::Json(job)).into_response();
    if let Ok(value) = HeaderValue::from_str(&location) {
        response.headers_mut().insert(header::LOCATION, value);
    }
    Ok(response)
}

#[derive(Debug, Deserialize)]
struct ListQuery {
    state: Option<String>,
    limit: Option<String>,
}

async fn list(
    State(state): State<AppState>,
    Query(query): Query<ListQuery>,
) -> Result<axum::Json<serde_json::Value>, ApiError> {
    let filter = match query.state.as_deref() {
        None | Some("") => None,
        Some(text) => Some(
            text.parse::<JobState>()
                .map_err(|e| ApiError::field(StatusCode::BAD_REQUEST, "state", e))?,
        ),
    };
    let limit = match query.limit.as_deref() {
        None => MAX_LIST,
        Some(text) => text
            .parse::<usize>()
            .ok()
            .filter(|n| (1..=MAX_LIST).contains(n))
            .ok_or_else(|| {
                ApiError::field(
                    StatusCode::BAD_REQUEST,
                    "limit",
                    format!("{text:?}: expected a number from 1 to {MAX_LIST}"),
                )
            })?,
    };
    let jobs: Vec<Job> = state.scheduler.store().list(filter, limit)?;
    Ok(axum::Json(serde_json::json!({ "jobs": jobs })))
}

async fn show(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<axum::Json<Job>, ApiError> {
    let id = job_id(&id)?;
    let stored = state
        .scheduler
        .store()
        .job(id)?
        .ok_or(JobError::NotFound(id))?;
    Ok(axum::Json(stored.job))
}

async fn cancel(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<(StatusCode, axum::Json<Job>), ApiError> {
    let id = job_id(&id)?;
    let job = state.scheduler.cancel(id)?;
    Ok((StatusCode::ACCEPTED, axum::Json(job)))
}

#[derive(Debug, Deserialize)]
struct ReportQuery {
    format: Option<String>,
}

async fn report(
    State(state): State<AppState>,
    Path(id): Path<String>,
    Query(query): Query<ReportQuery>,
) -> Result<Response, ApiError> {
    let id = job_id(&id)?;
    let format = ReportFormat::parse(query.format.as_deref().unwrap_or("json"))
        .map_err(|e| ApiError::field(StatusCode::BAD_REQUEST, "format", e))?;
    let stored = state
        .scheduler
        .store()
        .job(id)?
        .ok_or(JobError::NotFound(id))?;
    let missing = || {
        let when = if stored.job.state.is_final() {
            format!("the job ended {} without writing it", stored.job.state)
        } else {
            format!("not written yet: the job is {}", stored.job.state)
        };
        ApiError::new(
            StatusCode::NOT_FOUND,
            format!("job {id} has no {} report: {when}", format.name()),
        )
    };
    let Some(dir) = stored.dir.as_deref() else {
        return Err(missing());
    };
    let path = format.path(std::path::Path::new(dir));
    let bytes = match tokio::fs::read(&path).await {
        Ok(bytes) => bytes,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Err(missing()),
        Err(e) => {
            return Err(ApiError::new(
                StatusCode::INTERNAL_SERVER_ERROR,
                format!("{}: {e}", path.display()),
            ));
        }
    };
    let mut headers = HeaderMap::new();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static(format.content_type()),
    );
    Ok((headers, Body::from(bytes)).into_response())
}

async fn snapshots(State(state): State<AppState>) -> axum::Json<serde_json::Value> {
    let dir = state.scheduler.snapshots().to_path_buf();
    let list = tokio::task::spawn_blocking(move || crate::snapshots::list(&dir))
        .await
        .unwrap_or_default();
    axum::Json(serde_json::json!({ "snapshots": list }))
}
