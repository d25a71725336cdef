//! Thread, Timer, Local and the module functions, from CPython's
//! Lib/test/test_threading.py and test_threading_local.py.

use std::sync::atomic::{AtomicUsize, Ordering::SeqCst};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use conex::threading::*;

use crate::face::{Face, assert_timeout};

// --------------------------------------------------------- through the faces

// ThreadTests.test_join_from_self / ThreadingExceptionTests
// test_joining_current_thread, test_joining_inactive_thread; and join of
// both kinds of thread from each face.
pub async fn join_semantics<F: Face>() {
    let unstarted = Thread::builder().build(async {});
    assert_eq!(F::join(&unstarted).await, Err(JoinError::NotStarted));
    // The test's own thread is a dummy (conex did not start it).
    let me = current_thread();
    assert_eq!(F::join(&me).await, Err(JoinError::DummyThread));

    let hits = Arc::new(AtomicUsize::new(0));
    let (h1, h2) = (hits.clone(), hits.clone());
    let task = Thread::spawn(async move {
        h1.fetch_add(1, SeqCst);
    });
    let os = Thread::spawn_blocking(move || {
        h2.fetch_add(1, SeqCst);
    });
    F::join(&task).await.unwrap();
    F::join(&os).await.unwrap();
    assert_eq!(hits.load(SeqCst), 2);
    assert!(!task.is_alive() && !os.is_alive());
    // Joining again is fine.
    F::join(&task).await.unwrap();

    // A thread joining itself from the inside is refused at once.
    let inner = Thread::builder().build(async {
        let me = current_thread();
        me.join().await
    });
    inner.start().unwrap();
    assert_eq!(inner.join().await.unwrap(), Err(JoinError::CurrentThread));
}

// join(timeout) returns with the thread still alive.
pub async fn join_timeout_semantics<F: Face>() {
    let release = Event::new();
    let r2 = release.clone();
    let t = Thread::spawn_blocking(move || r2.blocking().wait());
    let start = Instant::now();
    assert_eq!(
        F::join_timeout(&t, Duration::from_millis(200)).await,
        Ok(false),
        "still alive: Ok(false), as Python's join(timeout) leaves is_alive()"
    );
    assert_timeout(start.elapsed(), Duration::from_millis(200));
    assert!(t.is_alive());
    release.set();
    assert_eq!(F::join_timeout(&t, Duration::from_secs(30)).await, Ok(true));
    assert!(!t.is_alive());
}

// A target's value comes back through the JoinHandle; a panic goes to the
// excepthook and makes join fail (ExceptHookTests.test_excepthook).
pub async fn join_value_and_panic<F: Face>() {
    let v = F::spawn(async { 21 * 2 }).await;
    assert_eq!(v, 42);
    let t = Thread::builder()
        .name("doomed")
        .spawn_blocking(|| -> u8 { panic!("target failed") })
        .unwrap();
    assert_eq!(
        F::join(&t).await,
        Err(JoinError::Panicked("target failed".into()))
    );
}

// ------------------------------------------------------------- thread basics

// ThreadTests.test_various_ops: names, idents, is_alive, repr.
#[test]
fn various_ops() {
    let t = Thread::builder().name("worker-7").build_blocking(|| 7);
    assert_eq!(t.name(), "worker-7");
    assert_eq!(t.ident(), None, "no ident before start");
    assert!(!t.is_alive());
    assert!(format!("{:?}", *t).contains("initial"));
    t.start().unwrap();
    assert!(t.ident().is_some());
    t.set_name("renamed");
    assert_eq!(t.name(), "renamed");
    assert_eq!(t.blocking().join().unwrap(), 7);

    let default = Thread::spawn_blocking(|| ());
    assert!(default.name().starts_with("Thread-"));
    let (a, b) = (Thread::spawn(async {}), Thread::spawn(async {}));
    assert_ne!(a.ident(), b.ident());
    assert!(a.is_task() && !default.is_task());
    default.blocking().join().unwrap();
}

// ThreadingExceptionTests.test_start_thread_again
#[test]
fn start_twice() {
    let t = Thread::builder().build_blocking(|| ());
    t.start().unwrap();
    assert!(matches!(t.start(), Err(StartError::AlreadyStarted)));
    t.blocking().join().unwrap();
    let spawned = Thread::spawn_blocking(|| ());
    assert!(matches!(spawned.start(), Err(StartError::AlreadyStarted)));
}

// ThreadingExceptionTests.test_daemonize_active_thread, test_daemon_param
#[test]
fn daemon_flag() {
    let t = Thread::builder().daemon(true).build(async {});
    assert!(t.daemon());
    t.set_daemon(false).unwrap();
    assert!(!t.daemon());
    t.start().unwrap();
    assert_eq!(t.set_daemon(true), Err(AlreadyStarted));
    // Inherited from the creating thread: the main thread is not a daemon,
    // a dummy (foreign) thread is.
    assert!(!main_thread().daemon());
    let from_daemon = Thread::builder()
        .daemon(true)
        .spawn_blocking(|| Thread::builder().build(async {}).daemon())
        .unwrap();
    assert!(from_daemon.blocking().join().unwrap());
}

// ThreadTests.test_ident_of_no_threading_threads, test_main_thread,
// MiscTestCase for current_thread in foreign threads.
#[test]
fn current_main_and_dummy_threads() {
    let main = main_thread();
    assert_eq!(main.name(), "MainThread");
    assert!(main.is_alive());
    assert!(enumerate().contains(&main));
    // A thread conex did not start gets a dummy Thread, listed while it lives.
    let (tx, rx) = std::sync::mpsc::channel();
    let (done_tx, done_rx) = std::sync::mpsc::channel::<()>();
    let h = std::thread::spawn(move || {
        let me = current_thread();
        tx.send((me.clone(), get_ident())).unwrap();
        done_rx.recv().unwrap();
        me
    });
    let (dummy, ident) = rx.recv().unwrap();
    assert_eq!(dummy.ident(), Some(ident));
    assert!(dummy.name().starts_with("Dummy-"));
    assert!(dummy.daemon());
    assert!(enumerate().contains(&dummy));
    assert_ne!(dummy, main);
    // _DummyThread.join: "cannot join a dummy thread".
    assert_eq!(dummy.blocking().join(), Err(JoinError::DummyThread));
    done_tx.send(()).unwrap();
    h.join().unwrap();
    assert!(
        !enumerate().contains(&dummy),
        "a dummy leaves with its thread"
    );
    // Inside a conex Thread, current_thread is that Thread.
    let t = Thread::spawn_blocking(current_thread);
    let name = t.name();
    let me = t.blocking().join().unwrap();
    assert_eq!(me.name(), name);
}

// ThreadTests.test_enumerate_after_join, active_count
#[test]
fn enumerate_and_active_count() {
    let release = Event::new();
    let mut ts = Vec::new();
    for _ in 0..3 {
        let r = release.clone();
        ts.push(Thread::spawn(async move { r.wait().await }));
    }
    let listed = enumerate();
    for t in &ts {
        assert!(listed.contains(t));
    }
    assert!(active_count() >= 4);
    release.set();
    for t in ts.iter() {
        t.thread().blocking().join().unwrap();
        assert!(!enumerate().contains(t));
    }
}

// ThreadTests.test_native_id, test_get_native_id
#[test]
fn native_ids() {
    let os = Thread::spawn_blocking(get_native_id);
    let reported = os.native_id();
    let inside = os.blocking().join().unwrap();
    assert_eq!(reported, Some(inside));
    assert_ne!(inside, get_native_id());
    let task = Thread::spawn(async {});
    assert_eq!(task.native_id(), None, "a task has no OS thread of its own");
    if cfg!(target_os = "linux") {
        assert_eq!(main_thread().native_id(), Some(std::process::id() as u64));
    }
}

// ThreadTests.test_various_ops_small_stack / large_stack, and stack_size's
// ValueError.
#[test]
fn stack_size_setting() {
    assert!(matches!(set_stack_size(4096), Err(StackSizeError(4096))));
    let old = set_stack_size(64 << 20).unwrap();
    assert_eq!(stack_size(), 64 << 20);
    // A deep recursion that needs more than the 2 MiB default.
    let t = Thread::spawn_blocking(|| {
        fn depth(n: u32) -> u32 {
            let pad = std::hint::black_box([0u8; 1024]);
            if n == 0 {
                pad[0] as u32
            } else {
                depth(n - 1) + 1
            }
        }
        depth(3000)
    });
    set_stack_size(old).unwrap();
    assert_eq!(t.blocking().join().unwrap(), 3000);
    let big = Thread::builder()
        .stack_size(64 << 20)
        .spawn_blocking(|| 1)
        .unwrap();
    assert_eq!(big.blocking().join().unwrap(), 1);
}

// ExceptHookTests.test_custom_excepthook, test_custom_excepthook_fail,
// test_excepthook_thread_None; settrace/setprofile as start hooks.
#[test]
fn hooks() {
    static LOCK: Mutex<()> = Mutex::new(());
    let _serial = LOCK.lock().unwrap();
    let seen = Arc::new(Mutex::new(Vec::new()));
    let s2 = seen.clone();
    set_excepthook(move |args| {
        s2.lock()
            .unwrap()
            .push((args.thread().name(), args.message().to_owned()))
    });
    let t = Thread::builder()
        .name("hooked")
        .spawn(async { panic!("in a task") });
    assert!(matches!(t.blocking().join(), Err(JoinError::Panicked(_))));
    assert!(
        seen.lock()
            .unwrap()
            .contains(&("hooked".to_owned(), "in a task".to_owned()))
    );
    // A hook that panics falls back to the default one; the thread's
    // outcome is unchanged.
    set_excepthook(|_| panic!("hook broken"));
    let t = Thread::spawn_blocking(|| -> () { panic!("second") });
    assert_eq!(
        t.thread().blocking().join(),
        Err(JoinError::Panicked("second".into()))
    );
    reset_excepthook();

    let started = Arc::new(Mutex::new(Vec::new()));
    let (a, b) = (started.clone(), started.clone());
    settrace(Some(Arc::new(move |t: &Thread| {
        a.lock().unwrap().push(format!("trace {}", t.name()))
    })));
    setprofile(Some(Arc::new(move |t: &Thread| {
        b.lock().unwrap().push(format!("profile {}", t.name()))
    })));
    assert!(gettrace().is_some() && getprofile().is_some());
    let t = Thread::builder()
        .name("traced")
        .spawn_blocking(|| current_thread().name())
        .unwrap();
    assert_eq!(t.blocking().join().unwrap(), "traced");
    settrace(None);
    setprofile(None);
    let log = started.lock().unwrap();
    assert!(log.contains(&"trace traced".to_owned()));
    assert!(log.contains(&"profile traced".to_owned()));
}

// The documented wait for non-daemon threads at exit (Python's
// threading._shutdown): non-daemon threads are joined, daemon ones are not.
#[test]
fn join_non_daemon_waits_for_non_daemon_only() {
    let daemon_release = Event::new();
    let d2 = daemon_release.clone();
    let daemon = Thread::builder()
        .daemon(true)
        .spawn(async move { d2.wait().await });
    let finished = Arc::new(AtomicUsize::new(0));
    let f2 = finished.clone();
    let worker = Thread::builder().daemon(false).spawn_blocking(move || {
        std::thread::sleep(Duration::from_millis(50));
        // Threads started meanwhile are waited for too.
        let f3 = f2.clone();
        Thread::builder().daemon(false).spawn(async move {
            tokio::time::sleep(Duration::from_millis(50)).await;
            f3.fetch_add(1, SeqCst);
        });
        f2.fetch_add(1, SeqCst);
    });
    join_non_daemon_blocking();
    assert_eq!(finished.load(SeqCst), 2);
    assert!(!worker.unwrap().is_alive());
    assert!(daemon.is_alive(), "daemon threads are not waited for");
    daemon_release.set();
}

// Task-backed Threads started outside any runtime run on conex's own.
#[test]
fn task_thread_without_runtime() {
    assert!(tokio::runtime::Handle::try_current().is_err());
    let t = Thread::spawn(async {
        tokio::time::sleep(Duration::from_millis(5)).await;
        tokio::runtime::Handle::current().runtime_flavor()
    });
    assert_eq!(
        t.blocking().join().unwrap(),
        tokio::runtime::RuntimeFlavor::MultiThread
    );
}

// A task Thread whose runtime shuts down is reported as cancelled, not left
// alive forever.
#[test]
fn task_thread_cancelled_by_runtime_shutdown() {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let t = rt.block_on(async { Thread::spawn(std::future::pending::<()>()) });
    assert!(t.is_alive());
    drop(rt);
    assert_eq!(t.thread().blocking().join(), Err(JoinError::Cancelled));
    assert!(!t.is_alive());
}

// ------------------------------------------------------------------- Timer

// TimerTests: a timer fires once after its interval; a cancelled one never.
#[test]
fn timer_fires_and_cancels() {
    let fired = Arc::new(AtomicUsize::new(0));
    let f2 = fired.clone();
    let t = Timer::new(Duration::from_millis(100), move || {
        f2.fetch_add(1, SeqCst);
    });
    assert!(!t.is_alive());
    let start = Instant::now();
    t.start().unwrap();
    assert!(t.is_alive());
    t.blocking().join().unwrap();
    assert_timeout(start.elapsed(), Duration::from_millis(100));
    assert_eq!(fired.load(SeqCst), 1);
    assert!(t.finished().is_set());

    let f3 = fired.clone();
    let c = Timer::new(Duration::from_secs(3600), move || {
        f3.fetch_add(1, SeqCst);
    });
    c.start().unwrap();
    c.cancel();
    c.blocking().join().unwrap();
    assert_eq!(fired.load(SeqCst), 1);
    assert_eq!(c.interval(), Duration::from_secs(3600));
}

// ------------------------------------------------------------------- Local

// test_threading_local: values are per Thread (task-backed and OS-backed
// alike), the initializer runs once per thread (test_derived), values are
// dropped when the thread ends (test_local_refs).
#[test]
fn local_per_thread() {
    struct Counted(Arc<AtomicUsize>);
    impl Drop for Counted {
        fn drop(&mut self) {
            self.0.fetch_add(1, SeqCst);
        }
    }
    let inits = Arc::new(AtomicUsize::new(0));
    let drops = Arc::new(AtomicUsize::new(0));
    let (i2, d2) = (inits.clone(), drops.clone());
    let local = Local::new(move || {
        i2.fetch_add(1, SeqCst);
        (Counted(d2.clone()), 0u32)
    });
    let mut ts = Vec::new();
    for n in 0..5u32 {
        let l = local.clone();
        let body = move || {
            for _ in 0..=n {
                l.with(|(_, v)| *v += 1);
            }
            l.with(|(_, v)| *v)
        };
        ts.push(if n % 2 == 0 {
            Thread::spawn(async move { body() })
        } else {
            Thread::spawn_blocking(body)
        });
    }
    for (n, t) in ts.into_iter().enumerate() {
        assert_eq!(t.blocking().join().unwrap(), n as u32 + 1);
    }
    assert_eq!(inits.load(SeqCst), 5, "one initialization per thread");
    assert_eq!(
        drops.load(SeqCst),
        5,
        "values dropped when their thread ends"
    );
    local.with(|(_, v)| *v = 9);
    assert_eq!(local.with(|(_, v)| *v), 9);
    assert!(local.remove().is_some());
    assert_eq!(local.with(|(_, v)| *v), 0);
    drop(local);
}

// test_threading_local.test_local_refs: dropping the local drops every
// thread's value.
#[test]
fn local_dropped_with_its_values() {
    let drops = Arc::new(AtomicUsize::new(0));
    struct Counted(Arc<AtomicUsize>);
    impl Drop for Counted {
        fn drop(&mut self) {
            self.0.fetch_add(1, SeqCst);
        }
    }
    let d2 = drops.clone();
    let local = Local::new(move || Counted(d2.clone()));
    let release = Event::new();
    let (l2, r2) = (local.clone(), release.clone());
    let t = Thread::spawn_blocking(move || {
        l2.with(|_| ());
        r2.blocking().wait();
    });
    local.with(|_| ());
    wait_until_blocking(|| drops.load(SeqCst) == 0 && t.is_alive());
    let before = drops.load(SeqCst);
    drop(local);
    // The other thread still holds a clone of the handle until it ends.
    release.set();
    t.blocking().join().unwrap();
    assert_eq!(drops.load(SeqCst), before + 2);
}

fn wait_until_blocking(mut f: impl FnMut() -> bool) {
    let start = Instant::now();
    while !f() {
        assert!(start.elapsed() < Duration::from_secs(20));
        std::thread::sleep(Duration::from_millis(1));
    }
}

// -------------------------------------------------------------- the facades

// A blocking facade inside a multi-thread runtime's task works (it steps
// aside with block_in_place); on the thread driving a current-thread
// runtime it refuses with a message that names the fix.
#[test]
fn facade_inside_runtimes() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let ev = Event::new();
    let e2 = ev.clone();
    rt.block_on(async move {
        let waiter =
            tokio::spawn(async move { e2.blocking().wait_timeout(Duration::from_secs(30)) });
        tokio::time::sleep(Duration::from_millis(20)).await;
        ev.set();
        assert!(waiter.await.unwrap());
    });

    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let lock = Lock::new();
    lock.try_acquire();
    let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        rt.block_on(async { lock.blocking().acquire() })
    }));
    let msg = r.unwrap_err();
    let msg = msg
        .downcast_ref::<String>()
        .map(String::as_str)
        .unwrap_or_default();
    assert!(
        msg.contains("current_thread") && msg.contains(".await"),
        "{msg}"
    );
    // Where nothing needs to wait, the facade simply works there.
    lock.release().unwrap();
    rt.block_on(async { lock.blocking().acquire() });
    // And from spawn_blocking on that runtime, waiting is fine.
    let l2 = lock.clone();
    rt.block_on(async move {
        let w = tokio::task::spawn_blocking(move || {
            l2.blocking().acquire_timeout(Duration::from_secs(30))
        });
        tokio::time::sleep(Duration::from_millis(10)).await;
        lock.release().unwrap();
        assert!(w.await.unwrap());
    });
}

// _thread: start_new_thread runs a daemon OS thread and returns its ident;
// interrupt_main simulates a signal only where the program handles it.
#[test]
fn thread_module_low_level() {
    use conex::_thread;
    let lock = _thread::allocate_lock();
    assert!(lock.try_acquire());
    let (l2, seen) = (lock.clone(), Arc::new(AtomicUsize::new(0)));
    let s2 = seen.clone();
    let ident = _thread::start_new_thread(move || {
        s2.store(get_ident() as usize, SeqCst);
        l2.release().unwrap();
    })
    .unwrap();
    lock.blocking().acquire();
    assert_eq!(seen.load(SeqCst) as u64, ident);
    assert_eq!(
        _thread::interrupt_main_signal(-5),
        Err(_thread::InterruptError::InvalidSignal(-5))
    );
}

#[cfg(unix)]
#[test]
fn interrupt_main_simulates_handled_signals_only() {
    use conex::_thread;
    // SIGUSR2 keeps its default disposition (terminate): like Python,
    // interrupt_main does nothing then, and this process survives.
    _thread::interrupt_main_signal(libc::SIGUSR2).unwrap();
    // A handled signal is delivered to its handler.
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        let mut usr1 =
            tokio::signal::unix::signal(tokio::signal::unix::SignalKind::user_defined1()).unwrap();
        _thread::interrupt_main_signal(libc::SIGUSR1).unwrap();
        tokio::time::timeout(Duration::from_secs(30), usr1.recv())
            .await
            .expect("the handler saw the simulated signal");
    });
}

// The conventions of DESIGN.md section 3: every handle is Clone + Send +
// Sync + Debug, every future is Send (checked at compile time).
#[test]
fn handles_and_futures_are_send_sync_debug() {
    fn handle<T: Clone + Send + Sync + std::fmt::Debug + 'static>() {}
    fn fut<F: std::future::Future + Send>(_: F) {}
    handle::<Lock>();
    handle::<RLock>();
    handle::<Condition>();
    handle::<Condition<Lock>>();
    handle::<Semaphore>();
    handle::<BoundedSemaphore>();
    handle::<Event>();
    handle::<Barrier>();
    handle::<Timer>();
    handle::<Thread>();
    handle::<Local<u8>>();
    let (l, r, c, s, e, b, t) = (
        Lock::new(),
        RLock::new(),
        Condition::new(),
        Semaphore::new(1),
        Event::new(),
        Barrier::new(1),
        Thread::builder().build(async {}),
    );
    let d = Duration::from_secs(1);
    fut(l.acquire());
    fut(l.acquire_timeout(d));
    fut(l.lock());
    fut(l.lock_timeout(d));
    fut(r.acquire());
    fut(r.lock());
    fut(r.acquire_timeout(d));
    fut(r.lock_timeout(d));
    fut(c.acquire());
    fut(c.lock());
    fut(async {
        let g = c.lock().await;
        let g = c.wait(g).await.unwrap();
        let (g, _) = c.wait_timeout(g, d).await.unwrap();
        let g = c.wait_for(g, || true).await.unwrap();
        let _ = c.wait_for_timeout(g, d, || true).await.unwrap();
    });
    fut(s.acquire());
    fut(s.permit());
    fut(s.acquire_timeout(d));
    fut(s.permit_timeout(d));
    fut(e.wait());
    fut(e.wait_timeout(d));
    fut(b.wait());
    fut(b.wait_timeout(d));
    fut(t.thread().join());
    fut(t.thread().join_timeout(d));
    fut(join_non_daemon());
    fut(t.join());
}
