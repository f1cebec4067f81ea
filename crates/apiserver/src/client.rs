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
    pub fn client(self: &Arc<Self>, user: &str, groups: &[&str]) -> kube::Client {
        let identity = UserInfo::new(user, groups);
        let server = self.clone();
        let service = tower::service_fn(move |req: Request<kube::client::Body>| {
            let server = server.clone();
            let identity = identity.clone();
            async move {
                let (mut parts, body) = req.into_parts();
                parts.extensions.insert(InProcessUser(identity));
                let resp: Response<Body> = server.handle(Request::from_parts(parts, Body::new(body))).await;
                Ok::<_, Infallible>(resp)
            }
        });
        kube::Client::new(service, "default")
    }
}
