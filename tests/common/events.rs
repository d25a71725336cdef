//! A tracing subscriber for tests: keeps `LEVEL message` of every event of
//! target `conex`, and `SPAN name field=value ...` of every span of that
//! target (shared by the test binaries that check diagnostics).

use std::sync::Mutex;

/// The kept events.
#[derive(Default)]
pub struct Events(pub Mutex<Vec<String>>);

struct Message<'a>(&'a mut String);

impl tracing::field::Visit for Message<'_> {
    fn record_debug(&mut self, field: &tracing::field::Field, value: &dyn std::fmt::Debug) {
        if field.name() == "message" {
            *self.0 = format!("{value:?}");
        }
    }
}

/// `field=value` of every field.
struct Fields<'a>(&'a mut String);

impl tracing::field::Visit for Fields<'_> {
    fn record_debug(&mut self, field: &tracing::field::Field, value: &dyn std::fmt::Debug) {
        self.0.push_str(&format!(" {}={value:?}", field.name()));
    }
}

impl tracing::Subscriber for Events {
    fn enabled(&self, _: &tracing::Metadata<'_>) -> bool {
        true
    }
    fn new_span(&self, a: &tracing::span::Attributes<'_>) -> tracing::span::Id {
        if a.metadata().target() == "conex" {
            let mut line = format!("SPAN {}", a.metadata().name());
            a.record(&mut Fields(&mut line));
            self.0.lock().unwrap().push(line);
        }
        tracing::span::Id::from_u64(1)
    }
    fn record(&self, _: &tracing::span::Id, _: &tracing::span::Record<'_>) {}
    fn record_follows_from(&self, _: &tracing::span::Id, _: &tracing::span::Id) {}
    fn event(&self, e: &tracing::Event<'_>) {
        if e.metadata().target() == "conex" {
            let mut m = String::new();
            e.record(&mut Message(&mut m));
            self.0
                .lock()
                .unwrap()
                .push(format!("{} {m}", e.metadata().level()));
        }
    }
    fn enter(&self, _: &tracing::span::Id) {}
    fn exit(&self, _: &tracing::span::Id) {}
}
