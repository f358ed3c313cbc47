//! The message-log store against both backends: SQLite (always) and
//! PostgreSQL (when `MUSUBI_TEST_POSTGRES_URL` names a server; required with
//! `MUSUBI_REQUIRE_PEERS=1`, as in CI).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use musubi_security_server::messagelog::{Attachment, MessageLog, Record, Side};

mod common;
use common::postgres;

async fn backends(name: &str) -> Vec<String> {
    let dir = std::env::temp_dir().join(format!("musubi-mlog-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let mut urls = vec![format!("sqlite://{}?mode=rwc", dir.join("log.sqlite").display())];
    urls.extend(postgres(name).await);
    urls
}

fn record<'a>(query_id: &'a str, response: bool, message: &'a [u8], chain: Option<(&'a [u8], &'a [u8])>) -> Record<'a> {
    Record {
        query_id,
        client: "SUBSYSTEM:DEMO/GOV/1001/care",
        service: "SERVICE:DEMO/COM/2002/home/getRoomTemperature",
        side: Side::Client,
        response,
        message,
        signature: b"<signature/>",
        hash_chain: chain,
        attachments: &[],
    }
}

#[tokio::test]
async fn records_timestamps_and_archives_round_trip_on_every_backend() {
    for url in backends("roundtrip").await {
        let backend = url.split(':').next().unwrap().to_owned();
        let log = MessageLog::connect(&url).await.unwrap_or_else(|e| panic!("{backend}: {e}"));
        log.write(&record("q1", false, b"<request/>", None)).await.unwrap();
        // Attachments in memory and in a file (spooled), the file over several
        // stored chunks of 1 MiB.
        let large: Vec<u8> = (0..(2 << 20) + 5).map(|i| (i % 253) as u8).collect();
        let file = std::env::temp_dir().join(format!("musubi-mlog-att-{backend}-{}", std::process::id()));
        std::fs::write(&file, &large).unwrap();
        let parts: [&[u8]; 4] = [b"first", b"", &large, b"third \x00\xff"];
        let logged = [
            Attachment::Bytes(parts[0]),
            Attachment::Bytes(parts[1]),
            Attachment::File(&file),
            Attachment::Bytes(parts[3]),
        ];
        let response = record("q1", true, b"<response/>", Some((b"<result/>", b"<chain/>")));
        log.write(&Record { attachments: &logged, ..response }).await.unwrap();
        std::fs::remove_file(&file).unwrap();
        log.write(&record("q2", false, b"<other/>", None)).await.unwrap();
        let found = log.find("q1").await.unwrap();
        assert_eq!(
            found,
            [("request".to_owned(), b"<request/>".to_vec()), ("response".to_owned(), b"<response/>".to_vec())],
            "{backend}"
        );

        // Time stamps: all three wait, then one token covers them.
        let waiting = log.unstamped(10).await.unwrap();
        assert_eq!(waiting.len(), 3, "{backend}");
        let marks: Vec<(i64, Option<Vec<u8>>)> =
            waiting.iter().map(|(id, _)| (*id, Some(b"<ts-chain/>".to_vec()))).collect();
        log.save_timestamp(b"token", b"stamped", Some(b"<ts-result/>"), &marks).await.unwrap();
        assert!(log.unstamped(10).await.unwrap().is_empty(), "{backend}");
        let stamps = log.timestamps_of("q1").await.unwrap();
        assert_eq!(stamps, vec![Some((b"token".to_vec(), b"stamped".to_vec())); 2], "{backend}");

        // Containers' material and archiving.
        let records = log.archived_records("q1").await.unwrap();
        assert_eq!(records[1].sig_hash_chain, Some((b"<result/>".to_vec(), b"<chain/>".to_vec())), "{backend}");
        // Attachments come back whole and in order (the empty one too); none where none were sent.
        assert_eq!(records[1].attachments, parts.map(<[u8]>::to_vec), "{backend}");
        assert!(records[0].attachments.is_empty(), "{backend}");
        let container = musubi_protocol::asic::read(&records[1].container().unwrap(), &Default::default()).unwrap();
        assert_eq!(container.get("attachment3"), Some(&large[..]), "{backend}");
        assert_eq!(container.get("attachment4"), Some(&b"third \x00\xff"[..]), "{backend}");
        let archivable = log.archivable(10).await.unwrap();
        assert_eq!(archivable.len(), 3, "{backend}");
        assert_eq!(log.archive_link("").await.unwrap(), None, "{backend}");
        let ids: Vec<i64> = archivable.iter().map(|(id, _, _)| *id).collect();
        log.mark_archived("", "mlog-1.zip", "abcd", &ids).await.unwrap();
        assert_eq!(
            log.archive_link("").await.unwrap(),
            Some(("abcd".to_owned(), "mlog-1.zip".to_owned())),
            "{backend}"
        );
        log.mark_archived("", "mlog-2.zip", "ef01", &[]).await.unwrap();
        assert_eq!(
            log.archive_link("").await.unwrap(),
            Some(("ef01".to_owned(), "mlog-2.zip".to_owned())),
            "{backend}"
        );
        assert_eq!(log.archived_count("q1").await.unwrap(), 2, "{backend}");
        assert!(log.archivable(10).await.unwrap().is_empty(), "{backend}");

        // Reopened, nothing is lost; past keep-records-for, archived records go.
        log.close().await;
        let log = MessageLog::connect(&url).await.unwrap();
        assert_eq!(log.find("q2").await.unwrap().len(), 1, "{backend}");
        assert_eq!(log.delete_archived_before("9999-01-01T00:00:00Z").await.unwrap(), 3, "{backend}");
        assert!(log.find("q1").await.unwrap().is_empty(), "{backend}");
        log.close().await;
    }
}

/// A log written by the schema before record bodies had their own table is
/// carried over when a newer server opens it: every message, signature, batch
/// hash chain and attachment is still there, and waiting records still wait for
/// their time stamp.
#[tokio::test]
async fn an_older_log_is_migrated_to_separate_record_bodies_without_losing_anything() {
    for url in backends("upgrade").await {
        let backend = url.split(':').next().unwrap().to_owned();
        let sqlite = backend == "sqlite";
        // The schema as the previous release left it (migrations up to 0007).
        let pool = sqlx::AnyPool::connect(&url).await.unwrap();
        let mut old =
            if sqlite { sqlx::migrate!("./migrations/sqlite") } else { sqlx::migrate!("./migrations/postgres") };
        let keep: Vec<_> = old.migrations.iter().filter(|m| m.version <= 7).cloned().collect();
        assert_eq!(keep.len(), 7, "{backend}: the migrations before record bodies");
        old.migrations = keep.into();
        old.run(&pool).await.unwrap();
        let attachments: &[u8] = b"\0\0\0\0\0\0\0\x05first";
        for (query_id, direction, chain) in
            [("old-1", "request", None), ("old-1", "response", Some(b"chain".as_slice()))]
        {
            sqlx::query(
                "INSERT INTO message_log (query_id, client, service, side, direction, message, signature, \
                 hash_chain_result, hash_chain, created_at, attachments) \
                 VALUES ($1, 'c', 's', 'client', $2, $3, $4, $5, $6, '2026-11-01T00:00:00Z', $7)",
            )
            .bind(query_id)
            .bind(direction)
            .bind(format!("<{direction}/>").into_bytes())
            .bind(format!("<sig-{direction}/>").into_bytes())
            .bind(chain.map(|_| b"result".to_vec()))
            .bind(chain.map(<[u8]>::to_vec))
            .bind(attachments.to_vec())
            .execute(&pool)
            .await
            .unwrap();
        }
        pool.close().await;

        let log = MessageLog::connect(&url).await.unwrap_or_else(|e| panic!("{backend}: {e}"));
        let found = log.find("old-1").await.unwrap();
        assert_eq!(
            found,
            [("request".to_owned(), b"<request/>".to_vec()), ("response".to_owned(), b"<response/>".to_vec())],
            "{backend}"
        );
        let waiting = log.unstamped(10).await.unwrap();
        let signatures: Vec<&[u8]> = waiting.iter().map(|(_, s)| s.as_slice()).collect();
        assert_eq!(signatures, [b"<sig-request/>".as_slice(), b"<sig-response/>"], "{backend}");
        let records = log.archived_records("old-1").await.unwrap();
        assert_eq!(records.len(), 2, "{backend}");
        assert_eq!(records[0].attachments, [b"first".to_vec()], "{backend}");
        assert_eq!(records[1].sig_hash_chain, Some((b"result".to_vec(), b"chain".to_vec())), "{backend}");
        // New records go on next to the old ones.
        log.write(&record("new-1", false, b"<new/>", None)).await.unwrap();
        assert_eq!(log.unstamped_count().await.unwrap(), 3, "{backend}");
        log.close().await;
    }
}

/// One time stamp over more records than one statement marks: every record is
/// marked, each with its own hash chain, on both backends.
#[tokio::test]
async fn a_large_time_stamp_batch_marks_every_record_with_its_own_chain() {
    for url in backends("bigbatch").await {
        let backend = url.split(':').next().unwrap().to_owned();
        let log = MessageLog::connect(&url).await.unwrap_or_else(|e| panic!("{backend}: {e}"));
        let ids: Vec<String> = (0..1203).map(|i| format!("big-{i}")).collect();
        // Written concurrently, so the writer commits them in groups.
        let mut writes = tokio::task::JoinSet::new();
        for id in ids.clone() {
            let log = log.clone();
            writes.spawn(async move { log.write(&record(&id, false, b"<request/>", None)).await });
        }
        while let Some(w) = writes.join_next().await {
            w.unwrap().unwrap();
        }
        let waiting = log.unstamped(5000).await.unwrap();
        assert_eq!(waiting.len(), 1203, "{backend}");
        let marks: Vec<(i64, Option<Vec<u8>>)> =
            waiting.iter().map(|(id, _)| (*id, Some(format!("<chain-{id}/>").into_bytes()))).collect();
        log.save_timestamp(b"token", b"stamped", Some(b"<result/>"), &marks).await.unwrap();
        assert_eq!(log.unstamped_count().await.unwrap(), 0, "{backend}");
        for id in [&ids[0], &ids[600], &ids[1202]] {
            let records = log.archived_records(id).await.unwrap();
            let (token, chain) = records[0].timestamp.clone().unwrap();
            assert_eq!(token, b"token", "{backend}");
            let (result, chain) = chain.unwrap();
            assert_eq!(result, b"<result/>", "{backend}");
            assert!(chain.starts_with(b"<chain-") && chain.ends_with(b"/>"), "{backend}");
        }
        // Each record got the chain named after its own record id.
        let by_id: std::collections::HashMap<i64, Vec<u8>> =
            marks.into_iter().map(|(id, c)| (id, c.unwrap())).collect();
        let pool = sqlx::AnyPool::connect(&url).await.unwrap();
        let stored: Vec<(i64, Vec<u8>)> =
            sqlx::query_as("SELECT id, ts_hash_chain FROM message_log").fetch_all(&pool).await.unwrap();
        assert_eq!(stored.len(), 1203, "{backend}");
        for (id, chain) in stored {
            assert_eq!(Some(&chain), by_id.get(&id), "{backend}: record {id}");
        }
        pool.close().await;
        log.close().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn records_written_at_once_are_committed_together_each_with_its_own_body() {
    for url in backends("group").await {
        let backend = url.split(':').next().unwrap().to_owned();
        let log = MessageLog::connect(&url).await.unwrap_or_else(|e| panic!("{backend}: {e}"));
        // Many writers at once: the writer task takes them in batches of several
        // records per statement, and each body and attachment must stay with its record.
        let writers: Vec<_> = (0..300)
            .map(|i| {
                let log = log.clone();
                tokio::spawn(async move {
                    let (qid, message, att) = (format!("g{i}"), format!("<m{i}/>"), format!("attachment {i}"));
                    let attachments = [Attachment::Bytes(att.as_bytes())];
                    let r = record(&qid, i % 2 == 1, message.as_bytes(), None);
                    let r = if i % 3 == 0 { Record { attachments: &attachments, ..r } } else { r };
                    log.write(&r).await
                })
            })
            .collect();
        for w in writers {
            w.await.unwrap().unwrap_or_else(|e| panic!("{backend}: {e}"));
        }
        for i in 0..300 {
            let qid = format!("g{i}");
            let direction = if i % 2 == 1 { "response" } else { "request" };
            let found = log.find(&qid).await.unwrap();
            assert_eq!(found, [(direction.to_owned(), format!("<m{i}/>").into_bytes())], "{backend} {qid}");
            let records = log.archived_records(&qid).await.unwrap();
            let expected: Vec<Vec<u8>> =
                if i % 3 == 0 { vec![format!("attachment {i}").into_bytes()] } else { Vec::new() };
            assert_eq!(records[0].attachments, expected, "{backend} {qid}");
        }
        log.close().await;
    }
}
