//! hickory's [`RequestHandler`]: one request in, one response out. Cluster questions are
//! answered from the current [`Index`] snapshot (authoritative, as CoreDNS: `aa` set, `ra`
//! not); the rest go to the [`Forwarder`] and the upstream's answer is relayed, or SERVFAIL
//! when no upstream answers. hickory encodes the response and, over UDP, truncates it to the
//! client's limit (512 bytes, or its EDNS payload size) with TC set, so the client retries
//! over TCP.

use std::sync::Arc;

use hickory_server::net::runtime::Time;
use hickory_server::proto::op::{Edns, Header, HeaderCounts, Message, Metadata, OpCode, ResponseCode};
use hickory_server::proto::rr::Record;
use hickory_server::server::{Request, RequestHandler, ResponseHandler, ResponseInfo};
use hickory_server::zone_handler::MessageResponseBuilder;
use tokio::sync::watch;

use crate::forward::Forwarder;
use crate::index::Index;
use crate::resolve::{Resolution, Response, resolve};

pub(crate) struct Handler {
    /// The latest index; replaced whole by the watch loop, read without blocking it.
    index: watch::Receiver<Arc<Index>>,
    forwarder: Forwarder,
}

impl Handler {
    pub(crate) fn new(index: watch::Receiver<Arc<Index>>, forwarder: Forwarder) -> Handler {
        Handler { index, forwarder }
    }
}

/// The sections of a response.
#[derive(Default)]
struct Sections {
    answers: Vec<Record>,
    authorities: Vec<Record>,
    additionals: Vec<Record>,
}

#[async_trait::async_trait]
impl RequestHandler for Handler {
    async fn handle_request<R: ResponseHandler, T: Time>(&self, request: &Request, response: R) -> ResponseInfo {
        // Answer EDNS with EDNS (RFC 6891), offering the client's payload size back; that
        // size is also what bounds a UDP response.
        let edns = request.edns.as_ref().map(|req| {
            let mut edns = Edns::new();
            edns.set_max_payload(req.max_payload().max(512)).set_version(0);
            edns
        });
        let mut metadata = Metadata::response_from_request(&request.metadata);
        if request.metadata.op_code != OpCode::Query {
            metadata.response_code = ResponseCode::NotImp;
            return send(request, edns.as_ref(), response, metadata, Sections::default()).await;
        }
        if request.edns.as_ref().is_some_and(|e| e.version() > 0) {
            metadata.response_code = ResponseCode::BADVERS;
            return send(request, edns.as_ref(), response, metadata, Sections::default()).await;
        }
        let Ok(info) = request.request_info() else {
            // Not exactly one question.
            metadata.response_code = ResponseCode::FormErr;
            return send(request, edns.as_ref(), response, metadata, Sections::default()).await;
        };
        let question = info.query.original().clone();
        let index = self.index.borrow().clone();
        match resolve(&index, question.name(), question.query_type()) {
            Resolution::Answer(answer) => {
                let (metadata, sections) = self.cluster_answer(metadata, answer).await;
                send(request, edns.as_ref(), response, metadata, sections).await
            }
            Resolution::Forward => {
                match self.forwarder.forward(request.as_slice(), question.name(), question.query_type()).await {
                    Ok(upstream) => {
                        let (metadata, sections) = relay(metadata, upstream);
                        send(request, edns.as_ref(), response, metadata, sections).await
                    }
                    Err(error) => {
                        tracing::warn!(name = %question.name(), qtype = %question.query_type(), %error, "no upstream answered; SERVFAIL");
                        metadata.response_code = ResponseCode::ServFail;
                        metadata.recursion_available = true;
                        send(request, edns.as_ref(), response, metadata, Sections::default()).await
                    }
                }
            }
        }
    }
}

impl Handler {
    /// An authoritative answer; a CNAME that leaves the zone is followed upstream first.
    async fn cluster_answer(&self, mut metadata: Metadata, mut answer: Response) -> (Metadata, Sections) {
        if let Some(chase) = answer.chase.take() {
            match self.forwarder.lookup(&chase.target, chase.qtype).await {
                Ok(upstream) => answer.answers.extend(upstream.answers),
                Err(error) => {
                    // CoreDNS drops a CNAME it cannot complete, leaving NODATA.
                    tracing::debug!(target = %chase.target, %error, "cannot resolve an ExternalName target");
                    answer.answers.clear();
                    answer.authorities = vec![chase.soa];
                }
            }
        }
        metadata.authoritative = true;
        metadata.response_code = answer.rcode;
        let sections =
            Sections { answers: answer.answers, authorities: answer.authorities, additionals: answer.additionals };
        (metadata, sections)
    }
}

/// The upstream's answer under the client's ID and question; its flags and rcode kept.
fn relay(mut metadata: Metadata, upstream: Message) -> (Metadata, Sections) {
    metadata.response_code = upstream.metadata.response_code;
    metadata.authoritative = upstream.metadata.authoritative;
    metadata.recursion_available = upstream.metadata.recursion_available;
    metadata.authentic_data = upstream.metadata.authentic_data;
    // Kept when even the TCP retry failed; hickory sets it anyway if the answer does not fit.
    metadata.truncation = upstream.metadata.truncation;
    let sections =
        Sections { answers: upstream.answers, authorities: upstream.authorities, additionals: upstream.additionals };
    (metadata, sections)
}

async fn send<R: ResponseHandler>(
    request: &Request,
    edns: Option<&Edns>,
    mut handle: R,
    metadata: Metadata,
    sections: Sections,
) -> ResponseInfo {
    let builder = MessageResponseBuilder::new(&request.queries, edns);
    let message = builder.build(
        metadata,
        sections.answers.iter(),
        sections.authorities.iter(),
        std::iter::empty(),
        sections.additionals.iter(),
    );
    match handle.send_response(message).await {
        Ok(info) => info,
        Err(error) => {
            tracing::warn!(src = %request.src(), %error, "cannot send a DNS response");
            let mut failed = Metadata::response_from_request(&request.metadata);
            failed.response_code = ResponseCode::ServFail;
            ResponseInfo::from(Header { metadata: failed, counts: HeaderCounts::default() })
        }
    }
}
