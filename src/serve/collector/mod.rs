//! The collector of `pgopt serve`: a light sample of every target every
//! `intervals.sample`, a full snapshot (with findings) every `intervals.snapshot`.

pub mod delta;
pub mod raw;
