//! multiprocessing against its peers (../shared/ANCHORS.md): Pipe small
//! messages one way (vs a framed tokio UnixStream), round trips (vs a
//! blocking std socketpair ping-pong), send_bytes 1 MiB (vs a raw tokio
//! UnixStream), each in one process and, for conex, also to a child
//! process; 64 MiB through SharedMemory to a child vs two memcpys; and
//! Process start+join by spawn and forkserver vs procspawn; the process
//! pools (ProcessPoolExecutor one call at a time vs a blocking socketpair
//! ping-pong between two processes and procspawn's Pool; map over 10k tiny
//! calls by chunk size vs procspawn's Pool; Pool start-up); a manager's
//! dict get vs a raw Pipe round trip with a child.
//!
//! Its own `main`: children of the bench are the bench binary, diverted
//! by `conex::multiprocessing::init()` (and procspawn's by its `init`).

use std::hint::black_box;
use std::io::{Read, Write};
use std::num::NonZeroUsize;
use std::time::{Duration, Instant};

use conex::multiprocessing::{Connection, Process, SharedMemory, StartMethod, pipe};
use criterion::{Criterion, Throughput, criterion_group};
use tokio::io::{AsyncReadExt, AsyncWriteExt, BufReader, BufWriter};

fn group<'a>(
    c: &'a mut Criterion,
    name: &str,
) -> criterion::BenchmarkGroup<'a, criterion::measurement::WallTime> {
    let mut g = c.benchmark_group(name);
    g.sample_size(10)
        .warm_up_time(Duration::from_millis(300))
        .measurement_time(Duration::from_secs(3));
    g
}

fn rt() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
}

/// A child's side of the one-way bench: receives `n` u64s, acknowledges.
fn sink((conn, n): (Connection, u64)) {
    let b = conn.blocking();
    let mut sum = 0u64;
    for _ in 0..n {
        sum = sum.wrapping_add(b.recv::<u64>().unwrap());
    }
    b.send(&sum).unwrap();
}

/// A child's side of the round-trip bench: echoes until end of file.
fn echo(conn: Connection) {
    let b = conn.blocking();
    while let Ok(x) = b.recv::<u64>() {
        if b.send(&x).is_err() {
            return;
        }
    }
}

fn small_oneway(c: &mut Criterion) {
    let rt = rt();
    let mut g = group(c, "mp_pipe_small_oneway");
    g.throughput(Throughput::Elements(1));
    g.bench_function("conex_pipe_tasks", |b| {
        b.iter_custom(|iters| {
            rt.block_on(async {
                let (a, z) = pipe(true).unwrap();
                let rx = tokio::spawn(async move {
                    let mut sum = 0u64;
                    for _ in 0..iters {
                        sum = sum.wrapping_add(z.recv::<u64>().await.unwrap());
                    }
                    sum
                });
                let start = Instant::now();
                for i in 0..iters {
                    a.send(&i).await.unwrap();
                }
                black_box(rx.await.unwrap());
                start.elapsed()
            })
        })
    });
    g.bench_function("conex_pipe_to_child_process", |b| {
        b.iter_custom(|iters| {
            rt.block_on(async {
                let (a, z) = pipe(true).unwrap();
                let p = Process::new(sink, (z, iters));
                p.start().unwrap();
                // The child is up once it answers.
                a.send(&0u64).await.unwrap();
                let start = Instant::now();
                for i in 1..iters {
                    a.send(&i).await.unwrap();
                }
                black_box(a.recv::<u64>().await.unwrap());
                let t = start.elapsed();
                p.join().await.unwrap();
                t
            })
        })
    });
    g.bench_function("tokio_unixstream_framed", |b| {
        b.iter_custom(|iters| framed_unixstream(&rt, iters))
    });
    g.finish();
}

/// The framed-socket peer: `iters` u64s, length-prefixed, one write per
/// message, from a task to a task over a tokio UnixStream pair.
fn framed_unixstream(rt: &tokio::runtime::Runtime, iters: u64) -> Duration {
    rt.block_on(async {
        let (a, z) = tokio::net::UnixStream::pair().unwrap();
        let rx = tokio::spawn(async move {
            let mut r = BufReader::new(z);
            let mut sum = 0u64;
            let mut hdr = [0u8; 4];
            let mut body = [0u8; 8];
            for _ in 0..iters {
                r.read_exact(&mut hdr).await.unwrap();
                let n = u32::from_le_bytes(hdr) as usize;
                r.read_exact(&mut body[..n]).await.unwrap();
                sum = sum.wrapping_add(u64::from_le_bytes(body));
            }
            sum
        });
        let start = Instant::now();
        let mut w = BufWriter::new(a);
        for i in 0..iters {
            let mut m = [0u8; 12];
            m[..4].copy_from_slice(&8u32.to_le_bytes());
            m[4..].copy_from_slice(&i.to_le_bytes());
            w.write_all(&m).await.unwrap();
            // One message, one send: as a framed sink's send().
            w.flush().await.unwrap();
        }
        black_box(rx.await.unwrap());
        start.elapsed()
    })
}

/// A child's side of the queue bench: takes `n` items, returns their sum.
fn drain_queue((q, n): (conex::multiprocessing::Queue<u64>, u64)) -> u64 {
    let mut sum = 0u64;
    for _ in 0..n {
        sum = sum.wrapping_add(q.blocking().get().unwrap());
    }
    sum
}

fn queue_spsc(c: &mut Criterion) {
    let rt = rt();
    let mut g = group(c, "mp_queue_spsc");
    g.throughput(Throughput::Elements(1));
    g.bench_function("conex_mp_queue_to_child_process", |b| {
        b.iter_custom(|iters| {
            let q = conex::multiprocessing::Queue::<u64>::new(1024).unwrap();
            let p = Process::new(drain_queue, (q.clone(), iters + 1));
            p.start().unwrap();
            // The child is up once it has taken the first item.
            q.blocking().put(0).unwrap();
            while !q.empty() {
                std::hint::spin_loop();
            }
            let start = Instant::now();
            for i in 0..iters {
                q.blocking().put(i).unwrap();
            }
            black_box(p.blocking().result().unwrap());
            start.elapsed()
        })
    });
    g.bench_function("conex_mp_queue_async_tasks", |b| {
        b.iter_custom(|iters| {
            rt.block_on(async {
                let q = conex::multiprocessing::Queue::<u64>::new(1024).unwrap();
                let q2 = q.clone();
                let rx = tokio::spawn(async move {
                    let mut sum = 0u64;
                    for _ in 0..iters {
                        sum = sum.wrapping_add(q2.get().await.unwrap());
                    }
                    sum
                });
                let start = Instant::now();
                for i in 0..iters {
                    q.put(i).await.unwrap();
                }
                black_box(rx.await.unwrap());
                start.elapsed()
            })
        })
    });
    g.bench_function("tokio_unixstream_framed", |b| {
        b.iter_custom(|iters| framed_unixstream(&rt, iters))
    });
    g.finish();
}

fn roundtrip(c: &mut Criterion) {
    let mut g = group(c, "mp_pipe_roundtrip");
    g.throughput(Throughput::Elements(1));
    g.bench_function("conex_blocking_threads", |b| {
        let (a, z) = pipe(true).unwrap();
        let t = std::thread::spawn(move || echo(z));
        b.iter(|| {
            a.blocking().send(&7u64).unwrap();
            black_box(a.blocking().recv::<u64>().unwrap());
        });
        a.close();
        t.join().unwrap();
    });
    g.bench_function("conex_blocking_child_process", |b| {
        let (a, z) = pipe(true).unwrap();
        let p = Process::new(echo, z);
        p.start().unwrap();
        b.iter(|| {
            a.blocking().send(&7u64).unwrap();
            black_box(a.blocking().recv::<u64>().unwrap());
        });
        a.close();
        p.blocking().join().unwrap();
    });
    g.bench_function("std_socketpair_threads", |b| {
        let (mut a, mut z) = std::os::unix::net::UnixStream::pair().unwrap();
        let t = std::thread::spawn(move || {
            let mut m = [0u8; 8];
            while z.read_exact(&mut m).is_ok() {
                if z.write_all(&m).is_err() {
                    return;
                }
            }
        });
        b.iter(|| {
            let mut m = 7u64.to_le_bytes();
            a.write_all(&m).unwrap();
            a.read_exact(&mut m).unwrap();
            black_box(m);
        });
        drop(a);
        t.join().unwrap();
    });
    g.finish();
}

fn bytes_1mib(c: &mut Criterion) {
    const MIB: usize = 1 << 20;
    let rt = rt();
    let mut g = group(c, "mp_pipe_send_bytes_1mib");
    g.throughput(Throughput::Bytes(MIB as u64));
    g.bench_function("conex_send_bytes_tasks", |b| {
        b.iter_custom(|iters| {
            rt.block_on(async {
                let (a, z) = pipe(true).unwrap();
                let rx = tokio::spawn(async move {
                    let mut buf = vec![0u8; MIB];
                    for _ in 0..iters {
                        z.recv_bytes_into(&mut buf).await.unwrap();
                    }
                });
                let data = vec![1u8; MIB];
                let start = Instant::now();
                for _ in 0..iters {
                    a.send_bytes(&data).await.unwrap();
                }
                rx.await.unwrap();
                start.elapsed()
            })
        })
    });
    g.bench_function("tokio_unixstream_raw", |b| {
        b.iter_custom(|iters| {
            rt.block_on(async {
                let (mut a, mut z) = tokio::net::UnixStream::pair().unwrap();
                let rx = tokio::spawn(async move {
                    let mut buf = vec![0u8; MIB];
                    for _ in 0..iters {
                        z.read_exact(&mut buf).await.unwrap();
                    }
                });
                let data = vec![1u8; MIB];
                let start = Instant::now();
                for _ in 0..iters {
                    a.write_all(&data).await.unwrap();
                }
                rx.await.unwrap();
                start.elapsed()
            })
        })
    });
    g.finish();
}

/// A child's side of the shared memory bench: on each request, copies
/// the whole block out (the second memcpy), answers with a checksum.
fn shm_reader((shm, conn): (SharedMemory, Connection)) {
    let mut local = vec![0u8; shm.size()];
    let b = conn.blocking();
    while b.recv::<()>().is_ok() {
        shm.read(0, &mut local).unwrap();
        b.send(&local[local.len() / 2]).unwrap();
    }
}

fn shm_64mib(c: &mut Criterion) {
    const SIZE: usize = 64 << 20;
    let mut g = group(c, "mp_shared_memory_64mib");
    g.throughput(Throughput::Bytes(SIZE as u64));
    g.bench_function("conex_write_here_read_in_child", |b| {
        let mut shm = SharedMemory::create(None, SIZE).unwrap();
        let (a, z) = pipe(true).unwrap();
        let p = Process::new(shm_reader, (SharedMemory::attach(shm.name()).unwrap(), z));
        p.start().unwrap();
        let src = vec![3u8; SIZE];
        let round = || {
            shm.write(0, &src).unwrap();
            a.blocking().send(&()).unwrap();
            black_box(a.blocking().recv::<u8>().unwrap());
        };
        // Criterion calls this closure once per sample, on fresh memory:
        // one untimed round faults every page in on both sides (else each
        // sample also times some 50k first-touch page faults).
        round();
        b.iter(round);
        a.close();
        p.blocking().join().unwrap();
        shm.unlink().unwrap();
    });
    g.bench_function("raw_memfd_fork_child", |b| {
        b.iter_custom(|iters| raw_shm_child(SIZE, iters))
    });
    g.bench_function("two_memcpys_one_process", |b| {
        let src = vec![3u8; SIZE];
        let mut mid = vec![0u8; SIZE];
        let mut dst = vec![0u8; SIZE];
        let mut round = || {
            mid.copy_from_slice(black_box(&src));
            dst.copy_from_slice(black_box(&mid));
            black_box(dst[SIZE / 2]);
        };
        // As above: pages in first, untimed.
        round();
        b.iter(round);
    });
    g.finish();
}

/// The same work with no library: a memfd mapped shared, a forked child
/// that copies it out on each byte it reads from a pipe (only
/// async-signal-safe calls after the fork). Shows what crossing
/// processes costs by itself, apart from conex.
fn raw_shm_child(size: usize, iters: u64) -> Duration {
    // SAFETY: plain system calls on descriptors and mappings made here;
    // the child calls only read, write, mmap, memcpy and _exit.
    unsafe {
        let fd = libc::memfd_create(c"bench".as_ptr(), libc::MFD_CLOEXEC);
        assert!(fd >= 0 && libc::ftruncate(fd, size as libc::off_t) == 0);
        let rw = libc::PROT_READ | libc::PROT_WRITE;
        let shm = libc::mmap(std::ptr::null_mut(), size, rw, libc::MAP_SHARED, fd, 0);
        assert!(shm != libc::MAP_FAILED);
        let shm = std::slice::from_raw_parts_mut(shm.cast::<u8>(), size);
        let (mut go, mut done) = ([0; 2], [0; 2]);
        assert!(libc::pipe(go.as_mut_ptr()) == 0 && libc::pipe(done.as_mut_ptr()) == 0);
        let pid = libc::fork();
        if pid == 0 {
            libc::close(go[1]);
            let flags = libc::MAP_PRIVATE | libc::MAP_ANONYMOUS;
            let local = libc::mmap(std::ptr::null_mut(), size, rw, flags, -1, 0);
            let local = std::slice::from_raw_parts_mut(local.cast::<u8>(), size);
            let mut b = [0u8; 1];
            while libc::read(go[0], b.as_mut_ptr().cast(), 1) == 1 {
                local.copy_from_slice(shm);
                b[0] = local[size / 2];
                libc::write(done[1], b.as_ptr().cast(), 1);
            }
            libc::_exit(0);
        }
        libc::close(go[0]);
        libc::close(done[1]);
        let src = vec![3u8; size];
        let mut round = || {
            shm.copy_from_slice(black_box(&src));
            let mut b = [0u8; 1];
            assert_eq!(libc::write(go[1], b.as_ptr().cast(), 1), 1);
            assert_eq!(libc::read(done[0], b.as_mut_ptr().cast(), 1), 1);
            black_box(b[0]);
        };
        // Fault every page in on both sides before timing.
        round();
        let start = Instant::now();
        for _ in 0..iters {
            round();
        }
        let t = start.elapsed();
        libc::close(go[1]);
        libc::close(done[0]);
        libc::waitpid(pid, std::ptr::null_mut(), 0);
        libc::munmap(shm.as_mut_ptr().cast(), size);
        libc::close(fd);
        t
    }
}

fn lock_uncontended(c: &mut Criterion) {
    let mut g = group(c, "mp_lock_uncontended");
    g.throughput(Throughput::Elements(1));
    let lock = conex::multiprocessing::Lock::new().unwrap();
    g.bench_function("conex_mp_lock_blocking", |b| {
        b.iter(|| {
            lock.blocking().acquire();
            lock.release().unwrap();
        })
    });
    let rt = rt();
    g.bench_function("conex_mp_lock_async", |b| {
        b.iter_custom(|iters| {
            let lock = lock.clone();
            rt.block_on(async move {
                let start = Instant::now();
                for _ in 0..iters {
                    lock.acquire().await;
                    lock.release().unwrap();
                }
                start.elapsed()
            })
        })
    });
    let pl = parking_lot::Mutex::new(0u64);
    g.bench_function("parking_lot_mutex_in_process", |b| {
        b.iter(|| {
            *pl.lock() += 1;
        })
    });
    g.finish();
}

/// 4 tasks on a 2-worker runtime, each taking and releasing the lock in
/// turn with a yield while it holds it (so the others queue): per
/// acquire+release. The cross-process Lock against async_lock's Mutex in
/// one process.
fn lock_contended(c: &mut Criterion) {
    let mut g = group(c, "mp_lock_4_tasks_contending");
    g.throughput(Throughput::Elements(1));
    let rt = rt();
    let lock = conex::multiprocessing::Lock::new().unwrap();
    g.bench_function("conex_mp_lock_async", |b| {
        b.iter_custom(|iters| {
            let per = iters.div_ceil(4);
            rt.block_on(async {
                let start = Instant::now();
                let tasks: Vec<_> = (0..4)
                    .map(|_| {
                        let lock = lock.clone();
                        tokio::spawn(async move {
                            for _ in 0..per {
                                lock.acquire().await;
                                tokio::task::yield_now().await;
                                lock.release().unwrap();
                            }
                        })
                    })
                    .collect();
                for t in tasks {
                    t.await.unwrap();
                }
                start.elapsed()
            })
        })
    });
    let m = std::sync::Arc::new(async_lock::Mutex::new(0u64));
    g.bench_function("async_lock_mutex_in_process", |b| {
        b.iter_custom(|iters| {
            let per = iters.div_ceil(4);
            rt.block_on(async {
                let start = Instant::now();
                let tasks: Vec<_> = (0..4)
                    .map(|_| {
                        let m = m.clone();
                        tokio::spawn(async move {
                            for _ in 0..per {
                                let mut g = m.lock().await;
                                tokio::task::yield_now().await;
                                *g += 1;
                            }
                        })
                    })
                    .collect();
                for t in tasks {
                    t.await.unwrap();
                }
                start.elapsed()
            })
        })
    });
    g.finish();
}

fn nothing(_: ()) {}

fn start_join(c: &mut Criterion) {
    let mut g = group(c, "mp_process_start_join");
    g.throughput(Throughput::Elements(1));
    for (name, m) in [
        ("conex_spawn", StartMethod::Spawn),
        ("conex_forkserver", StartMethod::Forkserver),
    ] {
        g.bench_function(name, |b| {
            b.iter(|| {
                let p = Process::builder().start_method(m).build(nothing, ());
                p.start().unwrap();
                p.blocking().result().unwrap();
            })
        });
    }
    g.bench_function("procspawn_spawn", |b| {
        b.iter(|| procspawn::spawn((), |()| ()).join().unwrap())
    });
    g.finish();
}

fn tiny(x: u64) -> u64 {
    x + 1
}

fn tiny_chunk(xs: Vec<u64>) -> Vec<u64> {
    xs.into_iter().map(tiny).collect()
}

/// The ceiling: a child echoing 8-byte messages on a plain blocking socket.
fn raw_echo(conn: Connection) {
    let mut s = raw_stream(&conn);
    let mut m = [0u8; 8];
    while s.read_exact(&mut m).is_ok() {
        if s.write_all(&m).is_err() {
            return;
        }
    }
}

fn raw_stream(conn: &Connection) -> std::os::unix::net::UnixStream {
    use std::os::fd::AsFd;
    let s = std::os::unix::net::UnixStream::from(conn.as_fd().try_clone_to_owned().unwrap());
    s.set_nonblocking(false).unwrap();
    s
}

fn ppe_roundtrip(c: &mut Criterion) {
    use conex::futures::{Executor, ProcessPoolExecutor};
    let mut g = group(c, "ppe_roundtrip");
    g.throughput(Throughput::Elements(1));
    g.bench_function("conex_ppe2", |b| {
        let pool = ProcessPoolExecutor::new(2).unwrap();
        pool.submit(tiny, 0).unwrap().blocking().result().unwrap();
        let mut i = 0u64;
        b.iter(|| {
            i += 1;
            assert_eq!(pool.submit(tiny, i).unwrap().blocking().result(), Ok(i + 1));
        });
    });
    g.bench_function("procspawn_pool2", |b| {
        let pool = procspawn::Pool::new(2).unwrap();
        let mut i = 0u64;
        b.iter(|| {
            i += 1;
            assert_eq!(pool.spawn(i, tiny).join().unwrap(), i + 1);
        });
    });
    g.bench_function("std_socketpair_two_processes", |b| {
        let (a, z) = pipe(true).unwrap();
        let p = Process::new(raw_echo, z);
        p.start().unwrap();
        let mut s = raw_stream(&a);
        b.iter(|| {
            let mut m = 7u64.to_le_bytes();
            s.write_all(&m).unwrap();
            s.read_exact(&mut m).unwrap();
            black_box(m);
        });
        drop(s);
        a.close();
        p.blocking().join().unwrap();
    });
    g.finish();
}

const BATCH: u64 = 10_000;

fn pool_map(c: &mut Criterion) {
    use conex::futures::{Executor, MapOptions, ProcessPoolExecutor};
    use conex::multiprocessing::Pool;
    let mut g = group(c, "pool_map_10k");
    g.throughput(Throughput::Elements(BATCH));
    for chunk in [1usize, 100, 1250] {
        g.bench_function(format!("conex_ppe2_chunksize{chunk}"), |b| {
            let pool = ProcessPoolExecutor::new(2).unwrap();
            let opts = MapOptions::new().chunksize(std::num::NonZeroUsize::new(chunk));
            b.iter(|| {
                let n = pool
                    .map(tiny, 0..BATCH, opts.clone())
                    .unwrap()
                    .map(Result::unwrap)
                    .count();
                assert_eq!(n as u64, BATCH);
            });
        });
        g.bench_function(format!("conex_pool2_chunksize{chunk}"), |b| {
            let pool = Pool::new(Some(2)).unwrap();
            pool.wait_ready();
            b.iter(|| {
                assert_eq!(
                    pool.map(tiny, 0..BATCH, NonZeroUsize::new(chunk))
                        .unwrap()
                        .len() as u64,
                    BATCH
                )
            });
        });
        g.bench_function(format!("procspawn_pool2_chunksize{chunk}"), |b| {
            let pool = procspawn::Pool::new(2).unwrap();
            b.iter(|| {
                // At most 2000 calls in flight: each holds four descriptors.
                let mut window = std::collections::VecDeque::new();
                let mut n = 0;
                for c in (0..BATCH).collect::<Vec<_>>().chunks(chunk) {
                    if window.len() == 2000 {
                        let h: procspawn::JoinHandle<Vec<u64>> = window.pop_front().unwrap();
                        n += h.join().unwrap().len();
                    }
                    window.push_back(pool.spawn(c.to_vec(), tiny_chunk));
                }
                n += window
                    .into_iter()
                    .map(|h| h.join().unwrap().len())
                    .sum::<usize>();
                assert_eq!(n as u64, BATCH);
            });
        });
    }
    g.finish();
}

fn pool_startup(c: &mut Criterion) {
    use conex::multiprocessing::{Pool, get_context};
    let mut g = group(c, "pool_startup_2_workers");
    g.throughput(Throughput::Elements(1));
    for (name, m) in [
        ("conex_pool2_spawn", StartMethod::Spawn),
        ("conex_pool2_forkserver", StartMethod::Forkserver),
    ] {
        g.bench_function(name, |b| {
            b.iter(|| {
                let pool = Pool::builder()
                    .processes(2)
                    .context(get_context(Some(m)))
                    .build()
                    .unwrap();
                pool.wait_ready();
            })
        });
    }
    g.bench_function("procspawn_pool2", |b| {
        b.iter(|| {
            let pool = procspawn::Pool::new(2).unwrap();
            // procspawn starts its workers lazily: one call each makes them ready.
            let hs: Vec<_> = (0..2u64).map(|i| pool.spawn(i, tiny)).collect();
            hs.into_iter().for_each(|h| drop(h.join()));
        })
    });
    g.finish();
}

fn manager_roundtrip(c: &mut Criterion) {
    let mut g = group(c, "manager_dict_get");
    g.throughput(Throughput::Elements(1));
    g.bench_function("conex_dictproxy_get", |b| {
        let m = conex::multiprocessing::manager().unwrap();
        let d = m.dict::<u64, u64>().unwrap();
        d.blocking().set(&1, &2).unwrap();
        b.iter(|| assert_eq!(d.blocking().get(&1).unwrap(), Some(2)));
    });
    // Async proxies: 64 tasks on a 2-worker runtime each make one get,
    // all in flight on the process's one connection (per-call figure).
    g.throughput(Throughput::Elements(64));
    g.bench_function("conex_dictproxy_get_async_64_tasks", |b| {
        let m = conex::multiprocessing::manager().unwrap();
        let d = m.dict::<u64, u64>().unwrap();
        d.blocking().set(&1, &2).unwrap();
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        b.iter(|| {
            rt.block_on(async {
                let calls: Vec<_> = (0..64)
                    .map(|_| {
                        let d = d.clone();
                        tokio::spawn(async move { d.get(&1).await.unwrap() })
                    })
                    .collect();
                for c in calls {
                    assert_eq!(c.await.unwrap(), Some(2));
                }
            })
        });
    });
    g.throughput(Throughput::Elements(1));
    g.bench_function("conex_pipe_roundtrip_child", |b| {
        let (a, z) = pipe(true).unwrap();
        let p = Process::new(echo, z);
        p.start().unwrap();
        b.iter(|| {
            a.blocking().send(&7u64).unwrap();
            black_box(a.blocking().recv::<u64>().unwrap());
        });
        a.close();
        p.blocking().join().unwrap();
    });
    g.finish();
}

criterion_group!(
    benches,
    manager_roundtrip,
    ppe_roundtrip,
    pool_map,
    pool_startup,
    small_oneway,
    roundtrip,
    bytes_1mib,
    shm_64mib,
    lock_uncontended,
    lock_contended,
    queue_spsc,
    start_join
);

/// procspawn's pool holds four descriptors per queued call: 10k calls in
/// flight need the hard limit, not the usual soft 1024.
fn raise_fd_limit() {
    let mut r = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: get/setrlimit on a valid struct.
    unsafe {
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut r) == 0 {
            r.rlim_cur = r.rlim_max;
            libc::setrlimit(libc::RLIMIT_NOFILE, &r);
        }
    }
}

fn main() {
    conex::multiprocessing::init();
    procspawn::init();
    raise_fd_limit();
    benches();
    Criterion::default().configure_from_args().final_summary();
}
