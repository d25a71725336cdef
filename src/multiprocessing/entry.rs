//! The entry of every process conex starts: [`init`], first thing in
//! `main`, reads the role the parent set (`ROLE_ENV`) and diverts a worker
//! or the fork server into its loop; in the program itself it only
//! records that `main` ran it. The top of the start-up path: nothing in
//! the crate imports it (the role is set by `started::spawn_role`, and
//! what `init` records lives in `context`).

use super::context::ROLE_ENV;

/// The worker entry: call it first thing in `main`. In the program itself
/// it returns at once (and allows starting children of this binary); in a
/// process conex started (a worker, the fork server) it runs that
/// process's loop and never returns.
///
/// Python: the `if __name__ == "__main__":` guard (and `freeze_support()`):
/// a child re-executes the binary, and `init` is what keeps it from
/// running the program's `main` again. A program whose `main` does not
/// call it cannot start children by `spawn` or `forkserver`
/// ([`StartError::NoInit`]); `fork` and shared memory work without it.
///
/// [`StartError::NoInit`]: super::StartError::NoInit
///
/// ```no_run
/// fn work(n: u64) -> u64 {
///     (1..=n).product()
/// }
///
/// fn main() {
///     conex::multiprocessing::init(); // first thing
///     let p = conex::multiprocessing::Process::new(work, 10);
///     p.start().unwrap();
///     assert_eq!(p.blocking().result().unwrap(), 3_628_800);
/// }
/// ```
///
/// An async `main` uses [`#[conex::main]`](crate::main) instead of
/// `#[tokio::main]`: it calls `init()` before the runtime's threads start
/// (inside `#[tokio::main]` it would run after them).
pub fn init() {
    let Some(role) = std::env::var_os(ROLE_ENV) else {
        super::context::mark_initialised();
        return;
    };
    // The role is this process's alone, not its children's. Removing it is
    // sound only while no other thread can read the environment: with
    // threads about (an `init` called late), it stays, marked taken.
    if !crate::sys::remove_env_alone(ROLE_ENV) {
        super::context::mark_role_taken();
    }
    match role.to_str() {
        Some("worker") => super::worker::spawned_main(),
        Some("forkserver") => super::forkserver::main(),
        _ => {
            crate::diag!(error, "unknown process role {role:?}");
            std::process::exit(2);
        }
    }
}
