//! Queues as `Stream`s and `Sink`s: ends at shutdown, shared items,
//! backpressure, errors after shutdown, and nothing lost to a stream or
//! sink dropped between polls.

use std::collections::BTreeSet;
use std::time::Duration;

use conex::queue::*;
use futures::{SinkExt, StreamExt};

fn rt() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
}

#[test]
fn a_stream_ends_once_shut_down_and_drained() {
    rt().block_on(async {
        let q = Queue::unbounded();
        for i in 0..5 {
            q.put_nowait(i).unwrap();
        }
        let mut s = q.stream();
        assert_eq!(s.next().await, Some(0));
        q.shutdown(false);
        // What was queued still comes out, then the end (and it stays ended).
        assert_eq!(s.by_ref().collect::<Vec<_>>().await, [1, 2, 3, 4]);
        assert_eq!(s.next().await, None);
    });
}

#[test]
fn many_streams_share_the_items() {
    rt().block_on(async {
        let q = Queue::new(4);
        let readers: Vec<_> = (0..3)
            .map(|_| tokio::spawn(q.stream().collect::<Vec<u32>>()))
            .collect();
        let mut sink = q.sink();
        sink.send_all(&mut futures::stream::iter((0..300).map(Ok)))
            .await
            .unwrap();
        q.shutdown(false);
        let mut all = BTreeSet::new();
        for r in readers {
            for v in r.await.unwrap() {
                assert!(all.insert(v), "{v} came out twice");
            }
        }
        assert_eq!(all, (0..300).collect());
    });
}

#[test]
fn a_sink_waits_for_room_and_fails_after_shutdown() {
    rt().block_on(async {
        let q = Queue::new(1);
        let mut sink = q.sink();
        sink.send(1).await.unwrap();
        // Full: the next send waits (backpressure) until a get makes room.
        let mut send = Box::pin(sink.send(2));
        assert!(
            tokio::time::timeout(Duration::from_millis(20), &mut send)
                .await
                .is_err()
        );
        assert_eq!(q.get().await.unwrap(), 1);
        send.await.unwrap();
        assert_eq!(q.get_nowait().unwrap(), 2);
        q.shutdown(false);
        match sink.send(3).await {
            Err(PutError::ShutDown(3)) => {}
            other => panic!("{other:?}"),
        }
    });
}

#[test]
fn forward_moves_every_item() {
    rt().block_on(async {
        let (a, b) = (Queue::unbounded(), Queue::unbounded());
        for i in 0..100 {
            a.put_nowait(i).unwrap();
        }
        a.shutdown(false);
        a.stream().map(Ok).forward(b.sink()).await.unwrap();
        b.shutdown(false);
        assert_eq!(
            b.stream().collect::<Vec<_>>().await,
            (0..100).collect::<Vec<_>>()
        );
    });
}

// Not in CPython: a stream polled in a select! loop and dropped when the
// other branch wins, over and over, loses no item.
#[test]
fn streams_dropped_mid_select_lose_nothing() {
    rt().block_on(async {
        let q = Queue::unbounded();
        let producer = {
            let q = q.clone();
            tokio::spawn(async move {
                for i in 0..2_000u32 {
                    q.put(i).await.unwrap();
                    if i % 7 == 0 {
                        tokio::task::yield_now().await;
                    }
                }
                q.shutdown(false);
            })
        };
        let mut got = Vec::new();
        let mut ticks = 0u32;
        loop {
            // A fresh stream each round, dropped whenever the tick wins.
            let mut s = q.stream();
            tokio::select! {
                v = s.next() => match v {
                    Some(v) => got.push(v),
                    None => break,
                },
                _ = tokio::task::yield_now() => ticks += 1,
            }
        }
        producer.await.unwrap();
        assert_eq!(got, (0..2_000).collect::<Vec<_>>());
        let _ = ticks;
    });
}

#[test]
fn a_simple_queue_streams_forever() {
    rt().block_on(async {
        let q = SimpleQueue::new();
        for i in 0..3 {
            q.put(i);
        }
        let got: Vec<i32> = q.stream().take(3).collect().await;
        assert_eq!(got, [0, 1, 2]);
        let mut s = q.stream();
        assert!(
            tokio::time::timeout(Duration::from_millis(10), s.next())
                .await
                .is_err()
        );
    });
}
