//! Device definitions (sans-IO): what the properties of the built-in device
//! classes are called, how their bytes read and how a value is written.
//!
//! Names follow the ECHONET Lite Web API (`operationStatus`,
//! `targetTemperature`, `roomTemperature`, `instantaneousElectricPower`, …).
//! Numbers keep their decimal exponent (0.1 °C, 0.001 kWh) so that a value is
//! never rounded through a float. The reserved codes of each property
//! (overflow, underflow, "no data", "unmeasurable", guideline §6.1) decode to
//! an explicit [`Reading::Special`] state, never to a number. A class or a
//! property not listed here is still usable through its raw EPC.

use std::fmt;

/// How one property's bytes read.
#[derive(Debug, Clone, Copy)]
pub enum Kind {
    /// One byte naming a state.
    States(&'static [(u8, &'static str)]),
    /// A big-endian integer of `size` bytes, worth `raw × 10^exp` `unit`.
    Number(Num),
    /// Cumulative energy of a smart meter: `raw × coefficient (0xD3) × unit (0xE1)` kWh.
    MeterEnergy,
    /// Two signed 16-bit currents (R and T phase) in 0.1 A (meter 0xE8).
    Currents,
    /// A property map (0x9D/0x9E/0x9F).
    Map,
    /// Bytes shown as hex.
    Raw,
}

/// An integer property.
#[derive(Debug, Clone, Copy)]
pub struct Num {
    /// Bytes on the wire (1, 2 or 4).
    pub size: u8,
    /// Two's complement.
    pub signed: bool,
    /// Decimal exponent of one raw step.
    pub exp: i8,
    /// Unit, as the Web API writes it (`Celsius`, `%`, `W`, `kWh`, `A`, `L`).
    pub unit: &'static str,
    /// Least valid raw value.
    pub min: i64,
    /// Greatest valid raw value.
    pub max: i64,
    /// Reserved raw values and the state each means.
    pub special: &'static [(i64, Special)],
}

/// A reserved value: what a device says instead of a number.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Special {
    /// Above the measurable range.
    Overflow,
    /// Below the measurable range.
    Underflow,
    /// The device cannot measure it now.
    Unmeasurable,
    /// No data (guideline §6.1: 0xFFFFFFFE and friends, never 0).
    NoData,
    /// The setting is undefined.
    Undefined,
}

impl Special {
    /// The state's name.
    pub fn name(self) -> &'static str {
        match self {
            Special::Overflow => "overflow",
            Special::Underflow => "underflow",
            Special::Unmeasurable => "unmeasurable",
            Special::NoData => "noData",
            Special::Undefined => "undefined",
        }
    }
}

/// One property of a class.
#[derive(Debug, Clone, Copy)]
pub struct PropDef {
    /// Its EPC.
    pub epc: u8,
    /// Web API name.
    pub name: &'static str,
    /// How it reads.
    pub kind: Kind,
}

/// A device class.
#[derive(Debug, Clone, Copy)]
pub struct ClassDef {
    /// Class group and class code (`0x0130`).
    pub code: u16,
    /// Web API device type (`homeAirConditioner`).
    pub name: &'static str,
    /// Its own properties (the super class's come from [`SUPER_CLASS`]).
    pub props: &'static [PropDef],
}

impl ClassDef {
    /// The SOAP operation that reads every property (`getHomeAirConditioner`).
    pub fn operation(&self) -> String {
        let mut op = String::from("get");
        let mut chars = self.name.chars();
        if let Some(first) = chars.next() {
            op.extend(first.to_uppercase());
            op.push_str(chars.as_str());
        }
        op
    }
}

/// A reading of one property.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reading {
    /// A named state.
    State(&'static str),
    /// A number: `raw × 10^exp` in `unit`.
    Number {
        /// The integer on the wire (times the coefficient, for meters).
        raw: i64,
        /// Decimal exponent.
        exp: i8,
        /// Unit.
        unit: &'static str,
    },
    /// Several numbers (the two phases of a meter's current).
    Numbers(Vec<Reading>),
    /// A reserved value.
    Special(Special),
    /// EPCs of a property map.
    Map(Vec<u8>),
    /// Bytes that have no meaning here (also any value that does not fit its definition).
    Raw(Vec<u8>),
}

impl fmt::Display for Reading {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Reading::State(s) => f.write_str(s),
            Reading::Number { raw, exp, .. } => f.write_str(&decimal(*raw, *exp)),
            Reading::Numbers(v) => {
                let parts: Vec<String> = v.iter().map(ToString::to_string).collect();
                f.write_str(&parts.join(" "))
            }
            Reading::Special(s) => f.write_str(s.name()),
            Reading::Map(epcs) => {
                let parts: Vec<String> = epcs.iter().map(|e| format!("0x{e:02X}")).collect();
                f.write_str(&parts.join(" "))
            }
            Reading::Raw(b) => f.write_str(&hex::encode(b)),
        }
    }
}

impl Reading {
    /// The unit, for numbers.
    pub fn unit(&self) -> Option<&'static str> {
        match self {
            Reading::Number { unit, .. } => Some(unit),
            Reading::Numbers(v) => v.first().and_then(Reading::unit),
            _ => None,
        }
    }
}

/// `raw × 10^exp` as a decimal string (`255, -1` → `25.5`).
pub fn decimal(raw: i64, exp: i8) -> String {
    if exp >= 0 {
        let mut s = raw.to_string();
        if raw != 0 {
            s.extend(std::iter::repeat_n('0', exp as usize));
        }
        return s;
    }
    let places = usize::from(exp.unsigned_abs());
    let digits = raw.unsigned_abs().to_string();
    let padded = format!("{digits:0>width$}", width = places + 1);
    let (int, frac) = padded.split_at(padded.len() - places);
    let frac = frac.trim_end_matches('0');
    let sign = if raw < 0 { "-" } else { "" };
    if frac.is_empty() { format!("{sign}{int}") } else { format!("{sign}{int}.{frac}") }
}

/// Parses a decimal string into raw steps of `10^exp`; `None` when it is not a
/// number or has more decimals than one step.
pub fn parse_decimal(s: &str, exp: i8) -> Option<i64> {
    let s = s.trim();
    let (neg, body) = match s.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, s.strip_prefix('+').unwrap_or(s)),
    };
    let (int, frac) = body.split_once('.').unwrap_or((body, ""));
    if int.is_empty() && frac.is_empty() || !int.bytes().chain(frac.bytes()).all(|b| b.is_ascii_digit()) {
        return None;
    }
    if int.len() + frac.len() > 18 {
        return None;
    }
    let places = i32::from(-exp);
    let frac = frac.trim_end_matches('0');
    if i32::try_from(frac.len()).ok()? > places.max(0) {
        return None;
    }
    let mut digits = format!("{int}{frac}");
    let shift = places - i32::try_from(frac.len()).ok()?;
    if shift >= 0 {
        digits.extend(std::iter::repeat_n('0', usize::try_from(shift).ok()?));
    } else {
        // A positive exponent: the value must be a multiple of 10^exp.
        let cut = usize::try_from(-shift).ok()?;
        let (head, tail) = digits.split_at(digits.len().checked_sub(cut)?);
        if tail.bytes().any(|b| b != b'0') {
            return None;
        }
        digits = head.to_string();
    }
    let v: i64 = if digits.is_empty() { 0 } else { digits.parse().ok()? };
    Some(if neg { -v } else { v })
}

const U8_SPECIAL: &[(i64, Special)] =
    &[(0xFF, Special::Overflow), (0xFE, Special::Underflow), (0xFD, Special::Unmeasurable)];
const I8_SPECIAL: &[(i64, Special)] =
    &[(0x7F, Special::Overflow), (-0x80, Special::Underflow), (0x7E, Special::Unmeasurable)];
const I16_SPECIAL: &[(i64, Special)] = &[(0x7FFF, Special::Overflow), (-0x8000, Special::Underflow)];
const U16_SPECIAL: &[(i64, Special)] = &[(0xFFFF, Special::Overflow), (0xFFFE, Special::Underflow)];
const I32_SPECIAL: &[(i64, Special)] =
    &[(0x7FFF_FFFF, Special::Overflow), (-0x8000_0000, Special::Underflow), (0x7FFF_FFFE, Special::NoData)];
const U32_SPECIAL: &[(i64, Special)] = &[(0xFFFF_FFFF, Special::Overflow), (0xFFFF_FFFE, Special::NoData)];

const fn num(size: u8, signed: bool, exp: i8, unit: &'static str, min: i64, max: i64) -> Kind {
    let special = match (size, signed) {
        (1, false) => U8_SPECIAL,
        (1, true) => I8_SPECIAL,
        (2, false) => U16_SPECIAL,
        (2, true) => I16_SPECIAL,
        (_, false) => U32_SPECIAL,
        (_, true) => I32_SPECIAL,
    };
    Kind::Number(Num { size, signed, exp, unit, min, max, special })
}

const fn p(epc: u8, name: &'static str, kind: Kind) -> PropDef {
    PropDef { epc, name, kind }
}

const ON_OFF: Kind = Kind::States(&[(0x30, "on"), (0x31, "off")]);
const OPEN_CLOSED: Kind = Kind::States(&[(0x41, "open"), (0x42, "closed")]);

/// Properties every device object has (the device super class).
pub const SUPER_CLASS: &[PropDef] = &[
    p(0x80, "operationStatus", ON_OFF),
    p(0x81, "installationLocation", Kind::Raw),
    p(0x82, "standardVersion", Kind::Raw),
    p(0x83, "id", Kind::Raw),
    p(0x88, "faultStatus", Kind::States(&[(0x41, "fault"), (0x42, "noFault")])),
    p(0x8A, "manufacturer", Kind::Raw),
    p(
        0x93,
        "remoteControlSetting",
        Kind::States(&[
            (0x41, "notThroughPublicNetwork"),
            (0x42, "throughPublicNetwork"),
            (0x61, "publicNetworkNormal"),
            (0x62, "publicNetworkAbnormal"),
        ]),
    ),
    p(0x9D, "statusChangeAnnouncementPropertyMap", Kind::Map),
    p(0x9E, "setPropertyMap", Kind::Map),
    p(0x9F, "getPropertyMap", Kind::Map),
];

/// The node profile's own properties (0x0EF0).
pub const NODE_PROFILE: ClassDef = ClassDef {
    code: 0x0EF0,
    name: "nodeProfile",
    props: &[
        p(0xD3, "numberOfSelfNodeInstances", num(3, false, 0, "", 0, 0xFF_FFFF)),
        p(0xD4, "numberOfSelfNodeClasses", num(2, false, 0, "", 0, 0xFFFF)),
        p(0xD5, "instanceListNotification", Kind::Raw),
        p(0xD6, "selfNodeInstanceList", Kind::Raw),
        p(0xD7, "selfNodeClassList", Kind::Raw),
    ],
};

/// The built-in device classes.
pub const CLASSES: &[ClassDef] = &[
    ClassDef {
        code: 0x0130,
        name: "homeAirConditioner",
        props: &[
            p(
                0xB0,
                "operationMode",
                Kind::States(&[
                    (0x41, "auto"),
                    (0x42, "cooling"),
                    (0x43, "heating"),
                    (0x44, "dehumidification"),
                    (0x45, "circulation"),
                    (0x40, "other"),
                ]),
            ),
            p(0xB3, "targetTemperature", num(1, false, 0, "Celsius", 0, 50)),
            p(0xBA, "humidity", num(1, false, 0, "%", 0, 100)),
            p(0xBB, "roomTemperature", num(1, true, 0, "Celsius", -127, 125)),
            p(0xBE, "outdoorTemperature", num(1, true, 0, "Celsius", -127, 125)),
        ],
    },
    ClassDef {
        code: 0x0288,
        name: "lvSmartElectricEnergyMeter",
        props: &[
            p(0xD3, "coefficient", num(4, false, 0, "", 1, 999_999)),
            p(0xD7, "numberOfEffectiveDigits", num(1, false, 0, "", 1, 8)),
            p(0xE0, "normalDirectionCumulativeElectricEnergy", Kind::MeterEnergy),
            p(
                0xE1,
                "unitForCumulativeElectricEnergy",
                Kind::States(&[
                    (0x00, "1kWh"),
                    (0x01, "0.1kWh"),
                    (0x02, "0.01kWh"),
                    (0x03, "0.001kWh"),
                    (0x04, "0.0001kWh"),
                    (0x0A, "10kWh"),
                    (0x0B, "100kWh"),
                    (0x0C, "1000kWh"),
                    (0x0D, "10000kWh"),
                ]),
            ),
            p(0xE3, "reverseDirectionCumulativeElectricEnergy", Kind::MeterEnergy),
            p(0xE7, "instantaneousElectricPower", num(4, true, 0, "W", -2_147_483_647, 2_147_483_645)),
            p(0xE8, "instantaneousCurrent", Kind::Currents),
        ],
    },
    ClassDef {
        code: 0x0011,
        name: "temperatureSensor",
        props: &[p(0xE0, "value", num(2, true, -1, "Celsius", -2732, 32766))],
    },
    ClassDef { code: 0x0012, name: "humiditySensor", props: &[p(0xE0, "value", num(1, false, 0, "%", 0, 100))] },
    ClassDef {
        code: 0x0290,
        name: "generalLighting",
        props: &[
            p(0xB0, "brightness", num(1, false, 0, "%", 0, 100)),
            p(
                0xB6,
                "lightingMode",
                Kind::States(&[(0x41, "auto"), (0x42, "normal"), (0x43, "night"), (0x45, "color")]),
            ),
        ],
    },
    ClassDef {
        code: 0x027D,
        name: "storageBattery",
        props: &[
            p(
                0xD3,
                "instantaneousChargingAndDischargingElectricPower",
                num(4, true, 0, "W", -999_999_999, 999_999_999),
            ),
            p(
                0xDA,
                "operationMode",
                Kind::States(&[
                    (0x41, "rapidCharging"),
                    (0x42, "charging"),
                    (0x43, "discharging"),
                    (0x44, "standby"),
                    (0x45, "test"),
                    (0x46, "auto"),
                    (0x48, "restart"),
                    (0x49, "effectiveCapacityRecalculation"),
                    (0x40, "other"),
                ]),
            ),
            p(0xE2, "remainingCapacity1", num(4, false, 0, "Wh", 0, 999_999_999)),
            p(0xE4, "remainingCapacity3", num(1, false, 0, "%", 0, 100)),
        ],
    },
    ClassDef {
        code: 0x0279,
        name: "homeSolarPowerGeneration",
        props: &[
            p(0xE0, "instantaneousElectricPowerGeneration", num(2, false, 0, "W", 0, 65533)),
            p(0xE1, "cumulativeElectricEnergyOfGeneration", num(4, false, -3, "kWh", 0, 999_999_999)),
        ],
    },
    ClassDef {
        code: 0x026B,
        name: "electricWaterHeater",
        props: &[
            p(
                0xB0,
                "automaticWaterHeatingSetting",
                Kind::States(&[(0x41, "auto"), (0x42, "manualHeating"), (0x43, "manualStop")]),
            ),
            p(0xB2, "waterHeatingStatus", Kind::States(&[(0x41, "heating"), (0x42, "notHeating")])),
            p(0xB3, "targetWaterHeatingTemperature", num(1, false, 0, "Celsius", 0, 100)),
            p(0xE1, "remainingHotWaterVolume", num(2, false, 0, "L", 0, 65533)),
        ],
    },
    ClassDef {
        code: 0x03B7,
        name: "refrigerator",
        props: &[
            p(0xB0, "doorOpenStatus", OPEN_CLOSED),
            p(0xD1, "refrigeratorCompartmentTemperature", num(1, true, 0, "Celsius", -127, 126)),
        ],
    },
    ClassDef {
        code: 0x026F,
        name: "electricLock",
        props: &[
            p(0xE0, "lockSetting1", Kind::States(&[(0x41, "lock"), (0x42, "unlock")])),
            p(0xE3, "doorOpenStatus", OPEN_CLOSED),
            p(
                0xE5,
                "alarmStatus",
                Kind::States(&[
                    (0x40, "normal"),
                    (0x41, "breakOpen"),
                    (0x42, "doorOpen"),
                    (0x43, "manualUnlocked"),
                    (0x44, "tampered"),
                ]),
            ),
        ],
    },
];

/// The definition of `class`: built in, or loaded from the MRA ([`crate::mra`]).
pub fn class(code: u16) -> Option<&'static ClassDef> {
    CLASSES.iter().chain(std::iter::once(&NODE_PROFILE)).chain(crate::mra::loaded()).find(|c| c.code == code)
}

/// The definition of `epc` in `class` (class first, then the super class).
pub fn property(class: u16, epc: u8) -> Option<&'static PropDef> {
    self::class(class)
        .and_then(|c| c.props.iter().find(|p| p.epc == epc))
        .or_else(|| SUPER_CLASS.iter().find(|p| p.epc == epc))
}

/// The EPC named `name` in `class`; also accepts `0xNN` / `NN` hex for raw access.
pub fn epc_named(class: u16, name: &str) -> Option<u8> {
    let own = self::class(class).map(|c| c.props).unwrap_or(&[]);
    if let Some(p) = own.iter().chain(SUPER_CLASS).find(|p| p.name == name) {
        return Some(p.epc);
    }
    let hex = name.strip_prefix("0x").or_else(|| name.strip_prefix("0X")).unwrap_or(name);
    if hex.len() == 2 { u8::from_str_radix(hex, 16).ok().filter(|e| *e >= 0x80) } else { None }
}

/// The name of `epc` in `class`, or `0xNN`.
pub fn name_of(class: u16, epc: u8) -> String {
    property(class, epc).map(|p| p.name.to_string()).unwrap_or_else(|| format!("0x{epc:02X}"))
}

/// Reads a big-endian integer of `edt.len()` bytes.
fn int(edt: &[u8], signed: bool) -> i64 {
    let mut v: i64 = 0;
    for b in edt {
        v = (v << 8) | i64::from(*b);
    }
    if signed && !edt.is_empty() && edt[0] & 0x80 != 0 {
        v -= 1i64 << (8 * edt.len());
    }
    v
}

fn number(n: &Num, edt: &[u8]) -> Reading {
    if edt.len() != usize::from(n.size) {
        return Reading::Raw(edt.to_vec());
    }
    let raw = int(edt, n.signed);
    if let Some((_, s)) = n.special.iter().find(|(v, _)| *v == raw) {
        return Reading::Special(*s);
    }
    if raw < n.min || raw > n.max {
        return Reading::Raw(edt.to_vec());
    }
    Reading::Number { raw, exp: n.exp, unit: n.unit }
}

/// Decodes `edt` of `epc` in `class`. `context` gives other properties of the
/// same object (a meter's coefficient 0xD3 and unit 0xE1).
pub fn decode(class: u16, epc: u8, edt: &[u8], context: &dyn Fn(u8) -> Option<Vec<u8>>) -> Reading {
    let Some(def) = property(class, epc) else { return Reading::Raw(edt.to_vec()) };
    match def.kind {
        Kind::States(states) => match edt {
            [b] => states
                .iter()
                .find(|(v, _)| v == b)
                .map_or_else(|| Reading::Raw(edt.to_vec()), |(_, s)| Reading::State(s)),
            _ => Reading::Raw(edt.to_vec()),
        },
        Kind::Number(n) => number(&n, edt),
        Kind::MeterEnergy => {
            if edt.len() != 4 {
                return Reading::Raw(edt.to_vec());
            }
            let raw = int(edt, false);
            if raw == 0xFFFF_FFFE {
                return Reading::Special(Special::NoData);
            }
            if raw > 99_999_999 {
                return Reading::Raw(edt.to_vec());
            }
            let coefficient = context(0xD3).filter(|c| c.len() == 4).map(|c| int(&c, false)).unwrap_or(1).max(1);
            let exp = match context(0xE1).as_deref() {
                None | Some([0x00]) => 0,
                Some([0x01]) => -1,
                Some([0x02]) => -2,
                Some([0x03]) => -3,
                Some([0x04]) => -4,
                Some([0x0A]) => 1,
                Some([0x0B]) => 2,
                Some([0x0C]) => 3,
                Some([0x0D]) => 4,
                Some(_) => return Reading::Raw(edt.to_vec()),
            };
            Reading::Number { raw: raw * coefficient, exp, unit: "kWh" }
        }
        Kind::Currents => {
            if edt.len() != 4 {
                return Reading::Raw(edt.to_vec());
            }
            let phase = |b: &[u8]| match int(b, true) {
                0x7FFE => Reading::Special(Special::NoData),
                0x7FFF => Reading::Special(Special::Overflow),
                -0x8000 => Reading::Special(Special::Underflow),
                raw => Reading::Number { raw, exp: -1, unit: "A" },
            };
            Reading::Numbers(vec![phase(&edt[..2]), phase(&edt[2..])])
        }
        Kind::Map => crate::frame::decode_property_map(edt).map_or_else(|_| Reading::Raw(edt.to_vec()), Reading::Map),
        Kind::Raw => Reading::Raw(edt.to_vec()),
    }
}

/// Why a value cannot be written.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ValueError {
    /// Not one of the property's states.
    #[error("{value:?} is not a state of {property}; use one of: {allowed}")]
    UnknownState {
        /// The property.
        property: String,
        /// What was given.
        value: String,
        /// The states.
        allowed: String,
    },
    /// Not a number with the property's precision.
    #[error("{value:?} is not a number for {property} (steps of {step} {unit})")]
    NotANumber {
        /// The property.
        property: String,
        /// What was given.
        value: String,
        /// One step.
        step: String,
        /// Unit.
        unit: &'static str,
    },
    /// Outside the valid range.
    #[error("{value} is out of range for {property}: {min} to {max} {unit}")]
    OutOfRange {
        /// The property.
        property: String,
        /// What was given.
        value: String,
        /// Least value.
        min: String,
        /// Greatest value.
        max: String,
        /// Unit.
        unit: &'static str,
    },
    /// Raw bytes expected as hex.
    #[error("{value:?} is not hex data for {property} (1 to 255 bytes, e.g. 0x30)")]
    NotHex {
        /// The property.
        property: String,
        /// What was given.
        value: String,
    },
}

fn parse_hex(s: &str) -> Option<Vec<u8>> {
    let s = s.trim();
    let s = s.strip_prefix("0x").or_else(|| s.strip_prefix("0X")).unwrap_or(s);
    hex::decode(s).ok().filter(|b| (1..=255).contains(&b.len()))
}

/// Encodes a value given as text for `epc` in `class`: a state name, a
/// decimal number in the property's unit, or hex for raw properties.
pub fn encode(class: u16, epc: u8, value: &str) -> Result<Vec<u8>, ValueError> {
    let property = name_of(class, epc);
    let not_hex = || ValueError::NotHex { property: property.clone(), value: value.to_string() };
    let Some(def) = self::property(class, epc) else { return parse_hex(value).ok_or_else(not_hex) };
    match def.kind {
        Kind::States(states) => {
            states.iter().find(|(_, s)| *s == value.trim()).map(|(b, _)| vec![*b]).ok_or_else(|| {
                ValueError::UnknownState {
                    property: property.clone(),
                    value: value.to_string(),
                    allowed: states.iter().map(|(_, s)| *s).collect::<Vec<_>>().join(", "),
                }
            })
        }
        Kind::Number(n) => {
            let raw = parse_decimal(value, n.exp).ok_or_else(|| ValueError::NotANumber {
                property: property.clone(),
                value: value.to_string(),
                step: decimal(1, n.exp),
                unit: n.unit,
            })?;
            if raw < n.min || raw > n.max {
                return Err(ValueError::OutOfRange {
                    property,
                    value: value.trim().to_string(),
                    min: decimal(n.min, n.exp),
                    max: decimal(n.max, n.exp),
                    unit: n.unit,
                });
            }
            let bytes = raw.to_be_bytes();
            Ok(bytes[8 - usize::from(n.size)..].to_vec())
        }
        _ => parse_hex(value).ok_or_else(not_hex),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn none(_: u8) -> Option<Vec<u8>> {
        None
    }

    #[test]
    fn decimals_round_trip() {
        assert_eq!(decimal(255, -1), "25.5");
        assert_eq!(decimal(-5, -1), "-0.5");
        assert_eq!(decimal(250, -1), "25");
        assert_eq!(decimal(12345, -3), "12.345");
        assert_eq!(decimal(7, 2), "700");
        assert_eq!(parse_decimal("25.5", -1), Some(255));
        assert_eq!(parse_decimal("-0.5", -1), Some(-5));
        assert_eq!(parse_decimal("26", 0), Some(26));
        assert_eq!(parse_decimal("26.0", 0), Some(26));
        assert_eq!(parse_decimal("26.5", 0), None);
        assert_eq!(parse_decimal("700", 2), Some(7));
        assert_eq!(parse_decimal("750", 2), None);
        assert_eq!(parse_decimal("abc", 0), None);
        assert_eq!(parse_decimal("", 0), None);
        assert_eq!(parse_decimal("1e5", 0), None);
    }

    #[test]
    fn reads_air_conditioner_values_and_reserved_codes() {
        assert_eq!(decode(0x0130, 0xBB, &[0x1A], &none), Reading::Number { raw: 26, exp: 0, unit: "Celsius" });
        assert_eq!(decode(0x0130, 0xBB, &[0xFB], &none), Reading::Number { raw: -5, exp: 0, unit: "Celsius" });
        assert_eq!(decode(0x0130, 0xBB, &[0x7E], &none), Reading::Special(Special::Unmeasurable));
        assert_eq!(decode(0x0130, 0xBA, &[0xFD], &none), Reading::Special(Special::Unmeasurable));
        assert_eq!(decode(0x0130, 0xB0, &[0x42], &none), Reading::State("cooling"));
        assert_eq!(decode(0x0130, 0x80, &[0x30], &none), Reading::State("on"));
        // A value outside its definition is shown as it is, not as a number.
        assert_eq!(decode(0x0130, 0xB3, &[0x64], &none), Reading::Raw(vec![0x64]));
        assert_eq!(decode(0x0130, 0xB3, &[0x1A, 0x00], &none), Reading::Raw(vec![0x1A, 0x00]));
    }

    #[test]
    fn reads_meter_energy_with_coefficient_and_unit() {
        let ctx = |epc: u8| match epc {
            0xD3 => Some(vec![0, 0, 0, 10]),
            0xE1 => Some(vec![0x01]),
            _ => None,
        };
        let r = decode(0x0288, 0xE0, &[0, 0, 0x30, 0x39], &ctx);
        assert_eq!(r, Reading::Number { raw: 123_450, exp: -1, unit: "kWh" });
        assert_eq!(r.to_string(), "12345");
        assert_eq!(decode(0x0288, 0xE0, &[0xFF, 0xFF, 0xFF, 0xFE], &ctx), Reading::Special(Special::NoData));
        assert_eq!(decode(0x0288, 0xE7, &[0x7F, 0xFF, 0xFF, 0xFE], &none), Reading::Special(Special::NoData));
        assert_eq!(decode(0x0288, 0xE7, &[0xFF, 0xFF, 0xFF, 0x9C], &none).to_string(), "-100");
        // frames.toml: R 0x0014 -> 2.0 A, T 0x0064 -> 10.0 A.
        assert_eq!(decode(0x0288, 0xE8, &[0x00, 0x14, 0x00, 0x64], &none).to_string(), "2 10");
        assert_eq!(
            decode(0x0288, 0xE8, &[0x00, 0x14, 0x7F, 0xFE], &none),
            Reading::Numbers(vec![Reading::Number { raw: 20, exp: -1, unit: "A" }, Reading::Special(Special::NoData)])
        );
    }

    #[test]
    fn writes_states_and_numbers_within_range() {
        assert_eq!(encode(0x0130, 0xB3, "26"), Ok(vec![26]));
        assert_eq!(encode(0x0130, 0x80, "off"), Ok(vec![0x31]));
        assert_eq!(encode(0x0011, 0xE0, "-1.5"), Ok(vec![0xFF, 0xF1]));
        assert!(matches!(encode(0x0130, 0xB3, "51"), Err(ValueError::OutOfRange { .. })));
        assert!(matches!(encode(0x0130, 0xB3, "26.5"), Err(ValueError::NotANumber { .. })));
        assert!(matches!(encode(0x0130, 0xB0, "freezing"), Err(ValueError::UnknownState { .. })));
        assert_eq!(encode(0x0130, 0xF0, "0x0102"), Ok(vec![1, 2]));
        assert!(matches!(encode(0x0130, 0xF0, "xyz"), Err(ValueError::NotHex { .. })));
        let e = encode(0x0130, 0xB3, "60").unwrap_err().to_string();
        assert_eq!(e, "60 is out of range for targetTemperature: 0 to 50 Celsius");
    }

    #[test]
    fn names_resolve_in_class_then_super_class_then_hex() {
        assert_eq!(epc_named(0x0130, "targetTemperature"), Some(0xB3));
        assert_eq!(epc_named(0x0130, "operationStatus"), Some(0x80));
        assert_eq!(epc_named(0x0130, "0xF0"), Some(0xF0));
        assert_eq!(epc_named(0x0130, "0x10"), None);
        assert_eq!(epc_named(0x0130, "brightness"), None);
        assert_eq!(CLASSES[0].operation(), "getHomeAirConditioner");
        assert_eq!(name_of(0x9999, 0xF1), "0xF1");
        for c in CLASSES {
            let mut epcs: Vec<u8> = c.props.iter().map(|p| p.epc).collect();
            epcs.sort_unstable();
            epcs.dedup();
            assert_eq!(epcs.len(), c.props.len(), "{} lists an EPC twice", c.name);
        }
    }
}
