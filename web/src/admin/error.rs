//! Errors of the admin API and how they map to HTTP, in one place: the caller's
//! input (400 unreadable, 422 with the field and reason), a missing or invisible
//! object (404: a tenant admin never learns that another tenant's object exists),
//! a clash (409), no or a bad token (401), a role that may not do this (403), and
//! the database failing (500 or 503, logged; the SQL text never leaves the server).

use axum::Json;
use axum::extract::rejection::{JsonRejection, PathRejection, QueryRejection};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use offhook_directory::DirectoryError;
use serde::Serialize;
use utoipa::ToSchema;

/// The body of every error response.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct ErrorBody {
    /// What went wrong, in words an administrator can act on.
    pub error: String,
    /// The field at fault, for validation errors (422).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub field: Option<String>,
    /// Why the field was refused, for validation errors (422).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

/// Why an admin request failed.
#[derive(Debug)]
pub(super) enum ApiError {
    /// The directory refused or failed.
    Directory(DirectoryError),
    /// No token, or one the directory does not know.
    Unauthorized,
    /// The token's role may not do this.
    Forbidden(&'static str),
    /// The request could not be read (bad JSON syntax, not JSON, too large, bad
    /// query or path), with the status axum gives it (400, 413, 415).
    Rejected(StatusCode, String),
    /// The request was read but a field is wrong.
    Unprocessable {
        /// The field at fault.
        field: String,
        /// Why.
        reason: String,
    },
}

/// Shorthand for handler results.
pub(super) type ApiResult<T> = Result<T, ApiError>;

impl From<DirectoryError> for ApiError {
    fn from(err: DirectoryError) -> Self {
        Self::Directory(err)
    }
}

impl From<JsonRejection> for ApiError {
    fn from(rejection: JsonRejection) -> Self {
        match rejection {
            JsonRejection::JsonDataError(err) => {
                let (field, reason) = culprit(&err.body_text());
                Self::Unprocessable { field, reason }
            }
            JsonRejection::MissingJsonContentType(_) => Self::Rejected(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "the body must be JSON (Content-Type: application/json)".to_owned(),
            ),
            other => Self::Rejected(other.status(), other.body_text()),
        }
    }
}

/// The field and reason in axum's text for a body that does not fit the type:
/// "Failed to deserialize …: PATH: REASON" or "…: missing field `NAME` at …".
fn culprit(text: &str) -> (String, String) {
    let detail = text.split_once(": ").map_or(text, |(_, d)| d);
    if let Some((path, reason)) = detail.split_once(": ")
        && !path.contains(' ')
    {
        return (path.to_owned(), reason.to_owned());
    }
    let field = detail
        .split('`')
        .nth(1)
        .filter(|_| detail.starts_with("missing field") || detail.starts_with("unknown field"))
        .unwrap_or("body");
    (field.to_owned(), detail.to_owned())
}

impl From<QueryRejection> for ApiError {
    fn from(rejection: QueryRejection) -> Self {
        Self::Rejected(rejection.status(), rejection.body_text())
    }
}

impl From<PathRejection> for ApiError {
    fn from(rejection: PathRejection) -> Self {
        Self::Rejected(rejection.status(), rejection.body_text())
    }
}

fn body(status: StatusCode, error: String, field: Option<String>, reason: Option<String>) -> Response {
    (status, Json(ErrorBody { error, field, reason })).into_response()
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        match self {
            Self::Directory(DirectoryError::Invalid { field, reason }) => body(
                StatusCode::UNPROCESSABLE_ENTITY,
                format!("invalid {field}: {reason}"),
                Some(field.to_owned()),
                Some(reason),
            ),
            Self::Directory(err @ DirectoryError::NotFound { .. }) => {
                body(StatusCode::NOT_FOUND, err.to_string(), None, None)
            }
            Self::Directory(DirectoryError::Conflict(text)) => body(StatusCode::CONFLICT, text, None, None),
            Self::Directory(err) => {
                tracing::error!(%err, "admin API: directory failed");
                body(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "the directory is unavailable; try again".to_owned(),
                    None,
                    None,
                )
            }
            Self::Unauthorized => {
                let mut response = body(
                    StatusCode::UNAUTHORIZED,
                    "an API token is required: Authorization: Bearer ohk_…".to_owned(),
                    None,
                    None,
                );
                response
                    .headers_mut()
                    .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
                response
            }
            Self::Forbidden(what) => body(
                StatusCode::FORBIDDEN,
                format!("only the operator may {what}"),
                None,
                None,
            ),
            Self::Rejected(status, text) => body(status, text, None, None),
            Self::Unprocessable { field, reason } => body(
                StatusCode::UNPROCESSABLE_ENTITY,
                format!("invalid {field}: {reason}"),
                Some(field),
                Some(reason),
            ),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::culprit;

    #[test]
    fn names_the_field_in_axum_texts() {
        let prefix = "Failed to deserialize the JSON body into the target type";
        assert_eq!(
            culprit(&format!(
                "{prefix}: calls_per_minute: invalid type: string \"x\", expected i64 at line 1 column 9"
            ))
            .0,
            "calls_per_minute"
        );
        assert_eq!(
            culprit(&format!("{prefix}: missing field `number` at line 1 column 2")).0,
            "number"
        );
        assert_eq!(
            culprit(&format!(
                "{prefix}: unknown field `colour`, expected one of `label` at line 1 column 9"
            ))
            .0,
            "colour"
        );
        assert_eq!(
            culprit(&format!("{prefix}: invalid type: integer `1`, expected a map")).0,
            "body"
        );
    }
}
