/*
 * Included at the END of each model, after the workers, so that the
 * workers get _pid 0..N-1 (used to index blocked[]) and the watchdog _pid N.
 *
 * Compile with spin -DNO_WATCHDOG to leave it out: then a stuck waiter
 * shows up as SPIN's built-in "invalid end state" error instead.
 */

/* Watchdog: `timeout` is executable only when no other statement in the
 * system can run, i.e. when every worker has terminated or is stuck.
 * At that point nobody may be asleep in the kernel while a permit is free
 * (lost wake-up), and in fact every worker must have finished. */
#ifndef NO_WATCHDOG
active proctype watchdog() {
    timeout ->
    assert(!(value > 0 && (blocked[0] || blocked[1] || blocked[2])));  /* LOST WAKE-UP */
    assert(finished == N)                                               /* all finish */
}
#endif
