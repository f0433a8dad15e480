//! Responders: where the pipeline's results leave rampart. For now the console / JSON-lines output of decoded events.

pub mod console;
