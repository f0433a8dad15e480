//! tests as data
pub fn placeholder() {}
