//! The queue module's test suite (one binary): the conformance suite over
//! every face, cancellation at every await point, paused-time timeouts.

mod cancel;
mod conformance;
#[path = "../common/face.rs"]
#[allow(dead_code)]
mod face;
mod streams;
/// The primitives the faces and conformance bodies use: threading's.
mod prims {
    pub use conex::threading::*;
}

macro_rules! conformance {
    ($modname:ident, $face:ty) => {
        mod $modname {
            use crate::face::Face;
            conformance!(@tests $face;
                simple_queue,
                task_done_too_many,
                join_after_task_done,
                nowait,
                priority_is_stable,
                mixed_faces,
                shutdown_basics,
                shutdown_all_methods_one_worker,
                shutdown_all_methods_many_workers,
                shutdown_releases_getters,
                shutdown_releases_putters,
                shutdown_releases_joiners,
                shutdown_put_join,
                shutdown_get_task_done_join,
                shutdown_pending_get,
                getters_served_in_order,
                simple_queue_basics,
            );
        }
    };
    (@tests $face:ty; $($t:ident),* $(,)?) => {
        $(
            #[test]
            fn $t() {
                <$face as Face>::run(crate::conformance::$t::<$face>());
            }
        )*
    };
}

conformance!(async_face, crate::face::Async);
conformance!(blocking_face, crate::face::Blocking);
