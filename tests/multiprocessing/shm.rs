//! shared_memory: create / attach / close / unlink, errors, a block
//! shared with a child, and the tracker's cleanup after a killed creator.

use std::path::Path;
use std::time::Duration;

use conex::multiprocessing::{
    Array, Connection, IndexError, Item, ListError, Process, RawArray, RawValue, ShareableList,
    SharedMemory, SharedMemoryManager, ShmError, Value, pipe,
};

use crate::Test;

pub(crate) const TESTS: &[Test] = &[
    ("shm::basics", basics),
    ("shm::errors", errors),
    (
        "shm::written_in_child_read_in_parent",
        written_in_child_read_in_parent,
    ),
    (
        "shm::creator_killed_is_cleaned_up",
        creator_killed_is_cleaned_up,
    ),
    (
        "shm::untracked_outlives_its_creator",
        untracked_outlives_its_creator,
    ),
    (
        "shm::kills_inside_create_leak_nothing",
        kills_inside_create_leak_nothing,
    ),
    (
        "shm::tracker_never_unlinks_another_block_of_the_name",
        tracker_never_unlinks_another_block_of_the_name,
    ),
    (
        "sharedctypes::value_counter_across_processes",
        value_counter_across_processes,
    ),
    (
        "sharedctypes::array_children_fill_slots",
        array_children_fill_slots,
    ),
    (
        "sharedctypes::wrong_element_type_is_refused",
        wrong_element_type_is_refused,
    ),
    ("shm::shareable_list_basics", shareable_list_basics),
    (
        "shm::manager_unlinks_at_shutdown",
        manager_unlinks_at_shutdown,
    ),
];

fn on_disk(name: &str) -> bool {
    Path::new("/dev/shm").join(name).exists()
}

fn unique(tag: &str) -> String {
    format!("cnxtest_{}_{tag}", std::process::id())
}

// _TestSharedMemory.test_shared_memory_basics
fn basics() {
    let name = unique("basics");
    let mut a = SharedMemory::create(Some(&name), 512).unwrap();
    assert_eq!(a.name(), name);
    assert_eq!(a.size(), 512);
    assert!(a.to_vec().iter().all(|&b| b == 0), "a new block is zeroed");
    a.write(0, b"abcd").unwrap();
    let mut b = SharedMemory::attach(&name).unwrap();
    assert_eq!(b.size(), 512);
    assert_eq!(&b.to_vec()[..4], b"abcd");
    b.write(4, b"!").unwrap();
    assert_eq!(a.to_vec()[4], b'!', "both map the same memory");
    // Out of range: a typed error, nothing copied or written.
    let mut big = [7u8; 16];
    assert!(matches!(
        a.read(500, &mut big),
        Err(IndexError {
            index: 516,
            len: 512
        })
    ));
    assert_eq!(big, [7u8; 16]);
    assert!(a.write(510, b"xyz").is_err());
    assert!(a.write(usize::MAX, b"x").is_err(), "no overflow");
    assert_eq!(&a.to_vec()[508..], &[0u8; 4]);
    a.write(509, b"xyz").unwrap();
    let mut tail = [0u8; 3];
    b.read(509, &mut tail).unwrap();
    assert_eq!(&tail, b"xyz");
    // The zero-copy view, under its promise: nobody writes meanwhile.
    // SAFETY: no other handle or process writes this block while the
    // slice lives.
    assert_eq!(unsafe { &b.as_slice()[..5] }, b"abcd!");
    b.close();
    assert!(b.to_vec().is_empty());
    assert!(b.read(0, &mut [0u8; 1]).is_err(), "closed: nothing to read");
    b.close(); // twice is fine
    assert!(on_disk(&name));
    a.unlink().unwrap();
    assert!(!on_disk(&name));
    // Still mapped here after unlink, as in Python.
    assert_eq!(&a.to_vec()[..4], b"abcd");
    // A random name when none is given.
    let mut r = SharedMemory::create(None, 1).unwrap();
    assert!(!r.name().is_empty());
    r.unlink().unwrap();
}

// _TestSharedMemory.test_shared_memory_basics (FileExistsError,
// FileNotFoundError, ValueError for size 0)
fn errors() {
    let name = unique("errors");
    let mut a = SharedMemory::create(Some(&name), 64).unwrap();
    assert!(matches!(SharedMemory::create(Some(&name), 64), Err(ShmError::Exists(n)) if n == name));
    a.unlink().unwrap();
    assert!(matches!(SharedMemory::attach(&name), Err(ShmError::NotFound(n)) if n == name));
    assert!(matches!(a.unlink(), Err(ShmError::NotFound(_))));
    assert!(matches!(
        SharedMemory::create(None, 0),
        Err(ShmError::Invalid(_))
    ));
    assert!(matches!(
        SharedMemory::create(Some("a/b"), 8),
        Err(ShmError::Invalid(_))
    ));
    assert!(matches!(
        SharedMemory::attach(""),
        Err(ShmError::Invalid(_))
    ));
}

fn fill_squares(shm: SharedMemory) -> u64 {
    let squares: Vec<u8> = (0..shm.size()).map(|i| (i * i % 251) as u8).collect();
    shm.write(0, &squares).unwrap();
    shm.to_vec().iter().map(|&b| b as u64).sum()
}

// _TestSharedMemory.test_shared_memory_across_processes
fn written_in_child_read_in_parent() {
    let name = unique("child");
    let mut shm = SharedMemory::create(Some(&name), 1 << 20).unwrap();
    // It crosses as its name; the child attaches.
    let p = Process::new(fill_squares, SharedMemory::attach(&name).unwrap());
    p.start().unwrap();
    let sum = p.blocking().result().unwrap();
    let here = shm.to_vec();
    assert_eq!(here.iter().map(|&b| b as u64).sum::<u64>(), sum);
    assert_eq!(here[100], (100 * 100 % 251) as u8);
    shm.unlink().unwrap();
}

fn create_and_hang((name, tracked, report): (String, bool, Connection)) {
    let shm = if tracked {
        SharedMemory::create(Some(&name), 4096).unwrap()
    } else {
        SharedMemory::create_untracked(Some(&name), 4096).unwrap()
    };
    report.blocking().send(&shm.name().to_owned()).unwrap();
    if tracked {
        std::thread::sleep(Duration::from_secs(300));
    }
}

// _TestSharedMemory.test_shared_memory_cleaned_after_process_termination
fn creator_killed_is_cleaned_up() {
    let name = unique("killed");
    let (ours, theirs) = pipe(true).unwrap();
    let p = Process::new(create_and_hang, (name.clone(), true, theirs));
    p.start().unwrap();
    assert_eq!(ours.blocking().recv::<String>().unwrap(), name);
    assert!(on_disk(&name));
    p.kill().unwrap();
    p.blocking().join().unwrap();
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    while on_disk(&name) {
        assert!(
            std::time::Instant::now() < deadline,
            "the tracker did not unlink {name}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

// _TestSharedMemory.test_shared_memory_untracking (3.13, track=False)
fn untracked_outlives_its_creator() {
    let name = unique("untracked");
    let (ours, theirs) = pipe(true).unwrap();
    let p = Process::new(create_and_hang, (name.clone(), false, theirs));
    p.start().unwrap();
    assert_eq!(ours.blocking().recv::<String>().unwrap(), name);
    p.blocking().join().unwrap();
    assert_eq!(p.exitcode(), Some(0));
    // Give a (wrong) tracker time to act, then check it is still there.
    std::thread::sleep(Duration::from_millis(200));
    let mut again = SharedMemory::attach(&name).expect("an untracked block outlives its creator");
    again.unlink().unwrap();
}

fn add_thousand(v: Value<u64>) {
    for _ in 0..1000 {
        let lock = v.get_lock();
        let _g = lock.blocking().lock();
        v.set(v.get() + 1);
    }
}

// _TestValue.test_value / test_getobj_getlock: a locked read-modify-write
// from several processes loses no update.
fn value_counter_across_processes() {
    let v = Value::new(0u64).unwrap();
    let ps: Vec<_> = (0..3)
        .map(|_| {
            let p = Process::new(add_thousand, v.clone());
            p.start().unwrap();
            p
        })
        .collect();
    add_thousand(v.clone());
    for p in &ps {
        p.blocking().result().unwrap();
    }
    assert_eq!(v.get(), 4000);
    let raw = RawValue::new(-3i16).unwrap();
    raw.set(raw.get() * 2);
    assert_eq!(raw.get(), -6);
    assert_eq!(v.get_obj().get(), 4000);
}

fn fill_slot((a, i): (Array<f64>, usize)) {
    a.set(i, i as f64 * 1.5).unwrap();
    assert!(a.set(a.len(), 0.0).is_err());
}

// _TestArray.test_array / test_rawarray
fn array_children_fill_slots() {
    let a = Array::<f64>::new(4).unwrap();
    let ps: Vec<_> = (0..4)
        .map(|i| {
            let p = Process::new(fill_slot, (a.clone(), i));
            p.start().unwrap();
            p
        })
        .collect();
    for p in &ps {
        p.blocking().result().unwrap();
    }
    assert_eq!(a.to_vec(), [0.0, 1.5, 3.0, 4.5]);
    assert_eq!(a.get(4), Err(IndexError { index: 4, len: 4 }));
    let r = RawArray::from_slice(&[true, false, true]).unwrap();
    assert_eq!(r.to_vec(), [true, false, true]);
    r.copy_from_slice(&[false; 3]).unwrap();
    assert!(r.copy_from_slice(&[false; 2]).is_err());
    assert_eq!(r.to_vec(), [false; 3]);
}

// Not in CPython (ctypes objects carry their type): a shared value
// received as another element type is refused.
fn wrong_element_type_is_refused() {
    let (a, b) = pipe(true).unwrap();
    a.blocking().send(&Value::new(1u64).unwrap()).unwrap();
    assert!(matches!(
        b.blocking().recv::<Value<i32>>(),
        Err(conex::multiprocessing::ConnectionError::Decode(_))
    ));
    a.blocking().send(&RawArray::<u8>::new(3).unwrap()).unwrap();
    assert_eq!(b.blocking().recv::<RawArray<u8>>().unwrap().len(), 3);
}

fn bump_list(l: ShareableList) -> usize {
    let Item::Int(n) = l.get(0).unwrap() else {
        panic!("slot 0 holds an int")
    };
    l.set(0, n + 1).unwrap();
    l.set(2, "child").unwrap();
    l.len()
}

// _TestSharedMemory.test_shared_memory_ShareableList_basics
fn shareable_list_basics() {
    let items: Vec<Item> = vec![
        41i64.into(),
        2.5f64.into(),
        "howdy".into(),
        b"\x00\x01".as_slice().into(),
        true.into(),
        ().into(),
    ];
    let l = ShareableList::new(items.clone(), None).unwrap();
    assert_eq!(l.len(), 6);
    assert_eq!(l.to_vec().unwrap(), items);
    assert_eq!(l.index(&Item::Bool(true)), Some(4));
    assert_eq!(l.count(&Item::None), 1);
    assert!(matches!(l.get(6), Err(ListError::Index(6))));
    // A slot takes another type if it fits; a longer str does not.
    l.set(1, "8 bytes!").unwrap();
    assert_eq!(l.get(1).unwrap(), Item::Str("8 bytes!".into()));
    assert!(matches!(
        l.set(1, "nine byte"),
        Err(ListError::TooLarge { index: 1, room: 8 })
    ));
    // A child attaches by name and writes; this process sees it.
    let p = Process::new(bump_list, ShareableList::attach(l.name()).unwrap());
    p.start().unwrap();
    assert_eq!(p.blocking().result().unwrap(), 6);
    assert_eq!(l.get(0).unwrap(), Item::Int(42));
    assert_eq!(l.get(2).unwrap(), Item::Str("child".into()));
    // Not a list: a plain block.
    let mut plain = SharedMemory::create(None, 64).unwrap();
    assert!(matches!(
        ShareableList::attach(plain.name()),
        Err(ListError::NotAList(_))
    ));
    plain.unlink().unwrap();
    l.unlink().unwrap();
}

// _TestSharedMemory.test_shared_memory_SharedMemoryManager_basics
fn manager_unlinks_at_shutdown() {
    let smm = SharedMemoryManager::new();
    let a = smm.shared_memory(100).unwrap();
    let l = smm.shareable_list(["x", "y"]).unwrap();
    let (an, ln) = (a.name().to_owned(), l.name().to_owned());
    assert!(on_disk(&an) && on_disk(&ln));
    smm.shutdown();
    assert!(!on_disk(&an) && !on_disk(&ln));
    assert!(matches!(
        SharedMemory::attach(&an),
        Err(ShmError::NotFound(_))
    ));
    // Still mapped here.
    assert_eq!(l.get(1).unwrap(), Item::Str("y".into()));
    assert!(smm.shared_memory(10).is_err(), "no blocks after shutdown");
    // Drop shuts down too.
    let name = {
        let smm = SharedMemoryManager::new();
        smm.shared_memory(10).unwrap().name().to_owned()
    };
    assert!(!on_disk(&name));
}

/// The children of process `parent` (from /proc: a tracker is one).
fn children_of(parent: u32) -> Vec<u32> {
    let mut out = Vec::new();
    for e in std::fs::read_dir("/proc").unwrap().flatten() {
        let Some(pid) = e.file_name().to_str().and_then(|s| s.parse::<u32>().ok()) else {
            continue;
        };
        let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
            continue;
        };
        let after = stat.rfind(')').map_or("", |i| &stat[i + 1..]);
        let mut f = after.split_whitespace();
        let (state, ppid) = (f.next(), f.next().and_then(|p| p.parse::<u32>().ok()));
        if ppid == Some(parent) && state != Some("Z") {
            out.push(pid);
        }
    }
    out
}

/// Whether process `pid` exists and is not a zombie (an orphaned tracker
/// that has exited may wait a while to be reaped).
fn running(pid: u32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|stat| {
        let after = stat.rfind(')').map_or("", |i| &stat[i + 1..]);
        after.split_whitespace().next() != Some("Z")
    })
}

/// The /dev/shm entries whose names start with `prefix`.
fn left_on_disk(prefix: &str) -> Vec<String> {
    std::fs::read_dir("/dev/shm")
        .unwrap()
        .flatten()
        .filter_map(|e| e.file_name().into_string().ok())
        .filter(|n| n.starts_with(prefix))
        .collect()
}

/// Creates and unlinks blocks in a loop, named `{prefix}_{k}` and randomly
/// named in turn, reporting once the loop runs; until killed.
fn create_unlink_loop((prefix, report): (String, Connection)) {
    for k in 0u64.. {
        let name = format!("{prefix}_{k}");
        let mut shm = if k % 2 == 0 {
            SharedMemory::create(Some(&name), 4096).unwrap()
        } else {
            SharedMemory::create(None, 4096).unwrap()
        };
        shm.unlink().unwrap();
        if k == 2 {
            report.blocking().send(&std::process::id()).unwrap();
        }
    }
}

/// Waits (up to 10 s) until `cond` holds.
fn eventually(what: &str, mut cond: impl FnMut() -> bool) {
    let end = std::time::Instant::now() + Duration::from_secs(10);
    while !cond() {
        assert!(std::time::Instant::now() < end, "{what}");
        std::thread::sleep(Duration::from_millis(5));
    }
}

// Not in CPython (whose creator killed inside create leaks the block):
// issue 15's kill trials. A child creates and unlinks blocks in a loop,
// under chosen and random names, and is killed at a random moment; in a
// third of the trials its tracker is killed first (a new one must take
// over every registration). Once the tracker has done its work, not one
// block of the child's is left.
fn kills_inside_create_leak_nothing() {
    let mut seed = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .subsec_nanos() as u64
        | 1;
    let first = seed;
    let mut below = |n: u64| {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed % n
    };
    let mut leaked = Vec::new();
    for trial in 0..40 {
        let prefix = unique(&format!("kill{trial}"));
        let (ours, theirs) = pipe(true).unwrap();
        let p = Process::new(create_unlink_loop, (prefix.clone(), theirs));
        p.start().unwrap();
        let pid: u32 = ours.blocking().recv().unwrap();
        if trial % 3 == 0 {
            let old = children_of(pid);
            assert_eq!(old.len(), 1, "one tracker: {old:?}");
            // SAFETY: killing the child's tracker, a process we found.
            unsafe { libc::kill(old[0] as i32, libc::SIGKILL) };
            eventually("a new tracker takes over", || {
                let now = children_of(pid);
                now.len() == 1 && now != old
            });
        }
        let spin = std::time::Instant::now() + Duration::from_micros(below(2000));
        while std::time::Instant::now() < spin {}
        let trackers = children_of(pid);
        p.kill().unwrap();
        p.blocking().join().unwrap();
        // Each tracker ends once it has unlinked what was left.
        eventually("the tracker ends", || trackers.iter().all(|&t| !running(t)));
        leaked.extend(left_on_disk(&prefix));
        leaked.extend(left_on_disk(&format!("cnx_{pid}_")));
    }
    assert!(leaked.is_empty(), "seed {first}: leaked {leaked:?}");
}

/// Creates block `name`, then removes its file behind the tracker's back
/// and reports; until killed.
fn create_then_remove_file((name, report): (String, Connection)) {
    let _shm = SharedMemory::create(Some(&name), 4096).unwrap();
    std::fs::remove_file(Path::new("/dev/shm").join(&name)).unwrap();
    report.blocking().send(&std::process::id()).unwrap();
    std::thread::sleep(Duration::from_secs(300));
}

// Not in CPython (whose tracker unlinks by name alone): a tracker unlinks
// a name only while it leads to the block its creator made. A child's
// block is removed behind its tracker's back, another process makes a
// block of the same name, the child is killed: the other block stays.
fn tracker_never_unlinks_another_block_of_the_name() {
    let name = unique("reused");
    let (ours, theirs) = pipe(true).unwrap();
    let p = Process::new(create_then_remove_file, (name.clone(), theirs));
    p.start().unwrap();
    let pid: u32 = ours.blocking().recv().unwrap();
    let mut mine = SharedMemory::create_untracked(Some(&name), 64).unwrap();
    let trackers = children_of(pid);
    assert_eq!(trackers.len(), 1);
    p.kill().unwrap();
    p.blocking().join().unwrap();
    eventually("the tracker ends", || !running(trackers[0]));
    assert!(
        on_disk(&name),
        "the tracker unlinked another block of the name"
    );
    mine.unlink().unwrap();
}
