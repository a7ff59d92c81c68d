//! The registrar (RFC 3261 s10.3): REGISTER for an account of the tenant that owns
//! the Request-URI's domain, digest-authenticated (401 challenges, `stale=true`
//! on an old nonce), bindings added, refreshed, removed (`Expires: 0`, `*`) and
//! stored in the directory so that every node sees them, with the flow they came
//! over (NAT source, WebSocket connection).

use offhook_directory::{DirectoryError, Registration};

use super::auth_check::{Authenticated, authenticate};
use super::node::Node;
use super::now_ms;
use offhook_sip::message::{NameAddr, Request};
use offhook_sip::transaction::ServerKey;
use offhook_sip::transport::Flow;

/// Default expiry when the client names none (RFC 3261 s10.2.1.1).
const DEFAULT_EXPIRES: u32 = 3600;

pub(crate) async fn register(node: &Node, key: &ServerKey, request: &Request, flow: &Flow) {
    let reply = |status: u16, reason: &str| request.response(status, reason, Some("reg"));
    let Some(domain) = request.request_uri().map(|u| u.host) else {
        return node.ctx.respond(key, reply(400, "Bad Request-URI"));
    };
    let tenant = match node
        .lookups
        .tenant_by_domain(std::time::Instant::now(), &domain)
        .await
    {
        Ok(tenant) => tenant,
        Err(DirectoryError::NotFound { .. }) => return node.ctx.respond(key, reply(404, "Unknown domain")),
        Err(err) => {
            tracing::error!(%err, "registrar: directory unavailable");
            return node.ctx.respond(key, reply(500, "Directory unavailable"));
        }
    };
    let account = match authenticate(node, key, request, &tenant, false).await {
        Authenticated::Account(account) => account,
        Authenticated::Answered => return,
    };
    let Some(aor) = request
        .to()
        .and_then(|to| to.parsed_uri())
        .and_then(|u| u.user_unescaped())
    else {
        return node.ctx.respond(key, reply(400, "Bad To"));
    };
    if aor != account.username {
        return node
            .ctx
            .respond(key, reply(403, "Credentials do not match the address of record"));
    }
    let header_expires = request
        .headers
        .get("Expires")
        .and_then(|e| e.trim().parse::<u32>().ok());
    let contacts = request.headers.get_all("Contact");
    let now = now_ms();
    if contacts.len() == 1 && contacts[0].trim() == "*" {
        if header_expires != Some(0) {
            return node
                .ctx
                .respond(key, reply(400, "Wildcard Contact needs Expires: 0"));
        }
        if let Err(err) = node.directory.remove_registration(&tenant.id, &aor, None).await {
            tracing::error!(%err, "registrar: cannot remove bindings");
            return node.ctx.respond(key, reply(500, "Directory unavailable"));
        }
        return node.ctx.respond(key, reply(200, "OK"));
    }
    let call_id = request.call_id().to_owned();
    let cseq = i64::from(request.cseq().map_or(0, |c| c.number));
    for value in contacts {
        let Ok(contact) = NameAddr::parse(value) else {
            return node.ctx.respond(key, reply(400, "Bad Contact"));
        };
        let expires = contact
            .param("expires")
            .and_then(|e| e.parse().ok())
            .or(header_expires)
            .unwrap_or(DEFAULT_EXPIRES);
        if expires != 0 && expires < node.config.min_expires_s {
            let mut response = reply(423, "Interval Too Brief");
            response
                .headers
                .push("Min-Expires", &node.config.min_expires_s.to_string());
            return node.ctx.respond(key, response);
        }
        let result = if expires == 0 {
            node.directory
                .remove_registration(&tenant.id, &aor, Some(&contact.uri))
                .await
        } else {
            let expires = expires.min(node.config.max_expires_s);
            let registration = Registration {
                id: String::new(),
                tenant_id: tenant.id.clone(),
                aor: aor.clone(),
                contact_user: contact
                    .parsed_uri()
                    .and_then(|u| u.user_unescaped())
                    .unwrap_or_default(),
                contact: contact.uri.clone(),
                instance: contact
                    .param("+sip.instance")
                    .unwrap_or("")
                    .trim_matches('"')
                    .to_owned(),
                transport: flow.kind.name().to_owned(),
                source: flow.remote.to_string(),
                node: node.config.node_id.clone(),
                connection: flow.conn.map(|c| c.to_string()).unwrap_or_default(),
                call_id: call_id.clone(),
                cseq,
                expires_at: now + i64::from(expires) * 1000,
                updated_at: now,
            };
            node.directory.upsert_registration(registration).await.map(|_| ())
        };
        if let Err(err) = result {
            tracing::error!(%err, "registrar: cannot store binding");
            return node.ctx.respond(key, reply(500, "Directory unavailable"));
        }
    }
    let mut response = reply(200, "OK");
    match node.directory.registrations(&tenant.id, &aor, now).await {
        Ok(bindings) => {
            for b in bindings {
                let left = (b.expires_at - now).max(0) / 1000;
                response
                    .headers
                    .push("Contact", &format!("<{}>;expires={left}", b.contact));
            }
        }
        Err(err) => tracing::warn!(%err, "registrar: cannot list bindings"),
    }
    if account.kind == offhook_directory::AccountKind::Relay {
        // Its lines (or some of them) came or went: route with a new snapshot.
        node.lines.invalidate();
        let _ = node
            .directory
            .set_relay_seen(&account.username, &format!("sip:{}", flow.remote), "up", now)
            .await;
    }
    node.ctx.respond(key, response);
}
