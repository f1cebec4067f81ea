use super::*;

/// Two SYN_STREAMs (stream 1: error, stream 3: data; port 8080, request 0) as another zlib
/// implementation (CPython's zlib, level 9, SPDY/3 dictionary, sync flush) writes them: the
/// second header block depends on the first's compression state.
const FOREIGN_SYN_STREAMS: &[u8] = b"\x80\x03\x00\x01\x00\x00\x00\x3d\x00\x00\x00\x01\x00\x00\x00\x00\x00\x00\x78\xf9\xe3\xc6\xa7\xc2\x02\x25\x3a\x70\x3a\x2b\x29\x4a\x4d\xcc\x85\x16\x25\xac\xa9\xa0\x80\x86\x14\xcb\x45\xe0\x1c\x60\x61\x60\x61\x00\xa4\x39\x8b\x20\xd1\x98\x09\x4a\xde\x8c\x06\x00\x00\x00\x00\xff\xff\x80\x03\x00\x01\x00\x00\x00\x18\x00\x00\x00\x03\x00\x00\x00\x00\x00\x00\xc2\xaa\x19\x54\x0e\x25\x12\xd6\x0b\x00\x00\x00\xff\xff";

fn adler32(bytes: &[u8]) -> u32 {
    let (mut a, mut b) = (1u32, 0u32);
    for x in bytes {
        a = (a + u32::from(*x)) % 65_521;
        b = (b + a) % 65_521;
    }
    (b << 16) | a
}

fn h(pairs: &[(&str, &str)]) -> Headers {
    pairs.iter().map(|(n, v)| (n.to_string(), v.to_string())).collect()
}

#[test]
fn dictionary_is_the_spdy3_one() {
    assert_eq!(DICTIONARY.len(), 1423);
    assert_eq!(adler32(&DICTIONARY), 0xe3c6_a7c2);
}

#[test]
fn decodes_header_blocks_of_another_zlib() {
    let mut codec = Codec::new();
    let mut buf = BytesMut::from(FOREIGN_SYN_STREAMS);
    let first = codec.decode(&mut buf).unwrap().unwrap();
    let second = codec.decode(&mut buf).unwrap().unwrap();
    assert!(buf.is_empty());
    match (first, second) {
        (Frame::SynStream { stream_id: 1, headers: a, .. }, Frame::SynStream { stream_id: 3, headers: b, .. }) => {
            assert_eq!(a, h(&[("streamtype", "error"), ("port", "8080"), ("requestid", "0")]));
            assert_eq!(header(&b, "streamType"), Some("data"));
            assert_eq!(header(&b, "requestID"), Some("0"));
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn every_frame_round_trips_and_compression_state_carries_over() {
    let frames = vec![
        Frame::SynStream {
            stream_id: 1,
            associated: 0,
            priority: 3,
            fin: false,
            unidirectional: true,
            headers: h(&[("streamtype", "data"), ("port", "80")]),
        },
        Frame::SynReply { stream_id: 1, fin: false, headers: vec![] },
        Frame::SynReply { stream_id: 3, fin: true, headers: h(&[("x", "a\0b")]) },
        Frame::Headers { stream_id: 3, fin: false, headers: h(&[("streamtype", "data"), ("port", "80")]) },
        Frame::RstStream { stream_id: 5, status: RST_CANCEL },
        Frame::Settings { entries: vec![(0, SETTINGS_INITIAL_WINDOW_SIZE, 1 << 20), (1, 4, 100)] },
        Frame::Ping(7),
        Frame::GoAway { last_good: 9, status: 0 },
        Frame::WindowUpdate { stream_id: 0, delta: 4096 },
        Frame::Data { stream_id: 1, fin: false, data: Bytes::from_static(b"hello") },
        Frame::Data { stream_id: 1, fin: true, data: Bytes::new() },
    ];
    let (mut tx, mut rx) = (Codec::new(), Codec::new());
    let mut wire = BytesMut::new();
    for f in &frames {
        tx.encode(f, &mut wire).unwrap();
    }
    // Byte-at-a-time arrival: decode must wait for whole frames.
    let mut buf = BytesMut::new();
    let mut got = Vec::new();
    for b in wire {
        buf.put_u8(b);
        while let Some(f) = rx.decode(&mut buf).unwrap() {
            got.push(f);
        }
    }
    assert_eq!(got, frames);
}

#[test]
fn rejects_bad_frames() {
    let mut c = Codec::new();
    // SPDY/2 control frame.
    let mut b = BytesMut::from(&b"\x80\x02\x00\x06\x00\x00\x00\x04\x00\x00\x00\x01"[..]);
    assert!(matches!(c.decode(&mut b), Err(SpdyError::Version(2))));
    // DATA on stream 0.
    let mut b = BytesMut::from(&b"\x00\x00\x00\x00\x00\x00\x00\x00"[..]);
    assert!(matches!(c.decode(&mut b), Err(SpdyError::Malformed(_))));
    // A huge control frame is refused before it is buffered.
    let mut b = BytesMut::from(&b"\x80\x03\x00\x01\x00\xff\xff\xff"[..]);
    assert!(matches!(c.decode(&mut b), Err(SpdyError::TooLarge(_))));
    // A short RST_STREAM.
    let mut b = BytesMut::from(&b"\x80\x03\x00\x03\x00\x00\x00\x02\x00\x01"[..]);
    assert!(matches!(c.decode(&mut b), Err(SpdyError::Malformed(_))));
    // A header block that is not zlib.
    let mut b = BytesMut::from(&b"\x80\x03\x00\x02\x00\x00\x00\x08\x00\x00\x00\x01garb"[..]);
    assert!(matches!(Codec::new().decode(&mut b), Err(SpdyError::Compression(_))));
    // Unknown control types are skipped, not fatal.
    let mut b = BytesMut::from(&b"\x80\x03\x00\x0a\x00\x00\x00\x00"[..]);
    assert_eq!(c.decode(&mut b).unwrap(), Some(Frame::Unknown(10)));
}

#[test]
fn windows_and_credit() {
    let mut w = Window(DEFAULT_WINDOW);
    assert_eq!(w.allowance(100), 100);
    w.consume(DEFAULT_WINDOW as usize - 10);
    assert_eq!(w.allowance(100), 10);
    w.consume(10);
    assert_eq!(w.allowance(1), 0);
    assert!(w.grow(5));
    assert_eq!(w.allowance(100), 5);
    assert!(!w.grow(u32::MAX >> 1), "beyond 2^31-1 is a flow-control error");
    let mut negative = Window(-5);
    assert_eq!(negative.allowance(10), 0);
    assert!(negative.grow(10));
    assert_eq!(negative.allowance(10), 5);

    let mut c = Credit::default();
    assert_eq!(c.consumed(1000), None);
    assert_eq!(c.consumed(DEFAULT_WINDOW as usize / 2), Some(1000 + DEFAULT_WINDOW as u32 / 2));
    assert_eq!(c.consumed(1), None, "credit restarts after an update");
}

/// The client end of a session for tests: encodes what a spdystream client sends.
struct Client {
    codec: Codec,
    io: tokio::io::DuplexStream,
    buf: BytesMut,
}

impl Client {
    async fn send(&mut self, f: Frame) {
        let mut b = BytesMut::new();
        self.codec.encode(&f, &mut b).unwrap();
        self.io.write_all(&b).await.unwrap();
    }
    async fn recv(&mut self) -> Frame {
        loop {
            if let Some(f) = self.codec.decode(&mut self.buf).unwrap() {
                return f;
            }
            let n = tokio::time::timeout(std::time::Duration::from_secs(5), self.io.read_buf(&mut self.buf))
                .await
                .expect("frame in time")
                .unwrap();
            assert!(n > 0, "connection closed");
        }
    }
    /// Next frame that is not a WINDOW_UPDATE.
    async fn recv_no_window(&mut self) -> Frame {
        loop {
            match self.recv().await {
                Frame::WindowUpdate { .. } => continue,
                f => return f,
            }
        }
    }
}

fn session() -> (Client, mpsc::Receiver<Stream>) {
    let (a, b) = tokio::io::duplex(1 << 20);
    (Client { codec: Codec::new(), io: a, buf: BytesMut::new() }, serve(b))
}

fn syn(id: u32, headers: Headers) -> Frame {
    Frame::SynStream { stream_id: id, associated: 0, priority: 0, fin: false, unidirectional: false, headers }
}

#[tokio::test]
async fn accepts_streams_replies_and_carries_data_both_ways() {
    let (mut client, mut streams) = session();
    client.send(syn(1, h(&[("streamtype", "data"), ("port", "80")]))).await;
    let mut s = streams.recv().await.unwrap();
    assert_eq!((s.id(), header(s.headers(), "port")), (1, Some("80")));
    assert_eq!(client.recv().await, Frame::SynReply { stream_id: 1, fin: false, headers: vec![] });

    client.send(Frame::Data { stream_id: 1, fin: false, data: Bytes::from_static(b"ping") }).await;
    client.send(Frame::Data { stream_id: 1, fin: true, data: Bytes::new() }).await;
    let mut got = Vec::new();
    s.read_to_end(&mut got).await.unwrap();
    assert_eq!(got, b"ping");

    s.write_all(b"pong").await.unwrap();
    s.shutdown().await.unwrap();
    assert_eq!(client.recv().await, Frame::Data { stream_id: 1, fin: false, data: Bytes::from_static(b"pong") });
    assert_eq!(client.recv().await, Frame::Data { stream_id: 1, fin: true, data: Bytes::new() });

    // Pings are answered; even stream ids (server-initiated) are refused.
    client.send(Frame::Ping(1)).await;
    assert_eq!(client.recv().await, Frame::Ping(1));
    client.send(syn(2, vec![])).await;
    assert_eq!(client.recv().await, Frame::RstStream { stream_id: 2, status: RST_PROTOCOL_ERROR });

    // After GOAWAY no new streams are accepted; the session ends when the peer hangs up.
    client.send(Frame::GoAway { last_good: 0, status: 0 }).await;
    assert!(streams.recv().await.is_none());
    client.send(syn(5, vec![])).await;
    assert_eq!(client.recv().await, Frame::RstStream { stream_id: 5, status: RST_REFUSED_STREAM });
    client.io.shutdown().await.unwrap();
    let mut rest = Vec::new();
    client.io.read_to_end(&mut rest).await.unwrap();
}

#[tokio::test]
async fn reset_streams_fail_reads_and_writes() {
    let (mut client, mut streams) = session();
    client.send(syn(1, vec![])).await;
    let mut s = streams.recv().await.unwrap();
    client.recv().await;
    client.send(Frame::RstStream { stream_id: 1, status: RST_CANCEL }).await;
    let mut b = [0u8; 4];
    let e = s.read(&mut b).await.unwrap_err();
    assert_eq!(e.kind(), io::ErrorKind::ConnectionReset);
    assert!(s.write_all(b"x").await.is_err());
}

#[tokio::test]
async fn send_window_is_enforced_once_the_peer_does_flow_control() {
    let (mut client, mut streams) = session();
    client.send(syn(1, vec![])).await;
    let mut s = streams.recv().await.unwrap();
    client.recv().await;
    // Without WINDOW_UPDATEs from the peer (spdystream), more than 64 KiB flows.
    let big = vec![7u8; 100 * 1024];
    s.write_all(&big).await.unwrap();
    let mut n = 0;
    while n < big.len() {
        match client.recv_no_window().await {
            Frame::Data { data, .. } => n += data.len(),
            f => panic!("{f:?}"),
        }
    }
    // A peer that sends SETTINGS with a small initial window gets exactly that much...
    client.send(Frame::Settings { entries: vec![(0, SETTINGS_INITIAL_WINDOW_SIZE, 10)] }).await;
    client.send(syn(3, vec![])).await;
    let mut s3 = streams.recv().await.unwrap();
    client.recv().await;
    let writer = tokio::spawn(async move {
        s3.write_all(b"0123456789abcdef").await.unwrap();
        s3
    });
    assert_eq!(
        client.recv_no_window().await,
        Frame::Data { stream_id: 3, fin: false, data: Bytes::from_static(b"0123456789") }
    );
    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    assert!(!writer.is_finished(), "blocked on the exhausted window");
    // ...and more after a WINDOW_UPDATE.
    client.send(Frame::WindowUpdate { stream_id: 3, delta: 100 }).await;
    assert_eq!(
        client.recv_no_window().await,
        Frame::Data { stream_id: 3, fin: false, data: Bytes::from_static(b"abcdef") }
    );
    writer.await.unwrap();
}

#[tokio::test]
async fn grants_receive_window_as_data_is_consumed() {
    let (mut client, mut streams) = session();
    client.send(syn(1, vec![])).await;
    let mut s = streams.recv().await.unwrap();
    client.recv().await;
    let chunk = Bytes::from(vec![1u8; 16 * 1024]);
    for _ in 0..2 {
        client.send(Frame::Data { stream_id: 1, fin: false, data: chunk.clone() }).await;
    }
    let mut got = vec![0u8; 32 * 1024];
    s.read_exact(&mut got).await.unwrap();
    assert_eq!(client.recv().await, Frame::WindowUpdate { stream_id: 1, delta: 32 * 1024 });
    assert_eq!(client.recv().await, Frame::WindowUpdate { stream_id: 0, delta: 32 * 1024 });
}
