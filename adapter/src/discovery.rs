//! Discovery (guideline §4): a multicast Get of the instance list 0xD6 to
//! every node profile (§4.3), unicast to configured nodes, and the 0xD5
//! announcements nodes send when they join (§4.2); then each object is
//! described (0x83 identification number, 0x8A manufacturer, the property
//! maps 0x9D/0x9E/0x9F) and registered. Liveness is a Get of 0x80 (§6.5).

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use crate::controller::Controller;
use crate::frame::{self, Eoj, Esv, Property};
use crate::registry::{self, Device, Registered, Registry};

/// What one discovery round found.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Found {
    /// Nodes that answered.
    pub nodes: usize,
    /// Objects registered for the first time.
    pub new: usize,
    /// Objects already known.
    pub known: usize,
    /// Objects that could not be described (no answer, registry full).
    pub failed: usize,
}

/// One description of a node at a time: a discovery round and a node's
/// own announcement must not describe the same objects twice over (each
/// frame counts against the node's budget, §6.11).
#[derive(Debug, Default)]
pub struct NodeLocks(std::sync::Mutex<std::collections::HashMap<IpAddr, Arc<tokio::sync::Mutex<()>>>>);

impl NodeLocks {
    async fn lock(&self, ip: IpAddr) -> tokio::sync::OwnedMutexGuard<()> {
        let m = {
            let mut map = self.0.lock().unwrap_or_else(|p| p.into_inner());
            if map.len() >= 4096 {
                map.retain(|_, m| Arc::strong_count(m) > 1);
            }
            map.entry(ip).or_default().clone()
        };
        m.lock_owned().await
    }
}

/// The instance list of a 0xD5/0xD6 answer (ignoring the node profile itself).
pub fn instances(props: &[Property]) -> Vec<Eoj> {
    let mut out = Vec::new();
    for p in props.iter().filter(|p| matches!(p.epc, 0xD5 | 0xD6)) {
        match frame::decode_instance_list(&p.edt) {
            Ok(list) => out.extend(list.into_iter().filter(|e| e.class() != 0x0EF0)),
            Err(e) => tracing::debug!(error = %e, "bad instance list ignored"),
        }
    }
    out.sort_unstable_by_key(|e| e.0);
    out.dedup();
    out
}

/// One discovery round: multicast (when enabled) plus the `unicast` nodes;
/// nodes are described in parallel, each at its own pace.
pub async fn discover(
    ctl: &Arc<Controller>,
    registry: &Arc<Registry>,
    locks: &Arc<NodeLocks>,
    multicast: bool,
    unicast: &[IpAddr],
    window: Duration,
) -> Found {
    let mut nodes: BTreeMap<IpAddr, Vec<Eoj>> = BTreeMap::new();
    if multicast {
        let ask = vec![Property { epc: 0xD6, edt: Vec::new() }];
        match ctl.multicast(Eoj([0x0E, 0xF0, 0x00]), Esv::Get, ask, window).await {
            Ok(answers) => {
                for (ip, msg) in answers {
                    if msg.esv == Esv::GetRes {
                        nodes.entry(ip).or_default().extend(instances(&msg.props));
                    }
                }
            }
            Err(e) => tracing::warn!(error = %e, "multicast discovery failed"),
        }
    }
    for &ip in unicast {
        if nodes.contains_key(&ip) {
            continue;
        }
        let ask = vec![Property { epc: 0xD6, edt: Vec::new() }];
        match ctl.request(ip, Eoj::NODE_PROFILE, Esv::Get, ask, Vec::new()).await {
            Ok(msg) => {
                nodes.entry(ip).or_default().extend(instances(&msg.props));
            }
            Err(e) => tracing::info!(%ip, error = %e, "node did not answer discovery"),
        }
    }
    let mut found = Found { nodes: nodes.len(), ..Found::default() };
    let mut tasks = tokio::task::JoinSet::new();
    for (ip, eojs) in nodes {
        let (ctl, registry, locks) = (ctl.clone(), registry.clone(), locks.clone());
        tasks.spawn(async move { describe_node(&ctl, &registry, &locks, ip, &eojs).await });
    }
    while let Some(r) = tasks.join_next().await {
        if let Ok(f) = r {
            found.new += f.new;
            found.known += f.known;
            found.failed += f.failed;
        }
    }
    found
}

/// Describes and registers the objects `eojs` of the node at `ip`. Objects
/// already known at this address are only marked seen (§4.4).
pub async fn describe_node(
    ctl: &Controller,
    registry: &Registry,
    locks: &NodeLocks,
    ip: IpAddr,
    eojs: &[Eoj],
) -> Found {
    let _one_at_a_time = locks.lock(ip).await;
    let mut found = Found { nodes: 1, ..Found::default() };
    let mut node_id: Option<Vec<u8>> = None;
    let mut asked_node = false;
    for &eoj in eojs {
        if let Some(known) = registry.find(ip, eoj) {
            let _ = registry.seen(&known.id, true).await;
            found.known += 1;
            continue;
        }
        if !asked_node {
            asked_node = true;
            node_id = ctl
                .get(ip, Eoj::NODE_PROFILE, &[0x83])
                .await
                .ok()
                .and_then(|p| p.into_iter().find(|p| p.epc == 0x83 && !p.edt.is_empty()).map(|p| p.edt));
        }
        match describe(ctl, ip, eoj, node_id.as_deref()).await {
            Some(device) => match registry.register(device).await {
                Ok(Registered::New) => found.new += 1,
                Ok(_) => found.known += 1,
                Err(e) => {
                    tracing::warn!(%ip, %eoj, error = %e, "device not registered");
                    found.failed += 1;
                }
            },
            None => found.failed += 1,
        }
    }
    found
}

/// Reads what a device says about itself.
pub async fn describe(ctl: &Controller, ip: IpAddr, eoj: Eoj, node_id: Option<&[u8]>) -> Option<Device> {
    let props = match ctl.get(ip, eoj, &[0x83, 0x8A, 0x9D, 0x9E, 0x9F]).await {
        Ok(p) => p,
        Err(e) => {
            tracing::info!(%ip, %eoj, error = %e, "device did not describe itself");
            return None;
        }
    };
    let value = |epc: u8| props.iter().find(|p| p.epc == epc).map(|p| p.edt.clone()).filter(|v| !v.is_empty());
    let map = |epc: u8| value(epc).and_then(|v| frame::decode_property_map(&v).ok()).unwrap_or_default();
    let get_map = map(0x9F);
    if get_map.is_empty() {
        tracing::info!(%ip, %eoj, "device has no readable get-property map; not registered");
        return None;
    }
    let id = stable_id(value(0x83).as_deref(), node_id, ip, eoj);
    let mut context = BTreeMap::new();
    // Fixed properties needed to read others: a meter's coefficient and unit.
    let needed: Vec<u8> = match eoj.class() {
        0x0288 => [0xD3, 0xE1].into_iter().filter(|e| get_map.contains(e)).collect(),
        _ => Vec::new(),
    };
    if !needed.is_empty()
        && let Ok(ctx) = ctl.get(ip, eoj, &needed).await
    {
        for p in ctx.into_iter().filter(|p| !p.edt.is_empty()) {
            context.insert(format!("{:02X}", p.epc), hex::encode(&p.edt));
        }
    }
    let now = registry::now();
    Some(Device {
        id,
        address: ip,
        eoj,
        manufacturer: value(0x8A).map(|m| hex::encode(&m)).unwrap_or_default(),
        get_map,
        set_map: map(0x9E),
        inf_map: map(0x9D),
        context,
        approved: false,
        send_only: false,
        alive: true,
        first_seen: now,
        last_seen: now,
    })
}

/// A device's stable id (§2.8): its own identification number; else its
/// node's number with the EOJ; else the address with the EOJ.
pub fn stable_id(own: Option<&[u8]>, node: Option<&[u8]>, ip: IpAddr, eoj: Eoj) -> String {
    let eoj_hex = hex::encode(eoj.0);
    // 0x83 is 0xFE + 16 bytes (or 0x00 + ...); all-zero numbers identify nothing.
    let usable = |id: &[u8]| id.len() >= 2 && id[1..].iter().any(|b| *b != 0);
    match (own.filter(|i| usable(i)), node.filter(|i| usable(i))) {
        (Some(id), _) => hex::encode(id),
        (None, Some(n)) => format!("{}-{eoj_hex}", hex::encode(n)),
        (None, None) => format!("{ip}-{eoj_hex}"),
    }
}

/// Probes every device that is not send-only with a Get of 0x80 and
/// records whether it answered.
pub async fn probe(ctl: &Arc<Controller>, registry: &Arc<Registry>) {
    let mut tasks = tokio::task::JoinSet::new();
    for (ip, devices) in registry.by_address() {
        let (ctl, registry) = (ctl.clone(), registry.clone());
        tasks.spawn(async move {
            for d in devices.into_iter().filter(|d| !d.send_only) {
                let alive = ctl.get(ip, d.eoj, &[0x80]).await.is_ok();
                let _ = registry.seen(&d.id, alive).await;
            }
        });
    }
    while tasks.join_next().await.is_some() {}
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_prefer_the_device_number_then_the_node_number_then_the_address() {
        let ip: IpAddr = "192.168.1.20".parse().unwrap();
        let eoj = Eoj([0x01, 0x30, 0x01]);
        let own = [0xFE, 0, 0, 0x77, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13];
        let node = [0xFE, 0, 0, 0x77, 9, 9, 9, 9, 9, 9, 9, 9, 9, 9, 9, 9, 9];
        assert_eq!(stable_id(Some(&own), Some(&node), ip, eoj), hex::encode(own));
        assert_eq!(stable_id(None, Some(&node), ip, eoj), format!("{}-013001", hex::encode(node)));
        assert_eq!(stable_id(Some(&[0xFE, 0, 0, 0]), None, ip, eoj), "192.168.1.20-013001");
    }

    #[test]
    fn instance_lists_from_several_properties_are_merged() {
        let props = vec![
            Property { epc: 0xD5, edt: vec![1, 0x01, 0x30, 0x01] },
            Property { epc: 0xD5, edt: vec![2, 0x02, 0x88, 0x01, 0x01, 0x30, 0x01] },
            Property { epc: 0xD6, edt: vec![5, 0x01] },
        ];
        assert_eq!(instances(&props), vec![Eoj([0x01, 0x30, 0x01]), Eoj([0x02, 0x88, 0x01])]);
    }
}
