//! Request extractors of the admin API whose rejections are [`ApiError`]s, so a
//! body or query that does not fit gets the same JSON error shape (400/415/422)
//! as every other refusal, instead of axum's plain-text defaults.

use axum::extract::{FromRequest, FromRequestParts};

use super::error::ApiError;

/// A JSON body (`Content-Type: application/json`).
#[derive(Debug, FromRequest)]
#[from_request(via(axum::Json), rejection(ApiError))]
pub(super) struct ApiJson<T>(pub T);

/// Query parameters.
#[derive(Debug, FromRequestParts)]
#[from_request(via(axum::extract::Query), rejection(ApiError))]
pub(super) struct ApiQuery<T>(pub T);

/// Path parameters.
#[derive(Debug, FromRequestParts)]
#[from_request(via(axum::extract::Path), rejection(ApiError))]
pub(super) struct ApiPath<T>(pub T);
