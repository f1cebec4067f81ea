//! The DNS server end to end, on 127.0.0.1 only: the in-process API server feeds the real
//! watch path, a stub upstream on 127.0.0.1 stands in for the node's nameservers, and a
//! hickory client asks over UDP and TCP.

use std::future::Future;
use std::net::{Ipv4Addr, SocketAddr};
use std::str::FromStr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use hickory_server::net::client::{Client, ClientHandle};
use hickory_server::net::runtime::TokioRuntimeProvider;
use hickory_server::net::tcp::TcpClientStream;
use hickory_server::net::udp::UdpClientStream;
use hickory_server::proto::op::{Message, MessageType, ResponseCode};
use hickory_server::proto::rr::rdata::A;
use hickory_server::proto::rr::{DNSClass, Name, RData, Record, RecordType};
use k8s_openapi::api::core::v1::Service;
use k8s_openapi::api::discovery::v1::EndpointSlice;
use kube::Api;
use kube::api::{DeleteParams, PostParams};
use serde_json::json;
use skiff_dns::{ClusterDns, DnsConfig, DnsError};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, UdpSocket};
use tokio_util::sync::CancellationToken;

/// A stub upstream nameserver: `external.test` A is 192.0.2.10 (TTL 300); `big.test` A is 40
/// addresses, but over UDP only a truncated empty answer; anything else is NXDOMAIN.
struct Upstream {
    addr: SocketAddr,
    /// Queries it received over TCP.
    tcp_queries: Arc<AtomicUsize>,
}

impl Upstream {
    async fn start() -> Result<Upstream> {
        let udp = UdpSocket::bind("127.0.0.1:0").await?;
        let addr = udp.local_addr()?;
        let tcp = TcpListener::bind(addr).await.context("binding the stub's TCP port")?;
        tokio::spawn(async move {
            let mut buf = vec![0u8; 65535];
            while let Ok((n, peer)) = udp.recv_from(&mut buf).await {
                if let Ok(query) = Message::from_vec(&buf[..n])
                    && let Ok(bytes) = stub_answer(&query, true).to_vec()
                {
                    let _ = udp.send_to(&bytes, peer).await;
                }
            }
        });
        let tcp_queries = Arc::new(AtomicUsize::new(0));
        let counter = tcp_queries.clone();
        tokio::spawn(async move {
            while let Ok((mut stream, _)) = tcp.accept().await {
                let counter = counter.clone();
                tokio::spawn(async move {
                    let mut len = [0u8; 2];
                    while stream.read_exact(&mut len).await.is_ok() {
                        let mut buf = vec![0u8; usize::from(u16::from_be_bytes(len))];
                        if stream.read_exact(&mut buf).await.is_err() {
                            return;
                        }
                        counter.fetch_add(1, Ordering::SeqCst);
                        let Ok(query) = Message::from_vec(&buf) else { return };
                        let Ok(bytes) = stub_answer(&query, false).to_vec() else { return };
                        let Ok(n) = u16::try_from(bytes.len()) else { return };
                        if stream.write_all(&n.to_be_bytes()).await.is_err() || stream.write_all(&bytes).await.is_err()
                        {
                            return;
                        }
                    }
                });
            }
        });
        Ok(Upstream { addr, tcp_queries })
    }
}

fn stub_answer(query: &Message, udp: bool) -> Message {
    let mut response = Message::new(query.metadata.id, MessageType::Response, query.metadata.op_code);
    response.metadata.recursion_desired = query.metadata.recursion_desired;
    response.metadata.recursion_available = true;
    response.add_queries(query.queries.clone());
    let Some(q) = query.queries.first() else {
        response.metadata.response_code = ResponseCode::FormErr;
        return response;
    };
    let a = |ip: Ipv4Addr| Record::from_rdata(q.name().clone(), 300, RData::A(A(ip)));
    match (q.name().to_lowercase().to_ascii().as_str(), q.query_type()) {
        ("external.test.", RecordType::A) => {
            response.add_answer(a(Ipv4Addr::new(192, 0, 2, 10)));
        }
        ("external.test.", _) => {}
        ("big.test.", RecordType::A) if udp => response.metadata.truncation = true,
        ("big.test.", RecordType::A) => {
            response.add_answers((1..=40).map(|i| a(Ipv4Addr::new(198, 51, 100, i))));
        }
        _ => response.metadata.response_code = ResponseCode::NXDomain,
    }
    response
}

async fn udp_client(addr: SocketAddr) -> Client<TokioRuntimeProvider> {
    let stream = UdpClientStream::builder(addr, TokioRuntimeProvider::default()).build();
    let (client, bg) = Client::<TokioRuntimeProvider>::from_sender(stream);
    tokio::spawn(bg);
    client
}

async fn tcp_client(addr: SocketAddr) -> Result<Client<TokioRuntimeProvider>> {
    let (connect, sender) = TcpClientStream::new(addr, None, None, TokioRuntimeProvider::new());
    let (client, bg) = Client::<TokioRuntimeProvider>::new(connect.await?, sender);
    tokio::spawn(bg);
    Ok(client)
}

async fn query(client: &mut Client<TokioRuntimeProvider>, name: &str, qtype: RecordType) -> Result<Message> {
    let response = client
        .query(Name::from_str(name)?, DNSClass::IN, qtype)
        .await
        .with_context(|| format!("while querying {name} {qtype}"))?;
    Ok(response.into_message())
}

fn addresses(m: &Message) -> Vec<String> {
    let mut out: Vec<String> = m
        .answers
        .iter()
        .filter_map(|r| match &r.data {
            RData::A(a) => Some(a.0.to_string()),
            RData::AAAA(a) => Some(a.0.to_string()),
            _ => None,
        })
        .collect();
    out.sort();
    out
}

/// Poll `f` until it yields a value (or fail after 20 s, naming `what`).
async fn eventually<T, F, Fut>(what: &str, mut f: F) -> Result<T>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<Option<T>>>,
{
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let last = f().await;
        match last {
            Ok(Some(v)) => return Ok(v),
            Ok(None) | Err(_) if Instant::now() < deadline => tokio::time::sleep(Duration::from_millis(50)).await,
            Ok(None) => bail!("timed out waiting for {what}"),
            Err(e) => return Err(e.context(format!("timed out waiting for {what}"))),
        }
    }
}

fn config(upstreams: Vec<SocketAddr>) -> DnsConfig {
    DnsConfig {
        cluster_domain: "cluster.local".to_string(),
        listen: vec!["127.0.0.1:0".parse().expect("a socket address")],
        upstreams,
        ttl: 5,
    }
}

fn assert_authoritative_nxdomain(m: &Message) {
    assert_eq!(m.metadata.response_code, ResponseCode::NXDomain, "{m:?}");
    assert!(m.metadata.authoritative, "{m:?}");
    assert!(m.answers.is_empty());
    assert!(
        matches!(&m.authorities[..], [soa] if matches!(&soa.data, RData::SOA(s) if s.mname.to_ascii() == "ns.dns.cluster.local.")),
        "{m:?}"
    );
}

#[tokio::test]
async fn serves_the_cluster_over_udp_and_tcp_from_live_watches() -> Result<()> {
    let api = skiff_testkit::InProcess::start().await;
    let client = api.server.client("admin", &["system:masters"]);
    let upstream = Upstream::start().await?;
    let dns = ClusterDns::bind(client.clone(), config(vec![upstream.addr])).await?;
    let addr = dns.local_addrs()[0];
    assert_ne!(addr.port(), 0);
    let shutdown = CancellationToken::new();
    let server = tokio::spawn(dns.run(shutdown.clone()));
    let mut udp = udp_client(addr).await;
    let mut tcp = tcp_client(addr).await?;

    // The bootstrap `kubernetes` Service answers once the watches have listed.
    let m = eventually("kubernetes.default over UDP", || {
        let mut udp = udp.clone();
        async move {
            let m = query(&mut udp, "kubernetes.default.svc.cluster.local.", RecordType::A).await?;
            Ok((m.metadata.response_code == ResponseCode::NoError && !m.answers.is_empty()).then_some(m))
        }
    })
    .await?;
    assert_eq!(addresses(&m), ["10.43.0.1"]);
    assert!(m.metadata.authoritative);
    assert_eq!(m.answers[0].ttl, 5);

    // A Service created through the API appears, over UDP and TCP.
    let services: Api<Service> = Api::namespaced(client.clone(), "default");
    let web: Service = serde_json::from_value(json!({
        "metadata": {"name": "web"},
        "spec": {"ports": [{"name": "http", "port": 80, "protocol": "TCP"}]},
    }))?;
    let web = services.create(&PostParams::default(), &web).await?;
    let web_ip = web.spec.and_then(|s| s.cluster_ip).context("the Service got no ClusterIP")?;
    let m = eventually("web over UDP", || {
        let mut udp = udp.clone();
        async move {
            let m = query(&mut udp, "web.default.svc.cluster.local.", RecordType::A).await?;
            Ok((!m.answers.is_empty()).then_some(m))
        }
    })
    .await?;
    assert_eq!(addresses(&m), [web_ip.as_str()]);
    let m = query(&mut tcp, "WEB.default.svc.cluster.local.", RecordType::A).await?;
    assert_eq!(addresses(&m), [web_ip.as_str()]);
    assert!(m.metadata.authoritative);
    let m = query(&mut tcp, "_http._tcp.web.default.svc.cluster.local.", RecordType::SRV).await?;
    assert!(
        matches!(&m.answers[..], [srv] if matches!(&srv.data, RData::SRV(s) if s.port == 80 && s.target.to_ascii() == "web.default.svc.cluster.local.")),
        "{m:?}"
    );
    let reverse = format!("{}.in-addr.arpa.", web_ip.split('.').rev().collect::<Vec<_>>().join("."));
    let m = query(&mut udp, &reverse, RecordType::PTR).await?;
    assert!(
        matches!(&m.answers[..], [ptr] if matches!(&ptr.data, RData::PTR(p) if p.0.to_ascii() == "web.default.svc.cluster.local.")),
        "{m:?}"
    );

    // A headless Service and its EndpointSlice: only the ready endpoint is published.
    let db: Service = serde_json::from_value(json!({
        "metadata": {"name": "db"},
        "spec": {"clusterIP": "None", "ports": [{"name": "pg", "port": 5432, "protocol": "TCP"}]},
    }))?;
    services.create(&PostParams::default(), &db).await?;
    let slices: Api<EndpointSlice> = Api::namespaced(client.clone(), "default");
    let slice: EndpointSlice = serde_json::from_value(json!({
        "metadata": {"name": "db-1", "labels": {"kubernetes.io/service-name": "db"}},
        "addressType": "IPv4",
        "endpoints": [
            {"addresses": ["10.1.0.5"], "hostname": "db-0", "conditions": {"ready": true}},
            {"addresses": ["10.1.0.6"], "hostname": "db-1", "conditions": {"ready": false}},
        ],
        "ports": [{"name": "pg", "port": 5432, "protocol": "TCP"}],
    }))?;
    slices.create(&PostParams::default(), &slice).await?;
    let m = eventually("db over TCP", || {
        let mut tcp = tcp.clone();
        async move {
            let m = query(&mut tcp, "db.default.svc.cluster.local.", RecordType::A).await?;
            Ok((!m.answers.is_empty()).then_some(m))
        }
    })
    .await?;
    assert_eq!(addresses(&m), ["10.1.0.5"]);
    let m = query(&mut udp, "db-0.db.default.svc.cluster.local.", RecordType::A).await?;
    assert_eq!(addresses(&m), ["10.1.0.5"]);
    assert_authoritative_nxdomain(&query(&mut udp, "db-1.db.default.svc.cluster.local.", RecordType::A).await?);

    // Names outside the zone go to the upstream, over both transports; its TTLs are kept.
    for client in [&mut udp, &mut tcp] {
        let m = query(client, "external.test.", RecordType::A).await?;
        assert_eq!(addresses(&m), ["192.0.2.10"]);
        assert_eq!(m.answers[0].ttl, 300);
        assert!(!m.metadata.authoritative);
        let m = query(client, "missing.test.", RecordType::A).await?;
        assert_eq!(m.metadata.response_code, ResponseCode::NXDomain);
    }

    // An ExternalName Service: the CNAME, completed by the upstream.
    let ext: Service = serde_json::from_value(json!({
        "metadata": {"name": "ext"},
        "spec": {"type": "ExternalName", "externalName": "external.test"},
    }))?;
    services.create(&PostParams::default(), &ext).await?;
    let m = eventually("the ExternalName", || {
        let mut udp = udp.clone();
        async move {
            let m = query(&mut udp, "ext.default.svc.cluster.local.", RecordType::A).await?;
            Ok((!m.answers.is_empty()).then_some(m))
        }
    })
    .await?;
    assert!(matches!(&m.answers[0].data, RData::CNAME(c) if c.0.to_ascii() == "external.test."), "{m:?}");
    assert_eq!(addresses(&m), ["192.0.2.10"]);

    // A big upstream answer: the forwarder retries a truncated UDP answer over TCP; a UDP
    // client without EDNS (512 bytes) gets TC and the whole answer over TCP.
    let mut small = udp_client(addr).await;
    small.disable_edns();
    let m = query(&mut small, "big.test.", RecordType::A).await?;
    assert!(m.metadata.truncation, "{m:?}");
    assert!(upstream.tcp_queries.load(Ordering::SeqCst) >= 1, "the forwarder never retried over TCP");
    let m = query(&mut tcp, "big.test.", RecordType::A).await?;
    assert!(!m.metadata.truncation);
    assert_eq!(m.answers.len(), 40);

    // Deleting makes the names go away: NXDOMAIN, authoritative, with the SOA.
    services.delete("web", &DeleteParams::default()).await?;
    eventually("web to disappear", || {
        let mut udp = udp.clone();
        async move {
            let m = query(&mut udp, "web.default.svc.cluster.local.", RecordType::A).await?;
            Ok((m.metadata.response_code == ResponseCode::NXDomain).then_some(()))
        }
    })
    .await?;
    assert_authoritative_nxdomain(&query(&mut tcp, "web.default.svc.cluster.local.", RecordType::A).await?);
    slices.delete("db-1", &DeleteParams::default()).await?;
    eventually("db's endpoints to disappear", || {
        let mut tcp = tcp.clone();
        async move {
            let m = query(&mut tcp, "db.default.svc.cluster.local.", RecordType::A).await?;
            Ok((m.metadata.response_code == ResponseCode::NXDomain).then_some(()))
        }
    })
    .await?;

    shutdown.cancel();
    tokio::time::timeout(Duration::from_secs(10), server).await.context("the server did not stop")???;
    Ok(())
}

#[tokio::test]
async fn servfail_when_no_upstream_answers() -> Result<()> {
    let api = skiff_testkit::InProcess::start().await;
    // An upstream that never answers.
    let silent = UdpSocket::bind("127.0.0.1:0").await?;
    let dns =
        ClusterDns::bind(api.server.client("admin", &["system:masters"]), config(vec![silent.local_addr()?])).await?;
    let addr = dns.local_addrs()[0];
    let shutdown = CancellationToken::new();
    let server = tokio::spawn(dns.run(shutdown.clone()));
    let mut tcp = tcp_client(addr).await?;
    let m = query(&mut tcp, "external.test.", RecordType::A).await?;
    assert_eq!(m.metadata.response_code, ResponseCode::ServFail);
    shutdown.cancel();
    tokio::time::timeout(Duration::from_secs(10), server).await.context("the server did not stop")???;
    Ok(())
}

#[tokio::test]
async fn a_bind_failure_names_the_address() -> Result<()> {
    let api = skiff_testkit::InProcess::start().await;
    let taken = UdpSocket::bind("127.0.0.1:0").await?;
    let addr = taken.local_addr()?;
    let config = DnsConfig { listen: vec![addr], ..config(Vec::new()) };
    let Err(error) = ClusterDns::bind(api.server.client("admin", &["system:masters"]), config).await else {
        bail!("binding a taken port succeeded");
    };
    assert!(matches!(error, DnsError::Bind { addr: a, protocol: "udp", .. } if a == addr), "{error:?}");
    assert!(error.to_string().contains(&addr.to_string()), "{error}");
    Ok(())
}
