//! What tokio itself costs per idle connection: the resident memory of an
//! idle task (for futures of the connection task's size, before and after
//! issue 7's last round) and of a registered TCP socket, measured as growth
//! of this process's `VmRSS` over many of them. The floor under any broker
//! that gives each idle connection a tokio task and a tokio `TcpStream`.
//!
//! ```text
//! cargo run --release -p mqtt-benches --bin tokio_floor -- --count 15000
//! ```
//!
//! Loopback only; every wait is bounded.

use std::sync::Arc;
use std::time::Duration;

use clap::Parser;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Notify;

#[derive(Debug, Parser)]
#[command(about = "Resident memory of idle tokio tasks and sockets")]
struct Args {
    /// How many tasks, and how many socket pairs (as many as the open-file
    /// limit allows), to hold at once.
    #[arg(long, default_value_t = 15_000)]
    count: usize,
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

/// Holds `count` idle tasks whose futures are about `N` bytes; returns the
/// future's exact size and the resident bytes per task.
async fn idle_tasks<const N: usize>(count: usize) -> (usize, f64) {
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
    let per = (rss().saturating_sub(before)) as f64 / count as f64;
    stop.notify_waiters();
    for h in handles {
        let _ = tokio::time::timeout(Duration::from_secs(5), h).await;
    }
    (size, per)
}

/// Holds `count` connected loopback socket pairs registered with tokio;
/// returns the resident bytes per socket.
async fn idle_sockets(count: usize) -> std::io::Result<f64> {
    let listener = TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    let mut accepted = Vec::with_capacity(count);
    let mut connected = Vec::with_capacity(count);
    let before = rss();
    for _ in 0..count {
        let c = tokio::time::timeout(Duration::from_secs(5), TcpStream::connect(addr)).await??;
        let (a, _) = tokio::time::timeout(Duration::from_secs(5), listener.accept()).await??;
        connected.push(c);
        accepted.push(a);
    }
    let per = (rss().saturating_sub(before)) as f64 / (2 * count) as f64;
    Ok(per)
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args = Args::parse();
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
        let (small, small_rss) = idle_tasks::<112>(args.count).await;
        let (large, large_rss) = idle_tasks::<392>(args.count).await;
        let socket_rss = idle_sockets(pairs).await?;
        println!(
            "tasks={} small_future_bytes={small} rss_per_small_task={small_rss:.0} \
             large_future_bytes={large} rss_per_large_task={large_rss:.0} \
             socket_pairs={pairs} rss_per_registered_socket={socket_rss:.0}",
            args.count
        );
        Ok(())
    })
}
