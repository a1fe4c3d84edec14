//! The connection task's wakes: a stamped wake that brought nothing.

use std::sync::atomic::{AtomicUsize, Ordering};

use tokio::sync::{mpsc, Semaphore};

use super::*;

/// A stream whose first read wakes its waker and finds nothing (the
/// reactor said readable, the bytes were not there: a spurious wake,
/// part of a TLS record), and whose later reads wait for ever.
struct SpuriousWake(AtomicUsize);

impl AsyncRead for SpuriousWake {
    fn poll_read(
        self: std::pin::Pin<&mut Self>,
        cx: &mut Context<'_>,
        _: &mut tokio::io::ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        if self.0.fetch_add(1, Ordering::Relaxed) == 0 {
            cx.waker().wake_by_ref();
        }
        Poll::Pending
    }
}

impl AsyncWrite for SpuriousWake {
    fn poll_write(
        self: std::pin::Pin<&mut Self>,
        _: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        Poll::Ready(Ok(buf.len()))
    }
    fn poll_flush(
        self: std::pin::Pin<&mut Self>,
        _: &mut Context<'_>,
    ) -> Poll<std::io::Result<()>> {
        Poll::Ready(Ok(()))
    }
    fn poll_shutdown(
        self: std::pin::Pin<&mut Self>,
        _: &mut Context<'_>,
    ) -> Poll<std::io::Result<()>> {
        Poll::Ready(Ok(()))
    }
}

impl Stream for SpuriousWake {}

/// After a stamped wake whose read found nothing, the task still wakes
/// for what the core queues for it (here its close): it waits for its
/// outbox as well as its socket.
#[tokio::test]
async fn a_wake_that_brought_nothing_leaves_the_task_waiting_for_its_outbox() {
    use mqtt_router::broker::{Broker, BrokerConfig, PeerInfo};
    let mut broker = Broker::new(BrokerConfig::default());
    let id = broker
        .open(mqtt_session::Instant::from_millis(0), PeerInfo::default())
        .unwrap();
    let (tx, mut rx) = mpsc::channel(8);
    let to_core = ToCoreTx(Arc::new(super::super::ToCoreShared {
        tx,
        budget: Arc::new(Semaphore::new(1024)),
        ack_budget: Arc::new(Semaphore::new(1024)),
        stamps: Arc::new(super::super::order::Stamps::new(true)),
        write_timeout: Duration::from_secs(30),
    }));
    let addr = SocketAddr::from(([127, 0, 0, 1], 1));
    let stream = SpuriousWake(AtomicUsize::new(0));
    let task = tokio::spawn(serve(stream, addr, PeerCertificate::default(), to_core));
    let Some(ToCore::Open { reply, writer, .. }) = rx.recv().await else {
        panic!("the connection did not register");
    };
    reply.send(Some((id, broker.decoder()))).ok().unwrap();
    // Both reads have happened once the task is idle.
    tokio::time::sleep(Duration::from_millis(50)).await;
    writer.push(ToConn::Close);
    tokio::time::timeout(Duration::from_secs(5), task)
        .await
        .expect("the task woke for its close")
        .unwrap();
}
