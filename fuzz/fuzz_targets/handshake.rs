//! The auth handshake: arbitrary bytes from a client; the listener's
//! accept must fail with a typed error (or succeed only with the key),
//! never panic or hang, and serve the next client afterwards.
#![no_main]

use std::io::Write;

use conex::multiprocessing::{Address, Listener};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let l = Listener::bind(Address::unix_temp(), Some(b"fuzz key")).unwrap();
    let Address::Unix(path) = l.address().clone() else { unreachable!() };
    let mut raw = std::os::unix::net::UnixStream::connect(&path).unwrap();
    let _ = raw.write_all(data);
    // Half-close, not drop: the listener must read and judge the input
    // (a dropped socket ends every input at the same EOF).
    let _ = raw.shutdown(std::net::Shutdown::Write);
    assert!(l.blocking().accept().is_err());
    drop(raw);
});
