//! The etcd backend against a real etcd server: the whole conformance suite (a fresh key prefix
//! per test on one shared server), then etcd-specific behaviour: stale transactions, kill -9 of
//! etcd, event order under concurrent writers, chunked and half-done submits, leases, start-up
//! errors. Without `etcd` on PATH every test prints a skip line and passes
//! (with `STILTS_REQUIRE_ETCD=1` it fails instead).

mod conformance;
mod store_factory;
mod support_etcd;

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::{Duration, Instant};

use etcd_client::{GetOptions, PutOptions};
use stilts_common::state::JobState;
use stilts_common::store::{CellRecord, JobRecord, Snapshot, Store, StoreError, WorkerRecord};
use stilts_coordinator::store::etcd::{EtcdConfig, EtcdError, EtcdStore, EtcdTlsConfig};
use tokio_util::sync::CancellationToken;

use conformance::fixtures::{evaluate_key, grid, intermediate_key, transition, worker};
use support_etcd::{EtcdFactory, EtcdServer, unique_prefix};

fn config(server: &EtcdServer, prefix: &str) -> EtcdConfig {
    EtcdConfig {
        prefix: prefix.to_owned(),
        startup_wait: Duration::ZERO,
        ..EtcdConfig::new([server.endpoint()])
    }
}

async fn connect(server: &EtcdServer, prefix: &str) -> EtcdStore {
    EtcdStore::connect(config(server, prefix))
        .await
        .expect("connect to the test etcd")
}

store_conformance_suite!(match EtcdFactory::shared("conformance") {
    Some(factory) => factory,
    None => return,
});

/// A private server (for tests that kill it) or the shared one, with a fresh store on it.
async fn private_store(tag: &str) -> Option<(EtcdServer, EtcdStore)> {
    let server = EtcdServer::start()?;
    let store = connect(&server, &unique_prefix(tag)).await;
    Some((server, store))
}

async fn shared_store(tag: &str) -> Option<(Arc<EtcdServer>, EtcdStore)> {
    let server = EtcdServer::shared()?;
    let store = connect(&server, &unique_prefix(tag)).await;
    Some((server, store))
}

fn job_of(snap: &Snapshot, key: &str) -> JobRecord {
    snap.jobs
        .iter()
        .find(|(j, _)| j.key == key)
        .map(|(j, _)| j.clone())
        .unwrap_or_else(|| panic!("job {key} not loaded"))
}

/// Every key under the store's prefix with its mod revision (the server is shared, so the
/// global revision moves with other tests).
async fn revisions(store: &EtcdStore) -> Vec<(Vec<u8>, i64)> {
    let prefix = store.config().prefix.clone();
    let opts = GetOptions::new().with_prefix().with_keys_only();
    let resp = store
        .client()
        .kv_client()
        .get(prefix, Some(opts))
        .await
        .unwrap();
    resp.kvs()
        .iter()
        .map(|kv| (kv.key().to_vec(), kv.mod_revision()))
        .collect()
}

#[tokio::test]
async fn stale_revision_txn_changes_nothing_in_etcd() {
    let Some((_server, store)) = shared_store("stale").await else {
        return;
    };
    let (sweep, jobs, cells) = grid("s", "d", &["xnli"]);
    store.submit(sweep, jobs, cells).await.unwrap();
    let job = job_of(&store.load().await.unwrap(), &intermediate_key(1));
    assert_eq!(
        job.version, 1,
        "a job's first version is 1 (etcd key version)"
    );
    let won = store
        .update_jobs(vec![transition(&job, JobState::Leased, "w1", 1)])
        .await
        .unwrap();
    assert_eq!(won, vec![Ok(2)], "version = expected + 1");

    let before = revisions(&store).await;
    let lost = store
        .update_jobs(vec![transition(&job, JobState::Cancelled, "w2", 2)])
        .await
        .unwrap();
    assert_eq!(lost[0].as_ref().unwrap_err().actual, 2);
    // Not one key was written: every put moves a key's mod revision.
    assert_eq!(revisions(&store).await, before);
    let stored = job_of(&store.load().await.unwrap(), &job.key);
    assert_eq!(stored.status.state, JobState::Leased);
    assert_eq!(stored.worker_id.as_deref(), Some("w1"));
    assert_eq!(store.events_after(0, 10).await.unwrap().len(), 1);
}

#[tokio::test]
async fn kill_dash_nine_of_etcd_keeps_everything() {
    let Some((mut server, store)) = private_store("restart").await else {
        return;
    };
    let prefix = store.config().prefix.clone();
    let (sweep, jobs, cells) = grid("s", "d", &["xnli", "pawsx"]);
    store.submit(sweep, jobs, cells.clone()).await.unwrap();
    let snap = store.load().await.unwrap();
    let job = job_of(&snap, &evaluate_key("xnli", 1));
    let v = store
        .update_jobs(vec![transition(&job, JobState::Leased, "w1", 5)])
        .await
        .unwrap()[0]
        .clone()
        .unwrap();
    store.put_worker(worker("w1", 2)).await.unwrap();
    store.set_sweep_cancelled("s", true).await.unwrap();
    let before = store.load().await.unwrap();
    let events = store.events_after(0, 100).await.unwrap();
    drop(store);

    server.kill9();
    let down = EtcdStore::connect(config(&server, &prefix))
        .await
        .unwrap_err();
    assert!(down.to_string().contains(&server.endpoint()), "{down}");
    server.restart();

    let store = connect(&server, &prefix).await;
    let after = store.load().await.unwrap();
    assert_eq!(after.sweeps, before.sweeps);
    assert_eq!(after.jobs, before.jobs);
    assert_eq!(after.workers, before.workers);
    assert_eq!(after.last_event_seq, before.last_event_seq);
    assert_eq!(store.events_after(0, 100).await.unwrap(), events);
    assert_eq!(store.cells("s").await.unwrap(), cells);
    // The token handed out before the crash is still the current one.
    let mut leased = job_of(&after, &job.key);
    assert_eq!(leased.version, v);
    leased.status.state = JobState::Leased;
    let done = store
        .update_jobs(vec![transition(&leased, JobState::Succeeded, "w1", 6)])
        .await
        .unwrap();
    assert_eq!(done, vec![Ok(v + 1)]);
    let last = store.events_after(before.last_event_seq, 10).await.unwrap();
    assert_eq!(last.len(), 1);
    assert_eq!(last[0].seq, before.last_event_seq + 1);
}

#[tokio::test]
async fn events_stay_dense_and_ordered_under_concurrent_writers() {
    let Some((server, store)) = shared_store("events").await else {
        return;
    };
    let targets: Vec<String> = (0..30).map(|i| format!("t{i}")).collect();
    let targets: Vec<&str> = targets.iter().map(String::as_str).collect();
    let (sweep, jobs, cells) = grid("s", "d", &targets);
    store.submit(sweep, jobs, cells).await.unwrap();
    let snap = store.load().await.unwrap();
    // A second handle stands for a second coordinator process writing at the same time.
    let other = connect(&server, &store.config().prefix).await;
    let all: Vec<JobRecord> = snap.jobs.iter().map(|(j, _)| j.clone()).collect();
    let (left, right) = all.split_at(all.len() / 2);
    let write = |s: EtcdStore, jobs: Vec<JobRecord>| async move {
        let mut ok = 0;
        for chunk in jobs.chunks(7) {
            let updates = chunk
                .iter()
                .map(|j| transition(j, JobState::Cancelled, "user", 1))
                .collect();
            ok += s
                .update_jobs(updates)
                .await
                .unwrap()
                .iter()
                .filter(|r| r.is_ok())
                .count();
        }
        ok
    };
    let (a, b) = tokio::join!(
        write(store.clone(), left.to_vec()),
        write(other.clone(), right.to_vec())
    );
    assert_eq!(a + b, all.len());

    let events = store.events_after(0, 10_000).await.unwrap();
    let seqs: Vec<u64> = events.iter().map(|e| e.seq).collect();
    assert_eq!(
        seqs,
        (1..=all.len() as u64).collect::<Vec<_>>(),
        "dense, in order"
    );
    let keys: BTreeSet<&str> = events.iter().map(|e| e.job_key.as_str()).collect();
    assert_eq!(keys.len(), all.len(), "one event per job");
    // Paging in threes gives the same log.
    let mut paged = Vec::new();
    let mut after = 0;
    loop {
        let page = other.events_after(after, 3).await.unwrap();
        let Some(last) = page.last() else { break };
        after = last.seq;
        paged.extend(page);
    }
    assert_eq!(paged, events);
    assert_eq!(store.load().await.unwrap().last_event_seq, all.len() as u64);
}

#[tokio::test]
async fn one_call_may_write_a_job_twice_and_exceed_one_transaction() {
    let Some((server, _)) = shared_store("batch").await else {
        return;
    };
    // Small transactions force many of them.
    let cfg = EtcdConfig {
        max_txn_ops: 16,
        ..config(&server, &unique_prefix("batch-small"))
    };
    let store = EtcdStore::connect(cfg).await.unwrap();
    let targets: Vec<String> = (0..20).map(|i| format!("t{i}")).collect();
    let targets: Vec<&str> = targets.iter().map(String::as_str).collect();
    let (sweep, jobs, cells) = grid("s", "d", &targets);
    let outcome = store
        .submit(sweep, jobs.clone(), cells.clone())
        .await
        .unwrap();
    assert_eq!(outcome.jobs_inserted, jobs.len() as u64);
    assert_eq!(store.cells("s").await.unwrap(), cells);
    let snap = store.load().await.unwrap();
    let mut updates = Vec::new();
    for (job, _) in &snap.jobs {
        let first = transition(job, JobState::Cancelled, "user", 1);
        let mut again = first.record.clone();
        again.version = job.version + 1;
        updates.push(first);
        updates.push(transition(&again, JobState::Ready, "user", 2));
    }
    let got = store.update_jobs(updates).await.unwrap();
    assert!(got.iter().all(Result::is_ok), "{got:?}");
    let after = store.load().await.unwrap();
    assert!(after.jobs.iter().all(|(j, _)| j.version == 3));
    let events = store.events_after(0, 10_000).await.unwrap();
    assert_eq!(events.len(), 2 * snap.jobs.len());
    assert!(events.windows(2).all(|w| w[0].seq + 1 == w[1].seq));
}

#[tokio::test]
async fn chunked_submit_of_ten_thousand_cells_and_a_half_done_submit_resumes() {
    let Some((_server, store)) = shared_store("cells").await else {
        return;
    };
    let (sweep, jobs, _) = grid("big", "d", &["xnli"]);
    let cells: Vec<CellRecord> = (0..10_000u64)
        .map(|i| CellRecord {
            model: format!("m{}", i % 6),
            intermediate: "mnli".into(),
            target: "xnli".into(),
            language: format!("l{}", i % 20),
            seed: i % 3,
            evaluate_job: format!("{:064x}", i),
        })
        .collect();
    // Simulate a submit that died after its first transaction: one job, its membership and a
    // cell chunk are there, the sweep record is not.
    let raw = store.client().clone();
    let prefix = store.config().prefix.clone();
    let half = &jobs[0];
    raw.kv_client()
        .put(
            format!("{prefix}jobs/{}", half.key),
            serde_json::to_vec(half).unwrap(),
            None,
        )
        .await
        .unwrap();
    raw.kv_client()
        .put(format!("{prefix}members/big/{}", half.key), "", None)
        .await
        .unwrap();
    raw.kv_client()
        .put(format!("{prefix}cells/big/000099"), "[]", None)
        .await
        .unwrap();
    let snap = store.load().await.unwrap();
    assert!(
        snap.sweeps.is_empty() && snap.jobs.is_empty(),
        "half-done submit is visible"
    );
    assert!(matches!(
        store.cells("big").await,
        Err(StoreError::SweepNotFound(_))
    ));

    let outcome = store
        .submit(sweep.clone(), jobs.clone(), cells.clone())
        .await
        .unwrap();
    assert!(outcome.sweep_created);
    assert_eq!(outcome.jobs_inserted, jobs.len() as u64 - 1);
    assert_eq!(store.cells("big").await.unwrap(), cells);
    let snap = store.load().await.unwrap();
    assert_eq!(snap.sweeps, vec![sweep]);
    assert_eq!(snap.jobs.len(), jobs.len());
    let fp = store.footprint("big").await.unwrap();
    assert_eq!((fp.cells, fp.cell_keys), (10_000, 10));
    eprintln!(
        "10,000 cells: {} keys, {} bytes; {fp:?}",
        fp.cell_keys, fp.cell_bytes
    );
    assert!(fp.cell_bytes < 1_500_000, "{fp:?}");
}

#[tokio::test]
async fn worker_keys_follow_their_lease() {
    let Some((_server, store)) = shared_store("lease").await else {
        return;
    };
    let raw = store.client().clone();
    let key = format!("{}workers/w1", store.config().prefix);
    let lease_of = |raw: etcd_client::Client, key: String| async move {
        let resp = raw.kv_client().get(key, None).await.unwrap();
        resp.kvs().first().map(|kv| kv.lease())
    };

    let grant = store.grant_lease(Duration::from_secs(2)).await.unwrap();
    store
        .put_worker_leased(worker("w1", 2), grant.id)
        .await
        .unwrap();
    // A plain put_worker (renewal of other fields) keeps the lease.
    let mut renewed = worker("w1", 2);
    renewed.cached_artifacts.push("k".into());
    store.put_worker(renewed.clone()).await.unwrap();
    assert_eq!(lease_of(raw.clone(), key.clone()).await, Some(grant.id));
    assert_eq!(store.load().await.unwrap().workers, vec![renewed]);

    // Kept alive, the key outlives its TTL.
    let cancel = CancellationToken::new();
    let keeper = store.spawn_keep_alive(grant.id, Duration::from_millis(300), cancel.clone());
    let mut refresher = store.keep_alive(grant.id).await.unwrap();
    assert!(refresher.refresh().await.unwrap() >= Duration::from_secs(1));
    let kept_until = Instant::now() + grant.ttl + Duration::from_secs(1);
    while Instant::now() < kept_until {
        assert!(
            lease_of(raw.clone(), key.clone()).await.is_some(),
            "expired while kept alive"
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    cancel.cancel();
    keeper.await.unwrap().unwrap();
    drop(refresher);

    // Left alone, etcd deletes it after the TTL.
    let deadline = Instant::now() + grant.ttl + Duration::from_secs(10);
    while lease_of(raw.clone(), key.clone()).await.is_some() {
        assert!(Instant::now() < deadline, "worker key outlived its lease");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(store.load().await.unwrap().workers.is_empty());
    let gone = store.keep_alive(grant.id).await.unwrap_err();
    assert!(gone.to_string().contains("expired"), "{gone}");

    // Revoking removes a worker at once; unleased workers stay.
    let grant = store.grant_lease(Duration::from_secs(60)).await.unwrap();
    store
        .put_worker_leased(worker("w2", 1), grant.id)
        .await
        .unwrap();
    store.put_worker(worker("w3", 1)).await.unwrap();
    store.revoke_lease(grant.id).await.unwrap();
    let ids: Vec<String> = store
        .load()
        .await
        .unwrap()
        .workers
        .into_iter()
        .map(|w: WorkerRecord| w.id)
        .collect();
    assert_eq!(ids, vec!["w3".to_string()]);
}

#[tokio::test]
async fn unreachable_etcd_is_a_clear_error_after_a_bounded_wait() {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let endpoint = format!("http://127.0.0.1:{port}");
    let cfg = EtcdConfig {
        startup_wait: Duration::from_millis(600),
        connect_timeout: Duration::from_millis(300),
        ..EtcdConfig::new([endpoint.clone()])
    };
    let started = Instant::now();
    let err = EtcdStore::connect(cfg).await.unwrap_err();
    let msg = err.to_string();
    assert!(msg.contains(&endpoint) && msg.contains("hint"), "{msg}");
    let StoreError::Backend(source) = &err else {
        panic!("{err:?}")
    };
    let etcd = source.downcast_ref::<EtcdError>().expect("an EtcdError");
    assert!(
        matches!(etcd, EtcdError::Unreachable { attempts, .. } if *attempts >= 2),
        "{etcd:?}"
    );
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "waited {:?}",
        started.elapsed()
    );
}

#[tokio::test]
async fn a_prefix_of_another_layout_is_refused() {
    let Some((server, store)) = shared_store("layout").await else {
        return;
    };
    let prefix = unique_prefix("layout-9");
    store
        .client()
        .kv_client()
        .put(format!("{prefix}meta/layout"), "9", Some(PutOptions::new()))
        .await
        .unwrap();
    let err = EtcdStore::connect(config(&server, &prefix))
        .await
        .unwrap_err();
    assert!(err.to_string().contains("layout \"9\""), "{err}");
    // Nothing else was written under it.
    let resp = store
        .client()
        .kv_client()
        .get(
            prefix,
            Some(GetOptions::new().with_prefix().with_count_only()),
        )
        .await
        .unwrap();
    assert_eq!(resp.count(), 1);
}

#[tokio::test]
async fn mutual_tls_connects_and_a_missing_client_certificate_is_refused() {
    let Some(server) = EtcdServer::start_tls() else {
        return;
    };
    let files = server.tls_files().expect("tls server").clone();
    let tls = EtcdTlsConfig {
        ca_file: Some(files.ca.clone()),
        cert_file: Some(files.client_cert.clone()),
        key_file: Some(files.client_key.clone()),
        domain: None,
    };
    let cfg = EtcdConfig {
        tls: Some(tls.clone()),
        ..config(&server, &unique_prefix("tls"))
    };
    let store = EtcdStore::connect(cfg.clone())
        .await
        .expect("connect over mTLS");
    let (sweep, jobs, cells) = grid("s", "d", &["xnli"]);
    store.submit(sweep, jobs, cells.clone()).await.unwrap();
    assert_eq!(store.cells("s").await.unwrap(), cells);

    let anonymous = EtcdConfig {
        tls: Some(EtcdTlsConfig {
            cert_file: None,
            key_file: None,
            ..tls
        }),
        connect_timeout: Duration::from_secs(2),
        ..cfg
    };
    let err = EtcdStore::connect(anonymous).await.unwrap_err();
    assert!(err.to_string().contains(&server.endpoint()), "{err}");
}
