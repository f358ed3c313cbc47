//! The controller against fake devices that misbehave in the ways the
//! guideline describes: silence, partial answers, no SetGet, floods.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::{Duration, Instant};

use musubi_adapter::controller::{Controller, RequestError};
use musubi_adapter::frame::{self, Eoj, Esv, Frame, Message, Property};
use musubi_adapter::net::{self, NetConfig};
use musubi_adapter::pacing::PacingConfig;
use tokio::sync::mpsc;

use crate::ip;

const AC: Eoj = Eoj([0x01, 0x30, 0x01]);

/// A fake device at `addr`: every request it receives is reported with its
/// arrival time, and `answer` decides the reply.
async fn fake(
    addr: SocketAddr,
    answer: fn(&Message) -> Option<Message>,
) -> mpsc::UnboundedReceiver<(Instant, Message)> {
    let sock = tokio::net::UdpSocket::bind(addr).await.unwrap();
    let (tx, rx) = mpsc::unbounded_channel();
    tokio::spawn(async move {
        let mut buf = vec![0u8; 2048];
        loop {
            let Ok((n, from)) = sock.recv_from(&mut buf).await else { return };
            let Ok(Frame::Format1(m)) = frame::decode(&buf[..n]) else { continue };
            if tx.send((Instant::now(), m.clone())).is_err() {
                return;
            }
            if let Some(reply) = answer(&m) {
                let _ = sock.send_to(&frame::encode(&Frame::Format1(reply)), from).await;
            }
        }
    });
    rx
}

fn reply(req: &Message, esv: Esv, props: Vec<Property>, get_props: Vec<Property>) -> Message {
    Message { tid: req.tid, seoj: req.deoj, deoj: req.seoj, esv, props, get_props }
}

/// A controller on `bind`, receiving in the background.
fn controller(bind: std::net::Ipv4Addr, pacing: PacingConfig) -> Arc<Controller> {
    let conf = NetConfig { bind, multicast: false, ..NetConfig::default() };
    let (sockets, mut inbound) = net::bind(&conf, 64).unwrap();
    let ctl = Controller::new(sockets, pacing, net::PORT, false);
    let c = ctl.clone();
    tokio::spawn(async move {
        while let Some(i) = inbound.recv().await {
            c.dispatch(i);
        }
    });
    ctl
}

fn drain(rx: &mut mpsc::UnboundedReceiver<(Instant, Message)>) -> Vec<(Instant, Message)> {
    let mut out = Vec::new();
    while let Ok(m) = rx.try_recv() {
        out.push(m);
    }
    out
}

#[tokio::test]
async fn a_silent_device_gets_its_retries_paced_then_a_timeout() {
    let dev = ip(20, 2);
    let me = ip(21, 2);
    let mut seen = fake(SocketAddr::new(dev.into(), 3610), |_| None).await;
    let pacing = PacingConfig {
        min_gap: Duration::from_millis(50),
        response_timeout: Duration::from_millis(100),
        max_retries: 2,
        retry_backoff: Duration::from_millis(100),
        ..PacingConfig::default()
    };
    let ctl = controller(me, pacing);
    let err = ctl.get(dev.into(), AC, &[0x80]).await.unwrap_err();
    assert_eq!(err, RequestError::Timeout { to: IpAddr::V4(dev), tries: 3 });
    let frames = drain(&mut seen);
    assert_eq!(frames.len(), 3, "one request and two resends");
    assert!(frames.iter().all(|(_, m)| m.tid == frames[0].1.tid), "a resend keeps its TID");
    // Doubling back-off: the second gap is longer than the first.
    let gap1 = frames[1].0 - frames[0].0;
    let gap2 = frames[2].0 - frames[1].0;
    assert!(gap1 >= Duration::from_millis(200), "timeout + back-off before the first resend: {gap1:?}");
    assert!(gap2 >= Duration::from_millis(300), "twice the back-off before the second: {gap2:?}");
}

#[tokio::test]
async fn requests_are_split_after_a_partial_answer_and_the_limit_is_remembered() {
    let dev = ip(20, 3);
    let me = ip(21, 3);
    // Answers at most two properties per frame, whatever it is asked.
    let mut seen = fake(SocketAddr::new(dev.into(), 3610), |m| {
        let props = m.props.iter().take(2).map(|p| Property { epc: p.epc, edt: vec![p.epc] }).collect();
        Some(reply(m, Esv::GetRes, props, vec![]))
    })
    .await;
    let ctl = controller(me, PacingConfig { min_gap: Duration::from_millis(10), ..PacingConfig::default() });
    let got = ctl.get(dev.into(), AC, &[0x80, 0xB0, 0xB3, 0xBA, 0xBB]).await.unwrap();
    let epcs: Vec<u8> = got.iter().map(|p| p.epc).collect();
    assert_eq!(epcs, vec![0x80, 0xB0, 0xB3, 0xBA, 0xBB]);
    assert!(got.iter().all(|p| p.edt == vec![p.epc]));
    let sizes: Vec<usize> = drain(&mut seen).iter().map(|(_, m)| m.props.len()).collect();
    assert_eq!(sizes, vec![5, 2, 1], "all five, then the three missing in twos");
    ctl.get(dev.into(), AC, &[0x80, 0xB0, 0xB3]).await.unwrap();
    let sizes: Vec<usize> = drain(&mut seen).iter().map(|(_, m)| m.props.len()).collect();
    assert_eq!(sizes, vec![2, 1], "the device's limit is remembered");
}

#[tokio::test]
async fn a_device_without_setget_is_set_with_setc_then_get() {
    let dev = ip(20, 4);
    let me = ip(21, 4);
    let mut seen = fake(SocketAddr::new(dev.into(), 3610), |m| match m.esv {
        // §2.6: a node that cannot do SetGet answers 0x5E with both sections empty.
        Esv::SetGet => Some(reply(m, Esv::SetGetSna, vec![], vec![])),
        Esv::SetC => {
            Some(reply(m, Esv::SetRes, m.props.iter().map(|p| Property { epc: p.epc, edt: vec![] }).collect(), vec![]))
        }
        Esv::Get => Some(reply(
            m,
            Esv::GetRes,
            m.props.iter().map(|p| Property { epc: p.epc, edt: vec![25] }).collect(),
            vec![],
        )),
        _ => None,
    })
    .await;
    let ctl = controller(me, PacingConfig { min_gap: Duration::from_millis(10), ..PacingConfig::default() });
    let set = vec![Property { epc: 0xB3, edt: vec![25] }];
    let out = ctl.set(dev.into(), AC, set.clone()).await.unwrap();
    assert!(out.refused.is_empty());
    assert_eq!(out.read_back, vec![Property { epc: 0xB3, edt: vec![25] }]);
    let esvs: Vec<Esv> = drain(&mut seen).into_iter().map(|(_, m)| m.esv).collect();
    assert_eq!(esvs, vec![Esv::SetGet, Esv::SetC, Esv::Get]);
    ctl.set(dev.into(), AC, set).await.unwrap();
    let esvs: Vec<Esv> = drain(&mut seen).into_iter().map(|(_, m)| m.esv).collect();
    assert_eq!(esvs, vec![Esv::SetC, Esv::Get], "remembered: no SetGet again");
}

#[tokio::test]
async fn get_sna_is_retried_once_not_forever() {
    let dev = ip(20, 5);
    let me = ip(21, 5);
    let mut seen = fake(SocketAddr::new(dev.into(), 3610), |m| {
        Some(reply(m, Esv::GetSna, m.props.iter().map(|p| Property { epc: p.epc, edt: vec![] }).collect(), vec![]))
    })
    .await;
    let ctl = controller(me, PacingConfig { min_gap: Duration::from_millis(10), ..PacingConfig::default() });
    let got = ctl.get(dev.into(), AC, &[0xEE]).await.unwrap();
    assert_eq!(got, vec![Property { epc: 0xEE, edt: vec![] }], "refused: empty data, not an error");
    assert_eq!(drain(&mut seen).len(), 2, "one retry after Get_SNA (§6.8)");
}

#[tokio::test]
async fn answers_from_the_wrong_source_or_with_unknown_tids_are_ignored() {
    let dev = ip(20, 6);
    let me = ip(21, 6);
    let spoofer = tokio::net::UdpSocket::bind((ip(20, 7), 3610)).await.unwrap();
    let mut seen = fake(SocketAddr::new(dev.into(), 3610), |_| None).await;
    let ctl = controller(
        me,
        PacingConfig { response_timeout: Duration::from_millis(600), max_retries: 0, ..PacingConfig::default() },
    );
    let c = ctl.clone();
    let ask = tokio::spawn(async move { c.get(dev.into(), AC, &[0x80]).await });
    let (_, req) = tokio::time::timeout(Duration::from_secs(5), seen.recv()).await.unwrap().unwrap();
    // The right TID from the wrong address, and a stranger's TID: neither answers the request.
    for (tid, from_dev) in [(req.tid, false), (req.tid.wrapping_add(7), true)] {
        let m = Message {
            tid,
            seoj: AC,
            deoj: req.seoj,
            esv: Esv::GetRes,
            props: vec![Property { epc: 0x80, edt: vec![0x30] }],
            get_props: vec![],
        };
        let bytes = frame::encode(&Frame::Format1(m));
        if from_dev {
            let s = tokio::net::UdpSocket::bind((ip(20, 6), 0)).await.unwrap();
            s.send_to(&bytes, (me, 3610)).await.unwrap();
        } else {
            spoofer.send_to(&bytes, (me, 3610)).await.unwrap();
        }
    }
    let r = ask.await.unwrap();
    assert!(matches!(r, Err(RequestError::Timeout { .. })), "{r:?}");
}

#[tokio::test]
async fn a_flood_and_garbage_from_one_address_do_not_stop_answers_from_another() {
    let dev = ip(20, 9);
    let me = ip(21, 9);
    let _seen = fake(SocketAddr::new(dev.into(), 3610), |m| {
        Some(reply(m, Esv::GetRes, vec![Property { epc: 0x80, edt: vec![0x30] }], vec![]))
    })
    .await;
    let conf = NetConfig { bind: me, multicast: false, max_frames_per_second: 50, ..NetConfig::default() };
    let (sockets, mut inbound) = net::bind(&conf, 16).unwrap();
    let ctl = Controller::new(sockets, PacingConfig::default(), net::PORT, false);
    let c = ctl.clone();
    tokio::spawn(async move {
        while let Some(i) = inbound.recv().await {
            c.dispatch(i);
        }
    });
    // 2000 frames: garbage, a 0xD5 claiming 255 instances, truncated frames.
    let flooder = tokio::net::UdpSocket::bind((ip(20, 11), 0)).await.unwrap();
    let bogus_list = frame::encode(&Frame::Format1(Message {
        tid: 1,
        seoj: Eoj::NODE_PROFILE,
        deoj: Eoj::NODE_PROFILE,
        esv: Esv::Inf,
        props: vec![Property { epc: 0xD5, edt: vec![255, 1, 2, 3] }],
        get_props: vec![],
    }));
    for i in 0..2000u32 {
        let frame: &[u8] = match i % 3 {
            0 => &[0xde, 0xad, 0xbe, 0xef],
            1 => &bogus_list,
            _ => &bogus_list[..bogus_list.len() - 2],
        };
        flooder.send_to(frame, (me, 3610)).await.unwrap();
    }
    let got = ctl.get(dev.into(), AC, &[0x80]).await.unwrap();
    assert_eq!(got, vec![Property { epc: 0x80, edt: vec![0x30] }]);
    let drops = &ctl.sockets().drops;
    use std::sync::atomic::Ordering::Relaxed;
    assert!(drops.flooded.load(Relaxed) > 0, "the flood was cut");
    assert!(drops.flooded.load(Relaxed) + drops.malformed.load(Relaxed) + drops.queue_full.load(Relaxed) > 1000);
}
