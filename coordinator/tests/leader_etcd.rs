//! Cluster mode against a real etcd: the leader fence (a leader whose election key is gone
//! cannot commit), and replicas electing one leader, redirecting, and handing over. Without
//! `etcd` on PATH every test prints a skip line and passes
//! (with `STILTS_REQUIRE_ETCD=1` it fails instead).

mod store_factory;
mod support_etcd;

use std::time::{Duration, Instant};

use stilts_common::store::{Store, StoreError, WorkerRecord};
use stilts_coordinator::LEADER_METADATA;
use stilts_coordinator::store::etcd::{EtcdConfig, EtcdError, EtcdStore, Fence};
use stilts_proto::v1::GetSweepRequest;
use stilts_proto::v1::sweep_service_client::SweepServiceClient;

use support_etcd::{EtcdServer, Replica, replica, unique_prefix};

async fn store(server: &EtcdServer, prefix: &str) -> EtcdStore {
    EtcdStore::connect(EtcdConfig {
        prefix: prefix.to_owned(),
        startup_wait: std::time::Duration::ZERO,
        ..EtcdConfig::new([server.endpoint()])
    })
    .await
    .unwrap()
}

fn worker(id: &str) -> WorkerRecord {
    WorkerRecord {
        id: id.into(),
        name: id.into(),
        slots: 1,
        backend: "command".into(),
        labels: Default::default(),
        cached_artifacts: Vec::new(),
        lease_expires_at_ms: 0,
    }
}

fn is_deposed(e: &StoreError) -> bool {
    matches!(e, StoreError::Backend(b) if matches!(b.downcast_ref::<EtcdError>(), Some(EtcdError::Deposed { .. })))
}

#[tokio::test]
async fn a_deposed_leader_cannot_commit() {
    let Some(server) = EtcdServer::shared() else {
        return;
    };
    let prefix = unique_prefix("fence");
    let store = store(&server, &prefix).await;
    let election = format!("{prefix}election");
    let lease = store.grant_lease(Duration::from_secs(30)).await.unwrap();
    let mut elections = store.client().election_client();
    let won = elections
        .campaign(election.as_str(), "http://a:1", lease.id)
        .await
        .unwrap();
    let key = won.leader().unwrap();
    let fence = Fence::new(key.key().to_vec(), key.rev());
    let leader = store.fenced(fence.clone());
    leader.put_worker(worker("w1")).await.unwrap();
    leader.remove_worker("w1").await.unwrap();

    // The election key goes (lease revoked: what expiry does too); a successor is elected.
    store.revoke_lease(lease.id).await.unwrap();
    let next = store.grant_lease(Duration::from_secs(30)).await.unwrap();
    elections
        .campaign(election.as_str(), "http://b:2", next.id)
        .await
        .unwrap();

    let err = leader.put_worker(worker("w2")).await.unwrap_err();
    assert!(is_deposed(&err), "{err}");
    assert!(fence.deposed.is_cancelled());
    let err = leader.remove_worker("w2").await.unwrap_err();
    assert!(is_deposed(&err), "{err}");
    let snap = store.load().await.unwrap();
    assert!(
        snap.workers.iter().all(|w| w.id != "w2"),
        "a deposed write committed"
    );
    // The unfenced handle (the successor's view) still writes.
    store.put_worker(worker("w3")).await.unwrap();
}

/// `Ok(None)`: `url` leads; `Ok(Some(hint))`: a follower naming the leader; `Err`: unreachable
/// or no leader yet.
async fn probe(url: &str) -> Result<Option<String>, String> {
    let mut c = SweepServiceClient::connect(url.to_string())
        .await
        .map_err(|e| e.to_string())?;
    match c
        .get_sweep(GetSweepRequest {
            sweep: "none".into(),
        })
        .await
    {
        Err(s) if s.code() == tonic::Code::Unavailable => s
            .metadata()
            .get(LEADER_METADATA)
            .map(|v| Some(v.to_str().unwrap().to_owned()))
            .ok_or_else(|| s.message().to_owned()),
        _ => Ok(None),
    }
}

async fn leader_of(replicas: &[&Replica], limit: Duration) -> String {
    let deadline = Instant::now() + limit;
    loop {
        let mut leaders = Vec::new();
        let mut hints = Vec::new();
        for r in replicas {
            match probe(&r.url).await {
                Ok(None) => leaders.push(r.url.clone()),
                Ok(Some(h)) => hints.push(h),
                Err(_) => {}
            }
        }
        if leaders.len() == 1 && hints.len() + 1 == replicas.len() {
            assert!(hints.iter().all(|h| *h == leaders[0]), "{hints:?}");
            return leaders.remove(0);
        }
        assert!(leaders.len() <= 1, "two leaders serving: {leaders:?}");
        assert!(
            Instant::now() < deadline,
            "no single leader within {limit:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn replicas_elect_one_leader_redirect_and_hand_over() {
    let Some(server) = EtcdServer::shared() else {
        return;
    };
    let prefix = unique_prefix("replicas");
    let a = replica(&server, &prefix).await;
    let b = replica(&server, &prefix).await;
    let first = leader_of(&[&a, &b], Duration::from_secs(20)).await;
    let (old, other) = if first == a.url { (a, b) } else { (b, a) };
    let started = Instant::now();
    old.stop.cancel();
    old.task.await.unwrap();
    let second = leader_of(&[&other], Duration::from_secs(20)).await;
    assert_eq!(second, other.url);
    eprintln!("hand-over after a clean stop: {:?}", started.elapsed());
    other.stop.cancel();
    other.task.await.unwrap();
}
