//! The archiver: time-stamped records are packed into ASiC-E containers
//! inside ZIP archive files whose `linkinginfo` chains each file to the
//! previous one of its group by digest (X-Road's message-log archives).
//! Files are written to a temporary name, synced and renamed, and only then
//! are the records marked archived; archived records older than
//! `keep_records_for_secs` are deleted.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use musubi_protocol::ClientId;
use musubi_protocol::asic;
use tokio::sync::watch;
use tracing::{info, warn};

use crate::conf::ArchiveGrouping;
use crate::messagelog::LoggedRecord;
use crate::proxy::State;

/// Records archived per round at most.
const BATCH: i64 = 5000;

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

fn random_tag() -> String {
    let mut b = [0u8; 5];
    let _ = ring::rand::SecureRandom::fill(&ring::rand::SystemRandom::new(), &mut b);
    hex(&b)
}

fn safe(s: &str) -> String {
    s.chars().map(|c| if c.is_ascii_alphanumeric() || "-_.".contains(c) { c } else { '_' }).collect()
}

fn group_of(grouping: ArchiveGrouping, client: &str) -> String {
    match (grouping, client.parse::<ClientId>()) {
        (ArchiveGrouping::None, _) | (_, Err(_)) => String::new(),
        (ArchiveGrouping::Member, Ok(c)) => c.member_id().to_string(),
        (ArchiveGrouping::Subsystem, Ok(c)) => c.to_string(),
    }
}

/// Archives every interval until `stop`; `updates` counts rounds.
pub(crate) async fn run(state: Arc<State>, dir: PathBuf, updates: watch::Sender<u64>, mut stop: watch::Receiver<bool>) {
    loop {
        let every = Duration::from_secs(state.conf.archive_interval_secs.max(1));
        tokio::select! {
            _ = stop.changed() => break,
            _ = tokio::time::sleep(every) => {}
        }
        if let Err(e) = archive_round(&state, &dir).await {
            warn!("archiving failed, records stay in the database: {e}");
        }
        updates.send_modify(|n| *n += 1);
    }
}

async fn archive_round(state: &State, dir: &Path) -> Result<(), String> {
    // Archives hold whole messages: their folder is the server user's alone.
    musubi_admin::files::private_dir(dir).map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
    loop {
        let records = state.log.archivable(BATCH).await.map_err(|e| format!("message log: {e}"))?;
        if records.is_empty() {
            break;
        }
        let mut groups: BTreeMap<String, Vec<(i64, String, LoggedRecord)>> = BTreeMap::new();
        for r in records {
            groups.entry(group_of(state.conf.archive_grouping, &r.2.client)).or_default().push(r);
        }
        for (group, records) in groups {
            let file = write_archive(state, dir, &group, &records).await?;
            if let Some(cmd) = &state.conf.archive_transfer_command {
                match tokio::process::Command::new(cmd).arg(&file).status().await {
                    Ok(s) if s.success() => {}
                    Ok(s) => warn!(file = %file.display(), "archive transfer command exited with {s}"),
                    Err(e) => warn!(file = %file.display(), "archive transfer command could not run: {e}"),
                }
            }
        }
    }
    let keep = time::Duration::seconds(i64::try_from(state.conf.keep_records_for_secs).unwrap_or(i64::MAX / 2));
    let before = (time::OffsetDateTime::now_utc() - keep)
        .format(&time::format_description::well_known::Rfc3339)
        .map_err(|e| e.to_string())?;
    let deleted = state.log.delete_archived_before(&before).await.map_err(|e| format!("message log: {e}"))?;
    if deleted > 0 {
        info!(deleted, "archived records past keep-records-for deleted");
    }
    Ok(())
}

async fn write_archive(
    state: &State,
    dir: &Path,
    group: &str,
    records: &[(i64, String, LoggedRecord)],
) -> Result<PathBuf, String> {
    let link = state.log.archive_link(group).await.map_err(|e| format!("message log: {e}"))?;
    let (mut digest, head) = match &link {
        Some((d, f)) => (d.clone(), format!("{d} {f} SHA-512")),
        None => (String::new(), "- - SHA-512".to_owned()),
    };
    let mut entries: Vec<(String, Vec<u8>)> = Vec::new();
    let mut linking = head;
    for (_, query_id, r) in records {
        let container = r.container().map_err(|e| e.to_string())?;
        let name =
            format!("{}-{}-{}.asice", safe(query_id), if r.response { "response" } else { "request" }, random_tag());
        let own = hex(ring::digest::digest(&ring::digest::SHA512, &container).as_ref());
        digest = hex(ring::digest::digest(&ring::digest::SHA512, format!("{digest}{own}").as_bytes()).as_ref());
        linking.push_str(&format!("\n{digest} {name}"));
        entries.push((name, container));
    }
    linking.push('\n');
    entries.push(("linkinginfo".to_owned(), linking.into_bytes()));
    let borrowed: Vec<(&str, &[u8])> = entries.iter().map(|(n, b)| (n.as_str(), b.as_slice())).collect();
    let zip = asic::write_zip(&borrowed).map_err(|e| e.to_string())?;
    let stamp = time::OffsetDateTime::now_utc();
    let name = format!(
        "mlog-{}{:04}{:02}{:02}{:02}{:02}{:02}-{}.zip",
        if group.is_empty() { String::new() } else { format!("{}-", safe(group)) },
        stamp.year(),
        u8::from(stamp.month()),
        stamp.day(),
        stamp.hour(),
        stamp.minute(),
        stamp.second(),
        random_tag()
    );
    let path = dir.join(&name);
    let tmp = dir.join(format!(".{name}.tmp"));
    let write = || -> std::io::Result<()> {
        use std::io::Write as _;
        let mut f = std::fs::File::create(&tmp)?;
        f.write_all(&zip)?;
        f.sync_all()?;
        std::fs::rename(&tmp, &path)
    };
    write().map_err(|e| format!("cannot write archive {}: {e}", path.display()))?;
    let ids: Vec<i64> = records.iter().map(|(id, _, _)| *id).collect();
    state.log.mark_archived(group, &name, &digest, &ids).await.map_err(|e| format!("message log: {e}"))?;
    info!(file = %path.display(), records = ids.len(), "message log archived");
    Ok(path)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_are_grouped_by_member_or_subsystem() {
        let sub = "SUBSYSTEM:DEMO/GOV/1001/care";
        assert_eq!(group_of(ArchiveGrouping::None, sub), "");
        assert_eq!(group_of(ArchiveGrouping::Member, sub), "MEMBER:DEMO/GOV/1001");
        assert_eq!(group_of(ArchiveGrouping::Subsystem, sub), sub);
        assert_eq!(group_of(ArchiveGrouping::Subsystem, "MEMBER:DEMO/GOV/1001"), "MEMBER:DEMO/GOV/1001");
        assert_eq!(safe(sub), "SUBSYSTEM_DEMO_GOV_1001_care");
    }
}
