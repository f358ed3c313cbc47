//! Simulated ECHONET Lite objects (sans-IO): how a device answers requests,
//! the rules the `exchange` vectors show. The UDP side and the device
//! classes' dynamics come with the simulator command.
//!
//! - SetI: accepted properties are written and get no answer; if any is
//!   refused, SetI_SNA lists all (accepted with PDC 0, refused echoed).
//! - SetC: Set_Res (all PDC 0) or SetC_SNA (refused ones echoed).
//! - Get / INF_REQ: values; an unknown property has PDC 0 and makes the
//!   answer Get_SNA / INF_SNA.
//! - SetGet: the set section first, then the get section reads the values
//!   after it; any refusal makes it SetGet_SNA.
//! - INFC: INFC_Res with PDC 0 for each property.
//! - Responses and notifications are never answered.

use std::collections::BTreeMap;

use crate::defs::{self, Reading};
use crate::frame::{self, Eoj, Esv, Message, Property};

/// Which values a settable property accepts.
pub type Validator = fn(&[u8]) -> bool;

/// How a settable property takes a value.
#[derive(Debug, Clone, Copy)]
pub enum Check {
    /// Accepts what the function accepts.
    Fn(Validator),
    /// Accepts what the built-in definition of the property reads as a state or number.
    Def,
    /// Accepts a one-byte value valid by definition, and keeps it within
    /// `min..=max` (a device that clamps, guideline §2.1).
    Clamp(u8, u8),
}

#[derive(Debug, Clone)]
struct Slot {
    value: Vec<u8>,
    settable: Option<Check>,
}

/// One simulated object.
#[derive(Debug, Clone)]
pub struct SimObject {
    /// The object.
    pub eoj: Eoj,
    props: BTreeMap<u8, Slot>,
    changed: Vec<u8>,
}

impl SimObject {
    /// An object without properties.
    pub fn new(eoj: Eoj) -> Self {
        Self { eoj, props: BTreeMap::new(), changed: Vec::new() }
    }

    /// Adds a property; `settable` says which values a set may write.
    pub fn with(self, epc: u8, value: &[u8], settable: Option<Validator>) -> Self {
        self.with_check(epc, value, settable.map(Check::Fn))
    }

    /// Adds a property with how a set is checked.
    pub fn with_check(mut self, epc: u8, value: &[u8], settable: Option<Check>) -> Self {
        self.props.insert(epc, Slot { value: value.to_vec(), settable });
        self
    }

    /// A general lighting object (0x0290): operation status 0x80 (ON 0x30 /
    /// OFF 0x31) and light level 0xB0 (0–100 %), both settable.
    pub fn general_lighting(instance: u8, on: bool, level: u8) -> Self {
        Self::new(Eoj([0x02, 0x90, instance]))
            .with(0x80, &[if on { 0x30 } else { 0x31 }], Some(|v| matches!(v, [0x30] | [0x31])))
            .with(0xB0, &[level], Some(|v| matches!(v, [0..=100])))
    }

    /// The current value of `epc`.
    pub fn value(&self, epc: u8) -> Option<&[u8]> {
        self.props.get(&epc).map(|s| s.value.as_slice())
    }

    /// Writes one property if it is settable and the value valid; false otherwise.
    fn set(&mut self, p: &Property) -> bool {
        let class = self.eoj.class();
        let by_def = |edt: &[u8]| {
            matches!(defs::decode(class, p.epc, edt, &|_| None), Reading::State(_) | Reading::Number { .. })
        };
        let Some(Slot { value, settable: Some(check) }) = self.props.get_mut(&p.epc) else { return false };
        let new = match *check {
            Check::Fn(valid) if valid(&p.edt) => p.edt.clone(),
            Check::Def if by_def(&p.edt) => p.edt.clone(),
            Check::Clamp(min, max) if by_def(&p.edt) && p.edt.len() == 1 => vec![p.edt[0].clamp(min, max)],
            _ => return false,
        };
        if *value != new {
            *value = new;
            self.changed.push(p.epc);
        }
        true
    }

    /// Writes a value as the device itself does (dynamics), noting a change.
    pub fn update(&mut self, epc: u8, new: &[u8]) {
        if let Some(slot) = self.props.get_mut(&epc)
            && slot.value != new
        {
            slot.value = new.to_vec();
            self.changed.push(epc);
        }
    }

    /// The properties in the status-change announcement map (0x9D) that
    /// changed since the last call, with their values: what the device
    /// announces by INF.
    pub fn take_announcements(&mut self) -> Vec<Property> {
        let announced = self.value(0x9D).and_then(|m| frame::decode_property_map(m).ok()).unwrap_or_default();
        let mut changed = std::mem::take(&mut self.changed);
        changed.sort_unstable();
        changed.dedup();
        changed
            .into_iter()
            .filter(|e| announced.contains(e))
            .filter_map(|epc| self.value(epc).map(|v| Property { epc, edt: v.to_vec() }))
            .collect()
    }

    /// Every EPC the object has.
    pub fn epcs(&self) -> Vec<u8> {
        self.props.keys().copied().collect()
    }

    /// Writes the property maps 0x9D (`announced`, where present), 0x9E
    /// (settable) and 0x9F (all, the maps included).
    pub fn with_maps(self, announced: &[u8]) -> Self {
        let mut all: Vec<u8> = self.props.keys().copied().chain([0x9D, 0x9E, 0x9F]).collect();
        all.sort_unstable();
        all.dedup();
        let set: Vec<u8> = self.props.iter().filter(|(_, s)| s.settable.is_some()).map(|(e, _)| *e).collect();
        let inf: Vec<u8> = announced.iter().copied().filter(|e| all.contains(e)).collect();
        self.with(0x9D, &frame::encode_property_map(&inf), None)
            .with(0x9E, &frame::encode_property_map(&set), None)
            .with(0x9F, &frame::encode_property_map(&all), None)
    }

    /// Applies a set section: (answer properties, all accepted).
    fn set_all(&mut self, props: &[Property]) -> (Vec<Property>, bool) {
        let mut all = true;
        let answer = props
            .iter()
            .map(|p| {
                if self.set(p) {
                    Property { epc: p.epc, edt: Vec::new() }
                } else {
                    all = false;
                    p.clone()
                }
            })
            .collect();
        (answer, all)
    }

    /// Reads a get section: (answer properties, all known).
    fn get_all(&self, props: &[Property]) -> (Vec<Property>, bool) {
        let mut all = true;
        let answer = props
            .iter()
            .map(|p| {
                let edt = self.value(p.epc).map(<[u8]>::to_vec).unwrap_or_else(|| {
                    all = false;
                    Vec::new()
                });
                Property { epc: p.epc, edt }
            })
            .collect();
        (answer, all)
    }

    /// The answer to `req`, if one is due.
    pub fn respond(&mut self, req: &Message) -> Option<Message> {
        let own = self.eoj;
        let reply = |esv: Esv, props: Vec<Property>, get_props: Vec<Property>| Message {
            tid: req.tid,
            seoj: own,
            deoj: req.seoj,
            esv,
            props,
            get_props,
        };
        match req.esv {
            Esv::SetI => {
                let (props, ok) = self.set_all(&req.props);
                (!ok).then(|| reply(Esv::SetISna, props, Vec::new()))
            }
            Esv::SetC => {
                let (props, ok) = self.set_all(&req.props);
                Some(reply(if ok { Esv::SetRes } else { Esv::SetCSna }, props, Vec::new()))
            }
            Esv::Get | Esv::InfReq => {
                let (props, ok) = self.get_all(&req.props);
                let esv = match (req.esv, ok) {
                    (Esv::Get, true) => Esv::GetRes,
                    (Esv::Get, false) => Esv::GetSna,
                    (_, true) => Esv::Inf,
                    (_, false) => Esv::InfSna,
                };
                Some(reply(esv, props, Vec::new()))
            }
            Esv::SetGet => {
                let (set, set_ok) = self.set_all(&req.props);
                let (get, get_ok) = self.get_all(&req.get_props);
                Some(reply(if set_ok && get_ok { Esv::SetGetRes } else { Esv::SetGetSna }, set, get))
            }
            Esv::Infc => {
                let props = req.props.iter().map(|p| Property { epc: p.epc, edt: Vec::new() }).collect();
                Some(reply(Esv::InfcRes, props, Vec::new()))
            }
            _ => None,
        }
    }
}

/// The manufacturer code the simulator reports (0xFFFFFE: for experiments).
pub const SIM_MANUFACTURER: [u8; 3] = [0xFF, 0xFF, 0xFE];

/// An identification number (0x83): 0xFE, the manufacturer code, then 13
/// bytes unique to `seed` and `eoj`.
pub fn identification(seed: [u8; 4], eoj: Eoj) -> Vec<u8> {
    let mut id = vec![0xFE];
    id.extend_from_slice(&SIM_MANUFACTURER);
    id.extend_from_slice(b"MSB");
    id.extend_from_slice(&seed);
    id.extend_from_slice(&[0, 0, 0]);
    id.extend_from_slice(&eoj.0);
    id
}

fn on_off(v: &[u8]) -> bool {
    matches!(v, [0x30] | [0x31])
}

fn remote_setting(v: &[u8]) -> bool {
    matches!(v, [0x41] | [0x42])
}

impl SimObject {
    /// A simulated device of a built-in class (`None` for other classes),
    /// with the super-class properties, plausible values and its maps.
    pub fn device(class: u16, instance: u8, seed: [u8; 4]) -> Option<Self> {
        let [group, code] = class.to_be_bytes();
        let eoj = Eoj([group, code, instance]);
        let base = Self::new(eoj)
            .with(0x80, &[0x30], Some(on_off))
            .with(0x81, &[0x08], None)
            .with(0x82, &[0, 0, b'R', 0], None)
            .with(0x83, &identification(seed, eoj), None)
            .with(0x88, &[0x42], None)
            .with(0x8A, &SIM_MANUFACTURER, None)
            .with(0x93, &[0x41], Some(remote_setting));
        let def = Some(Check::Def);
        let (obj, announced): (Self, &[u8]) = match class {
            0x0130 => (
                base.with_check(0xB0, &[0x42], def)
                    .with_check(0xB3, &[26], Some(Check::Clamp(16, 30)))
                    .with(0xBA, &[55], None)
                    .with(0xBB, &[28], None)
                    .with(0xBE, &[31], None),
                &[0x80, 0x88, 0xB0, 0xB3],
            ),
            0x0288 => (
                base.with(0xD3, &1u32.to_be_bytes(), None)
                    .with(0xD7, &[6], None)
                    .with(0xE0, &12_000u32.to_be_bytes(), None)
                    .with(0xE1, &[0x01], None)
                    .with(0xE3, &0xFFFF_FFFEu32.to_be_bytes(), None)
                    .with(0xE7, &480i32.to_be_bytes(), None)
                    .with(0xE8, &[0x00, 0x14, 0x00, 0x64], None),
                &[0x80, 0x88],
            ),
            0x0011 => (base.with(0xE0, &215i16.to_be_bytes(), None), &[0x80, 0x88]),
            0x0012 => (base.with(0xE0, &[48], None), &[0x80, 0x88]),
            0x0290 => (base.with_check(0xB0, &[60], def).with_check(0xB6, &[0x42], def), &[0x80, 0x88]),
            0x027D => (
                base.with(0xD3, &0i32.to_be_bytes(), None)
                    .with_check(0xDA, &[0x44], def)
                    .with(0xE2, &3_200u32.to_be_bytes(), None)
                    .with(0xE4, &[64], None),
                &[0x80, 0x88, 0xDA],
            ),
            0x0279 => (
                base.with(0xE0, &1_250u16.to_be_bytes(), None).with(0xE1, &4_321_000u32.to_be_bytes(), None),
                &[0x80, 0x88],
            ),
            0x026B => (
                base.with_check(0xB0, &[0x41], def).with(0xB2, &[0x42], None).with_check(0xB3, &[60], def).with(
                    0xE1,
                    &180u16.to_be_bytes(),
                    None,
                ),
                &[0x80, 0x88, 0xB0, 0xB2],
            ),
            0x03B7 => (base.with(0xB0, &[0x42], None).with(0xD1, &[4], None), &[0x80, 0x88, 0xB0]),
            0x026F => (
                base.with_check(0xE0, &[0x41], def).with(0xE3, &[0x42], None).with(0xE5, &[0x40], None),
                &[0x80, 0x88, 0xE0, 0xE3, 0xE5],
            ),
            _ => return None,
        };
        Some(obj.with_maps(announced))
    }

    /// The node profile object of a node holding `objects` (at most 84 in
    /// its instance lists, guideline §2.5).
    pub fn node_profile(objects: &[Eoj], seed: [u8; 4]) -> Self {
        let listed = &objects[..objects.len().min(84)];
        let mut list = vec![listed.len() as u8];
        list.extend(listed.iter().flat_map(|e| e.0));
        let mut classes: Vec<[u8; 2]> = objects.iter().map(|e| [e.0[0], e.0[1]]).collect();
        classes.sort_unstable();
        classes.dedup();
        let mut class_list = vec![classes.len().min(8) as u8];
        class_list.extend(classes.iter().take(8).flatten());
        let count = u32::try_from(objects.len()).unwrap_or(u32::MAX).min(0xFF_FFFF).to_be_bytes();
        let class_count = u16::try_from(classes.len() + 1).unwrap_or(u16::MAX).to_be_bytes();
        Self::new(Eoj::NODE_PROFILE)
            .with(0x80, &[0x30], None)
            .with(0x82, &[0x01, 0x0D, 0x01, 0x00], None)
            .with(0x83, &identification(seed, Eoj::NODE_PROFILE), None)
            .with(0x8A, &SIM_MANUFACTURER, None)
            .with(0x8C, b"MUSUBI-SIM  ", None)
            .with(0xD3, &count[1..], None)
            .with(0xD4, &class_count, None)
            .with(0xD5, &list, None)
            .with(0xD6, &list, None)
            .with(0xD7, &class_list, None)
            .with_maps(&[0x80, 0xD5])
    }
}

/// A simulated node: its node profile and devices.
#[derive(Debug, Clone)]
pub struct SimNode {
    /// Node profile first, then the devices.
    pub objects: Vec<SimObject>,
}

impl SimNode {
    /// A node with `devices` (classes; instances are numbered per class from 1).
    /// Classes without a built-in definition are left out.
    pub fn new(devices: &[u16], seed: [u8; 4]) -> Self {
        let mut objects: Vec<SimObject> = Vec::new();
        for &class in devices {
            let instance = objects.iter().filter(|o| o.eoj.class() == class).count() + 1;
            if let Some(o) = u8::try_from(instance).ok().and_then(|i| SimObject::device(class, i, seed)) {
                objects.push(o);
            }
        }
        let eojs: Vec<Eoj> = objects.iter().map(|o| o.eoj).collect();
        objects.insert(0, SimObject::node_profile(&eojs, seed));
        Self { objects }
    }

    /// The object `eoj`.
    pub fn object(&mut self, eoj: Eoj) -> Option<&mut SimObject> {
        self.objects.iter_mut().find(|o| o.eoj == eoj)
    }

    /// The answers to `req`: one per addressed object (instance code 0
    /// addresses every instance of the class), none when no object matches.
    pub fn handle(&mut self, req: &Message) -> Vec<Message> {
        let deoj = if req.deoj == Eoj([0x0E, 0xF0, 0x00]) { Eoj::NODE_PROFILE } else { req.deoj };
        self.objects
            .iter_mut()
            .filter(|o| o.eoj == deoj || (deoj.instance() == 0 && o.eoj.class() == deoj.class()))
            .filter_map(|o| o.respond(req))
            .collect()
    }

    /// The node's instance-list announcement (INF of 0xD5 from the node
    /// profile), sent on joining the network (§4.2).
    pub fn instance_announcement(&mut self) -> Option<Message> {
        let list = self.object(Eoj::NODE_PROFILE)?.value(0xD5)?.to_vec();
        Some(Message {
            tid: 0,
            seoj: Eoj::NODE_PROFILE,
            deoj: Eoj::NODE_PROFILE,
            esv: Esv::Inf,
            props: vec![Property { epc: 0xD5, edt: list }],
            get_props: Vec::new(),
        })
    }

    /// The INF frames due for changes since the last call (TID 0, to the node profile class).
    pub fn announcements(&mut self) -> Vec<Message> {
        self.objects
            .iter_mut()
            .filter_map(|o| {
                let props = o.take_announcements();
                (!props.is_empty()).then(|| Message {
                    tid: 0,
                    seoj: o.eoj,
                    deoj: Eoj([0x0E, 0xF0, 0x01]),
                    esv: Esv::Inf,
                    props,
                    get_props: Vec::new(),
                })
            })
            .collect()
    }

    /// Plausible dynamics over `secs` seconds: an air conditioner that is
    /// on moves the room temperature one degree towards its target, the
    /// meter counts the energy of its instantaneous power.
    pub fn tick(&mut self, secs: u32) {
        for o in &mut self.objects {
            let on = o.value(0x80) == Some(&[0x30]);
            match o.eoj.class() {
                0x0130 if on => {
                    if let (Some(&[target]), Some(&[room])) = (o.value(0xB3), o.value(0xBB)) {
                        let room = room as i8;
                        let target = i8::try_from(target).unwrap_or(i8::MAX);
                        let next = room + (target - room).signum();
                        o.update(0xBB, &[next as u8]);
                    }
                }
                0x0288 => {
                    let watts = o.value(0xE7).and_then(|v| <[u8; 4]>::try_from(v).ok()).map_or(0, i32::from_be_bytes);
                    let total = o.value(0xE0).and_then(|v| <[u8; 4]>::try_from(v).ok()).map_or(0, u32::from_be_bytes);
                    // 0.1 kWh steps (unit 0xE1 = 0x01): watts × seconds / 360 000.
                    let add = (i64::from(watts.max(0)) * i64::from(secs) / 360_000).max(i64::from(secs > 0));
                    let next = (i64::from(total) + add) % 100_000_000;
                    o.update(0xE0, &u32::try_from(next).unwrap_or(0).to_be_bytes());
                }
                _ => {}
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const AC: Eoj = Eoj([0x01, 0x30, 0x01]);
    const METER: Eoj = Eoj([0x02, 0x88, 0x01]);

    #[test]
    fn the_room_follows_the_target_and_the_meter_counts_up() {
        let mut node = SimNode::new(&[0x0130, 0x0288], [10, 0, 0, 1]);
        let energy =
            |n: &mut SimNode| u32::from_be_bytes(n.object(METER).unwrap().value(0xE0).unwrap().try_into().unwrap());
        let before = energy(&mut node);
        assert_eq!(node.object(AC).unwrap().value(0xBB), Some(&[28][..]));
        node.tick(60);
        node.tick(60);
        assert_eq!(node.object(AC).unwrap().value(0xBB), Some(&[26][..]), "two steps towards 26 °C");
        node.tick(60);
        assert_eq!(node.object(AC).unwrap().value(0xBB), Some(&[26][..]), "and it stays there");
        assert!(energy(&mut node) > before);
    }

    #[test]
    fn a_set_is_clamped_and_announced() {
        let mut node = SimNode::new(&[0x0130], [10, 0, 0, 1]);
        let set = Message {
            tid: 7,
            seoj: Eoj([0x05, 0xFF, 0x01]),
            deoj: AC,
            esv: Esv::SetC,
            props: vec![Property { epc: 0xB3, edt: vec![40] }],
            get_props: vec![],
        };
        let answer = node.handle(&set);
        assert_eq!(answer.len(), 1);
        assert_eq!(answer[0].esv, Esv::SetRes);
        assert_eq!(node.object(AC).unwrap().value(0xB3), Some(&[30][..]), "kept within 16-30 °C");
        let infs = node.announcements();
        assert_eq!(infs.len(), 1);
        assert_eq!(infs[0].esv, Esv::Inf);
        assert_eq!(infs[0].props, vec![Property { epc: 0xB3, edt: vec![30] }]);
        assert!(node.announcements().is_empty(), "announced once");
    }

    #[test]
    fn the_node_profile_lists_its_devices_and_answers_for_the_all_nodes_address() {
        let mut node = SimNode::new(&[0x0130, 0x0288, 0x9999], [10, 0, 0, 1]);
        let get = Message {
            tid: 1,
            seoj: Eoj([0x05, 0xFF, 0x01]),
            deoj: Eoj([0x0E, 0xF0, 0x00]),
            esv: Esv::Get,
            props: vec![Property { epc: 0xD6, edt: vec![] }],
            get_props: vec![],
        };
        let answer = node.handle(&get);
        assert_eq!(answer[0].props[0].edt, vec![2, 0x01, 0x30, 0x01, 0x02, 0x88, 0x01], "unknown classes are left out");
    }
}
