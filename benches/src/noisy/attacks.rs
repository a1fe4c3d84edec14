//! The attacks of the noisy-neighbour bench: each runs until told to stop,
//! counting the bytes it sent. Every loop checks the stop flag and every
//! read is bounded in time.

use std::net::{SocketAddr, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use super::wire::{self, Wire};

/// One attack.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub(crate) enum Attack {
    /// Nothing beside the probe: the baseline.
    None,
    /// A subscriber that stops reading while a publisher floods its topic.
    StalledSubscriber,
    /// Connections that send five bytes announcing a 1 MiB packet, and no more.
    SlowLoris,
    /// SUBSCRIBE to a filter matching many retained messages, again and again.
    BigSubscribe,
    /// Many subscriptions at once, then all of them unsubscribed, in a loop.
    MassUnsubscribe,
    /// Retained 5.0 messages bloated with user properties.
    BloatedRetained,
    /// A persistent session with a full queue (1,000 QoS 1 messages of
    /// 16 KiB) taken over by a second connection of its client, again and
    /// again, each connection reading a little and going away.
    QueueTakeover,
}

/// What an attack shares with the bench: when to stop, and the bytes sent.
pub(crate) struct Control<'a> {
    pub(crate) addr: SocketAddr,
    pub(crate) stop: &'a AtomicBool,
    pub(crate) sent: &'a AtomicU64,
    /// Multiplies the attack's size (connections, messages, filters).
    pub(crate) scale: usize,
}

impl Control<'_> {
    fn stopped(&self) -> bool {
        self.stop.load(Ordering::Relaxed)
    }

    fn send(&self, w: &mut Wire, bytes: &[u8]) -> std::io::Result<()> {
        w.send(bytes)?;
        self.sent.fetch_add(bytes.len() as u64, Ordering::Relaxed);
        Ok(())
    }

    fn open(&self, connect: &[u8]) -> std::io::Result<Wire> {
        let w = Wire::open(self.addr, connect)?;
        self.sent.fetch_add(connect.len() as u64, Ordering::Relaxed);
        Ok(w)
    }
}

/// Runs `attack` until the stop flag is set.
pub(crate) fn run(attack: Attack, ctl: &Control<'_>) -> std::io::Result<()> {
    match attack {
        Attack::None => Ok(()),
        Attack::StalledSubscriber => stalled_subscriber(ctl),
        Attack::SlowLoris => slow_loris(ctl),
        Attack::BigSubscribe => big_subscribe(ctl),
        Attack::MassUnsubscribe => mass_unsubscribe(ctl),
        Attack::BloatedRetained => bloated_retained(ctl),
        Attack::QueueTakeover => queue_takeover(ctl),
    }
}

fn stalled_subscriber(ctl: &Control<'_>) -> std::io::Result<()> {
    let mut stalled = ctl.open(&wire::connect(4, 0, "noisy-stalled"))?;
    ctl.send(
        &mut stalled,
        &wire::subscription(true, 1, &["noise/#".into()]),
    )?;
    // It reads its SUBACK and then nothing more.
    stalled.expect(0x90, Duration::from_secs(5))?;
    let mut flood = ctl.open(&wire::connect(4, 0, "noisy-flood"))?;
    let message = wire::publish(0x30, "noise/1", None, None, &vec![b'n'; 16 * 1024]);
    while !ctl.stopped() {
        // The broker drops the stalled subscriber once its writes stop
        // progressing; the flood goes on regardless.
        if ctl.send(&mut flood, &message).is_err() {
            break;
        }
    }
    drop(stalled);
    Ok(())
}

fn slow_loris(ctl: &Control<'_>) -> std::io::Result<()> {
    let mut held: Vec<Wire> = Vec::new();
    let mut header = vec![0x30];
    header.extend(wire::vbi(1_000_000));
    header.push(0);
    for k in 0..200 * ctl.scale {
        if ctl.stopped() {
            break;
        }
        let mut w = ctl.open(&wire::connect(4, 0, &format!("noisy-loris-{k}")))?;
        ctl.send(&mut w, &header)?;
        held.push(w);
    }
    while !ctl.stopped() {
        std::thread::sleep(Duration::from_millis(50));
    }
    Ok(())
}

fn big_subscribe(ctl: &Control<'_>) -> std::io::Result<()> {
    let count = 10_000 * ctl.scale;
    let mut setter = ctl.open(&wire::connect(4, 0, "noisy-retainer"))?;
    for i in 0..count {
        let retained = wire::publish(0x31, &format!("ret/{i}"), None, None, b"retained");
        ctl.send(&mut setter, &retained)?;
    }
    let mut round = 0u32;
    while !ctl.stopped() {
        round += 1;
        let mut w = ctl.open(&wire::connect(4, 0, &format!("noisy-big-sub-{round}")))?;
        ctl.send(&mut w, &wire::subscription(true, 1, &["ret/#".into()]))?;
        let mut got = 0;
        // What the broker replays is read and thrown away, bounded.
        while got < count && !ctl.stopped() {
            match w.next(Duration::from_secs(2))? {
                Some(_) => got += 1,
                None => break,
            }
        }
    }
    Ok(())
}

fn mass_unsubscribe(ctl: &Control<'_>) -> std::io::Result<()> {
    let filters: Vec<String> = (0..10_000 * ctl.scale)
        .map(|i| format!("mu/{i}/+"))
        .collect();
    let mut w = ctl.open(&wire::connect(4, 0, "noisy-mass-unsub"))?;
    while !ctl.stopped() {
        for (kind, first) in [(true, 0x90), (false, 0xB0)] {
            for (n, chunk) in filters.chunks(1000).enumerate() {
                let id = u16::try_from(n + 1).unwrap_or(u16::MAX);
                ctl.send(&mut w, &wire::subscription(kind, id, chunk))?;
            }
            for _ in filters.chunks(1000) {
                if !w.expect(first, Duration::from_secs(5))? || ctl.stopped() {
                    break;
                }
            }
        }
    }
    Ok(())
}

fn queue_takeover(ctl: &Control<'_>) -> std::io::Result<()> {
    const ID: &str = "noisy-queue";
    let queued = 1000 * ctl.scale;
    // The session: persistent, subscribed at QoS 1, then away.
    let mut owner = ctl.open(&wire::connect_persistent(4, 0, ID))?;
    let mut sub = 1u16.to_be_bytes().to_vec();
    sub.extend(wire::string(b"queue/#"));
    sub.push(1);
    ctl.send(&mut owner, &wire::packet(0x82, &sub))?;
    owner.expect(0x90, Duration::from_secs(5))?;
    drop(owner);
    // Its queue filled while it is away.
    let mut publisher = ctl.open(&wire::connect(4, 0, "noisy-queue-filler"))?;
    let payload = vec![7u8; 16 * 1024];
    for i in 0..queued {
        let id = u16::try_from(i % 60_000 + 1).unwrap_or(1);
        let p = wire::publish(0x32, "queue/x", Some(id), None, &payload);
        ctl.send(&mut publisher, &p)?;
        if ctl.stopped() {
            return Ok(());
        }
    }
    // Taken over, again and again: a new connection of the client while
    // the last one is still there; each reads a few messages and leaves
    // the rest for the next.
    let mut last = ctl.open(&wire::connect_persistent(4, 0, ID))?;
    while !ctl.stopped() {
        let mut next = ctl.open(&wire::connect_persistent(4, 0, ID))?;
        for _ in 0..10 {
            if next.next(Duration::from_millis(200))?.is_none() {
                break;
            }
        }
        drop(std::mem::replace(&mut last, next));
    }
    Ok(())
}

fn bloated_retained(ctl: &Control<'_>) -> std::io::Result<()> {
    // 500 user properties of 100 bytes: about 50 KiB of properties each.
    let mut props = Vec::new();
    for k in 0..500u32 {
        props.push(0x26);
        props.extend(wire::string(format!("key-{k:04}").as_bytes()));
        props.extend(wire::string(&[b'v'; 90]));
    }
    let mut w = ctl.open(&wire::connect(5, 0, "noisy-bloat"))?;
    let mut i = 0usize;
    while !ctl.stopped() {
        let topic = format!("bloat/{}", i % (1000 * ctl.scale));
        ctl.send(
            &mut w,
            &wire::publish(0x31, &topic, None, Some(&props), b"x"),
        )?;
        i += 1;
    }
    Ok(())
}

/// Whether something listens at `addr` (to wait for a broker to start).
pub(crate) fn listening(addr: SocketAddr) -> bool {
    TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_ok()
}
