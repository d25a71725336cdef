//! Managers and proxies, derived from CPython's _test_multiprocessing.py
//! manager tests (_TestContainers, _TestMyManager, _TestRemoteManager,
//! _TestManagerRestart, the synchronize tests run with a manager). Real
//! server and client processes; fault tests kill them.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use conex::multiprocessing::managers::{
    BaseManager, DictProxy, EventProxy, ListProxy, LockProxy, ManagerError, Proxy, QueueProxy,
    SyncManager, manager,
};
use conex::multiprocessing::{Address, Client, Connection, ConnectionError, Process, Queue, pipe};

use crate::Test;

pub(crate) const TESTS: &[Test] = &[
    ("manager::dict_list_namespace", dict_list_namespace),
    ("manager::nested_proxies", nested_proxies),
    ("manager::proxies_cross_processes", proxies_cross_processes),
    ("manager::value_and_array", value_and_array),
    ("manager::queues", queues),
    ("manager::locks_and_semaphores", locks_and_semaphores),
    ("manager::condition_event_barrier", condition_event_barrier),
    ("manager::registered_type", registered_type),
    ("manager::start_with_initializer", start_with_initializer),
    ("manager::remote_manager_over_tcp", remote_manager_over_tcp),
    (
        "manager::remote_manager_between_netns",
        remote_manager_between_netns,
    ),
    (
        "manager::dead_client_releases_its_lock",
        dead_client_releases_lock,
    ),
    ("manager::dead_server_is_an_error", dead_server_is_an_error),
    (
        "manager::malformed_requests_fail_that_connection",
        malformed_requests,
    ),
    ("manager::shutdown_and_drop", shutdown_and_drop),
    (
        "manager::thousand_tasks_share_one_connection",
        thousand_tasks_share_one_connection,
    ),
    ("manager::locks_belong_to_tasks", locks_belong_to_tasks),
    (
        "manager::condition_wait_releases_for_its_task",
        condition_wait_releases_for_its_task,
    ),
    (
        "manager::dropped_waits_take_nothing",
        dropped_waits_take_nothing,
    ),
    (
        "manager::dropped_winners_give_back",
        dropped_winners_give_back,
    ),
    (
        "manager::dead_server_fails_every_waiting_task",
        dead_server_fails_every_waiting_task,
    ),
    ("manager::managed_pool", managed_pool),
    (
        "manager::managed_pool_refuses_another_build",
        managed_pool_refuses_another_build,
    ),
];

fn remote(e: ManagerError, type_name: &str) {
    assert!(e.is(type_name), "expected a remote {type_name}, got {e:?}");
}

// _TestContainers.test_dict, test_list, test_namespace
fn dict_list_namespace() {
    let m = manager().unwrap();
    let d = m.dict::<String, i64>().unwrap();
    assert!(d.blocking().is_empty().unwrap());
    for (i, k) in ["b", "a", "c"].iter().enumerate() {
        d.blocking().set(&k.to_string(), &(i as i64)).unwrap();
    }
    assert_eq!(d.blocking().len().unwrap(), 3);
    assert_eq!(
        d.blocking().keys().unwrap(),
        ["b", "a", "c"],
        "insertion order"
    );
    assert_eq!(d.blocking().get(&"a".into()).unwrap(), Some(1));
    assert_eq!(d.blocking().get(&"zz".into()).unwrap(), None);
    remote(d.blocking().getitem(&"zz".into()).unwrap_err(), "KeyError");
    assert!(d.blocking().contains(&"c".into()).unwrap());
    d.blocking().del(&"b".into()).unwrap();
    remote(d.blocking().del(&"b".into()).unwrap_err(), "KeyError");
    assert_eq!(d.blocking().setdefault(&"a".into(), &9).unwrap(), 1);
    assert_eq!(d.blocking().setdefault(&"n".into(), &9).unwrap(), 9);
    assert_eq!(d.blocking().popitem().unwrap(), Some(("n".into(), 9)));
    assert_eq!(d.blocking().pop(&"c".into()).unwrap(), Some(2));
    let more = [("x".to_string(), 10i64), ("y".to_string(), 11)];
    d.blocking()
        .update(more.iter().map(|(k, v)| (k, v)))
        .unwrap();
    assert_eq!(
        d.blocking().items().unwrap(),
        vec![("a".into(), 1), ("x".into(), 10), ("y".into(), 11)]
    );
    assert_eq!(d.blocking().values().unwrap(), [1, 10, 11]);
    d.blocking().clear().unwrap();
    assert_eq!(d.blocking().len().unwrap(), 0);
    let d2 = m.dict_from([(&1u8, &"one".to_string())]).unwrap();
    assert_eq!(d2.blocking().items().unwrap(), vec![(1, "one".to_string())]);

    let l = m.list_from(&[1i32, 2, 3]).unwrap();
    l.blocking().append(&4).unwrap();
    l.blocking().extend(&[5, 6]).unwrap();
    l.blocking().insert(0, &0).unwrap();
    assert_eq!(l.blocking().to_vec().unwrap(), [0, 1, 2, 3, 4, 5, 6]);
    assert_eq!(l.blocking().get(-1).unwrap(), 6);
    remote(l.blocking().get(7).unwrap_err(), "IndexError");
    l.blocking().set(1, &10).unwrap();
    assert_eq!(l.blocking().pop(None).unwrap(), 6);
    assert_eq!(l.blocking().pop(Some(0)).unwrap(), 0);
    assert_eq!(l.blocking().index(&10).unwrap(), 0);
    remote(l.blocking().index(&99).unwrap_err(), "ValueError");
    l.blocking().remove(&10).unwrap();
    l.blocking().reverse().unwrap();
    assert_eq!(l.blocking().to_vec().unwrap(), [5, 4, 3, 2]);
    assert_eq!(l.blocking().count(&4).unwrap(), 1);
    l.blocking().del(0).unwrap();
    assert!(l.blocking().contains(&2).unwrap());
    l.blocking().clear().unwrap();
    remote(l.blocking().pop(None).unwrap_err(), "IndexError");

    let ns = m.namespace().unwrap();
    ns.blocking().set("name", &"Bob".to_string()).unwrap();
    ns.blocking().set("job", &42u32).unwrap();
    assert_eq!(ns.blocking().get::<String>("name").unwrap(), "Bob");
    assert_eq!(ns.blocking().names().unwrap(), ["job", "name"]);
    ns.blocking().del("job").unwrap();
    remote(
        ns.blocking().get::<u32>("job").unwrap_err(),
        "AttributeError",
    );
}

// _TestContainers.test_dict_proxy_nested, test_list_proxy_in_list: a
// proxy stored in a container reaches the same object when taken out
fn nested_proxies() {
    let m = manager().unwrap();
    let inner = m.list_from(&[1u32, 2]).unwrap();
    let outer = m.dict::<String, ListProxy<u32>>().unwrap();
    outer.blocking().set(&"xs".into(), &inner).unwrap();
    let again = outer.blocking().getitem(&"xs".into()).unwrap();
    again.blocking().append(&3).unwrap();
    assert_eq!(
        inner.blocking().to_vec().unwrap(),
        [1, 2, 3],
        "the same list"
    );
    let lists = m.list::<ListProxy<u32>>().unwrap();
    lists.blocking().append(&inner).unwrap();
    lists
        .blocking()
        .get(0)
        .unwrap()
        .blocking()
        .append(&4)
        .unwrap();
    assert_eq!(inner.blocking().len().unwrap(), 4);
}

fn bump((d, l, n): (DictProxy<u32, u32>, ListProxy<u32>, u32)) {
    d.blocking().set(&n, &(n * 10)).unwrap();
    l.blocking().append(&n).unwrap();
}

fn from_pipe(c: Connection) {
    let (d, n): (DictProxy<u32, u32>, u32) = c.blocking().recv().unwrap();
    d.blocking().set(&n, &(n * 10)).unwrap();
}

fn from_queue(q: Queue<(DictProxy<u32, u32>, u32)>) {
    let (d, n) = q.blocking().get().unwrap();
    d.blocking().set(&n, &(n * 10)).unwrap();
}

// _TestContainers with processes (test_dict_proxy from children): a proxy
// passed as an argument, over a Pipe, or through a Queue
fn proxies_cross_processes() {
    let m = manager().unwrap();
    let d = m.dict::<u32, u32>().unwrap();
    let l = m.list::<u32>().unwrap();
    let ps: Vec<_> = (0..3)
        .map(|n| Process::new(bump, (d.clone(), l.clone(), n)))
        .collect();
    ps.iter().for_each(|p| p.start().unwrap());
    ps.iter().for_each(|p| p.blocking().join().unwrap());
    assert!(ps.iter().all(|p| p.exitcode() == Some(0)));
    let (a, b) = pipe(true).unwrap();
    let p = Process::new(from_pipe, b);
    p.start().unwrap();
    a.blocking().send(&(d.clone(), 7u32)).unwrap();
    p.blocking().join().unwrap();
    let q = Queue::new(0).unwrap();
    q.blocking().put((d.clone(), 8u32)).unwrap();
    let p = Process::new(from_queue, q);
    p.start().unwrap();
    p.blocking().join().unwrap();
    let mut keys = d.blocking().keys().unwrap();
    keys.sort();
    assert_eq!(keys, [0, 1, 2, 7, 8]);
    assert_eq!(d.blocking().get(&8).unwrap(), Some(80));
    let mut xs = l.blocking().to_vec().unwrap();
    xs.sort();
    assert_eq!(xs, [0, 1, 2]);
}

// _TestValue / _TestArray with a manager
fn value_and_array() {
    let m = manager().unwrap();
    let v = m.value(&1.5f64).unwrap();
    v.blocking().set(&2.5).unwrap();
    assert_eq!(v.blocking().get().unwrap(), 2.5);
    let a = m.array(&[1u8, 2, 3]).unwrap();
    assert_eq!(a.blocking().len().unwrap(), 3);
    a.blocking().set(-1, &9).unwrap();
    assert_eq!(a.blocking().get(2).unwrap(), 9);
    remote(a.blocking().set(3, &1).unwrap_err(), "IndexError");
    assert_eq!(a.blocking().to_vec().unwrap(), [1, 2, 9]);
}

fn consume(q: QueueProxy<u32>) -> u32 {
    let mut sum = 0;
    loop {
        let x = q.blocking().get().unwrap();
        q.blocking().task_done().unwrap();
        if x == 0 {
            return sum;
        }
        sum += x;
    }
}

// _TestQueue with a manager: Empty/Full, timeouts, task_done/join across
// processes
fn queues() {
    let m = manager().unwrap();
    let q = m.queue::<u32>(2).unwrap();
    remote(q.blocking().get_nowait().unwrap_err(), "Empty");
    let t = Instant::now();
    remote(
        q.blocking()
            .get_timeout(Duration::from_millis(100))
            .unwrap_err(),
        "Empty",
    );
    assert!(t.elapsed() >= Duration::from_millis(60));
    q.blocking().put(&1).unwrap();
    q.blocking().put(&2).unwrap();
    assert!(q.blocking().full().unwrap());
    remote(q.blocking().put_nowait(&3).unwrap_err(), "Full");
    remote(
        q.blocking()
            .put_timeout(&3, Duration::from_millis(50))
            .unwrap_err(),
        "Full",
    );
    assert_eq!(q.blocking().qsize().unwrap(), 2);
    assert_eq!(q.blocking().get().unwrap(), 1);
    assert_eq!(q.blocking().get().unwrap(), 2);
    assert!(q.blocking().empty().unwrap());

    let jq = m.joinable_queue::<u32>(0).unwrap();
    let p = Process::new(consume, jq.clone());
    p.start().unwrap();
    for x in [5, 6, 7, 0] {
        jq.blocking().put(&x).unwrap();
    }
    jq.blocking().join().unwrap();
    assert_eq!(p.blocking().result().unwrap(), 18);
    remote(jq.blocking().task_done().unwrap_err(), "ValueError");
}

// _TestLock (test_lock, test_rlock), _TestSemaphore with a manager
fn locks_and_semaphores() {
    let m = manager().unwrap();
    let lock = m.lock().unwrap();
    assert!(lock.blocking().try_acquire().unwrap());
    assert!(lock.blocking().locked().unwrap());
    assert!(!lock.blocking().try_acquire().unwrap());
    assert!(
        !lock
            .blocking()
            .acquire_timeout(Duration::from_millis(50))
            .unwrap()
    );
    lock.blocking().release().unwrap();
    remote(lock.blocking().release().unwrap_err(), "RuntimeError");

    let r = m.rlock().unwrap();
    r.blocking().acquire().unwrap();
    r.blocking().acquire().unwrap();
    // Another thread (its own connection) cannot take it.
    let r2 = r.clone();
    let other = std::thread::spawn(move || r2.blocking().try_acquire().unwrap());
    assert!(!other.join().unwrap());
    r.blocking().release().unwrap();
    r.blocking().release().unwrap();
    remote(r.blocking().release().unwrap_err(), "RuntimeError");

    let s = m.semaphore(2).unwrap();
    assert!(s.blocking().try_acquire().unwrap());
    assert!(s.blocking().try_acquire().unwrap());
    assert!(!s.blocking().try_acquire().unwrap());
    s.blocking().release_n(2).unwrap();
    assert_eq!(s.blocking().value().unwrap(), 2);
    let b = m.bounded_semaphore(1).unwrap();
    remote(b.blocking().release().unwrap_err(), "ValueError");
}

fn wait_for_go(
    (c, ready, out): (
        conex::multiprocessing::managers::ConditionProxy,
        EventProxy,
        DictProxy<u8, bool>,
    ),
) {
    c.blocking().acquire().unwrap();
    ready.blocking().set().unwrap();
    let notified = c.blocking().wait(Some(Duration::from_secs(20))).unwrap();
    c.blocking().release().unwrap();
    out.blocking().set(&1, &notified).unwrap();
}

fn at_barrier(b: conex::multiprocessing::managers::BarrierProxy) -> usize {
    b.blocking().wait(Some(Duration::from_secs(20))).unwrap()
}

// _TestCondition.test_notify, _TestEvent.test_event, _TestBarrier with a
// manager, across processes
fn condition_event_barrier() {
    let m = manager().unwrap();
    let c = m.condition().unwrap();
    let ready = m.event().unwrap();
    let out = m.dict::<u8, bool>().unwrap();
    let p = Process::new(wait_for_go, (c.clone(), ready.clone(), out.clone()));
    p.start().unwrap();
    assert!(
        ready
            .blocking()
            .wait(Some(Duration::from_secs(20)))
            .unwrap()
    );
    c.blocking().acquire().unwrap(); // the waiter released it inside wait
    c.blocking().notify(1).unwrap();
    c.blocking().release().unwrap();
    p.blocking().join().unwrap();
    assert_eq!(out.blocking().get(&1).unwrap(), Some(true));
    remote(c.blocking().wait(None).unwrap_err(), "RuntimeError");

    let e = m.event().unwrap();
    assert!(!e.blocking().is_set().unwrap());
    assert!(!e.blocking().wait(Some(Duration::from_millis(30))).unwrap());
    e.blocking().set().unwrap();
    assert!(e.blocking().wait(None).unwrap());
    e.blocking().clear().unwrap();
    assert!(!e.blocking().is_set().unwrap());

    let b = m.barrier(3, None).unwrap();
    assert_eq!(b.blocking().parties().unwrap(), 3);
    let ps: Vec<_> = (0..2)
        .map(|_| Process::new(at_barrier, b.clone()))
        .collect();
    ps.iter().for_each(|p| p.start().unwrap());
    let mine = at_barrier(b.clone());
    let mut idx: Vec<usize> = ps.iter().map(|p| p.blocking().result().unwrap()).collect();
    idx.push(mine);
    idx.sort();
    assert_eq!(idx, [0, 1, 2]);
    let lonely = m.barrier(2, None).unwrap();
    remote(
        lonely
            .blocking()
            .wait(Some(Duration::from_millis(50)))
            .unwrap_err(),
        "BrokenBarrierError",
    );
    assert!(lonely.blocking().broken().unwrap());
    lonely.blocking().reset().unwrap();
    assert!(!lonely.blocking().broken().unwrap());
}

/// A user type for the manager tests.
pub(crate) struct Tally {
    total: i64,
    log: Vec<String>,
}

impl Tally {
    fn new(start: i64) -> Tally {
        Tally {
            total: start,
            log: Vec::new(),
        }
    }

    fn add(&mut self, by: i64, who: String) -> i64 {
        self.total += by;
        self.log.push(who);
        self.total
    }

    fn total(&self) -> i64 {
        self.total
    }

    fn log(&self) -> Vec<String> {
        self.log.clone()
    }

    fn explode(&self) {
        panic!("the tally exploded")
    }

    fn seed(&self) -> u64 {
        SEED.load(Ordering::SeqCst)
    }
}

conex::expose! {
    /// A proxy to a `Tally`.
    pub proxy TallyProxy, blocking BlockingTally for Tally {
        fn add(&mut self, by: i64, who: String) -> i64;
        fn total(&self) -> i64;
        fn log(&self) -> Vec<String>;
        fn explode(&self);
        fn seed(&self) -> u64;
    }
}

fn add_from_child((t, n): (TallyProxy, i64)) {
    t.blocking().add(&n, &format!("child-{n}")).unwrap();
}

fn tally_manager() -> BaseManager {
    let mut m = BaseManager::new(None, None);
    m.register("Tally", Tally::new);
    m
}

// _TestMyManager.test_mymanager (register, create, call, from a child),
// and an unknown type, a failing method and a panic leave the server up
fn registered_type() {
    let m = tally_manager();
    m.start().unwrap();
    let t: TallyProxy = m.create("Tally", &10i64).unwrap();
    assert_eq!(t.blocking().add(&5, &"main".into()).unwrap(), 15);
    let ps: Vec<_> = (1..=2)
        .map(|n| Process::new(add_from_child, (t.clone(), n)))
        .collect();
    ps.iter().for_each(|p| p.start().unwrap());
    ps.iter().for_each(|p| p.blocking().join().unwrap());
    assert_eq!(t.blocking().total().unwrap(), 18);
    assert_eq!(t.blocking().log().unwrap().len(), 3);
    let e = t.blocking().explode().unwrap_err();
    remote(e, "panic");
    assert_eq!(
        t.blocking().total().unwrap(),
        18,
        "the server survived the panic"
    );
    let e = m.create::<TallyProxy, _>("Nope", &()).unwrap_err();
    remote(e, "KeyError");
    let bad: Result<(), _> = t.base().blocking().call("no_such", vec![]);
    remote(bad.unwrap_err(), "AttributeError");
    // Arguments that do not decode as the constructor's: an error, and
    // the server goes on.
    let wrong: Result<TallyProxy, _> = m.create("Tally", &());
    remote(wrong.unwrap_err(), "DecodeError");
    assert_eq!(t.blocking().total().unwrap(), 18);
}

static SEED: AtomicU64 = AtomicU64::new(0);

fn seed_server(v: u64) {
    SEED.store(v, Ordering::SeqCst);
}

// _TestMyManager.test_mymanager_context_prestarted / start(initializer)
fn start_with_initializer() {
    let m = tally_manager();
    m.start_with(seed_server, 77).unwrap();
    let t: TallyProxy = m.create("Tally", &0i64).unwrap();
    assert_eq!(
        t.blocking().seed().unwrap(),
        77,
        "the initializer ran in the server"
    );
    assert_eq!(SEED.load(Ordering::SeqCst), 0, "and not here");
    assert!(m.start().is_err(), "started twice");
}

/// A remote manager's server: built-in types over TCP, serving until
/// killed; reports its address.
fn serve_tcp((addr, key, report): (Address, Vec<u8>, Connection)) {
    let m = SyncManager::new(Some(addr), Some(&key));
    let server = m.get_server().unwrap();
    report.blocking().send(server.address()).unwrap();
    server.serve_forever();
}

/// A client of a remote manager: fills a dict and reads it back.
fn use_remote((addr, key): (Address, Vec<u8>)) -> Result<Vec<(String, u32)>, String> {
    let m = SyncManager::new(Some(addr), Some(&key));
    m.connect().map_err(|e| e.to_string())?;
    let d = m.dict::<String, u32>().map_err(|e| e.to_string())?;
    d.blocking()
        .set(&"from".into(), &std::process::id())
        .map_err(|e| e.to_string())?;
    d.blocking().items().map_err(|e| e.to_string())
}

fn start_remote(addr: Address, key: &[u8]) -> (Process<()>, Address) {
    let (a, b) = pipe(true).unwrap();
    let p = Process::new(serve_tcp, (addr, key.to_vec(), b));
    p.start().unwrap();
    let bound: Address = a.blocking().recv().unwrap();
    (p, bound)
}

// _TestRemoteManager.test_remote (and the wrong key: refused on both
// sides, and the server keeps serving)
fn remote_manager_over_tcp() {
    let key = b"remote secret".to_vec();
    let (server, addr) = start_remote(Address::Tcp("127.0.0.1:0".parse().unwrap()), &key);
    let items = use_remote((addr.clone(), key.clone())).unwrap();
    assert_eq!(items.len(), 1);
    let wrong = SyncManager::new(Some(addr.clone()), Some(b"wrong"));
    match wrong.connect() {
        Err(ManagerError::Connection(ConnectionError::Authentication(_))) => {}
        other => panic!("a wrong key must be refused, got {other:?}"),
    }
    // Still serving the right key.
    assert!(use_remote((addr, key)).is_ok());
    server.kill().unwrap();
    server.blocking().join().unwrap();
}

/// Runs `f` in the network namespace `ns`, in a child process.
fn in_netns(ns: &str) -> bool {
    let Ok(f) = std::fs::File::open(format!("/var/run/netns/{ns}")) else {
        return false;
    };
    use std::os::fd::AsRawFd;
    // SAFETY: setns on a namespace descriptor we opened; affects this
    // thread, which creates every socket the child uses.
    unsafe { libc::setns(f.as_raw_fd(), libc::CLONE_NEWNET) == 0 }
}

fn serve_in_netns((ns, addr, key, report): (String, Address, Vec<u8>, Connection)) {
    assert!(in_netns(&ns), "cannot enter {ns}");
    serve_tcp((addr, key, report));
}

fn client_in_netns(
    (ns, addr, key): (String, Address, Vec<u8>),
) -> Result<Vec<(String, u32)>, String> {
    if !in_netns(&ns) {
        return Err(format!("cannot enter {ns}"));
    }
    use_remote((addr, key))
}

fn ip(args: &str) -> bool {
    std::process::Command::new("ip")
        .args(args.split_whitespace())
        .stderr(std::process::Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// Two network namespaces joined by a veth pair, removed on drop.
struct NetnsPair {
    server: String,
    client: String,
}

impl NetnsPair {
    fn new() -> Option<NetnsPair> {
        let id = std::process::id() % 100_000;
        let pair = NetnsPair {
            server: format!("conexS{id}"),
            client: format!("conexC{id}"),
        };
        let (s, c) = (&pair.server, &pair.client);
        let ok = ip(&format!("netns add {s}"))
            && ip(&format!("netns add {c}"))
            && ip(&format!("link add vs{id} type veth peer name vc{id}"))
            && ip(&format!("link set vs{id} netns {s}"))
            && ip(&format!("link set vc{id} netns {c}"))
            && ip(&format!("-n {s} addr add 10.213.7.1/24 dev vs{id}"))
            && ip(&format!("-n {c} addr add 10.213.7.2/24 dev vc{id}"))
            && ip(&format!("-n {s} link set vs{id} up"))
            && ip(&format!("-n {c} link set vc{id} up"))
            && ip(&format!("-n {s} link set lo up"));
        ok.then_some(pair)
    }
}

impl Drop for NetnsPair {
    fn drop(&mut self) {
        ip(&format!("netns del {}", self.server));
        ip(&format!("netns del {}", self.client));
    }
}

// _TestRemoteManager.test_remote between two network namespaces made
// here (a veth pair); over loopback where namespaces cannot be made
fn remote_manager_between_netns() {
    let Some(pair) = NetnsPair::new() else {
        eprintln!(
            "manager::remote_manager_between_netns: cannot create network namespaces here \
             (needs root and iproute2); the remote manager runs over loopback only"
        );
        return remote_manager_over_tcp();
    };
    let key = b"netns secret".to_vec();
    let (a, b) = pipe(true).unwrap();
    let server = Process::new(
        serve_in_netns,
        (
            pair.server.clone(),
            Address::Tcp("10.213.7.1:0".parse().unwrap()),
            key.clone(),
            b,
        ),
    );
    server.start().unwrap();
    let addr: Address = a.blocking().recv().unwrap();
    let client = Process::new(
        client_in_netns,
        (pair.client.clone(), addr.clone(), key.clone()),
    );
    client.start().unwrap();
    let items = client.blocking().result().unwrap().unwrap();
    assert_eq!(items.len(), 1);
    let intruder = Process::new(
        client_in_netns,
        (pair.client.clone(), addr, b"wrong".to_vec()),
    );
    intruder.start().unwrap();
    let refused = intruder.blocking().result().unwrap().unwrap_err();
    assert!(refused.contains("authentication"), "{refused}");
    server.kill().unwrap();
    server.blocking().join().unwrap();
}

fn hold_lock((lock, report): (LockProxy, Connection)) {
    lock.blocking().acquire().unwrap();
    report.blocking().send(&true).unwrap();
    std::thread::sleep(Duration::from_secs(120));
}

// Not in CPython (whose server keeps a dead client's lock forever): the
// server releases a lock whose holder's connection closed
fn dead_client_releases_lock() {
    let m = manager().unwrap();
    let lock = m.lock().unwrap();
    let (a, b) = pipe(true).unwrap();
    let p = Process::new(hold_lock, (lock.clone(), b));
    p.start().unwrap();
    assert!(a.blocking().recv::<bool>().unwrap());
    assert!(
        !lock.blocking().try_acquire().unwrap(),
        "the child holds it"
    );
    p.kill().unwrap();
    p.blocking().join().unwrap();
    assert!(
        lock.blocking()
            .acquire_timeout(Duration::from_secs(20))
            .unwrap(),
        "released when its holder died"
    );
}

// _TestManagerRestart-like: a server that dies gives every proxy an
// error at its next use, and a call blocked in it ends with an error
fn dead_server_is_an_error() {
    let m = manager().unwrap();
    let d = m.dict::<u8, u8>().unwrap();
    let e = m.event().unwrap();
    d.blocking().set(&1, &1).unwrap();
    let e2 = e.clone();
    let blocked = std::thread::spawn(move || e2.blocking().wait(None));
    std::thread::sleep(Duration::from_millis(100));
    let server = m.process().unwrap();
    server.kill().unwrap();
    server.blocking().join().unwrap();
    assert!(matches!(
        blocked.join().unwrap(),
        Err(ManagerError::Connection(_))
    ));
    let t = Instant::now();
    assert!(matches!(
        d.blocking().get(&1),
        Err(ManagerError::Connection(_))
    ));
    assert!(
        matches!(d.blocking().get(&1), Err(ManagerError::Connection(_))),
        "again"
    );
    assert!(t.elapsed() < Duration::from_secs(10));
}

// Bad input: garbage and wrong messages on an authenticated connection
// end that connection only
fn malformed_requests() {
    let m = manager().unwrap();
    let d = m.dict::<u8, u8>().unwrap();
    let addr = m.address().unwrap();
    let c = Client::connect_blocking(&addr, Some(m.authkey())).unwrap();
    c.blocking().send_bytes(b"\xff\xff\xff garbage").unwrap();
    assert!(c.blocking().recv_bytes().unwrap_err().is_eof());
    let c = Client::connect_blocking(&addr, Some(m.authkey())).unwrap();
    c.blocking().send(&(0u8, 99u16)).unwrap(); // a hello of another protocol version
    assert!(c.blocking().recv_bytes().unwrap_err().is_eof());
    d.blocking().set(&1, &2).unwrap();
    assert_eq!(
        d.blocking().get(&1).unwrap(),
        Some(2),
        "the server serves the others"
    );
}

// BaseManager.shutdown / the `with` block: the server process ends; the
// manager's proxies then fail
fn shutdown_and_drop() {
    let m = manager().unwrap();
    let d = m.dict::<u8, u8>().unwrap();
    let p = m.process().unwrap();
    m.shutdown().unwrap();
    assert_eq!(p.exitcode(), Some(0));
    assert!(matches!(
        d.blocking().len(),
        Err(ManagerError::Connection(_))
    ));
    assert!(m.shutdown().is_err(), "only once");
    let m2 = manager().unwrap();
    let p2 = m2.process().unwrap();
    drop(m2);
    assert_eq!(p2.exitcode(), Some(0), "dropping the manager shut it down");
}

fn cube(x: u64) -> u64 {
    if x == 13 {
        panic!("unlucky {x}");
    }
    x * x * x
}

fn pool_from_child((pool, n): (conex::multiprocessing::managers::PoolProxy, u64)) -> u64 {
    pool.blocking().apply(cube, n).unwrap()
}

// _TestManagerRestart / the pool of a SyncManager (manager.Pool): calls run
// in the server's worker processes, from here and from a child
fn managed_pool() {
    let m = manager().unwrap();
    let pool = m.pool(Some(2)).unwrap();
    assert_eq!(pool.blocking().processes().unwrap(), 2);
    assert_eq!(pool.blocking().apply(cube, 3).unwrap(), 27);
    let want: Vec<u64> = (20..70u64).map(|x| x * x * x).collect();
    for chunk in [0, 1, 7] {
        assert_eq!(pool.blocking().map(cube, 20..70u64, chunk).unwrap(), want);
    }
    let e = pool.blocking().apply(cube, 13).unwrap_err();
    match &e {
        ManagerError::Remote(r) => {
            assert_eq!(
                (r.type_name.as_str(), r.message.as_str()),
                ("panic", "unlucky 13")
            );
            assert!(r.backtrace.is_some(), "the worker's backtrace came back");
        }
        other => panic!("expected a remote panic, got {other:?}"),
    }
    let p = Process::new(pool_from_child, (pool.clone(), 4));
    p.start().unwrap();
    assert_eq!(p.blocking().result().unwrap(), 64);
    pool.blocking().close().unwrap();
    pool.blocking().join().unwrap();
    assert!(pool.blocking().apply(cube, 1).is_err(), "closed");
}

/// Set (to a Unix socket path) in a copy of this suite run as a manager
/// client by `managed_pool_refuses_another_build`.
pub(crate) const POOL_CLIENT_ENV: &str = "CONEX_TEST_POOL_CLIENT";

/// The client role: takes a managed Pool's proxy from the test over a
/// connection, sends it work, and sends back what happened.
pub(crate) fn pool_client_role(path: std::ffi::OsString) -> ! {
    let addr = Address::Unix(path.into());
    let c = Client::connect_blocking(&addr, None).unwrap();
    let pool: conex::multiprocessing::managers::PoolProxy = c.blocking().recv().unwrap();
    let r = pool.blocking().apply(cube, 3).map_err(|e| match e {
        ManagerError::Remote(r) => (r.type_name, r.message),
        other => ("not remote".to_string(), other.to_string()),
    });
    c.blocking().send(&r).unwrap();
    std::process::exit(0)
}

// Not in CPython (pickle sends functions by name, so any interpreter may
// call them): work crosses to a managed Pool as a code offset, so a client
// running another build of the program is refused with a TypeError, the
// server goes on serving; this very binary, run the same way, and a copy
// of it at another path are served
fn managed_pool_refuses_another_build() {
    let m = manager().unwrap();
    let pool = m.pool(Some(1)).unwrap();
    let run_client = |exe: &std::path::Path| -> Result<u64, (String, String)> {
        let l = conex::multiprocessing::Listener::bind(Address::unix_temp(), None).unwrap();
        let Address::Unix(path) = l.address().clone() else {
            panic!("a Unix address")
        };
        let mut child = std::process::Command::new(exe)
            .env(POOL_CLIENT_ENV, &path)
            .spawn()
            .unwrap();
        let conn = l.blocking().accept().unwrap();
        conn.blocking().send(&pool).unwrap();
        let r = conn.blocking().recv().unwrap();
        assert!(child.wait().unwrap().success());
        r
    };
    let me = std::env::current_exe().unwrap();
    assert_eq!(run_client(&me), Ok(27), "the same binary is served");
    let builds = crate::OtherBuilds::new("pool-build");
    assert_eq!(run_client(&builds.copy), Ok(27), "a copy of it is served");
    match run_client(&builds.other) {
        Err((t, msg)) => {
            assert_eq!(t, "TypeError");
            assert!(msg.contains("same binary"), "{msg}");
        }
        Ok(v) => panic!("another build was served: {v}"),
    }
    assert_eq!(
        pool.blocking().apply(cube, 2).unwrap(),
        8,
        "the server goes on"
    );
}

// ------------------------------------------------ async proxies

fn threads_now() -> usize {
    std::fs::read_dir("/proc/self/task").unwrap().count()
}

/// Polls `f` until it gives `true`, for at most `limit` (a cancel reaches
/// the server in the background: its effect is awaited, not slept for).
async fn eventually(limit: Duration, mut f: impl AsyncFnMut() -> bool) -> bool {
    let t = Instant::now();
    while t.elapsed() < limit {
        if f().await {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    false
}

// The figure: 1,000 tasks on a 2-worker runtime making concurrent
// DictProxy calls all complete, with no thread per task (the calls of all
// the tasks share the process's one connection).
fn thousand_tasks_share_one_connection() {
    let m = manager().unwrap();
    let d = m.dict::<u32, u32>().unwrap();
    let ev = m.event().unwrap();
    let rt = crate::two_workers();
    let before = threads_now();
    let peak = rt.block_on(async {
        let waiting = std::sync::Arc::new(AtomicU64::new(0));
        let tasks: Vec<_> = (0..1000u32)
            .map(|i| {
                let (d, ev, waiting) = (d.clone(), ev.clone(), waiting.clone());
                tokio::spawn(async move {
                    d.set(&i, &(i + 1)).await.unwrap();
                    // Every task then waits in the server at once.
                    waiting.fetch_add(1, Ordering::SeqCst);
                    assert!(ev.wait(Some(Duration::from_secs(60))).await.unwrap());
                    d.get(&i).await.unwrap()
                })
            })
            .collect();
        let t = Instant::now();
        while waiting.load(Ordering::SeqCst) < 1000 {
            assert!(
                t.elapsed() < Duration::from_secs(60),
                "the sets did not finish"
            );
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        let peak = threads_now();
        ev.set().await.unwrap();
        for (i, t) in tasks.into_iter().enumerate() {
            assert_eq!(t.await.unwrap(), Some(i as u32 + 1));
        }
        peak
    });
    assert_eq!(d.blocking().len().unwrap(), 1000);
    assert!(
        peak <= before + 4,
        "{before} threads before, {peak} with 1,000 tasks waiting in the server"
    );
}

// Lock ownership as Python's, with tasks for threads (lock_tests.py
// RLockTests.test_release_unacquired / test_different_thread): an RLock
// taken by one task is not another's to take or release.
fn locks_belong_to_tasks() {
    let m = manager().unwrap();
    let r = m.rlock().unwrap();
    crate::RT.block_on(async {
        r.acquire().await.unwrap();
        r.acquire().await.unwrap(); // reentrant for its owner
        let r2 = r.clone();
        let other = tokio::spawn(async move {
            let took = r2.try_acquire().await.unwrap();
            let released = r2.release().await;
            (took, released)
        })
        .await
        .unwrap();
        assert!(!other.0, "another task cannot take it");
        remote(other.1.unwrap_err(), "RuntimeError");
        r.release().await.unwrap();
        r.release().await.unwrap();
        remote(r.release().await.unwrap_err(), "RuntimeError");
    });
    // A thread through the blocking facade is an owner of its own, and so
    // is a thread polling a future outside any task (`block_on`).
    let r2 = r.clone();
    let (held_tx, held_rx) = std::sync::mpsc::channel();
    let (go_tx, go_rx) = tokio::sync::oneshot::channel::<()>();
    let holder = crate::RT.spawn(async move {
        r2.acquire().await.unwrap();
        held_tx.send(()).unwrap();
        go_rx.await.unwrap();
        r2.release().await.unwrap();
    });
    held_rx.recv().unwrap();
    assert!(!r.blocking().try_acquire().unwrap(), "held by the task");
    remote(r.blocking().release().unwrap_err(), "RuntimeError");
    go_tx.send(()).unwrap();
    crate::RT.block_on(holder).unwrap();
    crate::RT.block_on(r.acquire()).unwrap();
    assert!(
        r.blocking().try_acquire().unwrap(),
        "the same thread: reentrant"
    );
    r.blocking().release().unwrap();
    crate::RT.block_on(r.release()).unwrap();
    assert!(!crate::RT.block_on(r.locked()).unwrap());
}

// _TestCondition.test_notify with tasks: a wait releases the lock for its
// task and takes it back for the same task.
fn condition_wait_releases_for_its_task() {
    let m = manager().unwrap();
    let c = m.condition().unwrap();
    crate::RT.block_on(async {
        let c2 = c.clone();
        let (held_tx, held_rx) = tokio::sync::oneshot::channel();
        let waiter = tokio::spawn(async move {
            c2.acquire().await.unwrap();
            held_tx.send(()).unwrap();
            let notified = c2.wait(Some(Duration::from_secs(30))).await.unwrap();
            // Held again by this task: it releases it.
            c2.release().await.unwrap();
            notified
        });
        // Once the waiter is inside wait (it held the lock until then), the
        // lock is free to take.
        held_rx.await.unwrap();
        let c3 = c.clone();
        assert!(
            eventually(Duration::from_secs(20), async || {
                let took = c3.try_acquire().await.unwrap();
                if took {
                    c3.notify(1).await.unwrap();
                    c3.release().await.unwrap();
                }
                took
            })
            .await
        );
        assert!(waiter.await.unwrap(), "notified");
        // A dropped wait leaves its task holding the lock, as before it
        // waited (asyncio's Condition.wait does the same).
        c.acquire().await.unwrap();
        let dropped = tokio::time::timeout(Duration::from_millis(50), c.wait(None)).await;
        assert!(dropped.is_err());
        // Its release succeeds (once the cancel has reached the server
        // and the wait took the lock back for it), and only once.
        assert!(
            eventually(Duration::from_secs(20), async || c.release().await.is_ok()).await,
            "the dropped wait gave the lock back to its owner"
        );
        let c4 = c.clone();
        tokio::spawn(async move {
            assert!(c4.try_acquire().await.unwrap(), "free again");
            c4.release().await.unwrap();
        })
        .await
        .unwrap();
        remote(c.release().await.unwrap_err(), "RuntimeError");
    });
}

// Cancellation as in-process: a dropped waiter that had won nothing takes
// nothing (a lock, a semaphore permit, a queue item, a barrier slot).
fn dropped_waits_take_nothing() {
    let m = manager().unwrap();
    let lock = m.lock().unwrap();
    let sem = m.semaphore(0).unwrap();
    let q = m.queue::<u32>(0).unwrap();
    let b = m.barrier(2, None).unwrap();
    crate::RT.block_on(async {
        lock.acquire().await.unwrap();
        let short = Duration::from_millis(30);
        assert!(tokio::time::timeout(short, lock.acquire()).await.is_err());
        assert!(tokio::time::timeout(short, sem.acquire()).await.is_err());
        assert!(tokio::time::timeout(short, q.get()).await.is_err());
        assert!(tokio::time::timeout(short, b.wait(None)).await.is_err());
        lock.release().await.unwrap();
        // The cancels went out: nothing the dropped waits asked for is taken.
        assert!(
            eventually(Duration::from_secs(20), async || {
                b.n_waiting().await.unwrap() == 0
            })
            .await,
            "the dropped barrier wait withdrew"
        );
        assert!(lock.try_acquire().await.unwrap(), "the lock is free");
        lock.release().await.unwrap();
        sem.release().await.unwrap();
        assert!(sem.try_acquire().await.unwrap(), "the permit was left");
        q.put(&7).await.unwrap();
        assert_eq!(q.get_nowait().await.unwrap(), 7, "the item was left");
        assert!(!b.broken().await.unwrap());
    });
}

// A dropped waiter that had won gives it back: the server granted the
// lock (or took the item) and the reply was on its way when the caller's
// future was dropped.
fn dropped_winners_give_back() {
    let m = manager().unwrap();
    let lock = m.lock().unwrap();
    let q = m.queue::<u32>(0).unwrap();
    crate::RT.block_on(async {
        lock.acquire().await.unwrap();
        // Polled once: the request is in the server, waiting.
        let mut waiter = Box::pin(lock.acquire());
        assert!(futures::poll!(waiter.as_mut()).is_pending());
        let q2 = q.clone();
        let mut getter = Box::pin(async move { q2.get().await });
        assert!(futures::poll!(getter.as_mut()).is_pending());
        // Wait until the server has queued both waits.
        tokio::time::sleep(Duration::from_millis(50)).await;
        lock.release().await.unwrap();
        q.put(&42).await.unwrap();
        // The server hands the lock to the waiter and the item to the
        // getter; neither future is polled again: both are dropped.
        assert!(
            eventually(Duration::from_secs(20), async || {
                lock.locked().await.unwrap() && q.qsize().await.unwrap() == 0
            })
            .await
        );
        drop(waiter);
        drop(getter);
        // Given back: the lock is released, the item is in the queue again.
        assert!(
            eventually(Duration::from_secs(20), async || {
                !lock.locked().await.unwrap()
            })
            .await,
            "the lock was given back"
        );
        assert_eq!(
            q.get_timeout(Duration::from_secs(20)).await.unwrap(),
            42,
            "the item was put back"
        );
    });
}

// A dead server is an error for every waiting task, never a hang.
fn dead_server_fails_every_waiting_task() {
    let m = manager().unwrap();
    let e = m.event().unwrap();
    let _w = crate::watchdog(
        "dead_server_fails_every_waiting_task".into(),
        Duration::from_secs(60),
    );
    crate::RT.block_on(async {
        let waiting = std::sync::Arc::new(AtomicU64::new(0));
        let tasks: Vec<_> = (0..100)
            .map(|_| {
                let (e, waiting) = (e.clone(), waiting.clone());
                tokio::spawn(async move {
                    waiting.fetch_add(1, Ordering::SeqCst);
                    e.wait(None).await
                })
            })
            .collect();
        while waiting.load(Ordering::SeqCst) < 100 {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
        let server = m.process().unwrap();
        server.kill().unwrap();
        for t in tasks {
            assert!(matches!(t.await.unwrap(), Err(ManagerError::Connection(_))));
        }
        assert!(matches!(e.is_set().await, Err(ManagerError::Connection(_))));
    });
}
