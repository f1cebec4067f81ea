//! The fast path: the commonest query, an A or AAAA question for a name the cluster has
//! addresses for, read and answered straight from and into wire format, without decoding the
//! whole request into hickory's types and encoding the response with its general encoder.
//!
//! Only what is easy to get exactly right takes this path; everything else returns `None`
//! and goes the general way ([`crate::handler`]):
//! - the query: QUERY opcode, one question of class IN in plain labels (letters, digits, `-`
//!   and `_`), nothing in the answer and authority sections, and no additional record but an
//!   OPT (EDNS version 0, no options), and nothing after it;
//! - the answer: what [`resolve`] answers (the same code the general path runs), when it is
//!   NOERROR with only A/AAAA records owned by the question's name — no negative answer, no
//!   CNAME, nothing in the other sections — that fits the client's limit untruncated.
//!
//! The bytes are hickory's, to the byte (the tests compare the two): the header with the
//! query's ID, RD and CD and AA set; the question as received; the first record's owner
//! written out and the others pointing to it (hickory does not compress against the
//! question); the OPT record last, offering the client's payload size (at least 512).

use hickory_server::proto::op::ResponseCode;
use hickory_server::proto::rr::{Name, RData, RecordType};
use hickory_server::proto::serialize::binary::{BinDecodable, BinDecoder};

use crate::index::Index;
use crate::resolve::{Resolution, resolve};

const HEADER_LEN: usize = 12;
/// Header flags, first byte: response, opcode, authoritative, truncated, recursion desired.
const QR: u8 = 0x80;
const OPCODE: u8 = 0x78;
const AA: u8 = 0x04;
const RD: u8 = 0x01;
/// Header flags, second byte: checking disabled (echoed like RD).
const CD: u8 = 0x10;
const CLASS_IN: u16 = 1;
const TYPE_OPT: u16 = 41;
/// The UDP payload without EDNS, and the least an OPT record may offer (RFC 6891).
const MIN_PAYLOAD: u16 = 512;
/// hickory compresses at most 120 names per message; past that it writes owners out in full.
/// Answers with more records than this go the general way.
const MAX_RECORDS: usize = 100;

/// A query in the shape the fast path answers.
struct Query {
    /// Where the question (name, type, class) ends.
    question_end: usize,
    qtype: RecordType,
    /// The client's EDNS payload size, if it sent an OPT record (at least 512).
    payload: Option<u16>,
}

/// The response to `query`, or `None` when the general path must answer it.
pub(crate) fn answer(ix: &Index, query: &[u8]) -> Option<Vec<u8>> {
    let q = parse(query)?;
    // The question's name, decoded as hickory decodes it.
    let mut decoder = BinDecoder::new(query);
    decoder.read_slice(HEADER_LEN).ok()?;
    let name = Name::read(&mut decoder).ok()?;
    let Resolution::Answer(response) = resolve(ix, &name, q.qtype) else { return None };
    if response.rcode != ResponseCode::NoError
        || response.answers.is_empty()
        || response.answers.len() > MAX_RECORDS
        || !response.authorities.is_empty()
        || !response.additionals.is_empty()
        || response.chase.is_some()
    {
        return None;
    }
    let name_end = q.question_end - 4;
    let mut out = Vec::with_capacity(q.question_end + response.answers.len() * 28 + 11);
    out.extend_from_slice(&query[..2]);
    out.push(QR | AA | (query[2] & RD));
    out.push(query[3] & CD);
    out.extend_from_slice(&1u16.to_be_bytes());
    out.extend_from_slice(&u16::try_from(response.answers.len()).ok()?.to_be_bytes());
    out.extend_from_slice(&0u16.to_be_bytes());
    out.extend_from_slice(&u16::from(q.payload.is_some()).to_be_bytes());
    out.extend_from_slice(&query[HEADER_LEN..q.question_end]);
    let owner_at = u16::try_from(out.len()).ok()?;
    for (i, record) in response.answers.iter().enumerate() {
        if !record.name.eq_case(&name) {
            return None;
        }
        let mut rdata = [0u8; 16];
        let (rtype, len) = match &record.data {
            RData::A(a) => {
                rdata[..4].copy_from_slice(&a.0.octets());
                (RecordType::A, 4u16)
            }
            RData::AAAA(aaaa) => {
                rdata.copy_from_slice(&aaaa.0.octets());
                (RecordType::AAAA, 16u16)
            }
            _ => return None,
        };
        if i == 0 {
            // The name as the client wrote it, as in the question.
            out.extend_from_slice(&query[HEADER_LEN..name_end]);
        } else {
            out.extend_from_slice(&(0xC000 | owner_at).to_be_bytes());
        }
        out.extend_from_slice(&u16::from(rtype).to_be_bytes());
        out.extend_from_slice(&u16::from(record.dns_class).to_be_bytes());
        out.extend_from_slice(&record.ttl.to_be_bytes());
        out.extend_from_slice(&len.to_be_bytes());
        out.extend_from_slice(&rdata[..usize::from(len)]);
    }
    if let Some(payload) = q.payload {
        // Root owner, OPT, the payload size as the class, extended rcode, version and flags 0,
        // no options.
        out.push(0);
        out.extend_from_slice(&TYPE_OPT.to_be_bytes());
        out.extend_from_slice(&payload.to_be_bytes());
        out.extend_from_slice(&[0, 0, 0, 0, 0, 0]);
    }
    // Too big for the client: the general path truncates it as hickory does.
    let limit = usize::from(q.payload.unwrap_or(MIN_PAYLOAD));
    (out.len() <= limit).then_some(out)
}

/// Check that `query` has the fast path's shape.
fn parse(query: &[u8]) -> Option<Query> {
    let u16_at = |at: usize| query.get(at..at + 2).map(|b| u16::from_be_bytes([b[0], b[1]]));
    if query.len() < HEADER_LEN || query[2] & (QR | OPCODE) != 0 {
        return None;
    }
    let (questions, answers, authorities, additionals) = (u16_at(4)?, u16_at(6)?, u16_at(8)?, u16_at(10)?);
    if questions != 1 || answers != 0 || authorities != 0 || additionals > 1 {
        return None;
    }
    // The name: plain labels up to the root, no compression pointer.
    let mut at = HEADER_LEN;
    loop {
        let len = usize::from(*query.get(at)?);
        at += 1;
        if len == 0 {
            break;
        }
        let label = query.get(at..at + len).filter(|_| len <= 63)?;
        if !label.iter().all(|b| b.is_ascii_alphanumeric() || *b == b'-' || *b == b'_') {
            return None;
        }
        at += len;
    }
    if at - HEADER_LEN > 255 {
        return None;
    }
    let qtype = RecordType::from(u16_at(at)?);
    if !matches!(qtype, RecordType::A | RecordType::AAAA) || u16_at(at + 2)? != CLASS_IN {
        return None;
    }
    let question_end = at + 4;
    at = question_end;
    let payload = if additionals == 1 {
        // OPT: root owner, type, payload size, extended rcode 0, version 0, any flags, no data.
        let opt = query.get(at..at + 11)?;
        let (rtype, payload, rdata_len) = (u16_at(at + 1)?, u16_at(at + 3)?, u16_at(at + 9)?);
        if opt[0] != 0 || rtype != TYPE_OPT || opt[5] != 0 || opt[6] != 0 || rdata_len != 0 {
            return None;
        }
        at += 11;
        Some(payload.max(MIN_PAYLOAD))
    } else {
        None
    };
    (at == query.len()).then_some(Query { question_end, qtype, payload })
}

#[cfg(test)]
mod tests;
