//! The standard gRPC services on the coordinator's port, over real loopback gRPC: health
//! (`grpc.health.v1`) per role — a single coordinator and the leader SERVING, a follower and
//! replicas without etcd NOT_SERVING, `liveness` SERVING throughout — and server reflection read
//! with tonic-reflection's own client, the way grpcurl lists and describes the API.
//! The cluster test needs `etcd` on PATH (else it prints a skip line and passes, or fails with
//! `STILTS_REQUIRE_ETCD=1`).

mod store_factory;
mod support_etcd;

use std::sync::Arc;
use std::time::{Duration, Instant};

use prost::Message;
use stilts_common::clock::SystemClock;
use stilts_coordinator::store::sqlite::SqliteStore;
use stilts_coordinator::{CoordinatorConfig, LIVENESS};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tonic::transport::Endpoint;
use tonic_health::pb::HealthCheckRequest;
use tonic_health::pb::health_check_response::ServingStatus;
use tonic_health::pb::health_client::HealthClient;
use tonic_reflection::pb::v1::server_reflection_client::ServerReflectionClient;
use tonic_reflection::pb::v1::server_reflection_request::MessageRequest;
use tonic_reflection::pb::v1::server_reflection_response::MessageResponse;
use tonic_reflection::pb::v1::{ServerReflectionRequest, ServerReflectionResponse};

use support_etcd::{EtcdServer, replica, unique_prefix};

const API: &str = "";
const WORKER_SERVICE: &str = "stilts.v1.WorkerService";
const SWEEP_SERVICE: &str = "stilts.v1.SweepService";

/// The status `url` reports for `service`; `Err` when unreachable or the call fails.
async fn health(url: &str, service: &str) -> Result<ServingStatus, String> {
    let call = async {
        let channel = Endpoint::from_shared(url.to_owned())
            .map_err(|e| e.to_string())?
            .connect()
            .await
            .map_err(|e| e.to_string())?;
        let mut client = HealthClient::new(channel);
        let reply = client
            .check(HealthCheckRequest {
                service: service.to_owned(),
            })
            .await
            .map_err(|s| format!("{:?}: {}", s.code(), s.message()))?;
        Ok(reply.into_inner().status())
    };
    tokio::time::timeout(Duration::from_secs(3), call)
        .await
        .unwrap_or_else(|_| Err("timed out".into()))
}

/// Polls until `ok` holds for the statuses of `urls` (same order), or panics after `limit`.
async fn wait_for(
    what: &str,
    urls: &[&str],
    service: &str,
    limit: Duration,
    ok: impl Fn(&[Result<ServingStatus, String>]) -> bool,
) -> Vec<Result<ServingStatus, String>> {
    let deadline = Instant::now() + limit;
    loop {
        let mut seen = Vec::new();
        for url in urls {
            seen.push(health(url, service).await);
        }
        if ok(&seen) {
            return seen;
        }
        assert!(
            Instant::now() < deadline,
            "{what}: not within {limit:?}; last seen {seen:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// One request over a reflection stream.
async fn reflect(url: &str, request: MessageRequest) -> Result<MessageResponse, tonic::Status> {
    let channel = Endpoint::from_shared(url.to_owned())
        .unwrap()
        .connect()
        .await
        .unwrap();
    let mut client = ServerReflectionClient::new(channel);
    let request = ServerReflectionRequest {
        host: String::new(),
        message_request: Some(request),
    };
    let mut replies = client
        .server_reflection_info(tokio_stream::iter([request]))
        .await
        .unwrap()
        .into_inner();
    let reply: ServerReflectionResponse = replies.message().await?.expect("a reply");
    Ok(reply.message_response.expect("a message response"))
}

#[tokio::test]
async fn a_single_coordinator_serves_health_and_reflection() {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(dir.path().join("state.db")).unwrap();
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let stop = CancellationToken::new();
    let server = tokio::spawn(stilts_coordinator::run(
        CoordinatorConfig::default(),
        listener,
        store,
        Arc::new(SystemClock),
        stop.clone(),
    ));

    let url = url.as_str();
    wait_for("serving", &[url], API, Duration::from_secs(20), |s| {
        s[0] == Ok(ServingStatus::Serving)
    })
    .await;
    for service in [WORKER_SERVICE, SWEEP_SERVICE, LIVENESS] {
        assert_eq!(
            health(url, service).await,
            Ok(ServingStatus::Serving),
            "{service}"
        );
    }
    let unknown = health(url, "no.such.Service").await.unwrap_err();
    assert!(unknown.starts_with("NotFound"), "{unknown}");

    // grpcurl's `list`: every service, ours and the standard ones.
    let MessageResponse::ListServicesResponse(list) =
        reflect(url, MessageRequest::ListServices(String::new()))
            .await
            .unwrap()
    else {
        panic!("not a service list");
    };
    let names: Vec<&str> = list.service.iter().map(|s| s.name.as_str()).collect();
    for want in [
        WORKER_SERVICE,
        SWEEP_SERVICE,
        "grpc.health.v1.Health",
        "grpc.reflection.v1.ServerReflection",
    ] {
        assert!(names.contains(&want), "{want} missing from {names:?}");
    }

    // grpcurl's `describe` (what it needs to build a call): the file declaring a service, with
    // its methods and their message types.
    let MessageResponse::FileDescriptorResponse(files) = reflect(
        url,
        MessageRequest::FileContainingSymbol(SWEEP_SERVICE.into()),
    )
    .await
    .unwrap() else {
        panic!("not a file descriptor");
    };
    let file = files
        .file_descriptor_proto
        .iter()
        .map(|bytes| prost_types::FileDescriptorProto::decode(bytes.as_slice()).unwrap())
        .find(|f| f.package() == "stilts.v1")
        .expect("stilts.v1's file");
    let sweep = file
        .service
        .iter()
        .find(|s| s.name() == "SweepService")
        .expect("SweepService in its file");
    let list_sweeps = sweep
        .method
        .iter()
        .find(|m| m.name() == "ListSweeps")
        .expect("ListSweeps");
    assert_eq!(list_sweeps.input_type(), ".stilts.v1.ListSweepsRequest");
    assert!(
        file.message_type
            .iter()
            .any(|m| m.name() == "ListSweepsRequest")
    );
    let unknown = reflect(
        url,
        MessageRequest::FileContainingSymbol("stilts.v1.NoSuchService".into()),
    )
    .await
    .expect_err("an unknown symbol was described");
    assert_eq!(unknown.code(), tonic::Code::NotFound, "{unknown:?}");

    stop.cancel();
    server.await.unwrap().unwrap();
}

fn one_serving(seen: &[Result<ServingStatus, String>]) -> bool {
    let serving = seen
        .iter()
        .filter(|s| **s == Ok(ServingStatus::Serving))
        .count();
    let not = seen
        .iter()
        .filter(|s| **s == Ok(ServingStatus::NotServing))
        .count();
    serving == 1 && serving + not == seen.len()
}

#[tokio::test]
async fn health_follows_the_replica_role_and_the_store() {
    // Its own etcd: this test stops it.
    let Some(mut etcd) = EtcdServer::start() else {
        return;
    };
    let prefix = unique_prefix("health");
    let a = replica(&etcd, &prefix).await;
    let b = replica(&etcd, &prefix).await;
    let urls = [a.url.as_str(), b.url.as_str()];

    // One leader SERVING, the follower NOT_SERVING (for the server and each API service).
    let seen = wait_for(
        "one leader",
        &urls,
        API,
        Duration::from_secs(30),
        one_serving,
    )
    .await;
    let (leader, follower) = if seen[0] == Ok(ServingStatus::Serving) {
        (&a, &b)
    } else {
        (&b, &a)
    };
    for service in [WORKER_SERVICE, SWEEP_SERVICE] {
        assert_eq!(
            health(&leader.url, service).await,
            Ok(ServingStatus::Serving),
            "{service}"
        );
        assert_eq!(
            health(&follower.url, service).await,
            Ok(ServingStatus::NotServing),
            "{service}"
        );
    }
    for url in urls {
        assert_eq!(health(url, LIVENESS).await, Ok(ServingStatus::Serving));
    }

    // etcd gone: nobody serves the API, both still answer (and are alive).
    etcd.kill9();
    let started = Instant::now();
    wait_for(
        "no leader without etcd",
        &urls,
        API,
        Duration::from_secs(60),
        |s| s.iter().all(|s| *s == Ok(ServingStatus::NotServing)),
    )
    .await;
    eprintln!(
        "API NOT_SERVING on both {:?} after etcd stopped",
        started.elapsed()
    );
    for url in urls {
        assert_eq!(health(url, LIVENESS).await, Ok(ServingStatus::Serving));
    }

    // etcd back: a leader again.
    etcd.restart();
    wait_for(
        "a leader after etcd returned",
        &urls,
        API,
        Duration::from_secs(90),
        one_serving,
    )
    .await;

    for r in [a, b] {
        r.stop.cancel();
        r.task.await.unwrap();
    }
}
