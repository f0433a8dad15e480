//! The sandbox: the one function that sets every limit a playbook runs under.

use std::cell::Cell;
use std::time::{Duration, Instant};

use rhai::{Dynamic, Engine, EvalAltResult, FLOAT, INT};

use crate::config::PlaybookLimits;

thread_local! {
    /// Wall-clock deadline of the playbook call running on this thread.
    static DEADLINE: Cell<Option<Instant>> = const { Cell::new(None) };
}

/// The marker a deadline abort carries, to tell it from other terminations.
pub const DEADLINE_EXCEEDED: &str = "deadline exceeded";

const NO_SLEEP: &str = "sleep() is not available to playbooks";

/// Builds an engine that cannot reach the outside world or run away:
/// operations, call depth, expression depth, string/array/map sizes and a
/// wall-clock deadline per call are all bounded; `eval` and module imports
/// are gone. Host functions are registered on top by the caller.
pub fn engine(limits: &PlaybookLimits) -> Engine {
    let mut e = Engine::new();
    e.set_max_operations(limits.max_operations)
        .set_max_call_levels(limits.max_call_depth)
        .set_max_expr_depths(64, 32)
        .set_max_string_size(limits.max_string_size)
        .set_max_array_size(limits.max_array_size)
        .set_max_map_size(limits.max_map_size)
        .set_max_functions(256)
        .set_max_variables(256)
        .set_module_resolver(rhai::module_resolvers::DummyModuleResolver::new())
        .disable_symbol("eval");
    // rhai's sleep() blocks the worker thread, and the deadline is only checked between
    // operations: a playbook could stall the pipeline (or panic it with sleep(1e300)).
    e.register_fn("sleep", |_: INT| -> Result<(), Box<EvalAltResult>> {
        Err(NO_SLEEP.into())
    })
    .register_fn("sleep", |_: FLOAT| -> Result<(), Box<EvalAltResult>> {
        Err(NO_SLEEP.into())
    });
    // print/debug would write to rampart's stdout; send them to the log instead.
    e.on_print(|s| tracing::debug!(target: "playbook", "{s}"));
    e.on_debug(
        |s, src, pos| tracing::debug!(target: "playbook", source = src.unwrap_or(""), %pos, "{s}"),
    );
    e.on_progress(|ops| {
        if ops % 512 != 0 {
            return None;
        }
        let late = DEADLINE.with(|d| d.get().is_some_and(|d| Instant::now() > d));
        late.then(|| Dynamic::from(DEADLINE_EXCEEDED))
    });
    e
}

/// Runs `f` with the per-call deadline armed on this thread.
pub fn with_deadline<T>(timeout: Duration, f: impl FnOnce() -> T) -> T {
    DEADLINE.with(|d| d.set(Some(Instant::now() + timeout)));
    let out = f();
    DEADLINE.with(|d| d.set(None));
    out
}
