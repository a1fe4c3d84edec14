//! What tokio itself costs per idle connection: the resident memory of an
//! idle task (for futures of the connection task's size, before and after
//! issue 7's last round) and of a registered TCP socket, measured as growth
//! of `VmRSS` over many of them, each in a process of its own (so that no
//! measurement reuses memory another one freed). The floor under any broker
//! that gives each idle connection a tokio task and a tokio `TcpStream`.
//!
//! ```text
//! cargo run --release -p mqtt-benches --bin tokio_floor -- --count 15000
//! ```
//!
//! Loopback only; every wait is bounded.

use std::process::Command;
use std::sync::Arc;
use std::time::Duration;

use clap::{Parser, ValueEnum};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Notify;

#[derive(Debug, Parser)]
#[command(about = "Resident memory of idle tokio tasks and sockets")]
struct Args {
    /// How many tasks, and how many socket pairs (as many as the open-file
    /// limit allows), to hold at once.
    #[arg(long, default_value_t = 15_000)]
    count: usize,
    /// Measure only this (the parent process runs each part in a child).
    #[arg(long, value_enum)]
    part: Option<Part>,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
enum Part {
    /// Idle tasks with a future of the connection task's size now.
    SmallTasks,
    /// Idle tasks with a future of the connection task's size before.
    LargeTasks,
    /// Connected loopback socket pairs registered with tokio.
    Sockets,
}

/// The process's resident set, in bytes.
fn rss() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next()?.parse::<u64>().ok())
        .map_or(0, |kib| kib * 1024)
}

/// Holds `count` idle tasks whose futures hold `N` bytes of state (plus the
/// `Arc` and the wait); prints the future's size and the resident bytes per
/// task, counting the vector of their handles.
async fn idle_tasks<const N: usize>(count: usize) {
    let stop = Arc::new(Notify::new());
    let mut handles = Vec::with_capacity(count);
    let before = rss();
    let mut size = 0;
    for _ in 0..count {
        let stop = stop.clone();
        let task = async move {
            let state = [0u8; N];
            stop.notified().await;
            std::hint::black_box(&state);
        };
        size = std::mem::size_of_val(&task);
        handles.push(tokio::spawn(task));
    }
    tokio::time::sleep(Duration::from_millis(200)).await;
    let per = rss().saturating_sub(before) as f64 / count as f64;
    println!("tasks={count} future_bytes={size} rss_per_task={per:.0}");
    stop.notify_waiters();
    for h in handles {
        let _ = tokio::time::timeout(Duration::from_secs(5), h).await;
    }
}

/// Holds `pairs` connected loopback socket pairs registered with tokio;
/// prints the resident bytes per socket, counting the vectors that hold them.
async fn idle_sockets(pairs: usize) -> std::io::Result<()> {
    let listener = TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    let mut accepted = Vec::with_capacity(pairs);
    let mut connected = Vec::with_capacity(pairs);
    let before = rss();
    for _ in 0..pairs {
        let c = tokio::time::timeout(Duration::from_secs(5), TcpStream::connect(addr)).await??;
        let (a, _) = tokio::time::timeout(Duration::from_secs(5), listener.accept()).await??;
        connected.push(c);
        accepted.push(a);
    }
    let per = rss().saturating_sub(before) as f64 / (2 * pairs) as f64;
    println!("socket_pairs={pairs} rss_per_registered_socket={per:.0}");
    Ok(())
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args = Args::parse();
    let Some(part) = args.part else {
        // Each part in a fresh process of its own.
        let me = std::env::current_exe()?;
        for part in ["small-tasks", "large-tasks", "sockets"] {
            let out = Command::new(&me)
                .args(["--count", &args.count.to_string(), "--part", part])
                .output()?;
            if !out.status.success() {
                return Err(
                    format!("{part}: {}", String::from_utf8_lossy(&out.stderr).trim()).into(),
                );
            }
            print!("{}", String::from_utf8_lossy(&out.stdout));
        }
        return Ok(());
    };
    // Two sockets per pair, and a margin; fewer pairs if the hard limit
    // does not allow that many.
    let nofile = rlimit::increase_nofile_limit(2 * args.count as u64 + 64).unwrap_or(1024);
    let pairs = args
        .count
        .min((nofile.saturating_sub(64) / 2) as usize)
        .max(1);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async {
        match part {
            Part::SmallTasks => idle_tasks::<112>(args.count).await,
            Part::LargeTasks => idle_tasks::<392>(args.count).await,
            Part::Sockets => idle_sockets(pairs).await?,
        }
        Ok(())
    })
}
