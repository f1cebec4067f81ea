//! In-process clients. Every component (controllers, scheduler, simulated nodes, the kubelet
//! of the server's own node) is an API client, as upstream (ARCHITECTURE.md, decision 2).
//! Inside `skiff server` their requests skip the socket and TLS: a [`kube::Client`] whose
//! transport hands each request straight to [`ApiServer::handle`], with the component's
//! identity attached as a request extension. Nothing but this module can attach one; a
//! request from the network is authenticated from its token or certificate as always.

use std::convert::Infallible;
use std::sync::Arc;

use axum::body::Body;
use http::{Request, Response};

use crate::ApiServer;
use crate::auth::UserInfo;

/// The identity of an in-process request.
#[derive(Clone, Debug)]
pub(crate) struct InProcessUser(pub(crate) UserInfo);

impl ApiServer {
    /// A client that acts as `user` in `groups` (plus `system:authenticated`), for components
    /// running in this process.
    ///
    /// Requests carry a User-Agent like upstream components' (`kube-controller-manager/v1.33.0`
    /// for `system:kube-controller-manager`, `kubelet/…` for `system:node:<name>`), so field
    /// managers in managedFields read as they do upstream.
    pub fn client(self: &Arc<Self>, user: &str, groups: &[&str]) -> kube::Client {
        let identity = UserInfo::new(user, groups);
        let agent = match user.strip_prefix("system:") {
            Some(n) if n.starts_with("node:") => "kubelet",
            Some(n) => n,
            None => user,
        };
        let agent = http::HeaderValue::from_str(&format!("{agent}/{} (linux/amd64) skiff", crate::KUBERNETES_VERSION))
            .unwrap_or_else(|_| http::HeaderValue::from_static("skiff"));
        let server = self.clone();
        let service = tower::service_fn(move |req: Request<kube::client::Body>| {
            let server = server.clone();
            let identity = identity.clone();
            let agent = agent.clone();
            async move {
                let (mut parts, body) = req.into_parts();
                parts.extensions.insert(InProcessUser(identity));
                parts.headers.entry(http::header::USER_AGENT).or_insert(agent);
                let resp: Response<Body> = server.handle(Request::from_parts(parts, Body::new(body))).await;
                Ok::<_, Infallible>(resp)
            }
        });
        kube::Client::new(service, "default")
    }
}
