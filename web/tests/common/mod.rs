//! Shared by the admin API tests: the real router on one test database, called
//! with `oneshot` as a client would, with the reply read back as JSON.
#![allow(dead_code, reason = "each test file uses a part of it")]

use axum::body::Body;
use axum::http::{Method, Request, StatusCode};
use http_body_util::BodyExt as _;
use offhook_directory::{ApiToken, Directory, NewApiToken, NewTenant};
use offhook_web::{AppState, router};
use serde_json::Value;
use tower::ServiceExt as _;

/// The router of one test database, and a way to call it.
pub(crate) struct Api {
    pub state: AppState,
}

/// A response: status, body as JSON (or the text as a JSON string), content type.
pub(crate) struct Reply {
    pub status: StatusCode,
    pub body: Value,
    pub content_type: String,
}

impl Api {
    pub(crate) async fn new(directory: &Directory) -> Self {
        let state = AppState::new(directory.clone(), "ws://127.0.0.1:5066".into())
            .await
            .unwrap();
        Self { state }
    }

    /// The router with `state` (other settings).
    pub(crate) fn with_state(state: AppState) -> Self {
        Self { state }
    }

    /// POSTs a JSON body (or none).
    pub(crate) async fn post(&self, path: &str, token: &str, body: Option<Value>) -> Reply {
        self.call(Method::POST, path, Some(token), body).await
    }

    pub(crate) async fn call(
        &self,
        method: Method,
        path: &str,
        token: Option<&str>,
        body: Option<Value>,
    ) -> Reply {
        let mut request = Request::builder().method(method).uri(path);
        if let Some(token) = token {
            request = request.header("Authorization", format!("Bearer {token}"));
        }
        let request = match body {
            Some(body) => request
                .header("Content-Type", "application/json")
                .body(Body::from(body.to_string())),
            None => request.body(Body::empty()),
        }
        .unwrap();
        let response = router(self.state.clone()).oneshot(request).await.unwrap();
        let status = response.status();
        let content_type = response
            .headers()
            .get("content-type")
            .map(|v| v.to_str().unwrap().to_owned())
            .unwrap_or_default();
        let bytes = response.into_body().collect().await.unwrap().to_bytes();
        let text = String::from_utf8_lossy(&bytes).into_owned();
        let body = serde_json::from_str(&text).unwrap_or(Value::String(text));
        Reply {
            status,
            body,
            content_type,
        }
    }

    pub(crate) async fn get(&self, path: &str, token: &str) -> Reply {
        self.call(Method::GET, path, Some(token), None).await
    }
}

/// The ids of a list, or of a page's `items`.
pub(crate) fn ids(reply: &Reply) -> Vec<String> {
    let list = match reply.body.get("items") {
        Some(items) => items,
        None => &reply.body,
    };
    list.as_array()
        .unwrap_or_else(|| panic!("a list: {}", reply.body))
        .iter()
        .map(|o| o["id"].as_str().unwrap().to_owned())
        .collect()
}

/// Tenants `names` (domain `NAME.example`), an operator token (`ops`) and a
/// tenant admin's token for each (`NAME admin`): the operator's secret, and each
/// admin's token with its secret, in the order of `names`.
pub(crate) async fn tenants_with_admins(d: &Directory, names: &[&str]) -> (String, Vec<(ApiToken, String)>) {
    let token = |name: String, tenant: Option<&str>| NewApiToken {
        name,
        tenant: tenant.map(Into::into),
    };
    let (_, operator) = d.create_api_token(token("ops".into(), None)).await.unwrap();
    let mut admins = Vec::new();
    for name in names {
        d.create_tenant(NewTenant {
            name: (*name).into(),
            sip_domain: format!("{name}.example"),
        })
        .await
        .unwrap();
        let admin = token(format!("{name} admin"), Some(name));
        admins.push(d.create_api_token(admin).await.unwrap());
    }
    (operator, admins)
}
