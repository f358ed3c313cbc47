//! ECHONET Lite frames as the adapter and the simulator receive them:
//! `frame::decode` (exact round trip through `encode`), the stream framer
//! (`frame_len`), property maps and instance lists, the property decoders
//! of `defs`, and a simulated node answering the frame, whose every answer
//! must encode to a frame that decodes back to it.
#![no_main]

use libfuzzer_sys::fuzz_target;
use musubi_adapter::frame::{self, Frame};
use musubi_adapter::{defs, sim::SimNode};

fuzz_target!(|data: &[u8]| {
    let _ = frame::frame_len(data);
    if let Ok(epcs) = frame::decode_property_map(data) {
        assert!(epcs.windows(2).all(|w| w[0] < w[1]), "a property map's EPCs are not ascending and unique");
        assert!(epcs.iter().all(|e| *e >= 0x80), "a property map holds an EPC below 0x80: {epcs:02X?}");
        assert_eq!(frame::decode_property_map(&frame::encode_property_map(&epcs)).ok(), Some(epcs));
    }
    if let Ok(list) = frame::decode_instance_list(data) {
        assert_eq!(list.len(), usize::from(data[0]));
    }
    let Ok(decoded) = frame::decode(data) else { return };
    assert_eq!(frame::encode(&decoded), data, "a decoded frame encodes to other bytes");
    let Frame::Format1(m) = decoded else { return };
    let class = m.seoj.class();
    for p in m.props.iter().chain(&m.get_props) {
        let context = |epc: u8| m.props.iter().find(|q| q.epc == epc).map(|q| q.edt.clone());
        let _ = defs::decode(class, p.epc, &p.edt, &context).to_string();
    }
    let mut node = SimNode::new(&[0x0130, 0x0288, 0x0290, 0x0011], [1, 2, 3, 4]);
    for _ in 0..2 {
        for answer in node.handle(&m) {
            let bytes = frame::encode(&Frame::Format1(answer.clone()));
            assert_eq!(frame::decode(&bytes), Ok(Frame::Format1(answer)), "a simulator answer does not decode");
        }
        node.tick(3600);
        for inf in node.announcements() {
            let bytes = frame::encode(&Frame::Format1(inf.clone()));
            assert_eq!(frame::decode(&bytes), Ok(Frame::Format1(inf)), "a simulator announcement does not decode");
        }
    }
});
