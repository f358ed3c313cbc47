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

use crate::frame::{Eoj, Esv, Message, Property};

/// Which values a settable property accepts.
pub type Validator = fn(&[u8]) -> bool;

#[derive(Debug, Clone)]
struct Slot {
    value: Vec<u8>,
    settable: Option<Validator>,
}

/// One simulated object.
#[derive(Debug, Clone)]
pub struct SimObject {
    /// The object.
    pub eoj: Eoj,
    props: BTreeMap<u8, Slot>,
}

impl SimObject {
    /// An object without properties.
    pub fn new(eoj: Eoj) -> Self {
        Self { eoj, props: BTreeMap::new() }
    }

    /// Adds a property; `settable` says which values a set may write.
    pub fn with(mut self, epc: u8, value: &[u8], settable: Option<Validator>) -> Self {
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
        match self.props.get_mut(&p.epc) {
            Some(Slot { value, settable: Some(valid) }) if valid(&p.edt) => {
                *value = p.edt.clone();
                true
            }
            _ => false,
        }
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
