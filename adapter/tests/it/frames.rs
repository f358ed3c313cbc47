//! Every vector of `../shared/conformance/echonet/frames.toml` through the codec.

use std::path::PathBuf;

use musubi_adapter::frame::{self, Eoj, Esv, Frame, Message};
use musubi_adapter::sim::SimObject;

#[derive(serde::Deserialize)]
struct Vectors {
    valid: Vec<Valid>,
    invalid: Vec<Invalid>,
    property_map: Vec<Map>,
    exchange: Vec<Exchange>,
    no_reply: Vec<Invalid>,
}

#[derive(serde::Deserialize)]
struct Valid {
    hex: String,
    meaning: String,
}

#[derive(serde::Deserialize)]
struct Invalid {
    hex: String,
    why: String,
}

#[derive(serde::Deserialize)]
struct Map {
    edt: String,
    epcs: Option<Vec<String>>,
    epc_count: Option<usize>,
    epcs_summary: Option<String>,
}

#[derive(serde::Deserialize)]
struct Exchange {
    request: String,
    response: String,
    meaning: String,
}

fn vectors() -> Option<Vectors> {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../shared/conformance/echonet/frames.toml");
    match std::fs::read_to_string(&path) {
        Ok(text) => Some(toml::from_str(&text).unwrap()),
        Err(_) if std::env::var("MUSUBI_REQUIRE_CONFORMANCE").as_deref() == Ok("1") => {
            panic!("conformance data missing at {}; MUSUBI_REQUIRE_CONFORMANCE=1", path.display())
        }
        Err(_) => {
            println!("skipped: ECHONET Lite vectors not found at {}", path.display());
            None
        }
    }
}

fn hex(s: &str) -> Vec<u8> {
    (0..s.len()).step_by(2).map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap()).collect()
}

fn message(bytes: &[u8]) -> Message {
    match frame::decode(bytes).unwrap() {
        Frame::Format1(m) => m,
        other => panic!("not format 1: {other:?}"),
    }
}

/// A short rendering of a format-1 message: ESV, SEOJ>DEOJ, TID, properties.
fn render(m: &Message) -> String {
    let props = |ps: &[frame::Property]| {
        ps.iter()
            .map(|p| format!("{:02X}={}", p.epc, p.edt.iter().map(|b| format!("{b:02X}")).collect::<String>()))
            .collect::<Vec<_>>()
            .join(",")
    };
    let mut s = format!("{:02X} {}>{} tid={:04X} [{}]", m.esv as u8, m.seoj, m.deoj, m.tid, props(&m.props));
    if m.esv.is_set_get() {
        s.push_str(&format!(" get[{}]", props(&m.get_props)));
    }
    s
}

#[test]
fn every_echonet_vector_holds() {
    let Some(v) = vectors() else { return };

    // Valid frames decode to what their meaning says, and encode back byte for byte.
    let expected = [
        "72 0EF001>0EF001 tid=0001 [D6=020F2001029101]",
        "62 05FF01>0EF001 tid=0000 [80=31,B0=42,BB=1C,B3=18]",
        "72 028801>05FF01 tid=0001 [E8=00140064]",
        "62 05FF01>028801 tid=1234 [E7=]",
        "62 05FF01>0EF000 tid=0001 [D6=]",
        "format 2 tid=0003",
        "6E 05FF01>029001 tid=0001 [80=30,B0=4B] get[80=,B0=]",
        "7E 029001>05FF01 tid=0001 [80=,B0=] get[80=30,B0=4B]",
        "6E 05FF01>029001 tid=0001 [80=30] get[80=]",
    ];
    assert_eq!(v.valid.len(), expected.len(), "the vector set changed");
    for (row, want) in v.valid.iter().zip(expected) {
        let bytes = hex(&row.hex);
        let decoded = frame::decode(&bytes).unwrap_or_else(|e| panic!("{}: {e}", row.meaning));
        let got = match &decoded {
            Frame::Format1(m) => render(m),
            Frame::Format2 { tid, .. } => format!("format 2 tid={tid:04X}"),
        };
        assert_eq!(got, want, "{}", row.meaning);
        assert_eq!(frame::encode(&decoded), bytes, "{}", row.meaning);
        // Every truncation is refused, and so is one trailing byte (format 1).
        if let Frame::Format1(_) = decoded {
            for cut in 0..bytes.len() {
                assert!(frame::decode(&bytes[..cut]).is_err(), "{}: prefix of {cut} bytes", row.meaning);
            }
            let mut longer = bytes.clone();
            longer.push(0xFF);
            assert!(frame::decode(&longer).is_err(), "{}: a trailing byte", row.meaning);
        }
    }
    // The 0xD6 instance list of the first frame.
    let m = message(&hex(&v.valid[0].hex));
    assert_eq!(
        frame::decode_instance_list(&m.props[0].edt).unwrap(),
        [Eoj([0x0F, 0x20, 0x01]), Eoj([0x02, 0x91, 0x01])]
    );

    for row in &v.invalid {
        let e = frame::decode(&hex(&row.hex));
        assert!(e.is_err(), "{}: decoded as {e:?}", row.why);
    }

    for row in &v.property_map {
        let got = frame::decode_property_map(&hex(&row.edt)).unwrap();
        let want: Vec<u8> = match (&row.epcs, &row.epcs_summary) {
            (Some(list), _) => list.iter().map(|e| u8::from_str_radix(e, 16).unwrap()).collect(),
            (None, Some(summary)) => summary
                .split(", ")
                .flat_map(|r| {
                    let (a, b) = r.split_once('-').unwrap_or((r, r));
                    u8::from_str_radix(a, 16).unwrap()..=u8::from_str_radix(b, 16).unwrap()
                })
                .collect(),
            (None, None) => panic!("a property_map row without epcs"),
        };
        assert_eq!(got, want, "{}", row.edt);
        if let Some(n) = row.epc_count {
            assert_eq!(got.len(), n, "{}", row.edt);
        }
        assert_eq!(frame::encode_property_map(&got), hex(&row.edt), "{} encodes back", row.edt);
    }

    // Exchanges: a simulated general lighting object 029001 (0x80 ON, 0xB0
    // 0x3C; OFF in the two rows that say so by their answers) and the node
    // profile give exactly the recorded response, byte for byte.
    assert_eq!(v.exchange.len(), 7, "the vector set changed");
    for (i, row) in v.exchange.iter().enumerate() {
        let req = message(&hex(&row.request));
        let mut device = if req.deoj == Eoj::NODE_PROFILE {
            SimObject::new(Eoj::NODE_PROFILE)
        } else {
            SimObject::general_lighting(1, !matches!(i, 1 | 2), 0x3C)
        };
        let resp = device.respond(&req).unwrap_or_else(|| panic!("{}: no answer", row.meaning));
        assert_eq!(frame::encode(&Frame::Format1(resp)), hex(&row.response), "{}", row.meaning);
    }
    // A set is kept: the light level written by a SetC is what a Get reads back.
    let mut light = SimObject::general_lighting(1, true, 0x3C);
    let set = |esv, props| Message {
        tid: 9,
        seoj: Eoj([0x05, 0xFF, 0x01]),
        deoj: light.eoj,
        esv,
        props,
        get_props: Vec::new(),
    };
    let write = set(Esv::SetC, vec![frame::Property { epc: 0xB0, edt: vec![0x50] }]);
    assert_eq!(light.respond(&write).unwrap().esv, Esv::SetRes);
    assert_eq!(light.value(0xB0), Some(&[0x50][..]));

    // Frames a device must not answer: they decode, none is a request, and
    // the simulated objects stay silent.
    for row in &v.no_reply {
        let m = message(&hex(&row.hex));
        assert!(!m.esv.is_request(), "{}", row.why);
        assert!(matches!(m.esv, Esv::Inf | Esv::GetRes | Esv::SetGetSna), "{}", row.why);
        assert!(SimObject::general_lighting(1, true, 0x3C).respond(&m).is_none(), "{}", row.why);
        assert!(SimObject::new(Eoj::NODE_PROFILE).respond(&m).is_none(), "{}", row.why);
    }
}
