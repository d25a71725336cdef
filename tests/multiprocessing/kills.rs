//! Issue 15's kill trials for the cross-process locks, `Value`,
//! `Condition` and `Barrier`: a child is killed with SIGKILL at a random
//! moment of its loop, and what it leaves must be usable by everyone
//! else. None of these is in CPython, whose lock a killed holder keeps for
//! good (its notifier waits for a killed sleeper for good, too).

use std::time::{Duration, Instant};

use conex::multiprocessing::{
    Barrier, Condition, Item, Lock, Process, RLock, RawValue, ShareableList, Value,
};
use conex::threading::ReleaseError;

use crate::{RT, Rng, Test, watchdog};

pub(crate) const TESTS: &[Test] = &[
    (
        "kills::a_dead_lock_holder_is_taken_over",
        a_dead_lock_holder_is_taken_over,
    ),
    (
        "kills::a_dead_rlock_owner_is_taken_over",
        a_dead_rlock_owner_is_taken_over,
    ),
    (
        "kills::a_value_outlives_a_killed_writer",
        a_value_outlives_a_killed_writer,
    ),
    (
        "kills::a_shareable_list_outlives_a_killed_writer",
        a_shareable_list_outlives_a_killed_writer,
    ),
    (
        "kills::a_notifier_does_not_wait_for_dead_sleepers",
        a_notifier_does_not_wait_for_dead_sleepers,
    ),
    (
        "kills::a_party_dead_while_waiting_breaks_the_barrier",
        a_party_dead_while_waiting_breaks_the_barrier,
    ),
    (
        "kills::a_barrier_outlives_a_party_killed_anywhere",
        a_barrier_outlives_a_party_killed_anywhere,
    ),
];

const TRIALS: u32 = 20;
/// What a wedged call is given before the watchdog aborts the suite.
const LIMIT: Duration = Duration::from_secs(30);

/// Busy for `us` microseconds (a kill lands inside).
fn spin(us: u64) {
    let end = Instant::now() + Duration::from_micros(us);
    while Instant::now() < end {
        std::hint::spin_loop();
    }
}

fn poll_until(what: &str, mut f: impl FnMut() -> bool) {
    let deadline = Instant::now() + LIMIT;
    while !f() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(1));
    }
}

/// Starts `child(arg)`, waits until `ticks` moves, kills it at a random
/// moment; in half the trials reaps it first (a zombie holds nothing
/// either, and an unreaped one must not look alive).
fn kill_at_random<A: serde::Serialize + serde::de::DeserializeOwned + Send + 'static>(
    child: fn(A),
    arg: A,
    ticks: &RawValue<u64>,
    rng: &mut Rng,
    trial: u32,
) {
    let p = Process::new(child, arg);
    p.start().unwrap();
    poll_until("the child's first tick", || ticks.get() > 0);
    spin(rng.below(2000));
    p.kill().unwrap();
    if trial.is_multiple_of(2) {
        p.blocking().join().unwrap();
    }
}

/// Two threads taking `lock` in turns, holding it ~50 us each time.
fn hold_lock_in_turns((lock, ticks): (Lock, RawValue<u64>)) {
    std::thread::scope(|s| {
        for _ in 0..2 {
            s.spawn(|| {
                loop {
                    let _g = lock.blocking().lock();
                    ticks.set(ticks.get() + 1);
                    spin(50);
                }
            });
        }
    });
}

// The holder of a Lock killed at a random moment: the lock is free or
// taken over (by the blocking facade and by an async waiter), and whole
// after: it excludes and releases as before.
fn a_dead_lock_holder_is_taken_over() {
    let mut rng = Rng::new();
    let seed = rng.0;
    let mut held_at_death = 0;
    for trial in 0..TRIALS {
        let (lock, ticks) = (Lock::new().unwrap(), RawValue::new(0u64).unwrap());
        kill_at_random(
            hold_lock_in_turns,
            (lock.clone(), ticks.clone()),
            &ticks,
            &mut rng,
            trial,
        );
        let _dog = watchdog(format!("lock kill trial {trial} (seed {seed})"), LIMIT);
        held_at_death += u32::from(lock.locked());
        let got = if trial % 3 == 0 {
            RT.block_on(lock.acquire_timeout(LIMIT))
        } else {
            lock.blocking().acquire_timeout(LIMIT)
        };
        assert!(got, "seed {seed}: trial {trial}: the lock stayed taken");
        assert!(lock.locked() && !lock.try_acquire());
        lock.release().unwrap();
        assert!(matches!(lock.release(), Err(ReleaseError::Unlocked)));
        assert!(lock.try_acquire());
        lock.release().unwrap();
    }
    // The child holds the lock ~99% of the time: most kills land in it.
    assert!(
        held_at_death > 0,
        "seed {seed}: no kill found the lock held (nothing was taken over)"
    );
}

/// Two threads taking `r` twice over, in turns.
fn hold_rlock_in_turns((r, ticks): (RLock, RawValue<u64>)) {
    std::thread::scope(|s| {
        for _ in 0..2 {
            s.spawn(|| {
                loop {
                    r.blocking().acquire();
                    r.blocking().acquire();
                    ticks.set(ticks.get() + 1);
                    spin(50);
                    r.release().unwrap();
                    r.release().unwrap();
                }
            });
        }
    });
}

// The owner of an RLock killed at a random moment, possibly at two
// levels: the taker owns it at one level, and only the taker.
fn a_dead_rlock_owner_is_taken_over() {
    let mut rng = Rng::new();
    let seed = rng.0;
    let mut held_at_death = 0;
    for trial in 0..TRIALS {
        let (r, ticks) = (RLock::new().unwrap(), RawValue::new(0u64).unwrap());
        kill_at_random(
            hold_rlock_in_turns,
            (r.clone(), ticks.clone()),
            &ticks,
            &mut rng,
            trial,
        );
        let _dog = watchdog(format!("rlock kill trial {trial} (seed {seed})"), LIMIT);
        held_at_death += u32::from(r.recursion_level() > 0);
        let got = if trial % 3 == 0 {
            RT.block_on(async {
                let got = r.acquire_timeout(LIMIT).await;
                // Owned by this task: another task is not the owner.
                let other = tokio::spawn({
                    let r = r.clone();
                    async move { (r.is_owned(), r.try_acquire()) }
                });
                assert_eq!(other.await.unwrap(), (false, false));
                assert!(r.is_owned());
                r.release().unwrap();
                got
            })
        } else {
            let got = r.blocking().acquire_timeout(LIMIT);
            assert!(r.is_owned(), "seed {seed}: taken, not owned");
            assert_eq!(r.recursion_level(), 1, "seed {seed}: the dead's levels");
            r.release().unwrap();
            got
        };
        assert!(got, "seed {seed}: trial {trial}: the rlock stayed owned");
        assert_eq!(r.recursion_level(), 0);
        assert!(matches!(r.release(), Err(ReleaseError::Unlocked)));
        assert!(r.blocking().acquire_timeout(Duration::from_secs(1)));
        r.release().unwrap();
    }
    assert!(
        held_at_death > 0,
        "seed {seed}: no kill found the rlock owned"
    );
}

/// Two threads adding to `v` through its lock, one access at a time.
fn add_to_value((v, ticks): (Value<u64>, RawValue<u64>)) {
    std::thread::scope(|s| {
        for _ in 0..2 {
            s.spawn(|| {
                loop {
                    v.set(v.get() + 1);
                    ticks.set(ticks.get() + 1);
                }
            });
        }
    });
}

// A writer of a Value killed at a random moment: the value reads and
// writes after, and its lock is free or taken over.
fn a_value_outlives_a_killed_writer() {
    let mut rng = Rng::new();
    let seed = rng.0;
    for trial in 0..TRIALS / 2 {
        let (v, ticks) = (Value::new(0u64).unwrap(), RawValue::new(0u64).unwrap());
        kill_at_random(
            add_to_value,
            (v.clone(), ticks.clone()),
            &ticks,
            &mut rng,
            trial,
        );
        let _dog = watchdog(format!("value kill trial {trial} (seed {seed})"), LIMIT);
        let before = v.get();
        v.set(before + 1);
        assert_eq!(v.get(), before + 1, "seed {seed}");
        assert!(v.get_lock().blocking().acquire_timeout(LIMIT));
        v.get_lock().release().unwrap();
    }
}

/// Sets item 0 of `l` to a long str, an int and a short str in turn.
fn rewrite_forever((l, ticks): (ShareableList, RawValue<u64>)) {
    let items = [
        Item::from("a".repeat(40).as_str()),
        Item::from(7i64),
        "bb".into(),
    ];
    for i in 0usize.. {
        l.set(0, items[i % 3].clone()).unwrap();
        ticks.set(ticks.get() + 1);
    }
}

// A writer of a ShareableList killed at a random moment, possibly inside
// a set: every item still reads (the one it was setting may be torn, a
// mix of two values, as with concurrent writers; never an error or
// undefined behaviour), and sets and reads round-trip after.
fn a_shareable_list_outlives_a_killed_writer() {
    let mut rng = Rng::new();
    let seed = rng.0;
    for trial in 0..TRIALS / 2 {
        let l =
            ShareableList::new([Item::from("z".repeat(40).as_str()), 0i64.into()], None).unwrap();
        let ticks = RawValue::new(0u64).unwrap();
        kill_at_random(
            rewrite_forever,
            (ShareableList::attach(l.name()).unwrap(), ticks.clone()),
            &ticks,
            &mut rng,
            trial,
        );
        let left = l.get(0).unwrap_or_else(|e| panic!("seed {seed}: {e}"));
        assert!(
            matches!(left, Item::Str(_) | Item::Int(_)),
            "seed {seed}: a kind no writer set: {left:?}"
        );
        assert_eq!(
            l.get(1).unwrap(),
            Item::Int(0),
            "seed {seed}: another slot changed"
        );
        l.set(0, "after").unwrap();
        assert_eq!(l.get(0).unwrap(), Item::from("after"));
        l.unlink().unwrap();
    }
}

/// Two threads waiting on `c` with short timeouts, round and round.
fn wait_on_and_off((c, ticks): (Condition, RawValue<u64>)) {
    std::thread::scope(|s| {
        for t in 0..2u64 {
            let (c, ticks) = (&c, &ticks);
            s.spawn(move || {
                let b = c.blocking();
                for i in 0u64.. {
                    let g = b.lock();
                    ticks.set(ticks.get() + 1);
                    let wait = Duration::from_micros(100 + (i * 37 + t * 11) % 900);
                    let _ = b.wait_timeout(g, wait).unwrap();
                }
            });
        }
    });
}

// Sleepers of a Condition killed at a random moment (announced, asleep,
// woken or timing out): a notify_all that counts them still returns, the
// live sleeper it was for is notified, and the dead are out of the count.
fn a_notifier_does_not_wait_for_dead_sleepers() {
    let mut rng = Rng::new();
    let seed = rng.0;
    for trial in 0..TRIALS / 2 {
        let (c, ticks) = (Condition::new().unwrap(), RawValue::new(0u64).unwrap());
        kill_at_random(
            wait_on_and_off,
            (c.clone(), ticks.clone()),
            &ticks,
            &mut rng,
            trial,
        );
        let _dog = watchdog(format!("condition kill trial {trial} (seed {seed})"), LIMIT);
        let ready = RawValue::new(0u32).unwrap();
        let sleeper = std::thread::spawn({
            let (c, ready) = (c.clone(), ready.clone());
            move || {
                let b = c.blocking();
                let g = b.lock();
                ready.set(1);
                let (g, notified) = b.wait_timeout(g, LIMIT).unwrap();
                drop(g);
                notified
            }
        });
        poll_until("the live sleeper", || ready.get() == 1);
        {
            // Taken once the sleeper released it in its wait.
            let g = c.blocking().lock();
            c.notify_all().unwrap();
            drop(g);
        }
        assert!(
            sleeper.join().unwrap(),
            "seed {seed}: the live sleeper missed its notification"
        );
        assert_eq!(c.n_waiting(), 0, "seed {seed}: dead sleepers still counted");
    }
}

/// One party's wait, counted in `ticks` first.
fn wait_as_a_party((b, ticks): (Barrier, RawValue<u64>)) {
    ticks.set(1);
    let _ = b.blocking().wait();
}

// A party killed while it waits at a Barrier: the parties waiting with it
// (with no timeout) get BrokenBarrier instead of waiting for good; after a
// reset the barrier serves full rounds.
fn a_party_dead_while_waiting_breaks_the_barrier() {
    let b = Barrier::new(3).unwrap();
    let ticks = RawValue::new(0u64).unwrap();
    let p = Process::new(wait_as_a_party, (b.clone(), ticks.clone()));
    p.start().unwrap();
    poll_until("the child's party", || b.n_waiting() == 1);
    let _dog = watchdog("a barrier with a dead party".into(), LIMIT);
    let waiter = std::thread::spawn({
        let b = b.clone();
        move || b.blocking().wait()
    });
    poll_until("two waiting parties", || b.n_waiting() == 2);
    p.kill().unwrap();
    assert!(waiter.join().unwrap().is_err(), "the barrier did not break");
    assert!(b.broken());
    p.blocking().join().unwrap();
    b.reset();
    let others: Vec<_> = (0..2)
        .map(|_| {
            let b = b.clone();
            std::thread::spawn(move || b.blocking().wait_timeout(LIMIT))
        })
        .collect();
    let mine = RT.block_on(b.wait_timeout(LIMIT)).unwrap();
    let mut idx: Vec<usize> = others
        .into_iter()
        .map(|t| t.join().unwrap().unwrap())
        .collect();
    idx.push(mine);
    idx.sort_unstable();
    assert_eq!(idx, [0, 1, 2]);
}

/// A party passing the barrier round after round.
fn pass_forever((b, ticks): (Barrier, RawValue<u64>)) {
    loop {
        if b.blocking().wait().is_ok() {
            ticks.set(ticks.get() + 1);
        }
    }
}

// A party of a two-party Barrier killed at a random moment of its rounds
// (filling, draining or holding the lock): after a reset, a new party and
// this one pass rounds again (no dead count wedges the draining).
fn a_barrier_outlives_a_party_killed_anywhere() {
    let mut rng = Rng::new();
    let seed = rng.0;
    for trial in 0..TRIALS / 2 {
        let (b, ticks) = (Barrier::new(2).unwrap(), RawValue::new(0u64).unwrap());
        let p = Process::new(pass_forever, (b.clone(), ticks.clone()));
        p.start().unwrap();
        let _dog = watchdog(format!("barrier kill trial {trial} (seed {seed})"), LIMIT);
        for _ in 0..1 + rng.below(40) {
            b.blocking().wait_timeout(LIMIT).unwrap();
        }
        // Let the child go round into its next wait, or not.
        spin(rng.below(300));
        p.kill().unwrap();
        if trial % 2 == 0 {
            p.blocking().join().unwrap();
        }
        b.reset();
        let q = Process::new(pass_forever, (b.clone(), ticks.clone()));
        q.start().unwrap();
        for round in 0..3 {
            // A round may fail once: the reset can break the first wait if
            // the dead party is counted out only after it.
            if b.blocking().wait_timeout(LIMIT).is_err() {
                assert!(round == 0, "seed {seed}: round {round} broke");
                b.reset();
            }
        }
        q.kill().unwrap();
        q.blocking().join().unwrap();
    }
}
