//! The admin REST API under `/api/v1/admin`: tenants, accounts, icons, lines
//! (with diagnostics and reset), relays, call records (paged, searched, CSV),
//! active calls (and hang-up), operator requests, calls per hour, API tokens,
//! webhooks with their deliveries, and the audit log that every change writes,
//! for two roles (the operator and tenant admins, see [`principal`]). Its OpenAPI
//! document is generated from the handlers' annotations (utoipa) and served at
//! `/api/v1/openapi.json`. Tower layers in front: tracing, a body size limit, a
//! concurrency limit, a timeout, and the token check.

mod accounts;
mod actions;
mod audit;
mod cdrs;
mod error;
mod extract;
mod icons;
mod lines;
mod principal;
mod tenants;
mod tokens;
mod webhooks;

use std::time::Duration;

use axum::Router;
use axum::http::StatusCode;
use tower::limit::ConcurrencyLimitLayer;
use tower_http::timeout::TimeoutLayer;
use tower_http::trace::TraceLayer;
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::openapi::{OpenApi as OpenApiDoc, RefOr, Response, ResponseBuilder};
use utoipa::{Modify, OpenApi};
use utoipa_axum::router::OpenApiRouter;

pub(crate) use error::ErrorBody;

use crate::AppState;

/// Largest request body the admin API reads.
const MAX_BODY_BYTES: usize = 64 * 1024;
/// Admin requests served at once; more wait.
const MAX_CONCURRENT: usize = 64;
/// A request that takes longer is answered 408.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(15);

#[derive(OpenApi)]
#[openapi(
    info(
        title = "offhook admin API",
        description = "Administration of offhook's SQL directory: tenants, accounts, call icons, lines, relays, \
                       call records and API tokens. Every request carries `Authorization: Bearer <token>`; an \
                       operator token sees everything, a tenant admin's token its own tenant only."
    ),
    components(schemas(ErrorBody)),
    tags(
        (name = "tenants", description = "The ISP's customers"),
        (name = "accounts", description = "SIP accounts of a tenant"),
        (name = "icons", description = "Call icons embedded on web pages"),
        (name = "lines", description = "Telephone lines (modems)"),
        (name = "relays", description = "Media relays owning the lines"),
        (name = "calls", description = "Call records, active calls, and hang-up and reset requests"),
        (name = "tokens", description = "API tokens"),
        (name = "webhooks", description = "Billing hooks: signed POSTs of call records, and their deliveries"),
        (name = "audit", description = "Who changed what, and when"),
    )
)]
struct ApiDoc;

/// What every operation shares, added once to the finished document instead of on
/// each handler: bearer security and the error responses (all with [`ErrorBody`]
/// but the timeout's, which has no body).
struct Conventions;

impl Modify for Conventions {
    fn modify(&self, doc: &mut OpenApiDoc) {
        let components = doc.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).build()),
        );
        doc.security = Some(vec![utoipa::openapi::security::SecurityRequirement::new(
            "bearer",
            Vec::<String>::new(),
        )]);
        let error = |description: &str| -> RefOr<Response> {
            ResponseBuilder::new()
                .description(description)
                .content(
                    "application/json",
                    utoipa::openapi::ContentBuilder::new()
                        .schema(Some(utoipa::openapi::Ref::from_schema_name("ErrorBody")))
                        .build(),
                )
                .into()
        };
        let timeout: RefOr<Response> = ResponseBuilder::new()
            .description("The request took too long (no body)")
            .into();
        for item in doc.paths.paths.values_mut() {
            let operations = [
                (&mut item.get, false),
                (&mut item.post, true),
                (&mut item.patch, true),
                (&mut item.delete, false),
            ];
            for (operation, has_body) in operations {
                let Some(operation) = operation else { continue };
                let responses = &mut operation.responses.responses;
                responses
                    .entry("408".to_owned())
                    .or_insert_with(|| timeout.clone());
                let mut add = |status: StatusCode, description: &str| {
                    responses
                        .entry(status.as_u16().to_string())
                        .or_insert_with(|| error(description));
                };
                add(StatusCode::BAD_REQUEST, "The request could not be read");
                add(StatusCode::UNAUTHORIZED, "No API token, or an unknown one");
                add(StatusCode::FORBIDDEN, "Only the operator may do this");
                add(StatusCode::NOT_FOUND, "No such object in the caller's scope");
                add(
                    StatusCode::UNPROCESSABLE_ENTITY,
                    "A field is invalid; nothing was written",
                );
                add(StatusCode::SERVICE_UNAVAILABLE, "The directory is unavailable");
                add(
                    StatusCode::CONFLICT,
                    "A unique name is taken, or the change breaks a rule",
                );
                if has_body {
                    add(StatusCode::PAYLOAD_TOO_LARGE, "The body is too large");
                    add(StatusCode::UNSUPPORTED_MEDIA_TYPE, "The body is not JSON");
                }
            }
        }
    }
}

/// The admin routes (already under `/api/v1/admin`) and their OpenAPI document.
pub(crate) fn router(state: &AppState) -> (Router<AppState>, OpenApiDoc) {
    let (routes, doc) = OpenApiRouter::with_openapi(ApiDoc::openapi())
        .nest(
            "/api/v1/admin",
            OpenApiRouter::new()
                .merge(tenants::routes())
                .merge(accounts::routes())
                .merge(icons::routes())
                .merge(lines::routes())
                .merge(cdrs::routes())
                .merge(actions::routes())
                .merge(tokens::routes())
                .merge(webhooks::routes())
                .merge(audit::routes()),
        )
        .split_for_parts();
    let mut doc = doc;
    Conventions.modify(&mut doc);
    let routes = routes
        .route_layer(axum::middleware::from_fn_with_state(
            state.clone(),
            principal::require_token,
        ))
        .layer(ConcurrencyLimitLayer::new(MAX_CONCURRENT))
        .layer(TimeoutLayer::with_status_code(
            StatusCode::REQUEST_TIMEOUT,
            REQUEST_TIMEOUT,
        ))
        .layer(axum::extract::DefaultBodyLimit::max(MAX_BODY_BYTES))
        .layer(TraceLayer::new_for_http());
    (routes, doc)
}
