//! ContextVar get / set and copy_context with 1 and 10,000 variables: the
//! copy is O(1) (a persistent map), so its two figures stay within 2x.

use std::hint::black_box;
use std::time::Duration;

use conex::contextvars::{Context, ContextVar, copy_context};
use criterion::{Criterion, criterion_group, criterion_main};

fn bench(c: &mut Criterion) {
    let mut g = c.benchmark_group("contextvars");
    g.sample_size(20)
        .warm_up_time(Duration::from_millis(300))
        .measurement_time(Duration::from_secs(1));
    for n in [1usize, 10_000] {
        let vars: Vec<ContextVar<u64>> =
            (0..n).map(|i| ContextVar::new(&format!("v{i}"))).collect();
        let ctx = Context::new();
        ctx.run(|| {
            for (i, v) in vars.iter().enumerate() {
                v.set(i as u64);
            }
            let probe = &vars[n / 2];
            g.bench_function(format!("get/{n}_vars"), |b| {
                b.iter(|| black_box(probe.get().unwrap()))
            });
            g.bench_function(format!("set/{n}_vars"), |b| {
                b.iter(|| black_box(probe.set(7)));
            });
            g.bench_function(format!("copy_context/{n}_vars"), |b| {
                b.iter(|| black_box(copy_context()));
            });
        })
        .unwrap();
    }
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
