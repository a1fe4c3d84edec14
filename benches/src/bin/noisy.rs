//! `noisy`: one client cannot hurt the others (issue 17), measured. A
//! well-behaved client measures PINGREQ and QoS 1 round trips while one
//! attack at a time runs beside it, and the broker's memory growth is set
//! against the bytes the attacker sent. Prints one table.
//!
//! ```text
//! noisy --broker-bin target/release/mqtt-broker --seconds 10
//! noisy --broker 127.0.0.1:1883 --broker-pid 4242 --attack slow-loris
//! ```
//!
//! With `--broker-bin` the bench starts the broker itself (defaults, a free
//! loopback port) and reads its resident memory from `/proc`; with
//! `--broker` it uses a running one (`--broker-pid` for its memory). Only
//! loopback addresses are accepted; every loop is bounded in time.

#[path = "../noisy/attacks.rs"]
mod attacks;
#[allow(dead_code)]
#[path = "../loadgen/stats.rs"]
mod stats;
#[path = "../noisy/wire.rs"]
mod wire;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::{Child, Command, ExitCode, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use clap::Parser;

use attacks::{Attack, Control};
use stats::{new_histogram, rss_kib, Percentiles};
use wire::Wire;

/// Noisy-neighbour bench: probe round trips beside each attack.
#[derive(Debug, Parser)]
#[command(version, about, long_about = None)]
struct Args {
    /// A running broker (loopback).
    #[arg(long, conflicts_with = "broker_bin")]
    broker: Option<SocketAddr>,
    /// Its process id, for its memory.
    #[arg(long)]
    broker_pid: Option<u32>,
    /// A broker binary to start (with its default limits).
    #[arg(long)]
    broker_bin: Option<PathBuf>,
    /// The attacks, in order (default: all, after the baseline).
    #[arg(long, value_enum, value_delimiter = ',')]
    attack: Vec<Attack>,
    /// Seconds each attack runs while the probe measures.
    #[arg(long, default_value_t = 10.0)]
    seconds: f64,
    /// Multiplies each attack's size.
    #[arg(long, default_value_t = 1)]
    scale: usize,
}

/// A broker process the bench started, killed when dropped.
struct Started(Child);

impl Drop for Started {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn start_broker(bin: &PathBuf) -> Result<(Started, SocketAddr), String> {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map_err(|e| e.to_string())?
        .port();
    let addr = SocketAddr::from(([127, 0, 0, 1], port));
    let child = Command::new(bin)
        .args(["-p", &port.to_string(), "--no-persistence"])
        .env("RUST_LOG", "warn")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .map_err(|e| format!("{}: {e}", bin.display()))?;
    let started = Started(child);
    let deadline = Instant::now() + Duration::from_secs(10);
    while !attacks::listening(addr) {
        if Instant::now() > deadline {
            return Err("the broker did not start listening".into());
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    Ok((started, addr))
}

/// The probe's round trips during one attack.
struct Probe {
    ping: hdrhistogram::Histogram<u64>,
    qos1: hdrhistogram::Histogram<u64>,
    /// Round trips that got no answer within a second.
    missed: u64,
}

/// PINGREQ and QoS 1 PUBLISH round trips for `run`, about one a millisecond.
fn probe(addr: SocketAddr, run: Duration, round: u32) -> std::io::Result<Probe> {
    let mut w = Wire::open(addr, &wire::connect(4, 60, &format!("noisy-probe-{round}")))?;
    let mut p = Probe {
        ping: new_histogram(),
        qos1: new_histogram(),
        missed: 0,
    };
    let end = Instant::now() + run;
    let mut id = 0u16;
    while Instant::now() < end {
        let t = Instant::now();
        w.send(&[0xC0, 0x00])?;
        record(
            &mut p.ping,
            &mut p.missed,
            t,
            w.expect(0xD0, Duration::from_secs(1))?,
        );
        id = id % 60_000 + 1;
        let t = Instant::now();
        w.send(&wire::publish(0x32, "probe/rtt", Some(id), None, b"probe"))?;
        record(
            &mut p.qos1,
            &mut p.missed,
            t,
            w.expect(0x40, Duration::from_secs(1))?,
        );
        std::thread::sleep(Duration::from_millis(1));
    }
    Ok(p)
}

fn record(h: &mut hdrhistogram::Histogram<u64>, missed: &mut u64, t: Instant, ok: bool) {
    if ok {
        h.saturating_record(t.elapsed().as_nanos() as u64);
    } else {
        *missed += 1;
    }
}

/// One row of the table.
fn row(attack: Attack, p: &Probe, sent: u64, rss: (Option<u64>, Option<u64>)) -> String {
    let ms = |x: Option<Percentiles>| match x {
        Some(x) => format!(
            "{:>8.2} {:>8.2} {:>8.2}",
            x.p50_us / 1000.0,
            x.p99_us / 1000.0,
            x.max_us / 1000.0
        ),
        None => format!("{:>8} {:>8} {:>8}", "-", "-", "-"),
    };
    let sent_mib = sent as f64 / (1024.0 * 1024.0);
    let growth = match rss {
        (Some(a), Some(b)) => format!("{:>9.1}", (b as f64 - a as f64) / 1024.0),
        _ => format!("{:>9}", "-"),
    };
    format!(
        "{:<19} {} {} {:>6} {:>10.1} {growth}",
        format!("{attack:?}"),
        ms(Percentiles::of(&p.ping)),
        ms(Percentiles::of(&p.qos1)),
        p.missed,
        sent_mib,
    )
}

fn run_one(addr: SocketAddr, pid: Option<&str>, attack: Attack, args: &Args, round: u32) -> String {
    let stop = AtomicBool::new(false);
    let sent = AtomicU64::new(0);
    let before = pid.and_then(rss_kib);
    let run = Duration::from_secs_f64(args.seconds.clamp(0.5, 600.0));
    let (probed, after) = std::thread::scope(|s| {
        let attacker = s.spawn(|| {
            let ctl = Control {
                addr,
                stop: &stop,
                sent: &sent,
                scale: args.scale.max(1),
            };
            if let Err(e) = attacks::run(attack, &ctl) {
                eprintln!("{attack:?}: the attack ended early: {e}");
            }
        });
        // The attack gets a head start before the probe measures.
        std::thread::sleep(Duration::from_millis(200));
        let probed = probe(addr, run, round);
        let after = pid.and_then(rss_kib);
        stop.store(true, Ordering::Relaxed);
        let _ = attacker.join();
        (probed, after)
    });
    match probed {
        Ok(p) => row(attack, &p, sent.load(Ordering::Relaxed), (before, after)),
        Err(e) => format!("{attack:?}: the probe failed: {e}"),
    }
}

fn main() -> ExitCode {
    let args = Args::parse();
    let (started, addr, pid) = match (&args.broker_bin, args.broker) {
        (Some(bin), _) => match start_broker(bin) {
            Ok((s, addr)) => {
                let pid = s.0.id().to_string();
                (Some(s), addr, Some(pid))
            }
            Err(e) => {
                eprintln!("cannot start the broker: {e}");
                return ExitCode::FAILURE;
            }
        },
        (None, Some(addr)) if addr.ip().is_loopback() => {
            (None, addr, args.broker_pid.map(|p| p.to_string()))
        }
        _ => {
            eprintln!("give --broker-bin, or --broker with a loopback address");
            return ExitCode::FAILURE;
        }
    };
    let attacks = if args.attack.is_empty() {
        vec![
            Attack::None,
            Attack::StalledSubscriber,
            Attack::SlowLoris,
            Attack::BigSubscribe,
            Attack::MassUnsubscribe,
            Attack::BloatedRetained,
            Attack::QueueTakeover,
        ]
    } else {
        args.attack.clone()
    };
    println!(
        "{:<19} {:>26} {:>26} {:>6} {:>10} {:>9}",
        "attack",
        "PINGREQ ms p50 p99 max",
        "QoS 1 ms p50 p99 max",
        "missed",
        "sent MiB",
        "RSS +MiB"
    );
    for (round, attack) in attacks.into_iter().enumerate() {
        println!(
            "{}",
            run_one(addr, pid.as_deref(), attack, &args, round as u32)
        );
    }
    drop(started);
    ExitCode::SUCCESS
}
