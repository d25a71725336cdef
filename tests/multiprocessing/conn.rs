//! Pipe, Connection, Listener / Client, wait, and bad input on the wire.

use std::io::Write;
use std::time::Duration;

use conex::multiprocessing::{
    Address, Client, ConnectionError, Listener, pipe, wait, wait_blocking,
};

use crate::{RT, Test};

pub(crate) const TESTS: &[Test] = &[
    (
        "conn::a_stream_of_messages_from_a_child",
        a_stream_of_messages_from_a_child,
    ),
    ("conn::duplex_round_trip_async", duplex_round_trip_async),
    (
        "conn::duplex_round_trip_blocking",
        duplex_round_trip_blocking,
    ),
    ("conn::one_way_pipe_directions", one_way_pipe_directions),
    ("conn::bytes_and_messages_mix", bytes_and_messages_mix),
    ("conn::recv_bytes_into_too_short", recv_bytes_into_too_short),
    (
        "conn::large_recv_bytes_into_dropped_half_way",
        large_recv_bytes_into_dropped_half_way,
    ),
    (
        "conn::send_dropped_half_way_goes_out_first",
        send_dropped_half_way_goes_out_first,
    ),
    (
        "conn::sends_yield_to_other_tasks",
        sends_yield_to_other_tasks,
    ),
    ("conn::eof_when_peer_dropped", eof_when_peer_dropped),
    ("conn::closed_end_errors", closed_end_errors),
    ("conn::poll_timeout_and_ready", poll_timeout_and_ready),
    ("conn::large_message_round_trip", large_message_round_trip),
    ("conn::oversized_frame_refused", oversized_frame_refused),
    (
        "conn::wrong_type_is_decode_error",
        wrong_type_is_decode_error,
    ),
    (
        "conn::connection_through_connection",
        connection_through_connection,
    ),
    ("listener::unix_with_key", listener_unix_with_key),
    ("listener::tcp_without_key", listener_tcp_without_key),
    (
        "listener::wrong_key_both_sides_then_serves",
        listener_wrong_key_both_sides_then_serves,
    ),
    (
        "listener::garbage_client_then_serves",
        listener_garbage_client_then_serves,
    ),
    (
        "listener::oversized_handshake_then_serves",
        listener_oversized_handshake_then_serves,
    ),
    (
        "listener::double_bind_and_accept_after_close",
        listener_double_bind_and_accept_after_close,
    ),
    ("listener::blocking_faces", listener_blocking_faces),
    (
        "listener::silent_peers_do_not_stall_an_honest_client",
        listener_silent_peers_do_not_stall_an_honest_client,
    ),
    (
        "listener::no_descriptors_before_authentication",
        listener_no_descriptors_before_authentication,
    ),
    (
        "listener::stale_socket_files_are_removed",
        listener_stale_socket_files_are_removed,
    ),
    (
        "listener::backlog_is_settable",
        listener_backlog_is_settable,
    ),
    (
        "wait::ready_indices_and_timeout",
        wait_ready_indices_and_timeout,
    ),
    (
        "connection::wait_over_sockets_fds_and_sentinels",
        wait_over_sockets_fds_and_sentinels,
    ),
    (
        "conn::async_receive_after_a_drained_read",
        async_receive_after_a_drained_read,
    ),
    (
        "conn::garbage_frames_fail_cleanly",
        garbage_frames_fail_cleanly,
    ),
    (
        "listener::garbage_handshakes_fail_cleanly",
        garbage_handshakes_fail_cleanly,
    ),
];

// _TestConnection.test_connection (send/recv, send_bytes/recv_bytes)
fn duplex_round_trip_async() {
    RT.block_on(async {
        let (a, b) = pipe(true).unwrap();
        a.send(&(1u8, "two".to_string(), vec![3.0f64]))
            .await
            .unwrap();
        let got: (u8, String, Vec<f64>) = b.recv().await.unwrap();
        assert_eq!(got, (1, "two".into(), vec![3.0]));
        b.send(&Some(-5i64)).await.unwrap();
        assert_eq!(a.recv::<Option<i64>>().await.unwrap(), Some(-5));
    });
}

// _TestConnection.test_connection, on the blocking facade
fn duplex_round_trip_blocking() {
    let (a, b) = pipe(true).unwrap();
    let t = std::thread::spawn(move || {
        for _ in 0..100 {
            let n: u32 = b.blocking().recv().unwrap();
            b.blocking().send(&(n + 1)).unwrap();
        }
    });
    for i in 0..100u32 {
        a.blocking().send(&i).unwrap();
        assert_eq!(a.blocking().recv::<u32>().unwrap(), i + 1);
    }
    t.join().unwrap();
}

// _TestConnection.test_duplex_false
fn one_way_pipe_directions() {
    let (r, w) = pipe(false).unwrap();
    assert!(r.readable() && !r.writable());
    assert!(w.writable() && !w.readable());
    w.blocking().send(&7u8).unwrap();
    assert_eq!(r.blocking().recv::<u8>().unwrap(), 7);
    assert!(matches!(
        r.blocking().send(&1u8),
        Err(ConnectionError::WrongDirection(_))
    ));
    assert!(matches!(
        w.blocking().recv::<u8>(),
        Err(ConnectionError::WrongDirection(_))
    ));
}

// _TestConnection.test_sendbytes (offsets are slices in Rust)
fn bytes_and_messages_mix() {
    let (a, b) = pipe(true).unwrap();
    let c = a.blocking();
    c.send_bytes(b"").unwrap();
    c.send_bytes(&b"abcdefgh"[2..5]).unwrap();
    assert_eq!(b.blocking().recv_bytes().unwrap(), b"");
    assert_eq!(b.blocking().recv_bytes().unwrap(), b"cde");
    // A message sent with send arrives as its encoding.
    c.send(&300u32).unwrap();
    let raw = b.blocking().recv_bytes().unwrap();
    assert!(!raw.is_empty());
    b.blocking().send_bytes(&raw).unwrap();
    assert_eq!(c.recv::<u32>().unwrap(), 300);
}

// Cancellation (DESIGN: drop at each await point): a large message read
// straight into the caller's buffer, dropped half-way, is received whole
// by the next call, and the stream keeps its place
fn large_recv_bytes_into_dropped_half_way() {
    use std::future::Future;
    const N: usize = 3 << 20;
    let msg: Vec<u8> = (0..N).map(|i| (i * 7 % 251) as u8).collect();
    // A writer on another core can keep pace with one poll and the whole
    // message arrive in it: then that attempt shows nothing about a drop
    // (its message must still be whole) and the next one tries again.
    for _attempt in 0..20 {
        let (a, b) = pipe(true).unwrap();
        let m2 = msg.clone();
        let writer = std::thread::spawn(move || {
            a.blocking().send_bytes(&m2).unwrap();
            a.blocking().send_bytes(b"after").unwrap();
        });
        let mut buf = vec![0u8; N];
        let waker = std::task::Waker::noop();
        let mut cx = std::task::Context::from_waker(waker);
        // Poll until part of the message has come, then drop the receive.
        let mut partial = false;
        let mut whole = false;
        for _ in 0..2000 {
            let mut fut = Box::pin(b.recv_bytes_into(&mut buf));
            if let std::task::Poll::Ready(r) = fut.as_mut().poll(&mut cx) {
                assert_eq!(r.unwrap(), N);
                drop(fut);
                assert!(buf == msg, "the whole message, in order");
                whole = true;
                break;
            }
            drop(fut);
            if buf[..4] == msg[..4] {
                partial = true;
                break;
            }
            std::thread::sleep(Duration::from_millis(1));
        }
        if whole {
            assert_eq!(b.blocking().recv_bytes().unwrap(), b"after");
            writer.join().unwrap();
            continue;
        }
        assert!(partial, "some of the message arrived before the drop");
        let mut again = vec![0u8; N];
        assert_eq!(b.blocking().recv_bytes_into(&mut again).unwrap(), N);
        assert!(again == msg, "the whole message, in order");
        assert_eq!(b.blocking().recv_bytes().unwrap(), b"after");
        writer.join().unwrap();
        return;
    }
    panic!("in 20 attempts every message came whole in one poll");
}

// No CPython counterpart (a Python send cannot stop half-way): a send
// dropped after part of its frame went out leaves the rest to go first,
// and a send dropped before its first byte sends nothing, so the stream
// stays whole
fn send_dropped_half_way_goes_out_first() {
    use std::future::Future;
    const N: usize = 3 << 20;
    let (a, b) = pipe(true).unwrap();
    let msg: Vec<u8> = (0..N).map(|i| (i * 13 % 251) as u8).collect();
    let waker = std::task::Waker::noop();
    let mut cx = std::task::Context::from_waker(waker);
    {
        let mut fut = Box::pin(a.send_bytes(&msg));
        let first = fut.as_mut().poll(&mut cx);
        assert!(first.is_pending(), "3 MiB cannot fit the socket at once");
    }
    {
        // Nobody reads: the rest of the big frame cannot go, nor this.
        let mut fut = Box::pin(a.send(&1u32));
        assert!(fut.as_mut().poll(&mut cx).is_pending());
    }
    let reader = std::thread::spawn(move || {
        let first = b.blocking().recv_bytes().unwrap();
        let second: u32 = b.blocking().recv().unwrap();
        (first, second)
    });
    a.blocking().send(&7u32).unwrap();
    let (first, second) = reader.join().unwrap();
    assert!(first == msg, "the dropped frame arrives whole");
    assert_eq!(
        second, 7,
        "the send dropped before its first byte sent nothing"
    );
}

// No CPython counterpart (tokio's cooperative budget): sends that never
// wait for room still let the other tasks of a thread run, as a tokio
// stream's writes do
fn sends_yield_to_other_tasks() {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let (a, _z) = pipe(true).unwrap();
        let ran = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let r2 = ran.clone();
        let other =
            tokio::spawn(async move { r2.store(true, std::sync::atomic::Ordering::SeqCst) });
        // Small enough that the socket takes them all without waiting
        // (nobody reads), more than tokio's budget of 128 per turn.
        for i in 0..140u32 {
            a.send(&i).await.unwrap();
        }
        assert!(
            ran.load(std::sync::atomic::Ordering::SeqCst),
            "the sending task yielded at least once"
        );
        other.await.unwrap();
    });
}

// _TestConnection.test_connection (recv_bytes_into, BufferTooShort)
fn recv_bytes_into_too_short() {
    let (a, b) = pipe(true).unwrap();
    a.blocking().send_bytes(b"hello world").unwrap();
    let mut small = [0u8; 4];
    match b.blocking().recv_bytes_into(&mut small) {
        Err(ConnectionError::BufferTooShort(m)) => assert_eq!(m, b"hello world"),
        other => panic!("expected BufferTooShort, got {other:?}"),
    }
    a.blocking().send_bytes(b"fits").unwrap();
    let mut buf = [0u8; 16];
    assert_eq!(b.blocking().recv_bytes_into(&mut buf).unwrap(), 4);
    assert_eq!(&buf[..4], b"fits");
}

// _TestConnection.test_connection (EOFError after the peer closes)
fn eof_when_peer_dropped() {
    let (a, b) = pipe(true).unwrap();
    a.blocking().send(&1u8).unwrap();
    drop(a);
    // What was sent before the close still arrives, then EOF.
    assert_eq!(b.blocking().recv::<u8>().unwrap(), 1);
    assert!(b.blocking().recv::<u8>().unwrap_err().is_eof());
    assert!(b.blocking().recv_bytes().unwrap_err().is_eof());
    // poll says ready at EOF (a recv will not block).
    assert!(b.blocking().poll().unwrap());
}

// _TestConnection.test_closed (OSError on a closed connection)
fn closed_end_errors() {
    let (a, b) = pipe(true).unwrap();
    a.close();
    assert!(a.closed());
    assert!(matches!(
        a.blocking().send(&1u8),
        Err(ConnectionError::Closed)
    ));
    assert!(matches!(
        a.blocking().recv::<u8>(),
        Err(ConnectionError::Closed)
    ));
    assert!(b.blocking().recv::<u8>().unwrap_err().is_eof());
    a.close(); // twice is fine, as in Python
}

// _TestConnection.test_poll / test_poll_timeout
fn poll_timeout_and_ready() {
    RT.block_on(async {
        let (a, b) = pipe(true).unwrap();
        assert!(!b.try_poll().unwrap());
        assert!(!b.poll_timeout(Duration::from_millis(20)).await.unwrap());
        a.send(&5u8).await.unwrap();
        assert!(b.poll_timeout(Duration::from_secs(10)).await.unwrap());
        assert!(b.poll().await.unwrap());
        // poll does not consume.
        assert_eq!(b.recv::<u8>().await.unwrap(), 5);
        assert!(!b.try_poll().unwrap());
    });
}

// _TestConnection.test_large_fd_transfer's cousin: a message larger than
// any socket buffer, both ways at once.
fn large_message_round_trip() {
    RT.block_on(async {
        let (a, b) = pipe(true).unwrap();
        let big: Vec<u8> = (0..8 << 20).map(|i| (i % 251) as u8).collect();
        let big2 = big.clone();
        let echo = tokio::spawn(async move {
            let m = b.recv_bytes().await.unwrap();
            b.send_bytes(&m).await.unwrap();
        });
        a.send_bytes(&big).await.unwrap();
        assert_eq!(a.recv_bytes().await.unwrap(), big2);
        echo.await.unwrap();
    });
}

// Not in CPython (pickle has no size limit): a frame above the limit is
// refused from its header, before allocation, and breaks the connection.
fn oversized_frame_refused() {
    let (a, b) = pipe(true).unwrap();
    b.set_max_frame(1024);
    a.blocking().send_bytes(&[0u8; 1000]).unwrap();
    assert_eq!(b.blocking().recv_bytes().unwrap().len(), 1000);
    a.blocking().send_bytes(&vec![0u8; 4096]).unwrap();
    match b.blocking().recv_bytes() {
        Err(ConnectionError::FrameTooLarge { len, max }) => assert_eq!((len, max), (4096, 1024)),
        other => panic!("expected FrameTooLarge, got {other:?}"),
    }
}

// _TestConnection (an unpicklable message): the wrong type is a Decode
// error and the connection goes on.
fn wrong_type_is_decode_error() {
    let (a, b) = pipe(true).unwrap();
    a.blocking().send(&"not a number at all").unwrap();
    a.blocking().send(&9u16).unwrap();
    // 20 bytes cannot hold 32 varints.
    assert!(matches!(
        b.blocking().recv::<[u64; 32]>(),
        Err(ConnectionError::Decode(_))
    ));
    assert_eq!(b.blocking().recv::<u16>().unwrap(), 9);
}

// _TestPicklingConnections: a connection sent over a connection works at
// the far end (its descriptor crosses with SCM_RIGHTS).
fn connection_through_connection() {
    let (a, b) = pipe(true).unwrap();
    let (x, y) = pipe(true).unwrap();
    a.blocking().send(&y).unwrap();
    drop(y);
    let y2: conex::multiprocessing::Connection = b.blocking().recv().unwrap();
    x.blocking().send(&"through").unwrap();
    assert_eq!(y2.blocking().recv::<String>().unwrap(), "through");
}

// _TestListenerClient.test_listener_client (AF_UNIX) with an auth key
fn listener_unix_with_key() {
    RT.block_on(async {
        let l = Listener::bind(Address::unix_temp(), Some(b"k3y")).unwrap();
        let addr = l.address().clone();
        let Address::Unix(path) = &addr else { panic!() };
        assert!(path.exists());
        let client = tokio::spawn({
            let addr = addr.clone();
            async move {
                let c = Client::connect(&addr, Some(b"k3y")).await.unwrap();
                c.send(&"ping").await.unwrap();
                c.recv::<String>().await.unwrap()
            }
        });
        let conn = l.accept().await.unwrap();
        assert_eq!(conn.recv::<String>().await.unwrap(), "ping");
        conn.send(&"pong").await.unwrap();
        assert_eq!(client.await.unwrap(), "pong");
        l.close();
        assert!(!path.exists(), "close removes the socket path");
    });
}

// _TestListenerClient.test_listener_client (AF_INET), no key
fn listener_tcp_without_key() {
    RT.block_on(async {
        // Addresses as text: one rule, "ip:port" is TCP.
        let l = Listener::bind("127.0.0.1:0", None).unwrap();
        let addr = l.address().clone();
        let Address::Tcp(sa) = addr else { panic!() };
        assert_ne!(sa.port(), 0);
        let client = tokio::spawn(async move {
            let c = Client::connect(format!("127.0.0.1:{}", sa.port()), None)
                .await
                .unwrap();
            c.send(&vec![1u32, 2, 3]).await.unwrap();
        });
        let conn = l.accept().await.unwrap();
        assert_eq!(conn.recv::<Vec<u32>>().await.unwrap(), vec![1, 2, 3]);
        client.await.unwrap();
    });
}

// _TestListenerClient / test_multiprocessing's AuthenticationError: a
// wrong key fails on both sides; the listener serves the next client.
fn listener_wrong_key_both_sides_then_serves() {
    RT.block_on(async {
        let l = Listener::bind(Address::unix_temp(), Some(b"right")).unwrap();
        let addr = l.address().clone();
        let bad = tokio::spawn({
            let addr = addr.clone();
            async move { Client::connect(&addr, Some(b"wrong")).await }
        });
        match l.accept().await {
            Err(ConnectionError::Authentication(_)) => {}
            other => panic!("expected AuthenticationError at the listener, got {other:?}"),
        }
        match bad.await.unwrap() {
            Err(ConnectionError::Authentication(_)) => {}
            other => panic!("expected AuthenticationError at the client, got {other:?}"),
        }
        // A client without a key, to a listener that wants one.
        let none = tokio::spawn({
            let addr = addr.clone();
            async move { Client::connect(&addr, None).await }
        });
        assert!(l.accept().await.is_err());
        assert!(none.await.unwrap().is_err());
        let good = tokio::spawn(async move {
            let c = Client::connect(&addr, Some(b"right")).await.unwrap();
            c.send(&1u8).await.unwrap();
        });
        let c = l.accept().await.unwrap();
        assert_eq!(c.recv::<u8>().await.unwrap(), 1);
        good.await.unwrap();
    });
}

fn raw_unix(addr: &Address) -> std::os::unix::net::UnixStream {
    let Address::Unix(p) = addr else { panic!() };
    std::os::unix::net::UnixStream::connect(p).unwrap()
}

// Fault test: garbage instead of a handshake fails that connection only.
fn listener_garbage_client_then_serves() {
    RT.block_on(async {
        let l = Listener::bind(Address::unix_temp(), Some(b"key")).unwrap();
        let addr = l.address().clone();
        let mut raw = raw_unix(&addr);
        raw.write_all(b"GET / HTTP/1.1\r\nHost: x\r\n\r\nxxxxxxxxxxxxxxxxxxxxxxxx")
            .unwrap();
        // Half-closed, not dropped: the listener parses the bytes (a
        // dropped socket would fail every input the same way, at EOF).
        raw.shutdown(std::net::Shutdown::Write).unwrap();
        let e = l.accept().await.unwrap_err();
        assert!(!matches!(e, ConnectionError::Eof), "{e:?}");
        drop(raw);
        let good =
            tokio::spawn(async move { Client::connect(&addr, Some(b"key")).await.map(|_| ()) });
        l.accept().await.unwrap();
        good.await.unwrap().unwrap();
    });
}

// Fault test: a header announcing a huge frame during the handshake is
// refused without allocating it.
fn listener_oversized_handshake_then_serves() {
    RT.block_on(async {
        let l = Listener::bind(Address::unix_temp(), None).unwrap();
        let addr = l.address().clone();
        let mut raw = raw_unix(&addr);
        let mut header = [0u8; 8];
        header[..4].copy_from_slice(&u32::MAX.to_le_bytes());
        raw.write_all(&header).unwrap();
        match l.accept().await {
            // The handshake caps frames at 1 KiB: refused from the header.
            Err(ConnectionError::FrameTooLarge { .. })
            | Err(ConnectionError::Protocol(_))
            | Err(ConnectionError::Authentication(_)) => {}
            other => panic!("expected the frame refused, got {other:?}"),
        }
        drop(raw);
        let good = tokio::spawn(async move { Client::connect(&addr, None).await.map(|_| ()) });
        l.accept().await.unwrap();
        good.await.unwrap().unwrap();
    });
}

// _TestListener.test_multiple_bind; accept after close
fn listener_double_bind_and_accept_after_close() {
    RT.block_on(async {
        let l = Listener::bind(Address::unix_temp(), None).unwrap();
        match Listener::bind(l.address().clone(), None) {
            Err(ConnectionError::Io(e)) => assert_eq!(e.kind(), std::io::ErrorKind::AddrInUse),
            other => panic!("expected AddrInUse, got {other:?}"),
        }
        let t = Listener::bind("127.0.0.1:0", None).unwrap();
        assert!(Listener::bind(t.address().clone(), None).is_err());
        l.close();
        assert!(matches!(l.accept().await, Err(ConnectionError::Closed)));
        // A pending accept is woken by close.
        let l2 = Listener::bind(Address::unix_temp(), None).unwrap();
        let l3 = l2.clone();
        let pending = tokio::spawn(async move { l3.accept().await });
        tokio::time::sleep(Duration::from_millis(20)).await;
        l2.close();
        let r = tokio::time::timeout(Duration::from_secs(10), pending)
            .await
            .expect("close wakes accept");
        assert!(r.unwrap().is_err());
    });
}

// _TestListenerClient with threads: the blocking facades.
fn listener_blocking_faces() {
    let l = Listener::bind(Address::unix_temp(), Some(b"b")).unwrap();
    let addr = l.address().clone();
    let t = std::thread::spawn(move || {
        let c = Client::connect_blocking(&addr, Some(b"b")).unwrap();
        c.blocking().send(&"blocking").unwrap();
    });
    let c = l.blocking().accept().unwrap();
    assert_eq!(c.blocking().recv::<String>().unwrap(), "blocking");
    t.join().unwrap();
}

// _TestWait.test_wait, test_wait_timeout
fn wait_ready_indices_and_timeout() {
    let pipes: Vec<_> = (0..4).map(|_| pipe(true).unwrap()).collect();
    let readers: Vec<&dyn conex::multiprocessing::Waitable> =
        pipes.iter().map(|(r, _)| r as _).collect();
    assert!(wait_blocking(&readers, Some(Duration::from_millis(20))).is_empty());
    pipes[1].1.blocking().send(&1u8).unwrap();
    pipes[3].1.blocking().send(&1u8).unwrap();
    let mut ready = wait_blocking(&readers, Some(Duration::from_secs(10)));
    ready.sort();
    assert_eq!(ready, vec![1, 3]);
    RT.block_on(async {
        let (a, b) = pipe(true).unwrap();
        let sender = tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(10)).await;
            a.send(&2u8).await.unwrap();
            a
        });
        assert_eq!(wait(&[&b], None).await, vec![0]);
        sender.await.unwrap();
    });
}

fn sleep_a_little(ms: u64) {
    std::thread::sleep(Duration::from_millis(ms));
}

// _TestWait.test_wait_socket, test_wait_integer (a socket, a process
// sentinel and a connection in one wait), on both faces: each object is
// reported once it is ready, and waiting takes nothing from a socket.
fn wait_over_sockets_fds_and_sentinels() {
    use conex::multiprocessing::{Process, ReadableFd, Waitable};
    use std::io::{Read, Write};
    use std::os::fd::AsFd;

    let (mut s1, mut s2) = std::os::unix::net::UnixStream::pair().unwrap();
    let sock = ReadableFd::new(s2.as_fd()).unwrap();
    let (c1, c2) = pipe(true).unwrap();
    let p = Process::new(sleep_a_little, 100);
    p.start().unwrap();
    let sentinel = p.sentinel().unwrap();
    let objects: [&dyn Waitable; 3] = [&sock, &c2, &sentinel];
    assert!(wait_blocking(&objects, Some(Duration::from_millis(10))).is_empty());
    s1.write_all(b"x").unwrap();
    assert_eq!(wait_blocking(&objects, Some(Duration::from_secs(10))), [0]);
    // Still there: wait read nothing.
    let mut b = [0u8; 1];
    s2.read_exact(&mut b).unwrap();
    assert_eq!(&b, b"x");
    RT.block_on(async {
        assert!(
            wait(&objects, Some(Duration::from_millis(10)))
                .await
                .is_empty()
        );
        c1.send(&5u8).await.unwrap();
        assert_eq!(wait(&objects, None).await, [1]);
        assert_eq!(c2.recv::<u8>().await.unwrap(), 5);
        // The child ends within its 100 ms: its sentinel is ready.
        assert_eq!(wait(&objects, Some(Duration::from_secs(30))).await, [2]);
    });
    p.blocking().join().unwrap();
}

// Ours (no CPython counterpart): an async receive that has caught up
// waits for the reactor's next wake-up instead of trying a read first (as
// tokio's streams do). Every way data can sit there unread after such a
// read must still be found: data sent later, data `wait` looked at,
// messages behind one that carried handles (the kernel ends a read after
// those), and a `wait` beside a receive in progress.
fn async_receive_after_a_drained_read() {
    let limit = Duration::from_secs(10);
    RT.block_on(async {
        let (a, z) = pipe(true).unwrap();
        a.send(&1u32).await.unwrap();
        assert_eq!(z.recv::<u32>().await.unwrap(), 1);
        // Later data wakes the caught-up receiver.
        let later = tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(20)).await;
            a.send(&2u32).await.unwrap();
            a
        });
        let got = tokio::time::timeout(limit, z.recv::<u32>()).await;
        assert_eq!(got.expect("no wake-up after a drained read").unwrap(), 2);
        let a = later.await.unwrap();
        // `wait` reports data that came after a drained read, twice while
        // it is not taken, and the receive then finds it.
        a.send(&3u32).await.unwrap();
        assert_eq!(wait(&[&z], Some(limit)).await, vec![0]);
        assert_eq!(wait(&[&z], Some(limit)).await, vec![0]);
        let got = tokio::time::timeout(limit, z.recv::<u32>()).await;
        assert_eq!(got.expect("data `wait` saw was lost").unwrap(), 3);
        // Messages with handles, and one after them, all sent before the
        // first receive: no wake-up is coming for the ones behind.
        let (p1, _q1) = pipe(true).unwrap();
        let (p2, _q2) = pipe(true).unwrap();
        a.send(&p1).await.unwrap();
        a.send(&p2).await.unwrap();
        a.send(&4u32).await.unwrap();
        for _ in 0..2 {
            let got = tokio::time::timeout(limit, z.recv::<conex::multiprocessing::Connection>());
            got.await.expect("stuck behind handles").unwrap();
        }
        let got = tokio::time::timeout(limit, z.recv::<u32>()).await;
        assert_eq!(got.expect("stuck behind handles").unwrap(), 4);
        // `wait` beside a receive in progress leaves that receive whole.
        let z = std::sync::Arc::new(z);
        let z2 = z.clone();
        let receiving = tokio::spawn(async move { z2.recv::<u32>().await.unwrap() });
        tokio::time::sleep(Duration::from_millis(20)).await;
        let _ = wait(&[&*z], Some(Duration::from_millis(20))).await;
        a.send(&5u32).await.unwrap();
        let got = tokio::time::timeout(limit, receiving).await;
        assert_eq!(got.expect("a wait beside it lost the data").unwrap(), 5);
    });
}

/// A small deterministic generator (xorshift64*), for generated input.
fn rng(seed: u64) -> impl FnMut() -> u64 {
    let mut s = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    move || {
        s ^= s >> 12;
        s ^= s << 25;
        s ^= s >> 27;
        s.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
}

/// Input for the decoder: random bytes, or a plausible header (small
/// length, few handles) with a random or truncated body.
fn garbage(next: &mut impl FnMut() -> u64) -> Vec<u8> {
    let len = (next() % 48) as usize;
    let mut v: Vec<u8> = (0..len).map(|_| next() as u8).collect();
    if next().is_multiple_of(2) {
        let mut header = Vec::new();
        header.extend_from_slice(&((next() % 40) as u32).to_le_bytes());
        header.extend_from_slice(&((next() % 3) as u32).to_le_bytes());
        header.append(&mut v);
        v = header;
    }
    v
}

// The fuzz target fuzz/fuzz_targets/frame.rs, on 2000 generated inputs:
// every receive ends in a value or a typed error; none panics or hangs.
fn garbage_frames_fail_cleanly() {
    use std::os::fd::AsRawFd;
    let mut next = rng(7);
    for _ in 0..2000 {
        let data = garbage(&mut next);
        let (ours, theirs) = pipe(true).unwrap();
        ours.set_max_frame(1 << 16);
        // SAFETY: writing our bytes to our own socket.
        let n = unsafe { libc::write(theirs.as_raw_fd(), data.as_ptr().cast(), data.len()) };
        assert_eq!(n as usize, data.len());
        drop(theirs);
        let mut ended = false;
        for _ in 0..64 {
            if let Err(e) = ours.blocking().recv_bytes() {
                // Whatever the error, the connection gives answers, not hangs.
                let _ = e.to_string();
                ended = true;
                break;
            }
        }
        assert!(ended, "48 bytes cannot hold 64 frames");
    }
}

// The fuzz target fuzz/fuzz_targets/handshake.rs, on 300 generated
// inputs: a listener refuses each and serves a real client after.
fn garbage_handshakes_fail_cleanly() {
    let l = Listener::bind(Address::unix_temp(), Some(b"fuzz key")).unwrap();
    let addr = l.address().clone();
    let Address::Unix(path) = &addr else { panic!() };
    let mut next = rng(11);
    let mut kinds = std::collections::BTreeSet::new();
    for _ in 0..300 {
        let data = garbage(&mut next);
        let mut raw = std::os::unix::net::UnixStream::connect(path).unwrap();
        let _ = raw.write_all(&data);
        // Half-close: the listener reads the input to its end and judges
        // it, instead of failing at once on a vanished peer.
        let _ = raw.shutdown(std::net::Shutdown::Write);
        let e = l.blocking().accept().unwrap_err();
        kinds.insert(format!("{e}"));
        drop(raw);
    }
    // Different inputs reach different checks of the handshake (before
    // the half-close every input ended in the same EOF).
    assert!(kinds.len() >= 2, "{kinds:?}");
    let t =
        std::thread::spawn(move || Client::connect_blocking(&addr, Some(b"fuzz key")).map(|_| ()));
    l.blocking().accept().unwrap();
    t.join().unwrap().unwrap();
}

// Fault test (issue: a listener no one can stall): ten connections that
// never speak hold a handshake each, for up to its 20 s limit; an honest
// client connecting after them is accepted at once (the handshakes run
// side by side). Tolerance: 10 s, half the limit one silent peer used to
// cost.
fn listener_silent_peers_do_not_stall_an_honest_client() {
    RT.block_on(async {
        let l = Listener::bind("127.0.0.1:0", Some(b"key")).unwrap();
        let Address::Tcp(sa) = l.address().clone() else {
            panic!()
        };
        let silent: Vec<_> = (0..10)
            .map(|_| std::net::TcpStream::connect(sa).unwrap())
            .collect();
        let start = std::time::Instant::now();
        let honest = tokio::spawn(async move {
            let c = Client::connect(sa, Some(b"key")).await?;
            c.send(&"hello").await
        });
        let conn = tokio::time::timeout(Duration::from_secs(10), l.accept())
            .await
            .expect("the honest client waited behind the silent ones")
            .unwrap();
        assert_eq!(conn.recv::<String>().await.unwrap(), "hello");
        honest.await.unwrap().unwrap();
        assert!(start.elapsed() < Duration::from_secs(10));
        drop(silent);
    });
}

/// Sends one byte with `fds` attached (SCM_RIGHTS) over `sock`.
fn send_fds(sock: &std::os::unix::net::UnixStream, fds: &[i32]) -> std::io::Result<()> {
    use std::os::fd::AsRawFd;
    let mut byte = [b'x'];
    let mut iov = libc::iovec {
        iov_base: byte.as_mut_ptr().cast(),
        iov_len: 1,
    };
    let mut cmsg = [0u64; 64];
    // SAFETY: msghdr is plain data; zeroed is a valid empty header.
    let mut msg: libc::msghdr = unsafe { std::mem::zeroed() };
    msg.msg_iov = &mut iov;
    msg.msg_iovlen = 1;
    let bytes = std::mem::size_of_val(fds);
    msg.msg_control = cmsg.as_mut_ptr().cast();
    // SAFETY: CMSG_SPACE is arithmetic.
    msg.msg_controllen = unsafe { libc::CMSG_SPACE(bytes as u32) } as _;
    // SAFETY: the header and its data lie inside `cmsg` (64 words hold
    // the few descriptors this test sends).
    unsafe {
        let hdr = libc::CMSG_FIRSTHDR(&msg);
        (*hdr).cmsg_level = libc::SOL_SOCKET;
        (*hdr).cmsg_type = libc::SCM_RIGHTS;
        (*hdr).cmsg_len = libc::CMSG_LEN(bytes as u32) as _;
        std::ptr::copy_nonoverlapping(fds.as_ptr(), libc::CMSG_DATA(hdr).cast(), fds.len());
    }
    // SAFETY: `msg` points at live buffers.
    let r = unsafe { libc::sendmsg(sock.as_raw_fd(), &msg, 0) };
    if r < 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(())
}

fn open_fds() -> usize {
    std::fs::read_dir("/proc/self/fd").unwrap().count()
}

// Fault test: an unauthenticated peer that pushes descriptors gets none of
// them into the listener's descriptor table; its connection fails and the
// listener serves the next client.
fn listener_no_descriptors_before_authentication() {
    use std::os::fd::AsRawFd;
    RT.block_on(async {
        let l = Listener::bind(Address::unix_temp(), Some(b"key")).unwrap();
        let addr = l.address().clone();
        let raw = raw_unix(&addr);
        let file = std::fs::File::open("/dev/null").unwrap();
        let before = open_fds();
        for _ in 0..50 {
            // Ten copies of one descriptor per message, 500 in all.
            if send_fds(&raw, &[file.as_raw_fd(); 10]).is_err() {
                break;
            }
        }
        raw.shutdown(std::net::Shutdown::Write).unwrap();
        let e = l.accept().await.unwrap_err();
        assert!(format!("{e}").contains("before authentication"), "{e}");
        // The listener holds the accepted socket at most; nothing of the
        // 500 descriptors sent.
        assert!(open_fds() <= before + 3, "{} -> {}", before, open_fds());
        drop(raw);
        let good = tokio::spawn({
            let addr = addr.clone();
            async move { Client::connect(&addr, Some(b"key")).await.map(|_| ()) }
        });
        l.accept().await.unwrap();
        good.await.unwrap().unwrap();
    });
}

// A socket file named as conex names them, of a process that is gone, is
// removed when a new one is bound; one of a live process stays.
fn listener_stale_socket_files_are_removed() {
    let mut child = std::process::Command::new("true").spawn().unwrap();
    let dead = child.id();
    child.wait().unwrap();
    let tmp = std::env::temp_dir();
    let stale = tmp.join(format!("conex-{dead}-00000000deadbeef.sock"));
    let live = tmp.join(format!(
        "conex-{}-00000000deadbeef.sock",
        std::process::id()
    ));
    std::fs::write(&stale, b"").unwrap();
    std::fs::write(&live, b"").unwrap();
    let l = Listener::bind(Address::unix_temp(), None).unwrap();
    assert!(!stale.exists(), "the dead process's socket file stayed");
    assert!(live.exists(), "a live process's socket file was removed");
    std::fs::remove_file(&live).unwrap();
    drop(l);
}

// Python: Listener(backlog=...). Every connection in a backlog of 1 is
// still served, one at a time, and the default takes 200 at once.
fn listener_backlog_is_settable() {
    RT.block_on(async {
        let l = Listener::bind_with_backlog("127.0.0.1:0", None, 1).unwrap();
        let Address::Tcp(sa) = l.address().clone() else {
            panic!()
        };
        let clients = tokio::spawn(async move {
            for i in 0..3u32 {
                let c = Client::connect(sa, None).await.unwrap();
                c.send(&i).await.unwrap();
            }
        });
        // Handshakes run side by side, so accept hands the connections out
        // in the order their handshakes finished, not always the order of
        // the connects.
        let mut got = Vec::new();
        for _ in 0..3u32 {
            let c = l.accept().await.unwrap();
            got.push(c.recv::<u32>().await.unwrap());
        }
        got.sort_unstable();
        assert_eq!(got, [0, 1, 2]);
        clients.await.unwrap();
        let l = Listener::bind("127.0.0.1:0", None).unwrap();
        let Address::Tcp(sa) = l.address().clone() else {
            panic!()
        };
        // As many as the kernel's own cap allows (somaxconn), up to 200:
        // all connect without being accepted (the old fixed 128 did not).
        let cap = std::fs::read_to_string("/proc/sys/net/core/somaxconn")
            .ok()
            .and_then(|s| s.trim().parse::<usize>().ok())
            .unwrap_or(128);
        let n = cap.min(200);
        let raw: Vec<_> = (0..n)
            .map(|_| std::net::TcpStream::connect_timeout(&sa, Duration::from_secs(5)).unwrap())
            .collect();
        assert_eq!(raw.len(), n);
    });
}

/// In the child: 0..100 as u32s, one value no u32 can hold, 100..200, end.
fn send_numbers(c: conex::multiprocessing::Connection) {
    let b = c.blocking();
    for i in 0..100u32 {
        b.send(&i).unwrap();
    }
    b.send(&u64::MAX).unwrap();
    for i in 100..200u32 {
        b.send(&i).unwrap();
    }
}

// Not in CPython: a connection's messages as a Stream: a message that is
// not a `T` is one `Err` and the stream goes on, the stream ends at the
// child's end of file, and a stream dropped half-way loses nothing.
fn a_stream_of_messages_from_a_child() {
    use futures::StreamExt;
    let (ours, theirs) = conex::multiprocessing::pipe(true).unwrap();
    let p = conex::multiprocessing::Process::new(send_numbers, theirs.clone());
    p.start().unwrap();
    drop(theirs);
    let (got, errors) = RT.block_on(async {
        let mut got = Vec::new();
        let mut errors = 0;
        // Half a stream, dropped, then a new one for the rest.
        let mut first = ours.stream::<u32>();
        for _ in 0..50 {
            got.push(first.next().await.unwrap().unwrap());
        }
        drop(first);
        let mut rest = ours.stream::<u32>();
        while let Some(r) = tokio::time::timeout(Duration::from_secs(60), rest.next())
            .await
            .expect("the stream stalled")
        {
            match r {
                Ok(v) => got.push(v),
                Err(conex::multiprocessing::ConnectionError::Decode(_)) => errors += 1,
                Err(e) => panic!("{e}"),
            }
        }
        (got, errors)
    });
    p.blocking().join().unwrap();
    assert_eq!(got, (0..200).collect::<Vec<_>>());
    assert_eq!(errors, 1);
}
