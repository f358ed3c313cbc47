//! ECHONET Lite frames (sans-IO): decoding with every length checked and a
//! typed error for each way a frame can be wrong, and encoding.
//!
//! Format 1 (EHD2 0x81) is decoded: TID, SEOJ, DEOJ, ESV and the properties,
//! with the two-section layout of SetGet (0x6E, 0x7E, 0x5E). Format 2 (EHD2
//! 0x82) is kept opaque after the TID. Property maps (0x9D/0x9E/0x9F) come in
//! list form below 16 properties and bitmap form from 16; instance lists
//! (0xD5/0xD6) carry a count and 3-byte objects.

/// EHD1 of every ECHONET Lite frame.
pub const EHD1: u8 = 0x10;
/// EHD2 of format 1 (specified message format).
pub const EHD2_FORMAT1: u8 = 0x81;
/// EHD2 of format 2 (arbitrary message format).
pub const EHD2_FORMAT2: u8 = 0x82;
/// Largest frame decoded: far above any real frame (OPC ≤ 255 properties of ≤ 255 bytes each).
pub const MAX_FRAME_BYTES: usize = 2 * (255 * 257) + 16;

/// An ECHONET Lite object: class group, class, instance.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Eoj(pub [u8; 3]);

impl Eoj {
    /// The node profile object of a node (0x0EF001).
    pub const NODE_PROFILE: Eoj = Eoj([0x0E, 0xF0, 0x01]);

    /// Class group and class (the object's class code).
    pub fn class(self) -> u16 {
        u16::from_be_bytes([self.0[0], self.0[1]])
    }

    /// The instance code (0 addresses every instance of the class).
    pub fn instance(self) -> u8 {
        self.0[2]
    }
}

impl std::fmt::Display for Eoj {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{:02X}{:02X}{:02X}", self.0[0], self.0[1], self.0[2])
    }
}

/// ECHONET Lite service (ESV) codes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum Esv {
    /// Property write, no response required.
    SetI = 0x60,
    /// Property write, response required.
    SetC = 0x61,
    /// Property read.
    Get = 0x62,
    /// Property notification request.
    InfReq = 0x63,
    /// Property write and read.
    SetGet = 0x6E,
    /// Response to SetC.
    SetRes = 0x71,
    /// Response to Get.
    GetRes = 0x72,
    /// Notification.
    Inf = 0x73,
    /// Notification requiring a response.
    Infc = 0x74,
    /// Response to INFC.
    InfcRes = 0x7A,
    /// Response to SetGet.
    SetGetRes = 0x7E,
    /// SetI not possible.
    SetISna = 0x50,
    /// SetC not possible.
    SetCSna = 0x51,
    /// Get not possible.
    GetSna = 0x52,
    /// INF_REQ not possible.
    InfSna = 0x53,
    /// SetGet not possible.
    SetGetSna = 0x5E,
}

impl Esv {
    /// The service of a code, if it is one.
    pub fn from_code(code: u8) -> Option<Esv> {
        use Esv::*;
        Some(match code {
            0x60 => SetI,
            0x61 => SetC,
            0x62 => Get,
            0x63 => InfReq,
            0x6E => SetGet,
            0x71 => SetRes,
            0x72 => GetRes,
            0x73 => Inf,
            0x74 => Infc,
            0x7A => InfcRes,
            0x7E => SetGetRes,
            0x50 => SetISna,
            0x51 => SetCSna,
            0x52 => GetSna,
            0x53 => InfSna,
            0x5E => SetGetSna,
            _ => return None,
        })
    }

    /// Whether frames of this service use the two-section SetGet layout.
    pub fn is_set_get(self) -> bool {
        matches!(self, Esv::SetGet | Esv::SetGetRes | Esv::SetGetSna)
    }

    /// Whether it is a request (which a device may answer).
    pub fn is_request(self) -> bool {
        matches!(self, Esv::SetI | Esv::SetC | Esv::Get | Esv::InfReq | Esv::SetGet | Esv::Infc)
    }
}

/// One property: EPC and its data (EDT; empty when PDC is 0).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Property {
    /// The property code.
    pub epc: u8,
    /// The property data.
    pub edt: Vec<u8>,
}

/// A format-1 frame.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Message {
    /// Transaction id.
    pub tid: u16,
    /// Source object.
    pub seoj: Eoj,
    /// Destination object.
    pub deoj: Eoj,
    /// The service.
    pub esv: Esv,
    /// The properties (for SetGet services: the set section).
    pub props: Vec<Property>,
    /// For SetGet services: the get section; empty otherwise.
    pub get_props: Vec<Property>,
}

/// A decoded frame.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Frame {
    /// Format 1 (EHD2 0x81), decoded.
    Format1(Message),
    /// Format 2 (EHD2 0x82): the TID and the opaque rest.
    Format2 {
        /// Transaction id.
        tid: u16,
        /// Everything after the TID.
        data: Vec<u8>,
    },
}

/// Why bytes are not a frame.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FrameError {
    /// Fewer bytes than the fixed header needs.
    #[error("frame of {got} bytes is shorter than its {needed}-byte header")]
    ShortHeader {
        /// Bytes the header needs.
        needed: usize,
        /// Bytes there were.
        got: usize,
    },
    /// More bytes than any frame has.
    #[error("frame of {0} bytes exceeds the limit of {MAX_FRAME_BYTES}")]
    TooLarge(usize),
    /// EHD1 is not 0x10.
    #[error("EHD1 is 0x{0:02X}, not 0x10: not an ECHONET Lite frame")]
    NotEchonetLite(u8),
    /// EHD2 is neither 0x81 nor 0x82.
    #[error("EHD2 0x{0:02X} is neither format 1 (0x81) nor format 2 (0x82)")]
    UnknownFormat(u8),
    /// The ESV is not a service code.
    #[error("ESV 0x{0:02X} is not an ECHONET Lite service")]
    UnknownEsv(u8),
    /// The data ends inside a property.
    #[error("the frame ends inside property {index} of the {section} section (OPC {opc})")]
    Truncated {
        /// `set`, `get` or `properties`.
        section: &'static str,
        /// Which property (from 0).
        index: usize,
        /// The count the frame declared.
        opc: u8,
    },
    /// Bytes after the last property.
    #[error("{0} bytes after the last property")]
    TrailingBytes(usize),
    /// A request names no property.
    #[error("a {0:?} request must name at least one property")]
    NoProperties(Esv),
    /// A SetGet request reads nothing.
    #[error("a SetGet request must read at least one property (OPCGet is 0)")]
    SetGetWithoutGet,
}

const HEADER: usize = 12;

/// Decodes one frame (a whole UDP payload).
pub fn decode(bytes: &[u8]) -> Result<Frame, FrameError> {
    if bytes.len() > MAX_FRAME_BYTES {
        return Err(FrameError::TooLarge(bytes.len()));
    }
    if bytes.len() < 4 {
        return Err(FrameError::ShortHeader { needed: 4, got: bytes.len() });
    }
    if bytes[0] != EHD1 {
        return Err(FrameError::NotEchonetLite(bytes[0]));
    }
    let tid = u16::from_be_bytes([bytes[2], bytes[3]]);
    match bytes[1] {
        EHD2_FORMAT2 => return Ok(Frame::Format2 { tid, data: bytes[4..].to_vec() }),
        EHD2_FORMAT1 => {}
        other => return Err(FrameError::UnknownFormat(other)),
    }
    if bytes.len() < HEADER {
        return Err(FrameError::ShortHeader { needed: HEADER, got: bytes.len() });
    }
    let eoj = |at: usize| Eoj([bytes[at], bytes[at + 1], bytes[at + 2]]);
    let (seoj, deoj) = (eoj(4), eoj(7));
    let esv = Esv::from_code(bytes[10]).ok_or(FrameError::UnknownEsv(bytes[10]))?;
    let mut rest = &bytes[11..];
    let (props, get_props) = if esv.is_set_get() {
        let set = properties(&mut rest, "set")?;
        let get = properties(&mut rest, "get")?;
        if esv == Esv::SetGet && get.is_empty() {
            return Err(if set.is_empty() { FrameError::NoProperties(esv) } else { FrameError::SetGetWithoutGet });
        }
        (set, get)
    } else {
        let props = properties(&mut rest, "properties")?;
        if esv.is_request() && props.is_empty() {
            return Err(FrameError::NoProperties(esv));
        }
        (props, Vec::new())
    };
    if !rest.is_empty() {
        return Err(FrameError::TrailingBytes(rest.len()));
    }
    Ok(Frame::Format1(Message { tid, seoj, deoj, esv, props, get_props }))
}

/// The length of the first frame in `buf`, for a byte stream (ECHONET Lite
/// over TCP, §2.11): `None` while more bytes are needed. Format 2 frames
/// carry no length and cannot be delimited on a stream: an error.
pub fn frame_len(buf: &[u8]) -> Result<Option<usize>, FrameError> {
    if buf.len() < 2 {
        return Ok(None);
    }
    if buf[0] != EHD1 {
        return Err(FrameError::NotEchonetLite(buf[0]));
    }
    if buf[1] != EHD2_FORMAT1 {
        return Err(FrameError::UnknownFormat(buf[1]));
    }
    if buf.len() < HEADER {
        return Ok(None);
    }
    let esv = Esv::from_code(buf[10]).ok_or(FrameError::UnknownEsv(buf[10]))?;
    let mut at = 11;
    for _ in 0..if esv.is_set_get() { 2 } else { 1 } {
        let Some(&opc) = buf.get(at) else { return Ok(None) };
        at += 1;
        for _ in 0..opc {
            let Some(&pdc) = buf.get(at + 1) else { return Ok(None) };
            at += 2 + usize::from(pdc);
        }
    }
    Ok((at <= buf.len()).then_some(at))
}

/// Reads OPC and OPC properties from the front of `rest`.
fn properties(rest: &mut &[u8], section: &'static str) -> Result<Vec<Property>, FrameError> {
    let (&opc, mut data) = rest.split_first().ok_or(FrameError::Truncated { section, index: 0, opc: 0 })?;
    let mut props = Vec::with_capacity(usize::from(opc));
    for index in 0..usize::from(opc) {
        let truncated = FrameError::Truncated { section, index, opc };
        let [epc, pdc, tail @ ..] = data else { return Err(truncated) };
        let (edt, tail) = tail.split_at_checked(usize::from(*pdc)).ok_or(truncated)?;
        props.push(Property { epc: *epc, edt: edt.to_vec() });
        data = tail;
    }
    *rest = data;
    Ok(props)
}

/// Encodes a frame. Property data longer than 255 bytes is cut to 255 (PDC is one byte).
pub fn encode(frame: &Frame) -> Vec<u8> {
    match frame {
        Frame::Format2 { tid, data } => {
            let mut out = vec![EHD1, EHD2_FORMAT2];
            out.extend_from_slice(&tid.to_be_bytes());
            out.extend_from_slice(data);
            out
        }
        Frame::Format1(m) => {
            let mut out = vec![EHD1, EHD2_FORMAT1];
            out.extend_from_slice(&m.tid.to_be_bytes());
            out.extend_from_slice(&m.seoj.0);
            out.extend_from_slice(&m.deoj.0);
            out.push(m.esv as u8);
            let mut section = |props: &[Property]| {
                out.push(u8::try_from(props.len()).unwrap_or(u8::MAX));
                for p in props.iter().take(255) {
                    let edt = &p.edt[..p.edt.len().min(255)];
                    out.push(p.epc);
                    out.push(edt.len() as u8);
                    out.extend_from_slice(edt);
                }
            };
            section(&m.props);
            if m.esv.is_set_get() {
                section(&m.get_props);
            }
            out
        }
    }
}

/// Why a property map or instance list does not decode.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MapError {
    /// The data is empty.
    #[error("the property data is empty")]
    Empty,
    /// The length does not fit the count.
    #[error("{what}: count {count} needs {needed} bytes of data, there are {got}")]
    Length {
        /// Property map or instance list.
        what: &'static str,
        /// The declared count.
        count: u8,
        /// Bytes the count needs.
        needed: usize,
        /// Bytes there are.
        got: usize,
    },
    /// More instances than one list may hold.
    #[error("instance list claims {0} instances; at most 84 fit in one property")]
    TooManyInstances(u8),
}

/// The EPCs of a property map (EDT of 0x9D, 0x9E or 0x9F), ascending. The
/// list form may name codes below 0x80, which are no properties: they are
/// left out (a map's count must still fit its length).
pub fn decode_property_map(edt: &[u8]) -> Result<Vec<u8>, MapError> {
    let (&count, rest) = edt.split_first().ok_or(MapError::Empty)?;
    let what = "property map";
    if count < 16 {
        if rest.len() != usize::from(count) {
            return Err(MapError::Length { what, count, needed: usize::from(count), got: rest.len() });
        }
        let mut epcs: Vec<u8> = rest.iter().copied().filter(|e| *e >= 0x80).collect();
        epcs.sort_unstable();
        epcs.dedup();
        return Ok(epcs);
    }
    if rest.len() != 16 {
        return Err(MapError::Length { what, count, needed: 16, got: rest.len() });
    }
    // Byte i covers EPCs whose low nibble is i; bit j covers high nibble 8 + j.
    let mut epcs: Vec<u8> = (0..16u8)
        .flat_map(|i| (0..8u8).filter(move |j| rest[usize::from(i)] & (1 << j) != 0).map(move |j| 0x80 + 0x10 * j + i))
        .collect();
    epcs.sort_unstable();
    Ok(epcs)
}

/// The EDT of a property map holding `epcs` (0x80–0xFF): list form below 16, bitmap form from 16.
pub fn encode_property_map(epcs: &[u8]) -> Vec<u8> {
    let mut set: Vec<u8> = epcs.iter().copied().filter(|e| *e >= 0x80).collect();
    set.sort_unstable();
    set.dedup();
    if set.len() < 16 {
        let mut out = vec![set.len() as u8];
        out.extend_from_slice(&set);
        return out;
    }
    let mut out = vec![u8::try_from(set.len()).unwrap_or(u8::MAX); 17];
    out[1..].fill(0);
    for e in set {
        out[1 + usize::from(e & 0x0F)] |= 1 << ((e >> 4) - 8);
    }
    out
}

/// The objects of an instance list (EDT of 0xD5 or 0xD6): a count (0–84) and 3-byte objects.
pub fn decode_instance_list(edt: &[u8]) -> Result<Vec<Eoj>, MapError> {
    let (&count, rest) = edt.split_first().ok_or(MapError::Empty)?;
    if count > 84 {
        return Err(MapError::TooManyInstances(count));
    }
    let needed = 3 * usize::from(count);
    if rest.len() != needed {
        return Err(MapError::Length { what: "instance list", count, needed, got: rest.len() });
    }
    Ok(rest.chunks_exact(3).map(|c| Eoj([c[0], c[1], c[2]])).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hex(s: &str) -> Vec<u8> {
        (0..s.len()).step_by(2).map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap()).collect()
    }

    #[test]
    fn property_maps_round_trip_in_both_forms_over_the_whole_epc_range() {
        let all: Vec<u8> = (0x80..=0xFF).collect();
        for n in [0usize, 1, 15, 16, 17, 64, 128] {
            let epcs: Vec<u8> = all.iter().copied().step_by((128 / n.max(1)).max(1)).take(n).collect();
            let edt = encode_property_map(&epcs);
            assert_eq!(edt.len(), if epcs.len() < 16 { 1 + epcs.len() } else { 17 }, "n={n}");
            assert_eq!(decode_property_map(&edt).unwrap(), epcs, "n={n}");
        }
        assert_eq!(
            decode_property_map(&[3, 0x80]),
            Err(MapError::Length { what: "property map", count: 3, needed: 3, got: 1 })
        );
        assert!(decode_property_map(&[16, 0]).is_err());
    }

    /// Fuzzing finding (echonet, crash-9159cb8b): a list-form map naming
    /// code 0x01 came back, and encoding it lost it (no round trip).
    #[test]
    fn fuzz_echonet_9159cb8b_list_maps_leave_out_codes_below_0x80() {
        assert_eq!(decode_property_map(&[1, 0x01]), Ok(vec![]));
        assert_eq!(decode_property_map(&[3, 0x9F, 0x7F, 0x80]), Ok(vec![0x80, 0x9F]));
        assert!(decode_property_map(&[2, 0x01]).is_err(), "the count must still fit");
    }

    #[test]
    fn instance_lists_check_their_count() {
        assert_eq!(decode_instance_list(&[1, 0x01, 0x30, 0x01]).unwrap(), [Eoj([0x01, 0x30, 0x01])]);
        assert_eq!(decode_instance_list(&[255]), Err(MapError::TooManyInstances(255)));
        assert!(decode_instance_list(&[2, 0x01, 0x30, 0x01]).is_err());
        assert!(decode_instance_list(&[]).is_err());
    }

    #[test]
    fn frame_lengths_delimit_frames_on_a_stream() {
        let set_get = hex("1081000105ff010290016e02800130b0014b028000b000");
        let get = hex("1081123405ff010288016201e700");
        let mut stream = set_get.clone();
        stream.extend_from_slice(&get);
        assert_eq!(frame_len(&stream), Ok(Some(set_get.len())));
        assert_eq!(frame_len(&stream[set_get.len()..]), Ok(Some(get.len())));
        for cut in 0..set_get.len() {
            assert_eq!(frame_len(&set_get[..cut]), Ok(None), "prefix of {cut} bytes");
        }
        assert_eq!(frame_len(&hex("10820003000e")), Err(FrameError::UnknownFormat(0x82)));
        assert_eq!(frame_len(&hex("2081")), Err(FrameError::NotEchonetLite(0x20)));
    }

    #[test]
    fn every_prefix_of_a_frame_and_a_trailing_byte_are_refused() {
        let frame = [0x10, 0x81, 0, 1, 0x05, 0xFF, 1, 0x02, 0x90, 1, 0x6E, 1, 0x80, 1, 0x30, 1, 0x80, 0];
        let decoded = decode(&frame).unwrap();
        assert_eq!(encode(&decoded), frame);
        for cut in 0..frame.len() {
            assert!(decode(&frame[..cut]).is_err(), "prefix of {cut} bytes");
        }
        let mut longer = frame.to_vec();
        longer.push(0);
        assert_eq!(decode(&longer), Err(FrameError::TrailingBytes(1)));
    }
}
