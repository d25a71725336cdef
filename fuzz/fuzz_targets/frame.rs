//! The frame decoder: arbitrary bytes arrive on a connection; every
//! receive must end in a value or a typed error, never a panic or a hang.
#![no_main]

use std::os::fd::AsRawFd;

use conex::multiprocessing::pipe;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let (ours, theirs) = pipe(true).unwrap();
    ours.set_max_frame(1 << 16);
    // SAFETY: writing our bytes to our socket.
    let n = unsafe { libc::write(theirs.as_raw_fd(), data.as_ptr().cast(), data.len().min(1 << 16)) };
    assert!(n >= 0);
    drop(theirs);
    let mut buf = [0u8; 64];
    for round in 0..64 {
        let r = match round % 3 {
            0 => ours.blocking().recv_bytes().map(|_| ()),
            1 => ours.blocking().recv::<(u32, String, Vec<i64>)>().map(|_| ()),
            _ => ours.blocking().recv_bytes_into(&mut buf).map(|_| ()),
        };
        if r.is_err() && !ours.blocking().poll().unwrap_or(false) {
            break;
        }
    }
});
