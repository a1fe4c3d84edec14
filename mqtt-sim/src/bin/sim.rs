//! `sim`: runs random scenarios under the oracle for as many seeds or as
//! long as it is told, and reports what was checked and how fast.
//!
//! ```text
//! cargo run --release -p mqtt-sim --bin sim -- --seeds 1000
//! cargo run --release -p mqtt-sim --bin sim -- --for 60s [--start 12345] [--ops 200]
//! ```
//!
//! A failing seed is printed with the command that replays it and, with
//! `--shrink`, the shrunk scenario as Rust for a regression test.

use std::process::ExitCode;
use std::time::{Duration, Instant};

use mqtt_sim::oracle::Check;
use mqtt_sim::run::{replay_command, run_seed, shrink, Outcome};

/// When to stop.
enum Until {
    Seeds(u64),
    Elapsed(Duration),
}

struct Args {
    until: Until,
    start: u64,
    ops: usize,
    shrink: bool,
}

fn usage() -> ExitCode {
    eprintln!("usage: sim (--seeds N | --for DURATION) [--start SEED] [--ops N] [--shrink]");
    eprintln!("  DURATION: 90, 90s, 5m or 500ms");
    ExitCode::from(2)
}

fn duration(s: &str) -> Option<Duration> {
    let (n, unit) = s
        .find(|c: char| !c.is_ascii_digit())
        .map_or((s, ""), |i| s.split_at(i));
    let n: u64 = n.parse().ok()?;
    match unit {
        "" | "s" => Some(Duration::from_secs(n)),
        "m" => Some(Duration::from_secs(n * 60)),
        "ms" => Some(Duration::from_millis(n)),
        _ => None,
    }
}

fn parse() -> Option<Args> {
    let mut until = None;
    // A different stretch of seeds each run unless told otherwise.
    let clock = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let mut args = Args {
        until: Until::Seeds(0),
        start: clock.wrapping_mul(1_000_003),
        ops: 200,
        shrink: false,
    };
    let mut it = std::env::args().skip(1);
    while let Some(a) = it.next() {
        match a.as_str() {
            "--seeds" => until = Some(Until::Seeds(it.next()?.parse().ok()?)),
            "--for" => until = Some(Until::Elapsed(duration(&it.next()?)?)),
            "--start" => args.start = it.next()?.parse().ok()?,
            "--ops" => args.ops = it.next()?.parse().ok()?,
            "--shrink" => args.shrink = true,
            _ => return None,
        }
    }
    args.until = until?;
    Some(args)
}

fn main() -> ExitCode {
    let Some(args) = parse() else {
        return usage();
    };
    println!(
        "seeds from {} on, scenarios of up to {} operations",
        args.start, args.ops
    );
    let started = Instant::now();
    let mut total = Outcome::default();
    let mut seeds = 0u64;
    let mut failures = Vec::new();
    loop {
        let done = match args.until {
            Until::Seeds(n) => seeds >= n,
            Until::Elapsed(d) => started.elapsed() >= d,
        };
        if done {
            break;
        }
        let seed = args.start.wrapping_add(seeds);
        seeds += 1;
        match run_seed(seed, args.ops) {
            Ok(o) => total.add(&o),
            Err(f) => {
                println!("seed {seed} FAILED: {f}");
                println!("  replay: {}", replay_command(seed, args.ops));
                if args.shrink {
                    let small = shrink(seed, args.ops, Duration::from_secs(120));
                    println!("  shrunk:\n{}", small.to_rust());
                }
                failures.push(seed);
            }
        }
    }
    report(&total, seeds, started.elapsed(), &failures);
    if failures.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}

fn report(total: &Outcome, seeds: u64, elapsed: Duration, failures: &[u64]) {
    let secs = elapsed.as_secs_f64().max(1e-9);
    println!();
    println!("checks made:");
    for c in Check::ALL {
        println!("  {:<18} {:>14}", c.to_string(), total.checks.count(c));
    }
    println!("  {:<18} {:>14}", "total", total.checks.total());
    let t = &total.tally;
    println!();
    println!(
        "deliveries: {} messages routed, {} deliveries due, {} received; never received: {} with their session, {} expirable, {} within reported drops ({} drops); {} sessions resumed with another client's state",
        t.routed, t.due, t.received, t.lost_with_session, t.expirable, t.missing, total.dropped, t.mismatched
    );
    println!(
        "{seeds} seeds in {:.1} s: {:.0} scenarios/s, {} packets ({:.0} packets/s), {} steps, {} connections, {:.1} virtual hours",
        secs,
        seeds as f64 / secs,
        total.packets,
        total.packets as f64 / secs,
        total.steps,
        total.connections,
        total.sim_ms as f64 / 3_600_000.0
    );
    if failures.is_empty() {
        println!("no failures");
    } else {
        println!("{} failing seeds: {failures:?}", failures.len());
    }
}
