//! `slow_subscriber`: what one subscriber that reads nothing costs a broker.
//!
//! Issue 5's measurement: `--publishers` (10) publishers send QoS 1 messages
//! as fast as their window allows for `--duration` (30) seconds, each on its
//! own topic. Two subscribers hold `+`-filters on those topics: one reads
//! and acknowledges everything (it must keep receiving, in order, losing
//! nothing), the other subscribes and then never reads its socket again.
//! Every second the broker's resident memory is read from
//! `/proc/PID/status`; the summary line gives its peak and the healthy
//! subscriber's delivery rate in the first and last thirds of the run.
//!
//! ```text
//! slow_subscriber --broker 127.0.0.1:1883 --broker-pid 4242 --duration 30
//! ```
//!
//! Every loop is bounded in time; only loopback addresses are accepted.

#[allow(dead_code)]
#[path = "../loadgen/client.rs"]
mod client;
#[allow(dead_code)]
#[path = "../loadgen/stats.rs"]
mod stats;

use std::net::SocketAddr;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use clap::Parser;
use mqtt_codec::QoS;
use tokio::time::Instant;

use client::{
    run_publisher, run_subscriber, Conn, PublishTemplate, PublisherPlan, RunState, SubscriberPlan,
};

/// One subscriber that never reads, many publishers, and a healthy subscriber.
#[derive(Debug, Parser)]
struct Args {
    /// The broker (a loopback address).
    #[arg(long, default_value = "127.0.0.1:1883")]
    broker: SocketAddr,
    /// The broker's process, whose resident memory is sampled.
    #[arg(long)]
    broker_pid: u32,
    /// Publishers, each on its own topic.
    #[arg(long, default_value_t = 10)]
    publishers: u32,
    /// Seconds of publishing.
    #[arg(long, default_value_t = 30)]
    duration: u64,
    /// Payload bytes.
    #[arg(long, default_value_t = 64)]
    payload: usize,
    /// QoS 1 messages each publisher keeps in flight.
    #[arg(long, default_value_t = 100)]
    window: usize,
}

#[tokio::main]
async fn main() -> ExitCode {
    let args = Args::parse();
    if !args.broker.ip().is_loopback() {
        eprintln!("error: only loopback brokers are driven");
        return ExitCode::FAILURE;
    }
    match run(&args).await {
        Ok(line) => {
            println!("{line}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}

async fn run(args: &Args) -> Result<String, Box<dyn std::error::Error>> {
    let pid = args.broker_pid.to_string();
    let setup = Instant::now() + Duration::from_secs(10);
    let rss_before = stats::rss_kib(&pid).ok_or("cannot read the broker's memory")?;

    // The subscriber that never reads: connected and subscribed, then left alone.
    let mut stalled = Conn::connect(args.broker, None, "slow-stalled", 0, true, setup).await?;
    stalled.subscribe("slow/+", QoS::AtLeastOnce, setup).await?;
    let mut healthy = Conn::connect(args.broker, None, "slow-healthy", 0, true, setup).await?;
    healthy.subscribe("slow/+", QoS::AtLeastOnce, setup).await?;

    let base = Instant::now();
    let start = base + Duration::from_millis(100);
    let stop = start + Duration::from_secs(args.duration);
    let deadline = stop + Duration::from_secs(20);
    let state = Arc::new(RunState::new(args.publishers));
    let mut publishers = Vec::new();
    for i in 0..args.publishers {
        let conn =
            Conn::connect(args.broker, None, &format!("slow-pub-{i}"), 0, true, setup).await?;
        let plan = PublisherPlan {
            id: i,
            template: Arc::new(PublishTemplate::new(
                &format!("slow/{i}"),
                QoS::AtLeastOnce,
                args.payload,
            )?),
            window: args.window,
            period: None,
            base,
            start,
            stop,
            deadline,
            max_messages: u64::MAX,
        };
        publishers.push(tokio::spawn(run_publisher(conn, plan)));
    }
    let sub_plan = SubscriberPlan {
        qos: QoS::AtLeastOnce,
        sources: 0..args.publishers,
        publishers: args.publishers,
        base,
        state: state.clone(),
        idle: Duration::from_secs(3),
        deadline,
    };
    let subscriber = tokio::spawn(run_subscriber(healthy, sub_plan));

    // Memory every second, bounded by the run's deadline.
    let mut peak = rss_before;
    let mut samples = Vec::new();
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    while Instant::now() < stop {
        tick.tick().await;
        if let Some(kib) = stats::rss_kib(&pid) {
            peak = peak.max(kib);
            samples.push(kib);
        }
    }
    let mut published = 0;
    for (i, p) in publishers.into_iter().enumerate() {
        let r = p.await?;
        published += r.published;
        state.published[i].store(r.published, std::sync::atomic::Ordering::SeqCst);
    }
    state.done.store(true, std::sync::atomic::Ordering::SeqCst);
    let report = subscriber.await?;
    let rss_end = stats::rss_kib(&pid).unwrap_or(0);
    drop(stalled);

    let counts = report.tracker.counts();
    let secs = args.duration as f64;
    let rate = counts.distinct as f64 / secs;
    let third = samples.len() / 3;
    let growth_last_third = samples
        .last()
        .zip(samples.get(samples.len().saturating_sub(third + 1)))
        .map_or(0, |(l, f)| l.saturating_sub(*f));
    Ok(format!(
        "publishers={} duration_s={} published={published} healthy_received={} healthy_lost={} \
         healthy_duplicates={} healthy_out_of_order={} healthy_msg_per_s={rate:.0} \
         rss_before_kib={rss_before} rss_peak_kib={peak} rss_end_kib={rss_end} \
         rss_growth_last_third_kib={growth_last_third} samples_kib={:?}",
        args.publishers,
        args.duration,
        counts.distinct,
        report.expected.saturating_sub(counts.distinct),
        counts.duplicates,
        counts.out_of_order,
        samples,
    ))
}
