"""CPython figures the README cites that ../shared/perf/cpython_bench.py has
no workload for. Run with the same interpreter as the anchors:

    python3 benches/cpython_extra.py

- process_start_join: Process(target=noop).start(); join(), per start
  method (the peer of benches/multiprocessing.rs mp_process_start_join).
- manager_dict_get: Manager().dict().get(1), one call at a time (the peer
  of manager_dict_get).

Each figure is the best of three runs.
"""
import multiprocessing as mp
import time


def noop():
    pass


def best_of(runs, n, op):
    best = 0.0
    for _ in range(runs):
        t = time.perf_counter()
        for _ in range(n):
            op()
        best = max(best, n / (time.perf_counter() - t))
    return best


def process_start_join():
    for sm in ("spawn", "forkserver", "fork"):
        ctx = mp.get_context(sm)

        def once():
            p = ctx.Process(target=noop)
            p.start()
            p.join()

        once()  # forkserver: the server starts here, untimed
        n = 30 if sm == "spawn" else 200
        print(f"process_start_join {sm}: {best_of(3, n, once):.0f} /s")


def manager_dict_get():
    with mp.get_context("fork").Manager() as m:
        d = m.dict()
        d[1] = 2
        print(f"manager_dict_get: {best_of(3, 20000, lambda: d.get(1)):.0f} /s")


if __name__ == "__main__":
    process_start_join()
    manager_dict_get()
