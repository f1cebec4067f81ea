//! One request in, one response out. Cluster questions are answered from the current
//! [`Index`] snapshot (authoritative, as CoreDNS: `aa` set, `ra` not); the rest go to the
//! [`Forwarder`] and the upstream's answer is relayed, or SERVFAIL when no upstream answers.
//!
//! A request is answered in two steps so that both transports share them: [`Handler::plan`]
//! decides everything that needs no I/O (every cluster answer but an ExternalName's upstream
//! part), and [`Handler::complete`] does the upstream exchange when the plan asks for one.
//! TCP goes through hickory's [`RequestHandler`]; UDP through [`crate::udp`], which answers a
//! ready plan in place and encodes it with [`encode_udp`], the same encoding hickory's UDP
//! path applies: the response is cut to the client's limit (512 bytes, or its EDNS payload
//! size) with TC set, so the client retries over TCP.

use std::sync::Arc;

use hickory_server::net::runtime::Time;
use hickory_server::proto::op::{Edns, Header, HeaderCounts, Message, MessageType, Metadata, OpCode, ResponseCode};
use hickory_server::proto::rr::{Name, Record, RecordType};
use hickory_server::proto::serialize::binary::{BinEncodable, BinEncoder};
use hickory_server::server::{Request, RequestHandler, ResponseHandler, ResponseInfo};
use hickory_server::zone_handler::{MessageResponseBuilder, Queries};
use tokio::sync::watch;

use crate::forward::Forwarder;
use crate::index::Index;
use crate::resolve::{Resolution, Response, resolve};

/// The most a UDP response may take without EDNS (RFC 1035 section 4.2.1).
const UDP_PAYLOAD_WITHOUT_EDNS: u16 = 512;

#[derive(Clone)]
pub(crate) struct Handler {
    /// The latest index; replaced whole by the watch loop, read without blocking it.
    index: watch::Receiver<Arc<Index>>,
    forwarder: Forwarder,
}

/// A response, decided.
pub(crate) struct Reply {
    /// The response's OPT record: present when the request had one.
    edns: Option<Edns>,
    metadata: Metadata,
    answers: Vec<Record>,
    authorities: Vec<Record>,
    additionals: Vec<Record>,
}

impl Reply {
    fn empty(edns: Option<Edns>, metadata: Metadata) -> Reply {
        Reply { edns, metadata, answers: Vec::new(), authorities: Vec::new(), additionals: Vec::new() }
    }
}

/// What answering a request takes.
pub(crate) enum Plan {
    /// Nothing more: the reply is known.
    Ready(Reply),
    /// Not the cluster's: relay what the upstream answers to the request as it came.
    Forward { reply: Reply, name: Name, qtype: RecordType },
    /// A cluster answer ending in a CNAME out of the zone: the upstream completes it.
    Chase { reply: Reply, answer: Response },
}

impl Handler {
    pub(crate) fn new(index: watch::Receiver<Arc<Index>>, forwarder: Forwarder) -> Handler {
        Handler { index, forwarder }
    }

    /// The current index.
    pub(crate) fn index(&self) -> Arc<Index> {
        // A clone of the Arc: the watch's lock is held only for that.
        self.index.borrow().clone()
    }

    /// Decide what needs no I/O.
    pub(crate) fn plan(&self, request: &Request) -> Plan {
        // Answer EDNS with EDNS (RFC 6891), offering the client's payload size back; that
        // size is also what bounds a UDP response.
        let edns = request.edns.as_ref().map(|req| {
            let mut edns = Edns::new();
            edns.set_max_payload(req.max_payload().max(512)).set_version(0);
            edns
        });
        let mut reply = Reply::empty(edns, Metadata::response_from_request(&request.metadata));
        if request.metadata.op_code != OpCode::Query {
            reply.metadata.response_code = ResponseCode::NotImp;
            return Plan::Ready(reply);
        }
        if request.edns.as_ref().is_some_and(|e| e.version() > 0) {
            reply.metadata.response_code = ResponseCode::BADVERS;
            return Plan::Ready(reply);
        }
        let Ok(info) = request.request_info() else {
            // Not exactly one question.
            reply.metadata.response_code = ResponseCode::FormErr;
            return Plan::Ready(reply);
        };
        let question = info.query.original();
        let index = self.index();
        match resolve(&index, question.name(), question.query_type()) {
            Resolution::Answer(answer) if answer.chase.is_some() => Plan::Chase { reply, answer },
            Resolution::Answer(answer) => Plan::Ready(cluster_answer(reply, answer)),
            Resolution::Forward => Plan::Forward { reply, name: question.name().clone(), qtype: question.query_type() },
        }
    }

    /// Carry out a plan: the upstream exchange it needs, if any.
    pub(crate) async fn complete(&self, request: &Request, plan: Plan) -> Reply {
        match plan {
            Plan::Ready(reply) => reply,
            Plan::Forward { mut reply, name, qtype } => {
                match self.forwarder.forward(request.as_slice(), &name, qtype).await {
                    Ok(upstream) => relay(reply, upstream),
                    Err(error) => {
                        tracing::warn!(%name, %qtype, %error, "no upstream answered; SERVFAIL");
                        reply.metadata.response_code = ResponseCode::ServFail;
                        reply.metadata.recursion_available = true;
                        reply
                    }
                }
            }
            Plan::Chase { reply, mut answer } => {
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
                cluster_answer(reply, answer)
            }
        }
    }
}

#[async_trait::async_trait]
impl RequestHandler for Handler {
    async fn handle_request<R: ResponseHandler, T: Time>(&self, request: &Request, response: R) -> ResponseInfo {
        let reply = self.complete(request, self.plan(request)).await;
        send(request, response, reply).await
    }
}

/// An authoritative answer.
fn cluster_answer(mut reply: Reply, answer: Response) -> Reply {
    reply.metadata.authoritative = true;
    reply.metadata.response_code = answer.rcode;
    reply.answers = answer.answers;
    reply.authorities = answer.authorities;
    reply.additionals = answer.additionals;
    reply
}

/// The upstream's answer under the client's ID and question; its flags and rcode kept.
fn relay(mut reply: Reply, upstream: Message) -> Reply {
    reply.metadata.response_code = upstream.metadata.response_code;
    reply.metadata.authoritative = upstream.metadata.authoritative;
    reply.metadata.recursion_available = upstream.metadata.recursion_available;
    reply.metadata.authentic_data = upstream.metadata.authentic_data;
    // Kept when even the TCP retry failed; the encoder sets it anyway if the answer does not fit.
    reply.metadata.truncation = upstream.metadata.truncation;
    reply.answers = upstream.answers;
    reply.authorities = upstream.authorities;
    reply.additionals = upstream.additionals;
    reply
}

async fn send<R: ResponseHandler>(request: &Request, mut handle: R, reply: Reply) -> ResponseInfo {
    let builder = MessageResponseBuilder::new(&request.queries, reply.edns.as_ref());
    let message = builder.build(
        reply.metadata,
        reply.answers.iter(),
        reply.authorities.iter(),
        std::iter::empty(),
        reply.additionals.iter(),
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

/// `reply` to `queries` in wire format for UDP, exactly as hickory's `ResponseHandle` encodes
/// it: at most the payload size the response's EDNS offers (512 bytes without EDNS), records
/// that do not fit left out and TC set; a response that cannot be encoded at all becomes a
/// bare SERVFAIL header.
pub(crate) fn encode_udp(queries: &Queries, reply: &Reply) -> Vec<u8> {
    let builder = MessageResponseBuilder::new(queries, reply.edns.as_ref());
    let message = builder.build(
        reply.metadata,
        reply.answers.iter(),
        reply.authorities.iter(),
        std::iter::empty(),
        reply.additionals.iter(),
    );
    let mut bytes = Vec::with_capacity(512);
    let mut encoder = BinEncoder::new(&mut bytes);
    encoder.set_max_size(reply.edns.as_ref().map_or(UDP_PAYLOAD_WITHOUT_EDNS, Edns::max_payload));
    match message.destructive_emit(&mut encoder) {
        Ok(_) => bytes,
        Err(error) => {
            tracing::error!(%error, "error encoding a DNS response");
            servfail_header(reply.metadata.id)
        }
    }
}

/// A SERVFAIL header alone, hickory's answer when a response cannot be encoded.
fn servfail_header(id: u16) -> Vec<u8> {
    let mut metadata = Metadata::new(id, MessageType::Response, OpCode::Query);
    metadata.response_code = ResponseCode::ServFail;
    header_only(metadata)
}

/// FORMERR to a request whose header reads but whose body does not, as hickory answers it:
/// the request's ID, opcode and flags echoed, no question, no EDNS: a header alone.
pub(crate) fn encode_formerr(request: &Header) -> Vec<u8> {
    let mut metadata = Metadata::response_from_request(&request.metadata);
    metadata.response_code = ResponseCode::FormErr;
    header_only(metadata)
}

/// A message of a header and nothing else.
fn header_only(metadata: Metadata) -> Vec<u8> {
    let header = Header { metadata, counts: HeaderCounts::default() };
    let mut bytes = Vec::with_capacity(12);
    // Twelve bytes always fit an unbounded buffer.
    if let Err(error) = header.emit(&mut BinEncoder::new(&mut bytes)) {
        tracing::error!(%error, "error encoding a DNS header");
    }
    bytes
}
