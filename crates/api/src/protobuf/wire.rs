//! The protobuf wire format, read field by field: varint keys, then a varint, a fixed 64-bit, a
//! length-delimited or a fixed 32-bit payload. Nothing here knows about messages; `to_json` does.

/// A field's payload, by wire type.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Payload<'a> {
    /// Wire type 0.
    Varint(u64),
    /// Wire type 1.
    Fixed64(u64),
    /// Wire type 2: a string, bytes, a message or a packed list.
    Bytes(&'a [u8]),
    /// Wire type 5.
    Fixed32(u32),
}

impl Payload<'_> {
    pub(super) fn wire_type(&self) -> u8 {
        match self {
            Payload::Varint(_) => 0,
            Payload::Fixed64(_) => 1,
            Payload::Bytes(_) => 2,
            Payload::Fixed32(_) => 5,
        }
    }
}

/// What went wrong at the wire level; the caller adds the message name.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum WireError {
    /// The payload of field `tag` runs past the end of the buffer.
    Truncated { tag: u32 },
    /// A key is cut off, over-long or has field number 0.
    BadKey,
    /// Wire types 3 and 4 (proto2 groups, which Kubernetes never uses) or 6 and 7 (undefined).
    WireType { tag: u32, wire_type: u8 },
}

/// Reads the fields of one message in order.
pub(super) struct Reader<'a> {
    buf: &'a [u8],
}

impl<'a> Reader<'a> {
    pub(super) fn new(buf: &'a [u8]) -> Self {
        Reader { buf }
    }

    /// The next field as `(tag, payload)`, or `None` at the end of the message.
    pub(super) fn next_field(&mut self) -> Result<Option<(u32, Payload<'a>)>, WireError> {
        if self.buf.is_empty() {
            return Ok(None);
        }
        let key = self.varint().ok_or(WireError::BadKey)?;
        let tag = u32::try_from(key >> 3).map_err(|_| WireError::BadKey)?;
        if tag == 0 {
            return Err(WireError::BadKey);
        }
        let truncated = WireError::Truncated { tag };
        let payload = match key & 7 {
            0 => Payload::Varint(self.varint().ok_or(truncated)?),
            1 => {
                Payload::Fixed64(u64::from_le_bytes(self.take(8).ok_or(truncated)?.try_into().map_err(|_| truncated)?))
            }
            2 => {
                let len = self.varint().ok_or(truncated)?;
                let len = usize::try_from(len).map_err(|_| truncated)?;
                Payload::Bytes(self.take(len).ok_or(truncated)?)
            }
            5 => {
                Payload::Fixed32(u32::from_le_bytes(self.take(4).ok_or(truncated)?.try_into().map_err(|_| truncated)?))
            }
            // `key & 7` is below 8.
            wire_type => return Err(WireError::WireType { tag, wire_type: wire_type as u8 }),
        };
        Ok(Some((tag, payload)))
    }

    /// A base-128 varint of at most ten bytes; `None` when cut off or longer.
    pub(super) fn varint(&mut self) -> Option<u64> {
        let mut value = 0u64;
        for (i, &byte) in self.buf.iter().enumerate().take(10) {
            value |= u64::from(byte & 0x7f) << (7 * i);
            if byte < 0x80 {
                self.buf = &self.buf[i + 1..];
                return Some(value);
            }
        }
        None
    }

    /// The next `len` bytes of a fixed or length-delimited payload.
    pub(super) fn take(&mut self, len: usize) -> Option<&'a [u8]> {
        if len > self.buf.len() {
            return None;
        }
        let (head, rest) = self.buf.split_at(len);
        self.buf = rest;
        Some(head)
    }

    pub(super) fn is_empty(&self) -> bool {
        self.buf.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_each_wire_type() {
        // field 1 varint 150, field 2 bytes "hi", field 3 fixed64 1, field 4 fixed32 2
        let buf = [0x08, 0x96, 0x01, 0x12, 2, b'h', b'i', 0x19, 1, 0, 0, 0, 0, 0, 0, 0, 0x25, 2, 0, 0, 0];
        let mut r = Reader::new(&buf);
        assert_eq!(r.next_field(), Ok(Some((1, Payload::Varint(150)))));
        assert_eq!(r.next_field(), Ok(Some((2, Payload::Bytes(b"hi")))));
        assert_eq!(r.next_field(), Ok(Some((3, Payload::Fixed64(1)))));
        assert_eq!(r.next_field(), Ok(Some((4, Payload::Fixed32(2)))));
        assert_eq!(r.next_field(), Ok(None));
    }

    #[test]
    fn ten_byte_varints_and_negative_int32() {
        // -1 as int32 is sign-extended to ten bytes on the wire.
        let buf = [0x08, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01];
        assert_eq!(Reader::new(&buf).next_field(), Ok(Some((1, Payload::Varint(u64::MAX)))));
        let too_long = [0x08, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01];
        assert_eq!(Reader::new(&too_long).next_field(), Err(WireError::Truncated { tag: 1 }));
    }

    #[test]
    fn errors() {
        assert_eq!(Reader::new(&[0x12, 5, b'a']).next_field(), Err(WireError::Truncated { tag: 2 }));
        assert_eq!(Reader::new(&[0x19, 1, 2]).next_field(), Err(WireError::Truncated { tag: 3 }));
        assert_eq!(Reader::new(&[0x80]).next_field(), Err(WireError::BadKey));
        assert_eq!(Reader::new(&[0x00, 1]).next_field(), Err(WireError::BadKey));
        assert_eq!(Reader::new(&[0x0b]).next_field(), Err(WireError::WireType { tag: 1, wire_type: 3 }));
        assert_eq!(Reader::new(&[0x0f]).next_field(), Err(WireError::WireType { tag: 1, wire_type: 7 }));
        // A length that does not fit in memory is a truncation, not an overflow.
        let huge = [0x12, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01];
        assert_eq!(Reader::new(&huge).next_field(), Err(WireError::Truncated { tag: 2 }));
    }
}
