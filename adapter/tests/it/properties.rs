//! Property tests of the ECHONET Lite codecs: frames and property maps
//! encode and decode back, every value the adapter shows is a value it
//! accepts back for the same property, and no decoder panics on arbitrary
//! bytes. (The `echonet` fuzz target searches the same ground by coverage.)

use musubi_adapter::defs::{self, Kind, Reading};
use musubi_adapter::frame::{self, Eoj, Esv, Frame, Message, Property};
use proptest::prelude::*;

fn esv() -> impl Strategy<Value = Esv> {
    prop::sample::select(
        [0x60u8, 0x61, 0x62, 0x63, 0x6E, 0x71, 0x72, 0x73, 0x74, 0x7A, 0x7E, 0x50, 0x51, 0x52, 0x53, 0x5E]
            .iter()
            .filter_map(|c| Esv::from_code(*c))
            .collect::<Vec<_>>(),
    )
}

fn property() -> impl Strategy<Value = Property> {
    (any::<u8>(), proptest::collection::vec(any::<u8>(), 0..40)).prop_map(|(epc, edt)| Property { epc, edt })
}

fn message() -> impl Strategy<Value = Message> {
    (
        any::<u16>(),
        any::<[u8; 3]>(),
        any::<[u8; 3]>(),
        esv(),
        proptest::collection::vec(property(), 1..6),
        proptest::collection::vec(property(), 1..6),
    )
        .prop_map(|(tid, s, d, esv, props, get)| Message {
            tid,
            seoj: Eoj(s),
            deoj: Eoj(d),
            esv,
            props,
            get_props: if esv.is_set_get() { get } else { Vec::new() },
        })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    #[test]
    fn frames_decode_to_what_was_encoded(m in message()) {
        let frame = Frame::Format1(m);
        let bytes = frame::encode(&frame);
        prop_assert_eq!(frame::frame_len(&bytes), Ok(Some(bytes.len())));
        prop_assert_eq!(frame::decode(&bytes), Ok(frame));
    }

    #[test]
    fn property_maps_decode_to_the_codes_encoded(epcs in proptest::collection::btree_set(0x80u8..=0xFF, 0..128)) {
        let epcs: Vec<u8> = epcs.into_iter().collect();
        prop_assert_eq!(frame::decode_property_map(&frame::encode_property_map(&epcs)), Ok(epcs));
    }

    #[test]
    fn every_value_shown_is_accepted_back(class_index in any::<prop::sample::Index>(), prop_index in any::<prop::sample::Index>(), edt in proptest::collection::vec(any::<u8>(), 1..5)) {
        let class = &defs::CLASSES[class_index.index(defs::CLASSES.len())];
        let all: Vec<&defs::PropDef> = class.props.iter().chain(defs::SUPER_CLASS).collect();
        let def = all[prop_index.index(all.len())];
        let edt = match def.kind {
            Kind::Number(n) => edt.into_iter().cycle().take(usize::from(n.size)).collect(),
            Kind::States(_) => edt[..1].to_vec(),
            _ => edt,
        };
        let reading = defs::decode(class.code, def.epc, &edt, &|_| None);
        let shown = reading.to_string();
        match (&reading, def.kind) {
            (Reading::Number { .. } | Reading::State(_), _) | (Reading::Raw(_), Kind::Raw) => {
                prop_assert_eq!(defs::encode(class.code, def.epc, &shown), Ok(edt), "{} of {} shown as {}", def.name, class.name, shown);
            }
            _ => {}
        }
    }

    #[test]
    fn decimals_parse_back(raw in any::<i32>(), exp in -3i8..=3) {
        let raw = i64::from(raw);
        prop_assert_eq!(defs::parse_decimal(&defs::decimal(raw, exp), exp), Some(raw));
    }

    #[test]
    fn no_decoder_panics_on_arbitrary_bytes(bytes in proptest::collection::vec(any::<u8>(), 0..600), class in any::<u16>(), epc in any::<u8>()) {
        let _ = frame::decode(&bytes);
        let _ = frame::frame_len(&bytes);
        let _ = frame::decode_property_map(&bytes);
        let _ = frame::decode_instance_list(&bytes);
        let _ = defs::decode(class, epc, &bytes, &|_| Some(bytes.clone())).to_string();
        let _ = musubi_adapter::service::params(&bytes);
    }
}
