//! The device registry: every device found, what it can do, whether an
//! operator approved it, persisted in SQLite and bounded.
//!
//! A device's identity is its identification number 0x83 (guideline §2.8);
//! without one, its node's number and EOJ; without that, address and EOJ.
//! A known device that announces again only refreshes its last-seen time and
//! address (§4.4). Approval is per device; approving a class approves the
//! devices of that class known at that moment, so a device added later never
//! widens access by itself (it waits for its own approval).

use std::collections::{BTreeMap, HashMap};
use std::net::IpAddr;
use std::path::Path;
use std::sync::RwLock;

use sqlx::SqlitePool;
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqliteSynchronous};

use crate::frame::Eoj;

/// A device in the registry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Device {
    /// Stable id.
    pub id: String,
    /// Where it was last seen.
    pub address: IpAddr,
    /// Its object.
    pub eoj: Eoj,
    /// Manufacturer code (hex), when it said.
    pub manufacturer: String,
    /// EPCs it answers Get for (0x9F).
    pub get_map: Vec<u8>,
    /// EPCs it accepts Set for (0x9E).
    pub set_map: Vec<u8>,
    /// EPCs it announces changes of (0x9D).
    pub inf_map: Vec<u8>,
    /// Fixed properties needed to read others (a meter's 0xD3 and 0xE1), hex.
    pub context: BTreeMap<String, String>,
    /// Published through the adapter's services.
    pub approved: bool,
    /// Registered by hand; never polled (§2.10).
    pub send_only: bool,
    /// Answered its last liveness probe.
    pub alive: bool,
    /// First seen, Unix seconds.
    pub first_seen: i64,
    /// Last seen, Unix seconds.
    pub last_seen: i64,
}

impl Device {
    /// The class code.
    pub fn class(&self) -> u16 {
        self.eoj.class()
    }

    /// The context value of `epc`.
    pub fn context_value(&self, epc: u8) -> Option<Vec<u8>> {
        hex::decode(self.context.get(&format!("{epc:02X}"))?).ok()
    }
}

/// What registering a discovered device did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Registered {
    /// A new device (not approved).
    New,
    /// Known; last-seen refreshed.
    Refreshed,
    /// Known, at a new address.
    Moved,
}

/// Registry failures.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RegistryError {
    /// The registry holds its maximum.
    #[error("the device registry is full ({0} devices); remove unused devices or raise max_devices")]
    Full(usize),
    /// No such device.
    #[error("no device {0:?}; list devices to see their ids")]
    UnknownDevice(String),
    /// The database failed.
    #[error("device registry database: {0}")]
    Db(#[from] sqlx::Error),
    /// Migrations failed.
    #[error("device registry schema: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
}

/// The registry.
#[derive(Debug)]
pub struct Registry {
    pool: SqlitePool,
    devices: RwLock<BTreeMap<String, Device>>,
    max_devices: usize,
    max_notifications: i64,
}

/// Unix seconds now.
pub fn now() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs() as i64).unwrap_or(0)
}

fn eoj_hex(e: Eoj) -> String {
    format!("{:02x}{:02x}{:02x}", e.0[0], e.0[1], e.0[2])
}

type DeviceRow = (String, String, String, String, Vec<u8>, Vec<u8>, Vec<u8>, String, i64, i64, i64, i64, i64);

impl Registry {
    /// Opens (or creates) the registry at `path`.
    pub async fn open(path: &Path, max_devices: usize) -> Result<Self, RegistryError> {
        musubi_admin::files::private_file(path).map_err(sqlx::Error::Io)?;
        let opts = SqliteConnectOptions::new()
            .filename(path)
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Full);
        let pool = sqlx::pool::PoolOptions::new().max_connections(2).connect_with(opts).await?;
        sqlx::migrate!("./migrations").run(&pool).await?;
        let rows: Vec<DeviceRow> = sqlx::query_as(
            "SELECT id, address, eoj, manufacturer, get_map, set_map, inf_map, context, approved, send_only, alive, first_seen, last_seen FROM devices",
        )
        .fetch_all(&pool)
        .await?;
        let mut devices = BTreeMap::new();
        for (
            id,
            address,
            eoj,
            manufacturer,
            get_map,
            set_map,
            inf_map,
            context,
            approved,
            send_only,
            alive,
            first,
            last,
        ) in rows
        {
            let (Ok(address), Some(eoj)) = (address.parse(), crate::parse_eoj(&eoj)) else {
                tracing::warn!(%id, "device registry row unreadable; skipped");
                continue;
            };
            let context = serde_json::from_str(&context).unwrap_or_default();
            devices.insert(
                id.clone(),
                Device {
                    id,
                    address,
                    eoj,
                    manufacturer,
                    get_map,
                    set_map,
                    inf_map,
                    context,
                    approved: approved != 0,
                    send_only: send_only != 0,
                    alive: alive != 0,
                    first_seen: first,
                    last_seen: last,
                },
            );
        }
        Ok(Self { pool, devices: RwLock::new(devices), max_devices, max_notifications: 10_000 })
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, BTreeMap<String, Device>> {
        self.devices.read().unwrap_or_else(|p| p.into_inner())
    }

    fn write(&self) -> std::sync::RwLockWriteGuard<'_, BTreeMap<String, Device>> {
        self.devices.write().unwrap_or_else(|p| p.into_inner())
    }

    /// Every device, by id.
    pub fn list(&self) -> Vec<Device> {
        self.read().values().cloned().collect()
    }

    /// One device.
    pub fn get(&self, id: &str) -> Option<Device> {
        self.read().get(id).cloned()
    }

    /// The device at `address` with `eoj`.
    pub fn find(&self, address: IpAddr, eoj: Eoj) -> Option<Device> {
        self.read().values().find(|d| d.address == address && d.eoj == eoj).cloned()
    }

    /// Whether any device is known at `address`.
    pub fn knows_address(&self, address: IpAddr) -> bool {
        self.read().values().any(|d| d.address == address)
    }

    async fn store(&self, d: &Device) -> Result<(), RegistryError> {
        sqlx::query(
            "INSERT INTO devices (id, address, eoj, class, manufacturer, get_map, set_map, inf_map, context, approved, send_only, alive, first_seen, last_seen)
             VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
             ON CONFLICT (id) DO UPDATE SET address = excluded.address, eoj = excluded.eoj, class = excluded.class,
               manufacturer = excluded.manufacturer, get_map = excluded.get_map, set_map = excluded.set_map,
               inf_map = excluded.inf_map, context = excluded.context, approved = excluded.approved,
               send_only = excluded.send_only, alive = excluded.alive, last_seen = excluded.last_seen",
        )
        .bind(&d.id)
        .bind(d.address.to_string())
        .bind(eoj_hex(d.eoj))
        .bind(i64::from(d.class()))
        .bind(&d.manufacturer)
        .bind(&d.get_map)
        .bind(&d.set_map)
        .bind(&d.inf_map)
        .bind(serde_json::to_string(&d.context).unwrap_or_else(|_| "{}".into()))
        .bind(i64::from(d.approved))
        .bind(i64::from(d.send_only))
        .bind(i64::from(d.alive))
        .bind(d.first_seen)
        .bind(d.last_seen)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// Registers what discovery learnt about a device. A known id keeps its
    /// approval; a new one starts unapproved.
    pub async fn register(&self, mut found: Device) -> Result<Registered, RegistryError> {
        let outcome;
        {
            let mut devices = self.write();
            match devices.get(&found.id) {
                Some(known) => {
                    outcome = if known.address == found.address { Registered::Refreshed } else { Registered::Moved };
                    found.approved = known.approved;
                    found.first_seen = known.first_seen;
                    found.send_only = known.send_only && found.get_map.is_empty();
                }
                None => {
                    if devices.len() >= self.max_devices {
                        return Err(RegistryError::Full(self.max_devices));
                    }
                    outcome = Registered::New;
                    found.approved = false;
                }
            }
            devices.insert(found.id.clone(), found.clone());
        }
        self.store(&found).await?;
        Ok(outcome)
    }

    /// Marks a device seen (alive) now.
    pub async fn seen(&self, id: &str, alive: bool) -> Result<(), RegistryError> {
        let d = {
            let mut devices = self.write();
            let Some(d) = devices.get_mut(id) else { return Err(RegistryError::UnknownDevice(id.into())) };
            if alive {
                d.last_seen = now();
            }
            d.alive = alive;
            d.clone()
        };
        sqlx::query("UPDATE devices SET alive = ?, last_seen = ? WHERE id = ?")
            .bind(i64::from(d.alive))
            .bind(d.last_seen)
            .bind(id)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// Approves (or revokes) one device; `by` names the operator.
    pub async fn approve(&self, id: &str, approved: bool, by: &str) -> Result<Device, RegistryError> {
        let d = {
            let mut devices = self.write();
            let Some(d) = devices.get_mut(id) else { return Err(RegistryError::UnknownDevice(id.into())) };
            d.approved = approved;
            d.clone()
        };
        self.store(&d).await?;
        self.audit(&format!("device {id}"), approved, by).await?;
        Ok(d)
    }

    /// Approves (or revokes) every device of `class` known now.
    pub async fn approve_class(&self, class: u16, approved: bool, by: &str) -> Result<Vec<Device>, RegistryError> {
        let changed: Vec<Device> = {
            let mut devices = self.write();
            devices
                .values_mut()
                .filter(|d| d.class() == class)
                .map(|d| {
                    d.approved = approved;
                    d.clone()
                })
                .collect()
        };
        for d in &changed {
            self.store(d).await?;
        }
        self.audit(&format!("class 0x{class:04X} ({} devices)", changed.len()), approved, by).await?;
        Ok(changed)
    }

    async fn audit(&self, subject: &str, approved: bool, by: &str) -> Result<(), RegistryError> {
        sqlx::query("INSERT INTO approvals (subject, approved, by_whom, at) VALUES (?, ?, ?, ?)")
            .bind(subject)
            .bind(i64::from(approved))
            .bind(by)
            .bind(now())
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// The consent trail, newest first: (subject, approved, by whom, Unix seconds).
    pub async fn approvals(&self, limit: i64) -> Result<Vec<(String, bool, String, i64)>, RegistryError> {
        let rows: Vec<(String, i64, String, i64)> =
            sqlx::query_as("SELECT subject, approved, by_whom, at FROM approvals ORDER BY seq DESC LIMIT ?")
                .bind(limit)
                .fetch_all(&self.pool)
                .await?;
        Ok(rows.into_iter().map(|(s, a, b, at)| (s, a != 0, b, at)).collect())
    }

    /// Removes a device.
    pub async fn remove(&self, id: &str) -> Result<(), RegistryError> {
        if self.write().remove(id).is_none() {
            return Err(RegistryError::UnknownDevice(id.into()));
        }
        sqlx::query("DELETE FROM devices WHERE id = ?").bind(id).execute(&self.pool).await?;
        Ok(())
    }

    /// Records an announced status change; returns its sequence number. Old
    /// notifications beyond the limit are pruned.
    pub async fn record_notification(&self, device: &str, epc: u8, edt: &[u8]) -> Result<i64, RegistryError> {
        let seq = sqlx::query("INSERT INTO notifications (device, epc, edt, at) VALUES (?, ?, ?, ?)")
            .bind(device)
            .bind(i64::from(epc))
            .bind(edt)
            .bind(now())
            .execute(&self.pool)
            .await?
            .last_insert_rowid();
        if seq % 100 == 0 {
            sqlx::query("DELETE FROM notifications WHERE seq <= ?")
                .bind(seq - self.max_notifications)
                .execute(&self.pool)
                .await?;
        }
        Ok(seq)
    }

    /// The latest notifications (newest first), at most `limit`.
    pub async fn notifications(&self, limit: i64) -> Result<Vec<(i64, String, u8, Vec<u8>, i64)>, RegistryError> {
        let rows: Vec<(i64, String, i64, Vec<u8>, i64)> =
            sqlx::query_as("SELECT seq, device, epc, edt, at FROM notifications ORDER BY seq DESC LIMIT ?")
                .bind(limit)
                .fetch_all(&self.pool)
                .await?;
        Ok(rows.into_iter().map(|(s, d, e, edt, at)| (s, d, e as u8, edt, at)).collect())
    }

    /// The last announced value of each property of `device`, with when (RFC 3339).
    pub async fn last_values(&self, device: &str) -> Result<Vec<(crate::frame::Property, String)>, RegistryError> {
        let rows: Vec<(i64, Vec<u8>, i64)> = sqlx::query_as(
            "SELECT epc, edt, at FROM notifications WHERE seq IN (SELECT MAX(seq) FROM notifications WHERE device = ? GROUP BY epc) ORDER BY epc",
        )
        .bind(device)
        .fetch_all(&self.pool)
        .await?;
        Ok(rows
            .into_iter()
            .map(|(epc, edt, at)| {
                let when = time::OffsetDateTime::from_unix_timestamp(at)
                    .ok()
                    .and_then(|t| t.format(&time::format_description::well_known::Rfc3339).ok())
                    .unwrap_or_default();
                (crate::frame::Property { epc: epc as u8, edt }, when)
            })
            .collect())
    }

    /// The database, for the webhook store.
    pub fn pool(&self) -> &SqlitePool {
        &self.pool
    }

    /// Devices per address (for liveness probes).
    pub fn by_address(&self) -> HashMap<IpAddr, Vec<Device>> {
        let mut out: HashMap<IpAddr, Vec<Device>> = HashMap::new();
        for d in self.read().values() {
            out.entry(d.address).or_default().push(d.clone());
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn device(id: &str, class: u16, ip: &str) -> Device {
        let [g, c] = class.to_be_bytes();
        Device {
            id: id.into(),
            address: ip.parse().unwrap(),
            eoj: Eoj([g, c, 1]),
            manufacturer: String::new(),
            get_map: vec![0x80],
            set_map: vec![],
            inf_map: vec![],
            context: BTreeMap::new(),
            approved: true,
            send_only: false,
            alive: true,
            first_seen: 1,
            last_seen: 1,
        }
    }

    #[tokio::test]
    async fn new_devices_start_unapproved_and_class_approval_does_not_cover_later_ones() {
        let dir = std::env::temp_dir().join(format!("musubi-registry-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("a.sqlite");
        let _ = std::fs::remove_file(&path);
        let r = Registry::open(&path, 2).await.unwrap();
        assert_eq!(r.register(device("a", 0x0130, "10.0.0.1")).await.unwrap(), Registered::New);
        assert!(!r.get("a").unwrap().approved);
        r.approve_class(0x0130, true, "test").await.unwrap();
        assert!(r.get("a").unwrap().approved);
        assert_eq!(r.register(device("b", 0x0130, "10.0.0.2")).await.unwrap(), Registered::New);
        assert!(!r.get("b").unwrap().approved, "a device added later waits for its own approval");
        // Announcing again keeps the approval; a new address is noted.
        assert_eq!(r.register(device("a", 0x0130, "10.0.0.9")).await.unwrap(), Registered::Moved);
        assert!(r.get("a").unwrap().approved);
        assert!(matches!(r.register(device("c", 0x0130, "10.0.0.3")).await, Err(RegistryError::Full(2))));
        drop(r);
        // Persisted.
        let r = Registry::open(&path, 2).await.unwrap();
        assert_eq!(r.list().len(), 2);
        assert!(r.get("a").unwrap().approved);
        assert_eq!(r.get("a").unwrap().address.to_string(), "10.0.0.9");
        let _ = std::fs::remove_dir_all(&dir);
    }
}
