//! The listener's figures under a slow or greedy crowd (issue 15): how
//! long an honest client takes to be served while ten silent connections
//! hold handshakes open, and the connect-to-authenticated times of 1,000
//! clients connecting at once.
//!
//! `cargo run --release --example listener_figures`

use std::time::{Duration, Instant};

use conex::multiprocessing::{Address, Client, Listener};

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i]
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    conex::multiprocessing::init();
    let key: &'static [u8] = b"figures key";

    // 1. An honest client behind ten silent connections, 20 times.
    let mut honest = Vec::new();
    for _ in 0..20 {
        let l = Listener::bind("127.0.0.1:0", Some(key)).unwrap();
        let Address::Tcp(sa) = l.address().clone() else {
            unreachable!()
        };
        let silent: Vec<_> = (0..10)
            .map(|_| std::net::TcpStream::connect(sa).unwrap())
            .collect();
        let start = Instant::now();
        let client = tokio::spawn(async move { Client::connect(sa, Some(key)).await });
        let _conn = l.accept().await.unwrap();
        client.await.unwrap().unwrap();
        honest.push(start.elapsed());
        drop(silent);
    }
    honest.sort();
    println!(
        "honest client behind 10 silent connections (20 runs): median {:?}, max {:?}",
        percentile(&honest, 0.5),
        honest[honest.len() - 1]
    );

    // 2. 1,000 clients connecting at once.
    let l = Listener::bind("127.0.0.1:0", Some(key)).unwrap();
    let Address::Tcp(sa) = l.address().clone() else {
        unreachable!()
    };
    const N: usize = 1000;
    let server = tokio::spawn(async move {
        let mut conns = Vec::with_capacity(N);
        while conns.len() < N {
            conns.push(l.accept().await.unwrap());
        }
        conns
    });
    let start = Instant::now();
    let clients: Vec<_> = (0..N)
        .map(|_| {
            tokio::spawn(async move {
                let t = Instant::now();
                let c = Client::connect(sa, Some(key)).await.unwrap();
                (t.elapsed(), c)
            })
        })
        .collect();
    let mut times = Vec::with_capacity(N);
    let mut keep = Vec::with_capacity(N);
    for c in clients {
        let (t, conn) = c.await.unwrap();
        times.push(t);
        keep.push(conn);
    }
    let served = server.await.unwrap().len();
    let all = start.elapsed();
    times.sort();
    println!(
        "{N} simultaneous connects ({served} accepted in {all:?}): p50 {:?}, p99 {:?}, max {:?}",
        percentile(&times, 0.5),
        percentile(&times, 0.99),
        times[N - 1]
    );
}
